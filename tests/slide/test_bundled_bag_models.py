"""Every bundled bag model loads, verifies its hash, fits its cell model and carries provenance."""

import json

import numpy as np
import pytest

from hemascope.classes import RESEARCH_USE_ONLY
from hemascope.models import BUNDLED_DIR, list_models
from hemascope.slide import load_bag_model

BAG_CARDS = [
    p for p in sorted(BUNDLED_DIR.glob("*.json")) if json.loads(p.read_text()).get("kind") == "bag"
]


@pytest.mark.parametrize("card_path", BAG_CARDS, ids=lambda p: p.stem)
def test_bundled_bag_model(card_path):
    model = load_bag_model(card_path.stem)
    card = model.card
    assert card.name in [c.name for c in list_models(kind="bag")]
    assert card.training_data and card.licence
    # held-out test bags, or (small cohorts) a patient-level cross-validation
    assert card.metrics["n_bags"]["test"] > 0 or "cross_validation" in card.metrics
    assert card.name.startswith(("taleqani-all", "aml-subtype-demo", "apl"))
    # demo models say so everywhere they are shown
    assert card.demo == card.name.startswith("aml-subtype-demo")
    if card.demo:
        assert "SYNTHETIC/DEMO" in card.caption
    assert RESEARCH_USE_ONLY in card.caption
    assert (BUNDLED_DIR / card.weights).stat().st_size <= 20 * 2**20
    cell_card = json.loads((BUNDLED_DIR / f"{card.embedding_model}.json").read_text())
    assert card.embedding_sha256 == cell_card["sha256"], (
        "bag model is stale: retrain it on the current cell model"
    )
    assert card.embedding_version == cell_card["version"]
    assert card.embedding_dim == cell_card["arch_params"]["widths"][-1]
    if card.demo:  # a demo bag model reads a demo (synthetic-trained) cell model, which says so
        assert "SYNTHETIC/DEMO" in cell_card["description"]
        assert all("SYNTHETIC/DEMO" in line for line in cell_card["training_data"][:1])
    probs, weights = model.predict(np.zeros((7, card.embedding_dim), np.float32))
    assert probs.shape == (len(card.classes),) and weights.shape == (7, len(card.classes))
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_apl_card_names_its_data_terms_and_cross_validated_metrics():
    card = load_bag_model("apl").card
    assert card.classes == ["APL", "AML"] and not card.demo and card.embedding_model == "wbc"
    text = " ".join(card.training_data)
    assert "DeepAPL" in text and "Sidhom" in text and "npj Precision Oncology" in text
    assert "Johns Hopkins" in card.licence and "research use only" in card.licence
    cv = card.metrics["cross_validation"]
    assert cv["n_bags"] == 82 and cv["repeats"] * cv["folds"] >= 25
    assert cv["metrics"]["auc"]["mean"] >= 0.9
    assert card.min_instances >= 5  # abstains on bags where the CV accuracy collapsed


def _cells_like(model, cell_class: str, n: int) -> np.ndarray:
    """Embeddings the apl model's own copy of the wbc head calls ``cell_class``."""
    head = model.module.cell_weight.numpy()
    row = head[model.card.arch_params["cell_classes"].index(cell_class)]
    return np.repeat((6.0 * row / np.linalg.norm(row))[None], n, axis=0).astype(np.float32)


def _training_like_bag(model, n_first: int, shift: float = 0.0) -> np.ndarray:
    """100 cells: ``n_first`` at the training bags' mean embedding of the blast/ig group, the rest
    at the other group's; ``shift`` moves every embedding (as another stain or scanner would)."""
    mean, dim = model.module.feature_mean.numpy(), model.card.embedding_dim
    first, other = mean[:dim], mean[dim + 1 : 2 * dim + 1]
    cells = np.vstack([np.repeat(first[None], n_first, 0), np.repeat(other[None], 100 - n_first, 0)])
    return (cells + shift).astype(np.float32)


def test_apl_abstains_on_bags_unlike_its_training_patients():
    """apl answers 'APL or another AML' for AML patients. Shown blood with almost no blast- or
    promyelocyte-like cells (a normal smear), with almost nothing else (a lymphoblastic
    leukaemia's blood), or cells whose profile lies further from its 82 training patients than
    any of them did (another stain, scanner or disease), it abstains and says why, instead of
    answering with p ~ 1 (B-ALL fields got APL at p 0.79-0.98 before the last two checks)."""
    import pandas as pd

    from hemascope.export.report import subtype_line
    from hemascope.slide import predict_subtype
    from hemascope.slide.subtype import bag_distance

    model = load_bag_model("apl")
    card = model.card
    floors, limit = card.domain_reference["min_group_shares"], card.domain_reference["max_bag_distance"]
    assert "known to have AML" in card.question and 0 < floors[0] < 0.1 and 0 < floors[1] < 0.5
    assert 1.5 < limit < 4
    table = pd.DataFrame({"class": ["neutrophil"] * 100})
    normal = predict_subtype(table.iloc[:60], _cells_like(model, "neutrophil", 60), model)
    assert normal.abstained and normal.label is None
    assert "unlike the training patients" in normal.reason and "look blast/ig, fewer" in normal.reason
    only_blasts = predict_subtype(table, _cells_like(model, "blast", 100), model)
    assert only_blasts.abstained and "look other than blast/ig, fewer" in only_blasts.reason
    like = _training_like_bag(model, 40)
    assert bag_distance(model, like) < limit
    answered = predict_subtype(table, like, model)
    assert not answered.abstained and answered.label in card.classes
    assert answered.to_dict()["question"] == card.question
    assert subtype_line(answered.to_dict()).endswith(card.question)
    shifted = _training_like_bag(model, 40, shift=0.5)
    assert bag_distance(model, shifted) > limit
    far = predict_subtype(table, shifted, model)
    assert far.abstained and "standard deviations (RMS) from theirs" in far.reason


def test_bag_distance_is_the_rms_of_the_standardised_bag_vector():
    import torch

    from hemascope.slide.subtype import bag_distance

    model = load_bag_model("apl")
    cells = _training_like_bag(model, 30, shift=0.2)
    with torch.no_grad():
        vector = model.module.bag_features(torch.as_tensor(cells)[None])[0].numpy()
    z = (vector - model.module.feature_mean.numpy()) / model.module.feature_std.numpy()
    assert bag_distance(model, cells) == pytest.approx(float(np.sqrt(np.mean(z**2))), rel=1e-5)
    assert bag_distance(load_bag_model("taleqani-all"), np.zeros((5, 128), np.float32)) is None
