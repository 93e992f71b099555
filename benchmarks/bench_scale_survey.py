"""Zero-configuration scale of a large batch: every picture estimated vs a survey of 200 of each size.

``hemascope classify`` (and ``train cells``) without ``--mpp`` estimate each picture's µm/px and
pool the estimates of one pixel size (:func:`hemascope.classify.images.estimate_picture_scales`).
With the survey, 200 pictures spread over a size are estimated first and, when they agree on one
scale, the others take it unestimated. Both ways on the same pictures, side by side in one run:
seconds, pictures per second, share within ±15 % of the truth, and pictures whose scale differs
between the two ways by more than 1 %.

Sets: held-out PBC crops (one command), the held-out DeepAPL patients' crops (one command for all
13 patients), and a mixed set (PBC crops, every other one rescaled ×1.4 and cut back to its size:
two magnifications of one pixel size, where the survey must fall back to estimating them all)::

    python benchmarks/bench_scale_survey.py --work /tmp/hemascope_cells --mixed 400
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from bench_scale import _rescale  # noqa: E402

from hemascope.classify.images import SURVEY_IMAGES, estimate_picture_scales, read_cell_image  # noqa: E402


def _mixed(table: pd.DataFrame, n: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """``n`` PBC crops, every other one rescaled ×1.4 and cut back to its original size."""
    pictures, truth = [], []
    for i, (path, mpp) in enumerate(zip(*table.sample(n, random_state=seed)[["path", "mpp"]].T.values, strict=True)):
        image = read_cell_image(path)
        if i % 2:
            big = _rescale(image, 1.4)
            r0, c0 = (big.shape[0] - image.shape[0]) // 2, (big.shape[1] - image.shape[1]) // 2
            image, mpp = big[r0 : r0 + image.shape[0], c0 : c0 + image.shape[1]], mpp / 1.4
        pictures.append(np.ascontiguousarray(image))
        truth.append(mpp)
    return pictures, np.asarray(truth)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/hemascope_cells"))
    ap.add_argument("--mixed", type=int, default=400, help="pictures of the mixed set")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(2)
    pbc = pd.read_csv(args.work / "pbc_test.csv")
    deepapl = pd.read_csv(args.work / "deepapl_test.csv")
    sets = {
        "pbc": (list(pbc.path), pbc.mpp.to_numpy()),
        "deepapl": (list(deepapl.path), deepapl.mpp.to_numpy()),
        "mixed": _mixed(pbc, args.mixed, args.seed),
    }
    print("| set | pictures | every picture: s (pictures/s) | survey: s (pictures/s) | speed-up "
          "| within ±15 %: every / survey | scales differing > 1 % |")
    print("|---|---|---|---|---|---|---|")
    for name, (items, truth) in sets.items():
        runs = {}
        for how, survey in (("every", len(items) + 1), ("survey", SURVEY_IMAGES)):
            t0 = time.perf_counter()
            scales = estimate_picture_scales(items, survey=survey)
            runs[how] = (time.perf_counter() - t0, np.array([float(s) if not isinstance(s, Exception) else np.nan
                                                             for s in scales]))
        (t_all, every), (t_survey, surveyed) = runs["every"], runs["survey"]
        within = [np.mean(np.abs(v / truth - 1) <= 0.15) for v in (every, surveyed)]
        differ = np.mean(~np.isclose(every, surveyed, rtol=0.01, equal_nan=True))
        print(f"| {name} | {len(items)} | {t_all:.1f} ({len(items) / t_all:.1f}) | {t_survey:.1f} "
              f"({len(items) / t_survey:.1f}) | {t_all / t_survey:.1f}x | {within[0]:.3f} / {within[1]:.3f} "
              f"| {differ:.3f} |", flush=True)


if __name__ == "__main__":
    main()
