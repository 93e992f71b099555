"""One scale per source: per-image estimates pooled over a batch, against known µm/px.

Runs :func:`hemascope.segment.batch_scale.estimate_field_scales` — what ``hemascope segment``,
``classify`` and ``analyze`` do before a run without ``--mpp`` — on folders laid out as users
have them, and scores every image twice: its own estimate (``cues["own_mpp"]``, or the estimate
itself when it was not pooled) and the scale the run uses.

Sets (seeded samples, nothing here was tuned on them except where said in BENCHMARKS.md):

* DeepAPL: whole patient folders (``patient/class/*.jpg``: one group per class folder, so
  groups range from 1 to 100+ crops), ``--patients`` of them; truth 0.21 µm/px.
* PBC: ``--per-folder`` crops of each of the 8 class folders, linked into ``pbc/<class>/``;
  truth 0.105 µm/px.
* Rescaled: the same PBC and DeepAPL picks rescaled by 0.5/0.7/1.4/2 into one folder per
  factor (other sizes, so other groups); truth scaled accordingly.
* Mixed: one folder holding PBC crops and the same crops rescaled ×1.4 *cropped back to the
  original size* (two magnifications of one size: pooling must not average them).

Usage::

    python benchmarks/bench_scale_batch.py --patients 8 --per-folder 20 --seed 1 --out /tmp/scale_batch.csv
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path("/work/shared/data")
FACTORS = (0.5, 0.7, 1.4, 2.0)


def _save(image: np.ndarray, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)


def _rescaled(image: np.ndarray, factor: float) -> np.ndarray:
    from skimage.transform import rescale

    out = rescale(image, factor, channel_axis=-1, anti_aliasing=factor < 1, preserve_range=True)
    return np.round(out).astype(np.uint8)


def _layout(root: Path, patients: int, per_folder: int, seed: int) -> dict[str, tuple[str, float]]:
    """Write/link the sets under ``root``; returns ``path -> (set, true µm/px)``."""
    import imageio.v3 as iio

    rng = random.Random(seed)
    truth: dict[str, tuple[str, float]] = {}
    for patient in rng.sample(sorted(p for p in (DATA / "deepapl").iterdir() if p.is_dir()), patients):
        for f in sorted(patient.rglob("*.jpg")):
            truth[str(f)] = ("deepapl", 0.21)
    picks = []
    for folder in sorted(p for p in (DATA / "pbc").iterdir() if p.is_dir()):
        for f in rng.sample(sorted(folder.glob("*.jpg")), per_folder):
            link = root / "pbc" / folder.name / f.name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(f)
            truth[str(link)] = ("pbc", 0.105)
            picks.append((f, 0.105))
    deepapl = [Path(p) for p, (s, _) in truth.items() if s == "deepapl"]
    picks += [(f, 0.21) for f in rng.sample(deepapl, min(len(deepapl), 8 * per_folder))]
    for k, (f, mpp) in enumerate(picks):
        factor = FACTORS[k % len(FACTORS)]
        source = "pbc" if mpp == 0.105 else "deepapl"
        path = root / f"{source}_x{factor}" / f"{f.stem}.png"
        _save(_rescaled(iio.imread(f)[..., :3], factor), path)
        truth[str(path)] = (f"{source}_x{factor}", mpp / factor)
    for k, (f, mpp) in enumerate(p for p in picks if p[1] == 0.105):  # two magnifications, one size
        image = iio.imread(f)[..., :3]
        if k % 2:
            big = _rescaled(image, 1.4)
            r0, c0 = (big.shape[0] - image.shape[0]) // 2, (big.shape[1] - image.shape[1]) // 2
            image, mpp = big[r0:r0 + image.shape[0], c0:c0 + image.shape[1]], mpp / 1.4
        path = root / "mixed" / f"{f.stem}.png"
        _save(image, path)
        truth[str(path)] = ("mixed", mpp)
    return truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=8)
    parser.add_argument("--per-folder", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from hemascope.segment.batch_scale import estimate_field_scales

    with tempfile.TemporaryDirectory() as tmp:
        truth = _layout(Path(tmp), args.patients, args.per_folder, args.seed)
        paths = sorted(truth)
        scales = estimate_field_scales(paths)
        rows = []
        for p in paths:
            name, mpp = truth[p]
            used = scales.get(p)
            own = None if used is None else used.cues.get("own_mpp", used.mpp)
            own_conf = None if used is None else used.cues.get("own_confidence", used.confidence)
            rows.append({"set": name, "path": p, "truth": mpp, "refused": used is None,
                         "own": own, "own_low": own_conf is not None and own_conf < 0.5,
                         "used": None if used is None else used.mpp,
                         "used_low": used is not None and used.low_confidence,
                         "pooled": used is not None and "batch_images" in used.cues})
    table = pd.DataFrame(rows)
    if args.out:
        table.to_csv(args.out, index=False)
    print("| set | images | pooled | within ±15 %: alone → run | confident wrong (> 25 %): alone → run | flagged: alone → run |")
    print("|---|---|---|---|---|---|")
    for name, g in table.groupby("set", sort=False):
        ok = ~g["refused"]
        err_own = (g["own"] / g["truth"] - 1).abs()
        err_used = (g["used"] / g["truth"] - 1).abs()
        print(f"| {name} | {len(g)} | {g['pooled'].mean():.2f} | "
              f"{(ok & (err_own <= 0.15)).mean():.3f} → **{(ok & (err_used <= 0.15)).mean():.3f}** | "
              f"{(ok & (err_own > 0.25) & ~g['own_low']).mean():.3f} → **{(ok & (err_used > 0.25) & ~g['used_low']).mean():.3f}** | "
              f"{g['own_low'].mean():.3f} → {g['used_low'].mean():.3f} |")


if __name__ == "__main__":
    main()
