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
