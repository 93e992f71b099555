"""Drawing one white cell or platelet from its :class:`~hemascope.synthetic.morphology.CellPlan`.

A cell is drawn in µm on its own small pixel grid (a *sprite*) as optical density plus soft cell and
nucleus coverages. The sprite depends only on the plan and the µm/px, never on the tile being
rendered, so a cell that straddles tile borders looks the same from every side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hemascope.synthetic import shapes
from hemascope.synthetic.morphology import CellPlan
from hemascope.synthetic.palette import Palette


@dataclass
class Sprite:
    """A drawn cell: OD ``(S, S, 3)``, coverages ``(S, S)`` and the level-0 pixel of its top-left."""

    od: np.ndarray
    cell: np.ndarray
    nucleus: np.ndarray
    origin: tuple[int, int]


def _unit(angle: float) -> tuple[float, float]:
    return math.sin(angle), math.cos(angle)


def _lobe_union(
    grid: shapes.Grid,
    centers: list[tuple[float, float]],
    radius: float,
    rng: np.random.Generator,
    link_width: float,
) -> np.ndarray:
    """Lobes joined in sequence by thin chromatin filaments."""
    dist = None
    for i, c in enumerate(centers):
        h = np.array([[3, rng.uniform(0, 0.06), rng.uniform(0, 6.3)]])
        d = shapes.blob(
            grid,
            c,
            radius * rng.uniform(0.85, 1.1),
            1 + abs(rng.normal(0, 0.15)),
            rng.uniform(0, np.pi),
            h,
        )
        dist = d if dist is None else np.maximum(dist, d)
        if i:
            dist = np.maximum(dist, shapes.segment(grid, centers[i - 1], c, link_width))
    assert dist is not None  # the callers pass two or more centres
    return dist


def nucleus_distance(
    grid: shapes.Grid, plan: CellPlan, rng: np.random.Generator
) -> tuple[np.ndarray, tuple[float, float], np.ndarray | None]:
    """Signed distance (µm) of the nucleus of ``plan`` on ``grid`` (cell-centred µm offsets).

    Returns
    -------
    distance, center, cup
        The distance map, the nucleus centre and (for cup-like nuclei) the distance map of the
        invagination, which is drawn pale.
    """
    m = plan.morphology
    rc = plan.radius
    kind = m["nucleus"]
    if kind == "none":
        return np.full(grid[0].shape, -1e3, dtype=np.float32), (0.0, 0.0), None
    rn = rc * math.sqrt(m["nc"])
    direction = rng.uniform(0, 2 * np.pi)
    uy, ux = _unit(direction)
    off = m["nuc_offset"] * rc * rng.uniform(0.5, 1.0)
    c = (off * uy, off * ux)
    small = np.array(
        [
            [3, rng.uniform(0, 0.03), rng.uniform(0, 6.3)],
            [4, rng.uniform(0, 0.02), rng.uniform(0, 6.3)],
        ]
    )
    cup = None
    if kind in ("round", "kidney", "cup"):
        dist = shapes.blob(grid, c, rn, 1 + abs(rng.normal(0, 0.07)), rng.uniform(0, np.pi), small)
        if kind == "kidney":
            # the notch faces the cell centre side opposite the offset, like a bean or horseshoe
            depth = rng.uniform(0.9, 1.25)
            notch = (c[0] - depth * rn * uy, c[1] - depth * rn * ux)
            dist = np.minimum(dist, -shapes.blob(grid, notch, rn * rng.uniform(0.45, 0.65)))
        elif kind == "cup":
            cup_c = (c[0] + 0.62 * rn * uy, c[1] + 0.62 * rn * ux)
            cup = shapes.blob(grid, cup_c, rn * 0.4, 2.4, direction)
            dist = np.minimum(dist, -cup)
    elif kind == "band":
        rho = rc * rng.uniform(0.38, 0.5)
        span = rng.uniform(0.9, 1.4) * np.pi
        start = rng.uniform(0, 2 * np.pi)
        width = rc * rng.uniform(0.26, 0.34)
        center = (c[0] * 0.5, c[1] * 0.5)
        dist = shapes.arc(grid, center, rho, start, start + span, width)
    elif kind == "segmented":
        n = int(rng.choice([2, 3, 4, 5], p=[0.1, 0.42, 0.36, 0.12]))
        rl = rc * math.sqrt(m["nc"] / n) * rng.uniform(1.0, 1.15)
        rho = rc * rng.uniform(0.38, 0.5)
        start = rng.uniform(0, 2 * np.pi)
        step = min(1.9 * rl / rho, 1.6 * np.pi / max(n - 1, 1)) * rng.uniform(0.95, 1.1)
        centers = [
            (
                rho * math.sin(start + k * step) - rho * math.sin(start + (n - 1) * step / 2) * 0.6,
                rho * math.cos(start + k * step) - rho * math.cos(start + (n - 1) * step / 2) * 0.6,
            )
            for k in range(n)
        ]
        dist = _lobe_union(grid, centers, rl, rng, link_width=0.45)
    elif kind == "bilobed":
        rl = rc * math.sqrt(m["nc"] / 2) * 1.05
        sep = rl * rng.uniform(0.85, 1.05)
        centers = [(c[0] + sep * uy, c[1] + sep * ux), (c[0] - sep * uy, c[1] - sep * ux)]
        dist = _lobe_union(grid, centers, rl, rng, link_width=rl * 0.55)
    else:  # pragma: no cover - the morphology table only uses the kinds above
        raise ValueError(kind)
    return dist.astype(np.float32), c, cup


def _discs(
    grid: shapes.Grid,
    rng: np.random.Generator,
    count: int,
    inside: np.ndarray,
    r_um: tuple[float, float],
    mpp: float,
) -> np.ndarray:
    """Union coverage of ``count`` small discs centred where ``inside > 0.5``."""
    out = np.zeros(grid[0].shape, dtype=np.float32)
    where = np.flatnonzero(inside.ravel() > 0.5)
    if count <= 0 or where.size == 0:
        return out
    for idx in rng.choice(where, size=count):
        i, j = np.unravel_index(idx, inside.shape)
        d = shapes.blob(grid, (float(grid[0][i, j]), float(grid[1][i, j])), rng.uniform(*r_um))
        out = np.maximum(out, shapes.soft(d, mpp))
    return out


def _auer_rods(
    grid: shapes.Grid, plan: CellPlan, rng: np.random.Generator, cyto: np.ndarray, mpp: float
) -> np.ndarray:
    """Coverage of the Auer rods of ``plan`` (none, one, one long, or a bundle)."""
    out = np.zeros(grid[0].shape, dtype=np.float32)
    if "auer_rod" not in plan.features and "auer_bundle" not in plan.features:
        return out
    where = np.flatnonzero(cyto.ravel() > 0.8)
    if where.size == 0:
        return out
    i, j = np.unravel_index(rng.choice(where), cyto.shape)
    cy, cx = float(grid[0][i, j]), float(grid[1][i, j])
    angle = rng.uniform(0, np.pi)
    long_rod = plan.morphology["auer"] == "long"
    if "auer_bundle" in plan.features:
        count, length, width = int(rng.integers(4, 10)), rng.uniform(3.0, 5.0), 0.45
    else:
        count = 1
        length = rng.uniform(6.0, 10.0) if long_rod else rng.uniform(2.5, 5.0)
        width = 0.4 if long_rod else 0.5
    for k in range(count):
        a = angle + rng.normal(0, 0.12)
        offset = (k - (count - 1) / 2) * 0.65
        oy, ox = cy + offset * math.cos(angle), cx - offset * math.sin(angle)
        hy, hx = 0.5 * length * math.sin(a), 0.5 * length * math.cos(a)
        d = shapes.segment(grid, (oy - hy, ox - hx), (oy + hy, ox + hx), width)
        out = np.maximum(out, shapes.soft(d, mpp))
    return out


def draw_cell(plan: CellPlan, mpp: float, palette: Palette) -> Sprite:
    """Draw a white cell or platelet as an OD sprite.

    Parameters
    ----------
    plan
        The planned cell (class, subclass, centre, body outline, seed, features).
    mpp
        µm per pixel of the grid.
    palette
        Stain colours (after the domain shift).

    Returns
    -------
    Sprite
        OD, cell and nucleus coverages on a square grid around the cell (glass not included).
    """
    m = plan.morphology
    rng = np.random.default_rng(plan.seed)
    half = int(math.ceil(max(plan.extents) / mpp)) + 2
    grid, origin = shapes.local_grid((plan.y_um, plan.x_um), half, mpp)
    body = shapes.soft(
        shapes.blob(grid, (0.0, 0.0), plan.radius, plan.aspect, plan.angle, plan.harmonics), mpp
    )
    ndist, nc, cup = nucleus_distance(grid, plan, rng)
    nucleus = shapes.soft(ndist, mpp) * body
    shape2 = body.shape
    texture_sigma = m["clump_um"] / mpp / 2.0
    cyto_cov = body * (1.0 - nucleus)
    cyto_level = m["cyto_density"] * (1.0 + 0.06 * shapes.smooth_noise(rng, shape2, 2.0 / mpp))
    if cup is not None:  # the invagination is clear cytoplasm
        cyto_level = cyto_level * (1.0 - 0.35 * shapes.soft(cup, mpp) * body)
    if "hof" in plan.features:
        r = plan.radius
        norm = math.hypot(*nc) or 1.0
        hof_c = (
            (nc[0] - 0.55 * r * nc[0] / norm, nc[1] - 0.55 * r * nc[1] / norm)
            if norm > 1e-6
            else (0.0, 0.3 * r)
        )
        cyto_level = cyto_level * (
            1.0 - 0.6 * shapes.soft(shapes.blob(grid, hof_c, 0.28 * r, 1.3), mpp)
        )
    vac_lo, vac_hi = m["vacuoles"]
    if vac_hi:
        vac = _discs(grid, rng, int(rng.integers(vac_lo, vac_hi + 1)), cyto_cov, (0.3, 0.8), mpp)
        cyto_level = cyto_level * (1.0 - 0.8 * vac)
    od = (cyto_cov * cyto_level)[..., None] * palette[m["cyto"]]

    if m["nc"] > 0:
        chrom = m["chromatin_density"] * (
            1.0 + m["clump_contrast"] * shapes.smooth_noise(rng, shape2, texture_sigma)
        )
        lo, hi = m["nucleoli"]
        if hi:
            inner = shapes.soft(ndist - 1.2, mpp)
            nucleoli = _discs(grid, rng, int(rng.integers(lo, hi + 1)), inner, (0.5, 1.0), mpp)
            chrom = chrom * (1.0 - 0.7 * nucleoli)
            od = od + (nucleus * nucleoli * 0.8)[..., None] * palette["nucleolus"]
        od = od + (nucleus * np.clip(chrom, 0.2, None))[..., None] * palette[m["chromatin"]]

    if m["granules"] is not None and m["granule_density"] > 0:
        allowed = body if m["granules_over_nucleus"] else cyto_cov
        if plan.cls == "platelet":
            allowed = shapes.soft(shapes.blob(grid, (0.0, 0.0), plan.radius * 0.6), mpp)
        area = math.pi * plan.radius**2
        count = int(rng.poisson(m["granule_density"] * area))
        gran = shapes.dots(rng, allowed, count, m["granule_um"] / mpp, m["granule_peak"])
        od = od + (np.minimum(gran, 2.0) * body)[..., None] * palette[m["granules"]]
    rods = _auer_rods(grid, plan, rng, cyto_cov, mpp)
    if rods.any():
        od = od + (1.4 * rods * body)[..., None] * palette["auer"]
    return Sprite(od=od.astype(np.float32), cell=body, nucleus=nucleus, origin=origin)
