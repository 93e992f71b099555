"""SlideResult save/load and the atomic writers."""

import json

import numpy as np
import pandas as pd
import pytest

from hemascope.config import AnalysisConfig
from hemascope.errors import ResultError
from hemascope.files import atomic_path, atomic_write_json, atomic_write_table
from hemascope.results import COMPLETE_MARKER, SlideResult, is_complete


def _result(n=20):
    rng = np.random.default_rng(0)
    cells = pd.DataFrame(
        {
            "id": np.arange(n),
            "row": rng.uniform(0, 1000, n),
            "col": rng.uniform(0, 1000, n),
            "class": pd.Series(rng.choice(["blast", "neutrophil"], n), dtype=object),
        }
    )
    return SlideResult(
        cells=cells,
        embeddings=rng.normal(size=(n, 8)).astype(np.float32),
        differential={"counts": {"blast": 3}, "blast_pct": 15.0},
        subtype={"label": None, "abstained": True},
        smear_mask=rng.random((10, 12)) > 0.5,
        smear_mask_downsample=16.0,
        slide={"path": "x.tif", "shape": [1000, 1000], "mpp": 0.5},
        config=AnalysisConfig(mpp=0.5),
        provenance={"hemascope_version": "0.1.0"},
    )


def test_save_load_round_trip(tmp_path):
    res = _result()
    res.save(tmp_path / "r")
    assert is_complete(tmp_path / "r")
    back = SlideResult.load(tmp_path / "r")
    pd.testing.assert_frame_equal(back.cells, res.cells)
    np.testing.assert_array_equal(back.embeddings, res.embeddings)
    np.testing.assert_array_equal(back.smear_mask, res.smear_mask)
    assert back.differential == res.differential and back.subtype == res.subtype
    assert back.config == res.config and back.smear_mask_downsample == 16.0


def test_missing_marker_means_incomplete(tmp_path):
    _result().save(tmp_path / "r")
    (tmp_path / "r" / COMPLETE_MARKER).unlink()
    with pytest.raises(ResultError, match="no complete result"):
        SlideResult.load(tmp_path / "r")


def test_tampered_file_is_detected(tmp_path):
    _result().save(tmp_path / "r")
    np.save(tmp_path / "r" / "embeddings.npy", np.zeros((3, 3)))
    with pytest.raises(ResultError, match="changed"):
        SlideResult.load(tmp_path / "r")


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "t.json"
    atomic_write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text('{"v": 2, "half')
            raise RuntimeError("crash mid-write")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]


def test_atomic_directory_replace(tmp_path):
    target = tmp_path / "store.zarr"
    for value in ("a", "b"):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "x").write_text(value)
    assert (target / "x").read_text() == "b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.zarr"]


def test_table_suffix_is_checked(tmp_path):
    with pytest.raises(ResultError):
        atomic_write_table(tmp_path / "t.xlsx", pd.DataFrame({"a": [1]}))
