"""The white cell in a scale estimate: where its outline lies, and its nucleus as a last-resort ruler.

A white cell's outline (and its nucleus's) is as round as a red cell's and would vote as red-cell
arcs; on a close-up of one white cell with no red cells it is the only outline there is, and the
answer would then assume a 7.5 µm *white cell*. Two helpers for :mod:`hemascope.segment.scale`:

:func:`white_cell_zone`
    Where the circle centres of white-cell outlines lie: per stained object, the convex hull of
    the nucleus it holds, grown by a third of the nucleus radius (a white cell is centred on or
    near its nucleus; a red cell touching it has its centre outside). Arcs centred there are
    white-cell outlines, not red cells.
:func:`lone_nucleus`
    The equivalent diameter (px) of the whole nucleus (all lobes) of the white cell holding the
    image's largest nucleus, segmented on its own (nuclear stain above Otsu's split of the stained
    pixels, leukocyte tint above 0.05; the largest blob must be compact), to size the red-cell
    votes of a close-up and for the answer from the white cell alone (:data:`LONE_NUCLEUS_UM`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage import filters
from skimage.morphology import convex_hull_image

from hemascope.segment.masks import fill_holes

#: Equivalent diameter (µm) of a white cell's whole nucleus taken for the answer from one white
#: cell, chosen on the tuning half of the close-up set (``benchmarks/bench_scale.py --closeups 50
#: --closeup-half tuning``; 9.5-11.5 tried, 11 best; this measure's medians there: PBC 9.7,
#: DeepAPL 12.7, CellaVision segmentation set 10.1 µm).
LONE_NUCLEUS_UM = 11.0
#: Smallest nucleus (px across) the white-cell answer is taken from.
MIN_NUCLEUS_PX = 8.0
#: Least solidity (area / convex-hull area) of the largest nucleus blob: 0.7-0.99 in the PBC, DeepAPL and
#: close-up tuning images (5th percentile 0.75), 0.3-0.6 where bluish red cells run together (Taleqani).
MIN_SOLIDITY = 0.7
#: Nucleus blobs centred within this many largest-blob diameters of the largest blob are its lobes.
_LOBE_REACH = 1.5
#: Least leukocyte tint of a nucleus pixel (red cells are near 0, nuclei 0.15-0.3).
_NUCLEUS_TINT = 0.05
#: Least green-to-red optical density of a nucleus pixel. A nucleus absorbs green at least as much
#: as red in every stain measured; blue-grey red cells (the Taleqani fields' stain), as dense in red
#: as a nucleus and as blue, absorb less green than red (0.6-0.9 of it), pink ones far more.
_NUCLEUS_GREEN = 1.0


def absorbs_green(nuclear: np.ndarray, green: np.ndarray) -> np.ndarray:
    """Where the stain absorbs at least :data:`_NUCLEUS_GREEN` times as much green as red, as every
    nucleus measured does (blue-grey red cells do not); ``nuclear`` and ``green`` are the red- and
    green-channel optical densities."""
    return green >= _NUCLEUS_GREEN * nuclear


def white_cell_zone(stained: np.ndarray, nuclei: np.ndarray, min_share: float = 0.25) -> np.ndarray:
    """Where the circle centres of white-cell (and nucleus) outlines lie.

    Parameters
    ----------
    stained
        ``(rows, cols)`` bool: stained objects (red cells and white cells, holes filled).
    nuclei
        ``(rows, cols)`` bool: white-cell nucleus pixels.
    min_share
        Nucleus blobs smaller than this share of the largest one's area are ignored (specks).

    Returns
    -------
    numpy.ndarray
        ``(rows, cols)`` bool: per stained object holding a nucleus, the convex hull of its nucleus
        grown by a third of the nucleus's equivalent radius (+ 1 px).
    """
    zone = np.zeros(stained.shape, dtype=bool)
    blobs, n = ndi.label(nuclei)
    if not n:
        return zone
    areas = np.bincount(blobs.ravel())
    areas[0] = 0
    big = np.flatnonzero(areas >= min_share * areas.max())
    kept = np.isin(blobs, big)
    objects, _ = ndi.label(stained | nuclei)
    holding = np.zeros(objects.max() + 1, dtype=bool)
    holding[objects[kept]] = True
    for obj, box in enumerate(ndi.find_objects(objects), start=1):
        if box is None or not holding[obj]:
            continue
        inside = kept[box] & (objects[box] == obj)
        rows, cols = np.nonzero(inside)
        r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        inside = inside[r0:r1, c0:c1]
        r0, r1, c0, c1 = r0 + box[0].start, r1 + box[0].start, c0 + box[1].start, c1 + box[1].start
        hull = convex_hull_image(inside) if min(inside.shape) > 1 else inside
        grow = int(round(np.sqrt(inside.sum() / np.pi) / 3)) + 1
        p0, q0 = max(r0 - grow, 0), max(c0 - grow, 0)
        pad = (slice(p0, r1 + grow), slice(q0, c1 + grow))
        grown = np.zeros(zone[pad].shape, dtype=bool)
        grown[r0 - p0 : r1 - p0, c0 - q0 : c1 - q0] = hull
        zone[pad] |= ndi.binary_dilation(grown, iterations=grow)
    return zone


def lone_nucleus(
    stain: np.ndarray, nuclear: np.ndarray, tint: np.ndarray, green: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """Equivalent diameter (px) and pixels of the whole nucleus of the white cell holding the largest
    nucleus, and the stained object holding it (the cell, with any red cell touching it).

    Parameters
    ----------
    stain
        ``(rows, cols)`` bool: anything stained (not glass, not black print).
    nuclear
        ``(rows, cols)`` nuclear-dye density (red-channel optical density, smoothed).
    tint
        ``(rows, cols)`` leukocyte tint (:func:`hemascope.segment.stain.leukocyte_tint`, smoothed).
    green
        ``(rows, cols)`` green-channel optical density, smoothed as ``nuclear``: a nucleus pixel
        absorbs at least :data:`_NUCLEUS_GREEN` times as much green as red.

    Returns
    -------
    diameter, pixels, cell
        The diameter in px (0 when there is no nucleus, or when the largest blob is not compact
        enough to be one, :data:`MIN_SOLIDITY`), the ``(rows, cols)`` bool nucleus mask and the
        bool mask of the stained object (holes filled) holding it (empty without a nucleus).
    """
    none = (0.0, np.zeros(stain.shape, dtype=bool), np.zeros(stain.shape, dtype=bool))
    if stain.sum() < 50:
        return none
    level = float(filters.threshold_otsu(nuclear[stain]))
    dye = (nuclear > level) & stain & (tint > _NUCLEUS_TINT) & absorbs_green(nuclear, green)
    nucleus = fill_holes(ndi.binary_opening(dye))
    blobs, n = ndi.label(nucleus)
    if not n:
        return none
    areas = np.bincount(blobs.ravel())
    areas[0] = 0
    big = int(np.argmax(areas))
    rows, cols = np.nonzero(blobs == big)
    box = blobs[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] == big
    if min(box.shape) < 2 or areas[big] < MIN_SOLIDITY * convex_hull_image(box).sum():
        return none  # not compact: red cells run together (bluish red cells), not a nucleus
    cells, _ = ndi.label(fill_holes(stain))
    centres = np.array(ndi.center_of_mass(nucleus, blobs, np.arange(1, n + 1)))
    near = np.hypot(*(centres - centres[big - 1]).T) < _LOBE_REACH * 2 * np.sqrt(areas[big] / np.pi)
    lobes = np.flatnonzero(near) + 1  # the largest blob and the blobs around it (lobes of one nucleus)
    cell = cells == cells[blobs == big][0]
    whole = np.isin(blobs, lobes) & cell
    return float(2 * np.sqrt(whole.sum() / np.pi)), whole, cell
