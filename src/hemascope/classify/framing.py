"""Frame the cell of a single-cell picture: centred crops as they are, whole fields on their white cell.

A picture made for one cell is framed in many ways: a tight box, a CellaVision-like crop with the
cell in its centre, or a whole microscope field with the cell anywhere in it. The first two are
classified from their centre. A picture whose shorter side spans more than :data:`FIELD_FACTOR`
model fields is taken as a field: its white cells are found (:func:`hemascope.segment.find_cells`)
and the crop is centred on the one nearest the picture's centre, preferring cells wholly inside
the picture. A field with no white cell found keeps its centre, and says so (``framing``).

Between :data:`BAND_FACTOR` and :data:`FIELD_FACTOR` model fields (30-48 µm for ``wbc``) a
picture may be either: a crop with its cell in the centre, or a small one-cell field with the cell
off it — and a µm/px given 15 % low turns a 50 µm field into a 42 µm "crop" (classified from its
centre, such pictures of normal cells were called blast one time in three; BENCHMARKS.md). Such a
picture is looked at (:func:`look_at`, white cells found at :data:`LOOK_MPP`, 24 ms for a
CellaVision crop): it keeps its centre when the centre lies on a white cell found (or none is
found wholly inside it), else it is framed on the nearest cell wholly inside it. Callers that know a source's pictures are centred
crops (:func:`hemascope.classify.images.framing_looks` surveys them) skip the look.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hemascope.errors import HemascopeError
from hemascope.models.card import ModelCard

#: A picture whose shorter side spans more than this many model fields is a field, not a crop.
FIELD_FACTOR = 2.0
#: Pictures whose shorter side spans more than this many model fields (and up to
#: :data:`FIELD_FACTOR`) are looked at for an off-centre cell (:func:`look_at`).
BAND_FACTOR = 1.25
#: µm/px at which such pictures are searched for white cells (finer pictures are resampled to it).
LOOK_MPP = 0.4

#: How the crop of a picture was placed (the ``framing`` column of ``classify``).
CENTRED, LOCATED, NOT_FOUND = "centred", "located", "centre, no white cell found"


@dataclass(frozen=True)
class Framing:
    """Where a picture's crop is centred.

    Attributes
    ----------
    how
        :data:`CENTRED` (a crop: its centre), :data:`LOCATED` (a field: on the white cell found)
        or :data:`NOT_FOUND` (a field without a white cell found: its centre).
    centre
        ``(row, col)`` in the picture's pixels.
    """

    how: str
    centre: tuple[float, float]


def is_field(shape: tuple[int, ...], mpp: float, card: ModelCard) -> bool:
    """Whether a picture of ``shape`` at ``mpp`` µm/px is a field rather than a single-cell crop."""
    return min(shape[:2]) * mpp > FIELD_FACTOR * card.field_um


def _wholly_inside(cells: pd.DataFrame, shape: tuple[int, ...]) -> pd.Series:
    """Which found cells (``find_cells`` rows) lie wholly inside a picture of ``shape``."""
    return (
        (cells["bbox_min_row"] > 0)
        & (cells["bbox_min_col"] > 0)
        & (cells["bbox_max_row"] < shape[0])
        & (cells["bbox_max_col"] < shape[1])
    )


def _nearest(cells: pd.DataFrame, point: tuple[float, float]) -> tuple[float, float]:
    """``(row, col)`` of the found cell nearest ``point``."""
    distance = np.hypot(cells["row"].to_numpy() - point[0], cells["col"].to_numpy() - point[1])
    best = cells.iloc[int(np.argmin(distance))]
    return float(best["row"]), float(best["col"])


def in_band(shape: tuple[int, ...], mpp: float, card: ModelCard) -> bool:
    """Whether a picture may be a centred crop or a small one-cell field (see the module docstring)."""
    return BAND_FACTOR * card.field_um < min(shape[:2]) * mpp <= FIELD_FACTOR * card.field_um


def look_at(image: np.ndarray, mpp: float) -> Framing:
    """Frame a picture of the band: its centre if that lies on a white cell found at
    :data:`LOOK_MPP` (or none is found wholly inside the picture), else the white cell wholly
    inside the picture nearest the centre."""
    from hemascope.classify.crops import resize_rgb
    from hemascope.segment import find_cells

    middle = ((image.shape[0] - 1) / 2.0, (image.shape[1] - 1) / 2.0)
    factor = min(mpp / LOOK_MPP, 1.0)
    small = resize_rgb(image, max(1, round(image.shape[0] * factor)), max(1, round(image.shape[1] * factor)))
    try:
        cells = find_cells(small, mpp=mpp / factor, num_workers=1, keep_masks=False).cells
    except HemascopeError:
        return Framing(CENTRED, middle)
    if cells.empty:
        return Framing(CENTRED, middle)
    r, c = ((m + 0.5) * factor - 0.5 for m in middle)  # the centre in the small picture's pixels
    # on a cell: within the disc its box holds (a large cell's box can reach a centre it does not)
    radius = 0.5 * np.minimum(cells["bbox_max_row"] - cells["bbox_min_row"], cells["bbox_max_col"] - cells["bbox_min_col"])
    on = np.hypot(cells["row"] - r, cells["col"] - c) <= radius
    inside = _wholly_inside(cells, small.shape)
    if on.any() or not inside.any():  # a cell cut by the border is not the picture's subject
        return Framing(CENTRED, middle)
    row, col = _nearest(cells[inside], (r, c))
    return Framing(LOCATED, ((row + 0.5) / factor - 0.5, (col + 0.5) / factor - 0.5))


def frame_picture(image: np.ndarray, mpp: float, card: ModelCard, *, look: bool = True) -> Framing:
    """Choose the centre of the crop to classify in ``image`` (RGB uint8 at ``mpp`` µm/px).

    Crops (see :func:`is_field`) keep their centre, except pictures of the band
    (:func:`in_band`) that ``look`` lets :func:`look_at` frame. In a field, the white cell nearest
    the centre is taken, among those wholly inside the picture when there are any.
    """
    middle = ((image.shape[0] - 1) / 2.0, (image.shape[1] - 1) / 2.0)
    if not is_field(image.shape, mpp, card):
        return look_at(image, mpp) if look and in_band(image.shape, mpp, card) else Framing(CENTRED, middle)
    from hemascope.segment import find_cells

    try:
        cells = find_cells(image, mpp=mpp, num_workers=1, keep_masks=False).cells
    except HemascopeError:
        return Framing(NOT_FOUND, middle)
    if cells.empty:
        return Framing(NOT_FOUND, middle)
    inside = _wholly_inside(cells, image.shape)
    return Framing(LOCATED, _nearest(cells[inside] if inside.any() else cells, middle))
