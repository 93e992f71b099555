"""Does this slide look like a blood or marrow smear? A cheap check before analysing it.

A smear spreads cells in a monolayer on bright glass: wherever there are cells, there is glass
between them (even where red cells touch, 20-60 % of every 50 µm window is bare glass). Tissue
sections (H&E and the like) are confluent: inside the specimen almost every pixel is stained.
:func:`smear_likeness` measures, over the 50 µm windows that lie in the specimen (at least 30 %
stained), the share that still shows at least 15 % glass; the pipeline can warn and abstain from
the differential count and blast percentage when it is low.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hemascope.errors import InvalidInputError

TARGET_MPP = 1.0
"""µm/px of the level read from a slide (red cells ~7 px across: gaps between them visible)."""

WINDOW_UM = 50.0
"""Side of the windows in which stained and glass areas are compared."""

SPECIMEN_STAINED = 0.3
"""A window at least this stained lies in the specimen."""

GLASS_BETWEEN_CELLS = 0.15
"""A specimen window with at least this much glass looks like a smear."""

SMEAR_THRESHOLD = 0.5
"""``score`` at or above which the image is called a smear."""

MAX_SIDE = 2048

MIN_SIDE_UM = 150.0
"""Images shorter than this (µm) are close-ups of a few cells: too small to judge, so they pass."""
"""Longest side of the image analysed (a centre crop of the chosen level when larger)."""


@dataclass(frozen=True)
class SmearCheck:
    """The verdict of :func:`smear_likeness`.

    Attributes
    ----------
    score
        Share (0-1) of the specimen (50 µm windows, at least 30 % stained) that shows at least
        15 % glass between cells; ``nan`` for close-ups too small to judge (they pass).
    is_smear
        ``score >= SMEAR_THRESHOLD`` and enough stained material to judge.
    reason
        One sentence for a report or a warning.
    """

    score: float
    is_smear: bool
    reason: str


def _stained(image: np.ndarray) -> np.ndarray:
    """Pixels that are not bright, unsaturated glass."""
    rgb = image[..., :3].astype(np.int16)
    chroma = rgb.max(axis=2) - rgb.min(axis=2)
    luminance = rgb.mean(axis=2)
    return (chroma > 28) | (luminance < 170)


def _sample(source: Any, mpp: float | None) -> tuple[np.ndarray, float | None]:
    from hemascope.io.slide import Slide

    if isinstance(source, Slide):
        base = mpp if mpp is not None else source.mpp
        if base is None:
            level = 0
            for i, shape in enumerate(source.level_shapes):
                if max(shape) >= 1024:
                    level = i
        else:
            scaled = [base * d for d in source.downsamples]
            level = int(np.argmin([abs(np.log(s / TARGET_MPP)) for s in scaled]))
            mpp = scaled[level]
        rows, cols = source.level_shapes[level]
        height, width = min(rows, MAX_SIDE), min(cols, MAX_SIDE)
        image = source.read_region(level, (rows - height) // 2, (cols - width) // 2, height,
                                   width)
        return image, mpp
    image = np.asarray(source)
    if image.ndim != 3 or image.shape[2] < 3 or image.dtype != np.uint8 or 0 in image.shape[:2]:
        raise InvalidInputError(f"expected an RGB uint8 image, got {image.shape} {image.dtype}")
    return image, mpp


def smear_likeness(source: Any, *, mpp: float | None = None) -> SmearCheck:
    """Judge whether a slide (or an RGB image) looks like a blood/marrow smear.

    Parameters
    ----------
    source
        A :class:`~hemascope.io.slide.Slide` (a centre crop of the level nearest
        :data:`TARGET_MPP` is read) or an RGB uint8 array.
    mpp
        µm/px of ``source`` (of level 0 for a slide); without it the window size assumes the
        image is at about :data:`TARGET_MPP`.

    Returns
    -------
    SmearCheck
        The score, the verdict and a reason.

    Raises
    ------
    InvalidInputError
        ``source`` is not a slide or an RGB uint8 image.
    """
    from scipy import ndimage

    image, mpp_used = _sample(source, mpp)
    stained = _stained(image)
    if float(stained.mean()) < 0.02:
        return SmearCheck(0.0, False, "almost nothing is stained: an empty or blank image")
    scale = mpp_used if mpp_used else TARGET_MPP
    if min(image.shape[:2]) * scale < MIN_SIDE_UM:
        side = min(image.shape[:2]) * scale
        return SmearCheck(
            float("nan"), True,
            f"a close-up ({side:.0f} µm across, under {MIN_SIDE_UM:g} µm): too small to judge "
            "whether it is a smear",
        )
    window = max(4, int(round(WINDOW_UM / scale)))
    local = ndimage.uniform_filter(stained.astype(np.float32), window)
    specimen = local >= SPECIMEN_STAINED
    if not specimen.any():
        return SmearCheck(1.0, True, "sparse cells on glass, as at the thin end of a smear")
    score = float(((1.0 - local[specimen]) >= GLASS_BETWEEN_CELLS).mean())
    if score >= SMEAR_THRESHOLD:
        return SmearCheck(
            score, True,
            f"{score:.0%} of the specimen shows glass between the cells, as in a smear",
        )
    return SmearCheck(
        score, False,
        f"only {score:.0%} of the specimen shows glass between cells; the rest is confluent, as "
        "in a tissue section (or a very thick smear): the differential count and blast "
        "percentage are not meaningful here",
    )
