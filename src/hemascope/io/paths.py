"""Turn what a user typed (files, folders of slides) into the slide paths to process."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from hemascope.errors import InvalidInputError
from hemascope.io.formats import SLIDE_SUFFIXES, ZARR_MARKERS


def is_zarr_dir(path: Path) -> bool:
    """True when ``path`` is a directory holding zarr metadata (an OME-Zarr image or group)."""
    return path.is_dir() and any((path / name).is_file() for name in ZARR_MARKERS)


def _slides_under(folder: Path) -> list[Path]:
    """Slide files and OME-Zarr directories under ``folder`` (sorted; zarr stores not entered)."""
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        for name in sorted(dirs):
            if is_zarr_dir(here / name):
                found.append(here / name)
        dirs[:] = sorted(d for d in dirs if not is_zarr_dir(here / d) and not d.startswith("."))
        found.extend(here / f for f in files
                     if not f.startswith(".") and Path(f).suffix.lower() in SLIDE_SUFFIXES)
    return sorted(found)


def expand_slide_paths(items: Sequence[str | os.PathLike[str]], *,
                       exclude: str | os.PathLike[str] | None = None) -> list[str]:
    """Expand folders into the slide files and OME-Zarr images they hold (recursively, sorted).

    Files, OME-Zarr directories and paths that do not exist pass through unchanged (the caller
    reports a missing path as it does for a file); hidden files and folders are skipped, and so is
    whatever a folder holds under ``exclude`` (the run's own output folder).

    Raises
    ------
    InvalidInputError
        A folder holds no slide or image file (suffixes in :data:`hemascope.io.formats.SLIDE_SUFFIXES`).
    """
    out: list[str] = []
    for item in items:
        path = Path(item)
        if not path.is_dir() or is_zarr_dir(path):
            out.append(str(item))
            continue
        found = _slides_under(path)
        if exclude is not None:
            found = [p for p in found if not p.resolve().is_relative_to(Path(exclude).resolve())]
        if not found:
            raise InvalidInputError(f"{path}: folder holds no slide or image files ({', '.join(SLIDE_SUFFIXES)})")
        out.extend(str(p) for p in found)
    return out


def unique_stems(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """One unique output name per path: the file name without its extensions, ``-2``, ``-3``...
    appended to repeats in order."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for path in paths:
        base = Path(path).name.split(".")[0] or "slide"
        count = seen.get(base, 0)
        seen[base] = count + 1
        names.append(base if count == 0 else f"{base}-{count + 1}")
    return names
