"""``hemascope train bags``: train a slide-level (bag) model on bags of cells with one label each.

Bags are listed in a labels CSV (a bag column — ``bag``, ``patient_id``, ... — and a label column —
``label``, ``bag_label``, ...; an optional ``split`` column with train/val/test). Each bag is a
folder of single-cell images (AML_Hehr / SCEMILA layout), a field or slide image (cells are found
first), or a saved analysis. Cells are embedded with ``--cell-model`` once; ``--cache`` keeps those
embeddings so several bag models can be trained on them. ``--method`` picks gated attention MIL,
mean pooling, or cell-level training on inherited labels (use a noise-robust ``--loss``: gce, sce).
Writes the model (``.safetensors`` + card with test metrics), per-bag test predictions and an
accuracy-vs-bag-size plot into ``--out``. See docs/bags.md.
"""

from __future__ import annotations

import argparse

from hemascope.cli._options import add_model_output_arguments

COMMAND = ("train", "bags")
HELP = "train a bag (slide-level) model: attention MIL, mean pooling or inherited-label cells"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``hemascope train bags``."""
    data = parser.add_argument_group("data")
    data.add_argument("--labels", required=True, help="labels CSV: one row per bag")
    data.add_argument("--root", help="folder the bag names are relative to (default: the CSV's)")
    data.add_argument("--bag-column", help="column naming the bag (default: detected)")
    data.add_argument("--label-column", help="column with the bag label (default: detected)")
    data.add_argument(
        "--classes",
        help="comma-separated classes in output order ('aml', 'all' = the built-in lists)",
    )
    data.add_argument("--mpp", type=float, help="µm/px of the images (estimated when omitted)")
    data.add_argument(
        "--cell-model", default="wbc", help="cell model whose embeddings form the bags"
    )
    data.add_argument(
        "--instances", choices=("blast", "all"), default="blast", help="cells in a bag"
    )
    data.add_argument("--segmenter", default="classical", help="segmenter for image bags")
    data.add_argument("--skip-empty", action="store_true", help="leave out bags with no such cells")
    data.add_argument("--cache", help="bag embeddings cache (.npz): reused when it exists")
    data.add_argument(
        "--split", default="0.7,0.15,0.15", help="train,val,test fractions without a split column"
    )
    model = parser.add_argument_group("model")
    model.add_argument("--method", choices=("attention", "mean", "instance"), default="attention")
    model.add_argument("--name", required=True)
    model.add_argument("--version", default="0.1.0")
    model.add_argument(
        "--min-instances", type=int, default=10, help="abstain below this many cells"
    )
    model.add_argument("--hidden", type=int, default=128)
    model.add_argument("--demo", action="store_true", help="mark as synthetic/demo in the card")
    fit = parser.add_argument_group("training")
    fit.add_argument("--loss", default="ce", help="ce, ls, gce, sce, focal, cb, ldam")
    fit.add_argument("--epochs", type=int, default=40)
    fit.add_argument("--batch-size", type=int, default=16)
    fit.add_argument("--lr", type=float, default=1e-3)
    fit.add_argument(
        "--max-instances", type=int, default=256, help="cells sampled per bag and step"
    )
    fit.add_argument(
        "--min-sample",
        type=int,
        default=1,
        help="each step a bag is cut to a random size in [min-sample, max-instances]; "
        "set it to max-instances to train on whole bags",
    )
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument(
        "--members",
        type=int,
        default=1,
        help="train this many models (seeds seed..seed+K-1) and bundle their average (ensemble)",
    )
    fit.add_argument(
        "--calibration",
        choices=("whole", "subsampled"),
        default="whole",
        help="fit the temperature on whole validation bags, or on random sub-bags of them "
        "(use it when the validation bags are all answered right)",
    )
    fit.add_argument("--device", default="auto", help="device of the cell model")
    fit.add_argument("--threads", type=int, help="torch CPU threads")
    add_model_output_arguments(parser)


def _classes(text: str | None) -> list[str] | None:
    from hemascope.classes import ALL_STAGES, AML_SUBTYPES

    if text is None:
        return None
    named = {"aml": list(AML_SUBTYPES), "b-all": list(ALL_STAGES)}
    return named.get(text.lower(), [c.strip() for c in text.split(",") if c.strip()])


def _fractions(text: str) -> tuple[float, float, float]:
    from hemascope.errors import InvalidInputError

    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise InvalidInputError(f"--split needs three numbers, got {text!r}") from None
    if len(values) != 3:
        raise InvalidInputError(f"--split needs three numbers, got {text!r}")
    return values  # type: ignore[return-value]


def run(args: argparse.Namespace) -> int:
    """Build (or load) the bags, train, evaluate and save the bag model."""
    from pathlib import Path

    import torch

    from hemascope.errors import DataError
    from hemascope.models import load_model
    from hemascope.progress import tqdm_progress
    from hemascope.train.bags_data import (
        load_bags,
        read_bag_labels,
        save_bags,
        split_bags,
        splits_from_table,
    )
    from hemascope.train.bags_fit import fit_bag_model
    from hemascope.train.bags_sources import build_bags

    if args.threads:
        torch.set_num_threads(args.threads)
    table, classes = read_bag_labels(
        args.labels,
        classes=_classes(args.classes),
        bag_column=args.bag_column,
        label_column=args.label_column,
        root=args.root,
    )
    cell_model = load_model(args.cell_model)
    cache = Path(args.cache) if args.cache else None
    meta = {"cell_model_sha256": cell_model.card.sha256, "instances": args.instances}
    if cache is not None and cache.exists():
        bags = load_bags(cache, expect=meta)
        wanted = set(table["bag"].astype(str))
        bags = [b for b in bags if b.name in wanted]
        if not bags:
            raise DataError(f"the cache {cache} holds none of the bags in {args.labels}")
    else:
        bags, skipped = build_bags(
            table,
            cell_model,
            instances=args.instances,
            mpp=args.mpp,
            device=args.device,
            segmenter=args.segmenter,
            skip_empty=args.skip_empty,
            progress=None if args.quiet else tqdm_progress("embedding bags"),
        )
        for name, reason in skipped:
            print(f"skipped bag {name}: {reason}")
        if cache is not None:
            save_bags(cache, bags, meta=meta)
    if "split" in table.columns:
        splits = splits_from_table(bags, table)
    else:
        train, val, test = split_bags(bags, _fractions(args.split), seed=args.seed)
        splits = {"train": train, "val": val, "test": test}
    report = fit_bag_model(
        splits,
        classes,
        name=args.name,
        version=args.version,
        cell_card=cell_model.card,
        out_dir=args.out,
        architecture=args.method,
        loss=args.loss,
        instances=args.instances,
        min_instances=args.min_instances,
        demo=args.demo,
        training_data=args.training_data,
        licence=args.licence,
        description=args.description,
        train_options={
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "max_instances": args.max_instances,
            "min_sample": args.min_sample,
            "arch_params": {"hidden": args.hidden, "members": args.members},
            "calibration": args.calibration,
        },
        seed=args.seed,
        progress=None if args.quiet else tqdm_progress(f"training {args.method}"),
    )
    test = report.card.metrics.get("test")
    sizes = report.card.metrics["n_bags"]
    print(f"{report.card.caption}: trained on {sizes['train']} bags, validated on {sizes['val']}")
    if test:
        print(
            f"test bags: {sizes['test']}  accuracy {test['accuracy']:.3f}  macro-F1 {test['macro_f1']:.3f}  ECE {test['ece']:.3f}"
        )
    print(f"wrote {report.card_path}")
    return 0
