"""Tiling: small regions give the same cells as one big region (no duplicates, none lost at seams)."""

from __future__ import annotations

import pickle
import threading

import numpy as np
import pytest

from hemascope.errors import Cancelled
from hemascope.io import slide_from_array
from hemascope.segment import concat_cell_tables, find_cells, plan_regions, segment_region
from hemascope.segment.metrics import match_points


def test_seams_do_not_duplicate_or_lose_cells(blood_field):
    image, _, _ = blood_field
    whole = find_cells(image, mpp=0.5, region_size=2048).cells
    tiled = find_cells(image, mpp=0.5, region_size=192).cells  # 16 regions, many seams
    assert len(whole) > 20
    assert len(tiled) == len(whole)
    pts = tiled[["row", "col"]].to_numpy()
    dist = np.hypot(pts[:, None, 0] - pts[None, :, 0], pts[:, None, 1] - pts[None, :, 1])
    np.fill_diagonal(dist, np.inf)
    assert dist.min() > 3.0 / 0.5  # no cell found twice
    score = match_points(pts, whole[["row", "col"]].to_numpy(), 1.0)
    assert score.recall == 1.0 and score.precision == 1.0


def test_regions_are_picklable_and_independent(blood_field):
    image, _, _ = blood_field
    slide = slide_from_array(image, mpp=0.5)
    regions = plan_regions(slide, {"segmenter": "classical"}, region_size=384)
    assert len(regions) == 4
    regions = pickle.loads(pickle.dumps(regions))
    # any order gives the same concatenated table, and each region returns exactly the cells it owns
    per_region = [segment_region(slide, r, {}) for r in reversed(regions)][::-1]
    backward = concat_cell_tables(per_region[::-1])
    forward = concat_cell_tables(per_region)
    assert forward[["row", "col"]].equals(backward[["row", "col"]])
    rows, cols = forward["row"].to_numpy(), forward["col"].to_numpy()
    for r, table in zip(regions, per_region, strict=True):
        assert r.owns(rows, cols).sum() == len(table)
        assert r.owns(table["row"].to_numpy(), table["col"].to_numpy()).all()
    whole = find_cells(image, mpp=0.5, region_size=2048).cells
    assert len(forward) == len(whole)


def test_progress_and_cancel(blood_field):
    image, _, _ = blood_field
    calls = []
    find_cells(image, mpp=0.5, region_size=384, progress=lambda d, t, m: calls.append((d, t)))
    assert calls[0] == (0, 4) and calls[-1] == (4, 4)
    event = threading.Event()
    event.set()
    with pytest.raises(Cancelled):
        find_cells(image, mpp=0.5, region_size=384, cancel=event)


def test_a_close_up_of_two_big_touching_cells_finds_both():
    """A 30 × 50 µm close-up of two 20-µm cells touching in its middle: their nuclei, 4 µm apart,
    are one candidate between them, whose 37.5-µm crop cut both cells (only one was kept). A
    close-up's crops now reach its far edges, so both cells are whole in it."""
    from skimage.draw import disk

    glass = np.array([250.0, 246.0, 240.0])
    od = np.zeros((300, 500, 3))
    for r, c in [(30, 40), (270, 60), (30, 460), (270, 450)]:
        od[disk((r, c), 38, shape=od.shape[:2])] = (0.20, 0.45, 0.30)  # red cells
    for c in (150, 350):
        od[disk((150, c), 100, shape=od.shape[:2])] = (0.12, 0.14, 0.05)  # cytoplasm
    for c in (150, 350):
        od[disk((150, c), 80, shape=od.shape[:2])] = (0.60, 1.00, 0.30)  # nucleus
    noise = np.random.default_rng(0).normal(0, 1.5, od.shape)
    image = np.clip(np.round(glass * 10.0**-od + noise), 0, 255).astype(np.uint8)
    cells = find_cells(image, mpp=0.1, num_workers=1).cells
    assert len(cells) == 2
    assert np.allclose(np.sort(cells["col"].to_numpy()), [150, 350], atol=10)
