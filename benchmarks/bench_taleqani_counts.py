"""Objects found per Taleqani B-ALL field against a visual count (``taleqani_visual_counts.csv``).

The 20 fields (seeded sample, ``random.Random(15)``) were counted by eye at 3× zoom: every white
cell (blasts, lymphocytes, neutrophils, monocytes, small dark nucleated cells, smudged cells;
cells cut by the border included), not platelets or debris. ``uncertainty`` is the counter's own
± estimate. Run at the data set's scale (0.444 µm/px, ``--scale given``), with the scale
estimated per field (``--scale estimated``), or as a user runs it: ``hemascope segment`` on the 20
fields as one folder without ``--mpp`` (``--scale command``: the estimates pooled over the folder).

Usage::

    python benchmarks/bench_taleqani_counts.py --scale given
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path("/work/shared/data/taleqani_all")
COUNTS = Path(__file__).with_name("taleqani_visual_counts.csv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=("given", "estimated", "command"), default="given")
    parser.add_argument("--mpp", type=float, default=0.444)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--segmenter", default="classical", help="classical, learned, cellpose or auto")
    args = parser.parse_args()

    import imageio.v3 as iio

    from hemascope.segment import find_cells

    counts = pd.read_csv(COUNTS)
    if args.scale == "command":
        found, mpps = _through_segment(counts["file"], args.segmenter)
    else:
        found, mpps = [], []
        for name in counts["file"]:
            image = iio.imread(DATA / name)[..., :3]
            seg = find_cells(image, mpp=args.mpp if args.scale == "given" else None, num_workers=1,
                             segmenter=args.segmenter)
            found.append(len(seg.cells))
            mpps.append(seg.mpp)
    counts["found"] = found
    counts["mpp_used"] = np.round(mpps, 4)
    counts["difference"] = counts["found"] - counts["visual_count"]
    print(counts[["file", "visual_count", "uncertainty", "found", "difference", "mpp_used"]].to_string(index=False))
    diff = counts["difference"]
    within = (diff.abs() <= np.maximum(counts["uncertainty"], 1)).mean()
    print(f"fields {len(counts)}: visual total {counts['visual_count'].sum()}, found total {counts['found'].sum()}; "
          f"mean |difference| {diff.abs().mean():.2f} per field; within the count's uncertainty (min ±1) "
          f"{within:.0%}; found/visual ratio {counts['found'].sum() / counts['visual_count'].sum():.3f}")
    if args.out is not None:
        counts.to_csv(args.out, index=False)


def _through_segment(files: pd.Series, segmenter: str) -> tuple[list[int], list[float]]:
    """Cells found and µm/px used per field by ``hemascope segment FOLDER`` without ``--mpp``."""
    import tempfile

    from hemascope.cli.main import main as hemascope

    with tempfile.TemporaryDirectory() as tmp:
        folder, out = Path(tmp) / "fields", Path(tmp) / "out"
        folder.mkdir()
        for name in files:
            (folder / Path(name).name).symlink_to(DATA / name)
        hemascope(["segment", str(folder), "--out", str(out), "--segmenter", segmenter, "--quiet"])
        images = pd.read_csv(out / "images.csv").set_index("source")
    rows = [images.loc[str(folder / Path(name).name)] for name in files]
    return [int(r["n_cells"]) for r in rows], [float(r["mpp"]) for r in rows]


if __name__ == "__main__":
    main()
