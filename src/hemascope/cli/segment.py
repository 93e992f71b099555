"""``hemascope segment``: find and outline the white cells of slides or field images.

Writes ``cells.csv`` and ``cells.parquet`` (one row per cell, a ``source`` column naming the input)
and ``images.csv`` (one row per input: ``status`` done/failed, ``n_cells``, its label files, its
µm/px and how it was found, or the ``error``; an input with no cell keeps its scale there)
into ``--out``; for field images (plain pictures, and single-level files up to
:data:`~hemascope.io.slide.PICTURE_MAX_PIXELS`) also ``<stem>_cells.tif`` and ``<stem>_nuclei.tif`` (uint32
instance labels, 0 = background, values = the table's ``id``); for slides with ``--labels`` an
OME-Zarr ``<stem>.labels.ome.zarr`` (image pyramid + chunked ``cells``/``nuclei`` label pyramids).

Without ``--mpp`` (and without a pixel size in the file) the µm/px of each input is estimated
(:func:`hemascope.classify.cell_scale.picture_scale`: red cells, and in a one-cell picture the
cell itself), once per picture, and the pictures of one pixel size
share the median of their estimates (:mod:`hemascope.segment.batch_scale`); the table records ``mpp``, ``mpp_source``,
``mpp_confidence`` and ``mpp_low_confidence`` per row, and a low-confidence estimate is said on
the console. Inputs that cannot be read or scaled are skipped and listed; exit code 1 then
(2 when none could be segmented), see :mod:`hemascope.cli._contract`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hemascope.cli._options import add_device_argument

COMMAND = ("segment",)
HELP = "find white cells in slides or field images (cells.csv/.parquet, label images for fields)"

def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``segment`` options to ``parser``."""
    parser.add_argument("inputs", nargs="+", metavar="IMAGE_OR_SLIDE", help="slide files, field images or folders of them")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--segmenter", default="classical", choices=("classical", "learned", "cellpose", "auto"),
                        help="classical (default), learned (the bundled network), cellpose or auto")
    parser.add_argument("--mpp", type=float, default=None, help="µm per level-0 pixel (overrides the file)")
    add_device_argument(parser, "Cellpose (the classical segmenter always runs on the CPU)")
    parser.add_argument("--model", default=None, help="Cellpose model name or local file (learned: another weights file)")
    parser.add_argument("--labels", action="store_true",
                        help="for slides: also write <stem>.labels.ome.zarr with cell/nucleus label pyramids")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


#: Columns of ``images.csv``, one row per input.
IMAGE_COLUMNS = ("source", "status", "n_cells", "cell_labels", "nucleus_labels", "mpp", "mpp_source",
                 "mpp_confidence", "mpp_low_confidence", "error")

def _write_label_pyramid(path: Path, slide, seg) -> None:
    from hemascope.export.labels import lazy_label_image
    from hemascope.files import atomic_path
    from hemascope.io import write_ome_zarr

    masks = seg.masks or []
    ids = seg.cells["id"].to_numpy()
    labels = {"cells": lazy_label_image(slide.shape, masks, ids),
              "nuclei": lazy_label_image(slide.shape, masks, ids, part="nucleus")}
    with atomic_path(path) as tmp:
        write_ome_zarr(tmp, slide.levels, mpp=seg.mpp, labels=labels)


def _scale_columns(seg) -> dict:
    """The per-image scale facts recorded in the table (estimated: with its confidence)."""
    scale = seg.scale
    return {
        "mpp": seg.mpp,
        "mpp_source": seg.mpp_source,
        "mpp_confidence": 1.0 if scale is None else round(scale.confidence, 3),
        "mpp_low_confidence": False if scale is None else scale.low_confidence,
    }


def _scale_note(seg) -> str:
    if seg.scale is None:
        return f"{seg.mpp:.4g} µm/px {seg.mpp_source}"
    note = f"{seg.mpp:.4g} µm/px estimated, confidence {seg.scale.confidence:.2f}"
    if "batch_images" in seg.scale.cues:
        note += f", shared by {seg.scale.cues['batch_images']} images {seg.scale.cues['batch_of']}"
    if seg.scale.low_confidence:
        note += f" — LOW CONFIDENCE ({seg.scale.reason}); pass --mpp if you know it"
    return note


