"""The grouped bag model (per-group mean embeddings + shares, ridge head), '+' instance selections,
and bags that keep their cells' classes through the cache."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from hemascope.errors import DataError, InvalidInputError, ModelIntegrityError
from hemascope.models import ModelCard, save_model
from hemascope.models.mil import GroupedMeanBagClassifier, build_bag_model
from hemascope.slide.bag import instances_noun, parse_instances, select_instances
from hemascope.slide.bag_model import load_bag_model
from hemascope.train.bags_data import Bag, load_bags, restrict_bag, save_bags
from hemascope.train.mil_training import bag_logits, train_bag_model

CELL_CLASSES = ["lymphocyte", "ig", "blast"]
DIM = 6


def _head():
    """A 'cell model head' that reads the class from the first three embedding features."""
    weight = torch.zeros(3, DIM)
    weight[0, 0] = weight[1, 1] = weight[2, 2] = 8.0
    return weight, torch.zeros(3)


def _cells(n, kind, rng):
    x = rng.normal(scale=0.3, size=(n, DIM)).astype(np.float32)
    x[np.arange(n), kind] += 1.0
    return x


def _bags(n_bags=24, seed=0):
    """'APL' bags hold more ig cells, and their ig cells are shifted along feature 4."""
    rng = np.random.default_rng(seed)
    bags = []
    for i in range(n_bags):
        apl = i % 2 == 0
        n = int(rng.integers(30, 60))
        kinds = rng.choice(3, size=n, p=[0.5, 0.3, 0.2] if apl else [0.6, 0.1, 0.3])
        x = _cells(n, kinds, rng)
        x[kinds == 1, 4] += 1.0 if apl else 0.0
        classes = np.array(CELL_CLASSES)[kinds]
        bags.append(Bag(f"p{i}", x, "APL" if apl else "AML", n, 0, cell_classes=classes))
    return bags


def _params():
    return {
        "cell_classes": CELL_CLASSES,
        "groups": [["blast", "ig"], ["lymphocyte"]],
        "cell_temperature": 1.0,
        "cell_head": _head(),
    }


def test_grouped_learns_and_explains_per_cell(tmp_path):
    bags = _bags()
    trained = train_bag_model(
        bags[:16], ["APL", "AML"], architecture="grouped", arch_params=_params()
    )
    assert "cell_head" not in trained.arch_params  # head lives in the weights, not in the card
    logits = bag_logits(trained.module, bags[16:])
    truth = np.array([b.label == "APL" for b in bags[16:]])
    assert ((logits[:, 0] > logits[:, 1]) == truth).mean() >= 0.85
    # the per-cell weights split the logit margin exactly (the model is linear in the cells)
    x = torch.as_tensor(bags[16].features)[None]
    out, weights = trained.module(x)
    margin = out[0, 0] - out[0, 1]
    bias = trained.module.head.bias
    assert weights.shape == (1, len(bags[16].features), 2)
    assert float((weights[0, :, 0] - weights[0, :, 1]).sum()) == pytest.approx(
        float(margin - (bias[0] - bias[1])), abs=1e-3
    )
    # padding changes nothing
    padded = torch.cat([x, torch.randn(1, 5, DIM) * 50], 1)
    mask = torch.tensor([[True] * x.shape[1] + [False] * 5])
    assert torch.allclose(trained.module(padded, mask)[0], out, atol=1e-4)
    # saved and loaded through a bag card: buffers (the cell head, the standardisation) survive
    card = ModelCard(
        kind="bag",
        name="g",
        version="0",
        classes=["APL", "AML"],
        architecture="grouped",
        arch_params=trained.arch_params,
        embedding_model="toy",
        embedding_dim=DIM,
        input_size=48,
        mpp=0.5,
        instances="all",
        min_instances=5,
    )
    loaded = load_bag_model(save_model(trained.module, card, tmp_path))
    probs, _ = loaded.predict(bags[16].features)
    assert probs == pytest.approx(torch.softmax(out[0], -1).detach().numpy(), abs=1e-5)


def test_grouped_needs_its_cell_head_and_known_groups():
    with pytest.raises(InvalidInputError, match="cell_head"):
        train_bag_model(
            _bags()[:8],
            ["APL", "AML"],
            architecture="grouped",
            arch_params={k: v for k, v in _params().items() if k != "cell_head"},
        )
    with pytest.raises(InvalidInputError, match="unknown"):
        GroupedMeanBagClassifier(DIM, 2, CELL_CLASSES, [["promyelocyte"]])
    model = build_bag_model("grouped", DIM, 2, cell_classes=CELL_CLASSES, groups=[["ig"]])
    assert isinstance(model, GroupedMeanBagClassifier)


def test_plus_selections_and_restrict_bag(tmp_path):
    cells = pd.DataFrame({"class": ["blast", "ig", "lymphocyte", "ig"]})
    assert select_instances(cells, "blast+ig").tolist() == [0, 1, 3]
    assert select_instances(cells, "all").tolist() == [0, 1, 2, 3]
    assert parse_instances("all") is None and parse_instances("blast+ig") == ("blast", "ig")
    assert instances_noun("blast") == "blasts" and instances_noun("all") == "cells"
    with pytest.raises(InvalidInputError):
        parse_instances("blast+")
    with pytest.raises(ModelIntegrityError):
        ModelCard(
            kind="bag",
            name="x",
            version="0",
            classes=["a", "b"],
            architecture="mean",
            embedding_model="m",
            embedding_dim=4,
            input_size=4,
            mpp=1.0,
            instances="+",
        )
    bag = _bags(2)[0]
    bag.cell_names = np.array([f"c{i}.png" for i in range(len(bag.features))])
    sub = restrict_bag(bag, "blast+ig")
    assert len(sub.features) == np.isin(bag.cell_classes, ["blast", "ig"]).sum()
    assert set(sub.cell_classes) <= {"blast", "ig"} and len(sub.cell_names) == len(sub.features)
    path = save_bags(tmp_path / "b.npz", [bag, _bags(2)[1]], meta={"instances": "all"})
    back = load_bags(path)[0]
    assert back.cell_classes.tolist() == bag.cell_classes.tolist()
    with pytest.raises(DataError, match="per-cell classes"):
        restrict_bag(Bag("x", bag.features, "APL"), "blast")
