"""napari reader hooks: whole-slide images and QuPath GeoJSON.

Both hooks only look at the path (cheap) and return ``None`` for files they do not handle, so
napari can try other plugins; reading errors surface as :class:`hemascope.errors.HemascopeError`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hemascope.classes import class_rgba
from hemascope.io.formats import SLIDE_SUFFIXES, ZARR_MARKERS
from hemascope.napari.layers import (
    LayerDataTuple,
    cells_layer_data,
    physical_scale,
    slide_layer_data,
)

if TYPE_CHECKING:
    from hemascope.export.geojson import GeoJSONObject

ReaderFunction = Callable[[str | list[str]], list[LayerDataTuple]]



def _is_slide_path(path: Path) -> bool:
    if path.is_dir():
        return path.suffix.lower() == ".zarr" or any((path / m).exists() for m in ZARR_MARKERS)
    return path.suffix.lower() in SLIDE_SUFFIXES


def read_slides(path: str | list[str]) -> list[LayerDataTuple]:
    """Open each slide lazily as one multiscale RGB Image layer (see :func:`slide_layer_data`)."""
    from hemascope.io import open_slide

    paths = path if isinstance(path, list | tuple) else [path]
    return [slide_layer_data(open_slide(p), name=Path(p).name) for p in paths]


def get_slide_reader(path: str | list[str]) -> ReaderFunction | None:
    """npe2 reader hook for slides: :func:`read_slides` if every path looks like a slide.

    Parameters
    ----------
    path
        A path or a list of paths chosen by the user.

    Returns
    -------
    callable or None
        The reader, or ``None`` when a path is not a slide format hemascope reads.
    """
    paths = path if isinstance(path, list | tuple) else [path]
    return read_slides if all(_is_slide_path(Path(p)) for p in paths) else None


def _looks_like_geojson(path: Path) -> bool:
    if path.suffix.lower() == ".geojson":
        return True
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    with open(path, "rb") as fh:
        head = fh.read(4096)
    return b'"Feature' in head


#: Measurements holding a detection's exact level-0 centroid (QuPath-style names).
CENTROID_X_PX, CENTROID_Y_PX = "Centroid X px", "Centroid Y px"
_SHAPE_TYPES = {"Polygon": "polygon", "MultiPolygon": "polygon", "LineString": "path",
                "MultiLineString": "path"}


def _centroid(obj: GeoJSONObject) -> tuple[float, float]:
    m = obj.measurements
    if CENTROID_X_PX in m and CENTROID_Y_PX in m:
        return (m[CENTROID_Y_PX], m[CENTROID_X_PX])
    ring = obj.coordinates[0]
    if len(ring) > 1 and np.array_equal(ring[0], ring[-1]):
        ring = ring[:-1]  # closed ring: the repeated vertex would bias the mean
    r, c = ring.mean(axis=0)
    return (float(r), float(c))


def _infer_mpp(objects: list[GeoJSONObject]) -> float | None:
    """µm/px from hemascope measurements (``x_um`` beside the pixel centroid), if present."""
    ratios = [o.measurements["x_um"] / o.measurements[CENTROID_X_PX] for o in objects
              if "x_um" in o.measurements and o.measurements.get(CENTROID_X_PX, 0) > 0]
    return float(np.median(ratios)) if ratios else None


def geojson_layer_data(
    objects: list[GeoJSONObject], *, name: str = "geojson", mpp: float | None = None
) -> list[LayerDataTuple]:
    """Layers for objects read by :func:`hemascope.export.read_geojson`.

    Detections (and QuPath cells) become one Points layer at their centroids, coloured by class,
    with class and measurements as features (exactly the written centroid when the file carries
    ``Centroid X px``/``Centroid Y px``, as hemascope's writer does). Annotations become one Shapes
    layer (polygons and paths; points as a Points layer).

    Parameters
    ----------
    objects
        :class:`hemascope.export.geojson.GeoJSONObject` list (level-0 ``(row, col)``).
    name
        Base layer name.
    mpp
        µm per level-0 pixel for the layer scale (default: inferred from the measurements, else
        pixels).

    Returns
    -------
    list of LayerDataTuple
    """
    mpp = mpp or _infer_mpp(objects)
    is_detection = [o.object_type in ("detection", "cell", "tile") for o in objects]
    detections = [o for o, d in zip(objects, is_detection, strict=True) if d]
    annotations = [o for o, d in zip(objects, is_detection, strict=True) if not d]
    layers: list[LayerDataTuple] = []
    if detections:
        rows = []
        for o in detections:
            row, col = _centroid(o)
            rows.append({"row": row, "col": col, "class": o.classification or "unclassified",
                         **{k: v for k, v in o.measurements.items()
                            if k not in (CENTROID_X_PX, CENTROID_Y_PX)}})
        cells = pd.DataFrame(rows)
        layers.append(cells_layer_data(cells, mpp, name=f"{name} detections"))
    shapes = [(o, ring) for o in annotations if o.geometry_type in _SHAPE_TYPES
              for ring in o.coordinates[:1]]
    if shapes:
        colors = [class_rgba(o.classification or "unclassified", 0.6) for o, _ in shapes]
        kwargs = {
            "name": f"{name} annotations",
            "shape_type": [_SHAPE_TYPES[o.geometry_type] for o, _ in shapes],
            "edge_color": colors,
            "face_color": [(*c[:3], 0.15) for c in colors],
            "edge_width": 2.0 / physical_scale(mpp)[0],
            "scale": physical_scale(mpp),
            "features": pd.DataFrame({"class": [o.classification or "" for o, _ in shapes],
                                      "id": [o.id or "" for o, _ in shapes]}),
        }
        layers.append(([ring for _, ring in shapes], kwargs, "shapes"))
    points = [o for o in annotations if o.geometry_type in ("Point", "MultiPoint")]
    if points:
        coords = np.concatenate([o.coordinates[0] for o in points])
        layers.append((coords, {"name": f"{name} points", "scale": physical_scale(mpp)}, "points"))
    return layers


def read_geojson_layers(path: str | list[str], *, mpp: float | None = None) -> list[LayerDataTuple]:
    """Read QuPath GeoJSON files into layers (see :func:`geojson_layer_data`)."""
    from hemascope.export import read_geojson

    paths = path if isinstance(path, list | tuple) else [path]
    layers: list[LayerDataTuple] = []
    for p in paths:
        layers.extend(geojson_layer_data(read_geojson(p), name=Path(p).stem, mpp=mpp))
    return layers


def get_geojson_reader(path: str | list[str]) -> ReaderFunction | None:
    """npe2 reader hook for QuPath GeoJSON (``.geojson``, or ``.json`` holding features).

    Parameters
    ----------
    path
        A path or a list of paths chosen by the user.

    Returns
    -------
    callable or None
        :func:`read_geojson_layers`, or ``None`` for other files.
    """
    paths = path if isinstance(path, list | tuple) else [path]
    return read_geojson_layers if all(_looks_like_geojson(Path(p)) for p in paths) else None
