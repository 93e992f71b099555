"""Uneven illumination of a photographed field: the radial fall-off (vignetting) of a camera or a
phone held to the eyepiece, measured on the field's own glass and divided out before cells are
searched.

A microscope photograph is brightest near its optical centre and darker towards the edge of its
field of view, often by a third or more through an eyepiece. Glass near the edge then reads as
faint stain everywhere, and every colour test that is relative to the glass colour finds hundreds
of false white cells there. The fall-off is radial around the field's centre, so it is fitted as
``log(brightness) = c + a ρ² + b ρ⁴`` (``ρ`` the distance from the centre of the field of view over
its radius) to the brightest pixels of blocks of the thumbnail (glass between red cells, or red-cell
pallor where cells touch), robustly; content that is not radial (a denser half of a smear) does not
fit that model. Whole slides (pyramids) and close-ups are left as they are, and so is a field whose
fitted fall-off is below :data:`MIN_FALLOFF`: flat images are read unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Least fall-off (1 - dimmest / brightest gain over the field of view) that is corrected.
MIN_FALLOFF = 0.08
#: The fall-off at the field's edge must stand this many standard errors above the scatter of the
#: blocks (dense or defocused fields scatter by several per cent).
MIN_FALLOFF_Z = 8.0
#: A vignetted field is brightest at its centre: a fit brighter elsewhere by more than this (log
#: units) is content (a denser centre, cells cut at the image border), not illumination.
_CENTRE_PEAK_TOLERANCE = 0.02
#: The correction never brightens a pixel by more than 1 / this gain.
_MIN_GAIN = 0.4
#: Thumbnail blocks per side (at least); a block's glass level is its 90th brightness percentile.
_BLOCKS = 12
#: Least number of blocks (with at least half of their pixels in the field of view) to fit.
_MIN_BLOCKS = 24


@dataclass(frozen=True)
class Illumination:
    """A radial illumination gain over level-0 pixels: ``exp(a ρ² + b ρ⁴ - peak)``, at most 1.

    Attributes
    ----------
    centre
        Level-0 ``(row, col)`` of the field of view's centre.
    radius
        Level-0 pixels from the centre to the farthest point of the field of view (``ρ = 1``).
    a, b
        Coefficients of ``ρ²`` and ``ρ⁴`` of the log gain.
    peak
        The largest ``a ρ² + b ρ⁴`` over ``0 ≤ ρ ≤ 1`` (so the brightest point has gain 1).
    """

    centre: tuple[float, float]
    radius: float
    a: float
    b: float
    peak: float

    def gain(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Gain at level-0 ``rows`` × ``cols`` (a ``(len(rows), len(cols))`` grid), in ``[_MIN_GAIN, 1]``."""
        dy = (np.asarray(rows, dtype=np.float64) - self.centre[0])[:, None]
        dx = (np.asarray(cols, dtype=np.float64) - self.centre[1])[None, :]
        rho2 = np.minimum((dy**2 + dx**2) / self.radius**2, 1.0)
        return np.clip(np.exp(self.a * rho2 + self.b * rho2**2 - self.peak), _MIN_GAIN, 1.0)

    def correct(self, image: np.ndarray, top_left: tuple[float, float], step: float) -> np.ndarray:
        """``image`` (read at level-0 ``top_left``, ``step`` level-0 pixels per pixel) with the
        fall-off divided out (uint8 RGB, a new array)."""
        rows = top_left[0] + (np.arange(image.shape[0]) + 0.5) * step
        cols = top_left[1] + (np.arange(image.shape[1]) + 0.5) * step
        flat = image[..., :3].astype(np.float32) / self.gain(rows, cols)[..., None].astype(np.float32)
        return np.clip(np.round(flat), 0, 255).astype(np.uint8)


