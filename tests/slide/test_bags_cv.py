"""Patient-level cross-validation: metrics, folds, bag-model CV, score baselines, abstention rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from slide_helpers import DIM

from hemascope.errors import DataError, InvalidInputError
from hemascope.train.bags_cv import (
    cross_validate,
    make_folds,
    parse_cv,
    read_folds,
)
from hemascope.train.bags_cv_baseline import class_proportions, cross_validate_scores
from hemascope.train.bags_cv_fit import choose_min_instances
from hemascope.train.bags_cv_metrics import (
    binary_metrics,
    repeated_metrics,
    roc_auc,
    sensitivity_at_specificity,
)
from hemascope.train.bags_data import Bag

CLASSES = ["APL", "AML"]


def _pairwise_auc(scores, positive):
    pos, neg = scores[positive], scores[~positive]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return wins / (len(pos) * len(neg))


def test_roc_auc_matches_pair_counting_with_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=60).astype(float)  # many ties
    positive = rng.random(60) < 0.4
    assert roc_auc(scores, positive) == pytest.approx(_pairwise_auc(scores, positive))
    assert roc_auc(np.arange(4.0), np.array([0, 0, 1, 1], bool)) == 1.0
    assert roc_auc(np.arange(4.0), np.array([1, 1, 0, 0], bool)) == 0.0
    assert np.isnan(roc_auc(np.arange(3.0), np.zeros(3, bool)))


def test_sensitivity_at_specificity():
    negatives = np.arange(10.0)  # 0..9
    positives = np.array([8.5, 9.5, 20.0, 3.0])
    scores = np.concatenate([negatives, positives])
    truth = np.r_[np.zeros(10, bool), np.ones(4, bool)]
    # 90 % specificity allows one negative above the threshold: threshold 8
    assert sensitivity_at_specificity(scores, truth, 0.9) == pytest.approx(3 / 4)
    assert sensitivity_at_specificity(scores, truth, 1.0) == pytest.approx(2 / 4)


def test_binary_and_repeated_metrics():
    truth = np.array([1, 1, 0, 0, 0], bool)
    m = binary_metrics(np.array([0.9, 0.4, 0.2, 0.1, 0.6]), truth)
    assert m["accuracy"] == pytest.approx(3 / 5) and m["sensitivity"] == 0.5
    assert m["specificity"] == pytest.approx(2 / 3) and m["n"] == 5
    assert m["brier"] == pytest.approx(np.mean([0.01, 0.36, 0.04, 0.01, 0.36]))
    rng = np.random.default_rng(1)
    truth = rng.random(40) < 0.3
    probs = np.clip(truth * 0.5 + rng.random((3, 40)) * 0.5, 0, 1)
    r = repeated_metrics(probs, truth, n_bootstrap=200)
    assert r["auc"]["low"] <= r["auc"]["mean"] <= r["auc"]["high"]
    with pytest.raises(InvalidInputError):
        binary_metrics(np.array([0.5]), np.array([True, False]))


def test_make_and_read_folds(tmp_path):
    names = [f"p{i:02d}" for i in range(23)]
    labels = ["APL"] * 8 + ["AML"] * 15
    folds = make_folds(names, labels, 3, 4, seed=0)
    assert len(folds) == 3 * 23 and folds.groupby("repeat")["bag"].nunique().eq(23).all()
    per_fold = folds[folds["label"] == "APL"].groupby(["repeat", "fold"]).size()
    assert per_fold.max() - per_fold.min() <= 1  # stratified
    pd.testing.assert_frame_equal(folds, make_folds(names, labels, 3, 4, seed=0))
    assert not folds[folds.repeat == 0]["fold"].equals(folds[folds.repeat == 1]["fold"])
    with pytest.raises(InvalidInputError, match="per class"):
        make_folds(names, labels, 1, 9)
    path = tmp_path / "folds.csv"
    folds.to_csv(path, index=False)
    bags = [Bag(n, np.zeros((1, 2), np.float32), lab) for n, lab in zip(names, labels, strict=True)]
    assert read_folds(path, bags)["fold"].tolist() == folds["fold"].tolist()
    with pytest.raises(DataError, match="do not match"):
        read_folds(path, bags[:-1])
    assert parse_cv("5x5") == (5, 5)
    with pytest.raises(InvalidInputError):
        parse_cv("5")


def _apl_bags(n_pos=10, n_neg=14, seed=0):
    """APL bags hold a few 'promyelocyte' cells shifted along one direction."""
    rng = np.random.default_rng(seed)
    direction = np.zeros(DIM, np.float32)
    direction[:4] = 4.0
    bags = []
    for i in range(n_pos + n_neg):
        label = "APL" if i < n_pos else "AML"
        n = int(rng.integers(20, 40))
        feats = rng.normal(size=(n, DIM)).astype(np.float32)
        classes = np.array(["lymphocyte"] * n, dtype=object)
        if label == "APL":
            feats[: n // 3] += direction
            classes[: n // 3] = "ig"
        bags.append(Bag(f"p{i:02d}", feats, label, n, 0, cell_classes=classes.astype(str)))
    return bags


def test_cross_validate_learns_and_reports():
    bags = _apl_bags()
    folds = make_folds([b.name for b in bags], [b.label for b in bags], 2, 3, seed=0)
    cv = cross_validate(
        bags,
        CLASSES,
        folds,
        architecture="attention",
        positive="APL",
        train_options={"epochs": 15, "batch_size": 4, "lr": 3e-3, "arch_params": {"hidden": 16}},
        curve_sizes=(1, 5),
        curve_draws=2,
        n_bootstrap=100,
    )
    assert cv.metrics["auc"]["mean"] > 0.9
    assert len(cv.predictions) == 2 * len(bags)
    probs = cv.predictions[["prob_APL", "prob_AML"]].to_numpy()
    assert np.allclose(probs.sum(1), 1)
    assert set(cv.curve["cells"]) == {0, 1, 5}
    assert cv.temperature > 0 and not cv.cells.empty
    assert {"weight", "alone", "class"} <= set(cv.cells.columns)
    # promyelocyte-like cells weigh more than the rest in APL bags
    apl_cells = cv.cells[cv.cells["bag"].isin([b.name for b in bags if b.label == "APL"])]
    assert apl_cells.groupby("class")["weight"].mean()["ig"] > 1.0


def test_score_baseline_and_proportions():
    bags = _apl_bags()
    folds = make_folds([b.name for b in bags], [b.label for b in bags], 2, 3, seed=0)
    scores = class_proportions(bags, ["ig"])
    assert scores["p00"] > 0.2 and scores["p23"] == 0.0
    cv = cross_validate_scores(scores, folds, CLASSES, positive="APL", n_bootstrap=50)
    assert cv.metrics["auc"]["mean"] == 1.0 and cv.metrics["accuracy"]["mean"] > 0.9
    # a score pointing the other way is learnt too (the fit learns the sign)
    flipped = {k: -v for k, v in scores.items()}
    assert (
        cross_validate_scores(flipped, folds, CLASSES, n_bootstrap=0).metrics["auc"]["mean"] == 1.0
    )


def test_choose_min_instances_where_accuracy_collapses():
    curve = pd.DataFrame(
        {"cells": [0, 1, 2, 5, 10, 20, 50], "accuracy": [0.9, 0.6, 0.7, 0.8, 0.87, 0.86, 0.9]}
    )
    assert choose_min_instances(curve, tolerance=0.05) == 10
    assert choose_min_instances(curve, tolerance=0.15) == 5
    assert choose_min_instances(curve.assign(accuracy=[0.9, 0.6, 0.7, 0.8, 0.87, 0.8, 0.9])) == 50
    with pytest.raises(InvalidInputError):
        choose_min_instances(curve[curve.cells > 0])
