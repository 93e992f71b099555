"""``hemascope predict-bags``: slide-level (bag) predictions for fields, slides or cell folders.

Each BAG is a field image, a whole slide (cells are found first), a folder of single-cell images,
or a saved analysis. The output CSV has one row per bag: ``bag``, ``predicted``, a ``prob_<class>``
column per class, ``n_cells``, ``n_blasts``, ``n_instances``, ``abstained`` and ``reason`` (too few
blasts, or the error for an unreadable bag — the run goes on past it), the model name and version,
and the research-use notice.
"""

from __future__ import annotations

import argparse

COMMAND = ("predict-bags",)
HELP = "predict the slide-level label (e.g. AML subtype) of bags of cells; research use only"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``hemascope predict-bags``."""
    parser.add_argument(
        "bags", nargs="+", metavar="BAG", help="field/slide image, cell folder or analysis"
    )
    parser.add_argument("--model", default="aml-subtype-demo", help="bag model name or card path")
    parser.add_argument(
        "--cell-model", help="cell model (default: the one named in the bag model's card)"
    )
    parser.add_argument("--mpp", type=float, help="µm/px of the images (estimated when omitted)")
    parser.add_argument("--min-blasts", type=int, help="abstain below this many cells in the bag")
    parser.add_argument("--segmenter", default="classical", help="segmenter for image bags")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", required=True, help="output CSV")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Predict every bag and write the CSV; exit 1 when no bag could be read."""
    import sys

    from hemascope.models import load_model
    from hemascope.progress import tqdm_progress
    from hemascope.results import atomic_write_table
    from hemascope.slide import load_bag_model
    from hemascope.train.bags_sources import predict_bag_sources

    bag_model = load_bag_model(args.model)
    cell_model = load_model(args.cell_model or bag_model.card.embedding_model)
    table = predict_bag_sources(
        args.bags,
        bag_model,
        cell_model,
        mpp=args.mpp,
        min_blasts=args.min_blasts,
        device=args.device,
        segmenter=args.segmenter,
        progress=None if args.quiet else tqdm_progress("bags"),
    )
    atomic_write_table(args.out, table)
    failed = table["reason"].str.startswith("error:")
    for bag, reason in zip(table.loc[failed, "bag"], table.loc[failed, "reason"], strict=True):
        print(f"hemascope: {bag}: {reason}", file=sys.stderr)
    print(f"{bag_model.card.caption}")
    print(f"{len(table)} bags, {int(table['abstained'].sum())} abstained; wrote {args.out}")
    return 1 if failed.all() else 0
