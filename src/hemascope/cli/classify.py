"""``hemascope classify``: classify single-cell images into a CSV (one row per image).

Bad files (corrupt, grayscale, fully transparent, smaller than a cell) are skipped and listed on stderr; the
batch goes on. Without ``--mpp`` the scale of each image is estimated from its red cells and its cell
(:func:`hemascope.classify.cell_scale.picture_scale`), and the images of one
pixel size share the median of their estimates (:mod:`hemascope.segment.batch_scale`).
"""

from __future__ import annotations

import argparse

from hemascope.cli._options import add_device_argument

COMMAND = ("classify",)
HELP = "classify single-cell images (files or folders) with a cell model into a CSV"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``hemascope classify``."""
    parser.add_argument(
        "images", nargs="+", metavar="IMAGE", help="image files or folders of images"
    )
    parser.add_argument("--model", default="wbc", help="registry name, card/weights path or URL")
    parser.add_argument(
        "--mpp", type=float, help="µm/px of the images (default: estimated, one scale per image size)"
    )
    parser.add_argument(
        "--out", required=True, help="output CSV (path, class, confidence, prob_<class>)"
    )
    add_device_argument(parser, "the cell model")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--tta", action="store_true", help="average over 8 flips/rotations")
    parser.add_argument(
        "--adapt",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="re-estimate the model's BatchNorm statistics on these images first (per-batch "
        "adaptation; default: the model card's choice)",
    )
    parser.add_argument(
        "--adapt-priors",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="re-estimate the class mix of these images and adapt the probabilities to it "
        "(label-shift EM; default: the model card's choice)",
    )
    parser.add_argument(
        "--blast-min",
        type=float,
        metavar="P",
        help="call blast only at this blast probability or above, else the next class "
        "(default: the model card's threshold; 0 = no rule)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Classify and write the CSV; exit 0 when every image was classified, 1 when some were skipped."""
    import sys

    from hemascope.classify import classify_images, expand_image_paths
    from hemascope.classify.decision import POSSIBLE_BLAST
    from hemascope.classify.framing import CENTRED, NOT_FOUND
    from hemascope.cli._contract import EXIT_OK, EXIT_SOME_FAILED, check_output_table
    from hemascope.errors import DataError
    from hemascope.files import atomic_write_table
    from hemascope.progress import tqdm_progress

    check_output_table(args.out)
    if args.blast_min is not None and not 0 <= args.blast_min < 1:
        from hemascope.errors import InvalidInputError

        raise InvalidInputError(f"--blast-min must be in [0, 1), got {args.blast_min}")
    paths = expand_image_paths(args.images)
    result = classify_images(
        paths,
        args.model,
        args.mpp,
        device=args.device,
        batch_size=args.batch_size,
        tta=args.tta,
        adapt=args.adapt,
        adapt_priors=args.adapt_priors,
        blast_min=args.blast_min,
        progress=tqdm_progress("classify", disable=args.quiet),
    )
    for name, reason in result.failed:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    if args.mpp is not None:  # used as given; but say so when the cells look far from it
        from hemascope.classify.cell_scale import CHECK_PICTURES, check_given_scale
        from hemascope.classify.images import sample_pictures

        warning = check_given_scale(sample_pictures(paths, CHECK_PICTURES), args.mpp)
        if warning:
            print(f"WARNING {warning}", file=sys.stderr)
    if result.table.empty:
        raise DataError(f"none of the {len(paths)} images could be classified")
    out = atomic_write_table(args.out, result.table.round(5))
    low = int(result.table["mpp_low_confidence"].sum())
    framing = result.table["framing"]
    fields = int((framing != CENTRED).sum())
    not_found = int((framing == NOT_FOUND).sum())
    possible = int(result.table[POSSIBLE_BLAST].sum()) if POSSIBLE_BLAST in result.table else 0
    print(
        f"{len(result.table)} images classified with {result.model} -> {out}"
        + (f"; {len(result.failed)} skipped" if result.failed else "")
        + (f"; {low} with a LOW-CONFIDENCE estimated µm/px (pass --mpp)" if low else "")
        + (f"; {fields} whole fields, cropped on their central white cell" if fields else "")
        + (f" (none found in {not_found}: their centre classified)" if not_found else "")
        + (f"; {possible} possible blasts (most likely blast, below the blast rule's threshold: "
           f"called their next class; column {POSSIBLE_BLAST}) to review" if possible else "")
        + (f"; domain shift: {_shift_line(result.domain_shift)}" if result.domain_shift else "")
        + (f"; {result.stain.reason}" if result.stain and result.stain.also_read_as else "")
    )
    return EXIT_SOME_FAILED if result.failed else EXIT_OK


def _shift_line(shift) -> str:
    """``WARNING ...`` when the guard fires, else the plain verdict."""
    return f"WARNING {shift.reason}" if shift.shifted else shift.reason
