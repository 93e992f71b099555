"""``--init``: start a cell model from another one's weights, head aside when the classes differ."""

import numpy as np
import pytest
import torch
from PIL import Image

from hemascope.cli.main import main
from hemascope.errors import ModelIntegrityError
from hemascope.models import ModelCard, build_model, load_model, save_model
from hemascope.train.warm_start import init_from_model


def _make_cells(root, n, seed):
    """Two classes: a small dark round nucleus vs three pale lobes."""
    rng = np.random.default_rng(seed)
    rr, cc = np.mgrid[:40, :40]
    for cls, spots in (("round", [(0, 0, 36)]), ("lobed", [(-5, -5, 12), (5, 5, 12), (-5, 5, 12)])):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = np.full((40, 40, 3), 235, np.uint8)
            for dr, dc, r2 in spots:
                img[(rr - 20 - dr) ** 2 + (cc - 20 - dc) ** 2 <= r2] = (120, 60, 160)
            noise = rng.integers(-10, 11, img.shape)
            Image.fromarray(np.clip(img + noise, 0, 255).astype(np.uint8)).save(
                root / cls / f"{i}.png"
            )
    return root


def _card(classes, widths=(4, 8, 8, 8), **kw):
    kw = {"input_size": 16, "mpp": 1.0, **kw}
    return ModelCard(
        name="src",
        version="1.0.0",
        classes=list(classes),
        arch_params={"widths": list(widths)},
        **kw,
    )


@pytest.fixture
def source(tmp_path):
    torch.manual_seed(1)
    card = _card(["a", "b", "c"])
    module = build_model(card.architecture, 3, card.arch_params)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.5)
    return save_model(module, card, tmp_path / "src"), module


def test_features_copied_head_left_when_classes_differ(source):
    path, src = source
    card = _card(["x", "y"])
    module = build_model(card.architecture, 2, card.arch_params)
    head_before = module.head.weight.detach().clone()
    started = init_from_model(module, card, str(path))
    assert started.source.startswith("src@1.0.0")
    assert sorted(started.skipped) == ["head.bias", "head.weight"]
    for key, value in src.state_dict().items():
        if not key.startswith("head."):
            assert torch.equal(module.state_dict()[key], value), key
    assert torch.equal(module.head.weight, head_before)


def test_head_copied_when_classes_are_the_same(source):
    path, src = source
    card = _card(["a", "b", "c"])
    module = build_model(card.architecture, 3, card.arch_params)
    assert init_from_model(module, card, str(path)).skipped == []
    assert torch.equal(module.head.weight, src.head.weight)


@pytest.mark.parametrize(
    "change", [{"widths": (4, 8, 8, 16)}, {"mean": [0.4, 0.5, 0.5]}, {"input_size": 24}]
)
def test_other_architecture_or_input_is_refused(source, change):
    path, _ = source
    widths = change.pop("widths", (4, 8, 8, 8))
    card = _card(["x", "y"], widths=widths, **change)
    module = build_model(card.architecture, 2, card.arch_params)
    with pytest.raises(ModelIntegrityError, match="cannot start from src@1.0.0"):
        init_from_model(module, card, str(path))


def test_cli_train_cells_init(tmp_path, source):
    path, _ = source
    data = _make_cells(tmp_path / "cells", n=12, seed=2)
    args = ["train", "cells", "--train", str(data), "--mpp", "0.5", "--name", "warm"]
    args += ["--input-size", "16", "--model-mpp", "1.0", "--widths", "4,8,8,8", "--epochs", "1"]
    args += ["--batch-size", "16", "--threads", "1", "--device", "cpu", "--quiet"]
    assert main([*args, "--init", str(path), "--out", str(tmp_path / "run")]) == 0
    card = load_model(tmp_path / "run" / "warm.json").card
    assert any(t.startswith("initialised from src@1.0.0") for t in card.training_data)
    assert card.classes == ["lobed", "round"]
    # the bundled wbc has other widths: one clear error, exit code 2
    assert main([*args, "--init", "wbc", "--out", str(tmp_path / "bad")]) == 2
