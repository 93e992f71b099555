"""The Analyze dock: pick a slide layer, region and models, run the pipeline in a worker thread.

The compute is :func:`hemascope.napari.analysis_run.iter_analysis` (a plain generator) run by
``napari.qt.threading``, so the viewer stays responsive; Cancel stops the pipeline at its next
check. When the run finishes, :func:`hemascope.napari.show_results` adds the result layers.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dask.array as da
import numpy as np
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from hemascope.errors import HemascopeError, InvalidInputError
from hemascope.io.limits import GIVEN_MPP_RANGE
from hemascope.napari.analysis_run import (
    ProgressEvent,
    analysis_config,
    available_devices,
    iter_analysis,
    roi_from_polygon_um,
)
from hemascope.napari.layers import META_SLIDE
from hemascope.napari.viewer import show_results
from hemascope.segment.settings import SEGMENTERS

if TYPE_CHECKING:
    import napari

WHOLE_SMEAR = "whole smear"
DEFAULT_MODEL = "(default)"
NO_MODEL = "none"
#: Cell model the dock starts with (the real-data white-cell classifier).
DEFAULT_CELL_MODEL = "wbc"
MARKER_STYLES = ("outline", "dot")


def slide_of_layer(layer: Any) -> Any:
    """The :class:`~hemascope.io.Slide` behind an Image layer.

    Layers opened by hemascope keep their slide; any other RGB layer is wrapped (levels as dask
    arrays, µm/px from the layer's scale when it is not 1 and lies in ``GIVEN_MPP_RANGE``).
    """
    slide = layer.metadata.get(META_SLIDE)
    if slide is not None:
        return slide
    from hemascope.io import Slide

    if not layer.rgb:
        raise InvalidInputError(f"layer {layer.name!r} is not an RGB image")
    levels = [da.asarray(level)[..., :3] for level in (layer.data if layer.multiscale else [layer.data])]
    if levels[0].dtype != np.uint8:
        raise InvalidInputError(
            f"layer {layer.name!r} is {levels[0].dtype}; convert it to 8-bit RGB first"
        )
    scale = float(layer.scale[-1])
    lo, hi = GIVEN_MPP_RANGE  # a scale in other units (nm, pixels) is no µm/px: estimated instead
    mpp = scale if scale != 1.0 and lo <= scale <= hi else None
    return Slide(levels=levels, mpp=mpp, format="memory", mpp_source="user" if mpp else None)


def roi_of_shapes(layer: Any) -> tuple[tuple[float, float], ...]:
    """The first shape of a Shapes layer as a polygon in world µm (what ``roi_um`` expects)."""
    if len(layer.data) == 0:
        raise InvalidInputError(f"shapes layer {layer.name!r} is empty: draw the region first")
    vertices = np.asarray(layer.data[0], dtype=float)
    world = np.array([layer.data_to_world(v) for v in vertices])
    return roi_from_polygon_um(world[:, -2:])


@dataclass(frozen=True)
class UserError:
    """A documented error (bad input, cancel) returned by the worker instead of raised."""

    error: HemascopeError


def _user_errors_as_values(slide: Any, config: Any, cancel: threading.Event) -> Any:
    """:func:`iter_analysis`, returning a :class:`HemascopeError` wrapped in :class:`UserError`.

    Expected outcomes then reach the dock as a value instead of a traceback notification (a
    worker returning an exception object would re-raise it); bugs still raise.
    """
    try:
        return (yield from iter_analysis(slide, config, cancel=cancel))
    except HemascopeError as exc:
        return UserError(exc)


class AnalyzeWidget(QWidget):
    """Dock widget running :func:`hemascope.analyze_slide` on a slide layer.

    Parameters
    ----------
    napari_viewer
        The viewer (injected by napari).
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.worker: Any = None
        self.result: Any = None
        self._cancel = threading.Event()

        self.image_combo = QComboBox()
        self.region_combo = QComboBox()
        self.segmenter_combo = QComboBox()
        self.segmenter_combo.addItems(list(SEGMENTERS))  # the segment room's one list
        self.cellpose_model = QLineEdit()
        self.cellpose_model.setPlaceholderText("Cellpose model name or file")
        browse = QPushButton("…")
        browse.clicked.connect(self._browse_model)
        model_row = QHBoxLayout()
        model_row.addWidget(self.cellpose_model)
        model_row.addWidget(browse)
        self.cell_model_combo = QComboBox()
        self.cell_model_combo.setEditable(True)
        cell_models = self._cell_models()
        self.cell_model_combo.addItems(cell_models)
        if DEFAULT_CELL_MODEL in cell_models:
            self.cell_model_combo.setCurrentText(DEFAULT_CELL_MODEL)
        self.slide_model_combo = QComboBox()
        self.slide_model_combo.setEditable(True)
        self.slide_model_note = QLabel("")
        self.slide_model_note.setStyleSheet("color: #888888;")
        self.cell_model_combo.currentTextChanged.connect(self._cell_model_changed)
        self._cell_model_changed(self.cell_model_combo.currentText())
        self.marker_combo = QComboBox()
        self.marker_combo.addItems(MARKER_STYLES)
        self.marker_combo.currentTextChanged.connect(self._marker_style_changed)
        self.device_combo = QComboBox()
        self.device_combo.addItems(available_devices())
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 4096)
        self.batch_spin.setValue(64)

        form = QFormLayout()
        form.addRow("image", self.image_combo)
        form.addRow("region", self.region_combo)
        form.addRow("segmenter", self.segmenter_combo)
        form.addRow("cellpose model", model_row)
        form.addRow("cell model", self.cell_model_combo)
        form.addRow("slide model", self.slide_model_combo)
        form.addRow("", self.slide_model_note)
        form.addRow("device", self.device_combo)
        form.addRow("batch size", self.batch_spin)
        form.addRow("cell markers", self.marker_combo)

        self.run_button = QPushButton("Run")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.status = QLabel("ready")
        self.status.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status)
        layout.addStretch(1)

        self.segmenter_combo.currentTextChanged.connect(self._segmenter_changed)
        self._segmenter_changed(self.segmenter_combo.currentText())
        for event in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            event.connect(self._refresh_layers)
        self._refresh_layers()

    # --- choices ------------------------------------------------------------------------------
    @staticmethod
    def _cell_models() -> list[str]:
        """Registry cell classifiers only (bag models are picked below, by the cell model)."""
        from hemascope.models import list_models

        return [c.name for c in list_models(kind="cell")] or [DEFAULT_CELL_MODEL]

    @staticmethod
    def _slide_models(cell_model: str) -> tuple[list[str], list[str]]:
        """``(fitting, default)``: slide models trained on ``cell_model``'s embeddings, and those run by default."""
        from hemascope.errors import HemascopeError
        from hemascope.models import list_models
        from hemascope.slide.applicability import slide_model_choices

        card = next((c for c in list_models(kind="cell") if c.name == cell_model), None)
        if card is None:
            try:
                from hemascope.models import load_model

                card = load_model(cell_model, device="cpu").card
            except HemascopeError:
                return [], []
        choices = [c for c in slide_model_choices(card, include_demo=True) if c.runs]
        default = [c.model for c in slide_model_choices(card) if c.runs]
        return [c.model for c in choices], default

    def _cell_model_changed(self, name: str) -> None:
        fitting, default = self._slide_models(name.strip())
        current = self.slide_model_combo.currentText()
        self.slide_model_combo.blockSignals(True)
        self.slide_model_combo.clear()
        self.slide_model_combo.addItems([DEFAULT_MODEL, NO_MODEL, *fitting])
        self.slide_model_combo.setCurrentText(current if current in (DEFAULT_MODEL, NO_MODEL, *fitting)
                                              else DEFAULT_MODEL)
        self.slide_model_combo.blockSignals(False)
        if default:
            note = f"default: {', '.join(default)}"
        elif fitting:
            note = "default: none (only demo models fit)"
        else:
            note = f"default: none (none fits {name})"
        self.slide_model_note.setText(note)
        self.slide_model_note.setToolTip(
            "A slide model runs only on the cells of the cell model it was trained on; "
            "SYNTHETIC/DEMO models run only when chosen here")

    def _marker_style_changed(self, style: str) -> None:
        from hemascope.napari.layers import CELLS_LAYER_NAME, set_marker_style

        if CELLS_LAYER_NAME in self.viewer.layers:
            set_marker_style(self.viewer.layers[CELLS_LAYER_NAME], style)

    def _segmenter_changed(self, name: str) -> None:
        self.cellpose_model.setEnabled(name == "cellpose")

    def _browse_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Cellpose model file")
        if path:
            self.cellpose_model.setText(path)

    def _refresh_layers(self, event: Any = None) -> None:
        from napari.layers import Image, Shapes

        images = [lyr.name for lyr in self.viewer.layers if isinstance(lyr, Image) and lyr.rgb]
        regions = [WHOLE_SMEAR] + [lyr.name for lyr in self.viewer.layers if isinstance(lyr, Shapes)]
        for combo, names in ((self.image_combo, images), (self.region_combo, regions)):
            current = combo.currentText()
            combo.clear()
            combo.addItems(names)
            if current in names:
                combo.setCurrentText(current)

    def config(self) -> Any:
        """The :class:`~hemascope.config.AnalysisConfig` the current choices describe."""
        region = self.region_combo.currentText()
        roi = None if region in ("", WHOLE_SMEAR) else roi_of_shapes(self.viewer.layers[region])
        slide_model = self.slide_model_combo.currentText().strip()
        return analysis_config(
            segmenter=self.segmenter_combo.currentText(),
            segmenter_model=self.cellpose_model.text().strip() or None,
            cell_model=self.cell_model_combo.currentText().strip() or DEFAULT_CELL_MODEL,
            slide_model=None if slide_model in ("", DEFAULT_MODEL) else slide_model,
            device=self.device_combo.currentText(),
            batch_size=self.batch_spin.value(),
            roi_um=roi,
        )

    # --- running ------------------------------------------------------------------------------
    def run(self) -> None:
        """Start the analysis of the chosen layer in a worker thread."""
        from napari.qt.threading import thread_worker

        name = self.image_combo.currentText()
        if not name:
            self.status.setText("open a slide first")
            return
        try:
            slide = slide_of_layer(self.viewer.layers[name])
            config = self.config()
        except HemascopeError as exc:
            self.status.setText(f"error: {exc}")
            return
        self._cancel = threading.Event()
        self.worker = thread_worker(_user_errors_as_values, start_thread=False)(
            slide, config, cancel=self._cancel
        )
        self.worker.yielded.connect(self._on_progress)
        self.worker.returned.connect(self._on_result)
        self.worker.errored.connect(self._on_error)
        self.worker.finished.connect(self._on_finished)
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress_bar.setValue(0)
        self.status.setText(f"analysing {name} …")
        self.worker.start()

    def cancel(self) -> None:
        """Ask the running analysis to stop."""
        self._cancel.set()
        self.status.setText("cancelling …")

    def _on_progress(self, event: ProgressEvent) -> None:
        self.progress_bar.setValue(round(event.fraction * 1000))
        self.status.setText(f"{event.message} ({event.done}/{event.total})")

    def _on_result(self, result: Any) -> None:
        if isinstance(result, UserError):
            self._on_error(result.error)
            return
        from hemascope.export.report import no_slide_model_text, subtype_line, subtypes_of
        from hemascope.napari.layers import CELLS_LAYER_NAME, set_marker_style

        self.result = result
        try:
            show_results(self.viewer, result)
            if CELLS_LAYER_NAME in self.viewer.layers:
                set_marker_style(self.viewer.layers[CELLS_LAYER_NAME], self.marker_combo.currentText())
        except Exception as exc:  # noqa: BLE001 - the status must never stay at "analysing"
            self.status.setText(f"error showing the result: {type(exc).__name__}: {exc}")
            raise
        self.progress_bar.setValue(1000)
        answers = [subtype_line(s) for s in subtypes_of(result)] or [no_slide_model_text(result)]
        self.status.setText(f"done: {result.n_cells} cells\n" + "\n".join(answers))

    def _on_error(self, exc: BaseException) -> None:
        from hemascope.errors import Cancelled

        self.status.setText("cancelled" if isinstance(exc, Cancelled) else f"error: {exc}")
        if isinstance(exc, HemascopeError) and not isinstance(exc, Cancelled):
            from napari.utils.notifications import show_error

            show_error(f"hemascope: {exc}")

    def _on_finished(self) -> None:
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
