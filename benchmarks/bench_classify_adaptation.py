"""Per-slide label-shift adaptation and the blast rule, measured on held-out cells per batch.

Usage::

    python benchmarks/bench_classify_adaptation.py --work /tmp/hemascope_cells \
        --seg /work/shared/data/wbc_seg_cellavision --threads 1 [--split val]

Each batch goes through :func:`hemascope.classify.classify_images` exactly as one
``hemascope classify FOLDER --mpp M`` call would take it (one folder = one batch = one class-mix
estimate): DeepAPL test **patients** one by one (``--mpp 0.21``), PBC test cells in random batches
of 200 (seed 0), Taleqani test cells per field, and ``wbc_seg_cellavision`` (another lab, never
trained on) as one batch of 100 at ``--mpp`` 0.1, 0.085 and 0.115 (µm/px off by ∓15 %). Variants:

- ``none``: no adaptation, no blast rule (``--no-adapt-priors --blast-min 0``; ``wbc`` ≤ 0.4.0);
- ``em``: label-shift EM only; ``rule``: the blast rule only; ``em+rule``: both (the card).

Scores: macro-F1 over the classes present (``unclassified`` = ``smudge``), over the classes the
sources share (no blast/smudge), N/L/M/E, myeloblast (blast) recall, mature cells called blast;
Taleqani: blast recall and its benign-field cells (hematogones) called blast. Writes
``benchmarks/results/classify_adaptation.json``.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hemascope.classify import classify_images
from hemascope.models import load_model

MATURE = ("lymphocyte", "neutrophil", "monocyte", "eosinophil", "basophil")
NLME = ("neutrophil", "lymphocyte", "monocyte", "eosinophil")
VARIANTS = {
    "none": {"adapt_priors": False, "blast_min": 0.0},
    "em": {"adapt_priors": True, "blast_min": 0.0},
    "rule": {"adapt_priors": False, "blast_min": None},
    "em+rule": {"adapt_priors": True, "blast_min": None},
}


def f1_per_class(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """F1 of every class present in ``truth``."""
    out = {}
    for c in sorted(set(truth)):
        tp = np.sum((pred == c) & (truth == c))
        prec = tp / max(np.sum(pred == c), 1)
        rec = tp / max(np.sum(truth == c), 1)
        out[c] = float(2 * prec * rec / max(prec + rec, 1e-9))
    return out


def scores(truth: np.ndarray, pred: np.ndarray) -> dict[str, float | int]:
    """The figures of the module docstring."""
    if set(truth) <= {"blast", "nonblast_field"}:
        return {
            "n": len(truth),
            "blast_recall": round(float(np.mean(pred[truth == "blast"] == "blast")), 4),
            "benign_field_called_blast": round(
                float(np.mean(pred[truth == "nonblast_field"] == "blast")), 4
            ),
        }
    f1 = f1_per_class(truth, pred)
    shared = [c for c in f1 if c not in ("blast", "smudge")]
    out: dict[str, float | int] = {
        "n": len(truth),
        "macro_f1": float(np.mean(list(f1.values()))),
        "macro_f1_shared": float(np.mean([f1[c] for c in shared])),
        "macro_f1_nlme": float(np.mean([f1[c] for c in NLME if c in f1])),
        **{f"f1_{c}": f1[c] for c in NLME if c in f1},
        "mature_called_blast": float(np.mean(pred[np.isin(truth, MATURE)] == "blast")),
    }
    if "blast" in f1:
        out["blast_recall"] = float(np.mean(pred[truth == "blast"] == "blast"))
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def batches(table: pd.DataFrame, how: str) -> Iterator[pd.DataFrame]:
    """Per ``group`` (patient/field), random 200-cell batches, or all at once."""
    if how == "group":
        for _, part in table.groupby("group", sort=True):
            yield part
    elif how == "rand200":
        idx = np.random.default_rng(0).permutation(len(table))
        for s in range(0, len(table), 200):
            yield table.iloc[idx[s : s + 200]]
    else:
        yield table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="wbc")
    ap.add_argument("--work", type=Path, default=Path("/tmp/hemascope_cells"))
    ap.add_argument("--seg", type=Path, default=Path("/work/shared/data/wbc_seg_cellavision"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--split",
        choices=("test", "val"),
        default="test",
        help="val: the validation cells the settings were chosen on (no wbc_seg_cellavision)",
    )
    ap.add_argument(
        "--out", type=Path, help="default benchmarks/results/classify_adaptation[_val].json"
    )
    args = ap.parse_args()
    suffix = "" if args.split == "test" else "_val"
    args.out = args.out or Path(__file__).parent / "results" / f"classify_adaptation{suffix}.json"
    torch.set_num_threads(args.threads)
    loaded = load_model(args.model, device="cpu")
    seg = pd.read_csv(args.seg / "labels.csv", dtype=str)
    files = {p.stem: p for p in (args.seg / "images").iterdir()}
    seg = pd.DataFrame({"path": [str(files[i]) for i in seg["image"]], "class": seg["class"]})
    sp = args.split
    sets: list[tuple[str, pd.DataFrame, str, float | None]] = [
        (f"deepapl {sp}, per patient", pd.read_csv(args.work / f"deepapl_{sp}.csv"), "group", None),
        (f"pbc {sp}, random 200-cell batches", pd.read_csv(args.work / f"pbc_{sp}.csv"), "rand200", None),
        (f"taleqani {sp}, per field", pd.read_csv(args.work / f"taleqani_{sp}.csv"), "group", None),
    ]
    if sp == "test":
        sets += [(f"wbc_seg_cellavision --mpp {m}", seg, "all", m) for m in (0.1, 0.085, 0.115)]
    results: dict[str, dict] = {"model": loaded.label, "load_average_before": os.getloadavg()}
    for name, table, how, mpp in sets:
        results[name] = {}
        for variant, options in VARIANTS.items():
            truth, pred = [], []
            for part in batches(table, how):
                scale = mpp if mpp is not None else float(part["mpp"].iloc[0])
                out = classify_images(list(part["path"]), loaded, scale, device="cpu", **options)
                if out.failed:
                    raise SystemExit(f"{name}: {len(out.failed)} images failed: {out.failed[:2]}")
                truth.extend(part["class"])
                pred.extend(out.table["class"].replace({"unclassified": "smudge"}))
            results[name][variant] = scores(np.asarray(truth), np.asarray(pred))
            print(name, variant, results[name][variant], flush=True)
    results["load_average_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
