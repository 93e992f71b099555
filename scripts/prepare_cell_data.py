"""Prepare the real cell data for the bundled models: scales, Taleqani cell crops, fixed splits.

Usage::

    python scripts/prepare_cell_data.py --data /work/shared/data --work /tmp/hemascope_cells

1. Measures red-cell diameters (≈ 7.5 µm) in PBC and Taleqani images to verify/estimate µm/px.
2. Finds white cells in every Taleqani field (``hemascope.segment.find_cells`` when available,
   else a darkest-and-saturated threshold: multi-Otsu on green) and saves a crop around each; cells inherit the field label
   (Benign → ``nonblast_field``, Early/Pre/Pro → ``blast``: noisy labels by construction).
3. Splits PBC (by image, stratified by class) and Taleqani (by field, so no field is split) into
   train/val/test 70/15/15 with seed 0 (Taleqani fields keep the split of the committed lists when
   they exist, :func:`committed_field_splits`), and writes the split lists to ``benchmarks/splits/`` (paths
   relative to ``--data`` or ``--work``) and absolute-path CSVs to ``--work`` for training.
4. Splits DeepAPL by **patient** (stratified by diagnosis, 70/15/15, seed 0), maps the
   technologists' classes to the canonical ones (:mod:`hemascope.train.class_maps`; the diagnosis
   never enters a cell label) and writes ``deepapl_{train,val,test}.csv`` the same way.
   ``--only deepapl`` runs this step alone.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage as ndi
from skimage import color, filters, measure, morphology

from hemascope.train.class_maps import DEEPAPL_CLASS_MAP, map_classes
from hemascope.train.datasets import split_table

RBC_DIAMETER_UM = 7.5
CROP_UM = 36.0  # saved Taleqani crops: 1.5 × a 24 µm model field


def rbc_diameter_px(image: np.ndarray) -> list[float]:
    """Equivalent diameters (px) of isolated, round, pale objects (red cells) in an RGB image."""
    gray = color.rgb2gray(image)
    fg = gray < filters.threshold_otsu(gray)
    fg = ndi.binary_fill_holes(morphology.opening(fg, morphology.disk(1)))
    hema = color.rgb2hed(image)[..., 0]
    nuclei = hema > filters.threshold_otsu(hema) if hema.std() > 0 else np.zeros_like(fg)
    lab = measure.label(fg)
    out = []
    for r in measure.regionprops(lab):
        minr, minc, maxr, maxc = r.bbox
        if minr == 0 or minc == 0 or maxr == lab.shape[0] or maxc == lab.shape[1]:
            continue
        if r.solidity < 0.93 or r.eccentricity > 0.6 or r.area < 30:
            continue
        if nuclei[lab == r.label].mean() > 0.2:
            continue
        out.append(r.equivalent_diameter_area)
    return out


def estimate_mpp(paths: list[Path]) -> tuple[float, int]:
    diams: list[float] = []
    for p in paths:
        diams += rbc_diameter_px(np.asarray(Image.open(p).convert("RGB")))
    return RBC_DIAMETER_UM / float(np.median(diams)), len(diams)


def find_wbc_centroids(image: np.ndarray, mpp: float) -> list[tuple[float, float]]:
    """White-cell centres in a field: segment room's finder if present, else a colour threshold."""
    try:
        from hemascope.segment import find_cells

        seg = find_cells(image, mpp=mpp)
        cols = [("centroid_row", "centroid_col"), ("row", "col")]
        for rc, cc in cols:
            if rc in seg.cells.columns:
                return list(zip(seg.cells[rc], seg.cells[cc], strict=True))
    except ImportError:
        pass
    rgb = image.astype(float)
    green = rgb[..., 1]
    sat = (rgb.max(-1) - rgb.min(-1)) / np.maximum(rgb.max(-1), 1)
    low, _ = filters.threshold_multiotsu(green, 3)  # glass / red cells / white cells
    mask = morphology.opening((green < low) & (sat > 0.25), morphology.disk(2))
    min_area = np.pi * (2.5 / mpp) ** 2  # stained cell body >= 5 µm across
    edge = 4
    rows, cols = mask.shape
    return [
        r.centroid
        for r in measure.regionprops(measure.label(mask))
        if r.area >= min_area
        and edge <= r.centroid[0] < rows - edge
        and edge <= r.centroid[1] < cols - edge
    ]


def crop_around(image: np.ndarray, row: float, col: float, side: int) -> np.ndarray:
    out = np.full((side, side, 3), 255, np.uint8)
    r0, c0 = round(row - side / 2), round(col - side / 2)
    rs, cs = max(r0, 0), max(c0, 0)
    re, ce = min(r0 + side, image.shape[0]), min(c0 + side, image.shape[1])
    out[rs - r0 : re - r0, cs - c0 : ce - c0] = image[rs:re, cs:ce]
    return out


