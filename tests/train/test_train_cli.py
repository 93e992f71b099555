"""End to end on tiny synthetic cells: train (and resume), evaluate, classify, list models."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hemascope.cli.main import main
from hemascope.models import load_model
from hemascope.train import TrainConfig, read_cell_table, split_table, train_cells


def _make_cells(root, n=24, seed=0):
    """Two classes of 'cells': a small dark round nucleus vs a large lobed pale one."""
    rng = np.random.default_rng(seed)
    rr, cc = np.mgrid[:40, :40]
    for cls in ("round", "lobed"):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = np.full((40, 40, 3), 235, np.uint8)
            r0, c0 = 20 + rng.integers(-2, 3, 2)
            if cls == "round":
                img[(rr - r0) ** 2 + (cc - c0) ** 2 <= 36] = (90, 30, 140)
            else:
                for dr, dc in ((-5, -5), (5, 5), (-5, 5)):
                    img[(rr - r0 - dr) ** 2 + (cc - c0 - dc) ** 2 <= 12] = (170, 120, 200)
            noise = rng.integers(-10, 11, img.shape)
            Image.fromarray(np.clip(img + noise, 0, 255).astype(np.uint8)).save(
                root / cls / f"{i}.png"
            )
    return root


def _config(**kw):
    base = dict(
        name="toy",
        input_size=16,
        mpp=1.0,
        widths=[4, 8, 8, 8],
        epochs=3,
        batch_size=16,
        lr=1e-2,
        threads=1,
        device="cpu",
        licence="test",
        training_data=["synthetic"],
    )
    base.update(kw)
    return TrainConfig(**base)


def test_training_learns_and_resumes(tmp_path):
    table = read_cell_table(_make_cells(tmp_path / "cells"), mpp=0.5)
    parts = split_table(table, seed=0)
    res = train_cells(
        _config(), parts["train"], parts["val"], parts["test"], out_dir=tmp_path / "run"
    )
    assert res.metrics["val"]["accuracy"] >= 0.9
    card = load_model(res.card_path).card
    assert card.metrics["test"]["n"] == len(parts["test"]) and card.temperature > 0
    assert len(res.metrics["history"]) == 3
    again = train_cells(
        _config(epochs=4), parts["train"], parts["val"], out_dir=tmp_path / "run", resume=True
    )
    assert [h["epoch"] for h in again.metrics["history"]] == [0, 1, 2, 3]


def test_mixup_training_learns_and_is_reproducible(tmp_path):
    table = read_cell_table(_make_cells(tmp_path / "cells"), mpp=0.5)
    parts = split_table(table, seed=0)
    mixed = [
        train_cells(
            _config(mixup=0.4, epochs=8), parts["train"], parts["val"], out_dir=tmp_path / f"mix{i}"
        )
        for i in range(2)
    ]
    plain = train_cells(_config(epochs=8), parts["train"], parts["val"], out_dir=tmp_path / "plain")
    losses = [[h["loss"] for h in run.metrics["history"]] for run in (*mixed, plain)]
    assert losses[0] == losses[1]  # the mixing weights and partners come from the run's seed
    assert losses[0] != losses[2]  # ... and mixing does change what is trained on
    assert mixed[0].metrics["val"]["accuracy"] >= 0.9


def test_cli_train_evaluate_classify_models(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HEMASCOPE_CACHE_DIR", str(tmp_path / "cache"))
    data = _make_cells(tmp_path / "cells", n=16, seed=1)
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "cells",
            "--train",
            str(data),
            "--mpp",
            "0.5",
            "--name",
            "toy",
            "--input-size",
            "16",
            "--model-mpp",
            "1.0",
            "--widths",
            "4,8,8,8",
            "--epochs",
            "2",
            "--batch-size",
            "16",
            "--loss",
            "gce",
            "--noise-rate",
            "0.1",
            "--recalibrate-bn",
            "--threads",
            "1",
            "--device",
            "cpu",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    assert (out / "splits" / "train.csv").is_file() and (out / "toy.json").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["loss"] == "gce" and metrics["config"]["noise_rate"] == 0.1
    assert metrics["config"]["recalibrate_bn"] is True
    code = main(
        [
            "evaluate",
            "cells",
            str(data),
            "--mpp",
            "0.5",
            "--model",
            str(out / "toy.json"),
            "--shift",
            "blur",
            "--out",
            str(tmp_path / "eval"),
        ]
    )
    assert code == 0 and (tmp_path / "eval" / "confusion.png").is_file()
    evaluated = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert evaluated["shift"] == "blur" and evaluated["decision"].startswith("the network alone")
    (data / "round" / "broken.png").write_bytes(b"garbage")
    code = main(
        [
            "classify",
            str(data / "round"),
            "--model",
            str(out / "toy.json"),
            "--mpp",
            "0.5",
            "--out",
            str(tmp_path / "preds.csv"),
            "--quiet",
        ]
    )
    assert code == 1  # the batch lost one input: it says so in its exit code
    preds = pd.read_csv(tmp_path / "preds.csv")
    assert len(preds) == 16 and {"path", "class", "prob_round", "prob_lobed"} <= set(preds.columns)
    captured = capsys.readouterr()
    assert "skipped" in captured.err and "broken.png" in captured.err
    assert (
        main(
            [
                "classify",
                str(tmp_path / "nothing.png"),
                "--model",
                str(out / "toy.json"),
                "--mpp",
                "0.5",
                "--out",
                str(tmp_path / "p2.csv"),
            ]
        )
        == 2
    )
    assert main(["models", "--json"]) == 0
    assert main(["models", "no-such-model"]) == 2
    (tmp_path / "emptydir").mkdir()
    assert (
        main(
            [
                "classify",
                str(tmp_path / "emptydir"),
                "--mpp",
                "0.5",
                "--out",
                str(tmp_path / "p3.csv"),
            ]
        )
        == 2
    )


@pytest.mark.parametrize("bad", [["--loss", "nope"], ["--relabel", "novalue"]])
def test_cli_train_bad_options(tmp_path, bad):
    data = _make_cells(tmp_path / "cells", n=4)
    assert (
        main(
            [
                "train",
                "cells",
                "--train",
                str(data),
                "--mpp",
                "0.5",
                "--epochs",
                "1",
                "--out",
                str(tmp_path / "o"),
                "--quiet",
                *bad,
            ]
        )
        == 2
    )


def test_models_lists_the_bundled_cell_model_held_out_figures_per_source(capsys):
    """A card measured per source (the bundled ``wbc``) shows each source's test macro-F1 in
    ``hemascope models``, not "no held-out metrics"."""
    test = load_model("wbc").card.metrics["test"]
    assert main(["models", "--kind", "cell"]) == 0
    line = next(row for row in capsys.readouterr().out.splitlines() if row.startswith("wbc "))
    assert "no held-out metrics" not in line
    for source, scores in test.items():
        assert f"{source} {scores['macro_f1']:.3f}" in line
