"""``hemascope evaluate segmentation``: Dice/IoU and detection precision/recall against mask folders.

Masks use 0 background, 128 cytoplasm, 255 nucleus (the CellaVision layout); every annotated cell
is compared with the predicted cell overlapping it most. Prints the means and writes a per-cell
CSV with ``--out``. Without ``--mpp`` the images are scaled as ``hemascope segment`` scales them
(:func:`hemascope.classify.cell_scale.picture_scale`, pooled over the images of one pixel size).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hemascope.cli._options import add_device_argument

COMMAND = ("evaluate", "segmentation")
HELP = "score white-cell segmentation against mask folders (Dice, IoU, detection P/R at IoU 0.5)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``evaluate segmentation`` options to ``parser``."""
    parser.add_argument("images", type=Path, help="folder of RGB images")
    parser.add_argument("masks", type=Path, help="folder of masks with the same file stems")
    parser.add_argument("--mpp", type=float, default=None, help="µm/px of the images (estimated if omitted)")
    parser.add_argument("--segmenter", default="classical", choices=("classical", "learned", "cellpose", "auto"),
                        help="classical (default), learned (the bundled network), cellpose or auto")
    add_device_argument(parser, "Cellpose")
    parser.add_argument("--model", default=None, help="Cellpose model name or local file (learned: another weights file)")
    parser.add_argument("--split", default=None, choices=("odd", "even"),
                        help="only images with odd/even numeric stems (tuning vs held-out halves)")
    parser.add_argument("--out", type=Path, default=None, help="write per-cell scores to this CSV")


def run(args: argparse.Namespace) -> int:
    """Segment each image, score it and print the summary."""
    from hemascope.classify.cell_scale import picture_scale
    from hemascope.cli._contract import check_output_table
    from hemascope.files import atomic_write_table
    from hemascope.segment import find_cells
    from hemascope.segment.batch_scale import estimate_field_scales
    from hemascope.segment.evaluation import evaluate_mask_folder, paired_files

    if args.out is not None:
        check_output_table(args.out)
    images = [p for p, _ in paired_files(args.images, args.masks)]
    names = None
    if args.split:
        parity = 1 if args.split == "odd" else 0
        names = {p.stem for p in images if p.stem.isdigit() and int(p.stem) % 2 == parity}
    scales = {} if args.mpp is not None else estimate_field_scales(
        [p for p in images if names is None or p.stem in names], picture_scale)

    def segment(image, path):
        seg = find_cells(image, mpp=args.mpp or scales.get(str(path)), segmenter=args.segmenter,
                         device=args.device, model=args.model, num_workers=1)
        return seg.cell_labels, seg.nucleus_labels
    per_cell, detection = evaluate_mask_folder(args.images, args.masks, segment, names)
    means = per_cell[["cell_dice", "cell_iou", "nucleus_dice", "nucleus_iou"]].mean()
    print(f"images {per_cell['image'].nunique()}  annotated cells {len(per_cell)}")
    print(f"whole cell  Dice {means['cell_dice']:.4f}  IoU {means['cell_iou']:.4f}")
    print(f"nucleus     Dice {means['nucleus_dice']:.4f}  IoU {means['nucleus_iou']:.4f}")
    print(f"detection (IoU>=0.5) recall {detection.recall:.4f}  precision {detection.precision:.4f} "
          "(precision counts unannotated cells as false positives)")
    if args.out is not None:
        atomic_write_table(args.out, per_cell)
    return 0
