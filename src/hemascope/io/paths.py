"""Turn what a user typed (files, folders of slides) into the slide paths to process."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from hemascope.errors import InvalidInputError
from hemascope.io.formats import SLIDE_SUFFIXES, ZARR_MARKERS, ZARR_SUFFIXES


def is_zarr_dir(path: Path) -> bool:
    """True when ``path`` is a directory holding zarr metadata (an OME-Zarr image or group)."""
    return path.is_dir() and any((path / name).is_file() for name in ZARR_MARKERS)


def files_under(folder: Path, suffixes: Sequence[str]) -> list[Path]:
    """Files with ``suffixes`` under ``folder`` (sorted; hidden ones skipped), and OME-Zarr
    directories when ``.zarr`` is among the suffixes (zarr stores are never entered)."""
    zarr = any(s in suffixes for s in ZARR_SUFFIXES)
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        stores = {d for d in dirs if is_zarr_dir(here / d)}
        if zarr:
            found.extend(here / d for d in stores)
        dirs[:] = sorted(d for d in dirs if d not in stores and not d.startswith("."))
        found.extend(here / f for f in files if not f.startswith(".") and Path(f).suffix.lower() in suffixes)
    return sorted(found)


def expand_slide_paths(items: Sequence[str | os.PathLike[str]], *,
                       exclude: str | os.PathLike[str] | None = None,
                       suffixes: Sequence[str] = SLIDE_SUFFIXES) -> list[str]:
    """Expand folders into the slide files and OME-Zarr images they hold (recursively, sorted).

    Files, OME-Zarr directories and paths that do not exist pass through unchanged (the caller
    reports a missing path as it does for a file); hidden files and folders are skipped, and so is
    whatever a folder holds under ``exclude`` (the run's own output folder). ``suffixes`` narrows
    what a folder stands for (e.g. :data:`~hemascope.io.formats.PICTURE_SUFFIXES` for crops).

    Raises
    ------
    InvalidInputError
        A folder holds no file with one of ``suffixes``.
    """
    out: list[str] = []
    for item in items:
        path = Path(item)
        if not path.is_dir() or is_zarr_dir(path):
            out.append(str(item))
            continue
        found = files_under(path, suffixes)
        if exclude is not None:
            found = [p for p in found if not p.resolve().is_relative_to(Path(exclude).resolve())]
        if not found:
            what = "slide or image files" if tuple(suffixes) == SLIDE_SUFFIXES else "images"
            raise InvalidInputError(f"{path}: folder holds no {what} ({', '.join(suffixes)})")
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
