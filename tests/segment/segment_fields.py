"""Synthetic fields shared by the segment tests (rendered once per session).

A module of its own (not ``conftest``), so that test modules can import it by a name no other
test folder uses.
"""

from __future__ import annotations

import functools

import numpy as np

from hemascope.synthetic import DomainShift, SmearSpec, render_field

MPP = 0.5
NEUTRAL = DomainShift()


@functools.lru_cache(maxsize=16)
def field(shift: DomainShift = NEUTRAL, size: int = 768, seed: int = 11):
    """A synthetic blood field with many white cells, and its white-cell truth table."""
    spec = SmearSpec(size=size, mpp=MPP, seed=seed, wbc_density=600.0, shift=shift)
    image, truth = render_field(spec)
    wbc = truth.cells[truth.cells["class"] != "platelet"]
    return image, wbc, truth


def truth_points(wbc) -> np.ndarray:
    """The truth table's white-cell centroids as ``(n, 2)`` (row, col)."""
    return wbc[["row", "col"]].to_numpy(dtype=float)
