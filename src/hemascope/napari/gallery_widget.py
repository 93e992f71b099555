"""The Cell gallery dock: thumbnails by class, click to go to a cell, number keys to reclassify.

Keys ``1``–``9`` set the selected cell to the n-th class of the result's cell model (the white-cell
classes of :data:`hemascope.classes.CELL_CLASSES` for ``wbc``; ``0``: unclassified); the cells layer's features and colours follow. "Save reviewed…" writes the
reviewed cells as crops plus a CSV for ``hemascope train cells``. The logic lives in
:mod:`hemascope.napari.review`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import QEvent, QObject, QSize, Qt, QTimer
from qtpy.QtGui import QColor, QIcon, QImage, QKeyEvent, QPixmap
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from hemascope.classes import CELL_CLASSES, CLASS_LABELS, class_rgba
from hemascope.errors import HemascopeError
from hemascope.napari.layers import CENTROID_COLUMNS, META_RESULT, META_SLIDE
from hemascope.napari.review import (
    cell_thumbnail,
    focus_on_cell,
    gallery_order,
    has_possible_blasts,
    reclassify,
    save_reviewed_labels,
    sort_columns,
)

if TYPE_CHECKING:
    import napari

ALL_CLASSES = "all classes"
#: Class-menu entry for the cells whose blast call the blast rule withheld.
POSSIBLE_BLASTS = "possible blasts"
THUMB = 64
#: Thumbnails read per event-loop turn.
ICONS_PER_TICK = 8
#: Number key → class (``0`` clears to unclassified).
KEY_CLASSES = {str(i + 1): c for i, c in enumerate(CELL_CLASSES)} | {"0": "unclassified"}


def key_classes(classes: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Number key → class for a cell model's classes (``0``: unclassified)."""
    return {str(i + 1): c for i, c in enumerate(list(classes)[:9])} | {"0": "unclassified"}


def result_classes(result: Any) -> list[str]:
    """The classes of the cell model a result was made with (``wbc``'s when not recorded)."""
    cell = ((getattr(result, "provenance", None) or {}).get("models") or {}).get("cell") or {}
    return list(cell.get("classes") or CELL_CLASSES)


def _keys_help(keys: dict[str, str]) -> str:
    return "click: go to cell · keys " + ", ".join(f"{k}={CLASS_LABELS.get(c, c)}" for k, c in keys.items())


