"""Few-shot recipe on a tiny set: class centres on the pretrained head, or the head refitted on
frozen features (LP) before fine-tuning."""

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from hemascope.classify.adapt import adapt_batchnorm
from hemascope.cli.main import main
from hemascope.errors import DataError
from hemascope.models import ModelCard, build_model, load_model, save_model
from hemascope.models.architectures import ClassPrototypes
from hemascope.train.augment import AugmentConfig, augment_batch
from hemascope.train.few_shot import dihedral_embeddings, probe_head, validates_apart


def _card(preprocess=None):
    return ModelCard(
        name="src", version="1.0.0", classes=["red", "blue", "other"], input_size=16, mpp=1.0,
        arch_params={"widths": [4, 8, 8, 8]}, preprocess=preprocess or {},
    )


def _bank(n, seed):
    """``n`` crops per class: a reddish or a bluish disc on glass (20 px, noisy)."""
    rng = np.random.default_rng(seed)
    rr, cc = np.mgrid[:20, :20]
    disc = (rr - 10) ** 2 + (cc - 10) ** 2 <= 30
    crops, labels = [], []
    for label, colour in ((0, (170, 60, 90)), (1, (70, 80, 170))):
        for _ in range(n):
            img = np.full((20, 20, 3), 230, np.int64)
            img[disc] = colour
            crops.append(np.clip(img + rng.integers(-12, 13, img.shape), 0, 255).astype(np.uint8))
            labels.append(label)
    return torch.from_numpy(np.stack(crops)), np.asarray(labels)


def _net(seed=0):
    """A random CellNet whose BatchNorm statistics come from such cells (sane feature scales)."""
    torch.manual_seed(seed)
    module = build_model("cellnet", 3, {"widths": [4, 8, 8, 8]})
    bank, _ = _bank(20, seed=99)
    x = augment_batch(bank, 16, [0.5] * 3, [0.25] * 3, AugmentConfig.off())
    return adapt_batchnorm(module, [x], prior=0)


def test_probe_head_fits_ten_cells_per_class_and_l2_holds_the_head():
    card, module = _card(), _net()
    bank, y = _bank(10, seed=1)
    feats_before = dihedral_embeddings(module, bank, card, torch.device("cpu"))
    assert feats_before.shape == (8 * len(bank), 8)
    w0 = module.head.weight.detach().clone()
    held = copy.deepcopy(module)
    probe_head(held, bank, y, card, torch.device("cpu"), l2=10.0, max_iter=50)
    loss = probe_head(module, bank, y, card, torch.device("cpu"), l2=1e-3, max_iter=100)
    test_bank, y_test = _bank(10, seed=2)  # other cells of the same two classes
    with torch.no_grad():
        feats = dihedral_embeddings(module, test_bank, card, torch.device("cpu"))[: len(test_bank)]
        pred = module.head(feats.float()).argmax(1).numpy()
    assert (pred == y_test).mean() >= 0.9
    assert loss < 0.5
    moved_free = (module.head.weight - w0).norm()
    moved_held = (held.head.weight - w0).norm()
    assert moved_held < 0.2 * moved_free  # a strong pull keeps the pretrained head
    # the backbone is frozen: features unchanged
    assert torch.allclose(dihedral_embeddings(module, bank, card, torch.device("cpu")), feats_before)


def test_probe_head_needs_cells():
    with pytest.raises(DataError):
        probe_head(_net(), torch.zeros((0, 20, 20, 3), dtype=torch.uint8), np.zeros(0), _card(),
                   torch.device("cpu"))


def _cells_csv(tmp_path, name, seed):
    """A cell CSV of 10 red and 10 blue disc images (PNG files under ``tmp_path/name``)."""
    bank, y = _bank(10, seed=seed)
    rows = []
    for i, (crop, label) in enumerate(zip(bank.numpy(), y, strict=True)):
        path = tmp_path / name / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(crop).save(path)
        rows.append(f"{path},{['red', 'blue'][label]},1.0")
    (tmp_path / f"{name}.csv").write_text("path,class,mpp\n" + "\n".join(rows) + "\n")
    return tmp_path / f"{name}.csv"


