"""Which cells carry the APL call? Per technologist class, and a small montage of example cells.

Cross-validates the shipped recipe (``grouped``: blast+ig vs the rest, ridge head) on the first
repeat of the saved patient folds and keeps, for every held-out cell, its evidence in its bag's
call (its exact term of the logit margin, measured from the average training bag: > 0 pushes
towards APL, < 0 towards other AML; see ``GroupedMeanBagClassifier.forward``). It joins the
technologists' CellaVision class of every cell (never used in training) and writes

- ``OUT/cells_by_class.md`` (default ``benchmarks/results/apl``): per technologist class, cells in APL / other-AML
  patients, mean evidence and the share of the class the cell model calls blast or ig;
- ``docs/images/apl_cells.png``: the 6 cells with the most evidence for APL (from 6 APL patients)
  and for other AML (from 6 AML patients), 64 px each, with their technologist class.

Usage::

    python benchmarks/bench_apl_cells.py [--cache /tmp/hemascope_apl/deepapl_wbc.npz]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
TILE = 64
PER_ROW = 6
SHORT = {
    "segmented_neutrophil": "seg. neut.",
    "band_neutrophil": "band neut.",
    "promyelocyte": "promyelo.",
    "variant_lymphocyte": "var. lymph.",
    "metamyelocyte": "metamyelo.",
    "erythroblast": "erythrobl.",
    "platelet_aggregate": "platelets",
    "giant_platelet": "g. platelet",
}


def held_out_evidence(cache: Path) -> pd.DataFrame:
    """Evidence of every held-out cell of repeat 0 (``bag``, ``cell``, ``class``, ``weight``)."""
    import torch

    from hemascope.models import load_model
    from hemascope.train.bags_cv import cross_validate, read_folds
    from hemascope.train.bags_data import load_bags
    from hemascope.train.bags_fit import grouped_arch_params

    torch.set_num_threads(1)
    bags = load_bags(cache)  # made by bench_apl.py / train_apl_model.sh (every cell, wbc)
    folds = read_folds(ROOT / "benchmarks" / "slide_splits" / "deepapl_cv_folds.csv", bags)
    folds = folds[folds["repeat"] == 0]
    options = {"l2": 20.0, "arch_params": grouped_arch_params(load_model("wbc"), "blast+ig")}
    cv = cross_validate(
        bags,
        ["APL", "AML"],
        folds,
        architecture="grouped",
        positive="APL",
        train_options=options,
        curve_sizes=(),
        n_bootstrap=0,
    )
    return cv.cells


def by_class(cells: pd.DataFrame) -> pd.DataFrame:
    """Per technologist class: counts, mean evidence in APL and AML patients, % called blast/ig."""
    rows = []
    for cls, group in cells.groupby("technologist"):
        apl, aml = group[group.diagnosis == "APL"], group[group.diagnosis == "AML"]
        rows.append(
            {
                "technologist class": cls,
                "cells (APL / AML pts)": f"{len(apl)} / {len(aml)}",
                "mean evidence, APL pts": round(apl["weight"].mean(), 2) if len(apl) else np.nan,
                "mean evidence, AML pts": round(aml["weight"].mean(), 2) if len(aml) else np.nan,
                "called blast or ig": f"{group['class'].isin(['blast', 'ig']).mean():.0%}",
                "_n": len(group),
            }
        )
    table = pd.DataFrame(rows).sort_values("_n", ascending=False).drop(columns="_n")
    return table


def montage(cells: pd.DataFrame, path: Path) -> Path:
    """Two rows: most evidence for APL (APL patients), for other AML (AML patients)."""
    picks = []
    for diagnosis, sign in (("APL", -1), ("AML", 1)):
        pool = cells[cells.diagnosis == diagnosis].sort_values("weight", key=lambda w: sign * w)
        picks.append(pool.drop_duplicates("bag").head(PER_ROW))
    label_h = 12
    canvas = Image.new("RGB", (PER_ROW * TILE, 2 * (TILE + label_h) + 14), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text(
        (2, 1), "most evidence for APL (top) / other AML (bottom) - research use only", fill="black"
    )
    for r, chosen in enumerate(picks):
        for c, (_, cell) in enumerate(chosen.iterrows()):
            with Image.open(cell["cell"]) as im:
                tile = im.convert("RGB").resize((TILE, TILE), Image.Resampling.LANCZOS)
            x, y = c * TILE, 14 + r * (TILE + label_h)
            canvas.paste(tile, (x, y))
            name = str(cell["technologist"])
            draw.text((x + 1, y + TILE), SHORT.get(name, name)[:10], fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, optimize=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/deepapl"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/hemascope_apl/deepapl_wbc.npz"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "apl")
    parser.add_argument("--figure", type=Path, default=ROOT / "docs" / "images" / "apl_cells.png")
    args = parser.parse_args()
    cells = held_out_evidence(args.cache)
    labels = pd.read_csv(args.data / "labels.csv")
    labels["cell"] = [str(args.data / p) for p in labels["path"]]
    cells = cells.merge(
        labels[["cell", "class", "diagnosis"]].rename(columns={"class": "technologist"}), on="cell"
    )
    table = by_class(cells)
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(str(v) for v in r) + " |" for r in table.itertuples(index=False)]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cells_by_class.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    out = montage(cells, args.figure)
    print(f"wrote {out} ({out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
