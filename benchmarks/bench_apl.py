"""APL (PML::RARA) vs other AML from a patient's cells: the seed paper's pipeline on DeepAPL.

Patient-level repeated stratified k-fold cross-validation (the same folds for every variant, saved
under ``benchmarks/slide_splits/``) of

- bags of every white cell vs bags of the cells the cell model calls blast or immature granulocyte
  (``blast+ig``: promyelocytes fall under ``ig`` in the ``wbc`` classes),
- gated attention MIL, mean pooling, an instance model on inherited labels (GCE, SCE), and the
  shipped ``grouped`` model (mean embedding and share of the blast+ig cells and of the rest, ridge
  logistic regression; the cell model's head assigns the groups),
- the clinicians' baselines: the proportion of promyelocytes (technologist labels and the cell
  model's ``ig``) and of blasts per patient.

Every variant is also what ``hemascope train bags --cv`` runs (the command lines are printed).
Writes ``benchmarks/results/apl/cv_table.md``, ``cv.json``, per-variant out-of-fold predictions,
and the accuracy-vs-cells plot ``docs/images/apl_cv_curve.png``.

Usage::

    python benchmarks/bench_apl.py [--data /work/shared/data/deepapl] [--repeats 5 --folds 5]
        [--only attention-all,...] [--seen-by-cell-model TRAIN.csv VAL.csv]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hemascope.models import load_model
from hemascope.train.bags_cv import CrossValidation, cross_validate, make_folds, read_folds
from hemascope.train.bags_cv_baseline import class_proportions, cross_validate_scores
from hemascope.train.bags_cv_fit import plot_cv_curves
from hemascope.train.bags_cv_metrics import format_interval, repeated_metrics
from hemascope.train.bags_data import load_bags, restrict_bag, save_bags
from hemascope.train.bags_fit import grouped_arch_params

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["APL", "AML"]
FOLDS_CSV = ROOT / "benchmarks" / "slide_splits" / "deepapl_cv_folds.csv"

#: name → (instances, method, loss, extra train options); the first is the shipped recipe.
VARIANTS: dict[str, tuple[str, str, str, dict]] = {
    "grouped-blast+ig-vs-rest (apl)": ("all", "grouped", "ce", {"l2": 20.0}),
    "attention-all": ("all", "attention", "ce", {}),
    "mean-all": ("all", "mean", "ce", {}),
    "instance-gce-all": ("all", "instance", "gce", {"balanced": True}),
    "instance-sce-all": ("all", "instance", "sce", {"balanced": True}),
    "attention-blast+ig": ("blast+ig", "attention", "ce", {}),
    "mean-blast+ig": ("blast+ig", "mean", "ce", {}),
    "instance-gce-blast+ig": ("blast+ig", "instance", "gce", {"balanced": True}),
}

#: Shared training recipe (fixed epochs: no validation patients are held back inside a fold).
TRAIN = {"epochs": 60, "lr": 1e-3, "batch_size": 16, "max_instances": 256, "min_sample": 1}

#: name → (label source, classes counted): per-patient proportions.
BASELINES: dict[str, tuple[str, list[str]]] = {
    "% promyelocytes (technologist)": ("technologist", ["promyelocyte"]),
    "% blasts (technologist)": ("technologist", ["blast"]),
    "% promyelocytes + blasts (technologist)": ("technologist", ["promyelocyte", "blast"]),
    "% ig (cell model)": ("model", ["ig"]),
    "% blast (cell model)": ("model", ["blast"]),
    "% blast + ig (cell model)": ("model", ["blast", "ig"]),
}


def embed(data: Path, cache: Path, mpp: float) -> list:
    """Bags of every cell of every patient, embedded once with the bundled ``wbc``."""
    from hemascope.train.bags_data import read_bag_labels
    from hemascope.train.bags_sources import build_bags

    model = load_model("wbc")
    meta = {"cell_model_sha256": model.card.sha256, "instances": "all"}
    if cache.exists():
        return load_bags(cache, expect=meta)
    table, _ = read_bag_labels(data / "patients.csv", classes=CLASSES)
    start = time.perf_counter()
    bags, _ = build_bags(table, model, instances="all", mpp=mpp, device="cpu")
    print(f"embedded {sum(b.n_cells for b in bags)} cells in {time.perf_counter() - start:.0f} s")
    save_bags(cache, bags, meta=meta)
    return bags


def technologist_labels(data: Path, bags: list) -> dict[str, np.ndarray]:
    """The technologists' class of every cell of each bag, aligned with the bag's cells."""
    labels = pd.read_csv(data / "labels.csv")
    by_path = dict(zip((str(data / p) for p in labels["path"]), labels["class"], strict=True))
    return {b.name: np.array([by_path[str(n)] for n in b.cell_names]) for b in bags}


def row(name: str, cv: CrossValidation, command: str = "") -> dict:
    m = cv.metrics
    return {
        "variant": name,
        "AUC": format_interval(m["auc"]),
        "accuracy": format_interval(m["accuracy"]),
        "sens @ 90 % spec": format_interval(m["sens_at_spec"]),
        "Brier": format_interval(m["brier"], 3),
        "ECE": format_interval(m["ece"], 3),
        "auc_mean": m["auc"]["mean"],
        "command": command,
    }


def markdown(table: pd.DataFrame) -> str:
    """A GitHub markdown table (no optional dependency)."""
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(str(v) for v in r) + " |" for r in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def restricted(cv: CrossValidation, patients: set[str]) -> dict:
    """Metrics of the out-of-fold predictions of ``patients`` only."""
    keep = cv.predictions[cv.predictions["bag"].isin(patients)]
    wide = keep.pivot(index="repeat", columns="bag", values=f"prob_{cv.positive}")
    truth = np.array(
        [keep.loc[keep["bag"] == b, "label"].iloc[0] == cv.positive for b in wide.columns]
    )
    return repeated_metrics(wide.to_numpy(), truth, n_bootstrap=1000)


def command_line(instances: str, method: str, loss: str, extra: dict) -> str:
    opts = " ".join(
        f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}") for k, v in extra.items()
    )
    if method == "grouped":
        opts += " --groups blast+ig"
    return (
        "hemascope train bags --labels DATA/patients.csv --classes APL,AML --positive APL "
        f"--cell-model wbc --mpp 0.21 --instances {instances} --cache CACHE.npz --folds "
        f"benchmarks/slide_splits/deepapl_cv_folds.csv --method {method} --loss {loss} "
        f"--epochs {TRAIN['epochs']} {opts} --min-instances auto --name NAME --out DIR"
    ).replace("  ", " ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/deepapl"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/hemascope_apl/deepapl_wbc.npz"))
    parser.add_argument("--mpp", type=float, default=0.21)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--only", help="comma-separated variant names (default: all)")
    parser.add_argument(
        "--seen-by-cell-model",
        type=Path,
        nargs="*",
        default=[],
        help="the cell model's training/validation lists (a 'group' or 'patient' column): the CV "
        "is also reported on the other patients only",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "apl")
    parser.add_argument(
        "--figure", type=Path, default=ROOT / "docs" / "images" / "apl_cv_curve.png"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    args.cache.parent.mkdir(parents=True, exist_ok=True)
    bags = embed(args.data, args.cache, args.mpp)
    if FOLDS_CSV.exists():
        folds = read_folds(FOLDS_CSV, bags)
    else:
        folds = make_folds(
            [b.name for b in bags], [b.label for b in bags], args.repeats, args.folds
        )
        FOLDS_CSV.parent.mkdir(parents=True, exist_ok=True)
        folds.to_csv(FOLDS_CSV, index=False)
    rows, results, curves = [], {}, {}
    wanted = args.only.split(",") if args.only else list(VARIANTS)
    for name in wanted:
        instances, method, loss, extra = VARIANTS[name]
        start = time.perf_counter()
        options = {**TRAIN, **extra}
        if method == "grouped":
            options["arch_params"] = grouped_arch_params(load_model("wbc"), "blast+ig")
        cv = cross_validate(
            [restrict_bag(b, instances) for b in bags],
            CLASSES,
            folds,
            architecture=method,
            loss=loss,
            positive="APL",
            train_options=options,
        )
        print(
            f"{name}: AUC {format_interval(cv.metrics['auc'])} ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
        cv.predictions.to_csv(args.out / f"oof_{name}.csv", index=False)
        cv.cells.to_csv(args.out / f"cells_{name}.csv.gz", index=False)
        rows.append(row(name, cv, command_line(instances, method, loss, extra)))
        results[name] = cv.summary()
        curves[name] = cv
    tech = technologist_labels(args.data, bags)
    baselines, baseline_cvs = {}, {}
    for name, (source, counted) in BASELINES.items():
        scores = class_proportions(
            bags, counted, cell_classes=tech if source == "technologist" else None
        )
        cv = cross_validate_scores(scores, folds, CLASSES, positive="APL")
        rows.append(row(name, cv))
        results[name] = cv.summary()
        baseline_cvs[name] = cv
        baselines[name] = float(cv.curve.loc[cv.curve["cells"] == 0, "accuracy"].iloc[0])
    table = pd.DataFrame(rows)
    if args.seen_by_cell_model:
        seen = set()
        for split in args.seen_by_cell_model:
            listed = pd.read_csv(split)
            seen |= set(listed["group" if "group" in listed.columns else "patient"].astype(str))
        unseen = {b.name for b in bags} - seen
        for name, cv in {**curves, **baseline_cvs}.items():
            m = restricted(cv, unseen)
            results[name]["unseen_by_cell_model"] = {"n_patients": len(unseen), **m}
            print(
                f"{name} on the {len(unseen)} patients the cell model never saw: AUC "
                f"{format_interval(m['auc'])}  accuracy {format_interval(m['accuracy'])}"
            )
    (args.out / "cv.json").write_text(json.dumps(results, indent=1))
    columns = ["variant", "AUC", "accuracy", "sens @ 90 % spec", "Brier", "ECE"]
    (args.out / "cv_table.md").write_text(markdown(table[columns]))
    print(markdown(table[columns]))
    if curves:
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        promyelocytes = {
            "% promyelocytes (technologist)": baselines["% promyelocytes (technologist)"]
        }
        plot_cv_curves(
            curves,
            args.figure,
            xlabel="cells per bag (random sub-bags of held-out patients)",
            title=f"DeepAPL, {len(bags)} patients: APL vs other AML, {args.repeats}x{args.folds} CV",
            baselines=promyelocytes,
        )
        print(f"wrote {args.figure}")


if __name__ == "__main__":
    main()