def _init_args(src, train, val):
    args = ["train", "cells", "--init", str(src), "--train", str(train), "--val", str(val)]
    args += ["--classes", "red,blue,other", "--name", "fs", "--input-size", "16"]
    args += ["--model-mpp", "1.0", "--widths", "4,8,8,8", "--threads", "1", "--device", "cpu"]
    return [*args, "--quiet", "--samples-per-epoch", "64", "--batch-size", "32"]


def test_validates_apart_needs_a_validation_cell_outside_the_training_cells():
    train = pd.DataFrame({"path": ["/a.png", "/b.png"], "class": ["red", "blue"]})
    assert not validates_apart(train, train.iloc[:1])
    assert validates_apart(train, pd.DataFrame({"path": ["/a.png", "/c.png"], "class": ["red"] * 2}))


def test_cli_init_validated_on_its_training_cells_keeps_the_head_only(tmp_path):
    src = save_model(_net(), _card(), tmp_path / "src")
    train, other = _cells_csv(tmp_path, "train", seed=3), _cells_csv(tmp_path, "other", seed=4)
    assert main([*_init_args(src, train, train), "--epochs", "2", "--out", str(tmp_path / "a")]) == 0
    history = json.loads((tmp_path / "a" / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [-1] and "no fine-tuning" in history[0]["step"]
    source, out = load_model(src).module, load_model(tmp_path / "a" / "fs.json").module
    # BatchNorm statistics of the new cells (default with --init), convolutions untouched
    assert not torch.equal(out.state_dict()["features.0.1.running_mean"], source.state_dict()["features.0.1.running_mean"])
    assert torch.equal(out.state_dict()["features.0.0.weight"], source.state_dict()["features.0.0.weight"])
    # other validation cells: the class centres are the first candidate, then the fine-tuning epochs run
    assert main([*_init_args(src, train, other), "--epochs", "2", "--out", str(tmp_path / "b")]) == 0
    history = json.loads((tmp_path / "b" / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [-1, 0, 1] and history[0]["step"].startswith("class centres")


def test_cli_init_fits_the_head_first_and_drops_the_source_decision_rules(tmp_path):
    settings = {"default": True, "source_prior": [0.4, 0.4, 0.2]}
    card = _card({"label_shift": settings, "blast_rule": {"min_probability": 0.6}})
    src = save_model(_net(), card, tmp_path / "src")
    train = _cells_csv(tmp_path, "cells", seed=3)
    args = [*_init_args(src, train, train), "--epochs", "0", "--probe-head", "--no-recalibrate-bn"]
    assert main([*args, "--out", str(tmp_path / "run")]) == 0
    out = load_model(tmp_path / "run" / "fs.json")
    assert "label_shift" not in out.card.preprocess and "blast_rule" not in out.card.preprocess
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())["history"]
    assert history[0]["epoch"] == -1 and history[0]["val_macro_f1"] >= 0.9
    assert not torch.equal(out.module.head.weight, load_model(src).module.head.weight)


def test_class_centres_keep_the_pretrained_heads_decision_calibration(tmp_path):
    """The class centres sit on the pretrained head, so its class-mix adaptation and blast rule
    (fitted on that head's outputs) stay; other class lists cannot use them."""
    settings = {"default": True, "source_prior": [0.4, 0.4, 0.2]}
    rules = {"label_shift": settings, "blast_rule": {"min_probability": 0.6}}
    src = save_model(_net(), _card(rules), tmp_path / "src")
    train = _cells_csv(tmp_path, "cells", seed=3)
    assert main([*_init_args(src, train, train), "--out", str(tmp_path / "run")]) == 0
    out = load_model(tmp_path / "run" / "fs.json").card
    assert out.arch_params["prototypes"] and out.preprocess["label_shift"] == settings
    assert out.preprocess["blast_rule"] == rules["blast_rule"]
    assert any(t.startswith("decision calibration (blast_rule, label_shift) kept from") for t in out.training_data)
    two = [a for a in _init_args(src, train, train) if a not in ("--classes", "red,blue,other")]
    assert main([*two, "--classes", "red,blue", "--out", str(tmp_path / "two")]) == 0
    assert "label_shift" not in load_model(tmp_path / "two" / "fs.json").card.preprocess


def test_cli_init_reads_a_labs_own_column_and_class_names(tmp_path, capsys):
    """``image,label`` columns, ``Red``/``BLUES`` labels and an unknown label: the cells are
    named as the model's classes, the unknown ones left out and said."""
    src = save_model(_net(), _card(), tmp_path / "src")
    table = pd.read_csv(_cells_csv(tmp_path, "cells", seed=3))
    table["class"] = table["class"].map({"red": "Red", "blue": "BLUES"})
    table.loc[0, "class"] = "Smudge cell"
    lab = table.rename(columns={"path": "image", "class": "label"})
    lab.to_csv(tmp_path / "lab.csv", index=False)
    args = _init_args(src, tmp_path / "lab.csv", tmp_path / "lab.csv")
    assert main([*args, "--out", str(tmp_path / "run")]) == 0
    assert "1 cells labelled ['Smudge cell'] are not among --classes" in capsys.readouterr().err
    counts = json.loads((tmp_path / "run" / "metrics.json").read_text())["train_class_counts"]
    assert counts == {"red": 9, "blue": 10, "other": 0}


def test_cli_train_cells_starts_from_the_bundled_model_unless_told_otherwise(tmp_path, capsys):
    """A lab's few cells fine-tune the bundled ``wbc`` by default (from scratch they make a
    useless network); ``--init none`` trains from scratch."""
    train = _cells_csv(tmp_path, "cells", seed=3)
    args = ["train", "cells", "--train", str(train), "--val", str(train), "--classes", "wbc",
            "--relabel", "red=neutrophil", "--relabel", "blue=lymphocyte", "--name", "lab",
            "--epochs", "1", "--samples-per-epoch", "64", "--threads", "1", "--device", "cpu", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "default")]) == 0
    assert "starting from the bundled 'wbc' model" in capsys.readouterr().out
    card = load_model(tmp_path / "default" / "lab.json").card
    wbc = load_model("wbc").card
    assert any(t.startswith("initialised from wbc@") for t in card.training_data)
    assert (card.input_size, card.mpp) == (wbc.input_size, wbc.mpp)
    assert card.arch_params == {**wbc.arch_params, "prototypes": {"scale": 10.0, "absent_margin": 3.0}}
    # 'wbc' keeps the starting model's reject output: smudge cells stay out of the differential
    assert card.classes == wbc.classes and card.reject_classes == wbc.reject_classes == ["smudge"]
    assert main([*args, "--init", "none", "--out", str(tmp_path / "scratch")]) == 0
    card = load_model(tmp_path / "scratch" / "lab.json").card
    assert not any(t.startswith("initialised") for t in card.training_data)
    # without --classes, a lab's names of the model's classes become the model's (head rows kept)
    own = [a for a in args if a not in ("--classes", "wbc")]
    own = [("blue=LYMPHOCYTES" if a == "blue=lymphocyte" else "red=Neut" if a == "red=neutrophil" else a)
           for a in own]
    assert main([*own, "--out", str(tmp_path / "own")]) == 0
    assert load_model(tmp_path / "own" / "lab.json").card.classes == ["lymphocyte", "neutrophil"]


def test_cli_init_without_val_trains_on_every_few_shot_cell(tmp_path, capsys):
    """Ten cells per class and no --val: no 70/15/15 split (one or two validation cells per
    class); all are trained on and only the head is refitted."""
    src = save_model(_net(), _card(), tmp_path / "src")
    train = _cells_csv(tmp_path, "cells", seed=3)
    args = _init_args(src, train, train)
    at = args.index("--val")
    args = args[:at] + args[at + 2:]
    assert main([*args, "--epochs", "2", "--out", str(tmp_path / "run")]) == 0
    assert "20 cells: all used for training" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert sum(metrics["train_class_counts"].values()) == 20
    assert [h["epoch"] for h in metrics["history"]] == [-1]
    assert not (tmp_path / "run" / "splits").exists()


def test_class_centres_raise_labelled_classes_and_keep_the_others_a_margin_behind():
    protos = ClassPrototypes(4, 2, scale=10.0, absent_margin=3.0)
    emb = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert torch.equal(protos(emb), torch.zeros(2, 4))  # no centres yet: nothing added
    protos.centres[0] = torch.tensor([2.0, 0.0])
    protos.centres[1] = torch.tensor([1.0, 1.0])
    protos.present[:2] = True
    offsets = protos(emb)
    c = 2 ** -0.5
    expected = torch.tensor([[10.0, 10 * c, 7.0, 7.0], [0.0, 10 * c, 10 * c - 3, 10 * c - 3]])
    assert torch.allclose(offsets, expected)


def test_cli_few_shot_adds_class_centres_to_the_pretrained_head(tmp_path):
    """Validated on its training cells, the run keeps the pretrained head and its features and
    stores the cells' class centres; the other cells of those classes are called by them; a
    model made so can start another run."""
    src = save_model(_net(), _card(), tmp_path / "src")
    train, other = _cells_csv(tmp_path, "train", seed=3), _cells_csv(tmp_path, "other", seed=4)
    assert main([*_init_args(src, train, train), "--epochs", "2", "--out", str(tmp_path / "fs")]) == 0
    history = json.loads((tmp_path / "fs" / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [-1] and history[0]["step"].startswith("class centres")
    out, source = load_model(tmp_path / "fs" / "fs.json"), load_model(src).module
    assert out.card.arch_params["prototypes"] == {"scale": 10.0, "absent_margin": 3.0}
    assert torch.equal(out.module.head.weight, source.head.weight)
    assert out.module.prototypes.present.tolist() == [True, True, False]
    bank, y = _bank(10, seed=5)
    with torch.no_grad():
        x = augment_batch(bank, 16, [0.5] * 3, [0.25] * 3, AugmentConfig.off())
        assert (out.module(x).argmax(1).numpy() == y).mean() >= 0.9
    # a few-shot model starts another run, which takes its own centres (here of other cells)
    assert main([*_init_args(tmp_path / "fs" / "fs.json", other, other), "--out", str(tmp_path / "again")]) == 0
    again = load_model(tmp_path / "again" / "fs.json").module
    assert not torch.equal(again.prototypes.centres, out.module.prototypes.centres)


def test_batchnorm_of_a_lab_read_twice_is_measured_on_both_readings():
    """A few-shot card reads a blue-grey lab's cells twice (hemascope.classify.stain); the
    BatchNorm statistics recomputed on the lab's cells then cover both readings, half each."""
    from hemascope.classify.stain import apply_map, reference, stain_map
    from hemascope.train.batchnorm import recalibrate_batchnorm

    wbc = load_model("wbc", device="cpu")
    bank = torch.from_numpy(np.random.default_rng(0).integers(60, 250, (16, 72, 72, 3), dtype=np.uint8))
    stain = stain_map(reference("taleqani"), reference("cellavision"))
    restained = (apply_map(bank.permute(0, 3, 1, 2).float() / 255, stain) * 255).round().byte()
    means = []
    for crops, second in ((bank, None), (restained.permute(0, 2, 3, 1), None), (bank, stain)):
        module = copy.deepcopy(wbc.module)
        recalibrate_batchnorm(module, crops, wbc.card, torch.device("cpu"), batch=16, stain=second)
        first = next(m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d))
        means.append(first.running_mean.clone())
    assert not torch.allclose(means[0], means[1], atol=1e-3)
    torch.testing.assert_close(means[2], (means[0] + means[1]) / 2, atol=1e-4, rtol=1e-4)
