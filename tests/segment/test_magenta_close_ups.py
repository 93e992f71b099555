"""Close-ups of Wright/Leishman-like stains: magenta nuclei with no lilac tint, no red-cell colour known."""

from __future__ import annotations

import numpy as np
from skimage.draw import disk, ellipse

from hemascope.segment import find_cells
from hemascope.segment.metrics import dice

#: Peach glass of a warm white balance.
GLASS = np.array([253.0, 232.0, 205.0])
#: A magenta nucleus: absorbs green far more than red, as much red as blue (leukocyte tint ~0).
MAGENTA_NUCLEUS = np.array([0.30, 0.85, 0.31])
#: Pale lilac cytoplasm, bluer than the nucleus (the close-up's red-cell tint is taken from it).
CYTOPLASM = np.array([0.09, 0.12, 0.05])
#: Mauve red cells of nearly the nuclei's hue, paler.
MAUVE_RED_CELL = np.array([0.14, 0.36, 0.17])
MPP = 0.1


def _close_up(red_cells: list[tuple[float, float]], seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 30-µm close-up at 0.1 µm/px: one white cell (nucleus, cytoplasm) and optional red cells.

    Returns the RGB image, the true nucleus and the true whole-cell masks.
    """
    rng = np.random.default_rng(seed)
    od = np.zeros((300, 300, 3))
    for r, c in red_cells:  # 7.5-µm red cells
        rr, cc = disk((r, c), 37, shape=od.shape[:2])
        od[rr, cc] = MAUVE_RED_CELL
    cell = np.zeros(od.shape[:2], dtype=bool)
    cell[disk((150, 150), 65, shape=cell.shape)] = True
    nucleus = np.zeros_like(cell)
    nucleus[ellipse(145, 140, 42, 52, shape=cell.shape)] = True
    od[cell] = CYTOPLASM
    od[nucleus] = MAGENTA_NUCLEUS * rng.uniform(0.85, 1.15, (int(nucleus.sum()), 1))  # chromatin texture
    image = GLASS * 10.0 ** -od + rng.normal(0, 1.5, od.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8), nucleus, cell


def _the_cell(seg) -> tuple[np.ndarray, np.ndarray]:
    assert len(seg.cells) == 1, seg.cells[["row", "col", "area_um2"]]
    return seg.cell_labels == 1, seg.nucleus_labels == 1


def test_a_magenta_cell_on_bare_glass_is_found_and_outlined():
    """No red cells to measure a colour against, and no lilac tint: found by its density."""
    image, nucleus, cell = _close_up([])
    cells, nuclei = _the_cell(find_cells(image, mpp=MPP, num_workers=1))
    assert dice(nuclei, nucleus) > 0.9
    assert dice(cells, cell) > 0.85


def test_a_magenta_nucleus_among_red_cells_of_its_hue_leaves_them_out():
    """Mauve red cells touching the cell: the nucleus is the densest of three classes, not the red cells."""
    image, nucleus, cell = _close_up([(40.0, 40.0), (40.0, 260.0), (260.0, 40.0), (262.0, 262.0), (150.0, 263.0)])
    cells, nuclei = _the_cell(find_cells(image, mpp=MPP, num_workers=1))
    assert dice(nuclei, nucleus) > 0.9
    assert dice(cells, cell) > 0.8
