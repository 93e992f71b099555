"""``hemascope make-sample OUT``: write a synthetic smear slide (pyramidal OME-TIFF) with its ground truth."""

from __future__ import annotations

import argparse
from typing import Any

COMMAND = ("make-sample",)
HELP = "generate a synthetic blood or marrow smear slide (OME-TIFF) with its ground truth"

_SHIFT_KEYS = {
    "hue": "hue_deg",
    "intensity": "intensity",
    "blur": "blur_um",
    "noise": "noise",
    "jpeg": "jpeg_quality",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``make-sample`` arguments."""
    from hemascope.classes import AML_SUBTYPES

    parser.add_argument("out", help="output slide file, e.g. smear.ome.tif")
    parser.add_argument("--size", type=int, default=2048, help="edge in pixels (default 2048)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--kind", choices=("blood", "marrow"), default="blood")
    parser.add_argument("--subtype", choices=AML_SUBTYPES, default="control")
    parser.add_argument("--mpp", type=float, default=0.5, help="µm per pixel (0.25-0.5 typical)")
    parser.add_argument(
        "--stain-shift",
        default=None,
        metavar="SHIFT",
        help="'random' or 'random:STRENGTH' (seeded), or KEY=VALUE pairs separated by commas "
        "with keys hue (degrees), intensity, blur (µm), noise (grey levels), jpeg (quality)",
    )
    parser.add_argument("--wbc-density", type=float, default=None, help="white cells per mm²")
    parser.add_argument(
        "--class-mix",
        default=None,
        metavar="MIX",
        help="relative white-cell frequencies, e.g. 'blast=5,neutrophil=3,lymphocyte=2'",
    )
    parser.add_argument("--masks", action="store_true", help="also write <stem>.masks.tif")
    parser.add_argument("--workers", type=int, default=1, help="rendering processes (default 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _pairs(text: str, what: str) -> dict[str, float]:
    from hemascope.errors import InvalidInputError

    out: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[key.strip()] = float(value)
        except ValueError:
            raise InvalidInputError(f"{what}: expected KEY=NUMBER, got {item!r}") from None
    return out


def parse_stain_shift(text: str | None, seed: int) -> Any:
    """Parse ``--stain-shift`` into a :class:`~hemascope.synthetic.DomainShift`.

    Parameters
    ----------
    text
        ``None``, ``"random"``, ``"random:STRENGTH"`` or ``"hue=5,intensity=1.2,..."``.
    seed
        Seed of the random shift.

    Returns
    -------
    DomainShift
        The shift.

    Raises
    ------
    InvalidInputError
        For unknown keys or bad values.
    """
    import numpy as np

    from hemascope.errors import InvalidInputError
    from hemascope.synthetic import DomainShift

    if not text:
        return DomainShift()
    if text.startswith("random"):
        _, _, strength = text.partition(":")
        try:
            s = float(strength) if strength else 1.0
        except ValueError:
            raise InvalidInputError(f"--stain-shift: bad strength {strength!r}") from None
        return DomainShift.random(np.random.default_rng([seed, 0x5417]), s)
    values = _pairs(text, "--stain-shift")
    unknown = set(values) - set(_SHIFT_KEYS)
    if unknown:
        raise InvalidInputError(
            f"--stain-shift: unknown keys {sorted(unknown)}; known: {sorted(_SHIFT_KEYS)}"
        )
    kwargs: dict[str, Any] = {_SHIFT_KEYS[k]: v for k, v in values.items()}
    if "jpeg_quality" in kwargs:
        kwargs["jpeg_quality"] = int(kwargs["jpeg_quality"])
    return DomainShift(**kwargs)


def run(args: argparse.Namespace) -> int:
    """Generate the slide and print where the files went."""
    from hemascope.cli._contract import check_output_file
    from hemascope.errors import InvalidInputError
    from hemascope.progress import tqdm_progress
    from hemascope.synthetic import SmearSpec, make_smear, truth_paths

    check_output_file(args.out, option="OUT")
    if args.workers < 1:
        raise InvalidInputError(f"--workers must be >= 1, got {args.workers}")
    spec = SmearSpec(
        size=(args.size, args.size),
        mpp=args.mpp,
        seed=args.seed,
        kind=args.kind,
        subtype=args.subtype,
        wbc_density=args.wbc_density,
        class_mix=_pairs(args.class_mix, "--class-mix") if args.class_mix else None,
        shift=parse_stain_shift(args.stain_shift, args.seed),
    )
    progress = None if args.quiet else tqdm_progress("make-sample")
    truth = make_smear(args.out, spec, masks=args.masks, workers=args.workers, progress=progress)
    paths = truth_paths(args.out)
    counts = truth.cells["class"].value_counts().to_dict()
    print(
        f"slide  {args.out}  ({args.size}x{args.size} px, {args.mpp:g} µm/px, {spec.kind}, {spec.subtype})"
    )
    print(
        f"cells  {paths['cells']}  ({len(truth.cells)} rows: "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        + ")"
    )
    print(f"label  {paths['label']}")
    if args.masks:
        print(f"masks  {paths['masks']}")
    return 0
