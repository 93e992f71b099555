"""``hemascope analyze``: analyse slides into one output folder each, resumable, optionally on dask.

Each slide gets ``<out>/<slide name>/`` with the saved result (cells, embeddings, config, result.json,
COMPLETE marker) and its exports (``exports/``, EXPORTED marker); ``<out>/summary.csv`` lists every
slide's status, time, cell counts and slide-level answers. ``--resume`` skips finished slides (result
*and* exports complete) and continues unfinished ones from their last finished region; a failed
slide is never counted as finished. ``--pool`` also counts the pictures of each folder together,
as fields of one specimen (:mod:`hemascope.pooled`: ``<out>/pooled.csv``, ``<out>/pooled/<folder>/``).

Slide-level models follow one rule (:mod:`hemascope.slide.applicability`): a slide model runs only
on the embeddings of the cell model it was trained on; by default every such registry model that
is not SYNTHETIC/DEMO runs.

Exit codes (:mod:`hemascope.cli._contract`): 0 every slide analysed; 1 some slides failed (listed);
2 a user mistake stopped the run before it started (missing slide file, unwritable ``--out``, bad
option or model) or every slide was unusable. Research use only — not for diagnosis.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

COMMAND = ("analyze",)
HELP = "analyse slides (segment, classify, summarise) into one output folder each"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command-line arguments."""
    parser.add_argument("slides", nargs="+", metavar="SLIDE", help="slide files (OME-TIFF, SVS, OME-Zarr, images, ...) or folders of them")
    parser.add_argument("--out", required=True, metavar="DIR", help="output root folder")
    parser.add_argument("--config", metavar="FILE", help="TOML file of run settings (see docs/cohorts.md)")
    parser.add_argument("--mpp", type=float, metavar="UM",
                        help="µm per level-0 pixel of every slide (overrides the files and the config; "
                             "default: the file's, else estimated from red cells and, in one-cell pictures, the cell)")
    parser.add_argument("--cell-model", metavar="NAME",
                        help="cell classifier: registry name or card path (default: wbc; see `hemascope models`)")
    parser.add_argument("--slide-model", metavar="NAME",
                        help="slide-level (bag) model(s), comma-separated, or 'none' (default: every "
                             "model trained on the cell model's embeddings, demo models excluded)")
    parser.add_argument("--resume", action="store_true", help="skip finished slides, continue unfinished ones")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N", help="run on a local dask cluster of N worker processes")
    where.add_argument("--scheduler", metavar="ADDRESS", help="run on an existing dask scheduler (tcp://host:8786)")
    from hemascope.export.registry import bundle_exports

    parser.add_argument("--no-export", action="store_true",
                        help="save results only, skip the exports (" + ", ".join(e.file_name for e in bundle_exports())
                        + "; write them later with `hemascope export`)")
    parser.add_argument("--pool", action="store_true",
                        help="the pictures of each folder are fields of one specimen: also count their cells "
                             "together (one differential, blast %% and slide-level answer per folder: "
                             "<out>/pooled.csv, <out>/pooled/<folder>/)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def build_config(args: argparse.Namespace) -> Any:
    """The run settings: the ``--config`` file (or defaults) with the command-line options on top.

    Raises
    ------
    ConfigError
        For a bad file or a bad option value (named).
    """
    from dataclasses import replace

    from hemascope.config import load_config
    from hemascope.errors import ConfigError

    config = load_config(args.config)
    overrides = {
        key: value
        for key, value in (("mpp", args.mpp), ("cell_model", args.cell_model), ("slide_model", args.slide_model))
        if value is not None
    }
    try:
        return replace(config, **overrides) if overrides else config
    except ConfigError as exc:
        option = next((f"--{k.replace('_', '-')}" for k in overrides if repr(k) in str(exc)), None)
        raise ConfigError(f"{option}: {exc}" if option else str(exc)) from None


def _missing_slides(paths: list[str]) -> list[str]:
    from pathlib import Path

    return [p for p in paths if not Path(p).exists()]


def slide_line(row: Any) -> str:
    """One line of the terminal summary for a slide's summary row."""
    if row.status == "failed":
        return f"FAILED  {row.slide}: {row.error}"
    from hemascope.export.report import finite_number

    blast = finite_number(row.blast_percent)
    blasts = "" if blast is None else f", blasts {blast:.1f}%"
    possible = finite_number(getattr(row, "possible_blasts", None))
    upper = finite_number(getattr(row, "blast_percent_with_possible", None))
    if possible and blasts and upper is not None:
        blasts += f" (+{int(possible)} possible: up to {upper:.1f}%)"
    elif possible:  # no blast % (no cell counted, or withheld): the flagged cells still want review
        blasts += f", {int(possible)} possible blast{'s' if possible > 1 else ''}"
    answers = row.answers if isinstance(row.answers, str) and row.answers else ""
    warnings = getattr(row, "warnings", None)
    warnings = f"; {warnings}" if isinstance(warnings, str) and warnings else ""
    return f"{row.status:<7} {row.slide}: {int(row.n_cells)} cells{blasts}" + (f"; {answers}" if answers else "") + \
        warnings + f" -> {row.out_dir}"


def exit_code(summary: Any) -> int:
    """0 when every slide succeeded; 1 when some failed; 2 when every slide failed on its input."""
    from hemascope import errors
    from hemascope.cli._contract import EXIT_BAD_INPUT, EXIT_OK, EXIT_SOME_FAILED

    failed = summary[summary["status"] == "failed"]
    if failed.empty:
        return EXIT_OK
    user = [isinstance(getattr(errors, str(t), None), type) and issubclass(getattr(errors, str(t)), errors.HemascopeError)
            for t in failed["error_type"]]
    return EXIT_BAD_INPUT if len(failed) == len(summary) and all(user) else EXIT_SOME_FAILED


def run(args: argparse.Namespace) -> int:
    """Run the analysis; see the module docstring for the exit codes."""
    from hemascope.classes import RESEARCH_USE_ONLY
    from hemascope.cli._contract import check_output_dir
    from hemascope.distributed import SUMMARY_FILE, analyze_cohort
    from hemascope.errors import InvalidInputError
    from hemascope.io.paths import expand_slide_paths
    from hemascope.pipeline import slide_model_plan
    from hemascope.progress import tqdm_progress

    missing = _missing_slides(args.slides)
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise InvalidInputError(f"slide file(s) not found: {shown}")
    if args.workers is not None and args.workers < 1:
        raise InvalidInputError(f"--workers must be >= 1, got {args.workers}")
    out = check_output_dir(args.out)
    slides = expand_slide_paths(args.slides, exclude=out)
    config = build_config(args)
    names, _ = slide_model_plan(config)  # loads the cell model, refuses a slide model that does not fit
    if not args.quiet:
        print(f"cell model {config.cell_model}; slide models: {', '.join(names) or 'none apply'}",
              file=sys.stderr)
    summary = analyze_cohort(
        slides, out, config, workers=args.workers, scheduler=args.scheduler, resume=args.resume,
        export=not args.no_export, progress=tqdm_progress("slides", disable=args.quiet),
    )
    for row in summary.itertuples():
        print(slide_line(row), file=sys.stderr if row.status == "failed" else sys.stdout)
    failed = int((summary["status"] == "failed").sum())
    print(f"{len(summary) - failed}/{len(summary)} slides analysed; summary: {out / SUMMARY_FILE} "
          f"({RESEARCH_USE_ONLY})")
    if args.pool:
        pool(summary, out, export=not args.no_export)
    elif not args.quiet and (hint := pool_hint(summary, config)):
        print(hint, file=sys.stderr)
    return exit_code(summary)


def pool_hint(summary: Any, config: Any) -> str:
    """A line pointing to ``--pool`` when a folder holds several pictures too small for a
    differential each (empty otherwise)."""
    from pathlib import Path

    from hemascope.slide.differential import DEFAULT_MIN_CELLS

    least = config.min_cells if config.min_cells is not None else DEFAULT_MIN_CELLS
    thin = summary[(summary["status"] != "failed") & (summary["n_counted"].fillna(0) < least)]
    folders = thin.groupby([str(Path(s).parent) for s in thin["slide"]]).size()
    if not (folders >= 2).any():
        return ""
    return (f"hint: {int(folders[folders >= 2].sum())} pictures in {int((folders >= 2).sum())} folder(s) hold fewer "
            f"than {least} white cells each; if each folder is one specimen, --pool counts its pictures together")


def pool(summary: Any, out: Any, *, export: bool) -> None:
    """Count each folder's analysed pictures together (``--pool``): save the pools, write
    ``<out>/pooled.csv`` (the summary's columns, one row per folder) and print one line each."""
    import pandas as pd

    from hemascope.distributed import SUMMARY_COLUMNS, summary_row
    from hemascope.files import atomic_write_table
    from hemascope.pooled import POOLED_DIR, pool_folders

    done = summary[summary["status"] != "failed"]
    lost = summary[summary["status"] == "failed"]
    pools = pool_folders(list(zip(done["slide"], done["out_dir"], strict=True)),
                         dict(zip(lost["slide"], lost["error"], strict=True)), out, export=export)
    rows = [{**summary_row(folder, directory, "pooled", 0.0, result), "n_fields": result.slide["n_fields"]}
            for folder, directory, result in pools]
    table = pd.DataFrame(rows, columns=[*SUMMARY_COLUMNS, "n_fields"])
    atomic_write_table(out / f"{POOLED_DIR}.csv", table)
    for row in table.itertuples():
        print(slide_line(row))
