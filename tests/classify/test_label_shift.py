"""Label-shift EM (per-slide class mix) and the blast rule, on synthetic probabilities."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hemascope.classify.decision import class_calls, decide, decide_table
from hemascope.classify.label_shift import bias_corrected, em_priors
from hemascope.errors import InvalidInputError, ModelError
from hemascope.models.card import ModelCard

K = 4


def _posteriors(labels: np.ndarray, prior: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Exact Bayes posteriors under ``prior`` of 1-D Gaussian features (unit variance, means 0..3·1.5)."""
    means = np.arange(K) * 1.5
    x = rng.normal(means[labels], 1.0)
    like = np.exp(-0.5 * (x[:, None] - means[None, :]) ** 2)
    post = like * prior
    return post / post.sum(axis=1, keepdims=True)


def test_em_recovers_a_known_prior_shift() -> None:
    rng = np.random.default_rng(0)
    source = np.full(K, 1 / K)
    target = np.array([0.6, 0.25, 0.1, 0.05])
    labels = rng.choice(K, 4000, p=target)
    prob = _posteriors(labels, source, rng)
    before = (prob.argmax(1) == labels).mean()
    out = em_priors(prob, source, pseudo_count=0, floor=0)
    assert np.abs(out.prior - target).max() < 0.03
    assert np.allclose(out.probabilities.sum(1), 1, atol=1e-5)
    after = (out.probabilities.argmax(1) == labels).mean()
    assert after > before + 0.02  # Bayes decision under the right prior is more accurate


def test_no_shift_leaves_the_prior_where_it_was() -> None:
    rng = np.random.default_rng(1)
    source = np.array([0.4, 0.3, 0.2, 0.1])
    prob = _posteriors(rng.choice(K, 4000, p=source), source, rng)
    out = em_priors(prob, source, pseudo_count=100)
    assert np.abs(out.prior - source).max() < 0.03


def test_a_one_class_batch_does_not_collapse_the_other_classes() -> None:
    rng = np.random.default_rng(2)
    source = np.full(K, 1 / K)
    prob = _posteriors(np.zeros(40, dtype=int), source, rng)
    plain = em_priors(prob, source, pseudo_count=0, floor=0)
    guarded = em_priors(prob, source, pseudo_count=100, floor=0.05)
    assert plain.prior[1:].min() < 1e-3  # what the guards are for
    assert guarded.prior[1:].min() >= 0.05 * source[1] - 1e-9
    assert guarded.prior[0] < 0.7  # 40 cells move a 100-cell prior only part of the way
    # a clear cell of another class keeps its call after adapting to the one-class batch
    clear = np.array([[0.02, 0.03, 0.9, 0.05]])
    both = em_priors(np.vstack([prob, clear]), source, pseudo_count=100, floor=0.05)
    assert both.probabilities[-1].argmax() == 2


def test_em_rejects_bad_input_and_passes_an_empty_batch() -> None:
    with pytest.raises(InvalidInputError):
        em_priors(np.ones((3, 2)) / 2, np.ones(3))
    with pytest.raises(InvalidInputError):
        em_priors(np.ones((3, 2)) / 2, np.array([1.0, 0.0]))
    empty = em_priors(np.zeros((0, 2)), np.array([0.5, 0.5]))
    assert empty.probabilities.shape == (0, 2) and empty.iterations == 0


def test_bias_corrected_with_the_card_temperature_and_no_bias_is_the_identity() -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(size=(5, K))
    p = np.exp(z / 1.7)
    p /= p.sum(1, keepdims=True)
    assert np.allclose(bias_corrected(p, 1.7, 1.7, np.zeros(K)), p, atol=1e-9)
    q = bias_corrected(p, 1.7, 1.0, np.array([0, 0, 0, 5.0]))
    assert (q.argmax(1) == 3).all()


def test_blast_rule_withholds_weak_blast_calls_only() -> None:
    classes = ["lymphocyte", "neutrophil", "blast"]
    prob = np.array([[0.35, 0.10, 0.55], [0.05, 0.05, 0.90], [0.70, 0.20, 0.10]])
    top, withheld = class_calls(prob, classes, blast_min=0.6)
    assert top.tolist() == [0, 2, 0]
    assert withheld.tolist() == [True, False, False]
    top0, withheld0 = class_calls(prob, classes, blast_min=0.0)
    assert top0.tolist() == [2, 2, 0] and not withheld0.any()


def test_balance_favours_a_rare_class() -> None:
    prob = np.array([[0.55, 0.45]])
    prior = np.array([0.9, 0.1])
    assert class_calls(prob, ["a", "b"], prior=prior, balance=0.0)[0].tolist() == [0]
    assert class_calls(prob, ["a", "b"], prior=prior, balance=0.5)[0].tolist() == [1]


def _card(preprocess: dict) -> ModelCard:
    return ModelCard(
        name="t", version="0", classes=["lymphocyte", "neutrophil", "blast"], input_size=48,
        mpp=0.5, architecture="cellnet", preprocess=preprocess,
    )


