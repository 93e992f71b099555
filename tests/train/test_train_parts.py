"""Losses, sampling, label noise, augmentation, metrics and data sets of the training room."""

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from hemascope.errors import DataError, InvalidInputError
from hemascope.train import (
    LOSSES,
    AugmentConfig,
    augment_batch,
    balanced_weights,
    classification_metrics,
    expected_calibration_error,
    hed_shift,
    inject_symmetric_noise,
    make_loss,
    read_cell_table,
    save_confusion_png,
    split_table,
)


@pytest.mark.parametrize("name", LOSSES)
def test_losses_are_finite_differentiable_and_prefer_the_truth(name):
    counts = np.array([100, 10, 5])
    loss = make_loss(name, counts, epochs=3)
    target = torch.tensor([0, 1, 2, 0])
    good = torch.nn.functional.one_hot(target, 3).float() * 6
    bad = torch.roll(good, 1, dims=1)
    logits = bad.clone().requires_grad_(True)
    value = loss(logits, target)
    value.backward()
    assert torch.isfinite(value) and logits.grad.abs().sum() > 0
    assert loss(good, target) < value


def test_unknown_loss():
    with pytest.raises(InvalidInputError):
        make_loss("hinge", np.array([1, 1]))


def test_ldam_defers_reweighting():
    loss = make_loss("ldam", np.array([1000, 10]), epochs=3)  # DRW from epoch 2
    logits, target = torch.zeros(2, 2), torch.tensor([0, 1])
    loss.set_epoch(0)
    early = float(loss(logits, target))
    loss.set_epoch(2)
    assert float(loss(logits, target)) != pytest.approx(early)


def test_balanced_weights_equalise_classes_and_domains():
    labels = np.array([0] * 90 + [1] * 10 + [0] * 5 + [2] * 5)
    domains = np.array(["a"] * 100 + ["b"] * 10)
    w = balanced_weights(labels, domains)
    mass = lambda m: w[m].sum() / w.sum()  # noqa: E731
    assert mass(domains == "a") == pytest.approx(0.5)
    assert mass((domains == "a") & (labels == 0)) == pytest.approx(0.25)
    w2 = balanced_weights(labels, domains, by_domain=False)
    assert mass_of(w2, labels == 1) == pytest.approx(mass_of(w2, labels == 2))


def mass_of(w, m):
    return w[m].sum() / w.sum()


def test_symmetric_noise_flips_exactly_the_rate():
    labels = np.repeat(np.arange(5), 200)
    noisy = inject_symmetric_noise(labels, 0.2, 5, seed=1)
    assert (noisy != labels).sum() == 200
    assert np.array_equal(noisy, inject_symmetric_noise(labels, 0.2, 5, seed=1))
    assert len(np.unique(noisy[noisy != labels])) == 5  # spread over all classes
    with pytest.raises(InvalidInputError):
        inject_symmetric_noise(labels, 1.0, 5)


def test_augmentation_shapes_determinism_and_identity():
    crops = torch.randint(0, 256, (4, 24, 24, 3), dtype=torch.uint8)
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    a = augment_batch(crops, 16, [0.5] * 3, [0.25] * 3, AugmentConfig(), g())
    b = augment_batch(crops, 16, [0.5] * 3, [0.25] * 3, AugmentConfig(), g())
    assert a.shape == (4, 3, 16, 16) and torch.equal(a, b)
    off = augment_batch(crops, 16, [0.0] * 3, [1.0] * 3, AugmentConfig.off())
    assert torch.allclose(off * 255, crops[:, 4:20, 4:20].permute(0, 3, 1, 2).float(), atol=1e-3)
    x = torch.rand(2, 3, 8, 8) * 0.8 + 0.1
    assert torch.allclose(hed_shift(x, torch.zeros(2, 3), torch.zeros(2, 3)), x, atol=1e-4)
    darker = hed_shift(x, torch.tensor([[0.5, 0.0, 0.0]] * 2), torch.zeros(2, 3))
    assert darker.mean() < x.mean()


