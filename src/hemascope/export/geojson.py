"""QuPath-compatible GeoJSON: cells out as detections, annotations (or detections) back in.

Written files are a ``FeatureCollection`` of QuPath objects: ``objectType: "cell"`` with the cell
outline as ``geometry`` and the nucleus outline as ``nucleusGeometry`` when the nucleus masks are
given (else ``"detection"``), a ``classification`` (display name and ``[r, g, b]`` colour from
:mod:`hemascope.classes`) and ``measurements`` under QuPath-style names (``Centroid X µm``,
``Cell: Area µm^2``, ``Nucleus: Area µm^2``, ``Probability: blast``, ...; see
:data:`MEASUREMENT_NAMES`). Coordinates are level-0 pixels in GeoJSON's ``(x, y)`` order (QuPath's
pixel space of the same image); hemascope's ``(row, col)`` is swapped at this border only. Floats are written with Python's shortest exact
representation, so write → read returns the same numbers.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hemascope.classes import CLASS_LABELS, class_color
from hemascope.errors import InvalidInputError
from hemascope.files import atomic_write_text

ROW, COL = "row", "col"
"""Cell-table columns holding the level-0 centroid ``(row, col)``."""

_NAME_TO_CLASS = {label.lower(): key for key, label in CLASS_LABELS.items()}
_SKIP_MEASUREMENTS = {ROW, COL, "class", "label", "id", "region", "bbox_min_row", "bbox_min_col",
                      "bbox_max_row", "bbox_max_col"}

#: Cell-table column → QuPath-style measurement name (other numeric columns keep their names;
#: ``prob_<class>`` becomes ``Probability: <class>``).
MEASUREMENT_NAMES: dict[str, str] = {
    "x_um": "Centroid X µm",
    "y_um": "Centroid Y µm",
    "area_um2": "Cell: Area µm^2",
    "perimeter_um": "Cell: Perimeter µm",
    "circularity": "Cell: Circularity",
    "nucleus_area_um2": "Nucleus: Area µm^2",
    "nc_ratio": "Nucleus/Cell area ratio",
    "confidence": "Classification confidence",
    **{f"{part}_mean_{c}": f"{part.capitalize()}: {name} mean"
       for part in ("cell", "nucleus", "cytoplasm") for c, name in (("r", "Red"), ("g", "Green"), ("b", "Blue"))},
}
#: Measurements holding the exact level-0 centroid in pixels (what hemascope's reader restores).
CENTROID_PX = ("Centroid X px", "Centroid Y px")
#: Columns also written under their own names, so older hemascope readers find the µm scale.
_KEPT_NAMES = ("x_um", "y_um")


def measurement_name(column: str) -> str:
    """The QuPath-style measurement name of a cell-table column."""
    if column.startswith("prob_"):
        return f"Probability: {column[5:]}"
    return MEASUREMENT_NAMES.get(column, column)


@dataclass
class GeoJSONObject:
    """One feature read from a GeoJSON file, in hemascope's ``(row, col)`` convention.

    Attributes
    ----------
    object_type
        QuPath ``objectType`` (``"annotation"``, ``"detection"``, ``"cell"``, ...; ``"annotation"``
        when the file does not say).
    geometry_type
        GeoJSON geometry type (``"Polygon"``, ``"MultiPolygon"``, ``"Point"``, ...).
    coordinates
        One ``(n, 2)`` float array of ``(row, col)`` level-0 pixels per ring / line / point set
        (polygon exteriors and holes in file order; a Point is a ``(1, 2)`` array).
    classification
        hemascope class key when the name matches one (``"blast"``), else the name as written,
        or ``None``.
    color
        Classification colour as ``(r, g, b)`` ints, or ``None``.
    measurements
        Measurement name to value.
    id
        Feature id (``None`` when absent).
    properties
        All properties as written.
    """

    object_type: str
    geometry_type: str
    coordinates: list[np.ndarray]
    classification: str | None = None
    color: tuple[int, int, int] | None = None
    measurements: dict[str, float] = field(default_factory=dict)
    id: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)


# --- writing -----------------------------------------------------------------------------------
def _rgb(name: str) -> list[int]:
    h = class_color(name).lstrip("#")
    return [int(h[i : i + 2], 16) for i in (0, 2, 4)]


def _circle(row: float, col: float, radius: float, n_vertices: int) -> list[list[float]]:
    angles = np.linspace(0.0, 2.0 * np.pi, n_vertices, endpoint=False)
    ring = [[float(col + radius * np.cos(a)), float(row + radius * np.sin(a))] for a in angles]
    return ring + [ring[0]]


def _radius_px(cells: pd.DataFrame, mpp: float | None) -> np.ndarray:
    if "area_px" in cells:
        area = cells["area_px"].to_numpy(float)
    elif "area_um2" in cells and mpp:
        area = cells["area_um2"].to_numpy(float) / (mpp * mpp)
    else:
        area = np.full(len(cells), np.pi * (5.0 / (mpp or 0.5)) ** 2)  # a 10 µm cell
    return np.sqrt(np.maximum(area, 1.0) / np.pi)


def simplify_ring(points: np.ndarray, tolerance: float, passes: int = 4) -> np.ndarray:
    """Drop vertices of a closed ``(n, 2)`` ring that lie within ``tolerance`` of their neighbours' chord.

    A vectorised stand-in for Douglas-Peucker (``skimage.measure.approximate_polygon`` loops in
    Python, seconds per thousand cells): each pass removes every other vertex whose distance to
    the chord of its two neighbours is below ``tolerance``, so no two neighbours go in one pass.
    """
    ring = np.asarray(points, dtype=float)
    closed = len(ring) > 1 and np.array_equal(ring[0], ring[-1])
    if closed:
        ring = ring[:-1]
    for _ in range(passes):
        n = len(ring)
        if n <= 8:
            break
        prev, nxt = np.roll(ring, 1, axis=0), np.roll(ring, -1, axis=0)
        chord = nxt - prev
        length = np.hypot(chord[:, 0], chord[:, 1])
        cross = np.abs(chord[:, 0] * (ring[:, 1] - prev[:, 1]) - chord[:, 1] * (ring[:, 0] - prev[:, 0]))
        distance = np.where(length > 0, cross / np.maximum(length, 1e-12), np.hypot(*(ring - prev).T))
        drop = (distance <= tolerance) & (np.arange(n) % 2 == 1)
        if not drop.any():
            break
        ring = ring[~drop]
    return np.vstack([ring, ring[:1]]) if closed else ring


def _ring(mask: np.ndarray, r0: float, c0: float, tolerance: float) -> list[list[float]] | None:
    """Outer contour of a boolean mask whose pixel (0, 0) is level-0 ``(r0, c0)``, as ``(x, y)``."""
    from skimage.measure import find_contours

    contours = find_contours(np.pad(mask, 1).astype(np.uint8), 0.5)
    if not contours:
        return None
    contour = max(contours, key=len)
    contour = simplify_ring(contour, tolerance) if tolerance > 0 else contour
    ring = [[float(c - 1 + c0), float(r - 1 + r0)] for r, c in contour]
    if ring[0] != ring[-1]:
        ring.append(ring[0])
    return ring


_BBOX = ("bbox_min_row", "bbox_min_col", "bbox_max_row", "bbox_max_col")
_READ_BLOCK = 2048
"""Side (px) of the blocks a lazy label image is read in when outlining cells."""


def _mask_rings(labels: Any, cells: pd.DataFrame, label_column: str, offset: tuple[int, int],
                tolerance: float) -> dict[int, list[list[float]]]:
    """Outer contour of each cell's label, keyed by label value.

    With the cell table's level-0 bounding boxes, only a small window per cell is read (so
    ``labels`` may be a lazy whole-slide zarr or dask array); otherwise every label of the
    in-memory image is traced.
    """
    from skimage.measure import regionprops

    rings: dict[int, list[list[float]]] = {}
    if all(c in cells for c in _BBOX) and label_column in cells:
        rows, cols = labels.shape[:2]
        table = cells[[label_column, *_BBOX]].to_numpy(dtype=np.int64)
        # windows in label-image pixels, one pixel of margin
        win = np.stack([np.maximum(table[:, 1] - offset[0] - 1, 0), np.maximum(table[:, 2] - offset[1] - 1, 0),
                        np.minimum(table[:, 3] - offset[0] + 1, rows), np.minimum(table[:, 4] - offset[1] + 1, cols)],
                       axis=1)
        # read the image once per block of _READ_BLOCK pixels (a lazy store decompresses each chunk
        # once, not once per cell), then cut every cell's window out of the block in memory
        keys = (win[:, 0] // _READ_BLOCK) * (cols // _READ_BLOCK + 1) + win[:, 1] // _READ_BLOCK
        for key in np.unique(keys):
            members = np.flatnonzero(keys == key)
            boxes = win[members]
            r0, c0 = boxes[:, 0].min(), boxes[:, 1].min()
            r1, c1 = boxes[:, 2].max(), boxes[:, 3].max()
            if r1 <= r0 or c1 <= c0:
                continue
            block = np.asarray(labels[r0:r1, c0:c1])
            for i, (a0, b0, a1, b1) in zip(members, boxes, strict=True):
                if a1 <= a0 or b1 <= b0:
                    continue
                window = block[a0 - r0 : a1 - r0, b0 - c0 : b1 - c0] == int(table[i, 0])
                ring = _ring(window, a0 + offset[0], b0 + offset[1], tolerance) if window.any() else None
                if ring is not None:
                    rings[int(table[i, 0])] = ring
        return rings
    for region in regionprops(np.asarray(labels)):
        r0, c0, _, _ = region.bbox
        ring = _ring(region.image, r0 + offset[0], c0 + offset[1], tolerance)
        if ring is not None:
            rings[int(region.label)] = ring
    return rings


def _measurements(row: pd.Series, columns: list[str]) -> dict[str, float]:
    out = {CENTROID_PX[0]: float(row[COL]), CENTROID_PX[1]: float(row[ROW])}
    for name in columns:
        value = row[name]
        if isinstance(value, (bool, np.bool_)):
            number = float(value)
        elif isinstance(value, (int, float, np.integer, np.floating)) and np.isfinite(value):
            number = float(value)
        else:
            continue
        out[measurement_name(name)] = number
        if name in _KEPT_NAMES:
            out[name] = number
    return out


def cells_to_geojson(
    cells: pd.DataFrame,
    *,
    labels: np.ndarray | None = None,
    nuclei: np.ndarray | None = None,
    labels_offset: tuple[int, int] = (0, 0),
    label_column: str = "id",
    mpp: float | None = None,
    n_vertices: int = 24,
    tolerance: float = 0.5,
) -> dict[str, Any]:
    """Convert a cell table to a QuPath-compatible GeoJSON ``FeatureCollection`` of detections.

    Parameters
    ----------
    cells
        Cell table with level-0 ``row``, ``col``; optional ``class``, ``label`` and numeric columns
        (written as measurements).
    labels
        Optional instance-label image (numpy, or a lazy zarr/dask array when the table has
        ``bbox_*`` columns) whose values match ``cells[label_column]``; each cell is then outlined
        by its mask contour. Cells without a mask (or all cells when ``labels`` is
        ``None``) become circles of the cell's area (``area_px``, or ``area_um2`` with ``mpp``).
    nuclei
        Optional nucleus-label image like ``labels`` (value = the cell's label): cells with a
        nucleus outline become QuPath ``cell`` objects with a ``nucleusGeometry``.
    labels_offset
        Level-0 ``(row, col)`` of the label image's top-left pixel.
    label_column
        Column of ``cells`` holding each cell's label value.
    mpp
        µm per level-0 pixel (for ``area_um2``).
    n_vertices
        Vertices of a circle outline.
    tolerance
        Contour simplification tolerance in pixels (0 keeps every contour vertex).

    Returns
    -------
    dict
        The FeatureCollection, ready for :func:`json.dumps`.
    """
    missing = [c for c in (ROW, COL) if c not in cells]
    if missing:
        raise InvalidInputError(f"the cell table has no {missing} column(s) (level-0 centroid)")
    rings = _mask_rings(labels, cells, label_column, labels_offset, tolerance) if labels is not None else {}
    nucleus_rings = (_mask_rings(nuclei, cells, label_column, labels_offset, tolerance)
                     if nuclei is not None else {})
    radii = _radius_px(cells, mpp)
    numeric = [c for c in cells.columns if c not in _SKIP_MEASUREMENTS and pd.api.types.is_numeric_dtype(cells[c])]
    features = []
    for i, (_, row) in enumerate(cells.iterrows()):
        ring = None
        if rings and label_column in cells:
            ring = rings.get(int(row[label_column]))
        if ring is None:
            ring = _circle(float(row[ROW]), float(row[COL]), float(radii[i]), n_vertices)
        nucleus = nucleus_rings.get(int(row[label_column])) if nucleus_rings and label_column in cells else None
        props: dict[str, Any] = {"objectType": "cell" if nucleus else "detection", "isLocked": False}
        name = row["class"] if "class" in cells else None
        if isinstance(name, str) and name:
            props["classification"] = {"name": CLASS_LABELS.get(name, name), "color": _rgb(name)}
        props["measurements"] = _measurements(row, numeric)
        feature_id = str(uuid.uuid5(uuid.NAMESPACE_OID, f"hemascope-cell-{row.get('id', i)}"))
        feature = {"type": "Feature", "id": feature_id, "geometry": {"type": "Polygon", "coordinates": [ring]}}
        if nucleus:
            feature["nucleusGeometry"] = {"type": "Polygon", "coordinates": [nucleus]}
        feature["properties"] = props
        features.append(feature)
    return {"type": "FeatureCollection", "features": features}


def write_geojson(path: str | Path, cells: pd.DataFrame, **kwargs: Any) -> Path:
    """Write cells as QuPath detections to a GeoJSON file, atomically.

    Parameters
    ----------
    path
        Destination (``.geojson``).
    cells
        Cell table (see :func:`cells_to_geojson`).
    **kwargs
        Passed to :func:`cells_to_geojson` (``labels``, ``mpp``, ...).

    Returns
    -------
    Path
        ``path``.
    """
    return atomic_write_text(path, json.dumps(cells_to_geojson(cells, **kwargs)))


# --- reading -----------------------------------------------------------------------------------
_MAX_GEOMETRY_DEPTH = 8
"""Most nested GeometryCollections read (QuPath writes none)."""

_POINT_DEPTH = {"Point": 0, "MultiPoint": 1, "LineString": 1, "Polygon": 2, "MultiLineString": 2,
                "MultiPolygon": 3}


def _xy(part: Any, kind: str) -> np.ndarray:
    """One ring/line/point list as finite ``(n, 2)`` float ``(x, y)``; anything else is an error."""
    if not isinstance(part, list) or not all(
        isinstance(p, list) and len(p) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in p)
        for p in part
    ):
        raise InvalidInputError(
            f"a {kind} geometry needs [x, y] number pairs (2-D), got {str(part)[:80]}"
        )
    xy = np.asarray(part, dtype=float).reshape(-1, 2)
    if not np.isfinite(xy).all():
        raise InvalidInputError(f"a {kind} geometry has non-finite coordinates")
    return xy


def _rings_of(geometry: Any, depth: int = 0) -> list[np.ndarray]:
    if not isinstance(geometry, dict):
        raise InvalidInputError("a geometry must be a JSON object")
    kind, coords = geometry.get("type"), geometry.get("coordinates")
    if kind == "GeometryCollection":
        members = geometry.get("geometries", [])
        if depth >= _MAX_GEOMETRY_DEPTH or not isinstance(members, list):
            raise InvalidInputError("a GeometryCollection is nested too deeply or malformed")
        return [r for g in members for r in _rings_of(g, depth + 1)]
    if not isinstance(kind, str) or kind not in _POINT_DEPTH:
        raise InvalidInputError(f"unsupported GeoJSON geometry type {str(kind)[:40]!r}")
    if coords is None:
        raise InvalidInputError(f"a {kind} geometry has no coordinates")
    nesting = _POINT_DEPTH[kind]
    if nesting == 0:
        parts = [[coords]]
    elif nesting == 1:
        parts = [coords]
    elif nesting == 2:
        parts = coords
    else:
        if not isinstance(coords, list) or not all(isinstance(p, list) for p in coords):
            raise InvalidInputError(f"a {kind} geometry needs a list of polygons")
        parts = [ring for polygon in coords for ring in polygon]
    if not isinstance(parts, list):
        raise InvalidInputError(f"a {kind} geometry needs a list of coordinate lists")
    return [_xy(part, kind)[:, ::-1].copy() for part in parts]  # (x, y) -> (row, col)


def _parse_color(value: Any) -> tuple[int, int, int] | None:
    if isinstance(value, list | tuple) and len(value) >= 3:
        rgb = value[:3]
        if not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            and 0 <= v <= 255 for v in rgb
        ):
            raise InvalidInputError(f"a colour needs three numbers 0-255, got {str(value)[:60]}")
        return (int(rgb[0]), int(rgb[1]), int(rgb[2]))
    if isinstance(value, int) and not isinstance(value, bool):  # QuPath's packed ARGB integer
        value &= 0xFFFFFF
        return ((value >> 16) & 255, (value >> 8) & 255, value & 255)
    return None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _parse_measurements(value: Any) -> dict[str, float]:
    if isinstance(value, dict):
        return {str(k): float(v) for k, v in value.items() if _number(v)}
    if isinstance(value, list):  # older QuPath: [{"name": ..., "value": ...}]
        return {
            str(m["name"]): float(m["value"])
            for m in value
            if isinstance(m, dict) and "name" in m and _number(m.get("value"))
        }
    return {}


def _parse_feature(feature: Any) -> GeoJSONObject:
    if (
        not isinstance(feature, dict)
        or feature.get("type") != "Feature"
        or not isinstance(feature.get("geometry"), dict)
    ):
        raise InvalidInputError("expected GeoJSON Features with a geometry")
    props = feature.get("properties") or {}
    if not isinstance(props, dict):
        raise InvalidInputError("a Feature's properties must be a JSON object")
    cls = props.get("classification") or {}
    name = cls.get("name") if isinstance(cls, dict) else (cls if isinstance(cls, str) else None)
    color = _parse_color(cls.get("color", cls.get("colorRGB"))) if isinstance(cls, dict) else None
    key = _NAME_TO_CLASS.get(name.lower(), name) if isinstance(name, str) else None
    return GeoJSONObject(
        object_type=str(props.get("objectType", "annotation")),
        geometry_type=str(feature["geometry"].get("type")),
        coordinates=_rings_of(feature["geometry"]),
        classification=key,
        color=color,
        measurements=_parse_measurements(props.get("measurements")),
        id=None if feature.get("id") is None else str(feature["id"]),
        properties=props,
    )


def read_geojson(path: str | Path) -> list[GeoJSONObject]:
    """Read QuPath (or any) GeoJSON: a FeatureCollection, a Feature, or a list of Features.

    Parameters
    ----------
    path
        The ``.geojson`` / ``.json`` file.

    Returns
    -------
    list of GeoJSONObject
        One per feature, coordinates converted to level-0 ``(row, col)``.

    Raises
    ------
    InvalidInputError
        If the file is missing or not a regular file, not JSON (or nested too deeply), or not
        GeoJSON features: wrong types, non-2-D or non-finite coordinates, colours outside 0-255.
    """
    path = Path(path)
    try:
        if not path.is_file():
            raise FileNotFoundError(path)
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"GeoJSON file not found: {path}") from None
    except (ValueError, UnicodeDecodeError, RecursionError, OSError) as exc:
        raise InvalidInputError(f"{path} is not valid JSON ({type(exc).__name__}: {exc!s:.100})") from None
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        features = data.get("features") or []
        if not isinstance(features, list):
            raise InvalidInputError(f"{path}: 'features' is not a list")
    elif isinstance(data, dict) and data.get("type") == "Feature":
        features = [data]
    elif isinstance(data, list):
        features = data
    else:
        raise InvalidInputError(f"{path} is not a GeoJSON FeatureCollection, Feature or list of Features")
    try:
        return [_parse_feature(f) for f in features]
    except InvalidInputError as exc:
        raise InvalidInputError(f"{path}: {exc}") from None


__all__ = ["MEASUREMENT_NAMES", "GeoJSONObject", "cells_to_geojson", "measurement_name", "write_geojson",
           "read_geojson"]
