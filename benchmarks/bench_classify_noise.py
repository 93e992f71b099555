"""Noise experiment: 20% symmetric label noise, cross-entropy vs noise-robust losses, clean test set.

Usage (one command, after ``scripts/prepare_cell_data.py``)::

    nice -n 10 python benchmarks/bench_classify_noise.py --work /tmp/hemascope_cells

Trains on the PBC training split (8 classes) once with clean labels and cross-entropy, then with
20% of the training *and validation* labels flipped uniformly to another class (seed 0) for each
loss, and reports macro-F1 on the untouched PBC test split. Results: JSON next to the Markdown
table in ``benchmarks/results/classify_noise.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from hemascope.train import TrainConfig, inject_symmetric_noise, read_cell_table, train_cells


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/hemascope_cells"))
    ap.add_argument("--rate", type=float, default=0.2)
    ap.add_argument("--losses", default="ce,ls,gce,sce")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--samples-per-epoch", type=int, default=1536)
    ap.add_argument("--widths", default="8,16,32,64")
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "classify_noise"
    )
    args = ap.parse_args()
    train = read_cell_table(args.work / "pbc_train.csv")
    val = read_cell_table(args.work / "pbc_val.csv")
    test = read_cell_table(args.work / "pbc_test.csv")
    classes = sorted(set(train["class"]))
    idx = {c: i for i, c in enumerate(classes)}
    noisy_val = val.copy()
    flipped = inject_symmetric_noise(
        val["class"].map(idx).to_numpy(), args.rate, len(classes), seed=1
    )
    noisy_val["class"] = [classes[i] for i in flipped]
    runs = [("ce", 0.0)] + [(loss, args.rate) for loss in args.losses.split(",")]
    rows = []
    for loss, rate in runs:
        cfg = TrainConfig(
            name=f"noise_{loss}_{rate}",
            classes=classes,
            loss=loss,
            noise_rate=rate,
            epochs=args.epochs,
            samples_per_epoch=args.samples_per_epoch,
            widths=[int(w) for w in args.widths.split(",")],
            threads=2,
            seed=0,
            balance_domains=False,
        )
        t0 = time.perf_counter()
        res = train_cells(
            cfg,
            train,
            val if rate == 0 else noisy_val,
            test,
            out_dir=args.work / "runs" / cfg.name,
            cache_dir=args.work / "cache",
        )
        m = res.metrics["test"]
        rows.append(
            {
                "loss": loss,
                "label_noise": rate,
                "test_macro_f1": round(m["macro_f1"], 4),
                "test_accuracy": round(m["accuracy"], 4),
                "test_ece": round(m["ece"], 4),
                "minutes": round((time.perf_counter() - t0) / 60, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    table = pd.DataFrame(rows)
    clean = table.loc[0, "test_macro_f1"]
    table["drop_vs_clean_points"] = ((clean - table["test_macro_f1"]) * 100).round(2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(table.to_dict("records"), indent=1) + "\n")
    header = "| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns) + "\n"
    body = "".join(
        "| " + " | ".join(str(v) for v in row) + " |\n" for row in table.itertuples(index=False)
    )
    args.out.with_suffix(".md").write_text(header + body)
    print(table.to_string(index=False))
    print("best robust loss drop (points):", float(np.min(table["drop_vs_clean_points"][1:])))


if __name__ == "__main__":
    main()
