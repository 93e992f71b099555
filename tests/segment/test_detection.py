"""White-cell detection against synthetic ground truth under each domain-shift setting."""

from __future__ import annotations

import pytest

from conftest import MPP, field, truth_points
from hemascope.segment import CELL_COLUMNS, find_cells
from hemascope.segment.metrics import match_points
from hemascope.synthetic import DOMAIN_SHIFT_SETTINGS as SHIFTS


@pytest.mark.parametrize("name", list(SHIFTS))
def test_recall_and_precision_under_domain_shift(name):
    image, wbc, _ = field(SHIFTS[name])
    seg = find_cells(image, mpp=MPP)
    assert list(seg.cells.columns[: len(CELL_COLUMNS)]) == list(CELL_COLUMNS)
    score = match_points(seg.cells[["row", "col"]].to_numpy(), truth_points(wbc), 4.0 / MPP)
    assert len(wbc) >= 30
    assert score.recall >= 0.9, (name, score)
    assert score.precision >= 0.9, (name, score)


def test_cell_measurements_are_physical(blood_field):
    image, wbc, _ = blood_field
    seg = find_cells(image, mpp=MPP)
    cells = seg.cells
    assert (cells["area_um2"] > 20).all() and (cells["area_um2"] < 500).all()
    assert ((cells["nc_ratio"] > 0) & (cells["nc_ratio"] <= 1)).all()
    assert (cells["y_um"] - cells["row"] * MPP).abs().max() < 1e-9
    assert (cells["segmenter"] == "classical").all()
    assert cells["id"].tolist() == list(range(1, len(cells) + 1))
    # label images agree with the table: label k covers the centroid area of cell k
    assert seg.cell_labels.dtype.name == "uint32" and seg.cell_labels.max() == len(cells)
    areas = [int((seg.cell_labels == k).sum()) for k in cells["id"]]
    assert abs(sum(areas) * MPP**2 - cells["area_um2"].sum()) / cells["area_um2"].sum() < 0.05
    assert ((seg.nucleus_labels > 0) <= (seg.cell_labels > 0)).all()
