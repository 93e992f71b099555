"""Where every cell of a synthetic smear lies, decided block by block from the seed.

The slide plane is cut into square blocks of :data:`BLOCK_UM` µm. Each block draws its own red
cells, platelets and white cells from a random generator seeded with ``(seed, block row, block
col)``, so any region of a 100k × 100k slide is laid out without looking at the rest, and a cell
that crosses a tile border is the same cell from both sides.

* Red cells sit on a jittered hexagonal lattice with random drop-out (a monolayer that still has
  overlaps), thinned by the local smear thickness.
* White cells sit on a coarser jittered lattice; candidates closer than their radii are thinned by
  random priority (a Matérn type-II hard-core process, looking one block around), so white cells never
  overlap each other. Red cells and platelets centred on a white cell are removed.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from hemascope.synthetic.morphology import CellPlan, plan_cell
from hemascope.synthetic.spec import WBC_CLASSES, SmearSpec

#: Edge of a layout block in µm.
BLOCK_UM = 256.0
#: Spacing of white-cell candidate sites in µm (8 x 8 per block).
WBC_SPACING_UM = 32.0
#: Spacing of the red-cell lattice in µm.
RBC_SPACING_UM = 8.2
#: Cell ids are ``block_index * ID_STRIDE + k + 1`` (white cells first, then platelets).
ID_STRIDE = 4096
#: Largest distance (µm) from a cell centre at which anything of it is drawn.
MAX_REACH_UM = 20.0
_WBC_SLOTS = 64


@dataclass
class BlockCells:
    """The cells of one layout block.

    Attributes
    ----------
    wbc
        White cells (after hard-core thinning), with their ids.
    wbc_ids
        Global id of each white cell.
    rbc_yx
        ``(n, 2)`` red-cell centres in µm.
    rbc_variant
        Sprite-bank variant of each red cell.
    plt_yx, plt_variant, plt_ids
        Platelet centres (µm), sprite variants and global ids.
    """

    wbc: list[CellPlan]
    wbc_ids: np.ndarray
    rbc_yx: np.ndarray
    rbc_variant: np.ndarray
    plt_yx: np.ndarray
    plt_variant: np.ndarray
    plt_ids: np.ndarray


class SmearLayout:
    """Deterministic cell placement of one :class:`~hemascope.synthetic.spec.SmearSpec`.

    Parameters
    ----------
    spec
        The smear.
    n_rbc_variants, n_platelet_variants
        Sizes of the red-cell and platelet sprite banks the variants index into.
    cache_blocks
        How many cached entries (four per block) to keep; the default holds four rows of blocks,
        enough for tiles read in row-major order to never lay out a block twice.
    """

    def __init__(
        self,
        spec: SmearSpec,
        n_rbc_variants: int = 64,
        n_platelet_variants: int = 32,
        cache_blocks: int | None = None,
    ) -> None:
        self.spec = spec
        self.mpp = spec.mpp
        self.height_um = spec.size[0] * spec.mpp
        self.width_um = spec.size[1] * spec.mpp
        self.n_block_rows = int(math.ceil(self.height_um / BLOCK_UM))
        self.n_block_cols = int(math.ceil(self.width_um / BLOCK_UM))
        self.n_rbc_variants = n_rbc_variants
        self.n_platelet_variants = n_platelet_variants
        mix = spec.resolved_class_mix()
        self._classes = list(WBC_CLASSES)
        self._probs = np.array([mix[c] for c in self._classes])
        rng = np.random.default_rng([spec.seed, 0xD15])
        # low-frequency smear thickness: two plane waves of 0.6-2 mm wavelength
        self._waves = [
            (rng.uniform(0, np.pi), rng.uniform(600, 2000), rng.uniform(0, 2 * np.pi), amp)
            for amp in (0.18, 0.12)
        ]
        self._edge_phase = rng.uniform(0, 2 * np.pi, 4)
        self._margin_um = spec.glass_margin * min(self.height_um, self.width_um)
        self._cache: OrderedDict[tuple[str, int, int], object] = OrderedDict()
        self._cache_size = cache_blocks or max(256, 4 * 4 * (self.n_block_cols + 2))

    # --- smear thickness ------------------------------------------------------------------
    def coverage(self, y_um: np.ndarray, x_um: np.ndarray) -> np.ndarray:
        """Smear presence in [0, 1] (0 on bare glass) at slide positions in µm."""
        y = np.asarray(y_um, dtype=np.float64)
        x = np.asarray(x_um, dtype=np.float64)
        if self._margin_um <= 0:
            return np.ones(np.broadcast(y, x).shape)
        m = self._margin_um
        wob = 0.25 * m
        inside = np.minimum.reduce(
            [
                y - m + wob * np.sin(x / (3 * m) + self._edge_phase[0]),
                self.height_um - m - y + wob * np.sin(x / (3 * m) + self._edge_phase[1]),
                x - m + wob * np.sin(y / (3 * m) + self._edge_phase[2]),
                self.width_um - m - x + wob * np.sin(y / (3 * m) + self._edge_phase[3]),
            ]
        )
        return np.clip(inside / (0.5 * m), 0.0, 1.0)

    def thickness(self, y_um: np.ndarray | float, x_um: np.ndarray | float) -> np.ndarray:
        """Relative red-cell density (about 0.7-1.3 times the spec's ``rbc_density``)."""
        t = np.ones(np.broadcast(y_um, x_um).shape)
        for angle, wavelength, phase, amp in self._waves:
            proj = np.cos(angle) * x_um + np.sin(angle) * y_um
            t = t + amp * np.sin(2 * np.pi * proj / wavelength + phase)
        return t * self.spec.resolved_rbc_density

    def inside(self, y_um: np.ndarray, x_um: np.ndarray) -> np.ndarray:
        """Whether positions (µm) fall on a pixel of the slide (cells centred outside are not drawn)."""
        r = np.rint(np.asarray(y_um) / self.mpp)
        c = np.rint(np.asarray(x_um) / self.mpp)
        return (r >= 0) & (c >= 0) & (r < self.spec.size[0]) & (c < self.spec.size[1])

    # --- blocks ---------------------------------------------------------------------------
    def _cached(self, key: tuple[str, int, int], make):  # noqa: ANN001, ANN202
        value = self._cache.get(key)
        if value is None:
            value = make()
            self._cache[key] = value
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return value

    def _rng(self, bi: int, bj: int, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.spec.seed, bi, bj, stream])

    def _wbc_candidates(self, bi: int, bj: int) -> tuple[list[CellPlan], np.ndarray, np.ndarray]:
        """Candidate white cells of a block, their priorities and slot numbers (before thinning)."""
        rng = self._rng(bi, bj, 1)
        n_side = int(BLOCK_UM // WBC_SPACING_UM)
        k = np.arange(n_side * n_side)
        base_y = bi * BLOCK_UM + (k // n_side + 0.5) * WBC_SPACING_UM
        base_x = bj * BLOCK_UM + (k % n_side + 0.5) * WBC_SPACING_UM
        jitter = rng.uniform(-0.5, 0.5, (k.size, 2)) * WBC_SPACING_UM
        y, x = base_y + jitter[:, 0], base_x + jitter[:, 1]
        p_site = self.spec.resolved_wbc_density * 1e-6 * WBC_SPACING_UM**2
        occupied = rng.random(k.size) < np.minimum(p_site, 1.0) * self.coverage(y, x)
        inside = self.inside(y, x)
        priority = rng.random(k.size)
        classes = rng.choice(len(self._classes), size=k.size, p=self._probs)
        plans, prios, slots = [], [], []
        for i in np.flatnonzero(occupied & inside):
            plans.append(plan_cell(rng, self._classes[classes[i]], self.spec.subtype, y[i], x[i]))
            prios.append(priority[i])
            slots.append(i)
        return plans, np.array(prios), np.array(slots, dtype=np.int64)

    def wbcs(self, bi: int, bj: int) -> tuple[list[CellPlan], np.ndarray]:
        """White cells of block ``(bi, bj)`` after hard-core thinning, with their global ids."""
        return self._cached(("wbc", bi, bj), lambda: self._thin_wbcs(bi, bj))

    def _thin_wbcs(self, bi: int, bj: int) -> tuple[list[CellPlan], np.ndarray]:
        own, own_prio, own_slots = self._cached(
            ("cand", bi, bj), lambda: self._wbc_candidates(bi, bj)
        )
        if not own:
            return [], np.zeros(0, dtype=np.int64)
        others: list[CellPlan] = []
        other_prio: list[float] = []
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                if (
                    (di or dj)
                    and 0 <= bi + di < self.n_block_rows
                    and 0 <= bj + dj < self.n_block_cols
                ):
                    plans, prio, _ = self._cached(
                        ("cand", bi + di, bj + dj),
                        lambda a=bi + di, b=bj + dj: self._wbc_candidates(a, b),
                    )
                    others.extend(plans)
                    other_prio.extend(prio.tolist())
        allp = own + others
        prio = np.concatenate([own_prio, np.array(other_prio)])
        yx = np.array([[p.y_um, p.x_um] for p in allp])
        rad = np.array([p.radius * max(1.0, p.aspect) * 1.08 for p in allp])
        d = np.hypot(
            yx[: len(own), None, 0] - yx[None, :, 0], yx[: len(own), None, 1] - yx[None, :, 1]
        )
        clash = d < (rad[: len(own), None] + rad[None, :] + 1.0)
        clash[np.arange(len(own)), np.arange(len(own))] = False
        beaten = (clash & (prio[None, :] > own_prio[:, None])).any(axis=1)
        keep = np.flatnonzero(~beaten)
        block_index = bi * self.n_block_cols + bj
        ids = block_index * ID_STRIDE + own_slots[keep] + 1
        return [own[i] for i in keep], ids.astype(np.int64)

    def _near_wbc(self, bi: int, bj: int, yx: np.ndarray, pad_um: float) -> np.ndarray:
        """Mask of points of block ``(bi, bj)`` within a white-cell radius + ``pad_um``."""
        plans = [
            plan
            for di in (-1, 0, 1)
            for dj in (-1, 0, 1)
            if 0 <= bi + di < self.n_block_rows and 0 <= bj + dj < self.n_block_cols
            for plan in self.wbcs(bi + di, bj + dj)[0]
        ]
        if len(yx) == 0 or not plans:
            return np.zeros(len(yx), dtype=bool)
        cy, cx, r = np.array([(p.y_um, p.x_um, p.radius + pad_um) for p in plans]).T
        d2 = (yx[:, 0, None] - cy[None, :]) ** 2 + (yx[:, 1, None] - cx[None, :]) ** 2
        return (d2 < r[None, :] ** 2).any(axis=1)

    def block(self, bi: int, bj: int) -> BlockCells:
        """All cells of block ``(bi, bj)`` (cached)."""
        return self._cached(("block", bi, bj), lambda: self._make_block(bi, bj))

    def _make_block(self, bi: int, bj: int) -> BlockCells:
        wbc, wbc_ids = self.wbcs(bi, bj)
        y0, x0 = bi * BLOCK_UM, bj * BLOCK_UM
        # red cells: jittered hexagonal lattice owned by base position
        rng = self._rng(bi, bj, 2)
        dy = RBC_SPACING_UM * math.sqrt(3) / 2
        rows = np.arange(math.ceil(y0 / dy), math.ceil((y0 + BLOCK_UM) / dy))
        cols = np.arange(
            math.floor(x0 / RBC_SPACING_UM) - 1, math.ceil((x0 + BLOCK_UM) / RBC_SPACING_UM) + 1
        )
        rr, cc = np.meshgrid(rows, cols, indexing="ij")
        by = rr.ravel() * dy
        bx = (cc.ravel() + 0.5 * (rr.ravel() % 2)) * RBC_SPACING_UM
        own = (bx >= x0) & (bx < x0 + BLOCK_UM)
        by, bx = by[own], bx[own]
        yx = np.stack([by, bx], axis=1) + rng.normal(0, 1.6, (by.size, 2))
        keep_p = 0.8 * self.thickness(yx[:, 0], yx[:, 1]) * self.coverage(yx[:, 0], yx[:, 1])
        keep = rng.random(by.size) < keep_p
        extra = rng.random(by.size) < np.clip(keep_p - 0.8, 0, 1)  # thick areas: overlapping cells
        yx = np.concatenate([yx[keep], yx[extra] + rng.normal(0, 3.5, (int(extra.sum()), 2))])
        variant = rng.integers(0, self.n_rbc_variants, len(yx)).astype(np.uint8)
        near = self._near_wbc(bi, bj, yx, 0.5)
        rbc_yx, rbc_variant = yx[~near].astype(np.float32), variant[~near]
        plt_yx, plt_variant, plt_ids = self.platelets(bi, bj)
        return BlockCells(
            wbc=wbc,
            wbc_ids=wbc_ids,
            rbc_yx=rbc_yx,
            rbc_variant=rbc_variant,
            plt_yx=plt_yx,
            plt_variant=plt_variant,
            plt_ids=plt_ids,
        )

    def platelets(self, bi: int, bj: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Platelets of block ``(bi, bj)``: centres (µm), sprite variants and global ids (cached).

        Their number is ``platelet_ratio`` times the expected red-cell count of the block, so they
        are laid out without laying out the red cells (the truth table needs only these).
        """
        return self._cached(("plt", bi, bj), lambda: self._make_platelets(bi, bj))

    def _make_platelets(self, bi: int, bj: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        y0, x0 = bi * BLOCK_UM, bj * BLOCK_UM
        rng = self._rng(bi, bj, 3)
        sites = BLOCK_UM**2 / (RBC_SPACING_UM**2 * math.sqrt(3) / 2)
        mean_rbc = 0.8 * sites * float(self.thickness(y0 + BLOCK_UM / 2, x0 + BLOCK_UM / 2))
        n = min(int(rng.poisson(self.spec.platelet_ratio * mean_rbc)), ID_STRIDE - _WBC_SLOTS - 1)
        yx = np.stack([y0 + rng.random(n) * BLOCK_UM, x0 + rng.random(n) * BLOCK_UM], axis=1)
        variant = rng.integers(0, self.n_platelet_variants, n)
        ids = (bi * self.n_block_cols + bj) * ID_STRIDE + _WBC_SLOTS + 1 + np.arange(n)
        ok = ~self._near_wbc(bi, bj, yx, 2.5) & (rng.random(n) < self.coverage(yx[:, 0], yx[:, 1]))
        ok &= self.inside(yx[:, 0], yx[:, 1])
        return yx[ok], variant[ok], ids[ok].astype(np.int64)

    def blocks_touching(self, row: int, col: int, height: int, width: int) -> list[tuple[int, int]]:
        """Blocks whose cells can draw into the level-0 pixel region (row-major)."""
        reach = MAX_REACH_UM
        y0, y1 = row * self.mpp - reach, (row + height) * self.mpp + reach
        x0, x1 = col * self.mpp - reach, (col + width) * self.mpp + reach
        bi0, bi1 = max(int(y0 // BLOCK_UM), 0), min(int(y1 // BLOCK_UM), self.n_block_rows - 1)
        bj0, bj1 = max(int(x0 // BLOCK_UM), 0), min(int(x1 // BLOCK_UM), self.n_block_cols - 1)
        return [(i, j) for i in range(bi0, bi1 + 1) for j in range(bj0, bj1 + 1)]
