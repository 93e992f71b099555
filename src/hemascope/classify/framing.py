"""Frame the cell of a single-cell picture: centred crops as they are, whole fields on their white cell.

A picture made for one cell is framed in many ways: a tight box, a CellaVision-like crop with the
cell in its centre, or a whole microscope field with the cell anywhere in it. The first two are
classified from their centre. A picture whose shorter side spans more than :data:`FIELD_FACTOR`
model fields is taken as a field: its white cells are found (:func:`hemascope.segment.find_cells`)
and the crop is centred on the one nearest the picture's centre, preferring cells wholly inside
the picture. A field with no white cell found keeps its centre, and says so (``framing``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hemascope.errors import HemascopeError
from hemascope.models.card import ModelCard

#: A picture whose shorter side spans more than this many model fields is a field, not a crop.
FIELD_FACTOR = 2.0

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


def frame_picture(image: np.ndarray, mpp: float, card: ModelCard) -> Framing:
    """Choose the centre of the crop to classify in ``image`` (RGB uint8 at ``mpp`` µm/px).

    Crops (see :func:`is_field`) keep their centre. In a field, the white cell nearest the
    centre is taken, among those wholly inside the picture when there are any.
    """
    middle = ((image.shape[0] - 1) / 2.0, (image.shape[1] - 1) / 2.0)
    if not is_field(image.shape, mpp, card):
        return Framing(CENTRED, middle)
    from hemascope.segment import find_cells

    try:
        cells = find_cells(image, mpp=mpp, num_workers=1, keep_masks=False).cells
    except HemascopeError:
        return Framing(NOT_FOUND, middle)
    if cells.empty:
        return Framing(NOT_FOUND, middle)
    inside = (
        (cells["bbox_min_row"] > 0)
        & (cells["bbox_min_col"] > 0)
        & (cells["bbox_max_row"] < image.shape[0])
        & (cells["bbox_max_col"] < image.shape[1])
    )
    if inside.any():
        cells = cells[inside]
    distance = np.hypot(cells["row"].to_numpy() - middle[0], cells["col"].to_numpy() - middle[1])
    best = cells.iloc[int(np.argmin(distance))]
    return Framing(LOCATED, (float(best["row"]), float(best["col"])))