def estimate_illumination(
    thumbnail: np.ndarray, downsample: float, outside: np.ndarray | None = None
) -> Illumination | None:
    """The radial fall-off of a photographed field, from its thumbnail.

    Parameters
    ----------
    thumbnail
        ``(rows, cols, 3)`` uint8 RGB of the whole field at low resolution.
    downsample
        Level-0 pixels per thumbnail pixel.
    outside
        Thumbnail pixels outside the field of view (:func:`~hemascope.segment.smear.outside_field`).

    Returns
    -------
    Illumination or None
        ``None`` when the fall-off is below :data:`MIN_FALLOFF` or :data:`MIN_FALLOFF_Z` standard
        errors, when the field is not brightest at its centre, or when it cannot be measured (too
        few blocks in the field of view).
    """
    rows, cols = thumbnail.shape[:2]
    inside = np.ones((rows, cols), dtype=bool) if outside is None else ~outside
    if inside.sum() < 64:
        return None
    ys, xs = np.nonzero(inside)
    cy, cx = float(ys.mean()), float(xs.mean())
    radius = float(np.sqrt(((ys - cy) ** 2 + (xs - cx) ** 2).max())) + 0.5
    brightness = thumbnail[..., :3].astype(np.float32).sum(axis=-1)
    block = max(min(rows, cols) // _BLOCKS, 4)
    rho2, level = [], []
    for r0 in range(0, rows - block + 1, block):
        for c0 in range(0, cols - block + 1, block):
            pick = inside[r0 : r0 + block, c0 : c0 + block]
            if pick.sum() < block * block / 2:
                continue
            value = float(np.percentile(brightness[r0 : r0 + block, c0 : c0 + block][pick], 90))
            rr, cc = np.nonzero(pick)
            d2 = ((rr.mean() + r0 - cy) ** 2 + (cc.mean() + c0 - cx) ** 2) / radius**2
            rho2.append(min(d2, 1.0))
            level.append(np.log(max(value, 1.0)))
    if len(level) < _MIN_BLOCKS:
        return None
    a, b, z = _robust_radial_fit(np.asarray(rho2), np.asarray(level))
    grid = np.linspace(0.0, 1.0, 101)
    curve = a * grid + b * grid**2
    peak = float(curve.max())
    falloff = 1.0 - float(np.exp(curve.min() - peak))
    if falloff < MIN_FALLOFF or z < MIN_FALLOFF_Z or peak - curve[0] > _CENTRE_PEAK_TOLERANCE:
        return None  # flat, not measured above the blocks' scatter, or not brightest at the centre
    return Illumination(((cy + 0.5) * downsample, (cx + 0.5) * downsample), radius * downsample, float(a), float(b), peak)


def _robust_radial_fit(rho2: np.ndarray, level: np.ndarray) -> tuple[float, float, float]:
    """``a, b`` of ``level ≈ c + a ρ² + b ρ⁴``, refitted three times without the blocks that miss
    the fit by more than three robust standard deviations (blocks full of cells, not glass), and
    the fall-off from the centre to ``ρ = 1`` in standard errors of the fit (positive: darker
    edge)."""
    design = np.column_stack([np.ones_like(rho2), rho2, rho2**2])
    keep = np.ones(len(level), dtype=bool)
    coef = np.zeros(3)
    for _ in range(3):
        coef = np.linalg.lstsq(design[keep], level[keep], rcond=None)[0]
        residual = level - design @ coef
        spread = max(1.4826 * float(np.median(np.abs(residual[keep] - np.median(residual[keep])))), 0.01)
        new = np.abs(residual) <= 3.0 * spread
        if new.sum() < _MIN_BLOCKS or (new == keep).all():
            break
        keep = new
    d = design[keep]
    residual = level[keep] - d @ coef
    sigma2 = float(residual @ residual) / max(int(keep.sum()) - 3, 1)
    cov = sigma2 * np.linalg.pinv(d.T @ d)
    edge = np.array([0.0, 1.0, 1.0])  # log gain at rho = 1 minus at the centre
    z = float(-(edge @ coef) / np.sqrt(max(edge @ cov @ edge, 1e-12)))
    return float(coef[1]), float(coef[2]), z


__all__ = ["MIN_FALLOFF", "MIN_FALLOFF_Z", "Illumination", "estimate_illumination"]
