"""Macro-F1 of a cell model on held-out PBC cells under stain, blur and scale shifts vs clean.

Usage::

    nice -n 10 python benchmarks/bench_classify_shift.py --model /tmp/hemascope_cells/runs/wbc/wbc.json

Shifts (see :mod:`hemascope.train.evaluate`): stain = haematoxylin OD ×1.3 and eosin OD ×0.7;
blur = Gaussian σ 1.5 px at the model scale (0.75 µm); scale = cells magnified 1.2× (a 20%
wrong µm/px). Blasts are not in PBC, so the figure is over the 8 PBC classes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hemascope.models import load_model
from hemascope.train import read_cell_table
from hemascope.train.evaluate import SHIFTS, evaluate_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/hemascope_cells"))
    ap.add_argument("--model", default="wbc")
    ap.add_argument("--split", default="pbc_test")
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "classify_shift.json"
    )
    args = ap.parse_args()
    loaded = load_model(args.model)
    table = read_cell_table(args.work / f"{args.split}.csv")
    rows = []
    for shift in SHIFTS:
        m, _ = evaluate_model(loaded, table, shift=shift, cache_dir=args.work / "cache")
        rows.append(
            {
                "shift": shift,
                "amount": m["amount"],
                "macro_f1": round(m["macro_f1"], 4),
                "accuracy": round(m["accuracy"], 4),
                "ece": round(m["ece"], 4),
                "n": m["n"],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"model": loaded.label, "split": args.split, "rows": rows}, indent=1) + "\n"
    )


if __name__ == "__main__":
    main()
