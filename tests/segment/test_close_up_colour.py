"""The red cells' colour of a close-up whose dark red cells are as dense as Otsu's cut of the stain."""

from __future__ import annotations

import numpy as np
from skimage.draw import disk

from hemascope.segment.red_cells import close_up_red_cell_chroma

GLASS = np.array([250.0, 246.0, 240.0])
#: Densely stained pink red cells (a dark stain) and a purple nucleus, denser still.
DARK_RED_CELL = np.array([0.20, 0.80, 0.45])
PURPLE_NUCLEUS = np.array([0.60, 1.10, 0.30])


def _dark_close_up() -> np.ndarray:
    """A 30-µm close-up at 0.1 µm/px: a white cell in the middle, dark red cells (pale centres) around."""
    rng = np.random.default_rng(3)
    od = np.zeros((300, 300, 3))
    for r in range(20, 300, 78):
        for c in range(20, 300, 78):
            if np.hypot(r - 150, c - 150) > 100:
                od[disk((r, c), 36, shape=od.shape[:2])] = DARK_RED_CELL
                od[disk((r, c), 22, shape=od.shape[:2])] = 0.35 * DARK_RED_CELL  # central pallor
    od[disk((150, 150), 75, shape=od.shape[:2])] = 0.2 * PURPLE_NUCLEUS  # lilac cytoplasm
    od[disk((150, 150), 40, shape=od.shape[:2])] = PURPLE_NUCLEUS
    image = GLASS * 10.0 ** -od + rng.normal(0, 1.5, od.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def test_dark_red_cells_around_a_lilac_cell_give_their_colour():
    chroma = close_up_red_cell_chroma(_dark_close_up(), None, 0.1)
    assert chroma is not None
    expected = DARK_RED_CELL / np.linalg.norm(DARK_RED_CELL)
    assert float(np.dot(chroma, expected)) > 0.99


#: Blue-grey red cells (the Taleqani fields' stain, as measured there) and a lilac nucleus.
BLUE_GREY_RED_CELL = 0.45 * np.array([0.72, 0.64, 0.27])
LILAC_NUCLEUS = np.array([0.55, 0.75, 0.25])


def test_a_close_up_among_blue_grey_red_cells_takes_their_tint_for_the_red_cells():
    """A 30-µm close-up whose red cells are blue-grey: its red-cell tint was the close-up cap
    (0.02, where a white cell may be most of the stain), far under those red cells' own (0.27), so
    the red cells touching a white cell passed for its cytoplasm (another lab's cells in that stain:
    whole-cell IoU 0.36-0.50 on 6 of 100). Measured on the red cells far from the nucleus, their
    colour's tint is the red-cell tint."""
    from hemascope.io import slide_from_array
    from hemascope.segment.smear import compute_smear_mask
    from hemascope.segment.stain import colour_tint

    rng = np.random.default_rng(5)
    od = np.zeros((300, 300, 3))
    for k in range(8):
        angle = 2 * np.pi * k / 8
        od[disk((150 + 95 * np.sin(angle), 150 + 95 * np.cos(angle)), 36, shape=od.shape[:2])] = BLUE_GREY_RED_CELL
    od[disk((150, 150), 62, shape=od.shape[:2])] = np.array([0.14, 0.10, 0.03])  # pale blue cytoplasm
    od[disk((150, 150), 42, shape=od.shape[:2])] = LILAC_NUCLEUS
    image = np.clip(GLASS * 10.0 ** -od + rng.normal(0, 1.0, od.shape), 0, 255).astype(np.uint8)
    smear = compute_smear_mask(slide_from_array(image, mpp=0.1))
    expected = colour_tint(BLUE_GREY_RED_CELL / np.linalg.norm(BLUE_GREY_RED_CELL))
    assert abs(smear.red_cell_tint - expected) < 0.03
