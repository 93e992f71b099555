"""One µm/px per bag without ``--mpp`` (``predict-bags``): DeepAPL test and validation patients.

Each patient folder's scale as :func:`hemascope.train.bags_inputs.estimate_bag_mpp` gives it (24
pictures spread over the bag), against the data set's 0.21 µm/px. Usage::

    python benchmarks/bench_bag_scale.py [--work /tmp/hemascope_cells]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from hemascope.train.bags_inputs import estimate_bag_mpp

TRUTH = 0.21


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/hemascope_cells"))
    args = ap.parse_args()
    errors = []
    for split in ("deepapl_test", "deepapl_val"):
        table = pd.read_csv(args.work / f"{split}.csv")
        for _, part in table.groupby("group", sort=True):
            errors.append(abs(estimate_bag_mpp(list(part["path"])) / TRUTH - 1))
    e = np.asarray(errors)
    print(f"{len(e)} bags: median |error| {np.median(e):.3f}, largest {e.max():.3f}, "
          f"within ±5 % {np.mean(e <= 0.05):.2f}, within ±15 % {np.mean(e <= 0.15):.2f}")


if __name__ == "__main__":
    main()
