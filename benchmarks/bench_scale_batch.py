"""One scale per source: per-image estimates pooled over a batch, against known µm/px.

Runs :func:`hemascope.segment.batch_scale.estimate_field_scales` — what ``hemascope segment``,
``classify`` and ``analyze`` do before a run without ``--mpp`` — once per command a user would
run: one per DeepAPL patient folder, one per other set; and scores every image twice: its own estimate (``cues["own_mpp"]``, or
the estimate itself when it was not pooled) and the scale the run uses. A last line pools every
set's own estimates as if all were one command (:func:`pool_estimates` over pixel sizes), the
case where the mixed set's two magnifications meet the plain PBC crops of the same size.

Sets (seeded samples; the pooling constants were chosen on the session-6 scale CSVs, not here):

* DeepAPL: whole patient folders (``patient/class/*.jpg``), ``--patients`` of them, one command
  each; 0.21 µm/px.
* PBC: ``--per-folder`` crops of each of the 8 class folders; 0.105 µm/px.
* Rescaled: the same PBC and DeepAPL picks rescaled by 0.5/0.7/1.4/2, one set per factor and
  source (other sizes); truth scaled accordingly.
* Mixed: PBC crops, every other one rescaled ×1.4 and *cropped back to the original size* (two
  magnifications of one size: pooling must not average them).

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


def _command(path: str, name: str) -> str:
    """What one user command processes: a DeepAPL patient's folder, else the whole set."""
    return f"deepapl/{Path(path).parents[1].name}" if name == "deepapl" else name


def _estimate_alone(path: str):
    """The per-image estimate (what a command does with fewer than ``MIN_IMAGES`` pictures)."""
    from hemascope.errors import HemascopeError
    from hemascope.io import open_slide
    from hemascope.segment.regions import slide_mpp

    try:
        with open_slide(path) as slide:
            return slide_mpp(slide)[0]
    except HemascopeError:
        return None


def _size(path: str) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size[1], im.size[0]


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

    from hemascope.segment.batch_scale import estimate_field_scales, pool_estimates
    from hemascope.segment.scale import ScaleEstimate

    with tempfile.TemporaryDirectory() as tmp:
        truth = _layout(Path(tmp), args.patients, args.per_folder, args.seed)
        rows = []
        for command in dict.fromkeys(_command(p, s) for p, (s, _) in truth.items()):
            paths = sorted(p for p, (s, _) in truth.items() if _command(p, s) == command)
            name = truth[paths[0]][0]
            scales = estimate_field_scales(paths) or {p: _estimate_alone(p) for p in paths}  # < MIN_IMAGES
            for p in paths:
                used = scales.get(p)
                own = None if used is None else ScaleEstimate(used.cues.get("own_mpp", used.mpp),
                                                              used.cues.get("own_confidence", used.confidence))
                rows.append({"set": name, "path": p, "truth": truth[p][1], "own": own, "used": used,
                             "size": _size(p)})
    everything = pool_estimates([r["own"] for r in rows], [r["size"] for r in rows])
    for row, pooled in zip(rows, everything, strict=True):
        row["one_run"] = pooled
    table = pd.DataFrame([{
        "set": r["set"], "path": r["path"], "truth": r["truth"], "refused": r["used"] is None,
        **{f"{k}{suffix}": (None if r[k] is None else v(r[k]))
           for k in ("own", "used", "one_run")
           for suffix, v in (("", float), ("_low", lambda e: e.low_confidence))},
        "pooled": r["used"] is not None and "batch_images" in r["used"].cues,
    } for r in rows])
    if args.out:
        table.to_csv(args.out, index=False)
    print("| set | images | pooled | within ±15 %: alone → one command per set or patient (→ all in one command) "
          "| confident wrong (> 25 %): alone → per set (→ one command) | flagged: alone → per set |")
    print("|---|---|---|---|---|---|")
    for name, g in table.groupby("set", sort=False):
        ok = ~g["refused"]

        def within(col, g=g, ok=ok):
            return (ok & ((g[col] / g["truth"] - 1).abs() <= 0.15)).mean()

        def wrong(col, g=g, ok=ok):
            return (ok & ((g[col] / g["truth"] - 1).abs() > 0.25) & ~g[f"{col}_low"].astype(bool)).mean()

        print(f"| {name} | {len(g)} | {g['pooled'].mean():.2f} | {within('own'):.3f} → **{within('used'):.3f}** "
              f"({within('one_run'):.3f}) | {wrong('own'):.3f} → **{wrong('used'):.3f}** ({wrong('one_run'):.3f}) | "
              f"{g['own_low'].astype(bool).mean():.3f} → {g['used_low'].astype(bool).mean():.3f} |")


if __name__ == "__main__":
    main()
