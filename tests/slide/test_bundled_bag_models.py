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
