"""Scripting through napari: add a slide or a result's layers to an existing viewer.

These are the plain functions behind the widgets; :mod:`hemascope.napari.launch` opens a viewer
with everything and docks the widgets.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hemascope.napari.layers import (
    META_RESULT,
    cells_layer_data,
    heatmap_layer_data,
    labels_layer_data,
    open_label_pyramid,
    slide_layer_data,
    smear_mask_layer_data,
    with_attention,
)

if TYPE_CHECKING:
    from napari.layers import Layer

    import napari
    from hemascope.results import SlideResult

#: Metadata flag on every layer :func:`show_results` adds (so a new result replaces them).
META_RESULT_LAYER = "hemascope_result_layer"


def _add(viewer: napari.Viewer, layer_tuple: tuple[Any, dict[str, Any], str]) -> Layer:
    data, kwargs, layer_type = layer_tuple
    kwargs = {**kwargs, "metadata": {**kwargs.get("metadata", {}), META_RESULT_LAYER: True}}
    layer = getattr(viewer, f"add_{layer_type}")(data, **kwargs)
    contour = kwargs["metadata"].get("contour")
    if layer_type == "labels" and contour:
        layer.contour = contour  # mask outlines: the cells stay visible under them
    return layer


def result_layer_tuples(result: SlideResult) -> list[tuple[Any, dict[str, Any], str]]:
    """The layers of a result as ``LayerDataTuple``\\ s, bottom to top.

    Smear mask, blast-probability heatmap, cell masks (multiscale from the OME-Zarr label pyramid)
    and the cells Points layer (features = the cell table; the result in its metadata).

    Parameters
    ----------
    result
        A :class:`~hemascope.results.SlideResult`.

    Returns
    -------
    list of LayerDataTuple
    """
    mpp = result.slide.get("mpp")
    tuples = []
    if result.smear_mask is not None:
        tuples.append(smear_mask_layer_data(result.smear_mask, result.smear_mask_downsample, mpp))
    shape = result.slide.get("shape")
    if shape is not None and "prob_blast" in result.cells.columns:
        tuples.append(heatmap_layer_data(result.cells, tuple(shape)[:2], mpp))
    if result.labels_path is not None and Path(result.labels_path).exists():
        levels = open_label_pyramid(result.labels_path)
        tuples.append(labels_layer_data(levels, mpp, slide_path=result.slide.get("path")))
    cells = with_attention(result.cells, result.subtype)
    tuples.append(cells_layer_data(cells, mpp, metadata={META_RESULT: result}))
    return tuples


def show_results(viewer: napari.Viewer, result: SlideResult, *, replace: bool = True) -> list[Layer]:
    """Add a result's layers to ``viewer`` (see :func:`result_layer_tuples`).

    Parameters
    ----------
    viewer
        The napari viewer.
    result
        A :class:`~hemascope.results.SlideResult`.
    replace
        Remove the layers an earlier call added first.

    Returns
    -------
    list of napari.layers.Layer
        The added layers, bottom to top (the cells Points layer last).
    """
    if replace:
        for layer in [lyr for lyr in viewer.layers if lyr.metadata.get(META_RESULT_LAYER)]:
            viewer.layers.remove(layer)
    layers = [_add(viewer, t) for t in result_layer_tuples(result)]
    show_class_legend(viewer, layers[-1].metadata.get("legend") or {})
    return layers


#: Object name of the class legend drawn on the canvas.
LEGEND_NAME = "hemascope-class-legend"


def legend_html(legend: dict[str, str]) -> str:
    """The class legend as rich text: a coloured disc and the class name per line."""
    from hemascope.classes import CLASS_LABELS

    return "<br>".join(f'<span style="color:{colour}; font-size:14pt;">&#9679;</span>&nbsp;'
                       f"{CLASS_LABELS.get(name, name)}" for name, colour in legend.items())


def show_class_legend(viewer: Any, legend: dict[str, str]) -> Any:
    """Draw (or update) the class legend in the canvas' top-left corner; ``None`` without a window.

    The legend is a small translucent Qt label over the canvas (napari has no legend overlay), so
    it shows in window screenshots and stays put while panning and zooming.
    """
    qt_viewer = getattr(getattr(viewer, "window", None), "_qt_viewer", None)
    native = getattr(getattr(qt_viewer, "canvas", None), "native", None)
    if native is None:
        return None
    from qtpy.QtWidgets import QLabel

    label = native.findChild(QLabel, LEGEND_NAME)
    if label is None:
        label = QLabel(native)
        label.setObjectName(LEGEND_NAME)
        label.setStyleSheet("background-color: rgba(20, 20, 20, 170); color: white; padding: 6px;"
                            "border-radius: 4px; font-size: 10pt;")
        label.move(10, 10)
    label.setText(legend_html(legend))
    label.adjustSize()
    label.setVisible(bool(legend))
    label.raise_()
    return label


def add_slide(viewer: napari.Viewer, slide: Any, *, mpp: float | None = None) -> Layer:
    """Open ``slide`` (a path or a :class:`~hemascope.io.Slide`) as a multiscale RGB layer.

    ``mpp`` overrides the file's µm/px when ``slide`` is a path (as a result's config may have).
    """
    if isinstance(slide, str | Path):
        from hemascope.io import open_slide

        slide = open_slide(slide, mpp=mpp)
    data, kwargs, _ = slide_layer_data(slide)
    return viewer.add_image(data, **kwargs)
