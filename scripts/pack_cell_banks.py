"""Pack the split cell images into compact crop banks for training on another machine.

Usage::

    python scripts/pack_cell_banks.py --work /tmp/hemascope_cells --out /work/main/.gpu/data

Every image of the split CSVs (``prepare_cell_data.py``) is resampled once to the model scale
(0.5 µm/px) as a ``--size`` px crop, padded with the image's own background colour (as inference
pads), and tiled into JPEG mosaics of 32 × 32 crops; ``cells.csv`` lists, per crop, its mosaic
position, split, domain, class, source class and group (patient / field / image). The banks hold
no diagnosis. Taleqani blast cells are subsampled (``--taleqani-per-split``).
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from hemascope.classify.crops import cell_image_to_crop
from hemascope.classify.images import read_cell_image
from hemascope.models.card import ModelCard

GRID = 32


def _crop(args: tuple[str, float, int, float]) -> np.ndarray:
    path, mpp, size, model_mpp = args
    card = ModelCard(
        name="pack",
        version="0",
        classes=["a", "b"],
        input_size=size,
        mpp=model_mpp,
        preprocess={"pad": "background"},
    )
    return cell_image_to_crop(read_cell_image(path), mpp, card)


def load_tables(work: Path, taleqani_per_split: dict[str, int], seed: int) -> pd.DataFrame:
    """All split tables (absolute paths) with a ``split`` column; Taleqani: blast cells, subsampled."""
    parts = []
    for source in ("pbc", "deepapl", "taleqani"):
        for split in ("train", "val", "test"):
            t = pd.read_csv(work / f"{source}_{split}.csv")
            if source == "taleqani":
                t = t[(t["class"] == "blast") & t["path"].map(lambda p: Path(p).is_file())]
                n = min(len(t), taleqani_per_split[split])
                t = t.sample(n=n, random_state=seed) if n else t
            if "source_class" not in t.columns:
                t = t.assign(source_class=t["class"])
            parts.append(t.assign(split=split, domain=source))
    cols = ["path", "class", "source_class", "domain", "mpp", "group", "split"]
    return pd.concat(parts, ignore_index=True)[cols]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/hemascope_cells"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--model-mpp", type=float, default=0.5)
    ap.add_argument("--quality", type=int, default=92)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--taleqani-per-split", default="3000,600,900")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    per = dict(
        zip(
            ("train", "val", "test"),
            (int(v) for v in args.taleqani_per_split.split(",")),
            strict=True,
        )
    )
    table = load_tables(args.work, per, args.seed)
    print(table.groupby(["domain", "split"]).size().to_dict())
    jobs = [
        (p, float(m), args.size, args.model_mpp)
        for p, m in zip(table["path"], table["mpp"], strict=True)
    ]
    with ProcessPoolExecutor(args.workers) as pool:
        crops = list(pool.map(_crop, jobs, chunksize=64))
    args.out.mkdir(parents=True, exist_ok=True)
    per_mosaic = GRID * GRID
    s = args.size
    mosaic_ids, slots = [], []
    for m, start in enumerate(range(0, len(crops), per_mosaic)):
        chunk = crops[start : start + per_mosaic]
        canvas = np.full((GRID * s, GRID * s, 3), 255, np.uint8)
        for j, crop in enumerate(chunk):
            r, c = divmod(j, GRID)
            canvas[r * s : (r + 1) * s, c * s : (c + 1) * s] = crop
            mosaic_ids.append(m)
            slots.append(j)
        Image.fromarray(canvas).save(args.out / f"mosaic_{m:03d}.jpg", quality=args.quality)
    table = table.assign(mosaic=mosaic_ids, slot=slots, size=s)
    table["path"] = [Path(p).name for p in table["path"]]
    table.to_csv(args.out / "cells.csv", index=False)
    total = sum(f.stat().st_size for f in args.out.glob("mosaic_*.jpg"))
    print(
        f"{len(table)} crops in {len(list(args.out.glob('mosaic_*.jpg')))} mosaics, {total / 2**20:.1f} MiB"
    )


if __name__ == "__main__":
    main()
