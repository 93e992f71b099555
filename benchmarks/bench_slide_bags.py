"""Side-by-side figures of the bag models trained by scripts/train_bag_models.sh.

Usage::

    python benchmarks/bench_slide_bags.py --runs /tmp/hemascope_bag_runs --out benchmarks/results

Reads each run's card (test metrics), per-bag test predictions and accuracy-vs-cells curve, prints
one markdown table per data set (mean pooling vs attention MIL vs inherited-label cell model:
accuracy, macro-F1, ECE, coverage after abstention) and writes one plot per data set of accuracy
against the number of cells (blasts) per bag.

With ``--calibration-check CACHE LABELS`` it also compares, for the bundled AML demo models, the
card's temperature (fitted on random sub-bags of the validation patients) with one fitted on the
whole validation bags: test bags cut to 1-5 cells, ECE and how many wrong answers reach p >= 0.99.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from hemascope.train.mil_evaluation import plot_accuracy_vs_bag_size

SETS = {
    "taleqani": (
        "Taleqani B-ALL fields (held-out fields)",
        "white cells per field",
        ["taleqani-all-mean", "taleqani-all", "taleqani-all-cells", "taleqani-all-combined"],
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
    "combined": "attention + mean averaged",
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


def calibration_check(cache: Path, labels: Path, names: list[str]) -> pd.DataFrame:
    """Sub-bag vs whole-bag temperature of each model on test bags cut to 1-5 cells."""
    from hemascope.classify.calibration import fit_temperature
    from hemascope.slide import load_bag_model
    from hemascope.train.bags_data import Bag, bag_targets, load_bags
    from hemascope.train.metrics import expected_calibration_error
    from hemascope.train.mil_training import bag_logits

    split = pd.read_csv(labels).set_index("patient_id")["split"]
    bags = load_bags(cache)
    val = [b for b in bags if split.get(b.name) == "val"]
    rng = np.random.default_rng(0)
    cut = [
        Bag(b.name, b.features[rng.permutation(len(b.features))[:k]], b.label)
        for b in bags
        if split.get(b.name) == "test"
        for k in (1, 2, 3, 5)
        for _ in range(5)
    ]
    rows = []
    for name in names:
        model = load_bag_model(name)
        classes = model.card.classes
        y_val, y = bag_targets(val, classes), bag_targets(cut, classes)
        whole = fit_temperature(bag_logits(model.module, val), y_val)
        logits = bag_logits(model.module, cut)
        for how, t in (("sub-bags (card)", model.card.temperature), ("whole bags", whole)):
            z = logits / t
            prob = np.exp(z - z.max(1, keepdims=True))
            prob /= prob.sum(1, keepdims=True)
            wrong = prob.argmax(1) != y
            rows.append(
                {
                    "model": f"{name} v{model.card.version}",
                    "temperature fitted on": how,
                    "T": t,
                    "test sub-bags (1-5 cells)": len(cut),
                    "accuracy": float((~wrong).mean()),
                    "ECE": expected_calibration_error(prob, y),
                    "wrong answers": int(wrong.sum()),
                    "wrong with p >= 0.99": int((prob.max(1)[wrong] >= 0.99).sum()),
                }
            )
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=Path("/tmp/hemascope_bag_runs"))
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument(
        "--calibration-check",
        nargs=2,
        type=Path,
        metavar=("CACHE", "LABELS"),
        help="AML bag cache (.npz) and labels CSV: compare sub-bag and whole-bag temperatures",
    )
    args = ap.parse_args()
    if args.calibration_check:
        table = calibration_check(*args.calibration_check, SETS["aml"][2][:2])
        print("\n### Calibration of the SYNTHETIC/DEMO AML models (test bags cut to 1-5 cells)\n")
        print(markdown(table))
        args.out.mkdir(parents=True, exist_ok=True)
        table.to_json(args.out / "slide_aml_calibration.json", orient="records", indent=2)
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
                    "members": sum(
                        part.get("members", 1)
                        for part in card["arch_params"].get("parts", [card["arch_params"]])
                    ),
                    "cell model": f"{card['embedding_model']} v{card['embedding_version']}",
                }
            )
            demo = " SYNTHETIC/DEMO" if card.get("demo") else ""
            label = f"{name} v{card['version']}{demo} ({METHOD[card['architecture']]})"
            curves[label] = pd.read_csv(args.runs / name / f"{name}.curve.csv")
        if not rows:
            continue
        print(f"\n### {title}\n")
        print(markdown(pd.DataFrame(rows)))
        summary = {"title": title, "models": rows}
        summary["accuracy_vs_cells"] = {k: v.to_dict(orient="records") for k, v in curves.items()}
        (args.out / f"slide_{key}.json").write_text(json.dumps(summary, indent=2) + "\n")
        png = plot_accuracy_vs_bag_size(
            curves, args.out / f"slide_{key}_accuracy_vs_cells.png", title=title, xlabel=xlabel
        )
        print(f"\nplot: {png}")
        for label, curve in curves.items():
            print(f"\n{label}:\n")
            print(markdown(curve))


if __name__ == "__main__":
    main()
