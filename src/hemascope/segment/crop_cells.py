"""The cells a candidate's crop yields (:mod:`hemascope.segment.regions`): the one at its centre
(:func:`select_instance`), in a close-up the other whole cells touching it (:func:`whole_neighbours`),
each cut to its box (:class:`CellMask`, :func:`cut_to_box`), and whether two outlines from two
crops are one cell (:func:`same_cell`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hemascope.segment.stain import leukocyte_tint, optical_density


def select_instance(cells: np.ndarray, centre: tuple[int, int], max_px: float) -> int:
    """The label of the cell at ``centre`` of a crop's labels, else of the nearest within
    ``max_px``; 0 when none."""
    label = int(cells[centre])
    if label or not cells.any():
        return label
    rr, cc = np.nonzero(cells)
    dist = np.hypot(rr - centre[0], cc - centre[1])
    k = int(np.argmin(dist))
    return int(cells[rr[k], cc[k]]) if dist[k] <= max_px else 0


#: A close-up's second cell is taken only beside a lilac nucleus (leukocyte tint at least this) ...
NEIGHBOUR_MIN_TINT = 0.1
#: ... and when its own nucleus has at least this share of that tint (red cells outlined as
#: "cells" in the crop have none; magenta nuclei, whose tint says little, take no neighbours).
NEIGHBOUR_TINT_SHARE = 0.75


def whole_neighbours(cells: np.ndarray, nuclei: np.ndarray, label: int, inside: tuple[int, int, int, int] | None,
                     crop: np.ndarray, background: tuple[float, float, float]) -> list[int]:
    """The other white cells of a close-up's crop beside cell ``label``: wholly inside the picture
    (``inside``: its box in the crop, ``None``: all of the crop) and clear of the crop's edges, with
    a nucleus as lilac as ``label``'s (:data:`NEIGHBOUR_MIN_TINT`, :data:`NEIGHBOUR_TINT_SHARE`)."""
    others = np.unique(cells[cells > 0])
    if len(others) < 2:
        return []
    edge = np.ones(cells.shape, dtype=bool)
    r0, r1, c0, c1 = inside if inside is not None else (0, cells.shape[0], 0, cells.shape[1])
    edge[r0 + 1 : r1 - 1, c0 + 1 : c1 - 1] = False
    cut = set(np.unique(cells[edge & (cells > 0)]).tolist())
    tint = leukocyte_tint(optical_density(crop, np.asarray(background, dtype=np.float32)))
    own = float(np.median(tint[nuclei == label])) if (nuclei == label).any() else 0.0
    if own < NEIGHBOUR_MIN_TINT:
        return []
    return [int(k) for k in others if k != label and k not in cut and (nuclei == k).any()
            and float(np.median(tint[nuclei == k])) >= NEIGHBOUR_TINT_SHARE * own]


@dataclass(frozen=True)
class CellMask:
    """The masks of one found cell: level-0 top-left and boolean cell/nucleus arrays."""

    origin: tuple[int, int]
    cell: np.ndarray
    nucleus: np.ndarray


def cut_to_box(cell: np.ndarray, nucleus: np.ndarray, origin: tuple[int, int]) -> CellMask:
    """One cell's masks cut to its box (``origin``: the crop's level-0 top-left)."""
    rr, cc = np.nonzero(cell)
    r_lo, c_lo = int(rr.min()), int(cc.min())
    box = (slice(r_lo, int(rr.max()) + 1), slice(c_lo, int(cc.max()) + 1))
    return CellMask((int(origin[0] + r_lo), int(origin[1] + c_lo)), cell[box], nucleus[box])


#: Two outlines whose whole-cell masks overlap by more than this intersection-over-union are one
#: cell reached from two candidates (a lobe each) and outlined differently in their two crops.
SAME_CELL_IOU = 0.5


def same_cell(a: CellMask, b: CellMask) -> bool:
    """Whether two found cells are one: whole-cell IoU above :data:`SAME_CELL_IOU`."""
    r0, c0 = max(a.origin[0], b.origin[0]), max(a.origin[1], b.origin[1])
    r1 = min(a.origin[0] + a.cell.shape[0], b.origin[0] + b.cell.shape[0])
    c1 = min(a.origin[1] + a.cell.shape[1], b.origin[1] + b.cell.shape[1])
    if r1 <= r0 or c1 <= c0:
        return False
    wa = a.cell[r0 - a.origin[0]: r1 - a.origin[0], c0 - a.origin[1]: c1 - a.origin[1]]
    wb = b.cell[r0 - b.origin[0]: r1 - b.origin[0], c0 - b.origin[1]: c1 - b.origin[1]]
    shared = int((wa & wb).sum())
    return shared > SAME_CELL_IOU * (int(a.cell.sum()) + int(b.cell.sum()) - shared)
