"""Fit a cell model's label-shift calibration and blast rule on validation cells; write them to its card.

Usage (validation caches of the training sources from ``scripts/cache_cell_logits.py``)::

    python scripts/calibrate_label_shift.py --card src/hemascope/models/weights/wbc.json \
        --val /tmp/hc6/wbc_pbc_val.npz --val /tmp/hc6/wbc_deepapl_val.npz \
        --pseudo-count 100 --floor 0.05 --balance 0.5 --blast-min 0.6 --default

Bias-corrected temperature scaling (Alexandari et al. 2020: one temperature and one bias per
class, by maximum likelihood) is fitted on the pooled validation logits; the class frequencies of
those cells are the source prior of the EM (:mod:`hemascope.classify.label_shift`). The other
settings are written as given; they were chosen on the same validation cells (BENCHMARKS.md,
"Per-slide label shift and the blast rule"). Only the card's ``preprocess`` changes: the weights
and their sha256 do not.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from hemascope.files import atomic_write_text


def fit_bias_corrected(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Temperature and per-class bias minimising the NLL of ``softmax(logits / T + b)``."""
    z = torch.as_tensor(logits, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.long)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t, bias], lr=0.1, max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z / log_t.exp() + bias, y)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.detach().exp()), bias.detach().numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--card", type=Path, required=True)
    ap.add_argument("--val", type=Path, action="append", required=True)
    ap.add_argument("--pseudo-count", type=float, default=100.0)
    ap.add_argument("--floor", type=float, default=0.05)
    ap.add_argument("--balance", type=float, default=0.5)
    ap.add_argument("--blast-min", type=float, default=0.0)
    ap.add_argument("--default", action="store_true", help="adapt by default")
    args = ap.parse_args()
    card = json.loads(args.card.read_text())
    classes = card["classes"]
    logits, labels, names = [], [], []
    for path in args.val:
        d = np.load(path)
        if list(d["classes"]) != classes:
            raise SystemExit(f"{path}: cached with other classes")
        keep = np.isin(d["labels"], classes)
        logits.append(d["logits"][keep])
        labels.append(np.asarray([classes.index(c) for c in d["labels"][keep]]))
        names.append(f"{path.name} ({int(keep.sum())} cells)")
    z, y = np.concatenate(logits), np.concatenate(labels)
    temperature, bias = fit_bias_corrected(z, y)
    prior = np.bincount(y, minlength=len(classes)) + 0.5  # no class at exactly 0
    pre = card.setdefault("preprocess", {})
    pre["label_shift"] = {
        "default": bool(args.default),
        "temperature": round(temperature, 6),
        "bias": [round(float(b), 6) for b in bias],
        "source_prior": [round(float(p), 6) for p in prior / prior.sum()],
        "pseudo_count": args.pseudo_count,
        "floor": args.floor,
        "balance": args.balance,
        "calibration": "bias-corrected temperature scaling and source prior on validation cells "
        "of the training sources: " + ", ".join(names),
    }
    if args.blast_min > 0:
        pre["blast_rule"] = {
            "min_probability": args.blast_min,
            "calibration": "chosen on the same validation cells: the lowest threshold that keeps "
            "mature cells called blast <= 2 % on DeepAPL validation patients",
        }
    atomic_write_text(args.card, json.dumps(card, indent=2) + "\n")
    print(f"{args.card}: T {temperature:.4f}, bias {np.round(bias, 3).tolist()}")


if __name__ == "__main__":
    main()
