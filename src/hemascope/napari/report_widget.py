"""The Slide report dock: differential table (with the class legend), charts, models, notice.

It shows the :class:`~hemascope.results.SlideResult` of the topmost cells layer added by
:func:`hemascope.napari.show_results` (or one given to :meth:`ReportWidget.set_result`). The charts
are drawn by the same functions as the exported report PNG (:mod:`hemascope.export.report`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import Qt
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from hemascope.classes import CELL_CLASSES, CLASS_LABELS, RESEARCH_USE_ONLY, class_color
from hemascope.napari.layers import META_RESULT

if TYPE_CHECKING:
    import napari

TABLE_HEADERS = ("", "class", "count", "%", "95% CI")


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{float(value):.{digits}f}"


def slide_level_lines(result: Any) -> list[str]:
    """One line per slide model (answer or abstention), or why no slide model applies."""
    from hemascope.export.report import no_slide_model_text, subtype_line, subtypes_of

    subs = subtypes_of(result)
    return [subtype_line(s) for s in subs] if subs else [no_slide_model_text(result)]


def differential_rows(differential: dict[str, Any]) -> list[tuple[str, int, str, str]]:
    """``(class, count, percent, CI)`` rows of a differential count, in palette order."""
    counts = differential.get("counts") or {}
    percent = differential.get("percent") or {}
    low, high = differential.get("ci_low") or {}, differential.get("ci_high") or {}
    names = [c for c in CELL_CLASSES if c in counts] + [c for c in counts if c not in CELL_CLASSES]
    excluded = set(differential.get("excluded") or [])
    return [
        (n, int(counts[n]), "not counted", "") if n in excluded else
        (n, int(counts[n]), _fmt(percent.get(n)), f"{_fmt(low.get(n))}–{_fmt(high.get(n))}")
        for n in names
    ]


class ReportWidget(QWidget):
    """Dock widget with the slide report of the current result.

    Parameters
    ----------
    napari_viewer
        The viewer (injected by napari).
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        super().__init__()
        self.viewer = napari_viewer
        self.result: Any = None
        self.notice = QLabel(RESEARCH_USE_ONLY.upper())
        self.notice.setStyleSheet("color: #e31a1c; font-weight: bold;")
        self.summary = QLabel("no result yet: run Analyze slide")
        self.summary.setWordWrap(True)
        self.blast = QLabel("")
        self.subtype = QLabel("")
        self.subtype.setWordWrap(True)
        self.models = QLabel("")
        self.models.setWordWrap(True)
        # the cells that drove each slide-level call: click one to look at it on the slide
        self.evidence_title = QLabel("cells that drove the slide-level calls (click to view):")
        self.evidence = QListWidget()
        self.evidence.setMaximumHeight(140)
        self.evidence.itemClicked.connect(self._show_evidence_cell)
        self.table = QTableWidget(0, len(TABLE_HEADERS))
        self.table.setHorizontalHeaderLabels(TABLE_HEADERS)
        vertical = self.table.verticalHeader()
        if vertical is not None:
            vertical.setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.figure = Figure(figsize=(4, 5.5), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(460)
        for label in (self.summary, self.blast, self.subtype, self.models):
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # everything in one scroll area: readable in a narrow dock on a 1600x1000 screen
        content = QWidget()
        inner = QVBoxLayout(content)
        for widget in (self.notice, self.summary, self.blast, self.subtype, self.evidence_title,
                       self.evidence, self.table, self.canvas, self.models):
            inner.addWidget(widget)
        inner.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(content)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)
        self.setMinimumWidth(380)
        self.viewer.layers.events.inserted.connect(self._find_result)
        self.viewer.layers.events.removed.connect(self._find_result)
        self._find_result()

    def _find_result(self, event: Any = None) -> None:
        for layer in reversed(list(self.viewer.layers)):
            result = layer.metadata.get(META_RESULT)
            if result is not None:
                if result is not self.result:
                    self.set_result(result)
                return

    def _fill_evidence(self, subtypes: list[dict[str, Any]]) -> None:
        """List each slide model's most influential cells (``top_indices``), most influential first."""
        self.evidence.clear()
        for sub in subtypes:
            ids = sub.get("top_cells") or []
            for rank, index in enumerate(sub.get("top_indices") or []):
                cell = ids[rank] if rank < len(ids) else index
                item = QListWidgetItem(f"{sub.get('model', '?')}: cell {cell} (#{rank + 1})")
                item.setData(Qt.ItemDataRole.UserRole, int(index))
                self.evidence.addItem(item)
        has_cells = self.evidence.count() > 0
        self.evidence_title.setVisible(has_cells)
        self.evidence.setVisible(has_cells)

    def _show_evidence_cell(self, item: QListWidgetItem) -> None:
        """Centre the viewer on the clicked cell (row of the result's cells layer)."""
        from hemascope.napari.review import focus_on_cell

        for layer in self.viewer.layers:
            if layer.metadata.get(META_RESULT) is self.result and hasattr(layer, "features") \
                    and "class" in getattr(layer, "features", {}):
                focus_on_cell(self.viewer, layer, int(item.data(Qt.ItemDataRole.UserRole)))
                return

    def set_result(self, result: Any) -> None:
        """Show the report of a :class:`~hemascope.results.SlideResult`."""
        from hemascope.export.report import models_caption, no_slide_model_text, subtypes_of
        from hemascope.export.report_figure import (
            excluded_text,
            plot_differential,
            plot_subtype,
            possible_blasts_text,
        )
        from hemascope.slide.checks import warning_lines

        self.result = result
        diff = result.differential or {}
        name = str(result.slide.get("path") or "slide").rsplit("/", 1)[-1]
        self.summary.setText(f"{name}: {result.n_cells} cells, {diff.get('n_counted', '?')} counted")
        ci = diff.get("blast_ci") or (None, None)
        if diff.get("withheld"):
            text = diff["withheld"]
        elif diff.get("blast_percent") is None and "blast" not in (diff.get("counts") or {}):
            text = "blasts: not counted by this cell model"
        else:
            text = f"blasts: {_fmt(diff.get('blast_percent'))}% (95% CI {_fmt(ci[0])}–{_fmt(ci[1])})"
        notes = [*warning_lines(result.checks), diff.get("reason") if diff.get("sufficient") is False else "",
                 diff.get("note") or "", excluded_text(diff), possible_blasts_text(diff)]
        text += "".join(f"\n{n}" for n in notes if n)
        self.blast.setText(text)
        self.blast.setWordWrap(True)
        self.subtype.setText("slide level: " + "\n".join(slide_level_lines(result)))
        self._fill_evidence(subtypes_of(result))
        self.models.setText(models_caption(result))
        rows = differential_rows(diff)
        self.table.setRowCount(len(rows))
        for i, (cls, count, pct, interval) in enumerate(rows):
            swatch = QTableWidgetItem("")
            swatch.setBackground(QColor(class_color(cls)))  # the legend: the palette colour
            cells = (swatch, QTableWidgetItem(CLASS_LABELS.get(cls, cls)), QTableWidgetItem(str(count)),
                     QTableWidgetItem(pct), QTableWidgetItem(interval))
            for j, item in enumerate(cells):
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()
        top = self.table.horizontalHeader()
        header = top.height() if top is not None else 0
        self.table.setFixedHeight(header + sum(self.table.rowHeight(i) for i in range(len(rows))) + 4)
        self.figure.clear()
        subs = subtypes_of(result)
        axes = self.figure.subplots(1 + max(1, len(subs)), 1,
                                    gridspec_kw={"height_ratios": [2.2] + [1.0] * max(1, len(subs))})
        plot_differential(axes[0], diff)
        if subs:
            for ax, sub in zip(axes[1:], subs, strict=True):
                plot_subtype(ax, sub)
        else:
            plot_subtype(axes[1], None, empty=no_slide_model_text(result))
        for ax in axes:
            ax.tick_params(labelsize=7)
            ax.xaxis.label.set_fontsize(7)
            ax.title.set_fontsize(7)
        self.canvas.draw_idle()
