"""``hemascope segment``: find and outline the white cells of slides or field images.

Writes ``cells.csv`` and ``cells.parquet`` (one row per cell, a ``source`` column naming the input)
into ``--out``; for plain field images also ``<stem>_cells.tif`` and ``<stem>_nuclei.tif`` (uint32
instance labels, 0 = background, values = the table's ``id``); for slides with ``--labels`` an
OME-Zarr ``<stem>.labels.ome.zarr`` (image pyramid + chunked ``cells``/``nuclei`` label pyramids).
"""

from __future__ import annotations

import argparse
from pathlib import Path

COMMAND = ("segment",)
HELP = "find white cells in slides or field images (cells.csv/.parquet, label images for fields)"

_FIELD_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``segment`` options to ``parser``."""
    parser.add_argument("inputs", nargs="+", metavar="IMAGE_OR_SLIDE", help="slide files or field images")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--segmenter", default="classical", choices=("classical", "cellpose", "auto"))
    parser.add_argument("--mpp", type=float, default=None, help="µm per level-0 pixel (overrides the file)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (Cellpose only)")
    parser.add_argument("--model", default=None, help="Cellpose model name or local file")
    parser.add_argument("--labels", action="store_true",
                        help="for slides: also write <stem>.labels.ome.zarr with cell/nucleus label pyramids")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _is_field(slide) -> bool:
    return slide.format in ("image", "memory")


def _write_label_pyramid(path: Path, slide, seg) -> None:
    from hemascope.export.labels import lazy_label_image
    from hemascope.io import write_ome_zarr
    from hemascope.results import atomic_path
    from hemascope.segment.regions import CellMask

    masks = seg.masks or []
    ids = seg.cells["id"].to_numpy()
    nuclei = [CellMask(m.origin, m.nucleus, m.nucleus) for m in masks]
    labels = {"cells": lazy_label_image(slide.shape, masks, ids), "nuclei": lazy_label_image(slide.shape, nuclei, ids)}
    with atomic_path(path) as tmp:
        write_ome_zarr(tmp, slide.levels, mpp=seg.mpp, labels=labels)


def run(args: argparse.Namespace) -> int:
    """Segment every input and write the tables (and label images for fields)."""
    import pandas as pd
    import tifffile

    from hemascope.errors import InvalidInputError
    from hemascope.io import open_slide
    from hemascope.progress import tqdm_progress
    from hemascope.results import atomic_path, atomic_write_table
    from hemascope.segment import find_cells

    if args.mpp is not None and args.mpp <= 0:
        raise InvalidInputError(f"--mpp must be positive, got {args.mpp}")
    args.out.mkdir(parents=True, exist_ok=True)
    tables = []
    for path in args.inputs:
        with open_slide(path, mpp=args.mpp) as slide:
            seg = find_cells(
                slide, segmenter=args.segmenter, device=args.device, model=args.model,
                keep_masks=_is_field(slide) or args.labels,
                progress=tqdm_progress(Path(path).name, disable=args.quiet),
            )
            stem = Path(path).name.split(".")[0]
            if _is_field(slide):
                from hemascope.segment import paint_labels

                cells, nuclei = paint_labels(slide.shape, seg.masks or [])
                for suffix, labels in (("_cells.tif", cells), ("_nuclei.tif", nuclei)):
                    with atomic_path(args.out / f"{stem}{suffix}") as tmp:
                        tifffile.imwrite(tmp, labels, compression="zlib")
            elif args.labels:
                _write_label_pyramid(args.out / f"{stem}.labels.ome.zarr", slide, seg)
        table = seg.cells.assign(source=str(path), mpp=seg.mpp, mpp_source=seg.mpp_source)
        tables.append(table)
        print(f"{path}: {len(table)} cells ({seg.segmenter}, {seg.mpp:.4g} µm/px {seg.mpp_source})")
    out = pd.concat(tables, ignore_index=True)
    atomic_write_table(args.out / "cells.csv", out)
    atomic_write_table(args.out / "cells.parquet", out)
    return 0
