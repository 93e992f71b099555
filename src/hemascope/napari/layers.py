"""Layer builders: plain data in, napari ``LayerDataTuple`` ``(data, kwargs, layer_type)`` out.

Every builder is usable without a viewer (readers, scripts and tests call them directly); a viewer
adds the tuple with ``viewer._add_layer_from_data(*tuple)`` or ``viewer.add_<type>(data, **kwargs)``.
All layers share one physical frame: world coordinates are micrometres, data coordinates are
level-0 pixels ``(row, col)`` scaled by µm/px, so the scale bar and measurements are physical.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hemascope.classes import CELL_CLASSES, CLASS_COLORS, class_rgba
from hemascope.errors import InvalidInputError

LayerDataTuple = tuple[Any, dict[str, Any], str]

#: Name of the cells Points layer that :func:`hemascope.napari.show_results` adds.
CELLS_LAYER_NAME = "cells"
#: Level-0 pixel centroid columns of the cell table (``(row, col)`` order).
CENTROID_COLUMNS = ("row", "col")
#: Diameter (µm) drawn for cells whose table has no ``area_um2``.
DEFAULT_CELL_DIAMETER_UM = 12.0
#: An outline marker is this much wider than the cell, so the circle lies around it, not on it.
OUTLINE_MARGIN = 1.3
#: Width of an outline marker's circle, as a fraction of its diameter.
OUTLINE_WIDTH = 0.08
#: Diameter (µm) of a dot marker (small enough to leave the cell visible at review zoom).
DOT_DIAMETER_UM = 3.0
#: Metadata key under which layers keep the objects widgets need (slide, result).
META_SLIDE = "hemascope_slide"
META_RESULT = "hemascope_result"


def physical_scale(mpp: float | None) -> tuple[float, float]:
    """The ``(row, col)`` layer scale in µm per pixel (1.0 when µm/px is unknown).

    Parameters
    ----------
    mpp
        Micrometres per level-0 pixel, or ``None``.

    Returns
    -------
    tuple of float
        ``(mpp, mpp)``, or ``(1.0, 1.0)`` so that unknown-scale images still line up with their
        cells in pixel units.
    """
    value = float(mpp) if mpp else 1.0
    return (value, value)


def _units(mpp: float | None) -> tuple[str, str]:
    return ("micrometer", "micrometer") if mpp else ("pixel", "pixel")


def slide_layer_data(slide: Any, name: str | None = None) -> LayerDataTuple:
    """A multiscale RGB Image layer of a :class:`hemascope.io.Slide`.

    Parameters
    ----------
    slide
        An open slide (levels as dask arrays, level 0 first). Nothing is read: napari fetches
        tiles of the level it displays.
    name
        Layer name; the slide's file name by default.

    Returns
    -------
    LayerDataTuple
        ``(levels, kwargs, "image")`` with ``scale`` in µm, ``contrast_limits=(0, 255)`` (never
        computed from pixels) and the slide kept in ``metadata["hemascope_slide"]``.
    """
    levels = list(slide.levels)
    kwargs = {
        "name": name or slide.name,
        "rgb": True,
        "multiscale": True,
        "contrast_limits": (0, 255),
        "scale": physical_scale(slide.mpp),
        "units": _units(slide.mpp),
        "metadata": {
            META_SLIDE: slide,
            "path": str(slide.path) if slide.path is not None else None,
            "mpp": slide.mpp,
            "mpp_source": slide.mpp_source,
            "format": slide.format,
        },
    }
    return (levels, kwargs, "image")


def class_colors(classes: Sequence[str] | pd.Series, alpha: float = 1.0) -> np.ndarray:
    """RGBA colours ``(n, 4)`` for a sequence of class names, from the one palette.

    Parameters
    ----------
    classes
        Class names (unknown names get the "unclassified" grey).
    alpha
        Opacity of every colour.

    Returns
    -------
    numpy.ndarray
        ``float32`` array of shape ``(len(classes), 4)``.
    """
    codes, uniques = pd.factorize(pd.Series(classes, dtype="object").fillna("unclassified"))
    table = np.array([class_rgba(str(u), alpha) for u in uniques], dtype=np.float32).reshape(-1, 4)
    return table[codes] if len(codes) else np.zeros((0, 4), np.float32)


def cell_diameters_um(cells: pd.DataFrame) -> np.ndarray:
    """Equivalent-circle diameters (µm) from ``area_um2``, or the default diameter."""
    if "area_um2" in cells.columns:
        area = pd.to_numeric(cells["area_um2"], errors="coerce").to_numpy(dtype=float)
        diam = 2.0 * np.sqrt(np.clip(area, 0.0, None) / np.pi)
        return np.where(np.isfinite(diam) & (diam > 0), diam, DEFAULT_CELL_DIAMETER_UM)
    return np.full(len(cells), DEFAULT_CELL_DIAMETER_UM)


def legend(classes: Sequence[str] = CELL_CLASSES) -> dict[str, str]:
    """``{class: hex colour}`` of the palette, in model order (what the legend widgets show)."""
    return {c: CLASS_COLORS[c] for c in (*classes, "unclassified") if c in CLASS_COLORS}


def cells_layer_data(
    cells: pd.DataFrame,
    mpp: float | None,
    *,
    name: str = CELLS_LAYER_NAME,
    metadata: dict[str, Any] | None = None,
) -> LayerDataTuple:
    """A Points layer of cells, coloured by class, sized in µm, with the cell table as features.

    Parameters
    ----------
    cells
        The cell table: centroid ``row``/``col`` in level-0 pixels, optionally ``class`` and
        ``area_um2`` (all columns become the layer's ``features``).
    mpp
        µm per level-0 pixel of the slide the cells were found in.
    name
        Layer name.
    metadata
        Extra layer metadata (e.g. the :class:`SlideResult` for the report and gallery).

    Returns
    -------
    LayerDataTuple
        ``(coords, kwargs, "points")``; one point per cell (not one polygon per cell), so 100k
        cells stay interactive.
    """
    missing = [c for c in CENTROID_COLUMNS if c not in cells.columns]
    if missing:
        raise InvalidInputError(f"cell table lacks centroid columns {missing}")
    features = cells.reset_index(drop=True).copy()
    if "class" not in features.columns:
        features["class"] = "unclassified"
    features["class"] = features["class"].fillna("unclassified").astype(str)
    coords = features[list(CENTROID_COLUMNS)].to_numpy(dtype=float)
    scale = physical_scale(mpp)
    size_px = OUTLINE_MARGIN * cell_diameters_um(features) / scale[0]
    present = list(dict.fromkeys(features["class"]))
    colors = class_colors(features["class"])
    kwargs = {
        "name": name,
        "features": features,
        # outline style: a thin circle in the class colour around the cell, the cell itself left
        # visible (the fill keeps the class colour with alpha 0, for the dot style)
        "face_color": np.concatenate([colors[:, :3], np.zeros((len(colors), 1), np.float32)], axis=1),
        "border_color": colors,
        "border_width": OUTLINE_WIDTH,
        "border_width_is_relative": True,
        "symbol": "disc",
        "size": size_px,
        "scale": scale,
        "units": _units(mpp),
        "opacity": 1.0,
        "metadata": {"legend": legend_of(present), "mpp": mpp, "marker_style": "outline",
                     **(metadata or {})},
    }
    return (coords, kwargs, "points")


def legend_of(classes: Sequence[str]) -> dict[str, str]:
    """``{class: hex colour}`` for the classes of a result, palette order first, then the others."""
    from hemascope.classes import class_color

    known = [c for c in CLASS_COLORS if c in classes]
    return {c: class_color(c) for c in (*known, *(c for c in classes if c not in CLASS_COLORS))}


def set_marker_style(layer: Any, style: str) -> None:
    """Draw a cells Points layer as rings around the cells (``"outline"``) or small dots (``"dot"``).

    Outlines are wider than the cells so the cell itself stays visible at review zoom; dots are
    :data:`DOT_DIAMETER_UM` wide whatever the zoom level.
    """
    if style not in ("outline", "dot"):
        raise InvalidInputError(f"marker style must be 'outline' or 'dot', got {style!r}")
    mpp = layer.metadata.get("mpp")
    px = physical_scale(mpp)[0]
    colors = class_colors(layer.features["class"])
    layer.symbol = "disc"
    if style == "outline":
        layer.size = OUTLINE_MARGIN * cell_diameters_um(layer.features) / px
        layer.face_color = np.concatenate([colors[:, :3], np.zeros((len(colors), 1), np.float32)], axis=1)
        layer.border_width = OUTLINE_WIDTH
    else:
        layer.size = DOT_DIAMETER_UM / px
        layer.face_color = colors
        layer.border_width = 0.0
    layer.border_color = colors
    layer.metadata = {**layer.metadata, "marker_style": style}


def with_attention(cells: pd.DataFrame, subtype: dict[str, Any] | None) -> pd.DataFrame:
    """The cell table plus an ``attention`` column from a subtype prediction's most-attended cells.

    Parameters
    ----------
    cells
        The cell table (with an ``id`` column, else matched by row position).
    subtype
        The result's subtype dictionary (``top_cells`` ids or ``top_indices``, and
        ``top_weights``); ``None`` or no weights returns ``cells`` unchanged.

    Returns
    -------
    pandas.DataFrame
        A copy with ``attention`` (NaN for cells the model did not single out), so the gallery can
        sort by it.
    """
    weights = list((subtype or {}).get("top_weights") or [])
    if not weights:
        return cells
    out = cells.copy()
    attention = np.full(len(out), np.nan)
    ids = (subtype or {}).get("top_cells") or []
    if "id" in out.columns and len(ids) == len(weights):
        position = pd.Series(np.arange(len(out)), index=out["id"].to_numpy())
        rows = position.reindex(ids).to_numpy()
    else:
        rows = np.asarray((subtype or {}).get("top_indices") or [], dtype=float)
    for row, weight in zip(rows, weights, strict=False):
        if np.isfinite(row) and 0 <= row < len(out):
            attention[int(row)] = float(weight)
    out["attention"] = attention
    return out


def blast_heatmap(
    cells: pd.DataFrame,
    shape: tuple[int, int],
    mpp: float | None,
    *,
    bin_um: float = 100.0,
    column: str = "prob_blast",
) -> tuple[np.ndarray, float, float]:
    """Mean blast probability per square bin: a low-resolution map of where blasts are.

    Parameters
    ----------
    cells
        Cell table with centroid ``row``/``col`` (level-0 px) and ``column``.
    shape
        Level-0 ``(rows, cols)`` of the slide.
    mpp
        µm per level-0 pixel (``None``: bins are ``bin_um`` pixels).
    bin_um
        Side of a bin in µm.
    column
        Probability column to average.

    Returns
    -------
    heatmap, bin_size, offset
        ``float32`` ``(ceil(rows/b), ceil(cols/b))`` mean probability (0 where no cell), the bin
        side in world units (µm) and the world offset of the first bin centre.
    """
    if bin_um <= 0:
        raise InvalidInputError(f"bin_um must be positive, got {bin_um}")
    px = physical_scale(mpp)[0]
    bin_px = max(bin_um / px, 1.0)
    n_rows = max(int(np.ceil(shape[0] / bin_px)), 1)
    n_cols = max(int(np.ceil(shape[1] / bin_px)), 1)
    total = np.zeros(n_rows * n_cols)
    count = np.zeros(n_rows * n_cols)
    if len(cells) and column in cells.columns:
        r = np.clip((cells["row"].to_numpy(float) // bin_px).astype(int), 0, n_rows - 1)
        c = np.clip((cells["col"].to_numpy(float) // bin_px).astype(int), 0, n_cols - 1)
        flat = r * n_cols + c
        values = np.nan_to_num(cells[column].to_numpy(float))
        np.add.at(total, flat, values)
        np.add.at(count, flat, 1.0)
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    return mean.reshape(n_rows, n_cols).astype(np.float32), bin_px * px, (bin_px - 1) / 2 * px


def heatmap_layer_data(
    cells: pd.DataFrame, shape: tuple[int, int], mpp: float | None, *, bin_um: float = 100.0
) -> LayerDataTuple:
    """An Image layer of :func:`blast_heatmap`: hidden at first (tick it in the layer list), then
    translucent (magma colormap, limits 0–1, smooth interpolation) so the smear shows through."""
    heat, size, offset = blast_heatmap(cells, shape, mpp, bin_um=bin_um)
    kwargs = {
        "name": "blast probability",
        "colormap": "magma",
        "opacity": 0.35,
        "visible": False,
        "interpolation2d": "linear",
        "blending": "translucent",
        "contrast_limits": (0.0, 1.0),
        "scale": (size, size),
        "translate": (offset, offset),
        "units": _units(mpp),
        "metadata": {"bin_um": size},
    }
    return (heat, kwargs, "image")


def smear_mask_layer_data(mask: np.ndarray, downsample: float, mpp: float | None) -> LayerDataTuple:
    """An Image layer of the smear mask computed at ``downsample`` × level-0 pixels.

    An Image (not Labels) layer: one low-resolution binary overlay needs no label editing tools,
    and it is several times cheaper for napari to add.
    """
    px = physical_scale(mpp)[0]
    step = float(downsample) * px
    kwargs = {
        "name": "smear mask",
        "colormap": "cyan",
        "contrast_limits": (0, 1),
        "visible": False,  # where cells were looked for; tick it in the layer list to see it
        "opacity": 0.15,
        "blending": "additive",
        "scale": (step, step),
        "translate": ((downsample - 1) / 2 * px,) * 2,
        "units": _units(mpp),
    }
    return (np.asarray(mask).astype(np.uint8), kwargs, "image")


def open_label_pyramid(path: str | Path) -> list[Any]:
    """The levels of an OME-Zarr label image (v0.4 or v0.5) as dask arrays, finest first.

    Parameters
    ----------
    path
        A label image group holding ``multiscales`` (e.g. ``masks.zarr/labels/cells``), or an
        image/label container whose ``labels`` group lists label images (the first is used).

    Returns
    -------
    list of dask.array.Array
        One array per level, in the order of the ``multiscales`` datasets.
    """
    import dask.array as da
    import zarr

    from hemascope.errors import SlideError, SlideNotFoundError

    path = Path(path)
    if not path.exists():
        raise SlideNotFoundError(f"label pyramid not found: {path}")
    try:
        group = zarr.open_group(str(path), mode="r")
    except Exception as exc:  # zarr raises many types for a non-group
        raise SlideError(f"{path} is not a zarr group: {exc}") from exc
    for _ in range(3):  # container -> labels/ -> labels/<name>
        attrs: dict[str, Any] = dict(group.attrs)  # JSON from disk: checked as it is used
        ome = attrs.get("ome", attrs)
        if "labels" in group:  # an image container: go to its labels
            node = group["labels"]
        elif ome.get("labels"):  # the labels group: take the first label image
            node = group[ome["labels"][0]]
        elif ome.get("multiscales"):
            datasets = ome["multiscales"][0]["datasets"]
            return [da.from_zarr(group[d["path"]]) for d in datasets]
        else:
            break
        if not isinstance(node, zarr.Group):  # an array where a group belongs
            break
        group = node
    raise SlideError(f"{path} has no OME-Zarr label multiscales")


def labels_layer_data(
    levels: Sequence[Any] | np.ndarray, mpp: float | None, *, slide_path: str | Path | None = None
) -> LayerDataTuple:
    """A Labels layer of cell masks: multiscale when given a pyramid (list), else one array.

    ``slide_path`` (kept in the metadata) lets the OME-Zarr writer store the masks with their image.
    """
    multiscale = isinstance(levels, list | tuple) and len(levels) > 1
    data = list(levels) if multiscale else (levels[0] if isinstance(levels, list | tuple) else levels)
    kwargs = {
        "name": "cell masks",
        "multiscale": multiscale,
        "opacity": 0.6,
        "scale": physical_scale(mpp),
        "units": _units(mpp),
        # outlines only (set on the layer by show_results: napari takes no contour argument)
        "metadata": {"mpp": mpp, "slide_path": str(slide_path) if slide_path else None, "contour": 1},
    }
    return (data, kwargs, "labels")
