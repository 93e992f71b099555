import math

import numpy as np
import pytest

from hemascope.classes import CELL_CLASSES, RESEARCH_USE_ONLY
from hemascope.errors import InvalidInputError
from hemascope.slide import differential_count, wilson_interval


def test_wilson_matches_reference_values():
    # Reference: Wilson 95 % interval of 3/10 is 0.1078–0.6032 (Newcombe 1998, table I style).
    low, high = wilson_interval(3, 10)
    assert low == pytest.approx(0.1078, abs=1e-3)
    assert high == pytest.approx(0.6032, abs=1e-3)
    low, high = wilson_interval(0, 20)
    assert low == 0.0 and high == pytest.approx(0.1611, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_wilson_rejects_bad_counts():
    with pytest.raises(InvalidInputError):
        wilson_interval(5, 3)
    with pytest.raises(InvalidInputError):
        wilson_interval(-1, 3)


def test_counts_percentages_and_blasts():
    labels = ["blast"] * 30 + ["lymphocyte"] * 50 + ["neutrophil"] * 20 + ["platelet"] * 7
    dc = differential_count(labels, min_cells=100)
    assert dc.n_counted == 100  # platelets are counted but not in the denominator
    assert dc.counts["platelet"] == 7
    assert dc.percent["blast"] == pytest.approx(30.0)
    assert dc.blast_percent == pytest.approx(30.0)
    assert dc.blast_ci[0] < 30.0 < dc.blast_ci[1]
    assert sum(dc.percent.values()) == pytest.approx(100.0)
    assert set(CELL_CLASSES) <= set(dc.counts)
    assert dc.sufficient and dc.reason == ""
    assert dc.notice == RESEARCH_USE_ONLY
    frame = dc.to_frame()
    assert frame.set_index("class").loc["lymphocyte", "count"] == 50
    assert not frame.set_index("class").loc["platelet", "counted"]


def test_minimum_cell_rule_and_empty():
    dc = differential_count(np.array(["blast"] * 10 + ["monocyte"] * 5), min_cells=50)
    assert not dc.sufficient
    assert "15 counted" in dc.reason and "50" in dc.reason
    empty = differential_count([], min_cells=1)
    assert empty.n_counted == 0 and not empty.sufficient and math.isnan(empty.blast_percent)
    assert empty.to_dict()["blast_percent"] is None


def test_unknown_labels_are_refused():
    with pytest.raises(InvalidInputError, match="unknown cell classes"):
        differential_count(["blast", "dragon"])
    with pytest.raises(InvalidInputError):
        differential_count(["blast"], min_cells=-1)


def test_possible_blasts_are_counted_with_the_blast_percentage_were_they_all_blasts():
    labels = ["blast", "lymphocyte", "lymphocyte", "unclassified", "neutrophil"]
    d = differential_count(labels, possible_blast=[False, True, None, True, False], min_cells=1)
    assert d.possible_blasts == 2 and d.blast_percent == 25.0
    # 1 blast + 2 possible of 4 counted + the possible one called unclassified
    assert d.blast_percent_with_possible == 60.0
    assert d.to_dict()["possible_blasts"] == 2 and d.to_dict()["blast_percent_with_possible"] == 60.0
    # a reviewer called the flagged cell blast: a blast, not a possible one
    corrected = differential_count(["blast", "blast", "lymphocyte"], possible_blast=[False, True, False])
    assert corrected.possible_blasts == 0 and corrected.blast_percent_with_possible == corrected.blast_percent
    assert differential_count(labels).possible_blasts == 0
    with pytest.raises(InvalidInputError):
        differential_count(labels, possible_blast=[True])
