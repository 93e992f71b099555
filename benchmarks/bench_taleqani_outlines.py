"""Whole-cell outlines on Taleqani B-ALL fields (blue-grey red cells packed against the blasts).

The fields have no annotated outlines; what an outline that spills over the red cells touching a
white cell does is measurable without them: the cell grows far beyond its nucleus. For ``--fields``
seeded held-out test fields per label, segmented at the data set's 0.444 µm/px as ``hemascope
segment`` does, this prints per label the cells found, their median whole-cell area and median
whole-cell / nucleus area, and how many are more than 2.5 times their nucleus or over 400 µm²
(a lymphoblast is 10-15 µm across, 80-180 µm²; Pre-B blasts have scant cytoplasm).

Usage::

    python benchmarks/bench_taleqani_outlines.py --work /tmp/hemascope_cells [--fields 20] [--mpp 0.444] [--out F.csv]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path("/work/shared/data/taleqani_all")
MPP = 0.444


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/hemascope_cells"))
    parser.add_argument("--fields", type=int, default=20, help="test fields per label")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mpp", type=float, default=MPP, help="µm/px given (the data set's 0.444; ±15 %% as a user's guess)")
    parser.add_argument("--out", type=Path, default=None, help="per-cell CSV")
    args = parser.parse_args()

    import imageio.v3 as iio

    from hemascope.segment import find_cells

    fields = pd.read_csv(args.work / "taleqani_test.csv").drop_duplicates("group")
    tables = []
    for label, part in fields.groupby("field_label", sort=True):
        for group in part.sample(args.fields, random_state=args.seed)["group"]:
            cells = find_cells(iio.imread(DATA / group)[..., :3], mpp=args.mpp, num_workers=1).cells
            tables.append(cells[["row", "col", "area_um2", "nucleus_area_um2"]].assign(label=label, field=group))
    cells = pd.concat(tables, ignore_index=True)
    cells["ratio"] = cells["area_um2"] / cells["nucleus_area_um2"]
    if args.out:
        cells.to_csv(args.out, index=False)
    print("| label | cells | median area µm² | median cell / nucleus | > 2.5 × nucleus | > 400 µm² |")
    print("|---|---|---|---|---|---|")
    for label, part in [*cells.groupby("label", sort=True), ("all", cells)]:
        print(f"| {label} | {len(part)} | {np.median(part['area_um2']):.0f} | {np.median(part['ratio']):.2f} "
              f"| {int((part['ratio'] > 2.5).sum())} | {int((part['area_um2'] > 400).sum())} |")


if __name__ == "__main__":
    main()
