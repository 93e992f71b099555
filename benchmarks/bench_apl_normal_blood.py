"""The ``apl`` model on bags without AML, beside its DeepAPL training patients.

``apl`` tells APL from other AML for patients known to have AML. Its input is the share and mean
embedding of the cells it reads as blast- or promyelocyte-like (soft membership through its copy
of the ``wbc`` head) and of the other cells. Per bag this prints that share, the bag's distance
from the training bags (:func:`hemascope.slide.subtype.bag_distance`; for a DeepAPL patient also
with that patient left out of the statistics), P(APL) and whether ``predict_subtype`` answers or
abstains (the card's ``domain_reference``: ``min_group_shares``, ``max_bag_distance``):

- ``deepapl``: every DeepAPL patient (82 bags; all were training bags of ``apl``, so P(APL) here
  is in-sample — the share is what the floor is calibrated on);
- ``pbc-normal``: bags of 100 held-out PBC cells in a normal differential (N 60, L 30, M 6, E 3,
  B 1; seeds 0-4) at 0.1048 µm/px;
- ``wbcseg``: the 100 normal cells of ``wbc_seg_cellavision`` (another lab) at 0.1 µm/px;
- ``taleqani-<class>``: B-ALL (Early, Pre, Pro) and benign (hematogone) blood, bags of 6 Taleqani
  fields each (4 per class, seeded), segmented and classified as ``predict-bags`` does them.

Crops go through :func:`hemascope.classify.classify_images` (label shift and blast rule off),
fields through :func:`hemascope.train.bags_sources.cells_of_source`. Usage::

    python benchmarks/bench_apl_normal_blood.py --work /tmp/hemascope_cells [--out rows.csv] [--set-reference]

``--set-reference`` writes both limits into the bundled ``apl.json`` (``scripts/train_apl_model.sh``
does, after each retrain): :data:`FLOOR_FRACTION` of the lowest training bag's share of each
group (blast/ig-like cells, and the others), and the largest distance of a training bag left out of the statistics (rounded up to 0.1).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch

#: The card's floor of each group's share is this fraction of the lowest among the DeepAPL training bags.
FLOOR_FRACTION = 0.85
TALEQANI = Path("/work/shared/data/taleqani_all")
TALEQANI_BAGS, TALEQANI_FIELDS = 4, 6
NORMAL_MIX = {"neutrophil": 60, "lymphocyte": 30, "monocyte": 6, "eosinophil": 3, "basophil": 1}
SEG = Path("/work/shared/data/wbc_seg_cellavision")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/hemascope_cells"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--set-reference", action="store_true",
                    help="write the share floor and the distance limit into the bundled apl.json")
    args = ap.parse_args()

    from hemascope.classify import classify_images
    from hemascope.models import load_model
    from hemascope.slide import load_bag_model, predict_subtype
    from hemascope.slide.subtype import bag_distance

    torch.set_num_threads(args.threads)
    cell_model, bag = load_model("wbc", device="cpu"), load_bag_model("apl")

    def scored(kind: str, name: str, table: pd.DataFrame, emb: np.ndarray) -> dict:
        emb = np.asarray(emb, dtype=np.float32)
        with torch.no_grad():
            x = torch.as_tensor(emb)[None]
            shares = bag.module.membership(x)[0].mean(0).tolist()
            vector = bag.module.bag_features(x)[0].numpy()
        pred = predict_subtype(table[["class"]], emb, bag)
        p_apl = float(bag.predict(emb)[0][bag.card.classes.index("APL")])
        return {"kind": kind, "bag": name, "cells": len(emb), "share": shares[0],
                "other_share": shares[1],
                "distance": bag_distance(bag, emb), "p_apl": p_apl, "abstained": pred.abstained,
                "reason": pred.reason, "vector": vector}

    def one(kind: str, name: str, paths: list[str], mpp: float) -> dict:
        out = classify_images(paths, cell_model, mpp, device="cpu", return_embeddings=True,
                              adapt_priors=False, blast_min=0.0)
        return scored(kind, name, out.table, out.embeddings)

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
    for folder in sorted(p for p in TALEQANI.iterdir() if p.is_dir()):
        fields = sorted(folder.glob("*.jpg"))
        order = np.random.default_rng(0).permutation(len(fields))
        for b in range(TALEQANI_BAGS):
            picks = [fields[i] for i in order[b * TALEQANI_FIELDS : (b + 1) * TALEQANI_FIELDS]]
            table, emb = fields_bag(cell_model, picks, args.work / "taleqani_bags" / f"{folder.name}_{b}")
            rows.append(scored(f"taleqani-{folder.name.lower()}", f"{folder.name} {b}", table, emb))
    table = pd.DataFrame(rows)
    table["loo_distance"] = left_out_distances(table)
    if args.out is not None:
        table.drop(columns="vector").to_csv(args.out, index=False)
    if args.set_reference:
        set_reference(table)
    reference = bag.card.domain_reference
    print(f"card when this run started: min_group_shares {reference.get('min_group_shares')}, "
          f"max_bag_distance {reference.get('max_bag_distance')}")
    print("| bags | n | blast/ig-like share: min – median – max | distance: min – median – max "
          "(DeepAPL: left out) | P(APL) median | abstained |")
    print("|---|---|---|---|---|---|")
    for kind, part in table.groupby("kind", sort=False):
        s = part["share"]
        d = part["loo_distance"].fillna(part["distance"])
        print(f"| {kind} | {len(part)} | {s.min():.3f} – {s.median():.3f} – {s.max():.3f} | "
              f"{d.min():.2f} – {d.median():.2f} – {d.max():.2f} | "
              f"{part['p_apl'].median():.3f} | {int(part['abstained'].sum())} |")


def fields_bag(cell_model, fields: list[Path], folder: Path):
    """Cells and embeddings of a bag of field images (a folder of links to them), as predict-bags reads it."""
    from hemascope.train.bags_sources import cells_of_source

    folder.mkdir(parents=True, exist_ok=True)
    for field in fields:
        link = folder / field.name
        if not link.exists():
            link.symlink_to(field)
    return cells_of_source(folder, cell_model, device="cpu", input_mode="fields")


def left_out_distances(table: pd.DataFrame) -> list[float]:
    """Each DeepAPL bag's distance with the standardisation fitted on the other training bags
    (NaN for the other bags): what a new patient like them would measure."""
    train = np.stack(table.loc[table["kind"] == "deepapl", "vector"].to_list())
    out, k = [], 0
    for kind, vector in zip(table["kind"], table["vector"], strict=True):
        if kind != "deepapl":
            out.append(float("nan"))
            continue
        rest = np.delete(train, k, axis=0)
        z = (vector - rest.mean(0)) / np.clip(rest.std(0, ddof=1), 1e-4, None)
        out.append(float(np.sqrt(np.mean(z**2))))
        k += 1
    return out


def set_reference(table: pd.DataFrame) -> None:
    """Write ``domain_reference`` (share floors, distance limit, their calibration) into the bundled card."""
    import json

    from hemascope.models import BUNDLED_DIR

    deepapl = table[table["kind"] == "deepapl"]
    low, high = deepapl.loc[deepapl["share"].idxmin()], deepapl.loc[deepapl["share"].idxmax()]
    floors = [round(FLOOR_FRACTION * float(deepapl[c].min()), 3) for c in ("share", "other_share")]
    limit = float(np.ceil(deepapl["loo_distance"].max() * 10) / 10)
    normal = table[table["kind"] == "pbc-normal"]["share"]
    others = table[table["kind"] != "deepapl"]
    outside = (others["share"] < floors[0]) | (others["other_share"] < floors[1]) | (others["distance"] > limit)
    path = BUNDLED_DIR / "apl.json"
    card = json.loads(path.read_text())
    card["domain_reference"] = {
        "min_group_shares": floors,
        "max_bag_distance": limit,
        "calibration": (
            f"{FLOOR_FRACTION} x the lowest mean membership of each group among the {len(deepapl)} "
            f"DeepAPL training bags: blast/ig {low['share']:.1%} ({low['bag']}), other cells "
            f"{1 - high['share']:.1%} ({high['bag']}); bags of 100 held-out PBC cells in a normal "
            f"differential: blast/ig {normal.min():.1%}-{normal.max():.1%}. Distance limit: the "
            f"largest RMS standardised bag vector of a training bag left out of the statistics "
            f"({deepapl['loo_distance'].max():.2f}, median {deepapl['loo_distance'].median():.2f}), "
            f"rounded up. Bags without AML (normal PBC, another lab's normal cells, Taleqani B-ALL "
            f"and benign fields) outside a limit: {int(outside.sum())} of {len(others)}. "
            "benchmarks/bench_apl_normal_blood.py"
        ),
    }
    path.write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote min_group_shares {floors}, max_bag_distance {limit} into {path}")


if __name__ == "__main__":
    main()
