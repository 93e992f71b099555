"""analyze_slide end to end on synthetic smears: results, saving, resume after a kill, cancel."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest
import zarr

from hemascope.classes import RESEARCH_USE_ONLY
from hemascope.cli.demo import describe_result
from hemascope.errors import Cancelled, ConfigError
from hemascope.pipeline import analyze_slide
from hemascope.region_checkpoints import RegionCheckpoints
from hemascope.results import COMPLETE_MARKER, SlideResult, is_complete


def _key_columns(cells: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in cells.columns if c in ("id", "region", "row", "col", "class", "confidence")]
    return cells[cols]


def test_analyze_slide_in_memory_and_saved(smear_paths, config, tmp_path):
    in_memory = analyze_slide(smear_paths[0], config)
    assert in_memory.n_cells > 5
    cells = in_memory.cells
    assert {"id", "region", "row", "col", "class", "confidence", "prob_blast"} <= set(cells.columns)
    assert cells["id"].tolist() == list(range(1, len(cells) + 1))
    assert not cells.duplicated(subset=["row", "col"]).any()
    assert in_memory.embeddings.shape == (len(cells), 8)
    assert in_memory.differential["n_counted"] + in_memory.differential["counts"]["platelet"] == len(cells)
    assert in_memory.subtype["model"] == "tiny-bag"
    models = in_memory.provenance["models"]
    assert models["cell"]["name"] == "tiny-wbc" and len(models["cell"]["sha256"]) == 64
    assert models["slide"]["sha256"]
    assert in_memory.provenance["segmenter"] == "classical"
    text = describe_result(in_memory)
    assert f"{len(cells)} cells found" in text and "Blasts:" in text and "tiny-bag" in text
    assert RESEARCH_USE_ONLY.upper() in text

    saved = analyze_slide(smear_paths[0], config, out_dir=tmp_path / "out")
    pd.testing.assert_frame_equal(saved.cells, cells)
    loaded = SlideResult.load(tmp_path / "out")
    pd.testing.assert_frame_equal(loaded.cells, cells)
    np.testing.assert_array_equal(loaded.embeddings, in_memory.embeddings)
    assert loaded.config == config
    assert RegionCheckpoints(tmp_path / "out").finished() == set(range(loaded.provenance["n_regions"]))
    # the label mask: one label per cell, value = id, written next to the result
    assert loaded.labels_path == tmp_path / "out" / "labels.ome.zarr"
    labels = np.asarray(zarr.open_group(str(loaded.labels_path), mode="r")["labels/cells/0"])
    assert set(np.unique(labels)) - {0} == set(cells["id"])
    inside = labels[cells["row"].round().astype(int), cells["col"].round().astype(int)]
    assert (inside == cells["id"].to_numpy()).mean() > 0.9
    assert loaded.smear_mask is not None and loaded.smear_mask.any()


def test_resume_recomputes_only_missing_regions(smear_paths, config, tmp_path):
    out = tmp_path / "out"
    reference = analyze_slide(smear_paths[1], config, out_dir=out)
    store = RegionCheckpoints(out)
    (out / COMPLETE_MARKER).unlink()  # as if killed before the end ...
    (store.directory / "region_000002.parquet").unlink()  # ... with region 2 unfinished
    kept = {p.name: p.stat().st_mtime_ns for p in store.directory.glob("*.parquet")}
    resumed = analyze_slide(smear_paths[1], config, out_dir=out, resume=True)
    pd.testing.assert_frame_equal(resumed.cells, reference.cells)
    assert {p.name: p.stat().st_mtime_ns for p in store.directory.glob("*.parquet") if p.name in kept} == kept
    assert (store.directory / "region_000002.parquet").is_file()
    # a complete result is returned as it is
    again = analyze_slide(smear_paths[1], config, out_dir=out, resume=True)
    pd.testing.assert_frame_equal(again.cells, reference.cells)
    (out / COMPLETE_MARKER).unlink()
    changed = dataclasses.replace(config, min_confidence=0.5)
    with pytest.raises(ConfigError, match="different"):
        analyze_slide(smear_paths[1], changed, out_dir=out, resume=True)


_KILL_SCRIPT = """
import sys, torch
torch.set_num_threads(1)
from hemascope.config import AnalysisConfig
from hemascope.pipeline import analyze_slide
analyze_slide(sys.argv[1], AnalysisConfig.from_toml(sys.argv[2]), out_dir=sys.argv[3], resume=True)
"""


def test_kill_9_loses_nothing_and_duplicates_nothing(smear_paths, config, tmp_path):
    reference = analyze_slide(smear_paths[2], config)
    out = tmp_path / "out"
    cfg = config.save(tmp_path / "run.toml")
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(smear_paths[2]), str(cfg), str(out)])
    store = RegionCheckpoints(out)
    deadline = time.monotonic() + 60
    while not store.finished() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished_before = store.finished()
    assert finished_before, "the run was killed before any region finished"
    assert not is_complete(out)
    resumed = analyze_slide(smear_paths[2], config, out_dir=out, resume=True)
    pd.testing.assert_frame_equal(_key_columns(resumed.cells), _key_columns(reference.cells))
    assert not resumed.cells.duplicated(subset=["row", "col"]).any()
    assert not list(out.rglob(".*tmp*")), "no temporary files are left to look like results"


def test_cancel_stops_the_run(smear_paths, config):
    cancel = threading.Event()
    seen = []

    def progress(done, total, message):
        seen.append(done)
        cancel.set()

    with pytest.raises(Cancelled):
        analyze_slide(smear_paths[0], config, progress=progress, cancel=cancel)
    assert seen == [1]


def test_the_pipeline_is_a_generator_that_stops_when_closed(smear_paths, config, tmp_path):
    from hemascope.pipeline import iter_analysis
    from hemascope.progress import ProgressEvent

    steps = iter_analysis(smear_paths[0], config, out_dir=tmp_path / "run")
    first = next(steps)
    assert isinstance(first, ProgressEvent) and first.done == 1 and first.total > 2
    steps.close()  # a consumer that stops early (the dock's Cancel) leaves no finished result
    assert not (tmp_path / "run" / "COMPLETE").exists()
    events, result = [], None
    gen = iter_analysis(smear_paths[0], config)
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            result = stop.value
            break
    assert [e.done for e in events] == list(range(1, first.total + 1)) and events[-1].fraction == 1.0
    assert result.n_cells == analyze_slide(smear_paths[0], config).n_cells


def test_analyze_slide_leaves_the_callers_slide_alone(smear_paths, config):
    from hemascope.io import open_slide

    slide = open_slide(smear_paths[0])
    before = (slide.mpp, slide.mpp_source)
    result = analyze_slide(slide, config.__class__(**{**config.to_dict(), "mpp": 0.3}))
    assert result.slide["mpp"] == 0.3 and (slide.mpp, slide.mpp_source) == before


def test_analyze_slide_is_headless():
    code = "import sys, hemascope; from hemascope.pipeline import analyze_slide; import hemascope.distributed, hemascope.export; print(sorted(m for m in sys.modules if m.split('.')[0] in ('napari', 'qtpy', 'PyQt6', 'magicgui', 'vispy')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
