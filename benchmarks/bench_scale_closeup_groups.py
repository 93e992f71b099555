"""Close-ups of one source in one command: the pooled scale against each picture's own.

120-px close-ups (the central 22 µm of a PBC or DeepAPL crop, resampled to 120 px, as
``bench_scale.py --closeups`` cuts them; one pixel size and one µm/px per source) are estimated
once each; random groups of N of them (60 draws per N, seed 1) are pooled as one ``hemascope
classify``/``segment`` command pools them (:func:`hemascope.segment.batch_scale.pool_estimates`).
Prints the share of pictures within ±15 % of the truth, alone and pooled. Usage::

    python benchmarks/bench_scale_closeup_groups.py --half tuning|heldout [--images 100]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import bench_scale as bs  # noqa: E402

SIDE_PX = 120
GROUPS = (5, 10, 20, 40)


def closeup_estimates(source: str, half: str, count: int) -> tuple[list, float]:
    """Per close-up its estimate (``None`` when refused), and the close-ups' true µm/px."""
    import imageio.v3 as iio

    from hemascope.segment import estimate_mpp

    pattern, mpp = bs.CLOSEUP_SOURCES[source]
    side = int(round(bs.CLOSEUP_CENTRE_UM / mpp))
    estimates = []
    for f in random.Random(0).sample(bs._closeup_half(pattern, half), count):
        image = iio.imread(f)[..., :3]
        r0, c0 = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
        cut = bs._rescale(image[r0 : r0 + side, c0 : c0 + side], SIDE_PX / side)
        try:
            estimates.append(estimate_mpp(cut))
        except Exception:  # noqa: BLE001 - a refused close-up counts as a miss
            estimates.append(None)
    return estimates, mpp * side / SIDE_PX


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--half", choices=("tuning", "heldout"), default="heldout")
    ap.add_argument("--images", type=int, default=100)
    args = ap.parse_args()

    from hemascope.segment.batch_scale import pool_estimates

    print("| source | alone | " + " | ".join(f"groups of {n}" for n in GROUPS) + " |")
    print("|---|---|" + "---|" * len(GROUPS))
    for source in ("pbc", "deepapl"):
        estimates, truth = closeup_estimates(source, args.half, args.images)
        usable = [e for e in estimates if e is not None]
        alone = np.mean([e is not None and abs(float(e) / truth - 1) <= 0.15 for e in estimates])
        cells = []
        for n in GROUPS:
            rng = np.random.default_rng(1)
            hits = []
            for _ in range(60):
                group = [usable[i] for i in rng.choice(len(usable), n, replace=False)]
                hits.append(abs(float(pool_estimates(group, [0] * n)[0]) / truth - 1) <= 0.15)
            cells.append(f"{np.mean(hits):.2f}")
        print(f"| {source} | {alone:.2f} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
