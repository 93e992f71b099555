"""Cell review without widgets: gallery order, thumbnails, reclassification, camera focus, labels CSV.

The Cell gallery widget is a thin Qt shell over these functions; scripts and tests call them
directly. Reviewed labels are saved as a CSV of crops that ``hemascope train cells`` reads
(columns ``path``, ``class``, ``domain``, ``mpp``, ``group``; see
:func:`hemascope.train.datasets.read_cell_table`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hemascope.classes import CELL_CLASSES, CLASS_COLORS, class_rgba
from hemascope.classify.decision import POSSIBLE_BLAST
from hemascope.errors import InvalidInputError
from hemascope.napari.layers import CENTROID_COLUMNS

#: Feature column set to ``True`` on cells a user reclassified.
REVIEWED_COLUMN = "reviewed"
#: Column keeping the model's class of a reviewed cell.
ORIGINAL_CLASS_COLUMN = "model_class"
#: Field of view (µm) of a gallery thumbnail and of a saved training crop.
THUMBNAIL_FIELD_UM = 24.0
CROP_FIELD_UM = 36.0


def sort_columns(cells: pd.DataFrame) -> list[str]:
    """The columns the gallery can sort by: ``confidence`` (probability), ``prob_blast`` (the most
    blast-like cells of each class first) and ``attention``."""
    return [c for c in ("confidence", "prob_blast", "attention") if c in cells.columns]


def _possible_blasts(cells: pd.DataFrame) -> np.ndarray:
    """Per cell: its blast call was withheld by the cell model's blast rule
    (:data:`~hemascope.classify.decision.POSSIBLE_BLAST`; all False without the column)."""
    if POSSIBLE_BLAST not in cells.columns:
        return np.zeros(len(cells), dtype=bool)
    return cells[POSSIBLE_BLAST].fillna(False).astype(bool).to_numpy()


def has_possible_blasts(cells: pd.DataFrame) -> bool:
    """Whether any cell's blast call was withheld by the cell model's blast rule."""
    return bool(_possible_blasts(cells).any())


def gallery_order(
    cells: pd.DataFrame,
    *,
    sort_by: str | None = "confidence",
    descending: bool = True,
    classes: list[str] | None = None,
    per_class: int = 48,
    possible_blasts_only: bool = False,
) -> dict[str, list[int]]:
    """Cell indices to show, grouped by class (palette order) and sorted within each class.

    Parameters
    ----------
    cells
        The cell table (a ``class`` column; ``sort_by`` column optional).
    sort_by
        ``"confidence"``, ``"attention"`` or ``None`` (table order).
    descending
        Highest values first.
    classes
        Classes to include (default: every class present).
    per_class
        Most cells shown per class.
    possible_blasts_only
        Only the cells whose blast call the blast rule withheld (grouped by the class they were
        called), for review.

    Returns
    -------
    dict
        ``{class: [row positions]}`` in display order.
    """
    if "class" not in cells.columns:
        raise InvalidInputError("the cell table has no 'class' column (classify the cells first)")
    if sort_by is not None and sort_by not in cells.columns:
        raise InvalidInputError(f"cannot sort by {sort_by!r}: not a column of the cell table")
    known = [*CELL_CLASSES, "unclassified"]
    present = list(dict.fromkeys(cells["class"].astype(str)))
    order = [c for c in known if c in present] + sorted(c for c in present if c not in known)
    groups: dict[str, list[int]] = {}
    labels = cells["class"].astype(str).to_numpy()
    keep = _possible_blasts(cells) if possible_blasts_only else np.ones(len(cells), dtype=bool)
    for cls in order if classes is None else [c for c in order if c in classes]:
        positions = np.flatnonzero((labels == cls) & keep)
        if not positions.size:
            continue
        if sort_by is not None:
            values = cells[sort_by].to_numpy(dtype=float)[positions]
            values = np.nan_to_num(values, nan=-np.inf)
            positions = positions[np.argsort(-values if descending else values, kind="stable")]
        groups[cls] = positions[:per_class].tolist()
    return groups


def cell_thumbnail(
    slide: Any, row: float, col: float, *, field_um: float = THUMBNAIL_FIELD_UM, size: int = 64
) -> np.ndarray:
    """A ``(size, size, 3)`` uint8 thumbnail centred on a level-0 ``(row, col)``.

    Reads the coarsest pyramid level that still has the needed detail, so thumbnails of a whole
    slide cost a few small reads each.
    """
    from hemascope.classify.crops import resize_rgb

    mpp = slide.mpp or 1.0
    level = slide.best_level_for_mpp(field_um / size) if slide.mpp else 0
    down = slide.downsamples[level]
    side = max(1, round(field_um / (mpp * down)))
    region = slide.read_region(level, round(row / down - side / 2), round(col / down - side / 2), side, side)
    return resize_rgb(region, size, size)


def reclassify(layer: Any, index: int, new_class: str) -> None:
    """Set a cell's class in a cells Points layer: features, review flag and colour.

    Parameters
    ----------
    layer
        The cells Points layer (its ``features`` is the cell table).
    index
        Row position of the cell.
    new_class
        One of :data:`hemascope.classes.CELL_CLASSES` (or ``"unclassified"``).
    """
    if new_class not in CLASS_COLORS:
        raise InvalidInputError(f"unknown class {new_class!r}; expected one of {list(CLASS_COLORS)}")
    if not 0 <= index < len(layer.data):
        raise InvalidInputError(f"no cell at position {index} (layer has {len(layer.data)})")
    features = layer.features
    if REVIEWED_COLUMN not in features.columns or features["class"].dtype != object:
        features = features.copy()  # new columns go through the setter (feature defaults too)
        features["class"] = features["class"].astype(object)
        if REVIEWED_COLUMN not in features.columns:
            features[REVIEWED_COLUMN] = False
            features[ORIGINAL_CLASS_COLUMN] = features["class"]
        layer.features = features
        features = layer.features
    features.loc[index, "class"] = new_class
    features.loc[index, REVIEWED_COLUMN] = True
    colors = np.array(layer.face_color, copy=True)
    colors[index] = class_rgba(new_class, float(colors[index, 3]) if colors.shape[1] == 4 else 1.0)
    layer.face_color = colors
    borders = np.array(layer.border_color, copy=True)
    if len(borders) == len(colors):  # outline markers carry the class colour in their border
        borders[index] = class_rgba(new_class, float(borders[index, 3]) if borders.shape[1] == 4 else 1.0)
        layer.border_color = borders


def camera_of(viewer: Any) -> Any:
    """The viewer's camera (``viewer.scene.camera`` from napari 0.9, ``viewer.camera`` before)."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None else viewer.camera


