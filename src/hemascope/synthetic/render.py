"""Rendering any pixel region of a synthetic smear: OD accumulation, optics and sensor.

:class:`SmearRenderer` turns a :class:`~hemascope.synthetic.layout.SmearLayout` into pixels. Red cells
and platelets are stamped from small sprite banks with one vectorised ``np.bincount`` per region;
white cells are drawn individually (and cached). Blur is computed on a padded region and noise is
a hash of the global pixel position, so every pixel depends only on the spec and its position: the
same pixel is identical whichever region (or tile) it is rendered in.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from hemascope.synthetic import shapes
from hemascope.synthetic.cells import Sprite, draw_cell
from hemascope.synthetic.layout import SmearLayout
from hemascope.synthetic.morphology import CellPlan, plan_cell
from hemascope.synthetic.palette import Palette, palette_for
from hemascope.synthetic.spec import DomainShift, SmearSpec

#: How much a white cell hides the red cells beneath it.
WBC_OPACITY = 0.85


def rbc_bank(n: int, mpp: float, seed: int) -> np.ndarray:
    """``(n, S, S)`` red-cell OD profiles (units of haemoglobin) with central pallor.

    Red cells are 6.5–8.5 µm discocytes, slightly oval, whose biconcave centre is paler.
    """
    rng = np.random.default_rng([seed, 0xEB])
    half = int(math.ceil(4.9 / mpp)) + 1
    idx = np.arange(-half, half + 1, dtype=np.float32) * mpp
    grid = (idx[:, None] + 0 * idx[None, :], idx[None, :] + 0 * idx[:, None])
    r = np.hypot(*grid)
    out = np.empty((n, 2 * half + 1, 2 * half + 1), dtype=np.float32)
    for v in range(n):
        radius = rng.uniform(3.25, 4.2)
        harm = np.array([[3, rng.uniform(0, 0.02), rng.uniform(0, 6.3)]])
        body = shapes.soft(
            shapes.blob(
                grid, (0.0, 0.0), radius, 1 + abs(rng.normal(0, 0.05)), rng.uniform(0, 3.2), harm
            ),
            mpp,
        )
        pallor = rng.uniform(0.5, 0.75) * np.exp(-((r / (radius * rng.uniform(0.48, 0.6))) ** 2))
        rim = 1.0 + 0.12 * np.exp(-(((r - 0.8 * radius) / (0.18 * radius)) ** 2))
        out[v] = body * (1.0 - pallor) * rim * rng.uniform(0.85, 1.05)
    return out


def platelet_bank(
    n: int, mpp: float, seed: int, palette: Palette
) -> tuple[np.ndarray, np.ndarray, list[CellPlan]]:
    """``n`` platelets centred on a pixel: OD ``(n, S, S, 3)``, coverage ``(n, S, S)`` and their plans."""
    rng = np.random.default_rng([seed, 0x9F])
    plans = [plan_cell(rng, "platelet", "control", 0.0, 0.0) for _ in range(n)]
    sprites = [draw_cell(p, mpp, palette) for p in plans]
    size = max(s.cell.shape[0] for s in sprites)
    od = np.zeros((n, size, size, 3), dtype=np.float32)
    cov = np.zeros((n, size, size), dtype=np.float32)
    for k, s in enumerate(sprites):
        o = (size - s.cell.shape[0]) // 2
        od[k, o : o + s.cell.shape[0], o : o + s.cell.shape[0]] = s.od
        cov[k, o : o + s.cell.shape[0], o : o + s.cell.shape[0]] = s.cell
    return od, cov, plans


@dataclass
class Region:
    """A rendered region: RGB image and, on request, cell and nucleus instance labels (int32 ids)."""

    image: np.ndarray
    cell_labels: np.ndarray | None = None
    nucleus_labels: np.ndarray | None = None


def hash_noise(rows: np.ndarray, cols: np.ndarray, seed: int) -> np.ndarray:
    """Standard-normal noise ``(len(rows), len(cols), 3)`` that is a pure function of position and seed."""
    r = rows.astype(np.uint64)[:, None, None]
    c = cols.astype(np.uint64)[None, :, None]
    ch = np.arange(3, dtype=np.uint64)[None, None, :]
    with np.errstate(over="ignore"):
        key = (
            (r * np.uint64(0x9E3779B97F4A7C15))
            ^ (c * np.uint64(0xC2B2AE3D27D4EB4F))
            ^ (ch * np.uint64(0x165667B19E3779F9))
            ^ np.uint64(seed * 0x27D4EB2F165667C5 % 2**64)
        )

        def mix(x: np.ndarray) -> np.ndarray:
            x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            return x ^ (x >> np.uint64(31))

        h1 = mix(key)
        h2 = mix(h1 + np.uint64(0x9E3779B97F4A7C15))
    u1 = ((h1 >> np.uint64(11)).astype(np.float64) + 1.0) / 2.0**53
    u2 = (h2 >> np.uint64(11)).astype(np.float64) / 2.0**53
    return (np.sqrt(-2.0 * np.log(u1)) * np.cos(2 * np.pi * u2)).astype(np.float32)


def finish(
    intensity: np.ndarray,
    shift: DomainShift,
    mpp: float,
    pad: int,
    rows: np.ndarray,
    cols: np.ndarray,
    seed: int,
) -> np.ndarray:
    """Optics and sensor: blur a padded float RGB region, crop ``pad``, add noise, quantise to uint8."""
    if shift.blur_um > 0:
        sigma = shift.blur_um / mpp
        intensity = gaussian_filter(
            intensity, sigma=(sigma, sigma, 0), mode="nearest", truncate=4.0
        )
    if pad:
        intensity = intensity[pad:-pad, pad:-pad]
    if shift.noise > 0:
        intensity = intensity + shift.noise * hash_noise(rows, cols, seed)
    intensity += np.float32(0.5)
    np.clip(intensity, 0, 255, out=intensity)
    return intensity.astype(np.uint8)


class SmearRenderer:
    """Renders regions of one smear; every pixel depends only on the spec and its position.

    Parameters
    ----------
    spec
        The smear.
    wbc_cache
        How many white-cell sprites to keep (cells on tile borders are drawn once).
    """

    def __init__(self, spec: SmearSpec, wbc_cache: int = 384) -> None:
        self.spec = spec
        self.mpp = spec.mpp
        self.layout = SmearLayout(spec)
        self.palette = palette_for(spec.shift)
        self.rbc = rbc_bank(self.layout.n_rbc_variants, self.mpp, spec.seed)
        self._plt_od, self._plt_cell, self.platelet_plans = platelet_bank(
            self.layout.n_platelet_variants, self.mpp, spec.seed, self.palette
        )
        self._sprites: OrderedDict[int, Sprite] = OrderedDict()
        self._wbc_cache = wbc_cache
        b = spec.shift.blur_um / self.mpp
        self.pad = int(math.ceil(4.0 * b)) + 1 if b > 0 else 0

    def sprite(self, cell_id: int, plan: CellPlan) -> Sprite:
        """The drawn white cell ``cell_id`` (cached)."""
        s = self._sprites.get(cell_id)
        if s is None:
            s = draw_cell(plan, self.mpp, self.palette)
            self._sprites[cell_id] = s
            if len(self._sprites) > self._wbc_cache:
                self._sprites.popitem(last=False)
        return s

    @staticmethod
    def _stamp(
        bank: np.ndarray, variants: np.ndarray, centers: np.ndarray, shape: tuple[int, int]
    ) -> np.ndarray:
        """Sum bank sprites (``(V, S, S, ...)``) centred at integer pixels into a ``shape`` image."""
        h, w = shape
        extra = bank.shape[3:]
        s = bank.shape[1]
        half = s // 2
        near = (
            (centers[:, 0] >= -half)
            & (centers[:, 0] < h + half)
            & (centers[:, 1] >= -half)
            & (centers[:, 1] < w + half)
        )
        centers, variants = centers[near], variants[near]
        # draw into a canvas padded by 2 * half so that no index falls outside it
        pad = 2 * half
        h2, w2 = h + 2 * pad, w + 2 * pad
        off = np.arange(-half, half + 1)
        offsets = (off[:, None] * w2 + off[None, :]).ravel()
        base = (centers[:, 0] + pad) * w2 + (centers[:, 1] + pad)
        flat = (base[:, None] + offsets[None, :]).ravel()
        vals = bank.reshape((bank.shape[0], s * s) + extra)[variants].reshape((-1,) + extra)
        if not extra:
            canvas = np.bincount(flat, weights=vals, minlength=h2 * w2).reshape(h2, w2)
            return canvas[pad : pad + h, pad : pad + w].astype(np.float32)
        out = np.empty(shape + extra, dtype=np.float32)
        for k in range(extra[0]):
            canvas = np.bincount(flat, weights=vals[:, k], minlength=h2 * w2).reshape(h2, w2)
            out[..., k] = canvas[pad : pad + h, pad : pad + w]
        return out

    def render(
        self, row: int, col: int, height: int, width: int, *, labels: bool = False
    ) -> Region:
        """Render the level-0 region with top-left ``(row, col)``.

        Parameters
        ----------
        row, col
            Top-left pixel (may lie outside the slide: outside pixels are glass).
        height, width
            Region size in pixels.
        labels
            Also return cell and nucleus instance labels (ids of the truth table; red cells are 0).

        Returns
        -------
        Region
            The RGB image (and labels).
        """
        p = self.pad
        r0, c0, h, w = row - p, col - p, height + 2 * p, width + 2 * p
        mpp = self.mpp
        rbc_c, rbc_v, plt_c, plt_v, plt_ids = [], [], [], [], []
        wbcs: list[tuple[int, CellPlan]] = []
        for bi, bj in self.layout.blocks_touching(r0, c0, h, w):
            blk = self.layout.block(bi, bj)
            rbc_c.append(np.rint(blk.rbc_yx / mpp).astype(np.int64))
            rbc_v.append(blk.rbc_variant)
            plt_c.append(np.rint(blk.plt_yx / mpp).astype(np.int64))
            plt_v.append(blk.plt_variant)
            plt_ids.append(blk.plt_ids)
            wbcs.extend(zip(blk.wbc_ids.tolist(), blk.wbc, strict=True))
        origin = np.array([r0, c0])
        rbc = self._stamp(self.rbc, np.concatenate(rbc_v), np.concatenate(rbc_c) - origin, (h, w))
        od = rbc[..., None] * self.palette["rbc"]
        plt_c_all = np.concatenate(plt_c) - origin
        plt_v_all = np.concatenate(plt_v)
        self._paste_platelets(od, plt_v_all, plt_c_all)
        cell_lab = nuc_lab = None
        if labels:
            cell_lab = np.zeros((h, w), dtype=np.int32)
            nuc_lab = np.zeros((h, w), dtype=np.int32)
            self._paste_platelet_labels(cell_lab, plt_v_all, plt_c_all, np.concatenate(plt_ids))
        y0, y1, x0, x1 = r0 * mpp, (r0 + h) * mpp, c0 * mpp, (c0 + w) * mpp
        for cell_id, plan in wbcs:
            reach = plan.radius * plan.aspect * 1.3 + 2 * mpp
            if not (y0 - reach < plan.y_um < y1 + reach and x0 - reach < plan.x_um < x1 + reach):
                continue  # cannot touch the region: do not draw it
            s = self.sprite(cell_id, plan)
            sr, sc = s.origin[0] - r0, s.origin[1] - c0
            n = s.cell.shape[0]
            a0, b0, a1, b1 = max(sr, 0), max(sc, 0), min(sr + n, h), min(sc + n, w)
            if a0 >= a1 or b0 >= b1:
                continue
            sub = (slice(a0 - sr, a1 - sr), slice(b0 - sc, b1 - sc))
            cov = s.cell[sub]
            od[a0:a1, b0:b1] *= (1.0 - WBC_OPACITY * cov)[..., None]
            od[a0:a1, b0:b1] += s.od[sub]
            if cell_lab is not None and nuc_lab is not None:  # labels
                cell_lab[a0:a1, b0:b1][cov > 0.5] = cell_id
                nuc_lab[a0:a1, b0:b1][s.nucleus[sub] > 0.5] = cell_id
        od += self.palette.glass
        rows = np.arange(row, row + height)
        cols = np.arange(col, col + width)
        np.negative(od, out=od)
        np.exp(od, out=od)
        od *= np.float32(255.0)
        image = finish(od, self.spec.shift, mpp, p, rows, cols, self.spec.seed)
        if cell_lab is not None and nuc_lab is not None and p:  # labels
            cell_lab, nuc_lab = cell_lab[p:-p, p:-p], nuc_lab[p:-p, p:-p]
        return Region(image=image, cell_labels=cell_lab, nucleus_labels=nuc_lab)

    def _paste_platelets(self, od: np.ndarray, variants: np.ndarray, centers: np.ndarray) -> None:
        """Add the OD of platelets centred at ``centers`` (region pixels) into ``od``."""
        h, w = od.shape[:2]
        half = self._plt_cell.shape[1] // 2
        for v, (cr, cc) in zip(variants.tolist(), centers.tolist(), strict=True):
            a0, b0 = max(cr - half, 0), max(cc - half, 0)
            a1, b1 = min(cr + half + 1, h), min(cc + half + 1, w)
            if a0 >= a1 or b0 >= b1:
                continue
            ra, ca = a0 - (cr - half), b0 - (cc - half)
            od[a0:a1, b0:b1] += self._plt_od[v, ra : ra + (a1 - a0), ca : ca + (b1 - b0)]

    def _paste_platelet_labels(
        self, lab: np.ndarray, variants: np.ndarray, centers: np.ndarray, ids: np.ndarray
    ) -> None:
        h, w = lab.shape
        half = self._plt_cell.shape[1] // 2
        for v, (cr, cc), cid in zip(variants, centers, ids, strict=True):
            if cr + half < 0 or cc + half < 0 or cr - half >= h or cc - half >= w:
                continue
            m = self._plt_cell[v] > 0.5
            rr, cc_ = np.nonzero(m)
            rr, cc_ = rr + cr - half, cc_ + cc - half
            ok = (rr >= 0) & (rr < h) & (cc_ >= 0) & (cc_ < w)
            lab[rr[ok], cc_[ok]] = cid
