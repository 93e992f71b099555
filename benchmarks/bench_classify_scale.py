"""Cell classes without ``--mpp``: the pooled scale against per-picture estimates and the true µm/px.

Each DeepAPL test **patient** goes through :func:`hemascope.classify.classify_images` as one
``hemascope classify Patient_XX/`` call (card defaults: label shift + blast rule) three ways:

- ``given``: ``--mpp 0.21`` (the data set's µm/px);
- ``pooled``: no ``--mpp`` (what the command does now: per-picture estimates pooled over the
  pictures of one pixel size, :mod:`hemascope.segment.batch_scale`);
- ``per picture``: no ``--mpp``, each picture at its own estimate (the behaviour before pooling;
  an estimator returning plain floats is not pooled).

Scores as in ``bench_classify_adaptation.py``. Usage::

    python benchmarks/bench_classify_scale.py --work /tmp/hemascope_cells --threads 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_classify_adaptation import scores  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/hemascope_cells"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    from hemascope.classify import classify_images
    from hemascope.models import load_model
    from hemascope.segment import estimate_mpp

    torch.set_num_threads(args.threads)
    loaded = load_model("wbc", device="cpu")
    table = pd.read_csv(args.work / "deepapl_test.csv")
    ways = {
        "given": {"mpp": 0.21},
        "pooled": {"mpp": None},
        "per picture": {"mpp": None, "estimate": lambda image: float(estimate_mpp(image))},
    }
    print("| scale | cells | macro-F1 shared | N/L/M/E | blast recall | mature → blast | µm/px used: median (5–95 %) | within ±15 % |")
    print("|---|---|---|---|---|---|---|---|")
    for name, options in ways.items():
        truth, pred, used = [], [], []
        for _, part in table.groupby("group", sort=True):
            out = classify_images(list(part["path"]), loaded, device="cpu", **options)
            kept = part.set_index("path").loc[out.table["path"]]
            truth.extend(kept["class"])
            pred.extend(out.table["class"].replace({"unclassified": "smudge"}))
            used.extend(out.table["mpp"].astype(float))
        s = scores(np.asarray(truth), np.asarray(pred))
        u = np.asarray(used)
        print(f"| {name} | {s['n']} | {s['macro_f1_shared']:.3f} | {s['macro_f1_nlme']:.3f} | "
              f"{s.get('blast_recall', float('nan')):.3f} | {s['mature_called_blast']:.3f} | "
              f"{np.median(u):.3f} ({np.percentile(u, 5):.3f}–{np.percentile(u, 95):.3f}) | "
              f"{np.mean(np.abs(u / 0.21 - 1) <= 0.15):.3f} |", flush=True)


if __name__ == "__main__":
    main()
