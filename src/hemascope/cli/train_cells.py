"""``hemascope train cells``: train a cell classifier from folders or CSV lists of cell images.

Writes ``<name>.safetensors`` + ``<name>.json`` (model card with metrics) + ``metrics.json`` and a
resumable checkpoint into ``--out``. Without ``--val`` the training data are split 70/15/15 with
``--seed`` (by ``group``), and the split lists are saved in ``--out/splits`` — except few-shot
sets (starting from a model, fewer than
:data:`~hemascope.train.few_shot.FEW_SHOT_MAX_PER_CLASS` cells per class), which are all trained on.
"""

from __future__ import annotations

import argparse

from hemascope.cli._options import add_device_argument, add_model_output_arguments

COMMAND = ("train", "cells")
#: With ``--init`` (few-shot fine-tuning) an epoch draws at least this many (augmented) samples.
FEW_SHOT_SAMPLES_PER_EPOCH = 1024
#: The network ``train cells --init none`` builds (the bundled model's is given by its card).
SCRATCH = {"input_size": 48, "model_mpp": 0.5, "widths": "16,32,64,128"}

#: The model training starts from when neither ``--init`` nor another network is asked for.
DEFAULT_INIT = "wbc"


HELP = "train a single-cell classifier (stain augmentation, balanced sampling, robust losses)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``hemascope train cells``."""
    data = parser.add_argument_group("data")
    data.add_argument(
        "--train",
        action="append",
        required=True,
        metavar="PATH",
        help="class-per-folder directory or CSV (path,class[,domain,mpp,group]); repeatable",
    )
    data.add_argument(
        "--val", action="append", metavar="PATH",
        help="validation data (else split from --train; few cells from a model: all trained on)"
    )
    data.add_argument(
        "--test", action="append", metavar="PATH", help="test data (reported in the card)"
    )
    data.add_argument(
        "--mpp", type=float,
        help="µm/px of images in folders / CSVs without an mpp column (default: estimated from their red cells and cells, one scale per pixel size, as classify does)"
    )
    data.add_argument(
        "--classes",
        help="comma-separated classes in output order ('wbc' = the canonical list, plus the "
        "starting model's reject classes, e.g. smudge); labels are matched without case and "
        "through common synonyms (NGS, myeloblast); others are left out",
    )
    data.add_argument(
        "--relabel",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="rename a class before training ('*=NEW' renames every class not renamed otherwise)",
    )
    model = parser.add_argument_group("model")
    model.add_argument("--name", default="cells")
    model.add_argument("--version", default="0.1.0")
    model.add_argument("--input-size", type=int, help=f"model input in px (from scratch: {SCRATCH['input_size']})")
    model.add_argument("--model-mpp", type=float,
                       help=f"µm/px of the model input (from scratch: {SCRATCH['model_mpp']})")
    model.add_argument("--widths", help=f"channel widths (from scratch: {SCRATCH['widths']})")
    model.add_argument(
        "--init",
        metavar="MODEL",
        help="start from this cell model's weights (registry name or card path; same widths, "
        "input and normalisation); its head is kept only if the classes are the same. Default: "
        f"the bundled '{DEFAULT_INIT}' unless --input-size, --model-mpp or --widths ask for another "
        "network; 'none' trains from scratch",
    )
    model.add_argument(
        "--probe-head",
        action="store_true",
        help="with --init: first refit the head on the frozen features of the training cells "
        "(seconds; LP-FT, kept unless a fine-tuned epoch beats it; --epochs 0 = head only). When the "
        "--val cells are all training cells (a few-shot set) the run keeps the features and, without "
        "this option, adds the cells' class centres to the pretrained head instead (measured "
        "better, and blasts are still called when only normal cells are labelled)",
    )
    fit = parser.add_argument_group("training")
    fit.add_argument("--epochs", type=int, default=12)
    fit.add_argument(
        "--samples-per-epoch",
        type=int,
        help="samples drawn per epoch (default: the train size; with --init at least "
        f"{FEW_SHOT_SAMPLES_PER_EPOCH}, so 10 cells per class still give enough steps)",
    )
    fit.add_argument("--batch-size", type=int, default=128)
    fit.add_argument(
        "--val-per-epoch", type=int, default=1500, help="validation cells used for epoch selection"
    )
    fit.add_argument(
        "--lr",
        type=float,
        help="peak learning rate (default 3e-3; with --init 1e-3: a few-shot fine-tune)",
    )
    fit.add_argument("--loss", default="ce", help="ce, ls, gce, sce, focal, cb, ldam")
    fit.add_argument("--no-class-balance", action="store_true")
    fit.add_argument("--no-domain-balance", action="store_true")
    fit.add_argument("--no-augment", action="store_true")
    fit.add_argument(
        "--stain-mix",
        type=float,
        default=0.0,
        help="probability of swapping a crop's stain statistics with another crop's",
    )
    fit.add_argument("--blur-p", type=float, default=0.2, help="probability of a random blur")
    fit.add_argument(
        "--mixup",
        type=float,
        default=0.0,
        metavar="ALPHA",
        help="train on mixed pairs of crops, weight ~ Beta(ALPHA, ALPHA) (resists label noise; 0 = off)",
    )
    fit.add_argument(
        "--recalibrate-bn",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="recompute BatchNorm statistics on un-augmented training crops before each "
        "validation (and, with --init, before the head is fitted; default: on with --init)",
    )
    fit.add_argument(
        "--noise-rate", type=float, default=0.0, help="inject symmetric label noise (experiments)"
    )
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--amp", action="store_true", help="mixed precision (CUDA)")
    add_device_argument(fit, "training")
    fit.add_argument("--threads", type=int, help="torch CPU threads")
    fit.add_argument("--cache-dir", help="crop-bank cache directory")
    fit.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.*")
    add_model_output_arguments(parser)


