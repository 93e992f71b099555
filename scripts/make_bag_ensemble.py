"""Average trained bag models of several architectures into one ``"combined"`` bag model.

Usage::

    python scripts/make_bag_ensemble.py --models RUN/taleqani-all/taleqani-all.json \\
        RUN/taleqani-all-mean/taleqani-all-mean.json --cache RUN/taleqani_wbc.npz \\
        --labels RUN/taleqani_bags.csv --name taleqani-all-combined --version 0.2.0 \\
        --out RUN/taleqani-all-combined [--install]

The bags come from the embedding cache written by ``hemascope train bags --cache`` and the split
from the labels CSV's ``split`` column (the one the parts were trained with). The temperature is
fitted on the validation bags; the test bags are scored once and written into the card.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pandas as pd

from hemascope.models import load_model
from hemascope.models.registry import BUNDLED_DIR
from hemascope.slide import load_bag_model
from hemascope.train.bags_data import load_bags, splits_from_table
from hemascope.train.bags_fit import combine_bag_models


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", required=True, help="bag model cards (two or more)")
    ap.add_argument("--cache", type=Path, required=True, help="bag embeddings cache (.npz)")
    ap.add_argument("--labels", type=Path, required=True, help="labels CSV with bag and split")
    ap.add_argument("--name", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--description", default="")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--install", action="store_true", help="copy into the bundled weights")
    args = ap.parse_args()
    models = [load_bag_model(path) for path in args.models]
    cell = load_model(models[0].card.embedding_model)
    bags = load_bags(args.cache, expect={"cell_model_sha256": cell.card.sha256})
    splits = splits_from_table([b for b in bags if len(b.features)], pd.read_csv(args.labels))
    report = combine_bag_models(
        models,
        splits,
        name=args.name,
        version=args.version,
        cell_card=cell.card,
        out_dir=args.out,
        description=args.description,
    )
    test = report.card.metrics["test"]
    print(
        f"{report.card.caption}: T {report.card.temperature:.3f}; test bags "
        f"{test['n']}  accuracy {test['accuracy']:.3f}  macro-F1 {test['macro_f1']:.3f}  "
        f"ECE {test['ece']:.3f}"
    )
    if args.install:
        for suffix in (".json", ".safetensors"):
            shutil.copy2(args.out / f"{args.name}{suffix}", BUNDLED_DIR / f"{args.name}{suffix}")


if __name__ == "__main__":
    main()
