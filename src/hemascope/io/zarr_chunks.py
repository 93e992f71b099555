"""Is a zarr level's data in the store at all?

A chunk absent from a zarr store is the array's fill value, so a store whose chunk keys no longer
match its metadata (separator or key encoding changed, links that point nowhere) reads as a blank
image without any error. Writers skip empty chunks, so *some* missing chunks are legal; a level
none of whose chunks can be found is not: :func:`require_some_chunk` looks for one chunk file
whose name is a key the array's own encoding produces, stopping at the first.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from hemascope.errors import CorruptSlideError

MAX_ENTRIES_SCANNED = 20_000
"""Directory entries examined before giving up (a level's first chunk is found long before)."""

_METADATA = {"zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"}
_NUMBERS = re.compile(r"\d+")


def _is_chunk_key(metadata: Any, key: str, ndim: int) -> bool:
    coords = tuple(int(n) for n in _NUMBERS.findall(key))
    if len(coords) != ndim:
        return False
    try:
        return bool(metadata.encode_chunk_key(coords) == key)
    except Exception:  # noqa: BLE001 - an undecodable name is not a chunk of this array
        return False


def require_some_chunk(array: Any, array_dir: Path, what: str) -> None:
    """Raise unless at least one chunk of ``array`` exists under ``array_dir``.

    Parameters
    ----------
    array
        The opened zarr array (its metadata encodes chunk keys).
    array_dir
        The array's directory in a local store.
    what
        Description used in error messages.

    Raises
    ------
    CorruptSlideError
        No file under ``array_dir`` is a chunk key of the array (or every such file is a dangling
        link), within :data:`MAX_ENTRIES_SCANNED` directory entries.
    """
    metadata = array.metadata
    ndim = len(array.shape)
    scanned = 0
    for root, dirs, files in os.walk(array_dir):
        dirs.sort(key=lambda d: (len(d), d))
        for name in sorted(files, key=lambda f: (len(f), f)):
            scanned += 1
            if name in _METADATA:
                continue
            full = Path(root) / name
            key = full.relative_to(array_dir).as_posix()
            if _is_chunk_key(metadata, key, ndim) and full.exists():
                return
        scanned += len(dirs)
        if scanned > MAX_ENTRIES_SCANNED:
            break
    raise CorruptSlideError(
        f"{what}: none of the level's chunks is in the store (chunk keys do not match the "
        "array's key encoding, or the data was removed)"
    )
