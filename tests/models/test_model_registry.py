"""The registry loads safetensors + card, verifies hashes and shapes, and never unpickles."""

import copy
import json
import pickle

import numpy as np
import pytest
import torch

from hemascope.errors import ModelIntegrityError, ModelNotFoundError
from hemascope.models import (
    BUNDLED_DIR,
    ModelCard,
    list_models,
    load_model,
    save_model,
    sha256_file,
)


def test_roundtrip_from_card_and_weights_path(tiny_model):
    a = load_model(tiny_model)
    b = load_model(tiny_model.with_suffix(".safetensors"))
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(a.module(x), b.module(x))
    assert a.card.sha256 == sha256_file(tiny_model.with_suffix(".safetensors"))
    assert a.classes == ["a", "b", "c"]
    assert not a.module.training


def test_wrong_hash_is_refused(tiny_model):
    weights = tiny_model.with_suffix(".safetensors")
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        load_model(tiny_model)


def test_wrong_shape_is_refused(tiny_model):
    card = json.loads(tiny_model.read_text())
    card["arch_params"] = {"widths": [4, 8, 8, 16]}
    tiny_model.write_text(json.dumps(card))
    with pytest.raises(ModelIntegrityError, match="do not fit"):
        load_model(tiny_model)


def test_pickle_file_is_refused(tmp_path, tiny_model):
    bad = tmp_path / "evil.safetensors"
    bad.write_bytes(pickle.dumps({"w": np.zeros(3)}))
    with pytest.raises(ModelIntegrityError):
        load_model(bad)


def test_unknown_name(monkeypatch, tmp_path):
    monkeypatch.setenv("HEMASCOPE_CACHE_DIR", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="no model named"):
        load_model("no-such-model")
    with pytest.raises(ModelNotFoundError):
        load_model(tmp_path / "missing.json")


def test_url_download_is_hash_checked_and_cached(monkeypatch, tmp_path, tiny_model):
    monkeypatch.setenv("HEMASCOPE_CACHE_DIR", str(tmp_path / "cache"))
    loaded = load_model(tiny_model.as_uri())
    cached = tmp_path / "cache" / "models" / "tiny" / "tiny.safetensors"
    assert cached.is_file() and loaded.source == str(cached)
    assert "tiny" in [c.name for c in list_models()]  # cached models are listed
    # a weights URL needs a pinned hash, and a wrong one is refused
    url = tiny_model.with_suffix(".safetensors").as_uri()
    with pytest.raises(ModelIntegrityError, match="sha256"):
        load_model(url)
    with pytest.raises(ModelIntegrityError):
        load_model(url, sha256="0" * 64)
    assert load_model(url, sha256=loaded.card.sha256).card.name == "tiny"  # card from metadata
    with pytest.raises(ModelNotFoundError, match="cannot fetch"):
        load_model((tmp_path / "gone.json").as_uri())


def test_bad_cards_are_refused():
    with pytest.raises(ModelIntegrityError):
        ModelCard(name="x", version="1", classes=["a"], input_size=16, mpp=1.0)
    with pytest.raises(ModelIntegrityError, match="lacks"):
        ModelCard.from_dict({"name": "x"})


@pytest.mark.parametrize(
    "card_path",
    # bag (slide-level) cards ("kind": "bag") are verified by tests/slide
    [p for p in sorted(BUNDLED_DIR.glob("*.json")) if '"kind": "bag"' not in p.read_text()],
    ids=lambda p: p.stem,
)
def test_bundled_models_verify(card_path):
    loaded = load_model(card_path.stem)
    card = loaded.card
    assert (BUNDLED_DIR / card.weights).stat().st_size <= 20 * 2**20
    assert card.training_data and card.licence and card.metrics
    x = torch.full((1, 3, card.input_size, card.input_size), 0.0)
    assert loaded.module(x).shape == (1, len(card.classes))


def test_a_cpu_model_runs_channels_last_with_the_same_outputs_and_saves_plain_tensors(tmp_path):
    from safetensors.torch import load_file

    from hemascope.classify.crops import crops_to_tensor

    loaded = load_model("wbc", device="cpu")
    convs = [p for p in loaded.module.parameters() if p.ndim == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    plain = copy.deepcopy(loaded.module).to(memory_format=torch.contiguous_format)
    x = crops_to_tensor(np.random.default_rng(0).integers(0, 256, (8, 48, 48, 3), dtype=np.uint8), loaded.card)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.module(x), plain(x), atol=1e-4, rtol=1e-4)
    card = copy.deepcopy(loaded.card)
    card.name = "copy"
    saved = load_file(str(save_model(loaded.module, card, tmp_path).with_suffix(".safetensors")))
    bundled = load_file(str(BUNDLED_DIR / "wbc.safetensors"))
    assert saved.keys() == bundled.keys() and all(torch.equal(saved[k], bundled[k]) for k in saved)
