"""Cancel stops a run inside one big region (segmentation and classification) and saves nothing of it."""

from __future__ import annotations

import dataclasses
import itertools
import traceback

import pytest

import hemascope.segment.regions as regions
from hemascope.errors import Cancelled
from hemascope.pipeline import analyze_slide
from hemascope.region_checkpoints import RegionCheckpoints
from hemascope.results import is_complete


class AskedToken:
    """A cancel token (``is_set()``) that becomes set at its ``at``-th question, noting where each was asked."""

    def __init__(self, at: int | None = None) -> None:
        self.at = at
        self.asked: list[str] = []

    def is_set(self) -> bool:
        frames = {frame.name for frame in traceback.extract_stack()}
        where = ("segment" if "segment_region_with_masks" in frames
                 else "classify" if "run_model" in frames else "between regions")
        self.asked.append(where)
        return self.at is not None and len(self.asked) >= self.at


@pytest.fixture()
def one_region(smear_paths, config, monkeypatch):
    """One region of the whole slide, segmented and classified 4 candidates/crops at a time."""
    monkeypatch.setattr(regions, "CANDIDATE_BATCH", 4)
    return smear_paths[1], dataclasses.replace(config, region_size=1024, batch_size=4)


def test_cancel_is_asked_all_through_a_region(one_region):
    path, config = one_region
    token = AskedToken()
    analyze_slide(path, config, cancel=token)
    runs = [(where, len(list(group))) for where, group in itertools.groupby(token.asked)]
    # one region: asked once before it, all through its segmentation, once between the stages,
    # all through its classification, then while finishing the slide
    assert [where for where, _ in runs] == ["between regions", "segment", "between regions", "classify",
                                            "between regions"], runs
    assert runs[1][1] >= 4 and runs[3][1] >= 3, runs


@pytest.mark.parametrize("stage", ["segment", "classify"])
def test_cancel_inside_a_region_stops_there_and_leaves_nothing_half_written(one_region, tmp_path, stage):
    path, config = one_region
    full = AskedToken()
    expected = analyze_slide(path, config, cancel=full)
    checks = [i for i, where in enumerate(full.asked) if where == stage]
    at = checks[len(checks) // 2] + 1  # set at the stage's middle check
    token = AskedToken(at)
    out = tmp_path / "run"
    with pytest.raises(Cancelled):
        analyze_slide(path, config, out_dir=out, cancel=token)
    assert len(token.asked) == at < len(full.asked)  # nothing ran after the check that saw it
    assert token.asked[-1] == stage
    assert not is_complete(out) and RegionCheckpoints(out).load(0) is None
    assert not [p for p in out.rglob("*") if p.name.startswith(".") or p.suffix in (".part", ".tmp")]
    resumed = analyze_slide(path, config, out_dir=out, resume=True)
    assert resumed.n_cells == expected.n_cells and is_complete(out)
