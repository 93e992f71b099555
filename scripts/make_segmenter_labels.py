"""Pseudo-labels for the learned segmenter: the classical segmenter on centred single-cell crops.

Each training crop of a cell table (``path``, ``class``, ``mpp``; e.g. the PBC and DeepAPL
training splits of ``scripts/prepare_cell_data.py``, never a test split) is segmented with
``find_cells`` at its known µm/px; the white cell nearest the crop's centre becomes the target
(1 cytoplasm, 2 nucleus), every other white cell found is marked 3 (a neighbour: background to
the network, but never the centre of a negative example). Crops without a centred cell are
dropped. Images and label maps are resampled to ``--mpp`` (default 0.2 µm/px) and padded to
``--size`` px with the crop's own glass colour (as the pipeline pads crops beyond a picture)::

    python scripts/make_segmenter_labels.py --table /tmp/hemascope_cells/pbc_train.csv \
        --per-class 250 --out pbc.npz

``--synthetic N`` instead cuts the same windows around every white cell of N synthetic fields
(``hemascope.synthetic``, random red-cell densities, stain hue/intensity and defocus) with their
true masks: red cells that touch or overlap a white cell are background there, which the classical
pseudo-labels do not always get right::

    python scripts/make_segmenter_labels.py --synthetic 60 --out synthetic.npz

Writes ``images`` (n, size, size, 3) uint8, ``labels`` (n, size, size) uint8, ``paths``,
``classes``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from hemascope.segment import find_cells
from hemascope.segment.learned import brightest_colour


def centred_labels(image: np.ndarray, mpp: float, max_offset_um: float = 5.0) -> np.ndarray | None:
    """0 background, 1 cytoplasm and 2 nucleus of the cell nearest the centre, 3 other white cells."""
    seg = find_cells(image, mpp=mpp, num_workers=1)
    if seg.cells.empty or seg.cell_labels is None:
        return None
    centre = np.array(image.shape[:2]) / 2
    d = np.hypot(seg.cells["row"] - centre[0], seg.cells["col"] - centre[1]).to_numpy() * mpp
    k = int(np.argmin(d))
    if d[k] > max_offset_um:
        return None
    label = int(seg.cells["id"].iloc[k])
    out = np.where(seg.cell_labels > 0, 3, 0).astype(np.uint8)
    out[seg.cell_labels == label] = 1
    out[(seg.nucleus_labels == label) & (seg.cell_labels == label)] = 2
    if not (out == 2).any():
        return None
    return out


def resample(image: np.ndarray, labels: np.ndarray, factor: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Scale by ``factor`` (area-averaged image, nearest labels), pad/cut centred to ``size``."""
    rows, cols = (max(1, round(n * factor)) for n in image.shape[:2])
    im = np.asarray(Image.fromarray(image).resize((cols, rows), Image.Resampling.BOX))
    lb = np.asarray(Image.fromarray(labels).resize((cols, rows), Image.Resampling.NEAREST))
    out_im = np.empty((size, size, 3), np.uint8)
    out_im[:] = np.round(brightest_colour(image)).astype(np.uint8)
    out_lb = np.zeros((size, size), np.uint8)
    r0, c0 = (size - rows) // 2, (size - cols) // 2
    sr = slice(max(0, -r0), max(0, -r0) + min(rows, size))
    sc = slice(max(0, -c0), max(0, -c0) + min(cols, size))
    dr = slice(max(0, r0), max(0, r0) + min(rows, size))
    dc = slice(max(0, c0), max(0, c0) + min(cols, size))
    out_im[dr, dc] = im[sr, sc]
    out_lb[dr, dc] = lb[sr, sc]
    return out_im, out_lb


def synthetic_windows(n_fields: int, mpp: float, size: int, seed: int):
    """Windows around every white cell of ``n_fields`` synthetic fields, with their true labels."""
    from hemascope.synthetic.field import render_field
    from hemascope.synthetic.spec import DomainShift, SmearSpec

    rng = np.random.default_rng(seed)
    for f in range(n_fields):
        shift = DomainShift(hue_deg=float(rng.uniform(-20, 20)), intensity=float(rng.uniform(0.7, 1.3)),
                            blur_um=float(rng.choice([0.0, 0.0, 0.4, 0.8])))
        spec = SmearSpec(size=(1024, 1024), mpp=mpp, seed=seed * 1000 + f, kind=str(rng.choice(["blood", "marrow"])),
                         wbc_density=2000.0, rbc_density=float(rng.uniform(0.6, 1.6)), shift=shift)
        image, truth = render_field(spec)
        white = truth.cells[truth.cells["class"] != "platelet"]
        others = np.isin(truth.cell_labels, white["id"].to_numpy())
        for cell_id, cls, row, col in zip(white["id"], white["class"], white["row"], white["col"], strict=True):
            lab = np.where(others, 3, 0).astype(np.uint8)
            lab[truth.cell_labels == cell_id] = 1
            lab[(truth.nucleus_labels == cell_id) & (truth.cell_labels == cell_id)] = 2
            r0, c0 = int(round(row)) - size // 2, int(round(col)) - size // 2
            if r0 < 0 or c0 < 0 or r0 + size > image.shape[0] or c0 + size > image.shape[1]:
                continue
            window = lab[r0:r0 + size, c0:c0 + size]
            if not (window == 2).any():
                continue
            yield image[r0:r0 + size, c0:c0 + size], window, f"synthetic/{spec.seed}/{cell_id}", cls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", type=Path)
    ap.add_argument("--synthetic", type=int, default=0, help="synthetic fields instead of a table")
    ap.add_argument("--per-class", type=int, default=250)
    ap.add_argument("--mpp", type=float, default=0.2)
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if args.synthetic:
        found = list(synthetic_windows(args.synthetic, args.mpp, args.size, args.seed))
        np.savez_compressed(args.out, images=np.stack([w[0] for w in found]), labels=np.stack([w[1] for w in found]),
                            paths=np.array([w[2] for w in found]), classes=np.array([w[3] for w in found]))
        print(f"{len(found)} synthetic cells -> {args.out}")
        return
    table = pd.read_csv(args.table)
    table = table.sample(frac=1.0, random_state=args.seed).groupby("class").head(args.per_class)
    images, labels, paths, classes = [], [], [], []
    for i, (path, cls, mpp) in enumerate(zip(table["path"], table["class"], table["mpp"], strict=True)):
        image = np.asarray(Image.open(path).convert("RGB"))
        lab = centred_labels(image, float(mpp))
        if lab is None:
            continue
        im, lb = resample(image, lab, float(mpp) / args.mpp, args.size)
        images.append(im)
        labels.append(lb)
        paths.append(path)
        classes.append(cls)
        if i % 200 == 0:
            print(f"{i}/{len(table)} kept {len(images)}", flush=True)
    np.savez_compressed(args.out, images=np.stack(images), labels=np.stack(labels),
                        paths=np.array(paths), classes=np.array(classes))
    print(f"kept {len(images)} of {len(table)} -> {args.out}")


if __name__ == "__main__":
    main()
