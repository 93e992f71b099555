"""Options shared by several ``hemascope`` subcommands (not a command itself)."""

from __future__ import annotations

import argparse


def add_model_output_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the model-card provenance options and ``--out``/``--quiet`` of the training commands."""
    meta = parser.add_argument_group("model card")
    meta.add_argument(
        "--training-data", action="append", default=[], help="data provenance line (repeatable)"
    )
    meta.add_argument("--licence", default="")
    meta.add_argument("--description", default="")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def add_device_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup, what: str = "the models") -> None:
    """Add ``--device`` (default ``auto``: CUDA, else Apple MPS, else CPU), the same on every command."""
    parser.add_argument("--device", default="auto", metavar="DEVICE",
                        help=f"where {what} run: auto (CUDA, else MPS, else CPU), cpu, cuda, cuda:N, mps")
