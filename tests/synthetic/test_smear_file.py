"""Slides on disk: pyramidal OME-TIFF layout, truth files, masks, bounded memory, cancel, sample."""

import json
import subprocess
import sys
import threading

import numpy as np
import pytest
import tifffile

from hemascope.errors import Cancelled
from hemascope.io import open_slide
from hemascope.synthetic import (
    GroundTruth,
    SmearSpec,
    make_smear,
    read_masks,
    render_field,
    sample_slide_path,
    truth_paths,
)
from hemascope.synthetic import sample as sample_mod


def test_slide_is_a_jpeg_tiled_pyramid_with_mpp(small_smear):
    with tifffile.TiffFile(small_smear.path) as tif:
        assert tif.is_ome
        series = tif.series[0]
        assert len(series.levels) >= 3
        page = series.levels[0].keyframe
        assert (page.tilelength, page.tilewidth) == (512, 512)
        assert page.compression == tifffile.COMPRESSION.JPEG
    slide = open_slide(small_smear.path)
    assert slide.shape == (2048, 2048) and slide.mpp == pytest.approx(0.5)


def test_slide_pixels_and_truth_equal_the_in_memory_field(small_smear):
    image, truth = render_field(small_smear.spec)
    slide = open_slide(small_smear.path)
    level0 = np.asarray(slide.levels[0])
    assert np.abs(level0.astype(int) - image).mean() < 4.5  # only JPEG (q90, 4:2:0) error
    assert truth.cells.equals(small_smear.truth.cells)
    loaded = GroundTruth.load(small_smear.path)
    assert loaded.label == small_smear.truth.label
    assert loaded.subtype == "control" and loaded.spec == small_smear.spec
    assert np.array_equal(loaded.cells["id"], truth.cells["id"])
    assert np.allclose(
        loaded.cells[["row", "col", "diameter_um"]], truth.cells[["row", "col", "diameter_um"]]
    )
    assert set(loaded.cells["class"]) >= {"neutrophil", "lymphocyte", "platelet"}
    cells, nuclei = read_masks(small_smear.path)
    assert np.array_equal(cells, truth.cell_labels) and np.array_equal(nuclei, truth.nucleus_labels)
    label = json.loads(truth_paths(small_smear.path)["label"].read_text())
    assert label["kind"] == "blood" and label["seed"] == 7 and label["mpp"] == 0.5


def test_truth_paths_strip_slide_suffixes(tmp_path):
    paths = truth_paths(tmp_path / "a.b.ome.tif")
    assert paths["cells"].name == "a.b.cells.csv" and paths["label"].name == "a.b.truth.json"


def test_memory_stays_flat_while_streaming(tmp_path):
    """A 5120 x 5120 slide (79 MB of pixels) is written while resident memory stays flat."""
    code = f"""
import psutil
from hemascope.synthetic import SmearSpec, make_smear
proc, rss = psutil.Process(), []
spec = SmearSpec(size=5120, seed=1, rbc_density=0.3, wbc_density=30.0, platelet_ratio=0.02)
make_smear({str(tmp_path / "big.ome.tif")!r}, spec,
           progress=lambda d, t, m: rss.append((d / t, proc.memory_info().rss)))
early = next(r for f, r in rss if f >= 0.1)
print((max(r for _, r in rss) - early) / 2**20)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    growth_mib = float(out.stdout.strip().splitlines()[-1])
    assert growth_mib < 30, growth_mib


def test_cancel_stops_and_leaves_no_slide(tmp_path):
    cancel = threading.Event()
    path = tmp_path / "c.ome.tif"

    def progress(done, total, message):
        if done >= 2:
            cancel.set()

    with pytest.raises(Cancelled):
        make_smear(path, SmearSpec(size=2048), progress=progress, cancel=cancel)
    assert not path.exists()


def test_sample_is_committed_and_regenerates_identically(tmp_path, monkeypatch):
    committed = sample_slide_path()
    truth = GroundTruth.load(committed)
    wbc = truth.white_cells()
    assert len(wbc) > 300 and (wbc["class"] == "blast").sum() > 100
    assert committed.stat().st_size < 4.5e6
    monkeypatch.setattr(sample_mod, "_checkout_dir", lambda: tmp_path / "no-checkout")
    monkeypatch.setenv("HEMASCOPE_CACHE_DIR", str(tmp_path / "cache"))
    cached = sample_slide_path()
    assert cached.is_relative_to(tmp_path / "cache")
    assert GroundTruth.load(cached).cells.equals(truth.cells)
    a = np.asarray(open_slide(cached).levels[0])
    b = np.asarray(open_slide(committed).levels[0])
    assert np.abs(a.astype(int) - b).mean() < 0.5
    mtime = cached.stat().st_mtime_ns
    assert sample_slide_path() == cached and cached.stat().st_mtime_ns == mtime  # reused


def test_worker_processes_give_the_same_slide(tmp_path):
    spec = SmearSpec(size=(1100, 1300), seed=9, wbc_density=400.0)
    one = make_smear(tmp_path / "one.ome.tif", spec, workers=1)
    two = make_smear(tmp_path / "two.ome.tif", spec, workers=2)
    assert one.cells.equals(two.cells)
    a = np.asarray(open_slide(tmp_path / "one.ome.tif").levels[0])
    b = np.asarray(open_slide(tmp_path / "two.ome.tif").levels[0])
    assert np.array_equal(a, b)
