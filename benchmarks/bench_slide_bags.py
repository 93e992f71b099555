"""Side-by-side figures of the bag models trained by scripts/train_bag_models.sh.

Usage::

    python benchmarks/bench_slide_bags.py --runs /tmp/hemascope_bag_runs --out benchmarks/results

Reads each run's card (test metrics), per-bag test predictions and accuracy-vs-cells curve, prints
one markdown table per data set (mean pooling vs attention MIL vs inherited-label cell model:
accuracy, macro-F1, ECE, coverage after abstention) and writes one plot per data set of accuracy
against the number of cells (blasts) per bag.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from hemascope.train.mil_evaluation import plot_accuracy_vs_bag_size

SETS = {
    "taleqani": (
        "Taleqani B-ALL fields (held-out fields)",
        "white cells per field",
        ["taleqani-all-mean", "taleqani-all", "taleqani-all-cells"],
    ),
    "aml": (
        "SYNTHETIC/DEMO AML subtypes (held-out patients, unseen domain shift)",
        "white cells per bag",
        ["aml-subtype-demo-mean", "aml-subtype-demo", "aml-subtype-demo-cells"],
    ),
}
METHOD = {
    "mean": "mean pooling",
    "attention": "gated attention MIL",
    "instance": "inherited-label cells (GCE)",
}


def markdown(frame: pd.DataFrame) -> str:
    """A pipe table (no extra dependency)."""

    def cell(value: object) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += [
        "| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=Path("/tmp/hemascope_bag_runs"))
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    for key, (title, xlabel, names) in SETS.items():
        rows, curves = [], {}
        for name in names:
            card_path = args.runs / name / f"{name}.json"
            if not card_path.exists():
                continue
            card = json.loads(card_path.read_text())
            test = card["metrics"].get("test", {})
            rows.append(
                {
                    "model": f"{name} v{card['version']}",
                    "method": METHOD[card["architecture"]],
                    "test bags": card["metrics"]["n_bags"]["test"],
                    "accuracy": test.get("accuracy"),
                    "macro-F1": test.get("macro_f1"),
                    "ECE": test.get("ece"),
                    "coverage": card["metrics"].get("test_coverage"),
                    "accuracy (answered)": card["metrics"].get("test_accuracy_answered"),
                    "T": card["temperature"],
                    "members": card["arch_params"].get("members", 1),
                    "cell model": f"{card['embedding_model']} v{card['embedding_version']}",
                }
            )
            demo = " SYNTHETIC/DEMO" if card.get("demo") else ""
            label = f"{name} v{card['version']}{demo} ({METHOD[card['architecture']]})"
            curves[label] = pd.read_csv(
                args.runs / name / f"{name}.curve.csv"
            )
        if not rows:
            continue
        print(f"\n### {title}\n")
        print(markdown(pd.DataFrame(rows)))
        png = plot_accuracy_vs_bag_size(
            curves, args.out / f"slide_{key}_accuracy_vs_cells.png", title=title, xlabel=xlabel
        )
        print(f"\nplot: {png}")
        for label, curve in curves.items():
            print(f"\n{label}:\n")
            print(markdown(curve))


if __name__ == "__main__":
    main()