def test_metrics_on_a_known_confusion(tmp_path):
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 1, 0])
    m = classification_metrics(y_true, y_pred, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["per_class"]["a"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["b"]["recall"] == pytest.approx(1.0)
    assert m["per_class"]["c"]["f1"] == 0
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 0) / 3)
    assert m["confusion"] == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    png = save_confusion_png(m["confusion"], ["a", "b", "c"], tmp_path / "cm.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    prob = np.array([[0.9, 0.1], [0.9, 0.1]])
    assert expected_calibration_error(prob, np.array([0, 1])) == pytest.approx(0.4)


def test_cell_tables_from_folders_and_csv(tmp_path, monkeypatch):
    for cls in ("x", "y"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(
                tmp_path / "data" / cls / f"{i}.png"
            )
    t = read_cell_table(tmp_path / "data", mpp=0.5)
    assert len(t) == 8 and set(t["class"]) == {"x", "y"} and (t["domain"] == "data").all()
    # pictures in sub-folders of a class count; a Mac's `._` files and __MACOSX do not
    (tmp_path / "data" / "x" / "batch2").mkdir()
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "data" / "x" / "batch2" / "9.png")
    (tmp_path / "data" / "x" / "._0.png").write_bytes(b"\x00\x05\x16\x07 Mac OS X")
    (tmp_path / "data" / "__MACOSX" / "x").mkdir(parents=True)
    (tmp_path / "data" / "__MACOSX" / "x" / "._0.png").write_bytes(b"\x00\x05\x16\x07")
    t = read_cell_table(tmp_path / "data", mpp=0.5)
    assert len(t) == 9 and set(t["class"]) == {"x", "y"}
    assert t["path"].str.endswith("9.png").sum() == 1
    with pytest.raises(DataError, match="µm/px"):
        read_cell_table(tmp_path / "data")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no labelled images"):
        read_cell_table(tmp_path / "empty", mpp=1)
    csv = tmp_path / "list.csv"
    pd.DataFrame({"path": ["data/x/0.png"], "label": ["x"], "domain": ["s1"], "mpp": [0.3]}).to_csv(
        csv, index=False
    )
    c = read_cell_table(csv)
    assert (
        c.loc[0, "class"] == "x" and c.loc[0, "mpp"] == 0.3 and c.loc[0, "path"].endswith("0.png")
    )
    pd.DataFrame({"file": ["a"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match="needs a class column"):
        read_cell_table(tmp_path / "bad.csv", mpp=1)
    pd.DataFrame({"Filename": ["data/y/1.png"], "Cell_Type": ["y"]}).to_csv(csv, index=False)
    c = read_cell_table(csv, mpp=0.3)
    assert c.loc[0, "class"] == "y" and c.loc[0, "path"].endswith("1.png")
    # a path written relative to the working directory, not to the CSV's folder
    (tmp_path / "lists").mkdir()
    pd.DataFrame({"path": ["data/y/2.png"], "class": ["y"]}).to_csv(tmp_path / "lists" / "l.csv", index=False)
    monkeypatch.chdir(tmp_path)
    c = read_cell_table(tmp_path / "lists" / "l.csv", mpp=0.3)
    assert c.loc[0, "path"] == str(tmp_path / "data" / "y" / "2.png")


def test_split_keeps_groups_together_and_is_reproducible():
    t = pd.DataFrame(
        {
            "path": [f"p{i}" for i in range(200)],
            "class": ["a", "b"] * 100,
            "domain": "d",
            "mpp": 1.0,
            "group": [f"g{i // 4}" for i in range(200)],
        }
    )
    t["class"] = [("a" if int(g[1:]) % 2 else "b") for g in t["group"]]
    parts = split_table(t, seed=0)
    assert sum(len(p) for p in parts.values()) == 200
    groups = [set(p["group"]) for p in parts.values()]
    assert not (groups[0] & groups[1]) and not (groups[0] & groups[2])
    assert 0.6 < len(parts["train"]) / 200 < 0.8
    assert parts["val"].equals(split_table(t, seed=0)["val"])


def test_stain_mix_swaps_colour_statistics_between_crops():
    from hemascope.train.augment import stain_mix

    pink = torch.tensor([0.9, 0.6, 0.7]).view(1, 3, 1, 1).expand(1, 3, 8, 8).clone()
    blue = torch.tensor([0.5, 0.5, 0.9]).view(1, 3, 1, 1).expand(1, 3, 8, 8).clone()
    pink[..., :4, :] *= 0.8  # some structure
    blue[..., :4, :] *= 0.8
    x = torch.cat([pink, blue])
    seed = next(s for s in range(50) if _swaps(s))  # a seed whose permutation swaps the two crops
    mixed = stain_mix(x, 1.0, torch.Generator().manual_seed(seed))
    assert torch.allclose(mixed.mean(dim=(2, 3)), x.flip(0).mean(dim=(2, 3)), atol=0.02)
    assert torch.equal(stain_mix(x, 0.0), x)


def _swaps(seed):
    g = torch.Generator().manual_seed(seed)
    torch.rand(2, generator=g)
    return torch.randperm(2, generator=g)[0].item() == 1


def test_batchnorm_recalibration_matches_the_statistics_of_plain_crops():
    from hemascope.models import ModelCard, build_model
    from hemascope.train.batchnorm import recalibrate_batchnorm

    card = ModelCard(name="t", version="0", classes=["a", "b"], input_size=24, mpp=0.5)
    card.arch_params = {"widths": [4, 4, 8, 8]}
    torch.manual_seed(0)
    net = build_model(card.architecture, 2, card.arch_params)
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in norms:  # statistics of other images, as after training on augmented batches
        m.running_mean.fill_(5.0)
        m.running_var.fill_(0.01)
    bank = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (64, 24, 24, 3), np.uint8))
    x = augment_batch(bank, card.input_size, card.mean, card.std, AugmentConfig.off())
    net.train()
    for m in net.modules():
        if isinstance(m, torch.nn.Dropout):
            m.eval()
    with torch.no_grad():
        batch_stats = net(x)  # normalised by the statistics of these very crops
    net.eval()
    with torch.no_grad():
        stale = net(x)
    recalibrate_batchnorm(net, bank, card, torch.device("cpu"), cells=64, batch=64)
    assert not net.training and all(m.momentum == 0.1 for m in norms)
    with torch.no_grad():
        fresh = net(x)
    assert not torch.allclose(stale, batch_stats, atol=0.1)
    torch.testing.assert_close(fresh, batch_stats, atol=2e-2, rtol=1e-2)


def test_a_labelled_folder_without_a_scale_gets_the_estimated_one(tmp_path):
    """`train cells --train FOLDER` without --mpp (a lab's labelled folder): the pictures' µm/px
    is estimated from their red cells and pooled, as `classify` does (it used to be refused)."""
    from hemascope.synthetic import SmearSpec, render_field

    image, _ = render_field(SmearSpec(size=(600, 900), mpp=0.25, seed=5))
    for i in range(6):
        folder = tmp_path / "lab" / ("x" if i % 2 else "y")
        folder.mkdir(parents=True, exist_ok=True)
        r, c = divmod(i, 3)
        Image.fromarray(image[r * 300:(r + 1) * 300, c * 300:(c + 1) * 300]).save(folder / f"{i}.png")
    table = read_cell_table(tmp_path / "lab")
    assert len(table) == 6 and table["mpp"].nunique() == 1  # one source, one pooled scale
    assert table["mpp"].iloc[0] == pytest.approx(0.25, rel=0.15)
    assert "estimated from the pictures' red cells" in table.attrs["mpp_note"]  # the CLI prints it
    assert read_cell_table(tmp_path / "lab", mpp=0.25).attrs["mpp_note"] == ""