def split_deepapl(data: Path, work: Path, splits: Path, seed: int) -> None:
    """Patient-level split of DeepAPL with the canonical class map (step 4 of the module doc)."""
    labels = pd.read_csv(data / "deepapl" / "labels.csv")
    rng = np.random.default_rng(seed)
    mpp, n_rbc = estimate_mpp(
        [data / "deepapl" / p for p in rng.choice(labels["path"], 60, replace=False)]
    )
    print(
        json.dumps({"deepapl_mpp_measured": round(mpp, 4), "rbcs": n_rbc, "deepapl_mpp_used": 0.21})
    )
    table = pd.DataFrame(
        {
            "path": labels["path"],
            "class": labels["class"],
            "domain": "deepapl",
            "mpp": 0.21,  # README: central 300 px of the 0.105 um/px CellaVision crop, halved
            "group": labels["patient"],
        }
    )
    by_patient = table.assign(
        **{"class": labels["patient"].map(labels.groupby("patient")["diagnosis"].first())}
    )
    parts = split_table(by_patient, seed=seed)
    for split, part in parts.items():
        part = map_classes(
            part.assign(**{"class": table.set_index("path").loc[part["path"], "class"].to_numpy()}),
            DEEPAPL_CLASS_MAP,
        )
        part.to_csv(splits / f"deepapl_{split}.csv", index=False)
        part.assign(path=[str(data / "deepapl" / p) for p in part["path"]]).to_csv(
            work / f"deepapl_{split}.csv", index=False
        )
        print(
            "deepapl",
            split,
            part["group"].nunique(),
            "patients",
            len(part),
            part["class"].value_counts().to_dict(),
        )


SPLITS = ("train", "val", "test")


def committed_field_splits(splits: Path) -> dict[str, str]:
    """Taleqani field → split of the committed lists (``splits/taleqani_*.csv``), empty if absent.

    The crops are cut again by each run (the cell finder changes), but a field never moves
    between splits: the bundled models' test fields stay unseen.
    """
    lists = [splits / f"taleqani_{split}.csv" for split in SPLITS]
    if not all(path.is_file() for path in lists):
        return {}
    return {
        group: split
        for split, path in zip(SPLITS, lists, strict=True)
        for group in pd.read_csv(path)["group"].unique()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/hemascope_cells"))
    ap.add_argument(
        "--splits", type=Path, default=Path(__file__).resolve().parents[1] / "benchmarks" / "splits"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", choices=["deepapl"], help="run one step alone")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    args.splits.mkdir(parents=True, exist_ok=True)
    if args.only == "deepapl":
        split_deepapl(args.data, args.work, args.splits, args.seed)
        return
    rng = np.random.default_rng(args.seed)
    pbc = pd.read_csv(args.data / "pbc" / "labels.csv")
    tal = pd.read_csv(args.data / "taleqani_all" / "labels.csv")
    sample = lambda t, root: [root / p for p in rng.choice(t["path"], 40, replace=False)]  # noqa: E731
    pbc_mpp, n_pbc = estimate_mpp(sample(pbc, args.data / "pbc"))
    tal_mpp, n_tal = estimate_mpp(sample(tal, args.data / "taleqani_all"))
    scales = {
        "pbc_mpp": round(pbc_mpp, 4),
        "pbc_rbcs_measured": n_pbc,
        "taleqani_mpp": round(tal_mpp, 4),
        "taleqani_rbcs_measured": n_tal,
    }
    print(json.dumps(scales))
    crop_dir = args.work / "taleqani_cells"
    rows = []
    side = round(CROP_UM / tal_mpp)
    for path, label in zip(tal["path"], tal["label"], strict=True):
        image = np.asarray(Image.open(args.data / "taleqani_all" / path).convert("RGB"))
        cls = "nonblast_field" if label == "Benign" else "blast"
        for i, (r, c) in enumerate(find_wbc_centroids(image, tal_mpp)):
            rel = Path(cls) / f"{Path(path).stem}_{i:02d}.png"
            (crop_dir / rel.parent).mkdir(parents=True, exist_ok=True)
            Image.fromarray(crop_around(image, r, c, side)).save(crop_dir / rel)
            rows.append((str(rel), cls, "taleqani", tal_mpp, path, label))
    cells = pd.DataFrame(rows, columns=["path", "class", "domain", "mpp", "group", "field_label"])
    print(
        f"taleqani: {len(cells)} cells from {cells['group'].nunique()} fields",
        cells["field_label"].value_counts().to_dict(),
    )
    pbc_table = pd.DataFrame(
        {
            "path": pbc["path"],
            "class": pbc["class"],
            "domain": "pbc",
            "mpp": round(pbc_mpp, 4),
            "group": pbc["path"],
        }
    )
    args.splits.mkdir(parents=True, exist_ok=True)
    (args.splits / "scales.json").write_text(json.dumps(scales, indent=1) + "\n")
    # Taleqani: stratify fields by their label, keep each field's cells together.
    field_table = cells.assign(**{"class": cells["field_label"]})
    for name, table, root in (
        ("pbc", pbc_table, args.data / "pbc"),
        ("taleqani", field_table, crop_dir),
    ):
        fields = committed_field_splits(args.splits) if name == "taleqani" else {}
        if fields:  # keep every field where the bundled models' split put it
            where = table["group"].map(fields)
            print(f"taleqani: the committed field split; {int(where.isna().sum())} cells of new fields dropped")
            parts = {split: table[where == split] for split in SPLITS}
        else:
            parts = split_table(table, seed=args.seed)
        for split, part in parts.items():
            if name == "taleqani":
                part = part.assign(
                    **{"class": cells.set_index("path").loc[part["path"], "class"].to_numpy()}
                )
            part.to_csv(args.splits / f"{name}_{split}.csv", index=False)
            absolute = part.assign(path=[str(root / p) for p in part["path"]])
            absolute.to_csv(args.work / f"{name}_{split}.csv", index=False)
            print(name, split, len(part), part["class"].value_counts().to_dict())


if __name__ == "__main__":
    main()