def _framed_icon(image: np.ndarray, cls: str) -> QIcon:
    """A thumbnail with a 3-pixel frame in the class colour."""
    rows, cols = image.shape[:2]
    framed = np.empty((rows + 6, cols + 6, 3), dtype=np.uint8)
    framed[:] = (np.array(class_rgba(cls)[:3]) * 255).astype(np.uint8)
    framed[3:-3, 3:-3] = image
    h, w = framed.shape[:2]
    qimage = QImage(framed.tobytes(), w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    return QIcon(QPixmap.fromImage(qimage))


class GalleryWidget(QWidget):
    """Dock widget reviewing the cells of the current result.

    Parameters
    ----------
    napari_viewer
        The viewer (injected by napari).
    per_class
        Most thumbnails shown per class.
    """

    def __init__(self, napari_viewer: napari.Viewer, per_class: int = 24) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.per_class = per_class
        self.layer: Any = None
        self.slide: Any = None
        self._pending: list[tuple[QListWidgetItem, int, str]] = []
        self._icon_timer = QTimer(self)
        self._icon_timer.setInterval(0)
        self._icon_timer.timeout.connect(self._load_some_icons)
        self.class_combo = QComboBox()
        self.sort_combo = QComboBox()
        self.list = QListWidget()
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setIconSize(QSize(THUMB + 6, THUMB + 6))
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setGridSize(QSize(THUMB + 48, THUMB + 30))
        self.list.setUniformItemSizes(True)
        placeholder = QPixmap(THUMB + 6, THUMB + 6)
        placeholder.fill(QColor("#d9d9d9"))
        self._placeholder = QIcon(placeholder)  # until the thumbnail is read
        self.list.itemClicked.connect(self._on_clicked)
        self.list.installEventFilter(self)
        self.keys = dict(KEY_CLASSES)
        self.help = QLabel(_keys_help(self.keys))
        self.help.setWordWrap(True)
        self.setMinimumWidth(380)
        self.save_button = QPushButton("Save reviewed…")
        self.save_button.clicked.connect(self._save_dialog)
        controls = QHBoxLayout()
        controls.addWidget(self.class_combo)
        controls.addWidget(self.sort_combo)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.list)
        layout.addWidget(self.help)
        layout.addWidget(self.save_button)
        self.class_combo.currentTextChanged.connect(lambda _: self.populate())
        self.sort_combo.currentTextChanged.connect(lambda _: self.populate())
        self.viewer.layers.events.inserted.connect(self._find_layer)
        self.viewer.layers.events.removed.connect(self._find_layer)
        self._find_layer()

    # --- data ---------------------------------------------------------------------------------
    def _find_layer(self, event: Any = None) -> None:
        layers = [lyr for lyr in self.viewer.layers if META_RESULT in lyr.metadata]
        layer = layers[-1] if layers else None
        if layer is not self.layer:
            self.set_layer(layer)

    def _slide_for(self, result: Any) -> Any:
        for layer in self.viewer.layers:
            if META_SLIDE in layer.metadata:
                return layer.metadata[META_SLIDE]
        path = result.slide.get("path")
        if path and Path(path).exists():
            from hemascope.io import open_slide

            return open_slide(path, mpp=result.slide.get("mpp"))
        return None

    def set_layer(self, layer: Any) -> None:
        """Review the cells of ``layer`` (a cells Points layer from :func:`show_results`)."""
        self.layer = layer
        self.slide = self._slide_for(layer.metadata[META_RESULT]) if layer is not None else None
        self.class_combo.blockSignals(True)
        self.sort_combo.blockSignals(True)
        self.class_combo.clear()
        self.sort_combo.clear()
        if layer is not None:
            classes = result_classes(layer.metadata[META_RESULT])
            self.keys = key_classes(classes)
            self.help.setText(_keys_help(self.keys))
            present = list(dict.fromkeys(layer.features["class"].astype(str)))
            order = [c for c in (*classes, "unclassified") if c in present]
            possible = [POSSIBLE_BLASTS] if has_possible_blasts(layer.features) else []
            self.class_combo.addItems([ALL_CLASSES, *possible, *order, *(c for c in present if c not in order)])
            self.sort_combo.addItems(sort_columns(layer.features) or ["table order"])
        self.class_combo.blockSignals(False)
        self.sort_combo.blockSignals(False)
        self.populate()

    def populate(self) -> None:
        """Rebuild the gallery for the chosen class and sort order (thumbnails load in batches)."""
        self._pending.clear()
        self.list.clear()
        if self.layer is None:
            return
        cells = self.layer.features
        sort_by = self.sort_combo.currentText()
        chosen = self.class_combo.currentText()
        groups = gallery_order(
            cells,
            sort_by=sort_by if sort_by in cells.columns else None,
            classes=None if chosen in ("", ALL_CLASSES, POSSIBLE_BLASTS) else [chosen],
            possible_blasts_only=chosen == POSSIBLE_BLASTS,
            per_class=self.per_class,
        )
        for cls, positions in groups.items():
            for pos in positions:
                item = QListWidgetItem(self._placeholder, self._label(pos, cls))
                item.setData(Qt.ItemDataRole.UserRole, int(pos))
                self.list.addItem(item)
                self._pending.append((item, pos, cls))
        if self.slide is not None:
            self._icon_timer.start()

    def _label(self, pos: int, cls: str) -> str:
        cells, sort_by = self.layer.features, self.sort_combo.currentText()
        score = float(cells[sort_by].iloc[pos]) if sort_by in cells.columns else float("nan")
        return CLASS_LABELS.get(cls, cls) + (f" {score:.2f}" if np.isfinite(score) else "")

    def _set_icon(self, item: QListWidgetItem, pos: int, cls: str) -> None:
        cells = self.layer.features
        row, col = (float(cells[c].iloc[pos]) for c in CENTROID_COLUMNS)
        item.setIcon(_framed_icon(cell_thumbnail(self.slide, row, col, size=THUMB), cls))

    def _load_some_icons(self) -> None:
        """Read the next few thumbnails (a timer calls this so the viewer stays responsive)."""
        for _ in range(ICONS_PER_TICK):
            if not self._pending:
                self._icon_timer.stop()
                return
            self._set_icon(*self._pending.pop(0))

    @property
    def thumbnails_pending(self) -> int:
        """Thumbnails not read yet."""
        return len(self._pending)

    # --- actions ------------------------------------------------------------------------------
    def selected_position(self) -> int | None:
        """Row position (in the cells layer) of the selected thumbnail."""
        item = self.list.currentItem()
        return None if item is None else int(item.data(Qt.ItemDataRole.UserRole))

    def _on_clicked(self, item: QListWidgetItem) -> None:
        pos = int(item.data(Qt.ItemDataRole.UserRole))
        focus_on_cell(self.viewer, self.layer, pos)
        self.layer.selected_data = {pos}

    def reclassify_selected(self, new_class: str) -> None:
        """Set the selected cell's class (features, colour, review flag) and refresh its tile."""
        item = self.list.currentItem()
        if item is None or self.layer is None:
            return
        pos = int(item.data(Qt.ItemDataRole.UserRole))
        reclassify(self.layer, pos, new_class)
        item.setText(self._label(pos, new_class))
        if self.slide is not None:
            self._set_icon(item, pos, new_class)

    def eventFilter(self, obj: QObject | None, event: QEvent | None) -> bool:  # noqa: N802 - Qt API
        """Number keys on the thumbnail list reclassify the selected cell."""
        if (
            obj is self.list
            and isinstance(event, QKeyEvent)
            and event.type() == QEvent.Type.KeyPress
            and event.text() in self.keys
        ):
            self.reclassify_selected(self.keys[event.text()])
            return True
        return super().eventFilter(obj, event)

    def save(self, path: str | Path) -> Path:
        """Save the reviewed cells (crops + CSV for ``hemascope train cells``) to ``path``."""
        return save_reviewed_labels(path, self.layer.features, self.slide)

    def _save_dialog(self) -> None:
        if self.layer is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save reviewed labels", "reviewed.csv", "CSV (*.csv)")
        if path:
            try:
                self.help.setText(f"saved {self.save(path)}")
            except HemascopeError as exc:
                self.help.setText(f"error: {exc}")
