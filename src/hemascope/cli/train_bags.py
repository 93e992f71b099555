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

from hemascope.cli._options import add_device_argument, add_model_output_arguments

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
        "--instances",
        default="blast",
        help="cells in a bag: 'all', 'blast', or cell classes joined with '+' (e.g. 'blast+ig')",
    )
    data.add_argument("--segmenter", default="classical", help="segmenter for image bags")
    data.add_argument("--skip-empty", action="store_true", help="leave out bags with no such cells")
    data.add_argument("--cache", help="bag embeddings cache (.npz): reused when it exists")
    data.add_argument(
        "--split", default="0.7,0.15,0.15", help="train,val,test fractions without a split column"
    )
    data.add_argument(
        "--cv",
        metavar="REPEATSxFOLDS",
        help="repeated stratified k-fold cross-validation over bags (e.g. 5x5), then train on "
        "every bag; the card reports the cross-validated metrics (no split column needed)",
    )
    data.add_argument("--folds", help="fold lists CSV (bag, repeat, fold) instead of drawing them")
    data.add_argument("--positive", help="class the binary CV metrics read (default: the first)")
    model = parser.add_argument_group("model")
    model.add_argument(
        "--method", choices=("attention", "mean", "instance", "grouped"), default="attention"
    )
    model.add_argument(
        "--groups",
        default="blast+ig",
        help="grouped: cell classes of the first group joined with '+' (the rest form the second)",
    )
    model.add_argument("--name", required=True)
    model.add_argument("--version", default="0.1.0")
    model.add_argument(
        "--min-instances",
        default="10",
        help="abstain below this many cells; 'auto' (with --cv): where the cross-validated "
        "accuracy collapses",
    )
    model.add_argument("--hidden", type=int, default=128)
    model.add_argument("--demo", action="store_true", help="mark as synthetic/demo in the card")
    fit = parser.add_argument_group("training")
    fit.add_argument("--loss", default="ce", help="ce, ls, gce, sce, focal, cb, ldam")
    fit.add_argument("--epochs", type=int, default=40)
    fit.add_argument("--batch-size", type=int, default=16)
    fit.add_argument("--lr", type=float, default=1e-3)
    fit.add_argument("--weight-decay", type=float, default=1e-3, help="AdamW weight decay")
    fit.add_argument(
        "--l2",
        type=float,
        default=20.0,
        help="grouped: ridge penalty of the linear head (fitted exactly on whole bags)",
    )
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
    fit.add_argument(
        "--balanced", action="store_true", help="draw every bag class equally often in training"
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
    add_device_argument(fit, "the cell model")
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


def _min_instances(text: str, cv: bool) -> int | str:
    from hemascope.errors import InvalidInputError

    if text == "auto" and cv:
        return "auto"
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise InvalidInputError(
            f"--min-instances must be a positive integer{' or auto' if cv else ''}, got {text!r}"
        )
    return value


def _load_or_build_bags(args, table, cell_model):
    """All-cell bags (with per-cell classes), from the cache when it holds them."""
    from pathlib import Path

    from hemascope.errors import DataError
    from hemascope.progress import tqdm_progress
    from hemascope.train.bags_data import load_bags, save_bags
    from hemascope.train.bags_sources import build_bags

    cache = Path(args.cache) if args.cache else None
    sha = cell_model.card.sha256
    if cache is not None and cache.exists():
        try:  # a cache of every cell serves any instance selection
            bags = load_bags(cache, expect={"cell_model_sha256": sha, "instances": "all"})
        except DataError:
            bags = load_bags(cache, expect={"cell_model_sha256": sha, "instances": args.instances})
        wanted = set(table["bag"].astype(str))
        bags = [b for b in bags if b.name in wanted]
        if not bags:
            raise DataError(f"the cache {cache} holds none of the bags in {args.labels}")
        return bags, []
    bags, skipped = build_bags(
        table,
        cell_model,
        instances="all",
        mpp=args.mpp,
        device=args.device,
        segmenter=args.segmenter,
        skip_empty=args.skip_empty,
        progress=None if args.quiet else tqdm_progress("embedding bags"),
    )
    if cache is not None:
        save_bags(cache, bags, meta={"cell_model_sha256": sha, "instances": "all"})
    return bags, skipped


def run(args: argparse.Namespace) -> int:
    """Build (or load) the bags, train, evaluate and save the bag model."""
    import torch

    from hemascope.cli._contract import check_output_dir
    from hemascope.errors import DataError
    from hemascope.models import load_model
    from hemascope.progress import tqdm_progress
    from hemascope.slide.bag import instances_noun, parse_instances
    from hemascope.train.bags_data import (
        read_bag_labels,
        restrict_bag,
        split_bags,
        splits_from_table,
    )
    from hemascope.train.bags_fit import fit_bag_model

    parse_instances(args.instances)
    min_instances = _min_instances(str(args.min_instances), bool(args.cv or args.folds))
    check_output_dir(args.out)
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
    bags, skipped = _load_or_build_bags(args, table, cell_model)
    bags = [restrict_bag(b, args.instances) if b.cell_classes is not None else b for b in bags]
    noun = instances_noun(args.instances)
    if not (args.cv or args.folds):
        empty = [b.name for b in bags if len(b.features) == 0]
        if empty and not args.skip_empty:
            raise DataError(
                f"{len(empty)} bag(s) hold no {noun}, e.g. {empty[:3]} (use --skip-empty to leave "
                "such bags out)"
            )
        skipped += [(name, f"no {noun} found") for name in empty]
        bags = [b for b in bags if len(b.features)]
    for name, reason in skipped:
        print(f"skipped bag {name}: {reason}")
    options = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "max_instances": args.max_instances,
        "min_sample": args.min_sample,
        "arch_params": {"hidden": args.hidden, "members": args.members},
        "weight_decay": args.weight_decay,
        "l2": args.l2,
        "calibration": args.calibration,
        "balanced": args.balanced,
    }
    if args.method == "grouped":
        from hemascope.train.bags_fit import grouped_arch_params

        options["arch_params"] = {
            "members": args.members,
            **grouped_arch_params(cell_model, args.groups),
        }
    card_options = {
        "name": args.name,
        "version": args.version,
        "cell_card": cell_model.card,
        "out_dir": args.out,
        "architecture": args.method,
        "loss": args.loss,
        "instances": args.instances,
        "min_instances": min_instances,
        "demo": args.demo,
        "training_data": args.training_data,
        "licence": args.licence,
        "description": args.description,
        "train_options": options,
        "seed": args.seed,
        "progress": None if args.quiet else tqdm_progress(f"training {args.method}"),
    }
    if args.cv or args.folds:
        return _run_cv(args, bags, classes, card_options)
    if "split" in table.columns:
        splits = splits_from_table(bags, table)
    else:
        train, val, test = split_bags(bags, _fractions(args.split), seed=args.seed)
        splits = {"train": train, "val": val, "test": test}
    report = fit_bag_model(splits, classes, **card_options)
    scores = report.card.metrics.get("test")
    sizes = report.card.metrics["n_bags"]
    print(f"{report.card.caption}: trained on {sizes['train']} bags, validated on {sizes['val']}")
    if scores:
        print(
            f"test bags: {sizes['test']}  accuracy {scores['accuracy']:.3f}  macro-F1 {scores['macro_f1']:.3f}  ECE {scores['ece']:.3f}"
        )
    print(f"wrote {report.card_path}")
    return 0


