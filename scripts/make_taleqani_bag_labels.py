"""Labels CSV of the Taleqani B-ALL bag models: each field is a bag, with a fixed field split.

Usage::

    python scripts/make_taleqani_bag_labels.py --data /work/shared/data/taleqani_all \
        --out benchmarks/slide_splits/taleqani_fields.csv

The split follows the cell model's field split (``benchmarks/splits/taleqani_*.csv``, seed 0,
by field), so no test field of the bag models was seen by the ``wbc`` cell model in training.
Fields that split does not list (no cell cut out of them) are split 70/15/15 with seed 0,
stratified by label. Output columns: ``bag`` (path relative to the data folder), ``label``,
``split``.

With ``--cells WORK`` (the ``--work`` folder of ``scripts/prepare_cell_data.py``) each field's bag
is instead a folder of the white-cell crops that script cut out of it (symlinks under
``WORK/taleqani_bags/<field>``; layout (a)), and ``bag`` is that folder relative to ``WORK``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

SPLITS = Path(__file__).resolve().parents[1] / "benchmarks" / "splits"


def crop_bags(fields: pd.DataFrame, work: Path) -> pd.DataFrame:
    """Make one folder of symlinked cell crops per field; fields without crops are dropped."""
    cells = pd.concat(pd.read_csv(work / f"taleqani_{s}.csv") for s in ("train", "val", "test"))
    root = work / "taleqani_bags"
    bags = {}
    for field, part in cells.groupby("group"):
        folder = root / Path(field).stem
        folder.mkdir(parents=True, exist_ok=True)
        for path in part["path"]:
            link = folder / Path(path).name
            if not link.exists():
                link.symlink_to(Path(path).resolve())
        bags[field] = str(folder.relative_to(work))
    out = fields[fields["bag"].isin(bags)].copy()
    print(f"{len(fields) - len(out)} fields without cell crops left out")
    out["bag"] = out["bag"].map(bags)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cells", type=Path, help="prepare_cell_data.py work folder: bags of crops")
    args = ap.parse_args()
    fields = pd.read_csv(args.data / "labels.csv").rename(columns={"path": "bag"})
    split_of: dict[str, str] = {}
    for split in ("train", "val", "test"):
        cells = pd.read_csv(SPLITS / f"taleqani_{split}.csv")
        split_of.update(dict.fromkeys(cells["group"].unique(), split))
    fields["split"] = fields["bag"].map(split_of)
    rng = np.random.default_rng(args.seed)
    for _label, part in fields[fields["split"].isna()].groupby("label"):
        order = rng.permutation(part.index.to_numpy())
        n_train, n_val = round(0.7 * len(order)), round(0.15 * len(order))
        fields.loc[order[:n_train], "split"] = "train"
        fields.loc[order[n_train : n_train + n_val], "split"] = "val"
        fields.loc[order[n_train + n_val :], "split"] = "test"
    if args.cells is not None:
        fields = crop_bags(fields, args.cells)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fields[["bag", "label", "split"]].to_csv(args.out, index=False)
    print(fields.groupby(["split", "label"]).size().unstack())


if __name__ == "__main__":
    main()
