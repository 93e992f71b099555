"""``hemascope analyze``: analyse slides into one output folder each, resumable, optionally on dask.

Each slide gets ``<out>/<slide name>/`` with the saved result (cells, embeddings, config, result.json,
COMPLETE marker) and its exports; ``<out>/summary.csv`` lists every slide's status, time, cell counts
and predictions. ``--resume`` skips finished slides and continues unfinished ones from their last
finished region. Research use only — not for diagnosis.
"""

from __future__ import annotations

import argparse

COMMAND = ("analyze",)
HELP = "analyse slides (segment, classify, summarise) into one output folder each"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command-line arguments."""
    parser.add_argument("slides", nargs="+", metavar="SLIDE", help="slide files (OME-TIFF, SVS, OME-Zarr, images, ...)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output root folder")
    parser.add_argument("--config", metavar="FILE", help="TOML file of run settings (see docs/cohorts.md)")
    parser.add_argument("--resume", action="store_true", help="skip finished slides, continue unfinished ones")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N", help="run on a local dask cluster of N worker processes")
    where.add_argument("--scheduler", metavar="ADDRESS", help="run on an existing dask scheduler (tcp://host:8786)")
    parser.add_argument("--no-export", action="store_true", help="save results only, skip CSV/GeoJSON/report exports")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run the analysis; exit code 0 when every slide succeeded, 1 when some failed."""
    from hemascope.config import load_config
    from hemascope.distributed import SUMMARY_FILE, analyze_cohort
    from hemascope.progress import tqdm_progress

    config = load_config(args.config)
    summary = analyze_cohort(
        args.slides, args.out, config, workers=args.workers, scheduler=args.scheduler, resume=args.resume,
        export=not args.no_export, progress=tqdm_progress("slides", disable=args.quiet),
    )
    for row in summary.itertuples():
        if row.status == "failed":
            print(f"FAILED  {row.slide}: {row.error}")
        else:
            blast = "" if row.blast_percent is None or row.blast_percent != row.blast_percent else f", blasts {row.blast_percent:.1f}%"
            print(f"{row.status:<7} {row.slide}: {row.n_cells} cells{blast} -> {row.out_dir}")
    failed = int((summary["status"] == "failed").sum())
    print(f"{len(summary) - failed}/{len(summary)} slides analysed; summary: {args.out}/{SUMMARY_FILE}")
    return 1 if failed else 0