def focus_on_cell(viewer: Any, layer: Any, index: int, *, field_um: float = 60.0) -> None:
    """Centre the viewer's camera on a cell and zoom so ``field_um`` fills the canvas.

    Parameters
    ----------
    viewer
        The napari viewer.
    layer
        The cells Points layer.
    index
        Row position of the cell.
    field_um
        Width of the view around the cell in world units (µm).
    """
    world = np.asarray(layer.data_to_world(layer.data[index]), dtype=float)
    camera = camera_of(viewer)
    camera.center = tuple(world[-2:])
    canvas = getattr(viewer, "_canvas_size", (600, 600))
    camera.zoom = max(min(canvas) / field_um, 1e-6)


def save_reviewed_labels(
    path: str | Path,
    cells: pd.DataFrame,
    slide: Any,
    *,
    reviewed_only: bool = True,
    field_um: float = CROP_FIELD_UM,
) -> Path:
    """Save reviewed cells as PNG crops plus a CSV that ``hemascope train cells`` accepts.

    Parameters
    ----------
    path
        Destination ``.csv``; crops go to ``<stem>_crops/`` beside it (relative paths in the CSV).
    cells
        The cell table (``row``, ``col``, ``class``; ``reviewed`` when reviewing).
    slide
        The slide the cells are on (its µm/px must be known).
    reviewed_only
        Save only cells marked reviewed (else every classified cell).
    field_um
        Crop field of view in µm (level-0 resolution).

    Returns
    -------
    Path
        The CSV path.
    """
    from PIL import Image

    from hemascope.files import atomic_path, atomic_write_table

    if slide.mpp is None:
        raise InvalidInputError("the slide's µm/px is unknown; crops need a physical scale")
    chosen = cells
    if reviewed_only:
        flags = cells.get(REVIEWED_COLUMN, pd.Series(False, index=cells.index))
        chosen = cells[flags.fillna(False).astype(bool).to_numpy()]
    if chosen.empty:
        raise InvalidInputError("no reviewed cells to save (reclassify cells with the number keys)")
    path = Path(path)
    crop_dir = path.with_name(f"{path.stem}_crops")
    crop_dir.mkdir(parents=True, exist_ok=True)
    side = max(8, round(field_um / slide.mpp))
    rows = []
    for pos, (key, cell) in enumerate(chosen.iterrows()):
        row, col = (float(cell[c]) for c in CENTROID_COLUMNS)
        crop = slide.read_region(0, round(row - side / 2), round(col - side / 2), side, side)
        name = f"cell_{cell.get('id', key)}_{pos}.png"
        with atomic_path(crop_dir / name) as tmp:
            Image.fromarray(crop).save(tmp, format="PNG")
        rows.append({"path": f"{crop_dir.name}/{name}", "class": str(cell["class"]),
                     "domain": "reviewed", "mpp": float(slide.mpp), "group": slide.name})
    return atomic_write_table(path, pd.DataFrame(rows))
