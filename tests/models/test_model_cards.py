"""One card schema and one loader for every model kind (cell classifiers and bag models)."""

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch

from hemascope.errors import InvalidInputError, ModelIntegrityError, ModelNotFoundError
from hemascope.models import (
    ARCHITECTURES_BY_KIND,
    BUNDLED_DIR,
    MODEL_KINDS,
    ModelCard,
    build_for_card,
    list_models,
    load_model,
    save_model,
)
from hemascope.models.card_validation import validate_card_dict
from hemascope.models.mil import BAG_ARCHITECTURES, CARD_ARCHITECTURES
from hemascope.slide import load_bag_model

BUNDLED = sorted(BUNDLED_DIR.glob("*.json"))


def _bag_card(**changes):
    fields = dict(kind="bag", name="toy-bag", version="0", classes=["APL", "AML"],
                  architecture="mean", embedding_model="toy-cell", embedding_dim=8,
                  input_size=48, mpp=0.5, instances="all", min_instances=2,
                  arch_params={"hidden": 8})
    return ModelCard(**{**fields, **changes})


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_every_bundled_card_loads_through_the_one_loader_as_its_kind(path):
    data = json.loads(path.read_text())
    loaded = load_model(path.stem, kind=None)
    assert loaded.card.kind == data["kind"] in MODEL_KINDS
    assert loaded.card.architecture in ARCHITECTURES_BY_KIND[loaded.card.kind]
    assert loaded.card.name in [c.name for c in list_models(kind=loaded.card.kind)]
    other = next(k for k in MODEL_KINDS if k != loaded.card.kind)
    assert loaded.card.name not in [c.name for c in list_models(kind=other)]
    with pytest.raises(ModelIntegrityError, match=f"is a {data['kind']} model, not a {other} model"):
        load_model(path.stem, kind=other)
    if data["kind"] == "bag":  # the card round-trips: nothing lost, nothing added
        assert loaded.card.to_dict() == data


def test_a_bag_card_written_before_cards_had_a_kind_still_loads(tmp_path):
    data = json.loads((BUNDLED_DIR / "aml-subtype-demo-mean.json").read_text())
    del data["kind"]  # as the first bag-model saver wrote it
    (tmp_path / "old.json").write_text(json.dumps(data))
    shutil.copy(BUNDLED_DIR / data["weights"], tmp_path / data["weights"])
    model = load_bag_model(tmp_path / "old.json")
    assert model.card.kind == "bag" and model.card.embedding_model == "wbc-demo"
    probs, weights = model.predict(np.zeros((3, model.card.embedding_dim), np.float32))
    assert probs.sum() == pytest.approx(1.0, abs=1e-5) and weights.shape == (3, len(probs))


def test_a_bag_model_saves_and_loads_through_the_registry_on_a_device(tmp_path):
    card = _bag_card()
    module = build_for_card(card)
    path = save_model(module, card, tmp_path)
    stored = json.loads(path.read_text())
    assert stored["kind"] == "bag" and stored["sha256"] == card.sha256
    assert "mean" not in stored and "preprocess" not in stored  # cell-only fields left out
    loaded = load_model(path, device="auto", kind="bag")
    assert loaded.device.type in ("cpu", "cuda", "mps")
    x = torch.randn(1, 5, 8, device=loaded.device)
    assert loaded.module(x)[0].shape == (1, 2)
    cell = ModelCard(name="c", version="0", classes=["a", "b"], input_size=16, mpp=1.0)
    assert not {"embedding_dim", "instances", "demo"} & set(cell.to_dict())


def test_missing_local_files_and_unknown_kinds_say_what_is_missing(tmp_path):
    with pytest.raises(ModelNotFoundError, match="not found"):
        load_model(tmp_path / "absent.json", kind="bag")
    with pytest.raises(ModelNotFoundError, match="not found"):
        load_model(tmp_path / "absent.safetensors")
    save_model(build_for_card(_bag_card()), _bag_card(), tmp_path)
    (tmp_path / "toy-bag.safetensors").unlink()
    with pytest.raises(ModelNotFoundError, match="missing weights"):
        load_bag_model(tmp_path)  # a folder holding one card
    # a training run's folder: the card beside metrics.json and the last checkpoint's sidecar
    run = tmp_path / "run"
    save_model(build_for_card(_bag_card()), _bag_card(), run)
    (run / "metrics.json").write_text('{"history": []}')
    (run / "checkpoint.json").write_text('{"epoch": 3}')
    assert load_bag_model(run).card.name == "toy-bag"
    save_model(build_for_card(_bag_card()), replace(_bag_card(), name="other"), run)
    with pytest.raises(ModelNotFoundError, match="found 2 .*other.json, toy-bag.json"):
        load_bag_model(run)
    with pytest.raises(ModelNotFoundError, match="available bag models: .*apl"):
        load_model("no-such-model", kind="bag")
    with pytest.raises(InvalidInputError, match="unknown model kind"):
        list_models(kind="segmentation")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"embedding_dim": "8"}, "embedding_dim"),
        ({"embedding_dim": 0}, "embedding_dim"),
        ({"min_instances": 0}, "min_instances"),
        ({"demo": "yes"}, "demo"),
        ({"embedding_sha256": "abc"}, "embedding_sha256"),
        ({"instances": 3}, "instances"),
        ({"instances": "blast+"}, "instances"),
        ({"architecture": "transformer"}, "unknown architecture"),
        ({"embedding_model": ""}, "embedding_model"),
        ({"kind": "segmenter"}, "unknown kind"),
    ],
)
def test_bag_card_fields_are_validated(change, message):
    data = {**_bag_card().to_dict(), **change}
    with pytest.raises(ModelIntegrityError, match=message):
        ModelCard.from_dict(validate_card_dict(data))


def test_a_bag_card_missing_its_embedding_fields_is_refused():
    data = _bag_card().to_dict()
    del data["embedding_dim"]
    with pytest.raises(ModelIntegrityError, match="bag model card lacks.*embedding_dim"):
        ModelCard.from_dict(data)


def test_bag_architectures_are_listed_once_and_all_build():
    assert ARCHITECTURES_BY_KIND["bag"] == CARD_ARCHITECTURES
    for arch in BAG_ARCHITECTURES:
        params = {"hidden": 8} if arch != "grouped" else {
            "cell_classes": ["blast", "other"], "groups": [["blast"], ["other"]]}
        module = build_for_card(_bag_card(architecture=arch, arch_params=params))
        assert module(torch.randn(1, 4, 8))[1].shape == (1, 4, 2)
