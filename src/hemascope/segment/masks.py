"""Small boolean-mask helpers shared by the segmentation steps."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage import morphology


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill the holes of a 2-D boolean mask (same result as ``scipy.ndimage.binary_fill_holes``).

    A hole is a 4-connected background component that does not touch the image border. Found by
    one labelling pass instead of scipy's iterated dilation, whose cost grows with the distance
    the background has to travel (slow on large, busy masks).

    Parameters
    ----------
    mask
        ``(rows, cols)`` array, non-zero = foreground.

    Returns
    -------
    numpy.ndarray
        ``(rows, cols)`` bool.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2 or mask.size == 0:
        return ndi.binary_fill_holes(mask)
    background, n = ndi.label(~mask)
    if n == 0:
        return mask.copy()
    outside = np.zeros(n + 1, dtype=bool)
    for edge in (background[0], background[-1], background[:, 0], background[:, -1]):
        outside[edge] = True
    outside[0] = True  # label 0 is the foreground itself
    return mask | ~outside[background]


def _cross_step(mask: np.ndarray, grow: bool) -> np.ndarray:
    """Dilation (``grow``) or erosion of a boolean mask by the 3x3 cross; the border is reflected."""
    out = mask.copy()
    combine = np.logical_or if grow else np.logical_and
    for dst, src in (
        ((slice(1, None),), (slice(None, -1),)),
        ((slice(None, -1),), (slice(1, None),)),
        ((slice(None), slice(1, None)), (slice(None), slice(None, -1))),
        ((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
    ):
        combine(out[dst], mask[src], out=out[dst])
    return out


def disk(radius_px: float) -> np.ndarray:
    """``skimage.morphology.disk`` of a radius in (fractional) pixels, rounded, at least 1."""
    return morphology.disk(max(int(round(radius_px)), 1))


def binary_closing(mask: np.ndarray, radius: int) -> np.ndarray:
    """Closing of a 2-D boolean mask by ``skimage.morphology.disk(radius)`` (same result).

    The radius-1 disk (the 3x3 cross, what a micrometre is at the candidate resolution) is done
    with four array shifts per step, about 10x faster than the general filter.

    Parameters
    ----------
    mask
        ``(rows, cols)`` bool.
    radius
        Disk radius in pixels (at least 1).

    Returns
    -------
    numpy.ndarray
        ``(rows, cols)`` bool.
    """
    mask = np.asarray(mask, dtype=bool)
    radius = max(int(radius), 1)
    if radius == 1 and mask.ndim == 2:
        return _cross_step(_cross_step(mask, grow=True), grow=False)
    return morphology.closing(mask, morphology.disk(radius))
