"""Noise experiment: 20% symmetric label noise, cross-entropy vs noise-robust losses, clean test set.

Usage (one command, after ``scripts/prepare_cell_data.py``)::

    nice -n 19 python benchmarks/bench_classify_noise.py --work /tmp/hemascope_cells

and the full-data protocol (every PBC training cell, augmentation, five seeds, BatchNorm
statistics recomputed on plain crops, epoch chosen on the whole noisy validation set)::

    nice -n 19 python benchmarks/bench_classify_noise.py --work /tmp/hemascope_cells \
        --per-class 100000 --augment geometric --batch-size 64 --epochs 40 --seeds 0 1 2 3 4 \
        --losses ce,gce,sce --recalibrate-bn --val-per-epoch 1500 \
        --out benchmarks/results/classify_noise_full_pbn

Design (chosen so that cross-entropy has the time to memorise the noise on a 2-core CPU):

- training set: a fixed class-balanced subset of the PBC training split (``--per-class`` cells of
  each of the 8 classes, seed 0); validation: the PBC validation split; test: the untouched PBC
  test split (clean labels);
- one run with clean labels and cross-entropy, then one run per loss with ``--rate`` of the
  training *and* validation labels flipped uniformly to another class (noise draws 2s, 2s+1): model
  selection happens on noisy validation labels, as it would in practice;
- many passes (``--epochs``) over the small subset with geometric augmentation only (rotations,
  flips, scale jitter; no colour or blur jitter, which would slow memorisation down);
- each run reports the test macro-F1 of the selected (best noisy-validation) epoch *and* of the
  last epoch, and the memorisation rate: the fraction of flipped training cells that the
  last-epoch model assigns to their wrong (noisy) label.

A loss name may add ``+mixupA`` (mixup with alpha ``A``), e.g. ``gce+mixup0.4``; ``--clean`` sets
the recipe of the clean reference (default ``ce``). With
``--seeds``, each seed draws its own noise and trains its own models; drops are taken against the
same seed's clean run and summarised (mean, sd, worst) per loss.

Results: ``benchmarks/results/classify_noise.{json,md}``; per-run directories under
``WORK/runs/noise/<per-class>x<epochs>/`` (a killed run resumes from its checkpoint).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file

from hemascope.models import load_model
from hemascope.train import (
    AugmentConfig,
    TrainConfig,
    inject_symmetric_noise,
    read_cell_table,
    train_cells,
)
from hemascope.train.evaluate import evaluate_model

AUGMENT = {
    "none": AugmentConfig.off(),
    "geometric": replace(AugmentConfig.off(), rotate=True, scale=0.15),
}


def _noisy(table: pd.DataFrame, classes: list[str], rate: float, seed: int) -> pd.DataFrame:
    """A copy of ``table`` with ``rate`` of its labels flipped to another class."""
    idx = {c: i for i, c in enumerate(classes)}
    flipped = inject_symmetric_noise(table["class"].map(idx).to_numpy(), rate, len(classes), seed)
    out = table.copy()
    out["class"] = [classes[i] for i in flipped]
    return out


def _last_epoch_model(run_dir: Path):
    """The run's model with the weights of its last epoch (from the checkpoint)."""
    loaded = load_model(next(run_dir.glob("noise_*.json")))
    tensors = load_file(str(run_dir / "checkpoint.safetensors"))
    state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    loaded.module.load_state_dict(state)
    loaded.module.eval()
    return loaded


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/hemascope_cells"))
    ap.add_argument("--rate", type=float, default=0.2)
    ap.add_argument("--losses", default="ce,ls,gce,sce")
    ap.add_argument("--clean", default="ce", help="the recipe of the clean-label reference run")
    ap.add_argument("--per-class", type=int, default=80)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--widths", default="8,16,32,64")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument(
        "--val-per-epoch",
        type=int,
        default=300,
        help="(noisy) validation cells for epoch selection",
    )
    ap.add_argument(
        "--augment",
        choices=sorted(AUGMENT),
        default="none",
        help="none: centre crops (fastest memorisation); geometric: rotations, flips, scale",
    )
    ap.add_argument(
        "--recalibrate-bn",
        action="store_true",
        help="BatchNorm statistics from un-augmented training crops before each validation",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0],
        help="one noise draw and training seed each; drops are taken against the same seed's clean run",
    )
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "classify_noise"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    full = read_cell_table(args.work / "pbc_train.csv")
    classes = sorted(set(full["class"]))
    rng = np.random.default_rng(0)
    pick = [
        i
        for c in classes
        for i in rng.permutation(np.flatnonzero(full["class"] == c))[: args.per_class]
    ]
    train = full.iloc[np.sort(pick)].reset_index(drop=True)
    val = read_cell_table(args.work / "pbc_val.csv")
    test = read_cell_table(args.work / "pbc_test.csv")
    rows = []
    for seed in args.seeds:
        rows += _runs_of_seed(args, seed, classes, train, val, test)
    table = pd.DataFrame(rows)
    clean = table[table["label_noise"] == 0].set_index("seed")  # one clean run per seed
    table["drop_vs_clean_points"] = (
        (table["seed"].map(clean["test_macro_f1"]) - table["test_macro_f1"]) * 100
    ).round(1)
    table["last_epoch_drop_points"] = (
        (table["seed"].map(clean["last_epoch_test_macro_f1"]) - table["last_epoch_test_macro_f1"])
        * 100
    ).round(1)
    summary = (
        table.groupby(["loss", "label_noise"], sort=False)
        .agg(
            seeds=("seed", "size"),
            test_macro_f1=("test_macro_f1", "mean"),
            drop_mean=("drop_vs_clean_points", "mean"),
            drop_sd=("drop_vs_clean_points", "std"),
            drop_max=("drop_vs_clean_points", "max"),
            memorised=("memorised_flipped_train_labels", "mean"),
        )
        .round(3)
        .reset_index()
    )
    setup = {
        "train_cells": len(train),
        "val_cells": len(val),
        "test_cells": len(test),
        **{k: str(v) for k, v in vars(args).items()},
    }

    def records(frame: pd.DataFrame) -> list[dict]:
        return frame.astype(object).where(frame.notna(), None).to_dict("records")  # NaN -> null

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(
        json.dumps({"setup": setup, "summary": records(summary), "runs": records(table)}, indent=1)
        + "\n"
    )
    args.out.with_suffix(".md").write_text(_markdown(summary) + "\n" + _markdown(table))
    print(table.to_string(index=False))
    print(summary.to_string(index=False))
    robust = summary[~summary["loss"].str.startswith("ce") & (summary["label_noise"] > 0)]
    if len(robust):
        print("best robust loss, mean drop (points):", float(robust["drop_mean"].min()))


