"""Does the Taleqani bag model read the cells or the colour of each class's fields? A shortcut check.

Two measurements on the held-out test fields (split ``benchmarks/slide_splits/taleqani_fields.csv``):

1. a colour-only baseline: softmax regression on each whole field's RGB mean, sd and percentiles
   (trained on the training fields) -- how far colour alone gets on this data set;
2. recoloured bags: every test field's white-cell crops are given the colour statistics of each
   other class's test cells (per-channel mean/sd transfer in RGB), and the bag model predicts
   them again with ``hemascope predict-bags``. A model that reads morphology keeps the true class;
   one that reads colour follows the new colour.

    python benchmarks/bench_taleqani_colour.py --bags /tmp/hemascope_bag_runs5/taleqani_bags.csv \\
        --cells /tmp/hemascope_cells --model taleqani-all --work /tmp/taleqani_colour
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

SPLIT = Path(__file__).parent / "slide_splits" / "taleqani_fields.csv"
DATA = Path("/work/shared/data/taleqani_all")


def _field_features(path: Path) -> np.ndarray:
    a = np.asarray(Image.open(path).convert("RGB"), np.float32).reshape(-1, 3)
    return np.concatenate(
        [a.mean(0), a.std(0), np.percentile(a, [5, 25, 50, 75, 95], axis=0).ravel()]
    )


def colour_only_accuracy(data: Path) -> float:
    """Test accuracy of a softmax regression on whole-field colour statistics."""
    split = pd.read_csv(SPLIT)
    x = np.stack([_field_features(data / p) for p in split["bag"]])
    classes = sorted(set(split["label"]))
    y = split["label"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    tr, te = (split["split"] == "train").to_numpy(), (split["split"] == "test").to_numpy()
    z = (x - x[tr].mean(0)) / (x[tr].std(0) + 1e-6)
    w, b = np.zeros((z.shape[1], len(classes))), np.zeros(len(classes))
    for _ in range(3000):  # plain gradient descent; no sklearn in this environment
        logit = z[tr] @ w + b
        p = np.exp(logit - logit.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        p[np.arange(tr.sum()), y[tr]] -= 1
        w -= 0.5 * (z[tr].T @ p / tr.sum() + 1e-3 * w)
        b -= 0.5 * p.mean(0)
    return float(((z[te] @ w + b).argmax(1) == y[te]).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bags", type=Path, required=True)
    ap.add_argument("--cells", type=Path, required=True)
    ap.add_argument("--model", default="taleqani-all")
    ap.add_argument("--mpp", type=float, default=0.444)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "taleqani_colour.json"
    )
    args = ap.parse_args()
    bags = pd.read_csv(args.bags)
    test = bags[bags["split"] == "test"]
    crops = {row.bag: sorted((args.cells / row.bag).glob("*.png")) for row in test.itertuples()}
    test = test[[bool(crops[b]) for b in test["bag"]]]
    stats = {}
    for label, group in test.groupby("label"):
        px = np.concatenate(
            [
                np.asarray(Image.open(p).convert("RGB"), np.float32).reshape(-1, 3)
                for b in group["bag"]
                for p in crops[b]
            ]
        )
        stats[label] = (px.mean(0), px.std(0))
    folders, truth, colour = [], [], []
    for row in test.itertuples():
        for target in stats:
            out = args.work / target / Path(row.bag).name
            out.mkdir(parents=True, exist_ok=True)
            (m0, s0), (m1, s1) = stats[row.label], stats[target]
            for p in crops[row.bag]:
                a = np.asarray(Image.open(p).convert("RGB"), np.float32)
                Image.fromarray(np.clip((a - m0) / s0 * s1 + m1, 0, 255).astype(np.uint8)).save(
                    out / p.name
                )
            folders.append(out)
            truth.append(row.label)
            colour.append(target)
    pred_csv = args.work / "predictions.csv"
    subprocess.run(
        [
            "hemascope",
            "predict-bags",
            *map(str, folders),
            "--model",
            args.model,
            "--mpp",
            str(args.mpp),
            "--min-blasts",
            "1",
            "--out",
            str(pred_csv),
            "--quiet",
        ],
        check=True,
    )
    pred = pd.read_csv(pred_csv)["predicted"].to_numpy()
    truth, colour = np.array(truth), np.array(colour)
    own, other = colour == truth, colour != truth
    result = {
        "model": args.model,
        "test_fields": int(len(test)),
        "colour_only_field_classifier_test_accuracy": round(colour_only_accuracy(DATA), 3),
        "bag_accuracy_own_colour": round(float((pred[own] == truth[own]).mean()), 3),
        "bag_accuracy_other_class_colour": round(float((pred[other] == truth[other]).mean()), 3),
        "follows_the_colour_when_recoloured": round(
            float((pred[other] == colour[other]).mean()), 3
        ),
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
