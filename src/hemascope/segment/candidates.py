"""White-cell candidates: nuclear-stained blobs found at reduced resolution.

A pixel is nuclear-stained when it both absorbs red light (red-channel optical density above
``candidate_min_od``: the purple-blue nuclear dye) and carries the blue-lilac leukocyte tint
(:func:`~hemascope.segment.stain.leukocyte_tint`, independent of how dark the stain is), so dark
red-cell clumps and overstained slides do not flood the candidates. Blobs are closed by about two
micrometres (the lobes of a neutrophil become one) and kept when their area is that of a nucleus
of a white cell of at least ``min_diameter_um`` (platelets are smaller).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage import filters, measure

from hemascope.segment.masks import binary_closing, fill_holes
from hemascope.segment.stain import (
    leukocyte_tint,
    nuclear_stain,
    off_red_cell_density,
    optical_density,
)

#: Lowest leukocyte tint of a nuclear-stained pixel, above the image's own red-cell tint.
CANDIDATE_MIN_TINT = 0.07
#: Lowest density off the red-cell colour of a nuclear-stained pixel (fields and slides).
MIN_OFF_RED_CELL_OD = 0.08
#: A candidate nucleus covers at least this fraction of a disc of ``min_diameter_um`` (10.8 µm² at
#: 5 µm, a nucleus about 3.7 µm across; platelets, 2-3 µm, stay below even when blurred).
MIN_NUCLEUS_FRACTION = 0.55


def find_candidates(
    image: np.ndarray,
    mpp: float,
    background: np.ndarray | tuple[float, float, float] | None,
    *,
    min_diameter_um: float = 5.0,
    min_od: float = 0.25,
    red_cell_tint: float = 0.0,
    red_cell_chroma: tuple[float, float, float] | None = None,
) -> np.ndarray:
    """Centres of white-cell candidates in an RGB image at reduced resolution.

    Parameters
    ----------
    image
        ``(rows, cols, 3)`` uint8 RGB.
    mpp
        µm/px of ``image``.
    background
        Glass colour of the slide (estimated from ``image`` when ``None``).
    min_diameter_um
        Smallest white-cell diameter.
    min_od
        Lowest red-channel optical density of nuclear stain.
    red_cell_tint
        The slide's red-cell tint (the tint is measured relative to it).
    red_cell_chroma
        The red cells' OD direction. When given (fields, slides), a nuclear-stained pixel must
        carry :data:`MIN_OFF_RED_CELL_OD` of density off that direction
        (:func:`~hemascope.segment.stain.off_red_cell_density`) instead of the tint test: red-cell
        clumps carry none, whatever the stain, and nuclei of any hue do.

    Returns
    -------
    numpy.ndarray
        ``(n, 2)`` float ``(row, col)`` centroids of the candidate nuclei, in ``image`` pixels,
        sorted by row then column.
    """
    od = optical_density(image, None if background is None else np.asarray(background, dtype=np.float32))
    sigma = max(0.5 / mpp, 0.5)
    stain = filters.gaussian(nuclear_stain(od), sigma=sigma)
    tint = filters.gaussian(leukocyte_tint(od, red_cell_tint), sigma=sigma)
    if red_cell_chroma is None:
        nuclear = (stain > min_od) & (tint > CANDIDATE_MIN_TINT)
    else:  # the colour test against the red cells' own colour replaces the tint test
        nuclear = (stain > min_od) & (
            filters.gaussian(off_red_cell_density(od, red_cell_chroma), sigma=sigma) > MIN_OFF_RED_CELL_OD)
    if not nuclear.any():
        return np.zeros((0, 2))
    bridge = max(int(round(1.0 / mpp)), 1)
    nuclear = binary_closing(nuclear, bridge)
    nuclear = fill_holes(nuclear)
    min_area = MIN_NUCLEUS_FRACTION * np.pi * (min_diameter_um / 2) ** 2 / mpp**2
    labels = measure.label(nuclear)
    kept = np.flatnonzero(np.bincount(labels.ravel()) >= min_area)
    kept = kept[kept > 0]
    if not len(kept):
        return np.zeros((0, 2))
    boxes = ndi.find_objects(labels)
    centres = []
    for k in kept:  # centroid of each kept blob, from its bounding box only
        rows, cols = boxes[k - 1]
        rr, cc = np.nonzero(labels[rows, cols] == k)
        centres.append((rr.mean() + rows.start, cc.mean() + cols.start))
    out = np.asarray(centres, dtype=float)
    return out[np.lexsort((out[:, 1], out[:, 0]))]
