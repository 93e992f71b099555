"""A µm/px given only approximately (±25 %): large cells among red cells and on bare glass are still outlined."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import disk

from hemascope.segment import find_cells
from hemascope.segment.metrics import dice

GLASS = np.array([250.0, 240.0, 235.0])
#: Purple-blue nucleus, blue or pale grey-lilac cytoplasm, pink red cells (May-Grünwald-Giemsa-like OD).
NUCLEUS = np.array([0.75, 0.65, 0.30])
CYTOPLASM = np.array([0.16, 0.10, 0.05])
PALE_CYTOPLASM = np.array([0.045, 0.045, 0.035])
RED_CELL = np.array([0.10, 0.32, 0.16])
MPP = 0.1


def _draw(nucleus_px: float, cell_px: float, cytoplasm: np.ndarray, red_cells: list[tuple[float, float]],
          red_cell_px: float = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 30-µm close-up at 0.1 µm/px: one round white cell at the centre and optional 8-µm red cells.

    Returns the RGB image and the true nucleus and whole-cell masks.
    """
    rng = np.random.default_rng(seed)
    od = np.zeros((300, 300, 3))
    for r, c in red_cells:
        od[disk((r, c), red_cell_px, shape=od.shape[:2])] = RED_CELL
    cell = np.zeros(od.shape[:2], dtype=bool)
    cell[disk((150, 150), cell_px, shape=cell.shape)] = True
    nucleus = np.zeros_like(cell)
    nucleus[disk((150, 150), nucleus_px, shape=cell.shape)] = True
    od[cell] = cytoplasm
    od[nucleus] = NUCLEUS * rng.uniform(0.85, 1.15, (int(nucleus.sum()), 1))  # chromatin texture
    image = GLASS * 10.0 ** -od + rng.normal(0, 1.5, od.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8), nucleus, cell


def _ring(radius: float, n: int) -> list[tuple[float, float]]:
    """``n`` red-cell centres evenly around the image centre, ``radius`` pixels from it."""
    angles = 2 * np.pi * np.arange(n) / n
    return [(150 + radius * np.sin(a), 150 + radius * np.cos(a)) for a in angles]


def _the_cell(image: np.ndarray, mpp: float) -> tuple[np.ndarray, np.ndarray]:
    seg = find_cells(image, mpp=mpp, num_workers=1)
    centre = int(seg.cell_labels[150, 150])
    assert centre, seg.cells[["row", "col", "area_um2"]]
    return seg.cell_labels == centre, seg.nucleus_labels == centre


@pytest.mark.parametrize("factor", [0.8, 1.0, 1.25])
def test_a_large_cell_among_touching_red_cells_leaves_them_out(factor):
    """Red cells touch a large cell: with the scale stated 20 % too small, the reference ring lay
    beyond them and the cell was taken for one on bare glass, red cells and all."""
    image, nucleus, cell = _draw(62, 72, CYTOPLASM, _ring(118, 8))
    cells, nuclei = _the_cell(image, MPP * factor)
    assert dice(nuclei, nucleus) > 0.9
    assert dice(cells, cell) > 0.85


@pytest.mark.parametrize("factor", [0.8, 1.0, 1.25])
def test_a_large_cell_with_pale_cytoplasm_on_bare_glass_keeps_it(factor):
    """Wide pale cytoplasm on bare glass: with the scale stated 25 % too large, its fringe lay in the
    reference ring and became the cell's own "red-cell" reference; the cytoplasm was lost."""
    image, nucleus, cell = _draw(45, 118, PALE_CYTOPLASM, [])
    cells, nuclei = _the_cell(image, MPP * factor)
    assert dice(nuclei, nucleus) > 0.9
    assert dice(cells, cell) > 0.85
