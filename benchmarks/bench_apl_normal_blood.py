"""The ``apl`` model on bags of blood without leukaemia, beside its DeepAPL training patients.

``apl`` tells APL from other AML for patients known to have AML. Its input is the share and mean
embedding of the cells it reads as blast- or promyelocyte-like (soft membership through its copy
of the ``wbc`` head). Per bag this prints that share, P(APL) and whether ``predict_subtype``
answers or abstains (the card's ``domain_reference["min_group_share"]``):

- ``deepapl``: every DeepAPL patient (82 bags; all were training bags of ``apl``, so P(APL) here
  is in-sample — the share is what the floor is calibrated on);
- ``pbc-normal``: bags of 100 held-out PBC cells in a normal differential (N 60, L 30, M 6, E 3,
  B 1; seeds 0-4) at 0.1048 µm/px;
- ``wbcseg``: the 100 normal cells of ``wbc_seg_cellavision`` (another lab) at 0.1 µm/px.

Cells go through :func:`hemascope.classify.classify_images` as bags are built (label shift and
blast rule off). Usage::

    python benchmarks/bench_apl_normal_blood.py --work /tmp/hemascope_cells [--out rows.csv] [--set-floor]

``--set-floor`` writes the floor into the bundled ``apl.json`` (``scripts/train_apl_model.sh``
does, after each retrain): :data:`FLOOR_FRACTION` of the lowest training bag's share.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch

#: The card's floor is this fraction of the lowest share among the DeepAPL training bags.
FLOOR_FRACTION = 0.85
NORMAL_MIX = {"neutrophil": 60, "lymphocyte": 30, "monocyte": 6, "eosinophil": 3, "basophil": 1}
SEG = Path("/work/shared/data/wbc_seg_cellavision")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/hemascope_cells"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--set-floor", action="store_true", help="write the floor into the bundled apl.json")
    args = ap.parse_args()

    from hemascope.classify import classify_images
    from hemascope.models import load_model
    from hemascope.slide import load_bag_model, predict_subtype

    torch.set_num_threads(args.threads)
    cell_model, bag = load_model("wbc", device="cpu"), load_bag_model("apl")

    def one(kind: str, name: str, paths: list[str], mpp: float) -> dict:
        out = classify_images(paths, cell_model, mpp, device="cpu", return_embeddings=True,
                              adapt_priors=False, blast_min=0.0)
        emb = np.asarray(out.embeddings, dtype=np.float32)
        with torch.no_grad():
            share = float(bag.module.membership(torch.as_tensor(emb)[None])[0, :, 0].mean())
        pred = predict_subtype(out.table[["class"]], emb, bag)
        p_apl = float(bag.predict(emb)[0][bag.card.classes.index("APL")])
        return {"kind": kind, "bag": name, "cells": len(emb), "share": share, "p_apl": p_apl,
                "abstained": pred.abstained}

    rows = []
    deepapl = pd.concat(pd.read_csv(args.work / f"deepapl_{s}.csv") for s in ("train", "val", "test"))
    for patient, part in deepapl.groupby("group", sort=True):
        rows.append(one("deepapl", str(patient), list(part["path"]), 0.21))
    pbc = pd.read_csv(args.work / "pbc_test.csv")
    for seed in range(5):
        rng = np.random.default_rng(seed)
        picks = [p for cls, n in NORMAL_MIX.items()
                 for p in rng.choice(pbc.loc[pbc["class"] == cls, "path"].to_numpy(), n, replace=False)]
        rows.append(one("pbc-normal", f"seed {seed}", picks, 0.1048))
    seg = pd.read_csv(SEG / "labels.csv", dtype={"image": str})
    rows.append(one("wbcseg", "all", [str(SEG / "images" / f"{i}.png") for i in seg["image"]], 0.1))
    table = pd.DataFrame(rows)
    if args.out is not None:
        table.to_csv(args.out, index=False)
    if args.set_floor:
        set_floor(table)
    floor = bag.card.domain_reference.get("min_group_share")
    print(f"floor (card when this run started): {floor}")
    print("| bags | n | blast/ig-like share: min – median – max | P(APL) median | abstained |")
    print("|---|---|---|---|---|")
    for kind, part in table.groupby("kind", sort=False):
        s = part["share"]
        print(f"| {kind} | {len(part)} | {s.min():.3f} – {s.median():.3f} – {s.max():.3f} | "
              f"{part['p_apl'].median():.3f} | {int(part['abstained'].sum())} |")


def set_floor(table: pd.DataFrame) -> None:
    """Write ``domain_reference.min_group_share`` (and its calibration) into the bundled card."""
    import json

    from hemascope.models import BUNDLED_DIR

    deepapl = table[table["kind"] == "deepapl"].sort_values("share")
    normal = table[table["kind"] == "pbc-normal"]["share"]
    floor = round(FLOOR_FRACTION * float(deepapl["share"].iloc[0]), 3)
    path = BUNDLED_DIR / "apl.json"
    card = json.loads(path.read_text())
    card["domain_reference"] = {
        "min_group_share": floor,
        "calibration": (
            f"{FLOOR_FRACTION} x the lowest mean blast/ig membership of the {len(deepapl)} DeepAPL "
            f"training bags ({deepapl['share'].iloc[0]:.1%}, {deepapl['bag'].iloc[0]}; median "
            f"{deepapl['share'].median():.1%}); bags of 100 held-out PBC cells in a normal "
            f"differential: {normal.min():.1%}-{normal.max():.1%}, {int((normal < floor).sum())} of "
            f"{len(normal)} below. benchmarks/bench_apl_normal_blood.py"
        ),
    }
    path.write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote min_group_share {floor} into {path}")


if __name__ == "__main__":
    main()
