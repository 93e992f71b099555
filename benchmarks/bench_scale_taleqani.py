"""Zero-configuration scale on 100 Taleqani fields against their nominal 0.444 µm/px.

The nominal value itself was estimated from 17 isolated red cells in 40 fields (BENCHMARKS.md,
"Scales"), so this measures agreement, not accuracy. Usage: ``python benchmarks/bench_scale_taleqani.py``.
"""

from __future__ import annotations

import glob
import random

import imageio.v3 as iio
import numpy as np

from hemascope.segment import estimate_mpp

NOMINAL_MPP = 0.444


def main() -> None:
    files = random.Random(0).sample(sorted(glob.glob("/work/shared/data/taleqani_all/*/*.jpg")), 100)
    rows = []
    for f in files:
        est = estimate_mpp(iio.imread(f)[..., :3])
        rows.append((est.mpp / NOMINAL_MPP - 1, est.low_confidence))
    r = np.array(rows, dtype=float)
    print(f"Taleqani fields {len(r)} (seed 0): within ±15 % of {NOMINAL_MPP}: {np.mean(np.abs(r[:, 0]) < 0.15):.2f}; "
          f"median error {np.median(r[:, 0]):+.3f}; >25 % off and not flagged: "
          f"{np.mean((np.abs(r[:, 0]) > 0.25) & (r[:, 1] == 0)):.2f}; flagged: {r[:, 1].mean():.2f}")


if __name__ == "__main__":
    main()
