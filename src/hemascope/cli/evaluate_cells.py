"""``hemascope evaluate cells``: accuracy, macro-F1, per-class P/R/F1, ECE and a confusion-matrix PNG."""

from __future__ import annotations

import argparse

from hemascope.cli._options import add_device_argument

COMMAND = ("evaluate", "cells")
HELP = "evaluate a cell classifier on labelled cells (optionally under a stain/blur/scale shift)"
#: What the figures measure, printed and recorded: not the answers ``hemascope classify`` gives.
NETWORK_ALONE = ("the network alone: the most probable class of each crop; `hemascope classify` adds the "
                 "model card's decision (class-mix adaptation, blast rule, a second stain reading) and "
                 "the framing of whole pictures, so its answers can differ")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``hemascope evaluate cells``."""
    parser.add_argument("data", nargs="+", help="class-per-folder directories or CSV lists")
    parser.add_argument("--model", default="wbc", help="registry name, card/weights path or URL")
    parser.add_argument("--mpp", type=float, help="µm/px of images without an mpp column")
    parser.add_argument(
        "--relabel",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="rename classes to the model's ('*=NEW' for all others)",
    )
    parser.add_argument("--shift", default="none", choices=["none", "stain", "blur", "scale"])
    parser.add_argument(
        "--amount", type=float, help="shift strength (stain 0.3, blur 1.5 px, scale 1.2)"
    )
    parser.add_argument(
        "--tta", action="store_true", help="test-time augmentation (8 flips/rotations)"
    )
    add_device_argument(parser, "the cell model")
    parser.add_argument("--cache-dir", help="crop-bank cache directory")
    parser.add_argument("--out", help="directory for metrics.json and confusion.png")


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the summary (and write the report files with ``--out``)."""
    from pathlib import Path

    import pandas as pd

    from hemascope.classes import canonical_cell_class
    from hemascope.classify import resolve_device
    from hemascope.cli._contract import check_output_dir
    from hemascope.errors import InvalidInputError
    from hemascope.files import atomic_write_json
    from hemascope.models import load_model
    from hemascope.train import read_cell_table, save_confusion_png
    from hemascope.train.evaluate import evaluate_model

    if args.out:
        check_output_dir(args.out)
    try:
        relabel = dict(item.split("=", 1) for item in args.relabel)
    except ValueError:
        raise InvalidInputError("--relabel needs OLD=NEW") from None
    table = pd.concat([read_cell_table(p, mpp=args.mpp) for p in args.data], ignore_index=True)
    if relabel:
        table["class"] = [relabel.get(c, relabel.get("*", c)) for c in table["class"]]
    loaded = load_model(args.model, device=resolve_device(args.device))
    # labels as the data set names them (Neutrophil, NGS, myeloblast) scored as the model's classes
    table["class"] = [canonical_cell_class(c, loaded.classes) or c for c in table["class"]]
    metrics, _ = evaluate_model(
        loaded, table, shift=args.shift, amount=args.amount, tta=args.tta, cache_dir=args.cache_dir
    )
    metrics["decision"] = NETWORK_ALONE
    print(
        f"{loaded.label} shift={args.shift}: n={metrics['n']} accuracy={metrics['accuracy']:.4f} "
        f"macro_f1={metrics['macro_f1']:.4f} ece={metrics['ece']:.4f}"
    )
    print(f"  ({NETWORK_ALONE})")
    for name, pc in metrics["per_class"].items():
        if pc["support"] or pc["precision"]:
            print(
                f"  {name:16s} P={pc['precision']:.3f} R={pc['recall']:.3f} F1={pc['f1']:.3f} n={pc['support']}"
            )
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "metrics.json", metrics)
        save_confusion_png(
            metrics["confusion"],
            loaded.classes,
            out / "confusion.png",
            title=f"{loaded.label} ({args.shift})",
        )
        print(f"wrote {out / 'metrics.json'} and {out / 'confusion.png'}")
    return 0