def _segment_one(path: str, stem: str, args: argparse.Namespace, scale: float | None = None):
    """Segment one input and write its label images (named after ``stem``).

    Returns its cell table and its ``images.csv`` row.

    ``scale``: its µm/px estimated beforehand (pooled over the batch), used when the file has none.
    """
    import tifffile

    from hemascope.files import atomic_path
    from hemascope.io import open_slide
    from hemascope.progress import tqdm_progress
    from hemascope.segment import find_cells

    written: dict[str, str] = {}
    with open_slide(path, mpp=args.mpp) as slide:
        if scale is not None and not slide.mpp:
            slide.mpp, slide.mpp_source = scale, "estimated"
        seg = find_cells(
            slide, segmenter=args.segmenter, device=args.device, model=args.model,
            keep_masks=slide.is_picture or args.labels,
            progress=tqdm_progress(Path(path).name, disable=args.quiet),
        )
        if slide.is_picture:
            from hemascope.segment import paint_labels

            cells, nuclei = paint_labels(slide.shape, seg.masks or [])
            for key, suffix, labels in (("cell_labels", "_cells.tif", cells), ("nucleus_labels", "_nuclei.tif", nuclei)):
                with atomic_path(args.out / f"{stem}{suffix}") as tmp:
                    tifffile.imwrite(tmp, labels, compression="zlib")
                written[key] = f"{stem}{suffix}"
        elif args.labels:
            _write_label_pyramid(args.out / f"{stem}.labels.ome.zarr", slide, seg)
            written["cell_labels"] = f"{stem}.labels.ome.zarr"
    print(f"{path}: {len(seg.cells)} cells ({seg.segmenter}, {_scale_note(seg)})")
    facts = _scale_columns(seg)
    row = {"source": str(path), "status": "done", "n_cells": len(seg.cells), **written, **facts}
    return seg.cells.assign(source=str(path), **facts), row


def _failure_reason(exc: Exception) -> str:
    """One line for a skipped input: the message of an expected failure (unreadable, unscalable,
    not RGB ...), the type too for anything else (a bug, to be reported)."""
    from hemascope.errors import HemascopeError

    line = str(exc).splitlines()[0] if str(exc) else ""
    if isinstance(exc, (HemascopeError, OSError, ValueError)):
        return line or type(exc).__name__
    return f"{type(exc).__name__}: {line} (unexpected: please report it)"


def run(args: argparse.Namespace) -> int:
    """Segment every input, going on past the ones that fail, and write the tables.

    Returns
    -------
    int
        0 when every input was segmented, 1 when some failed (listed on stderr); when every input
        failed a :class:`~hemascope.errors.DataError` (exit 2) is raised instead.
    """
    import sys

    import pandas as pd

    from hemascope.classify.cell_scale import picture_scale
    from hemascope.cli._contract import EXIT_OK, EXIT_SOME_FAILED, check_output_dir
    from hemascope.errors import DataError
    from hemascope.files import atomic_write_table
    from hemascope.io.limits import check_given_mpp
    from hemascope.io.paths import expand_slide_paths, unique_stems
    from hemascope.segment import SegmentSettings, empty_cell_table
    from hemascope.segment.backends import load_backend
    from hemascope.segment.batch_scale import estimate_field_scales

    if args.mpp is not None:
        check_given_mpp(args.mpp, "--mpp")
    check_output_dir(args.out)
    # a missing or foreign model is the run's error, not each input's
    load_backend(SegmentSettings.from_any(segmenter=args.segmenter, model=args.model, device=args.device))
    args.out.mkdir(parents=True, exist_ok=True)
    inputs = expand_slide_paths(args.inputs, exclude=args.out)
    # pictures without a pixel size: one scale per image size, not one guess per image
    scales = {} if args.mpp is not None else estimate_field_scales(inputs, picture_scale)
    tables, failed, rows = [], [], []
    for path, stem in zip(inputs, unique_stems(inputs), strict=True):
        try:
            table, row = _segment_one(path, stem, args, scales.get(str(path)))
            tables.append(table)
            rows.append(row)
        except Exception as exc:  # noqa: BLE001 - one input's failure, even a bug, must not lose the batch
            failed.append((path, _failure_reason(exc)))
            rows.append({"source": str(path), "status": "failed", "n_cells": 0, "error": failed[-1][1]})
            print(f"skipped {path}: {failed[-1][1]}", file=sys.stderr)
    atomic_write_table(args.out / "images.csv", pd.DataFrame(rows).reindex(columns=list(IMAGE_COLUMNS)))
    if not tables:
        reasons = "; ".join(f"{p}: {r}" for p, r in failed[:3])
        raise DataError(f"none of the {len(failed)} inputs could be segmented ({reasons})")
    columns = [*empty_cell_table().columns, "source", "mpp", "mpp_source", "mpp_confidence", "mpp_low_confidence"]
    out = pd.concat(tables, ignore_index=True).reindex(columns=columns)
    atomic_write_table(args.out / "cells.csv", out)
    atomic_write_table(args.out / "cells.parquet", out)
    if failed:
        print(f"{len(failed)} of {len(inputs)} inputs failed: "
              + ", ".join(p for p, _ in failed), file=sys.stderr)
        return EXIT_SOME_FAILED
    return EXIT_OK
