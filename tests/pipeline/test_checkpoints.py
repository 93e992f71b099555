"""Region checkpoints and the run manifest that guard resume."""

import numpy as np
import pandas as pd
import pytest

from hemascope.config import AnalysisConfig
from hemascope.errors import ConfigError
from hemascope.io import slide_from_array
from hemascope.io.paths import unique_stems
from hemascope.pipeline import start_run
from hemascope.region_checkpoints import RegionCheckpoints, RegionOutput
from hemascope.segment.smear import SmearMask


def _output(index, n):
    cells = pd.DataFrame({"region": index, "row": np.arange(n, dtype=float), "class": pd.Series(["blast"] * n, dtype=object)})
    return RegionOutput(index, cells, np.ones((n, 4), np.float32) * index, {"segment": 0.5, "classify": 0.25})


def test_save_load_and_finished(tmp_path):
    store = RegionCheckpoints(tmp_path)
    store.save(_output(3, 5))
    store.save(_output(7, 0))
    assert store.finished() == {3, 7}
    back = store.load(3)
    pd.testing.assert_frame_equal(back.cells, _output(3, 5).cells)
    np.testing.assert_array_equal(back.embeddings, _output(3, 5).embeddings)
    assert back.seconds == {"segment": 0.5, "classify": 0.25}
    assert len(store.load(7).cells) == 0
    assert store.load(4) is None


def test_half_saved_region_is_redone(tmp_path):
    store = RegionCheckpoints(tmp_path)
    store.save(_output(1, 5))
    np.save(store.directory / "region_000001.npy", np.zeros((6, 4), np.float32))  # crash mid re-run
    assert store.load(1) is None


def test_resume_refuses_other_settings(tmp_path):
    slide = slide_from_array(np.full((64, 64, 3), 200, np.uint8), mpp=0.5)
    smear = SmearMask(np.ones((4, 4), bool), 16.0, (240.0, 240.0, 240.0))
    start_run(slide, [0, 1], smear, AnalysisConfig(), tmp_path, resume=False)
    RegionCheckpoints(tmp_path).save(_output(0, 2))
    start_run(slide, [0, 1], smear, AnalysisConfig(batch_size=8), tmp_path, resume=True)  # same run: keeps regions
    assert RegionCheckpoints(tmp_path).finished() == {0}
    with pytest.raises(ConfigError, match="different config"):
        start_run(slide, [0, 1], smear, AnalysisConfig(min_confidence=0.5), tmp_path, resume=True)
    start_run(slide, [0, 1], smear, AnalysisConfig(min_confidence=0.5), tmp_path, resume=False)  # fresh run: forgets
    assert RegionCheckpoints(tmp_path).finished() == set()


def test_slide_folder_names_are_unique():
    assert unique_stems(["a/x.ome.tif", "b/x.svs", "y.tif"]) == ["x", "x-2", "y"]
