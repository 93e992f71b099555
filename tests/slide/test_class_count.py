"""Cell models whose classes are not white-cell types give a class count, never an error (issue #13)."""

import pytest

from hemascope.errors import InvalidInputError
from hemascope.slide.differential import differential_count


def test_blast_model_counts_blasts_and_non_blasts():
    count = differential_count(["blast"] * 3 + ["nonblast"] * 7, classes=["nonblast", "blast"], min_cells=5)
    assert count.kind == "class count" and "not white-cell types" in count.note
    assert count.counts == {"nonblast": 7, "blast": 3} and count.blast_percent == pytest.approx(30.0)
    assert count.sufficient


def test_stage_model_counts_its_classes_without_a_blast_percentage():
    count = differential_count(["Benign", "Pre", "Pre", "unclassified"], classes=["Benign", "Early", "Pre", "Pro"],
                               min_cells=2)
    assert count.counts["Pre"] == 2 and count.counts["Early"] == 0 and count.counts["unclassified"] == 1
    assert count.n_counted == 3 and count.to_dict()["excluded_counts"] == {"unclassified": 1}
    assert count.blast_percent != count.blast_percent  # NaN: the model has no blast class


def test_white_cell_models_keep_the_differential_and_unknown_labels_still_fail():
    count = differential_count(["neutrophil", "platelet"], classes=["neutrophil", "platelet", "blast"], min_cells=1)
    assert count.kind == "differential" and count.excluded_counts == {"platelet": 1}
    with pytest.raises(InvalidInputError, match="unknown cell classes"):
        differential_count(["nonblast"])
