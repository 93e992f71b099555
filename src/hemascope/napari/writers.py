"""napari writer hooks: cells (Points) as QuPath GeoJSON or CSV, masks (Labels) as OME-Zarr.

The hooks turn layer data back into hemascope's plain data (a cell table in level-0 pixels, a
label array) and call the headless exporters of :mod:`hemascope.export`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hemascope.errors import InvalidInputError
from hemascope.napari.layers import CENTROID_COLUMNS
from hemascope.napari.reader import CENTROID_X_PX, CENTROID_Y_PX


def _layer_mpp(attributes: dict[str, Any]) -> float | None:
    mpp = (attributes.get("metadata") or {}).get("mpp")
    return float(mpp) if mpp else None


def points_to_cells(data: np.ndarray, attributes: dict[str, Any]) -> pd.DataFrame:
    """The cell table of a Points layer: its features with ``row``/``col`` from the point positions.

    Parameters
    ----------
    data
        ``(n, 2)`` point coordinates in level-0 pixels (the layer's data coordinates).
    attributes
        The layer's state (``features`` is used when present).

    Returns
    -------
    pandas.DataFrame
        One row per point; moved or added points take their current positions (``row``/``col``,
        and ``y_um``/``x_um`` when the layer's µm/px is known).
    """
    coords = np.asarray(data, dtype=float)
    if coords.ndim != 2 or coords.shape[1] < 2:
        raise InvalidInputError(f"expected (n, 2) point coordinates, got shape {coords.shape}")
    features = attributes.get("features")
    cells = (
        pd.DataFrame(features).reset_index(drop=True).copy()
        if features is not None and len(features) == len(coords)
        else pd.DataFrame(index=range(len(coords)))
    )
    cells[CENTROID_COLUMNS[0]] = coords[:, -2]
    cells[CENTROID_COLUMNS[1]] = coords[:, -1]
    mpp = _layer_mpp(attributes)
    if mpp:  # keep the µm positions consistent with moved or added points
        cells["y_um"] = coords[:, -2] * mpp
        cells["x_um"] = coords[:, -1] * mpp
    return cells


def write_points_geojson(path: str, data: Any, attributes: dict) -> list[str]:
    """Write a cells Points layer as QuPath detections (GeoJSON, level-0 ``(x, y)`` pixels).

    Each detection also carries its exact centroid as the ``Centroid X px`` / ``Centroid Y px``
    measurements, so reading the file back restores the points exactly.

    Parameters
    ----------
    path
        Destination ``.geojson``.
    data
        The layer's point coordinates (level-0 pixels).
    attributes
        The layer's state (features, metadata with ``mpp``).

    Returns
    -------
    list of str
        The written path.
    """
    from hemascope.export import write_geojson

    cells = points_to_cells(data, attributes)
    cells[CENTROID_X_PX] = cells[CENTROID_COLUMNS[1]]
    cells[CENTROID_Y_PX] = cells[CENTROID_COLUMNS[0]]
    return [str(write_geojson(path, cells, mpp=_layer_mpp(attributes)))]


def write_points_csv(path: str, data: Any, attributes: dict) -> list[str]:
    """Write a cells Points layer as a cell table CSV (features plus ``row``/``col``).

    Parameters
    ----------
    path
        Destination ``.csv``.
    data
        The layer's point coordinates (level-0 pixels).
    attributes
        The layer's state.

    Returns
    -------
    list of str
        The written path.
    """
    from hemascope.export import write_cell_table

    return [str(write_cell_table(path, points_to_cells(data, attributes)))]


def write_labels_zarr(path: str, layer_data: list[tuple[Any, dict, str]]) -> list[str]:
    """Write a Labels layer as OME-Zarr labels beside its RGB image.

    The image is the Image layer saved together with the labels, or else the slide file the
    labels were computed on (``metadata["slide_path"]``, set by :func:`show_results`).

    Parameters
    ----------
    path
        Destination directory (``.zarr``; ``.ome.zarr`` conventionally).
    layer_data
        ``(data, attributes, layer_type)`` of the selected layers: one ``labels`` and at most one
        ``image``.

    Returns
    -------
    list of str
        The written path.
    """
    from hemascope.export import write_labels_zarr as export_labels

    labels = [t for t in layer_data if t[2] == "labels"]
    images = [t for t in layer_data if t[2] == "image"]
    if len(labels) != 1:
        raise InvalidInputError(f"select exactly one labels layer to save, got {len(labels)}")
    data, attributes, _ = labels[0]
    mask = data[0] if isinstance(data, list | tuple) else data
    mpp = _layer_mpp(attributes)
    if images:
        image, image_attrs, _ = images[0]
        mpp = mpp or _layer_mpp(image_attrs)
    else:
        slide_path = (attributes.get("metadata") or {}).get("slide_path")
        if not slide_path or not Path(slide_path).exists():
            raise InvalidInputError(
                "OME-Zarr labels are stored with their image: select the image layer too"
            )
        from hemascope.io import open_slide

        image = open_slide(slide_path, mpp=mpp)
    return [str(export_labels(path, image, mask, mpp=mpp))]
