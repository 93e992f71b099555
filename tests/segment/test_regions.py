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
