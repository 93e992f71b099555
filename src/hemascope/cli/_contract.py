"""The exit-code and output contract every ``hemascope`` subcommand keeps (not a command itself).

Exit codes
----------
0 (:data:`EXIT_OK`)
    Everything asked for succeeded.
1 (:data:`EXIT_SOME_FAILED`)
    A batch ran, but some inputs failed; they are listed on stderr (and in the output table or
    summary where the command writes one). Nothing that succeeded is lost.
2 (:data:`EXIT_BAD_INPUT`)
    A user mistake stopped the command before or while it ran (missing file, bad option, output
    location not writable, every input unusable...): one line on stderr, no traceback.
130
    Interrupted (Ctrl-C).

Output locations are checked with :func:`check_output_file` / :func:`check_output_dir` *before*
any computation, so a typo in ``--out`` costs a second, not an analysis.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hemascope.errors import InvalidInputError

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def _nearest_existing(path: Path) -> Path:
    """``path`` itself or its closest existing ancestor."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    return probe


def _check_writable_dir(directory: Path, what: str, option: str, shown: Path | None = None) -> None:
    """Raise unless new entries can be created in ``directory`` (or its nearest existing parent)."""
    shown = directory if shown is None else shown
    existing = _nearest_existing(directory)
    if existing.exists() and not existing.is_dir():
        raise InvalidInputError(f"{option} {shown}: {existing} is a file, not a directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=".hemascope-write-check-", dir=existing)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InvalidInputError(f"{option} {shown}: cannot create {what} in {existing} ({reason})") from None
    os.close(fd)
    os.unlink(probe)


def check_output_file(path: str | Path, *, option: str = "--out") -> Path:
    """Check, before any work, that a file can be written at ``path``; returns it as a ``Path``.

    Missing parent folders are allowed (writers create them) as long as they can be created.

    Raises
    ------
    InvalidInputError
        ``path`` is an existing folder, lies under a file, or its folder is not writable.
    """
    path = Path(path)
    if path.is_dir():
        raise InvalidInputError(f"{option} {path}: is a directory, expected a file name")
    _check_writable_dir(path.parent if str(path.parent) else Path("."), "a file", option, shown=path)
    return path


def check_output_table(path: str | Path, *, option: str = "--out") -> Path:
    """:func:`check_output_file` for a table: the name must also end in ``.csv`` or ``.parquet``.

    Raises
    ------
    InvalidInputError
        As :func:`check_output_file`, or the name has another suffix (``--out results`` for a
        folder, ``.tsv``, ``.xlsx``...).
    """
    from hemascope.files import TABLE_SUFFIXES

    path = check_output_file(path, option=option)
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise InvalidInputError(f"{option} {path}: a table file must end in .csv or .parquet")
    return path


def check_output_dir(path: str | Path, *, option: str = "--out") -> Path:
    """Check, before any work, that ``path`` is (or can become) a writable folder; returns it.

    Raises
    ------
    InvalidInputError
        ``path`` is a file, lies under a file, or cannot be created or written.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InvalidInputError(f"{option} {path}: is a file, expected a directory")
    _check_writable_dir(path, "results", option)
    return path
