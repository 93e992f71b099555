"""Zero-configuration µm/px of single-cell pictures: red cells, the cell model's scale head, both.

Held-out pictures only (the head was trained on the PBC and DeepAPL *training* splits of
``scripts/prepare_cell_data.py``): PBC test cells, DeepAPL test **patients**, their copies
rescaled ×0.5/0.7/1.4/2, their 120/90/160/240-px close-ups (the central 22 µm) and boxes of
45-100 % of the crop all resized to 256 px (each at its own µm/px, one pixel size), the 100
``wbc_seg_cellavision`` pictures of another lab (0.1 µm/px) and their close-up, rapid-stain,
phone, magenta and defocused copies (``bench_segment_recoloured.py``), Taleqani B-ALL fields
(fields must keep the red-cell estimate) and synthetic fields. Per picture: the red-cell estimate
(:func:`hemascope.segment.estimate_mpp`), the cell's (:func:`hemascope.classify.cell_scale.cell_scale`)
and the one the commands use (:func:`~hemascope.classify.cell_scale.picture_scale`); per set the
share within ±15 % of the truth, confident wrong (> 25 % off, not flagged), and the same after
pooling as one command pools them (:func:`hemascope.segment.batch_scale.pool_estimates`; DeepAPL
one group per patient)::

    python benchmarks/bench_scale_cells.py --work /tmp/hemascope_cells --per-set 150 --out scale_cells.csv
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))

DATA = Path("/work/shared/data")
WBC_SEG = DATA / "wbc_seg_cellavision"
FACTORS = (0.5, 0.7, 1.4, 2.0)
CLOSE_UP_SIDES = (120, 90, 160, 240)
CLOSE_UP_UM = 22.0
WBC_SEG_SHIFTS = ("closeup", "rapid+closeup", "phone", "magenta", "blur")
TALEQANI_MPP = 0.444
RESIZED_BOX = (0.45, 1.0)
RESIZED_PX = 256
SETS = ("pbc", "deepapl", "wbcseg", "taleqani", "synthetic")


def _cells(work: Path, source: str, n: int, seed: int):
    from bench_scale import _rescale

    from hemascope.classify.images import read_cell_image

    table = pd.read_csv(work / f"{source}_test.csv")
    table = table[table["class"] != "platelet"].sample(min(n, len(table)), random_state=seed)
    for i, (path, mpp, group) in enumerate(zip(table.path, table.mpp, table.group, strict=True)):
        image = read_cell_image(path)
        key = group if source == "deepapl" else source
        yield source, key, path, image, mpp
        factor = FACTORS[i % len(FACTORS)]
        yield f"{source}_x", f"{key}_x{factor}", path, _rescale(image, factor), mpp / factor
        side = int(round(CLOSE_UP_UM / mpp))
        r0, c0 = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
        zoom = CLOSE_UP_SIDES[i % len(CLOSE_UP_SIDES)] / side
        cut = _rescale(image[r0 : r0 + side, c0 : c0 + side], zoom)
        yield f"{source}_closeup", f"{key}_closeup{CLOSE_UP_SIDES[i % len(CLOSE_UP_SIDES)]}", path, cut, mpp / zoom
        # a public data set's layout: boxes of 45-100 % of the crop resized to one pixel size,
        # each picture at its own µm/px (one group: one pixel size in one command)
        side = int(min(image.shape[:2]) * np.random.default_rng(seed * 100_003 + i).uniform(*RESIZED_BOX))
        r0, c0 = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
        box = _rescale(image[r0 : r0 + side, c0 : c0 + side], RESIZED_PX / side)
        yield f"{source}_resized", f"{source}_resized", path, box, mpp * side / box.shape[0]


def _wbc_seg(seed: int, shifts=WBC_SEG_SHIFTS):
    import imageio.v3 as iio
    from bench_segment_recoloured import MPP, shifted

    from hemascope.classify.images import read_cell_image

    rng = np.random.default_rng(seed)
    for path in sorted((WBC_SEG / "images").glob("*")):
        image = read_cell_image(path)
        yield "wbcseg", "wbcseg", str(path), image, MPP
        mask = iio.imread(WBC_SEG / "masks" / path.name)
        mask = mask if mask.ndim == 2 else mask[..., 0]
        for shift in shifts:
            copy, _, mpp = shifted(image, mask, shift, rng)
            yield f"wbcseg_{shift}", f"wbcseg_{shift}_{copy.shape[0]}", str(path), copy, mpp


def _taleqani(n: int, seed: int):
    import random

    from hemascope.classify.images import read_cell_image

    files = sorted((DATA / "taleqani_all").glob("*/*.jpg"))
    for path in random.Random(seed).sample(files, min(n, len(files))):
        yield "taleqani", "taleqani", str(path), read_cell_image(path), TALEQANI_MPP


def _synthetic(seed: int):
    from hemascope.synthetic import DOMAIN_SHIFT_SETTINGS, SmearSpec, render_field

    for mpp in (0.1, 0.25, 0.5):
        size = int(min(1024, 250 / mpp))
        for k, (name, shift) in enumerate(DOMAIN_SHIFT_SETTINGS.items()):
            image, _ = render_field(SmearSpec(size=size, mpp=mpp, seed=seed + k, shift=shift))
            yield "synthetic", f"synthetic_{mpp}", name, image, mpp


def _measure(estimate, image):
    start = time.perf_counter()
    try:
        value = estimate(image)
    except Exception as exc:  # noqa: BLE001 - a failure is a result here
        return None, time.perf_counter() - start, type(exc).__name__
    return value, time.perf_counter() - start, ""


def run(pictures) -> pd.DataFrame:
    """One row per picture: each estimator's value, confidence and time."""
    from hemascope.classify.cell_scale import cell_scale, picture_scale
    from hemascope.segment import estimate_mpp

    rows = []
    for name, key, ident, image, truth in pictures:
        row = {"set": name, "group": key, "picture": ident, "truth": truth, "side": min(image.shape[:2])}
        for label, estimate in (("red", estimate_mpp), ("cell", cell_scale), ("picture", picture_scale)):
            value, seconds, error = _measure(estimate, image)
            row[label] = value
            row[f"{label}_s"] = seconds
            row[f"{label}_error"] = error
        rows.append(row)
    table = pd.DataFrame(rows)
    for label in ("red", "cell", "picture"):  # keep the ScaleEstimates (pandas would make them plain floats)
        table[label] = pd.Series([row[label] for row in rows], dtype=object)
    return table


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Per set: within ±15 % and confident wrong, per picture and pooled per group."""
    from hemascope.segment.batch_scale import pool_estimates

    out = []
    for name, part in table.groupby("set", sort=False):
        row = {"set": name, "pictures": len(part)}
        for label in ("red", "cell", "picture"):
            values = list(part[label])
            pooled = pool_estimates(values, list(part["group"]))
            for how, vals in (("", values), ("pooled_", pooled)):
                mpp = np.array([np.nan if v is None else float(v) for v in vals])
                err = np.abs(np.log(mpp / part["truth"].to_numpy()))
                flagged = np.array([v is None or bool(getattr(v, "low_confidence", False)) for v in vals])
                row[f"{how}{label}_within15"] = float(np.mean(err < np.log(1.15)))
                row[f"{how}{label}_confident_wrong"] = float(np.mean((err > np.log(1.25)) & ~flagged))
        row["picture_ms"] = 1000 * float(part["picture_s"].median())
        out.append(row)
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/hemascope_cells"))
    parser.add_argument("--per-set", type=int, default=150)
    parser.add_argument("--taleqani", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS), help="sources to measure")
    parser.add_argument("--wbcseg-shifts", nargs="+", default=list(WBC_SEG_SHIFTS), metavar="SHIFT",
                        help="copies of the wbc_seg pictures (bench_segment_recoloured.py shifts, e.g. field)")
    args = parser.parse_args()
    import itertools

    sources = {
        "pbc": lambda: _cells(args.work, "pbc", args.per_set, args.seed),
        "deepapl": lambda: _cells(args.work, "deepapl", args.per_set, args.seed),
        "wbcseg": lambda: _wbc_seg(args.seed, args.wbcseg_shifts),
        "taleqani": lambda: _taleqani(args.taleqani, args.seed),
        "synthetic": lambda: _synthetic(args.seed),
    }
    pictures = itertools.chain.from_iterable(sources[name]() for name in args.sets)
    table = run(pictures)
    table.drop(columns=["red", "cell", "picture"]).assign(
        red=[None if v is None else float(v) for v in table["red"]],
        cell=[None if v is None else float(v) for v in table["cell"]],
        picture=[None if v is None else float(v) for v in table["picture"]],
    ).to_csv(args.out, index=False)
    summary = summarise(table)
    summary.to_csv(args.out.with_suffix(".summary.csv"), index=False)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(summary.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