def _run_cv(args: argparse.Namespace, bags, classes, card_options: dict) -> int:
    """``--cv``/``--folds``: cross-validate over bags, then train on every bag."""
    from hemascope.slide.bag import instances_noun
    from hemascope.train.bags_cv import make_folds, parse_cv, read_folds
    from hemascope.train.bags_cv_fit import fit_with_cross_validation
    from hemascope.train.bags_cv_metrics import format_interval

    if args.folds:
        folds = read_folds(args.folds, bags)
    else:
        repeats, k = parse_cv(args.cv)
        folds = make_folds(
            [b.name for b in bags], [b.label for b in bags], repeats, k, seed=args.seed
        )
    report, cv = fit_with_cross_validation(
        bags, classes, folds, positive=args.positive, **card_options
    )
    m = cv.metrics
    print(
        f"{report.card.caption}: {len(bags)} bags, {folds['repeat'].nunique()}x"
        f"{folds['fold'].nunique()} cross-validation, positive class {cv.positive}"
    )
    print(
        "  AUC {}  accuracy {}  sensitivity@{:.0%} specificity {}  Brier {}  ECE {}".format(
            format_interval(m["auc"]),
            format_interval(m["accuracy"]),
            0.9,
            format_interval(m["sens_at_spec"]),
            format_interval(m["brier"], 3),
            format_interval(m["ece"], 3),
        )
    )
    print(
        f"  abstains below {report.card.min_instances} {instances_noun(report.card.instances)} per bag"
    )
    print(f"wrote {report.card_path}")
    return 0
