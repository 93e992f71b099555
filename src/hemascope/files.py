"""Safe file writing and checksums: the leaf module every room may import.

Every file hemascope writes goes through the ``atomic_*`` helpers here: the data is written to a
temporary file next to the destination, flushed to disk, then moved over the destination with
:func:`os.replace`. A crash therefore leaves either the old file or the new one, never half a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hemascope.errors import ResultError


def _fsync_path(path: Path) -> None:
    if path.is_dir():
        for child in path.rglob("*"):
            if child.is_file():
                _fsync_file(child)
    else:
        _fsync_file(path)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can fsync a directory
        _fsync_file(path)


def remove_path(path: Path) -> None:
    """Delete a file or folder tree if it exists (links are unlinked, never followed)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write to; on success it replaces ``path`` atomically.

    The temporary name sits in the same directory (same file system) and keeps the suffix of
    ``path``, so writers that infer the format from the suffix still work. It may be a file or a
    directory (e.g. a Zarr store). If the block raises, the temporary is deleted and ``path`` is
    left untouched.

    Parameters
    ----------
    path
        Final destination.

    Yields
    ------
    Path
        Where to write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # the writer creates it (as a file or a directory)
    try:
        yield tmp
        if not tmp.exists():
            raise ResultError(f"nothing was written for {path}")
        _fsync_path(tmp)
        if tmp.is_dir() and path.exists():
            # os.replace cannot overwrite a non-empty directory: move the old one aside first.
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            remove_path(old)
            os.replace(path, old)
            os.replace(tmp, path)
            remove_path(old)
        else:
            os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        remove_path(tmp)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file + :func:`os.replace`); returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; returns ``path``."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically (numpy values and dataclasses converted)."""
    return atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, ensure_ascii=False) + "\n")


def atomic_write_npy(path: str | Path, array: np.ndarray) -> Path:
    """Write ``array`` as a ``.npy`` file atomically (never pickled objects); returns ``path``."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    return atomic_write_bytes(path, buf.getvalue())


#: Suffixes of the table files :func:`atomic_write_table` writes.
TABLE_SUFFIXES = (".parquet", ".csv")


def atomic_write_table(path: str | Path, table: pd.DataFrame) -> Path:
    """Write a DataFrame atomically as Parquet (``.parquet``) or CSV (``.csv``); returns ``path``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise ResultError(f"table files must end in .parquet or .csv, got {path.name}")
    with atomic_path(path) as tmp:
        if suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False)
    return path


def to_jsonable(obj: Any) -> Any:
    """Convert ``obj`` (dataclasses, numpy, pandas, paths, tuples) to plain JSON values."""
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, (pd.Series, pd.DataFrame)):
        return to_jsonable(obj.to_dict())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """The hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()
