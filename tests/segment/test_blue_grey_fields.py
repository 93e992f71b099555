"""Fields among blue-grey red cells: a white cell's outline stays off the red cells touching it."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import disk

from hemascope.io import slide_from_array
from hemascope.segment import find_cells
from hemascope.segment.smear import compute_smear_mask
from hemascope.segment.stain import colour_tint

GLASS = np.array([246.0, 248.0, 252.0])
#: Blue-grey red cells, their colour as measured on a Taleqani B-ALL field (tint 0.46).
BLUE_GREY_RED_CELL = 0.30 * np.array([0.807, 0.58, 0.112])
LILAC_NUCLEUS = np.array([0.55, 0.75, 0.25])
BLUE_CYTOPLASM = np.array([0.16, 0.13, 0.05])
MPP = 0.4
#: Five blasts: a 5-µm nucleus in a 1-µm rim of cytoplasm (113 µm² each), red cells packed around.
CENTRES = [(100, 100), (100, 300), (200, 200), (300, 100), (300, 300)]
CELL_UM2 = np.pi * 6.0**2


def _packed_blue_grey_field() -> np.ndarray:
    """A 160-µm field at 0.4 µm/px: red cells 7.5 µm across packed edge to edge around five blasts."""
    rng = np.random.default_rng(11)
    od = np.zeros((400, 400, 3))
    radius = 7.5 / 2 / MPP
    for r in np.arange(8, 400, 2 * radius):
        for c in np.arange(8, 400, 2 * radius):
            if all(np.hypot(r - y, c - x) > 6.0 / MPP + radius for y, x in CENTRES):
                od[disk((r, c), radius, shape=od.shape[:2])] = BLUE_GREY_RED_CELL
    for y, x in CENTRES:
        od[disk((y, x), 6.0 / MPP, shape=od.shape[:2])] = BLUE_CYTOPLASM
        od[disk((y, x), 5.0 / MPP, shape=od.shape[:2])] = LILAC_NUCLEUS
    return np.clip(np.round(GLASS * 10.0 ** -od + rng.normal(0, 1.0, od.shape)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def field() -> np.ndarray:
    return _packed_blue_grey_field()


def test_a_field_among_blue_grey_red_cells_takes_their_tint_for_the_red_cells(field):
    """The field's red-cell tint was capped at 0.25, under blue-grey red cells' own (0.33-0.46 on
    Taleqani fields), as a close-up's was before it took their colour's tint."""
    smear = compute_smear_mask(slide_from_array(field, mpp=MPP))
    expected = colour_tint(BLUE_GREY_RED_CELL / np.linalg.norm(BLUE_GREY_RED_CELL))
    assert smear.red_cell_tint == pytest.approx(expected, abs=0.04)


def test_blasts_among_blue_grey_red_cells_are_outlined_without_them(field):
    """The outline the tint is for: each blast once, without the red cells packed against it (on
    Taleqani Pre-B fields the cap gave outlines of several cells: median area 199 µm², 120 with
    the tint; this clean field is outlined right either way, a guard rather than the regression)."""
    cells = find_cells(field, mpp=MPP, num_workers=1).cells
    for y, x in CENTRES:
        near = cells[np.hypot(cells["row"] - y, cells["col"] - x) < 2.0 / MPP]
        assert len(near) == 1, (y, x)
        assert float(near["area_um2"].iloc[0]) < 1.4 * CELL_UM2, (y, x)
