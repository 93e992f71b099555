import numpy as np
import pytest
import torch
from slide_helpers import CLASSES, DIM, make_bags

from hemascope.errors import DataError, InvalidInputError
from hemascope.train.bags_data import Bag
from hemascope.train.mil_evaluation import (
    accuracy_vs_bag_size,
    evaluate_bags,
    plot_accuracy_vs_bag_size,
)
from hemascope.train.mil_training import train_bag_model


@pytest.mark.parametrize(
    ("architecture", "loss", "epochs"),
    [("attention", "ce", 8), ("mean", "ce", 8), ("instance", "gce", 16)],
)
def test_each_architecture_learns_held_out_bags(architecture, loss, epochs):
    bags = make_bags(45, seed=2)
    test = make_bags(30, seed=99)
    trained = train_bag_model(
        bags[:36],
        CLASSES,
        architecture=architecture,
        val_bags=bags[36:],
        loss=loss,
        epochs=epochs,
        batch_size=4,
        lr=3e-3,
        arch_params={"hidden": 32},
        seed=0,
    )
    result = evaluate_bags(trained.module, test, CLASSES, temperature=trained.temperature)
    assert result.metrics["accuracy"] >= 0.9
    assert 0.0 <= result.metrics["ece"] <= 1.0
    assert list(result.table.columns[:3]) == ["bag", "label", "predicted"]
    assert len(trained.history) == epochs and "val_accuracy" in trained.history[0]


def test_untrained_model_is_not_good():
    # guards the test above against a metric that always passes
    from hemascope.models.mil import build_bag_model

    torch.manual_seed(5)
    module = build_bag_model("attention", DIM, 3, hidden=32).eval()
    result = evaluate_bags(module, make_bags(60, seed=3), CLASSES)
    assert result.metrics["accuracy"] < 0.8


def test_accuracy_vs_bag_size_grows_and_plot(tmp_path, trained_attention):
    _, trained = trained_attention
    curve = accuracy_vs_bag_size(
        trained.module, make_bags(30, seed=7), CLASSES, [1, 4, 8], temperature=trained.temperature
    )
    assert list(curve["size"]) == [1, 4, 8]
    assert curve["accuracy"].iloc[-1] > curve["accuracy"].iloc[0]
    png = plot_accuracy_vs_bag_size({"test": curve}, tmp_path / "acc.png", title="synthetic")
    assert png.stat().st_size > 1000


def test_bad_training_input():
    bags = make_bags(6)
    with pytest.raises(DataError, match="empty"):
        train_bag_model(
            [*bags, Bag("void", np.zeros((0, DIM), np.float32), "alpha")], CLASSES, epochs=1
        )
    with pytest.raises(DataError, match="not among the classes"):
        train_bag_model([*bags, Bag("odd", bags[0].features, "delta")], CLASSES, epochs=1)
    with pytest.raises(DataError, match="different sizes"):
        train_bag_model(
            [*bags, Bag("wide", np.ones((3, DIM + 1), np.float32), "alpha")], CLASSES, epochs=1
        )
    with pytest.raises(DataError):
        train_bag_model([], CLASSES)
    with pytest.raises(InvalidInputError):
        train_bag_model(bags, CLASSES, loss="nonsense")


def test_ensemble_and_subsampled_calibration(tmp_path):
    from hemascope.models import ModelCard, save_model
    from hemascope.models.mil import BagEnsemble
    from hemascope.slide.bag_model import load_bag_model

    bags = make_bags(40, seed=4)
    options = dict(architecture="mean", val_bags=bags[32:], epochs=4, batch_size=4, lr=3e-3, seed=0)
    trained = train_bag_model(
        bags[:32], CLASSES, arch_params={"hidden": 16, "members": 2}, **options
    )
    assert isinstance(trained.module, BagEnsemble) and trained.arch_params["members"] == 2
    assert {r["member"] for r in trained.history} == {0, 1}
    card = ModelCard(kind="bag",
        name="ens",
        version="0.1",
        classes=CLASSES,
        architecture="mean",
        arch_params=trained.arch_params,
        embedding_model="synthetic",
        embedding_dim=DIM,
        input_size=64,
        mpp=0.5,
        temperature=trained.temperature,
    )
    loaded = load_bag_model(save_model(trained.module, card, tmp_path))
    probs, _ = loaded.predict(bags[0].features)
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)
    # sub-bag calibration sees harder (smaller) bags: never a sharper temperature than whole bags
    sub = train_bag_model(
        bags[:32], CLASSES, arch_params={"hidden": 16}, calibration="subsampled", **options
    )
    whole = train_bag_model(bags[:32], CLASSES, arch_params={"hidden": 16}, **options)
    assert sub.temperature >= whole.temperature - 1e-6
    with pytest.raises(InvalidInputError, match="calibration"):
        train_bag_model(bags[:32], CLASSES, calibration="bogus", epochs=1)


def test_combine_bag_models_of_two_architectures(tmp_path):
    from types import SimpleNamespace

    from hemascope.models import ModelCard, save_model
    from hemascope.slide.bag_model import load_bag_model
    from hemascope.train.bags_fit import combine_bag_models

    bags = make_bags(40, seed=6)
    splits = {"train": bags[:24], "val": bags[24:32], "test": bags[32:]}
    cell = SimpleNamespace(name="synthetic", version="1", sha256="f" * 64, input_size=64, mpp=0.5)
    parts = []
    for arch in ("attention", "mean"):
        trained = train_bag_model(
            splits["train"],
            CLASSES,
            architecture=arch,
            val_bags=splits["val"],
            epochs=4,
            batch_size=4,
            lr=3e-3,
            arch_params={"hidden": 16},
            seed=0,
        )
        card = ModelCard(kind="bag",
            name=arch,
            version="0.1",
            classes=CLASSES,
            architecture=arch,
            arch_params=trained.arch_params,
            embedding_model="synthetic",
            embedding_dim=DIM,
            embedding_sha256=cell.sha256,
            input_size=64,
            mpp=0.5,
            instances="all",
            licence="test",
            training_data=["synthetic bags"],
        )
        parts.append(load_bag_model(save_model(trained.module, card, tmp_path / arch)))
    report = combine_bag_models(
        parts, splits, name="both", version="0.1", cell_card=cell, out_dir=tmp_path / "both"
    )
    loaded = load_bag_model(report.card_path)
    assert loaded.card.architecture == "combined" and loaded.card.metrics["parts"] == [
        "attention v0.1",
        "mean v0.1",
    ]
    probs, weights = loaded.predict(bags[0].features)
    assert probs.sum() == pytest.approx(1.0, abs=1e-5) and weights.shape[1] == len(CLASSES)
    assert report.card.metrics["test"]["n"] == 8
    with pytest.raises(InvalidInputError, match="at least two"):
        combine_bag_models(
            parts[:1], splits, name="x", version="0", cell_card=cell, out_dir=tmp_path
        )
