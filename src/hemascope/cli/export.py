"""``hemascope export``: write the exports of saved results again, all or some of them.

Reads result folders written by ``hemascope analyze`` (or ``SlideResult.save``) and writes the
exports named by ``--only`` (default: every one; the list is
:data:`hemascope.export.registry.EXPORTS`). A folder that is no result but holds results (the
``--out`` folder of ``analyze``) stands for them (:func:`hemascope.results.result_folders`). One
result: the files go straight into ``--out``; several: into ``--out/<result folder name>/``
(``--out/pooled/<folder>/`` for pooled results). Exit 1 when some results could not be exported
(listed on stderr), 2 when none could.
"""

from __future__ import annotations

import argparse
import sys

COMMAND = ("export",)
HELP = "write the exports (cell tables, QuPath GeoJSON, report) of saved results"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``hemascope export``."""
    from hemascope.export.registry import ALL_EXPORTS, bundle_exports

    parser.add_argument("results", nargs="+", metavar="RESULT_DIR",
                        help="result folders written by `hemascope analyze` (or its --out folder: all of them)")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the exports")
    names = ", ".join(f"{e.name} ({e.file_name})" for e in bundle_exports())
    parser.add_argument("--only", default=ALL_EXPORTS, metavar="NAMES",
                        help=f"comma-separated exports to write: {names}; default: {ALL_EXPORTS}")


def run(args: argparse.Namespace) -> int:
    """Write the exports; see the module docstring for the exit codes."""
    from pathlib import Path

    from hemascope.cli._contract import EXIT_BAD_INPUT, EXIT_OK, EXIT_SOME_FAILED, check_output_dir
    from hemascope.errors import HemascopeError
    from hemascope.export.bundle import export_all
    from hemascope.export.registry import select_exports
    from hemascope.results import SlideResult, result_folders

    select_exports(args.only)  # an unknown name is a user mistake: refused before any work
    out = check_output_dir(args.out)
    results = [(folder, Path(given)) for given in args.results for folder in result_folders(given)]
    failed = []
    for folder, given in results:
        where = folder.relative_to(given) if folder != given else Path(folder.resolve().name)
        target = out if len(results) == 1 else out / where
        try:
            paths = export_all(SlideResult.load(folder), target, args.only)
        except (HemascopeError, OSError) as exc:
            failed.append(folder)
            print(f"FAILED  {folder}: {exc}", file=sys.stderr)
            continue
        for name, path in paths.items():
            print(f"{name}: {path}")
    if not failed:
        return EXIT_OK
    return EXIT_BAD_INPUT if len(failed) == len(results) else EXIT_SOME_FAILED