def test_decide_follows_the_card_and_can_be_switched_off() -> None:
    settings = {"default": True, "source_prior": [0.4, 0.4, 0.2], "pseudo_count": 0.0}
    card = _card({"label_shift": settings, "blast_rule": {"min_probability": 0.6}})
    rng = np.random.default_rng(4)
    prob = rng.dirichlet(np.ones(3), size=50)
    adapted = decide(prob, card)
    assert adapted.prior is not None and adapted.probabilities.shape == prob.shape
    assert not np.allclose(adapted.probabilities, prob)
    plain = decide(prob, card, adapt_priors=False, blast_min=0.0)
    assert plain.prior is None and (plain.top == prob.argmax(1)).all()
    ruled = decide(prob, card, adapt_priors=False)
    weak = (prob.argmax(1) == 2) & (prob[:, 2] < 0.6)
    assert (ruled.blast_withheld == weak).all() and (ruled.top[weak] != 2).all()
    with pytest.raises(ModelError):
        decide(prob, _card({}), adapt_priors=True)
    with pytest.raises(InvalidInputError):
        decide(prob, card, blast_min=1.5)
    off = dataclasses.replace(card, preprocess={"label_shift": {**settings, "default": False}})
    assert decide(prob, off).prior is None


def test_decide_table_calls_a_whole_slide_from_its_plain_probabilities() -> None:
    import pandas as pd

    settings = {"default": True, "source_prior": [0.4, 0.4, 0.2], "pseudo_count": 0.0}
    card = _card({"label_shift": settings, "blast_rule": {"min_probability": 0.6}})
    prob = np.random.default_rng(5).dirichlet(np.ones(3), size=40)
    cells = pd.DataFrame({"id": np.arange(40), **{f"prob_{c}": prob[:, j] for j, c in enumerate(card.classes)}})
    cells["class"] = "plain"
    called = decide_table(cells, card)
    expected = decide(prob, card)
    assert called["class"].tolist() == [card.classes[t] for t in expected.top]
    assert np.allclose(called["prob_blast"], expected.probabilities[:, 2])
    assert (cells["class"] == "plain").all() and (called["id"] == cells["id"]).all()  # a copy
    assert called["possible_blast"].tolist() == expected.blast_withheld.tolist()
    with pytest.raises(InvalidInputError, match="prob_blast"):
        decide_table(cells.drop(columns="prob_blast"), card)


def test_cli_classify_adapts_by_card_and_can_switch_it_off(tmp_path):
    import pandas as pd
    import torch
    from PIL import Image

    from hemascope.cli.main import main
    from hemascope.models import build_model, save_model

    settings = {"default": True, "source_prior": [0.6, 0.3, 0.1], "pseudo_count": 0.0}
    card = dataclasses.replace(
        _card({"label_shift": settings, "blast_rule": {"min_probability": 0.6}}),
        input_size=16, mpp=1.0, arch_params={"widths": [4, 8, 8, 8]},
    )
    torch.manual_seed(0)
    path = save_model(build_model("cellnet", 3, card.arch_params), card, tmp_path / "m")
    rng = np.random.default_rng(5)
    (tmp_path / "cells").mkdir()
    for i in range(12):
        img = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
        Image.fromarray(img).save(tmp_path / "cells" / f"{i}.png")
    base = ["classify", str(tmp_path / "cells"), "--mpp", "0.5", "--model", str(path), "--quiet"]
    assert main([*base, "--out", str(tmp_path / "a.csv")]) == 0
    assert main([*base, "--out", str(tmp_path / "p.csv"), "--no-adapt-priors", "--blast-min", "0"]) == 0
    adapted, plain = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "p.csv")
    cols = ["prob_lymphocyte", "prob_neutrophil", "prob_blast"]
    assert list(adapted.columns) == list(plain.columns)
    assert not np.allclose(adapted[cols], plain[cols], atol=1e-4)
    assert (plain["class"] == plain[cols].idxmax(axis=1).str.removeprefix("prob_")).all()
    assert not ((adapted["class"] == "blast") & (adapted["prob_blast"] < 0.6)).any()
    assert main([*base, "--out", str(tmp_path / "bad.csv"), "--blast-min", "1.5"]) == 2
    assert not (tmp_path / "bad.csv").exists()


def test_a_withheld_blast_call_is_flagged_as_a_possible_blast_in_the_table() -> None:
    """The cell the rule does not call blast keeps its next class and is flagged for review;
    a model without a blast class has no flag column."""
    card = _card({"blast_rule": {"min_probability": 0.6}})
    prob = np.array([[0.35, 0.10, 0.55], [0.05, 0.05, 0.90], [0.70, 0.20, 0.10]])
    table = decide(prob, card).table(card)
    assert table["class"].tolist() == ["lymphocyte", "blast", "lymphocyte"]
    assert table["possible_blast"].tolist() == [True, False, False]
    two = dataclasses.replace(card, classes=["lymphocyte", "neutrophil", "monocyte"])
    assert "possible_blast" not in decide(prob, two).table(two).columns
