"""Zero-configuration scale (`hemascope.segment.estimate_mpp`) against known µm/px.

Sets: PBC crops (CellaVision, 0.105 µm/px), DeepAPL crops (0.21 µm/px), copies of those rescaled
by known factors (0.5×-2×, truth scaled accordingly), Taleqani B-ALL fields (224² JPEG, nominal
0.444 µm/px — a nominal value only: the four folders look like different acquisitions, see the
per-folder lines) and synthetic fields (``hemascope.synthetic`` at 0.1-0.5 µm/px, every domain
shift). Per image: estimate, error, confidence, low-confidence flag.

Close-ups (``--closeups N``): tight cuts around one white cell, resampled so the cut's longer side
is 90-240 px (truth scaled accordingly): ``closeup_wbcseg_clean`` (``wbc_seg_cellavision``, bounding
box of the cell mask + a margin, everything outside the mask painted with the glass colour: no red
cell left), ``closeup_wbcseg_keep`` (the same cut, red cells kept), ``closeup_pbc`` and
``closeup_deepapl`` (the central 22 µm square of a crop: the cell and pieces of red cells). The
images of each source are split once into a tuning and a held-out half (fixed seed, by image);
``--closeup-half`` picks the half, ``--seed`` the N images of it.

Usage::

    python benchmarks/bench_scale.py --per-set 300 --seed 0 --taleqani 0 --out benchmarks/results/scale.csv

(``--taleqani 0``: every Taleqani field; ``-1``: none.) Close-ups only, held-out half::

    python benchmarks/bench_scale.py --per-set 0 --no-synthetic --closeups 50 --closeup-half heldout

Summary per set: share within ±15 %, share > 25 % off *and not* flagged low-confidence
("confident wrong"), share flagged low-confidence, share refused (error raised).
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path("/work/shared/data")
SETS = {"pbc": ("pbc/*/*.jpg", 0.105), "deepapl": ("deepapl/*/*/*.jpg", 0.21)}
FACTORS = (0.5, 0.7, 1.4, 2.0)
TALEQANI = ("taleqani_all/*/*.jpg", 0.444)
#: Close-up sources: glob, µm/px, whether cell masks exist (``masks/`` next to ``images/``).
CLOSEUP_SOURCES = {"pbc": ("pbc/*/*.jpg", 0.105), "deepapl": ("deepapl/*/*/*.jpg", 0.21),
                   "wbcseg": ("wbc_seg_cellavision/images/*.png", 0.1)}
#: Longer side (px) each close-up is resampled to, cycling over the images.
CLOSEUP_SIDES = (120, 90, 160, 240)
#: Side (µm) of the central square cut from a PBC / DeepAPL crop (no masks there).
CLOSEUP_CENTRE_UM = 22.0
#: Seed of the tuning / held-out split of each source's images (fixed: the halves never change).
CLOSEUP_SPLIT_SEED = 15


def _rescale(image: np.ndarray, factor: float) -> np.ndarray:
    from skimage.transform import rescale

    out = rescale(image, factor, channel_axis=-1, anti_aliasing=factor < 1, preserve_range=True)
    return np.round(out).astype(np.uint8)


def _items(per_set: int, seed: int):
    import imageio.v3 as iio

    rng = random.Random(seed)
    for name, (pattern, mpp) in SETS.items():
        files = sorted(DATA.glob(pattern))
        files = [f for f in files if "platelet" not in f.parts[-2].lower()]
        chosen = rng.sample(files, min(max(per_set, 0), len(files)))
        for i, f in enumerate(chosen):
            image = iio.imread(f)[..., :3]
            yield name, str(f), image, mpp
            if i < per_set // 2:  # half of them also rescaled, by one known factor each
                factor = FACTORS[i % len(FACTORS)]
                yield f"{name}_x{factor}", str(f), _rescale(image, factor), mpp / factor


def _taleqani(count: int, seed: int):
    import imageio.v3 as iio

    pattern, mpp = TALEQANI
    files = sorted(DATA.glob(pattern))
    if 0 < count < len(files):
        files = random.Random(seed).sample(files, count)
    for f in files:
        yield "taleqani", f"{f.parent.name}/{f.name}", iio.imread(f)[..., :3], mpp


def _closeup_half(pattern: str, half: str) -> list[Path]:
    """One half of a source's images (by image, fixed seed): ``tuning`` or ``heldout``."""
    files = [f for f in sorted(DATA.glob(pattern)) if "platelet" not in f.parts[-2].lower()]
    random.Random(CLOSEUP_SPLIT_SEED).shuffle(files)
    return files[: len(files) // 2] if half == "tuning" else files[len(files) // 2 :]


def _glass_painted(image: np.ndarray, cell: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``image`` with everything outside the (2 px dilated) cell mask painted glass (+ mild noise)."""
    from scipy import ndimage as ndi

    from hemascope.segment.stain import estimate_background

    glass = estimate_background(image)
    inside = ndi.binary_dilation(cell, iterations=2)
    paint = glass[None, None, :] + rng.normal(0.0, 1.5, image.shape)
    out = np.where(inside[..., None], image.astype(float), paint)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _closeups(count: int, half: str, seed: int):
    import imageio.v3 as iio

    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    k = 0
    for source, (pattern, mpp) in CLOSEUP_SOURCES.items():
        files = _closeup_half(pattern, half)
        for f in rng.sample(files, min(count, len(files))):
            image = iio.imread(f)[..., :3]
            cuts = []
            if source == "wbcseg":
                mask = iio.imread(f.parent.parent / "masks" / f.name)
                cell = (mask if mask.ndim == 2 else mask[..., 0]) > 0
                rows, cols = np.nonzero(cell)
                margin = max(int(0.08 * max(np.ptp(rows), np.ptp(cols))), 3)
                r0, r1 = max(rows.min() - margin, 0), min(rows.max() + margin + 1, image.shape[0])
                c0, c1 = max(cols.min() - margin, 0), min(cols.max() + margin + 1, image.shape[1])
                clean = _glass_painted(image, cell, noise)
                cuts = [("wbcseg_clean", clean[r0:r1, c0:c1]), ("wbcseg_keep", image[r0:r1, c0:c1])]
            else:
                side = int(round(CLOSEUP_CENTRE_UM / mpp))
                r0, c0 = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
                cuts = [(source, image[r0 : r0 + side, c0 : c0 + side])]
            factor = CLOSEUP_SIDES[k % len(CLOSEUP_SIDES)] / max(cuts[0][1].shape[:2])
            k += 1
            for name, cut in cuts:
                yield f"closeup_{name}", f"{f.relative_to(DATA)}@{factor:.3f}", _rescale(cut, factor), mpp / factor


def _synthetic(seed: int):
    from hemascope.synthetic import DOMAIN_SHIFT_SETTINGS, SmearSpec, render_field

    for mpp in (0.1, 0.25, 0.5):
        size = int(min(1024, 250 / mpp))
        for k, (name, shift) in enumerate(DOMAIN_SHIFT_SETTINGS.items()):
            image, _ = render_field(SmearSpec(size=size, mpp=mpp, seed=seed + k, shift=shift))
            yield f"synthetic_{mpp}", name, image, mpp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-set", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--taleqani", type=int, default=-1, help="Taleqani fields (0: all, -1: none)")
    parser.add_argument("--no-synthetic", action="store_true")
    parser.add_argument("--closeups", type=int, default=0, help="close-ups per source (0: none)")
    parser.add_argument("--closeup-half", choices=("tuning", "heldout"), default="heldout")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scale.csv"))
    args = parser.parse_args()

    from hemascope.errors import InvalidInputError
    from hemascope.segment import estimate_mpp

    rows = []
    start = time.perf_counter()
    import itertools

    items = _items(args.per_set, args.seed)
    if args.taleqani >= 0:
        items = itertools.chain(items, _taleqani(args.taleqani, args.seed))
    if not args.no_synthetic:
        items = itertools.chain(items, _synthetic(args.seed))
    if args.closeups > 0:
        items = itertools.chain(items, _closeups(args.closeups, args.closeup_half, args.seed))
    for name, source, image, truth in items:
        try:
            est = estimate_mpp(image)
            rows.append(dict(set=name, source=source, truth=truth, mpp=est.mpp, error=est.mpp / truth - 1,
                             confidence=est.confidence, low_confidence=est.low_confidence, refused=False,
                             **{f"cue_{k}": v for k, v in est.cues.items()}))
        except InvalidInputError:
            rows.append(dict(set=name, source=source, truth=truth, mpp=np.nan, error=np.nan,
                             confidence=0.0, low_confidence=True, refused=True))
    table = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    err = table["error"].abs()
    table["within15"] = err < 0.15
    table["confident_wrong"] = (err > 0.25) & ~table["low_confidence"]
    summary = table.groupby("set").agg(
        images=("error", "size"), within15=("within15", "mean"), confident_wrong=("confident_wrong", "mean"),
        low_confidence=("low_confidence", "mean"), refused=("refused", "mean"),
        median_error=("error", "median"))
    print(summary.round(3).to_string())
    tal = table[table["set"] == "taleqani"]
    if len(tal):  # per folder: the folders differ in magnification, so their medians differ
        folder = tal["source"].str.split("/").str[0]
        print(tal.groupby(folder).agg(
            images=("error", "size"), within15=("within15", "mean"), confident_wrong=("confident_wrong", "mean"),
            low_confidence=("low_confidence", "mean"), median_mpp=("mpp", "median")).round(3).to_string())
    print(f"all: within15 {table['within15'].mean():.3f}  confident wrong {table['confident_wrong'].mean():.4f}  "
          f"({len(table)} images, {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
