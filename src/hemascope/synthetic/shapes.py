"""Soft (anti-aliased) shapes drawn in µm on a pixel grid, as signed distances.

Every shape is a signed distance in µm (positive inside) evaluated on a local grid ``(dy, dx)`` of
µm offsets; :func:`soft` turns a distance into a coverage in [0, 1] that is 0.5 exactly on the
outline, with a one-pixel ramp. Unions are ``np.maximum``, differences ``np.minimum(a, -b)``.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

Grid = tuple[np.ndarray, np.ndarray]
"""``(dy, dx)``: µm offsets of the pixel centres from the shape's reference point."""


def local_grid(
    center_um: tuple[float, float], half: int, mpp: float
) -> tuple[Grid, tuple[int, int]]:
    """A ``(2 * half + 1)`` square pixel grid around the pixel nearest ``center_um``.

    Parameters
    ----------
    center_um
        ``(y, x)`` of the shape centre in µm (pixel ``(i, j)`` has its centre at ``(i, j) * mpp``).
    half
        Half-size of the grid in pixels.
    mpp
        µm per pixel.

    Returns
    -------
    grid, origin
        The ``(dy, dx)`` grid in µm and the level-0 pixel ``(row, col)`` of its top-left pixel.
    """
    ci = int(round(center_um[0] / mpp))
    cj = int(round(center_um[1] / mpp))
    idx = np.arange(-half, half + 1, dtype=np.float32)
    dy = (idx + ci) * mpp - center_um[0]
    dx = (idx + cj) * mpp - center_um[1]
    return (dy[:, None] + 0 * dx[None, :], dx[None, :] + 0 * dy[:, None]), (ci - half, cj - half)


def soft(distance_um: np.ndarray, mpp: float) -> np.ndarray:
    """Coverage in [0, 1] from a signed distance (µm, positive inside), 0.5 on the outline."""
    return np.clip(0.5 + distance_um / mpp, 0.0, 1.0).astype(np.float32)


def polar_radius(
    theta: np.ndarray, radius: float, aspect: float, angle: float, harmonics: np.ndarray
) -> np.ndarray:
    """Outline radius of an irregular ellipse at polar angles ``theta``.

    Parameters
    ----------
    theta
        Polar angles (radians).
    radius
        Mean radius (µm); the semi-axes are ``radius * sqrt(aspect)`` and ``radius / sqrt(aspect)``.
    aspect
        Ratio of the semi-axes (>= 1).
    angle
        Orientation of the long axis (radians).
    harmonics
        ``(k, 3)`` rows of ``(order, amplitude, phase)``: outline wobble
        ``1 + sum(amplitude * cos(order * theta + phase))``.

    Returns
    -------
    numpy.ndarray
        The radius (µm) at each angle.
    """
    a = radius * np.sqrt(aspect)
    b = radius / np.sqrt(aspect)
    t = theta - angle
    r = a * b / np.sqrt((b * np.cos(t)) ** 2 + (a * np.sin(t)) ** 2)
    wobble = np.ones_like(theta)
    for order, amp, phase in harmonics:
        wobble = wobble + amp * np.cos(order * theta + phase)
    return r * wobble


def blob(
    grid: Grid,
    center: tuple[float, float],
    radius: float,
    aspect: float = 1.0,
    angle: float = 0.0,
    harmonics: np.ndarray | None = None,
) -> np.ndarray:
    """Signed distance (approximate, radial) to an irregular ellipse centred at ``center`` (µm)."""
    dy = grid[0] - center[0]
    dx = grid[1] - center[1]
    r = np.hypot(dy, dx)
    theta = np.arctan2(dy, dx)
    h = np.zeros((0, 3)) if harmonics is None else harmonics
    return polar_radius(theta, radius, aspect, angle, h) - r


def segment(
    grid: Grid, p0: tuple[float, float], p1: tuple[float, float], width: float
) -> np.ndarray:
    """Signed distance to a capsule (thick line segment) from ``p0`` to ``p1`` (µm)."""
    py, px = grid[0] - p0[0], grid[1] - p0[1]
    vy, vx = p1[0] - p0[0], p1[1] - p0[1]
    length2 = vy * vy + vx * vx
    t = np.clip((py * vy + px * vx) / length2, 0.0, 1.0) if length2 > 0 else 0.0
    return width / 2.0 - np.hypot(py - t * vy, px - t * vx)


def arc(
    grid: Grid, center: tuple[float, float], radius: float, start: float, stop: float, width: float
) -> np.ndarray:
    """Signed distance to a thick circular arc (angles in radians, ``start < stop``)."""
    dy = grid[0] - center[0]
    dx = grid[1] - center[1]
    mid = 0.5 * (start + stop)
    half = 0.5 * (stop - start)
    phi = np.arctan2(dy, dx)
    rel = np.angle(np.exp(1j * (phi - mid)))
    rel = np.clip(rel, -half, half) + mid
    qy = center[0] + radius * np.sin(rel)
    qx = center[1] + radius * np.cos(rel)
    return width / 2.0 - np.hypot(grid[0] - qy, grid[1] - qx)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian random field with correlation length ``sigma_px``."""
    field = gaussian_filter(rng.standard_normal(shape).astype(np.float32), max(sigma_px, 0.3))
    sd = float(field.std())
    return field / sd if sd > 0 else field


def dots(
    rng: np.random.Generator,
    allowed: np.ndarray,
    count: int,
    sigma_px: float,
    peak: float = 1.0,
) -> np.ndarray:
    """A map of ``count`` round granules placed where ``allowed > 0.5`` (density weighted).

    Parameters
    ----------
    rng
        Source of randomness.
    allowed
        Coverage map of where granules may lie.
    count
        Number of granules.
    sigma_px
        Granule radius (Gaussian sigma) in pixels.
    peak
        Peak value of one isolated granule.

    Returns
    -------
    numpy.ndarray
        Float32 map (same shape as ``allowed``), granules summed.
    """
    where = np.flatnonzero(allowed.ravel() > 0.5)
    out = np.zeros(allowed.size, dtype=np.float32)
    if count <= 0 or where.size == 0:
        return out.reshape(allowed.shape)
    picks = rng.choice(where, size=count, replace=True)
    np.add.at(out, picks, 1.0)
    sigma = max(sigma_px, 0.45)
    img = gaussian_filter(out.reshape(allowed.shape), sigma)
    img *= peak * 2 * np.pi * sigma * sigma
    return img
