"""Make the synthetic AML bag data set of the demo subtype model (SCEMILA folder layout).

Usage::

    python scripts/make_synthetic_aml_bags.py --out /tmp/hemascope_aml_bags [--per-class 40 10 20]

Writes one folder of single-cell PNGs (64 px at 0.5 µm/px, from ``hemascope.synthetic.render_cell``)
per synthetic patient and ``labels.csv`` (``patient_id``, ``bag_label``, ``split``, and the
domain-shift settings). Each patient has a genetic subtype (``hemascope.classes.AML_SUBTYPES``),
8–60 blasts of that subtype's morphology and 10–30 other white cells. Train and validation
patients draw their stain/scanner shift from one range; **test patients use settings outside it**
(stronger hue rotation, over/under-staining, more blur and noise, JPEG 75), so test accuracy
measures robustness to unseen domain shift. Synthetic/demo data only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from hemascope.classes import AML_SUBTYPES
from hemascope.synthetic import DomainShift, render_cell

MPP = 0.5
SIZE = 64
OTHER_CELLS = ("neutrophil", "lymphocyte", "monocyte", "eosinophil")


def seen_shift(rng: np.random.Generator) -> DomainShift:
    """Stain/scanner variation of training and validation patients."""
    return DomainShift(
        hue_deg=float(rng.uniform(-4, 4)),
        intensity=float(rng.uniform(0.88, 1.12)),
        blur_um=float(rng.uniform(0.0, 0.25)),
        noise=float(rng.uniform(0.0, 2.0)),
        jpeg_quality=None,
    )


def unseen_shift(rng: np.random.Generator) -> DomainShift:
    """Test-patient variation, outside every training range."""
    sign = 1 if rng.random() < 0.5 else -1
    stain = rng.uniform(0.72, 0.8) if rng.random() < 0.5 else rng.uniform(1.2, 1.3)
    return DomainShift(
        hue_deg=float(sign * rng.uniform(7, 10)),
        intensity=float(stain),
        blur_um=float(rng.uniform(0.35, 0.5)),
        noise=float(rng.uniform(3.5, 5.0)),
        jpeg_quality=75,
    )


def make_patient(folder: Path, subtype: str, shift: DomainShift, rng: np.random.Generator) -> dict:
    """Render one patient's cells into ``folder``; returns its counts."""
    folder.mkdir(parents=True, exist_ok=True)
    n_blasts = int(rng.integers(8, 61))
    n_other = int(rng.integers(10, 31))
    classes = ["blast"] * n_blasts + list(rng.choice(OTHER_CELLS, size=n_other))
    for i in rng.permutation(len(classes)):
        image, _, _ = render_cell(
            classes[i], mpp=MPP, size=SIZE, rng=rng, shift=shift, subtype=subtype
        )
        Image.fromarray(image).save(folder / f"cell_{i:03d}.png")
    return {"n_blasts_true": n_blasts, "n_cells": len(classes)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument(
        "--per-class", type=int, nargs=3, default=(40, 10, 20), metavar=("TRAIN", "VAL", "TEST")
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rows = []
    for split, count in zip(("train", "val", "test"), args.per_class, strict=True):
        for subtype in AML_SUBTYPES:
            for k in range(count):
                seed = [
                    args.seed,
                    AML_SUBTYPES.index(subtype),
                    ("train", "val", "test").index(split),
                    k,
                ]
                rng = np.random.default_rng(seed)
                shift = unseen_shift(rng) if split == "test" else seen_shift(rng)
                name = f"{split}_{subtype.replace('::', '-')}_{k:03d}"
                info = make_patient(args.out / name, subtype, shift, rng)
                rows.append(
                    {
                        "patient_id": name,
                        "bag_label": subtype,
                        "split": split,
                        **info,
                        "shift": json.dumps(
                            {
                                "hue_deg": round(shift.hue_deg, 2),
                                "intensity": round(shift.intensity, 3),
                                "blur_um": round(shift.blur_um, 3),
                                "noise": round(shift.noise, 2),
                                "jpeg_quality": shift.jpeg_quality,
                            }
                        ),
                    }
                )
        print(split, "done", flush=True)
    pd.DataFrame(rows).to_csv(args.out / "labels.csv", index=False)
    print(f"{len(rows)} synthetic patients in {args.out}")


if __name__ == "__main__":
    main()
