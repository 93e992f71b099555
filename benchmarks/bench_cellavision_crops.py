"""White-cell detection on CellaVision crops (PBC, DeepAPL): each holds one white cell at its centre.

For a seeded sample of crops per set (platelet classes left out: they hold no white cell) this runs
``find_cells`` at the set's known µm/px (``--scale given``) or with the scale estimated per crop
(``--scale estimated``), and counts

* **found**: a detected cell covers the crop centre, or its centroid lies within 4 µm of it;
* **extra**: the crop has another detection whose centroid is at least 2 µm inside the crop
  (a second white cell, or a false detection: red-cell clump, platelets, debris);
  **extra_not_at_border**: such a detection whose outline does not touch the image border (the
  others are neighbours cut by the crop's edge, whose visible part is found).

``--scale-error F`` runs at the set's µm/px times ``F`` (a scale given only approximately).
Optionally recolours each crop first (``--recolour yellow|pale|grey``) to test stain adaptivity.

Usage::

    python benchmarks/bench_cellavision_crops.py --per-set 1500 --seed 0 --out benchmarks/results/cellavision_crops.csv
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
NOT_WHITE_CELLS = {"platelet", "giant_platelet", "platelet_aggregate"}


def recolour(image: np.ndarray, how: str | None) -> np.ndarray:
    """A copy with another glass colour or stain strength (optical-density space).

    ``yellow``: warm white balance (blue ×0.80, green ×0.93); ``pale``: stain at 55 % density;
    ``grey``: background and stain desaturated toward grey; ``dark``: stain at 150 % density;
    ``magenta``: every OD vector rotated 25° about the grey axis (a Wright/Leishman-like hue:
    purple nuclei turn magenta, absorbing less red than green, and pink red cells turn lilac).
    """
    if how is None:
        return image
    rgb = image.astype(np.float64) + 1.0
    glass = np.percentile(rgb.reshape(-1, 3), 99, axis=0)
    od = -np.log(np.clip(rgb / glass, 1e-3, 1.0))
    if how == "pale":
        od *= 0.55
    elif how == "magenta":
        od = _rotate_hue(od, np.radians(25.0))
    elif how == "dark":
        od *= 1.5
    out = glass * np.exp(-od)
    if how == "yellow":
        out *= np.array([1.0, 0.93, 0.80])
    elif how == "grey":
        grey = out.mean(axis=-1, keepdims=True)
        out = 0.5 * out + 0.5 * grey
        out *= 0.85
    return np.clip(np.round(out - 1.0), 0, 255).astype(np.uint8)


def _rotate_hue(od: np.ndarray, angle: float) -> np.ndarray:
    """Rotate OD vectors by ``angle`` about the grey axis (Rodrigues), keeping them non-negative."""
    k = np.full(3, 1.0 / np.sqrt(3.0))
    along = (od @ k)[..., None] * k
    rotated = od * np.cos(angle) + np.cross(k, od) * np.sin(angle) + along * (1.0 - np.cos(angle))
    return np.maximum(rotated, 0.0)


def sample(per_set: int, seed: int, held_out: bool = False) -> list[tuple[str, Path, float]]:
    """A seeded sample of ``(set, path, mpp)`` per set (white-cell classes only); ``held_out``: only
    the crops of the test splits (``benchmarks/splits/<set>_test.csv``), for models trained on the
    training splits (the learned segmenter)."""
    rng = random.Random(seed)
    out = []
    for name, (pattern, mpp) in SETS.items():
        files = [f for f in sorted(DATA.glob(pattern)) if f.parent.name.lower() not in NOT_WHITE_CELLS]
        if held_out:
            test = pd.read_csv(Path(__file__).parent / "splits" / f"{name}_test.csv")["path"]
            keep = {str(DATA / name / p) for p in test}
            files = [f for f in files if str(f) in keep]
        out += [(name, f, mpp) for f in rng.sample(files, min(per_set, len(files)))]
    return out


def score(cells: pd.DataFrame, labels: np.ndarray, shape: tuple[int, int], mpp: float) -> tuple[bool, int, int]:
    """Whether the centred cell was found, the number of other detections, and how many of those
    are cut by the image border (their outline touches it: a neighbour's visible part)."""
    centre = (shape[0] // 2, shape[1] // 2)
    if cells.empty:
        return False, 0, 0
    dist = np.hypot(cells["row"] - centre[0], cells["col"] - centre[1]) * mpp
    hit = int(labels[centre])
    if hit:
        centred = cells["id"] == hit
    else:
        centred = dist == dist.min()
        if dist.min() > 4.0:
            centred &= False
    margin = 2.0 / mpp
    inside = (cells["row"] > margin) & (cells["col"] > margin) & (cells["row"] < shape[0] - margin) & (
        cells["col"] < shape[1] - margin)
    at_border = (cells["bbox_min_row"] <= 0) | (cells["bbox_min_col"] <= 0) | (
        cells["bbox_max_row"] >= shape[0]) | (cells["bbox_max_col"] >= shape[1])
    others = inside & ~centred
    return bool(centred.any()), int(others.sum()), int((others & at_border).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-set", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--segmenter", default="classical", help="classical, learned, cellpose or auto")
    parser.add_argument("--held-out", action="store_true", help="only crops of the test splits")
    parser.add_argument("--scale", choices=("given", "estimated"), default="given")
    parser.add_argument("--scale-error", type=float, default=1.0, metavar="F",
                        help="segment at the set's µm/px times F (--scale given only)")
    parser.add_argument("--recolour", choices=("yellow", "pale", "grey", "dark", "magenta"), default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import imageio.v3 as iio

    from hemascope.errors import InvalidInputError
    from hemascope.segment import find_cells

    rows = []
    start = time.perf_counter()
    for name, path, mpp in sample(args.per_set, args.seed, args.held_out):
        image = recolour(iio.imread(path)[..., :3], args.recolour)
        try:
            seg = find_cells(image, mpp=mpp * args.scale_error if args.scale == "given" else None, num_workers=1,
                              segmenter=args.segmenter)
        except InvalidInputError as exc:
            rows.append(dict(set=name, path=str(path), cls=path.parent.name, found=False, extra=0,
                             extra_at_border=0, mpp_used=np.nan, error=str(exc)[:80]))
            continue
        scored_at = mpp if args.scale == "given" else seg.mpp  # distances in true µm when the scale is known
        found, extra, at_border = score(seg.cells, seg.cell_labels, image.shape[:2], scored_at)
        rows.append(dict(set=name, path=str(path), cls=path.parent.name, found=found, extra=extra,
                         extra_at_border=at_border, mpp_used=seg.mpp, error=""))
    table = pd.DataFrame(rows)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, index=False)
    table["has_extra"] = table["extra"] > 0
    table["has_whole_extra"] = table["extra"] > table["extra_at_border"]
    summary = table.groupby("set").agg(crops=("found", "size"), found=("found", "mean"),
                                       extra=("has_extra", "mean"), extra_not_at_border=("has_whole_extra", "mean"),
                                       failed=("error", lambda e: (e != "").mean()))
    print(summary.round(4).to_string())
    by_class = table.groupby(["set", "cls"]).agg(crops=("found", "size"), found=("found", "mean"),
                                                 extra=("has_extra", "mean"))
    print(by_class.round(3).to_string())
    print(f"{len(table)} crops, scale {args.scale} × {args.scale_error:g}, recolour {args.recolour}, "
          f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
