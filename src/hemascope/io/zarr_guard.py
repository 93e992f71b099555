"""A read-only zarr store that never leaves its directory and never reads special files.

:class:`GuardedLocalStore` is zarr's ``LocalStore`` with checks on every key it reads: the file
must resolve (after symlinks) inside the store's own directory, be a regular file (a FIFO would
block forever, ``/dev/zero`` never ends), hold at most
:data:`~hemascope.io.limits.MAX_CHUNK_BYTES`, and a zstd frame or blosc chunk in it may not claim
more than that once decompressed (numcodecs allocates what the header claims). A damaged store raises
:class:`~hemascope.errors.CorruptSlideError`; an absent chunk is still ``None`` (the fill value).
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any

from zarr.storage import LocalStore

from hemascope.errors import CorruptSlideError
from hemascope.io.limits import MAX_CHUNK_BYTES

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def inside(root: Path, path: Path) -> bool:
    """Whether ``path`` resolves (symlinks followed) to ``root`` or a path below it."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def check_store_file(root: Path, path: Path, what: str) -> bool:
    """Validate one file of a zarr store before it is read.

    Parameters
    ----------
    root
        The store's directory.
    path
        The file (a metadata document or a chunk).
    what
        Description used in error messages.

    Returns
    -------
    bool
        ``False`` when nothing is there (an absent chunk), ``True`` when it may be read.

    Raises
    ------
    CorruptSlideError
        A link leaving the store or pointing nowhere, a non-regular file, or an oversized file.
    """
    try:
        link = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    if not inside(root, path):
        raise CorruptSlideError(f"{what}: {path.name} points outside the store; refused")
    try:
        info = os.stat(path)
    except FileNotFoundError as exc:
        raise CorruptSlideError(f"{what}: {path.name} is a dangling link") from exc
    if stat.S_ISDIR(info.st_mode):
        return False
    if not stat.S_ISREG(info.st_mode):
        kind = "link to a special file" if stat.S_ISLNK(link.st_mode) else "special file"
        raise CorruptSlideError(f"{what}: {path.name} is a {kind}, not data; refused")
    if info.st_size > MAX_CHUNK_BYTES:
        raise CorruptSlideError(f"{what}: {path.name} holds {info.st_size} bytes; refused")
    return True


def zstd_claimed_size(data: bytes) -> int | None:
    """Decompressed size a zstd frame header claims (``None`` if absent or not a zstd frame)."""
    if len(data) < 6 or data[:4] != _ZSTD_MAGIC:
        return None
    descriptor = data[4]
    fcs_flag, single_segment, dict_flag = descriptor >> 6, (descriptor >> 5) & 1, descriptor & 3
    pos = 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[dict_flag]
    size = (1 if single_segment else 0, 2, 4, 8)[fcs_flag]
    if size == 0 or len(data) < pos + size:
        return None
    value = int.from_bytes(data[pos : pos + size], "little")
    return value + 256 if size == 2 else value


def blosc_claimed_size(data: bytes) -> int | None:
    """Decompressed size a blosc (v1/v2 format) chunk header claims, ``None`` if not blosc.

    The header has no magic number; it is recognised by its own compressed size (bytes 12-16)
    matching the chunk's length, which random data practically never does.
    """
    if len(data) < 16 or data[0] not in (1, 2):
        return None
    if int.from_bytes(data[12:16], "little") != len(data):
        return None
    return int.from_bytes(data[4:8], "little")


class GuardedLocalStore(LocalStore):
    """zarr's ``LocalStore`` (read-only) with the checks of :func:`check_store_file` on reads."""

    def __init__(self, root: Path | str, *, what: str = "zarr store") -> None:
        super().__init__(root, read_only=True)
        self._what = what

    def _checked(self, key: str) -> bool:
        return check_store_file(self.root, self.root / key, self._what)

    async def get(
        self, key: str, prototype: Any = None, byte_range: Any = None
    ) -> Any:  # docstring inherited
        if not await asyncio.to_thread(self._checked, key):
            return None
        buffer = await super().get(key, prototype, byte_range)
        if buffer is not None and byte_range is None:
            data = buffer.to_bytes()
            claimed = zstd_claimed_size(bytes(data[:18]))
            if claimed is None:
                claimed = blosc_claimed_size(data)
            if claimed is not None and claimed > MAX_CHUNK_BYTES:
                raise CorruptSlideError(
                    f"{self._what}: chunk {key!r} claims {claimed} bytes once decompressed"
                )
        return buffer

    async def get_partial_values(self, prototype: Any, key_ranges: Any) -> list[Any]:
        key_ranges = list(key_ranges)
        for key, _ in key_ranges:
            await asyncio.to_thread(self._checked, key)
        return await super().get_partial_values(prototype, key_ranges)

    def with_read_only(self, read_only: bool = False) -> GuardedLocalStore:  # noqa: ARG002
        """A store on the same directory (always read-only)."""
        return GuardedLocalStore(self.root, what=self._what)
