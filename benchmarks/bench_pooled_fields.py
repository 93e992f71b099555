"""Small fields of one specimen, one by one and pooled: ``hemascope analyze FOLDER --pool``.

A camera user photographs a slide as a folder of fields of a few white cells each. This builds one
folder per Taleqani field label (``--fields`` seeded fields of the held-out test split each,
linked, not copied; the labels' folders stand in for specimens: the data set names no patients),
runs ``hemascope analyze ROOT --out OUT --pool`` as a user would (``--mpp`` given or, without it,
estimated and pooled over the run) and prints, per folder, what the fields say on their own (cells
counted per field; fields with a blast % backed by at least 100 counted cells) beside the pooled
count. Benign fields hold hematogones (normal B precursors that look like blasts); Early / Pre /
Pro fields are B-ALL.

Usage::

    python benchmarks/bench_pooled_fields.py --work /tmp/hemascope_cells --out /tmp/pooled [--mpp 0.444]
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import pandas as pd

DATA = Path("/work/shared/data/taleqani_all")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/hemascope_cells"))
    parser.add_argument("--out", type=Path, required=True, help="scratch folder (emptied first)")
    parser.add_argument("--fields", type=int, default=20, help="fields per folder")
    parser.add_argument("--mpp", type=float, default=None, help="µm/px given (default: estimated)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from hemascope.cli.main import main as hemascope

    shutil.rmtree(args.out, ignore_errors=True)
    root = args.out / "specimens"
    fields = pd.read_csv(args.work / "taleqani_test.csv").drop_duplicates("group")
    for label, part in fields.groupby("field_label", sort=True):
        folder = root / str(label)
        folder.mkdir(parents=True)
        for group in part.sample(args.fields, random_state=args.seed)["group"]:
            (folder / Path(group).name).symlink_to(DATA / group)
    run = args.out / "run"
    argv = ["analyze", str(root), "--out", str(run), "--pool", "--quiet"]
    argv += [] if args.mpp is None else ["--mpp", str(args.mpp)]
    start = time.perf_counter()
    code = hemascope(argv)
    seconds = time.perf_counter() - start
    each = pd.read_csv(run / "summary.csv")
    each["folder"] = [str(Path(s).parent) for s in each["slide"]]
    pooled = pd.read_csv(run / "pooled.csv")
    print(f"\nexit {code}, {seconds:.0f} s, µm/px {'given ' + str(args.mpp) if args.mpp else 'estimated'}")
    print("| folder | fields | cells counted per field (median, max) | fields with ≥ 100 counted "
          "| pooled: cells · counted | pooled blast % (95 % CI) | withheld / left out |")
    print("|---|---|---|---|---|---|---|")
    for row in pooled.itertuples():
        mine = each[each["folder"] == row.slide]
        report = pd.read_json(Path(row.out_dir) / "exports" / "report.json", typ="series")
        diff = report["differential"]
        ci = diff.get("blast_ci") or [None, None]
        blast = "–" if pd.isna(row.blast_percent) else (
            f"{row.blast_percent:.1f} ({ci[0]:.0f}–{ci[1]:.0f})" if None not in ci
            else f"{row.blast_percent:.1f}")
        checks = report["checks"]
        left = checks["fields"]["n_fields"] - checks["fields"]["n_used"]
        said = diff.get("withheld") or ""
        print(f"| {Path(row.slide).name} | {row.n_fields} | {mine['n_counted'].median():.1f}, "
              f"{mine['n_counted'].max():.0f} | {int((mine['n_counted'] >= 100).sum())} | {row.n_cells} · "
              f"{row.n_counted} | {blast} | {said[:60] or '–'} / {left} |")


if __name__ == "__main__":
    main()
