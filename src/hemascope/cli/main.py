"""Entry point of the ``hemascope`` command.

Subcommands are discovered from the modules of :mod:`hemascope.cli` (see its docstring). A
documented :class:`~hemascope.errors.HemascopeError` becomes one line on stderr and exit code 2,
never a traceback; the exit codes are listed in :mod:`hemascope.cli._contract`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

import hemascope.cli as _cli_pkg
from hemascope._version import __version__
from hemascope.cli._contract import EXIT_BAD_INPUT, EXIT_INTERRUPTED
from hemascope.errors import HemascopeError


def _command_modules() -> list[ModuleType]:
    modules = []
    for info in pkgutil.iter_modules(_cli_pkg.__path__):
        if info.name == "main" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{_cli_pkg.__name__}.{info.name}")
        if hasattr(module, "COMMAND") and hasattr(module, "run"):
            modules.append(module)
    return sorted(modules, key=lambda m: m.COMMAND)


def build_parser() -> argparse.ArgumentParser:
    """Build the ``hemascope`` argument parser with every discovered subcommand."""
    parser = argparse.ArgumentParser(
        prog="hemascope",
        description="Whole-slide analysis of blood and bone-marrow smears (research use only).",
    )
    parser.add_argument("--version", action="version", version=f"hemascope {__version__}")
    top = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups: dict[str, argparse._SubParsersAction] = {}
    for module in _command_modules():
        name, *rest = module.COMMAND
        help_text = getattr(module, "HELP", None)
        if rest:
            if name not in groups:
                group = top.add_parser(name, help=f"{name} subcommands")
                groups[name] = group.add_subparsers(dest=f"{name}_command", metavar="WHAT", required=True)
            sub = groups[name].add_parser(rest[0], help=help_text, description=help_text)
        else:
            sub = top.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``hemascope`` command; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args._run(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's flush at exit
    except HemascopeError as exc:
        print(f"hemascope: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("hemascope: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader of our stdout went away (`hemascope models | head -1`): not an error of
        # ours; point stdout at devnull so the interpreter's final flush stays quiet
        _silence_stdout()
        return 0
    return int(code or 0)


def _silence_stdout() -> None:
    """Point stdout at the null device (its reader is gone), dropping what is still buffered."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real stdout (embedded, captured)
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
