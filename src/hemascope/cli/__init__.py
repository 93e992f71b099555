"""The ``hemascope`` command line: one module per subcommand, discovered by :mod:`hemascope.cli.main`.

A subcommand module defines::

    COMMAND = ("segment",)            # or ("train", "cells") for a nested command
    HELP = "one line shown in --help"

    def add_arguments(parser: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace) -> int | None: ...

Heavy imports (torch, dask, napari) go inside ``run`` so that ``hemascope --help`` stays fast.
"""
