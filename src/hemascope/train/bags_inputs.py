"""What a folder of images holds (single-cell crops or multi-cell fields) and at what scale.

A bag given as a folder can be a patient's single-cell crops (CellaVision, a 100× camera,
AML_Hehr/SCEMILA) — each image *is* one cell, classified as such — or a set of smear fields whose
cells must be found first. :func:`input_kind` decides from the images' physical size (µm) when the
scale is known, else from their pixel size. :func:`estimate_bag_mpp` estimates one scale for the
whole bag (all crops of a patient come from one magnification) from the median of per-image
estimates, so one crop whose estimate fails or goes astray does not change the answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from hemascope.errors import HemascopeError, InvalidInputError

#: How the images of a bag are read: one cell per image, fields to segment, or decided per bag.
INPUT_MODES: tuple[str, ...] = ("auto", "crops", "fields")

#: An image at most this wide (µm, longer side) is taken for a single-cell crop. A CellaVision crop
#: spans ~38 µm, a white cell 7-20 µm; a smear field hundreds of µm.
CROP_MAX_UM = 80.0

#: Without a known scale, an image at most this many pixels on its longer side is taken for a crop
#: (CellaVision crops: 360 px; fields are usually 1000 px and more).
CROP_MAX_PX = 640

#: Images of a bag whose scale is estimated, at most (spread evenly over the bag).
ESTIMATE_IMAGES = 24


def image_size(path: str | Path) -> tuple[int, int]:
    """``(rows, cols)`` of an image file, read from its header; ``(0, 0)`` when unreadable."""
    try:
        with Image.open(path) as im:
            return int(im.size[1]), int(im.size[0])
    except (UnidentifiedImageError, OSError, ValueError):
        return 0, 0


def input_kind(paths: Sequence[str | Path], mpp: float | None, mode: str = "auto") -> str:
    """``"crops"`` or ``"fields"`` for the images of one bag.

    Parameters
    ----------
    paths : sequence of path
        The bag's image files.
    mpp : float, optional
        µm/px of the images, when known.
    mode : str, optional
        ``"crops"`` or ``"fields"`` (returned as is), or ``"auto"``: crops when the median image
        is at most :data:`CROP_MAX_UM` µm (with ``mpp``) or :data:`CROP_MAX_PX` px (without)
        on its longer side.

    Returns
    -------
    str
        ``"crops"`` or ``"fields"``.

    Raises
    ------
    InvalidInputError
        On an unknown mode.
    """
    if mode not in INPUT_MODES:
        raise InvalidInputError(f"input must be one of {', '.join(INPUT_MODES)}, got {mode!r}")
    if mode != "auto":
        return mode
    sides = [max(image_size(p)) for p in list(paths)[:ESTIMATE_IMAGES]]
    sides = [s for s in sides if s > 0]
    if not sides:
        return "crops"  # unreadable images: the crop reader reports why, image by image
    side = float(np.median(sides))
    if mpp is not None:
        return "crops" if side * mpp <= CROP_MAX_UM else "fields"
    return "crops" if side <= CROP_MAX_PX else "fields"


def estimate_bag_mpp(
    paths: Sequence[str | Path],
    *,
    estimate: Callable[[np.ndarray], float] | None = None,
    max_images: int = ESTIMATE_IMAGES,
) -> float:
    """One µm/px for a bag of images: the median of per-image estimates, pooled over the images
    of one pixel size as ``classify`` pools them
    (:func:`hemascope.classify.images.estimate_picture_scales`).

    Parameters
    ----------
    paths : sequence of path
        The bag's images.
    estimate : callable, optional
        ``image -> µm/px`` (default :func:`hemascope.classify.cell_scale.picture_scale`, whose confidences
        the pooling weighs).
    max_images : int, optional
        Images tried, spread evenly over the bag.

    Returns
    -------
    float
        The median estimate.

    Raises
    ------
    InvalidInputError
        When no image gives an estimate; the message says why and to pass ``--mpp``.
    """
    from hemascope.classify.images import estimate_picture_scales, spread_indices

    paths = list(paths)
    if not paths:
        raise InvalidInputError("no images to estimate the scale from")
    picks = spread_indices(len(paths), max_images)
    scales = estimate_picture_scales([paths[i] for i in picks], estimate)
    reasons = [str(s) for s in scales if isinstance(s, HemascopeError)]
    values = [float(s) for s in scales if not isinstance(s, HemascopeError)]
    values = [v for v in values if np.isfinite(v) and v > 0]
    if not values:
        why = reasons[0] if reasons else "no estimate"
        raise InvalidInputError(
            f"cannot estimate the µm/px of these images ({len(picks)} tried; {why}); pass --mpp"
        )
    return float(np.median(values))
