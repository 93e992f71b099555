"""CellaVision Dice on shifted copies of ``wbc_seg_cellavision``: stain, camera, optics and scale.

Each image (and, where its geometry changes, its mask) is transformed, then segmented at the
copy's µm/px (``--scale given``) or without it; whole-cell and nucleus Dice and detection recall
(mask IoU >= 0.5) against the annotated cell. Evaluation only. Without the µm/px:

* ``--scale estimated``: :func:`hemascope.segment.find_cells`'s own estimate (red cells), per
  picture — the Python API called with ``mpp=None``;
* ``--scale picture``: :func:`hemascope.classify.cell_scale.picture_scale` per picture (red
  cells and the cell) — ``hemascope segment PICTURE`` on one picture;
* ``--scale command``: the same, pooled over the run's copies as ``hemascope segment FOLDER``
  pools a folder's pictures of one size (:func:`hemascope.classify.images.estimate_picture_scales`:
  under 200 pictures of one size it estimates each, as ``hemascope segment`` does).

Shifts (combine with ``+``, applied left to right, e.g. ``rapid+closeup``):

* ``none``; colour copies of ``bench_cellavision_crops.recolour``: ``yellow`` white balance,
  ``pale`` (×0.55 OD), ``grey`` (desaturated), ``dark`` (×1.5 OD), ``magenta`` (hue +25°);
* ``closeup``: the 30-µm crop resampled to 120 px (≈0.25 µm/px, antialiased), mask by nearest
  neighbour — the 120-px close-ups of other labs;
* ``field``: the crop grown into a field by mirroring its cell-free border outwards (strips of
  15 % of its side), two sides chosen per image, so that the cell sits 10 µm off the field's
  centre in each axis (≈ 14 µm away) — a one-cell field with the cell anywhere;
* ``tight``: the crop cut to the annotated cell's bounding box plus 1 µm (a tight box, as
  object detectors and some cameras' software save cells; the cell touches or nearly touches
  every side);
* ``jpeg60``: JPEG at quality 60;
* ``blur``: defocus, a Gaussian of σ = 0.8 µm;
* ``phone``: phone-camera colour: gamma 0.8, saturation ×1.35, warm cast (G ×0.94, B ×0.78) and
  sensor noise σ = 3 (seeded per image);
* ``rapid``: a rapid (Diff-Quik-like) stain on a yellow background: stain ×1.3 OD, hue +15°
  toward magenta, glass yellow (G ×0.92, B ×0.70).
* ``bluish``: the Taleqani fields' stain, where red cells are blue-grey like a blast's cytoplasm:
  a linear map of optical densities taking this set's median nucleus and red-cell OD (measured on
  its masks) to the Taleqani fields' (nuclei and red cells of 40 seeded fields, segmented at
  0.444 µm/px), on their near-white glass;
* ``lowres``: resampled to the Taleqani fields' 0.444 µm/px (antialiased; mask nearest).
* ``mosaic``: the picture mirrored on every side into a 3 × 3 field (90 µm at 0.1 µm/px: wider
  than a close-up, so the field path runs), nine mirror copies of the cell, each scored.
* ``pair``: two white cells touching: the picture beside the next one of the set (by number,
  the last beside the first), the cell-free columns between their cells cut away until the two
  annotated outlines lie :data:`PAIR_GAP_PX` apart (packed leukaemic fields; each cell scored).
  ``pair+mosaic`` makes it a field.

``--scale-error F [F ...]`` segments each copy at its true µm/px times ``F`` (a scale given only
approximately, or estimated a little off): one table row per shift and factor.

Usage::

    python benchmarks/bench_segment_recoloured.py --shift none magenta closeup jpeg60 blur phone rapid+closeup
    python benchmarks/bench_segment_recoloured.py --shift none rapid+closeup --scale-error 0.8 1.0 1.25 --split odd
"""

from __future__ import annotations

import argparse
import functools
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from bench_cellavision_crops import _rotate_hue, recolour  # noqa: E402

DATA = Path("/work/shared/data/wbc_seg_cellavision")
MPP = 0.1
COLOURS = ("yellow", "pale", "grey", "dark", "magenta")
Copy = tuple[np.ndarray, np.ndarray, float]  # image, mask, µm/px


