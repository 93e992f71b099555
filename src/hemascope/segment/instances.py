"""White-cell instances from a whole-cell mask: touching cells split, parts of one cell joined.

Part of the ``classical`` backend (:mod:`hemascope.segment.classical`): a watershed on
distance-transform markers (h-maxima) splits touching round cells while the lobes of one
neutrophil stay one cell; parts cut through one nucleus are joined again; instances without a
nucleus (platelet clumps, debris) are dropped.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage import filters, morphology, segmentation

from hemascope.segment.classical_params import ClassicalParams


def um_to_px(um: float, mpp: float) -> float:
    """A length in micrometres as pixels (never negative)."""
    return max(um / mpp, 0.0)


def min_nucleus_px(mpp: float, params: ClassicalParams) -> int:
    """Least nucleus area of a kept cell (``cell_min_nucleus_um2``), in pixels."""
    return max(1, int(params.cell_min_nucleus_um2 / mpp**2))


def _is_convex(piece: np.ndarray, solidity: float = 0.92) -> bool:
    return piece.sum() >= solidity * morphology.convex_hull_image(piece).sum()


def _merge_parts_sharing_a_nucleus(split: np.ndarray, nuclei: np.ndarray, mpp: float,
                                    params: ClassicalParams) -> np.ndarray:
    """Join watershed parts cut through one nucleus: two cells need two nuclei.

    A nucleus component with a single distance-transform maximum (h-maxima ``split_depth_um``) is
    one nucleus; every part it reaches into belongs to its cell (a whole-cell mask that leaked into
    a neighbouring red cell is otherwise cut in two, one half per candidate). Two touching round
    nuclei have two maxima and keep their cells apart.
    """
    components, n = ndi.label(nuclei)
    if n == 0:
        return split
    depth = max(um_to_px(params.split_depth_um, mpp), 1.0)
    parent = np.arange(int(split.max()) + 1)

    def root(a: int) -> int:
        while parent[a] != a:
            a = int(parent[a])
        return a

    for index, box in enumerate(ndi.find_objects(components), start=1):
        one = components[box] == index
        parts = np.unique(split[box][one])
        parts = parts[parts > 0]
        if len(parts) < 2:
            continue
        distance = ndi.distance_transform_edt(np.pad(one, 1))[1:-1, 1:-1]
        if ndi.label(morphology.h_maxima(distance, depth) & one)[1] > 1:
            continue  # two (or more) nuclei touching: their cells stay apart
        first = root(int(parts[0]))
        for other in parts[1:]:
            parent[root(int(other))] = first
    roots = np.array([root(a) for a in range(parent.size)])
    _, consecutive = np.unique(roots, return_inverse=True)
    return consecutive[split].astype(split.dtype)  # label 0 (background) stays 0: its own root


def split_cells(
    cells: np.ndarray,
    nuclei: np.ndarray,
    mpp: float,
    params: ClassicalParams | None = None,
    dense_nuclei: np.ndarray | None = None,
) -> np.ndarray:
    """Split a white-cell mask into instances by a watershed on distance-transform markers.

    One marker per local maximum of the distance transform that is at least ``split_depth_um``
    above its saddle to a neighbour (h-maxima), so two touching round cells get two markers while
    the lobes of one neutrophil (one round cell outline) get one. Instances without nucleus pixels
    (less than ``cell_min_nucleus_um2``: platelet clumps, debris) and instances smaller than
    ``cell_min_area_um2`` are dropped.

    Parameters
    ----------
    cells
        Whole-cell mask.
    nuclei
        Nucleus mask (the nuclear support).
    mpp
        Micrometres per pixel.
    params
        Backend parameters (default :class:`~hemascope.segment.classical_params.ClassicalParams`).
    dense_nuclei
        Strict nucleus mask (specks removed); when given, a kept instance must hold some of it
        (a clump of platelets has nuclear-stained area but no nucleus of its own), and an instance
        smaller than ``small_cell_um2`` must hold ``cell_min_nucleus_um2`` of it.

    Returns
    -------
    numpy.ndarray
        ``(rows, cols)`` int32 cell instance labels (0 = background), consecutive from 1.
    """
    if params is None:
        params = ClassicalParams()
    if not cells.any():
        return np.zeros(cells.shape, dtype=np.int32)
    components, n = ndi.label(cells)
    labels = np.zeros(cells.shape, dtype=np.int32)
    next_label = 1
    for index, box in enumerate(ndi.find_objects(components), start=1):
        piece = components[box] == index
        if _is_convex(piece):  # one round cell: nothing to split (and no costly h-maxima)
            labels[box][piece] = next_label
            next_label += 1
            continue
        distance = ndi.distance_transform_edt(np.pad(piece, 1))[1:-1, 1:-1]
        distance = filters.gaussian(distance, sigma=max(um_to_px(params.smooth_um, mpp), 0.5))
        peaks = morphology.h_maxima(distance, max(um_to_px(params.split_depth_um, mpp), 1.0))
        markers, k = ndi.label(peaks & piece)
        split = segmentation.watershed(-distance, markers=markers, mask=piece)
        if k > 1:
            split = _merge_parts_sharing_a_nucleus(split, nuclei[box] & piece, mpp, params)
        labels[box][piece] = split[piece] + next_label - 1
        next_label += int(split.max())
    min_px = int(params.cell_min_area_um2 / mpp**2)
    sizes = np.bincount(labels.ravel())
    nucleus_px = np.bincount(labels.ravel(), weights=nuclei.ravel(), minlength=sizes.size)
    keep = (sizes >= min_px) & (nucleus_px >= min_nucleus_px(mpp, params))
    if dense_nuclei is not None:
        dense_px = np.bincount(labels.ravel(), weights=dense_nuclei.ravel(), minlength=sizes.size)
        keep &= dense_px > 0
        # a small object with a small nucleus is a (blurred) platelet clump, not a white cell
        small = (sizes < params.small_cell_um2 / mpp**2) & (dense_px < params.cell_min_nucleus_um2 / mpp**2)
        keep &= ~small
    keep[0] = False
    relabel = np.zeros(sizes.size, dtype=np.int32)
    relabel[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return relabel[labels]
