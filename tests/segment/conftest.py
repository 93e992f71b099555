"""Synthetic fields shared by the segment tests (rendered once per session)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

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


@pytest.fixture
def blood_field():
    return field()


def truth_points(wbc) -> np.ndarray:
    return wbc[["row", "col"]].to_numpy(dtype=float)