def close_up(image: np.ndarray, mask: np.ndarray, mpp: float, width_px: int = 120) -> Copy:
    """Resample to ``width_px`` wide (antialiased image, nearest-neighbour mask)."""
    from PIL import Image

    factor = width_px / image.shape[1]
    size = (width_px, int(round(image.shape[0] * factor)))
    small = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))
    small_mask = np.asarray(Image.fromarray(mask).resize(size, Image.Resampling.NEAREST))
    return small, small_mask, mpp / factor


def off_centre_field(
    image: np.ndarray, mask: np.ndarray, mpp: float, rng: np.random.Generator, offset_um: float = 10.0
) -> Copy:
    """Grow a centred crop into a field with its cell ``offset_um`` off the centre in each axis.

    The border is mirrored outwards in strips of at most 15 % of the side and never wider than
    the crop's cell-free margin on that side, so only that margin (red cells, glass) is repeated,
    never a piece of the annotated cell; the sides grown are drawn from ``rng``.
    """
    grow = int(round(2 * offset_um / mpp))
    before = rng.integers(0, 2, size=2)
    rows_in, cols_in = np.nonzero(mask)
    strips = []
    for axis, where in ((0, rows_in), (1, cols_in)):
        margin = (where.min() if before[axis] else mask.shape[axis] - 1 - where.max()) if where.size else mask.shape[axis]
        strips.append(int(max(1, min(0.15 * min(image.shape[:2]), margin - 1))))  # reflect skips the edge row
    for axis in (0, 1):
        todo = grow
        while todo > 0:
            step = min(strips[axis], todo)
            pad = [(0, 0)] * 3
            pad[axis] = (step, 0) if before[axis] else (0, step)
            image = np.pad(image, pad, mode="reflect")
            mask = np.pad(mask, pad[:2], mode="reflect")
            todo -= step
    return image, mask, mpp


def tight_box(image: np.ndarray, mask: np.ndarray, mpp: float, margin_um: float = 1.0) -> Copy:
    """Cut the picture to the box of ``mask > 0`` plus ``margin_um`` on each side."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        raise SystemExit("the shift 'tight' needs the cell's mask")
    m = int(round(margin_um / mpp))
    r0, r1 = max(rows.min() - m, 0), min(rows.max() + 1 + m, mask.shape[0])
    c0, c1 = max(cols.min() - m, 0), min(cols.max() + 1 + m, mask.shape[1])
    return image[r0:r1, c0:c1], mask[r0:r1, c0:c1], mpp


def jpeg(image: np.ndarray, quality: int = 60) -> np.ndarray:
    """Encode and decode as JPEG."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def defocus(image: np.ndarray, mpp: float, sigma_um: float = 0.8) -> np.ndarray:
    """Gaussian defocus of ``sigma_um``."""
    from scipy import ndimage as ndi

    blurred = ndi.gaussian_filter(image.astype(np.float32), sigma=(sigma_um / mpp, sigma_um / mpp, 0))
    return np.clip(np.round(blurred), 0, 255).astype(np.uint8)


