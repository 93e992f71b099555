"""CellaVision Dice on recoloured copies of ``wbc_seg_cellavision`` (stain and white-balance shifts).

Each image is recoloured in optical-density space (``bench_cellavision_crops.recolour``: yellow
white balance, pale stain ×0.55, grey/desaturated, dark stain ×1.5) and segmented at 0.1 µm/px
(given) or with the scale estimated (``--scale estimated``); whole-cell and nucleus Dice against
the unchanged masks. Evaluation only.

Usage::

    python benchmarks/bench_segment_recoloured.py --recolour none yellow pale grey dark
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_cellavision_crops import recolour  # noqa: E402

DATA = Path("/work/shared/data/wbc_seg_cellavision")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recolour", nargs="+", default=["none", "yellow", "pale", "grey", "dark"])
    parser.add_argument("--scale", choices=("given", "estimated"), default="given")
    args = parser.parse_args()

    from hemascope.segment import find_cells
    from hemascope.segment.evaluation import evaluate_mask_folder

    print("| recolour | scale | cells | whole-cell Dice | nucleus Dice | detection recall | median µm/px used |")
    print("|---|---|---|---|---|---|---|")
    for how in args.recolour:
        used = []

        def segment(image, how=how, used=used):
            seg = find_cells(recolour(image, None if how == "none" else how),
                             mpp=0.1 if args.scale == "given" else None, num_workers=1)
            used.append(seg.mpp)
            return seg.cell_labels, seg.nucleus_labels

        per_cell, detection = evaluate_mask_folder(DATA / "images", DATA / "masks", segment)
        print(f"| {how} | {args.scale} | {len(per_cell)} | {per_cell['cell_dice'].mean():.4f} | "
              f"{per_cell['nucleus_dice'].mean():.4f} | {detection.recall:.3f} | {np.median(used):.4f} |", flush=True)


if __name__ == "__main__":
    main()