def _table_reader(mpp: float | None):
    """``path -> cell table``, each path read once per run (the few-shot protocol passes the same
    CSV as --train and --val: its scale is estimated, and said, once)."""
    import functools

    from hemascope.train import read_cell_table

    @functools.cache
    def read(path: str):
        table = read_cell_table(path, mpp=mpp)
        if table.attrs.get("mpp_note"):
            print(table.attrs["mpp_note"])  # an estimated scale is said, never silent
        return table

    return read


def _starting_point(args: argparse.Namespace) -> str | None:
    """The model to start from: ``--init``; ``None`` for ``--init none`` or when the network's
    shape is given; else :data:`DEFAULT_INIT`, said (a network trained from scratch on a lab's
    few hundred cells is far worse than the bundled one fine-tuned on them)."""
    if args.init is not None:
        return None if args.init.lower() == "none" else args.init
    if any(getattr(args, name) is not None for name in SCRATCH):
        return None
    print(f"starting from the bundled '{DEFAULT_INIT}' model (--init none: train from scratch)")
    return DEFAULT_INIT


def _fill_network_shape(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """Input size, µm/px and widths not given: the starting model's, else :data:`SCRATCH`.
    Returns the starting model's classes and reject classes (none from scratch)."""
    shape, known, reject = dict(SCRATCH), [], []
    if args.init:
        from hemascope.models.card import ModelCard
        from hemascope.models.registry import find_card

        card = ModelCard.read(find_card(args.init, "cell"))
        widths = card.arch_params.get("widths")
        shape = {"input_size": card.input_size, "model_mpp": card.mpp,
                 "widths": ",".join(map(str, widths)) if widths else SCRATCH["widths"]}
        known, reject = list(card.classes), list(card.reject_classes)
    for name, value in shape.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return known, reject


def _read_all(paths: list[str] | None, read):
    import pandas as pd

    if not paths:
        return None
    return pd.concat([read(p) for p in paths], ignore_index=True)


def _prepare(table, relabel: dict[str, str], classes: list[str] | None, known: list[str]):
    """Relabel, then name each label as one of ``classes`` (``Neutrophil``, ``NGS`` and
    ``segmented_neutrophil`` are ``neutrophil``); cells of other labels are left out, and said.
    Without ``classes``, labels that name one of the starting model's classes (``known``) take
    its name (its head row is then kept) and the others stay new classes."""
    import sys

    from hemascope.classes import canonical_cell_class

    if table is None:
        return None
    if relabel:
        default = relabel.get("*")
        table = table.assign(**{"class": [relabel.get(c, default or c) for c in table["class"]]})
    if classes:
        named = [canonical_cell_class(c, classes) for c in table["class"]]
        left_out = sorted({c for c, n in zip(table["class"], named, strict=True) if n is None})
        if left_out:
            n_out = sum(n is None for n in named)
            print(f"note: {n_out} cells labelled {left_out[:8]} are not among --classes and were "
                  "left out (name them with --relabel OLD=NEW)", file=sys.stderr)
        table = table.assign(**{"class": named})
        table = table[table["class"].notna()].reset_index(drop=True)
    elif known:
        table = table.assign(**{"class": [canonical_cell_class(c, known) or c for c in table["class"]]})
    return table


def run(args: argparse.Namespace) -> int:
    """Run the training and print the validation/test figures."""
    from pathlib import Path

    from hemascope.classes import CELL_CLASSES
    from hemascope.errors import DataError, InvalidInputError
    from hemascope.progress import tqdm_progress
    from hemascope.train import AugmentConfig, TrainConfig, split_table, train_cells
    from hemascope.train.few_shot import is_few_shot

    args.init = _starting_point(args)
    known, reject = _fill_network_shape(args)
    try:
        relabel = dict(item.split("=", 1) for item in args.relabel)
        widths = [int(w) for w in args.widths.split(",")]
    except ValueError:
        raise InvalidInputError(
            "--relabel needs OLD=NEW and --widths comma-separated integers"
        ) from None
    classes = None
    if args.classes:
        classes = (
            # the starting model's reject outputs (smudge) stay: they keep cells that are no
            # white-cell type out of the differential, labelled by the lab or not
            [*CELL_CLASSES, *(c for c in reject if c not in CELL_CLASSES)]
            if args.classes == "wbc"
            else [c.strip() for c in args.classes.split(",")]
        )
    read = _table_reader(args.mpp)
    train = _prepare(_read_all(args.train, read), relabel, classes, known)
    val = _prepare(_read_all(args.val, read), relabel, classes, known)
    test = _prepare(_read_all(args.test, read), relabel, classes, known)
    out = Path(args.out)
    if val is None and args.init and is_few_shot(train["class"]):
        # a held-out sixth of ten cells validates nothing and costs training cells: all train,
        # and (validated on themselves) the features are kept: class centres on the pretrained head
        print(f"{len(train)} cells: all used for training, the network's features kept "
              "(give --val cells of other slides to fine-tune it)")
        val = train
    elif val is None:
        parts = split_table(train, seed=args.seed)
        (out / "splits").mkdir(parents=True, exist_ok=True)
        for name, part in parts.items():
            part.to_csv(out / "splits" / f"{name}.csv", index=False)
        train, val, test = parts["train"], parts["val"], parts["test"] if test is None else test
    if train.empty or val.empty:
        raise DataError("no training or validation cells left after --classes/--relabel")
    config = TrainConfig(
        name=args.name,
        version=args.version,
        classes=classes,
        input_size=args.input_size,
        mpp=args.model_mpp,
        widths=widths,
        epochs=args.epochs,
        samples_per_epoch=args.samples_per_epoch
        or (max(len(train), FEW_SHOT_SAMPLES_PER_EPOCH) if args.init else None),
        val_per_epoch=args.val_per_epoch,
        batch_size=args.batch_size,
        lr=args.lr or (1e-3 if args.init else 3e-3),
        loss=args.loss,
        balance_classes=not args.no_class_balance,
        balance_domains=not args.no_domain_balance,
        noise_rate=args.noise_rate,
        mixup=args.mixup,
        recalibrate_bn=bool(args.init) if args.recalibrate_bn is None else args.recalibrate_bn,
        init=args.init,
        probe_head=bool(args.init) and args.probe_head,
        seed=args.seed,
        amp=args.amp,
        device=args.device,
        augment=AugmentConfig.off()
        if args.no_augment
        else AugmentConfig(
            stain_mix_p=args.stain_mix,
            blur_p=args.blur_p,
            # few-shot: the bundled model's framing/scale variety, so 10 cells do not fix one look
            scale=0.25 if args.init else 0.15,
            tight_p=0.3 if args.init else 0.0,
        ),
        training_data=args.training_data,
        licence=args.licence,
        description=args.description,
        threads=args.threads,
    )
    result = train_cells(
        config,
        train,
        val,
        test,
        out_dir=out,
        cache_dir=args.cache_dir,
        resume=args.resume,
        progress=tqdm_progress("train cells", disable=args.quiet),
    )
    for split in ("val", "test"):
        if split in result.metrics:
            m = result.metrics[split]
            print(
                f"{split}: n={m['n']} accuracy={m['accuracy']:.4f} macro_f1={m['macro_f1']:.4f} ece={m['ece']:.4f}"
            )
    print(f"model card: {result.card_path}")
    return 0