def _markdown(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns) + "\n"
    return header + "".join(
        "| " + " | ".join(str(v) for v in row) + " |\n" for row in frame.itertuples(index=False)
    )


def _protocol_dir(args) -> str:
    """The run-directory name of a protocol (non-default widths and selection set included)."""
    name = f"{args.per_class}x{args.epochs}_{args.augment}_b{args.batch_size}"
    if args.widths != "8,16,32,64":
        name += "_w" + args.widths.replace(",", "-")
    if args.val_per_epoch != 300:
        name += f"_v{args.val_per_epoch}"
    if args.recalibrate_bn:
        name += "_pbn"
    return name


def _runs_of_seed(args, seed: int, classes, train, val, test) -> list[dict]:
    """Clean cross-entropy and every loss under noise, for one noise draw and training seed."""
    cache = args.work / "cache"
    noisy_train = _noisy(train, classes, args.rate, seed=2 * seed)
    noisy_val = _noisy(val, classes, args.rate, seed=2 * seed + 1)
    flipped = (noisy_train["class"] != train["class"]).to_numpy()
    runs = [(args.clean, 0.0)] + [(spec, args.rate) for spec in args.losses.split(",")]
    rows = []
    for spec, rate in runs:
        loss, _, mixup = spec.partition("+mixup")
        cfg = TrainConfig(
            name=f"noise_{spec}_{rate}",
            classes=classes,
            loss=loss,
            mixup=float(mixup or 0),
            recalibrate_bn=args.recalibrate_bn,
            epochs=args.epochs,
            samples_per_epoch=len(train),
            val_per_epoch=args.val_per_epoch,
            widths=[int(w) for w in args.widths.split(",")],
            lr=args.lr,
            batch_size=args.batch_size,
            augment=AUGMENT[args.augment],
            threads=args.threads,
            seed=seed,
            balance_domains=False,
        )
        run_dir = (
            args.work
            / "runs"
            / "noise"
            / _protocol_dir(args)
            / (cfg.name if seed == 0 else f"{cfg.name}_seed{seed}")
        )
        t0 = time.perf_counter()
        res = train_cells(
            cfg,
            train if rate == 0 else noisy_train,
            val if rate == 0 else noisy_val,
            test,
            out_dir=run_dir,
            cache_dir=cache,
            resume=True,
        )
        best = res.metrics["test"]
        last_model = _last_epoch_model(run_dir)
        last, _ = evaluate_model(last_model, test, cache_dir=cache)
        _, prob_train = evaluate_model(last_model, train, cache_dir=cache)
        pred_train = np.array(classes)[prob_train.argmax(1)]
        memorised = (
            float((pred_train[flipped] == noisy_train["class"].to_numpy()[flipped]).mean())
            if rate > 0
            else float("nan")
        )
        history = res.metrics["history"]
        rows.append(
            {
                "loss": spec,
                "label_noise": rate,
                "seed": seed,
                "flipped_train_labels": int(flipped.sum()) if rate > 0 else 0,
                "test_macro_f1": round(best["macro_f1"], 4),
                "test_accuracy": round(best["accuracy"], 4),
                "test_ece": round(best["ece"], 4),
                "best_epoch": int(np.argmax([h["val_macro_f1"] for h in history])) + 1,
                "last_epoch_test_macro_f1": round(last["macro_f1"], 4),
                "memorised_flipped_train_labels": round(memorised, 3),
                "minutes": round((time.perf_counter() - t0) / 60, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


if __name__ == "__main__":
    main()
