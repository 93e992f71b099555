"""Outlines that keep off what is not the cell: red cells cut by a tight box, the haze of defocus."""

from __future__ import annotations

import numpy as np
import pytest

from hemascope.segment import find_cells
from hemascope.synthetic import render_cell


def tight_box(cls: str, seed: int, margin_px: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """A cell cut to its box + 1 µm (0.1 µm/px): red cells cut by the box's sides around it."""
    image, cell, _ = render_cell(cls, mpp=0.1, size=300, rng=np.random.default_rng(seed))
    rows, cols = np.nonzero(cell)
    box = (slice(rows.min() - margin_px, rows.max() + 1 + margin_px),
           slice(cols.min() - margin_px, cols.max() + 1 + margin_px))
    return image[box], cell[box]


@pytest.mark.parametrize("cls, seed", [("monocyte", 0), ("monocyte", 1), ("monocyte", 2), ("neutrophil", 2)])
def test_the_cell_of_a_tight_box_keeps_off_the_red_cells_cut_by_its_sides(cls, seed):
    image, truth = tight_box(cls, seed)
    found = find_cells(image, mpp=0.1, num_workers=1)
    assert len(found.cells) == 1
    mask = found.cell_labels > 0
    assert (mask & ~truth).sum() / mask.sum() < 0.05  # before: 13-35 % of the mask on red cells and glass
    assert (mask & truth).sum() / truth.sum() > 0.6


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_haze_around_a_defocused_cell_is_no_cytoplasm(seed):
    """Cytoplasm is at least ``cytoplasm_min_red_cell_density`` as dense as the red cells around."""
    from hemascope.synthetic import DomainShift

    image, truth, _ = render_cell("monocyte", mpp=0.25, size=200, rng=np.random.default_rng(seed),
                                  shift=DomainShift(blur_um=1.0))

    def dice(k: float) -> float:
        labels = find_cells(image, mpp=0.25, num_workers=1,
                            classical={"cytoplasm_min_red_cell_density": k}).cell_labels
        mask = labels == labels[100, 100]
        return 2 * (mask & truth).sum() / (mask.sum() + truth.sum())

    default = dice(0.45)
    assert default > 0.9
    assert default > dice(0.0) + 0.01  # without the rule the outline spreads into the haze