def phone(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Phone-camera rendering: gamma, more saturation, a warm cast and sensor noise."""
    x = (image.astype(np.float64) / 255.0) ** 0.8
    grey = x.mean(axis=-1, keepdims=True)
    x = grey + 1.35 * (x - grey)
    x *= np.array([1.0, 0.94, 0.78])
    x = x * 255.0 + rng.normal(0.0, 3.0, x.shape)
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def rapid(image: np.ndarray) -> np.ndarray:
    """A rapid stain on a yellow background: denser, hue +15°, yellow glass."""
    rgb = image.astype(np.float64) + 1.0
    glass = np.percentile(rgb.reshape(-1, 3), 99, axis=0)
    od = -np.log(np.clip(rgb / glass, 1e-3, 1.0))
    od = _rotate_hue(1.3 * od, np.radians(15.0))
    out = glass * np.exp(-od) * np.array([1.0, 0.92, 0.70])
    return np.clip(np.round(out - 1.0), 0, 255).astype(np.uint8)


_TALEQANI_GLASS = np.array([250.5, 255.0, 254.0])


@functools.cache
def _bluish_map() -> np.ndarray:
    """The OD map from this set's stain to the Taleqani fields' (:data:`hemascope.classify.stain.STAINS`)."""
    import torch

    from hemascope.classify.stain import reference, stain_map

    return stain_map(reference("cellavision", torch.float64), reference("taleqani", torch.float64)).numpy()


def bluish(image: np.ndarray) -> np.ndarray:
    """The Taleqani fields' stain and glass (blue-grey red cells)."""
    rgb = image.astype(np.float64) + 1.0
    glass = np.percentile(rgb.reshape(-1, 3), 99, axis=0)
    od = -np.log(np.clip(rgb / glass, 1e-3, 1.0))
    od = np.maximum(od @ _bluish_map().T, 0.0)
    return np.clip(np.round(_TALEQANI_GLASS * np.exp(-od) - 1.0), 0, 255).astype(np.uint8)


#: Columns between the two annotated outlines of a ``pair`` (the cells touch in the picture; the
#: annotation keeps them two).
PAIR_GAP_PX = 2


def touching_pair(image: np.ndarray, mask: np.ndarray, other: np.ndarray, other_mask: np.ndarray) -> Copy:
    """``image`` beside ``other`` with the columns between their annotated cells cut away."""
    end = int(np.nonzero((mask > 0).any(axis=0))[0].max()) + 1
    start = int(np.nonzero((other_mask > 0).any(axis=0))[0].min())
    keep = end + PAIR_GAP_PX // 2
    rows = min(image.shape[0], other.shape[0])
    joined = np.concatenate([image[:rows, :keep], other[:rows, start - (PAIR_GAP_PX - PAIR_GAP_PX // 2):]], axis=1)
    joined_mask = np.concatenate([mask[:rows, :keep], other_mask[:rows, start - (PAIR_GAP_PX - PAIR_GAP_PX // 2):]],
                                 axis=1)
    return joined, joined_mask, MPP


def shifted(image: np.ndarray, mask: np.ndarray, shift: str, rng: np.random.Generator, mpp: float = MPP,
            partner: tuple[np.ndarray, np.ndarray] | None = None) -> Copy:
    """Apply the ``+``-separated shifts of ``shift`` in order to a picture at ``mpp`` (``partner``:
    the picture and mask a ``pair`` puts beside it)."""
    for step in shift.split("+"):
        if step == "none":
            continue
        if step == "pair":
            if partner is None:
                raise SystemExit("the shift 'pair' needs a second picture")
            image, mask, mpp = touching_pair(image, mask, *partner)
            continue
        if step in COLOURS:
            image = recolour(image, step)
        elif step == "closeup":
            image, mask, mpp = close_up(image, mask, mpp)
        elif step == "field":
            image, mask, mpp = off_centre_field(image, mask, mpp, rng)
        elif step == "tight":
            image, mask, mpp = tight_box(image, mask, mpp)
        elif step == "jpeg60":
            image = jpeg(image, 60)
        elif step == "blur":
            image = defocus(image, mpp)
        elif step == "phone":
            image = phone(image, rng)
        elif step == "rapid":
            image = rapid(image)
        elif step == "bluish":
            image = bluish(image)
        elif step == "mosaic":
            image = np.pad(image, ((image.shape[0],) * 2, (image.shape[1],) * 2, (0, 0)), mode="symmetric")
            mask = np.pad(mask, ((mask.shape[0],) * 2, (mask.shape[1],) * 2), mode="symmetric")
        elif step == "lowres":
            image, mask, mpp = close_up(image, mask, mpp, int(round(image.shape[1] * mpp / 0.444)))
        else:
            raise SystemExit(f"unknown shift {step!r}")
    return image, mask, mpp


def evaluate(shift: str, names: list[str], segment: Callable, seed: int, factor: float = 1.0,
             scales: Callable | None = None) -> pd.DataFrame:
    """One row per annotated cell of the images ``names`` under ``shift``, segmented at the copy's
    µm/px times ``factor``, or at ``scales(copies)`` (one µm/px per copy) when given."""
    from PIL import Image

    from hemascope.segment.evaluation import paired_files, score_image

    def read(pair: tuple[Path, Path]) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(Image.open(pair[0]).convert("RGB")), np.asarray(Image.open(pair[1]).convert("L"))

    copies = []
    files = paired_files(DATA / "images", DATA / "masks")
    for index, (image_path, mask_path) in enumerate(files):
        if image_path.stem not in names:
            continue
        rng = np.random.default_rng([seed, index])
        image, mask = read((image_path, mask_path))
        partner = read(files[(index + 1) % len(files)]) if "pair" in shift.split("+") else None
        copies.append((image_path.stem, *shifted(image, mask, shift, rng, partner=partner)))
    given = [mpp * factor for *_, mpp in copies] if scales is None else scales([c[1] for c in copies])
    rows = []
    for (stem, image, mask, mpp), at in zip(copies, given, strict=True):
        cells, nuclei, used = segment(image, at)
        cell_rows, detection = score_image(cells, nuclei, mask)
        for r in cell_rows:
            rows.append({"shift": shift, "factor": factor, "image": stem, "mpp": mpp, "mpp_used": used,
                         "found": r["cell_iou"] >= 0.5, "extra": detection.false_positives, **r})
    return pd.DataFrame(rows)


def command_scales(images: list[np.ndarray], pooled: bool) -> list[float | None]:
    """µm/px of each picture as the commands estimate it without ``--mpp``
    (:func:`hemascope.classify.images.estimate_picture_scales`): all in one run (``pooled``: a
    folder, pooled over pictures of one size) or one picture per run; ``None`` where it fails."""
    from hemascope.classify.images import estimate_picture_scales
    from hemascope.errors import HemascopeError

    found = estimate_picture_scales(images) if pooled else [estimate_picture_scales([i])[0] for i in images]
    return [None if isinstance(e, HemascopeError) else float(e) for e in found]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shift", "--recolour", nargs="+", dest="shift",
                        default=["none", "yellow", "pale", "grey", "dark", "magenta"])
    parser.add_argument("--scale", choices=("given", "estimated", "picture", "command"), default="given")
    parser.add_argument("--split", choices=("all", "odd", "even"), default="all",
                        help="images by number: odd (tuning) or even (held out) half")
    parser.add_argument("--scale-error", type=float, nargs="+", default=[1.0], metavar="F",
                        help="segment at the true µm/px times F (--scale given only)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sensor noise")
    parser.add_argument("--segmenter", default="classical", help="classical, learned, cellpose or auto")
    parser.add_argument("--out", type=Path, default=None, help="per-cell CSV")
    args = parser.parse_args()
    if args.scale != "given" and args.scale_error != [1.0]:
        parser.error("--scale-error needs --scale given")

    from hemascope.segment import find_cells

    def segment(image: np.ndarray, mpp: float):
        seg = find_cells(image, mpp=None if args.scale == "estimated" else mpp, num_workers=1, segmenter=args.segmenter)
        return seg.cell_labels, seg.nucleus_labels, seg.mpp

    names = sorted(p.stem for p in (DATA / "images").iterdir())
    if args.split != "all":
        names = [n for n in names if (int(n) % 2 == 1) == (args.split == "odd")]
    print("| shift | scale × | split | scale | cells | whole-cell Dice | nucleus Dice | recall (IoU ≥ 0.5) "
          "| images with an extra detection | µm/px given / median used |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    tables = []
    start = time.perf_counter()
    scales = (functools.partial(command_scales, pooled=args.scale == "command")
              if args.scale in ("picture", "command") else None)
    for shift, factor in [(s, f) for s in args.shift for f in args.scale_error]:
        t = evaluate(shift, names, segment, args.seed, factor, scales)
        tables.append(t)
        per_image = t.groupby("image")[["found", "extra"]].first()
        print(f"| {shift} | {factor:g} | {args.split} | {args.scale} | {len(t)} | {t['cell_dice'].mean():.3f} | "
              f"{t['nucleus_dice'].mean():.3f} | {t['found'].mean():.3f} | {(per_image['extra'] > 0).mean():.3f} | "
              f"{t['mpp'].iloc[0]:.3f} / {t['mpp_used'].median():.3f} |", flush=True)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        pd.concat(tables).to_csv(args.out, index=False)
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
