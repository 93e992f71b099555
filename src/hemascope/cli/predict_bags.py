"""``hemascope predict-bags``: slide-level (bag) predictions for patients' cells, fields or slides.

Each BAG is one patient's folder of single-cell crops (any resolution; give ``--mpp`` when known),
a folder of field images, a field or whole-slide image (cells are found first), or a saved
analysis. ``--input`` says whether a folder holds single-cell crops or fields (``auto``: from the
images' physical size). The output CSV has one row per bag: ``bag``, ``predicted``,
``prob_<class>``..., ``n_cells``, ``n_blasts``, ``n_instances``, ``abstained``, ``reason`` (too few
cells, a scale that could not be estimated, the error of an unreadable bag...), ``top_cells``,
``input``, ``mpp``, ``mpp_source``, the model and the research-use notice.

Exit codes (see :mod:`hemascope.cli._contract`): 0 every bag was read (answered or abstained),
1 some bags failed (listed on stderr, their rows kept with the reason), 2 a user mistake (bad
option, unwritable ``--out``, unknown model) or no bag could be read.
"""

from __future__ import annotations

import argparse

from hemascope.cli._options import add_device_argument

COMMAND = ("predict-bags",)
HELP = "predict the slide-level label (e.g. APL vs other AML) of bags of cells; research use only"

#: The default bag model: trained on real patients (never a SYNTHETIC/DEMO model).
DEFAULT_BAG_MODEL = "apl"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``hemascope predict-bags``."""
    parser.add_argument(
        "bags",
        nargs="+",
        metavar="BAG",
        help="a patient's folder of cell crops, a folder of fields, a field/slide image or an analysis",
    )
    parser.add_argument(
        "--model",
        default=DEFAULT_BAG_MODEL,
        help=f"bag model name or card path (default: {DEFAULT_BAG_MODEL}, APL vs other AML)",
    )
    parser.add_argument(
        "--cell-model", help="cell model (default: the one named in the bag model's card)"
    )
    parser.add_argument(
        "--mpp", type=float, help="µm/px of the images (estimated per bag when omitted)"
    )
    parser.add_argument(
        "--input",
        choices=("auto", "crops", "fields"),
        default="auto",
        help="a folder holds single-cell crops (one cell per image) or fields to segment; "
        "auto: crops when the images are at most 80 µm across (at the given or estimated µm/px)",
    )
    parser.add_argument("--min-blasts", type=int, help="abstain below this many cells in the bag")
    parser.add_argument("--segmenter", default="classical", help="segmenter for field images")
    add_device_argument(parser, "the cell and bag models")
    parser.add_argument("--out", required=True, help="output CSV")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Predict every bag and write the CSV; see the module docstring for the exit codes."""
    import sys

    from hemascope.cli._contract import (
        EXIT_BAD_INPUT,
        EXIT_OK,
        EXIT_SOME_FAILED,
        check_output_table,
    )
    from hemascope.errors import InvalidInputError
    from hemascope.files import atomic_write_table
    from hemascope.io.limits import check_given_mpp
    from hemascope.models import load_model
    from hemascope.progress import tqdm_progress
    from hemascope.slide import load_bag_model
    from hemascope.train.bags_predict import ERROR_PREFIX, check_cell_model, predict_bag_sources

    check_output_table(args.out)
    if args.mpp is not None:
        check_given_mpp(args.mpp, "--mpp")
    if args.min_blasts is not None and args.min_blasts < 1:
        raise InvalidInputError(f"--min-blasts must be >= 1, got {args.min_blasts}")
    bag_model = load_bag_model(args.model)
    cell_model = load_model(args.cell_model or bag_model.card.embedding_model)
    check_cell_model(bag_model.card, cell_model)
    table = predict_bag_sources(
        args.bags,
        bag_model,
        cell_model,
        mpp=args.mpp,
        min_blasts=args.min_blasts,
        device=args.device,
        segmenter=args.segmenter,
        input_mode=args.input,
        progress=None if args.quiet else tqdm_progress("bags"),
    )
    atomic_write_table(args.out, table)
    failed = table["reason"].str.startswith(ERROR_PREFIX)
    for bag, reason in zip(table.loc[failed, "bag"], table.loc[failed, "reason"], strict=True):
        print(f"hemascope: failed: {bag}: {reason.removeprefix(ERROR_PREFIX)}", file=sys.stderr)
    card = bag_model.card
    print(f"{card.caption} · {card.question}" if card.question else card.caption)
    answered = int((~table["abstained"]).sum())
    print(
        f"{len(table)} bags: {answered} answered, {int(table['abstained'].sum()) - int(failed.sum())} "
        f"abstained, {int(failed.sum())} failed; wrote {args.out}"
    )
    if failed.all():
        return EXIT_BAD_INPUT
    return EXIT_SOME_FAILED if failed.any() else EXIT_OK
