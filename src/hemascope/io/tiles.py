"""Tile sources and 2x downsampling: the building blocks of the streamed pyramid writers.

A :class:`TileSource` is anything with ``.shape -> (rows, cols)`` and
``.read(row, col, height, width) -> (height, width, 3) uint8``. Writers pull tiles from it one at a
time, so a 100k x 100k slide never needs to exist in memory.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from hemascope.errors import InvalidInputError


@runtime_checkable
class TileSource(Protocol):
    """Anything that serves RGB uint8 regions of a large image on demand."""

    @property
    def shape(self) -> tuple[int, int]: ...

    def read(self, row: int, col: int, height: int, width: int) -> np.ndarray: ...


class ArrayTileSource:
    """A :class:`TileSource` over an in-memory (or memory-mapped, or dask) ``(rows, cols, 3)`` array."""

    def __init__(self, array: np.ndarray) -> None:
        if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
            raise InvalidInputError(
                f"expected an RGB uint8 array (rows, cols, 3), got shape {array.shape} dtype {array.dtype}"
            )
        if array.shape[0] == 0 or array.shape[1] == 0:
            raise InvalidInputError("image has zero size")
        self._array = array

    @property
    def shape(self) -> tuple[int, int]:
        return int(self._array.shape[0]), int(self._array.shape[1])

    def read(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        return np.asarray(self._array[row : row + height, col : col + width])


def as_tile_source(source: np.ndarray | TileSource) -> TileSource:
    """Return ``source`` itself if it is a :class:`TileSource`, else wrap an array.

    Parameters
    ----------
    source
        An RGB uint8 array ``(rows, cols, 3)`` (numpy, memmap or dask) or a :class:`TileSource`.

    Returns
    -------
    TileSource
        An object serving regions of ``source``.
    """
    if hasattr(source, "read") and hasattr(source, "shape") and not hasattr(source, "ndim"):
        rows, cols = (int(v) for v in source.shape[:2])
        if rows <= 0 or cols <= 0:
            raise InvalidInputError(f"tile source has zero size {source.shape}")
        return source  # type: ignore[return-value]
    if hasattr(source, "ndim"):
        return ArrayTileSource(source)  # type: ignore[arg-type]
    raise InvalidInputError(f"expected an array or a TileSource, got {type(source).__name__}")


def downsample2(tile: np.ndarray) -> np.ndarray:
    """Halve an RGB uint8 tile with a 2x2 box filter (odd edges replicate their last row/column).

    Parameters
    ----------
    tile
        ``(rows, cols, 3)`` uint8.

    Returns
    -------
    numpy.ndarray
        ``(ceil(rows / 2), ceil(cols / 2), 3)`` uint8, rounded to nearest.
    """
    rows, cols = tile.shape[:2]
    if rows % 2 or cols % 2:
        tile = np.pad(tile, ((0, rows % 2), (0, cols % 2), (0, 0)), mode="edge")
    h2, w2 = tile.shape[0] // 2, tile.shape[1] // 2
    t = tile.astype(np.uint16).reshape(h2, 2, w2, 2, tile.shape[2])
    return ((t.sum(axis=(1, 3)) + 2) >> 2).astype(np.uint8)


def level_shapes_for(
    shape: tuple[int, int], tile_size: int, n_levels: int | None
) -> list[tuple[int, int]]:
    """Shapes of a 2x pyramid: at least 3 levels, until the smallest fits in one tile.

    Parameters
    ----------
    shape
        Level-0 ``(rows, cols)``.
    tile_size
        Tile edge in pixels.
    n_levels
        Exact number of levels, or ``None`` for the default rule.

    Returns
    -------
    list of tuple
        ``(rows, cols)`` per level, level 0 first.
    """
    shapes = [shape]
    while True:
        rows, cols = shapes[-1]
        if n_levels is not None:
            if len(shapes) >= n_levels:
                break
        elif len(shapes) >= 3 and max(rows, cols) <= tile_size:
            break
        if rows <= 1 and cols <= 1:
            if n_levels is not None:
                raise InvalidInputError(f"{n_levels} levels do not fit an image of {shape}")
            break
        shapes.append(((rows + 1) // 2, (cols + 1) // 2))
    return shapes


def iter_tile_origins(shape: tuple[int, int], tile_size: int) -> Iterator[tuple[int, int]]:
    """Top-left ``(row, col)`` of every tile in row-major order (the TIFF tile order)."""
    for row in range(0, shape[0], tile_size):
        for col in range(0, shape[1], tile_size):
            yield row, col


class TileSpool:
    """A temporary on-disk tile store (zstd-compressed blobs + offset index) used as a TileSource.

    The pyramid writers spool each downsampled level here while writing the level above, so memory
    stays bounded by a few tiles whatever the slide size. Chunks are ``chunk`` pixels square and are
    written once each, in any order.
    """

    def __init__(
        self, shape: tuple[int, int], chunk: int, directory: str | os.PathLike[str] | None = None
    ) -> None:
        import imagecodecs

        self._codec = imagecodecs
        self._shape = (int(shape[0]), int(shape[1]))
        self._chunk = int(chunk)
        fd, name = tempfile.mkstemp(prefix=".hemascope-spool-", suffix=".bin", dir=directory)
        self._path = Path(name)
        self._file = os.fdopen(fd, "w+b")
        self._index: dict[tuple[int, int], tuple[int, int, int, int]] = {}
        self._end = 0

    @property
    def shape(self) -> tuple[int, int]:
        return self._shape

    def put(self, row: int, col: int, block: np.ndarray) -> None:
        """Store ``block`` (at most one chunk) whose top-left is the chunk origin ``(row, col)``."""
        # imagecodecs takes any buffer; its stub's BytesLike omits numpy arrays
        data = self._codec.zstd_encode(np.ascontiguousarray(block), level=1)  # type: ignore[arg-type]
        self._file.seek(self._end)
        self._file.write(data)
        key = (row // self._chunk, col // self._chunk)
        self._index[key] = (self._end, len(data), block.shape[0], block.shape[1])
        self._end += len(data)

    def _get(self, key: tuple[int, int]) -> np.ndarray:
        offset, nbytes, rows, cols = self._index[key]
        self._file.seek(offset)
        raw = self._codec.zstd_decode(self._file.read(nbytes))
        return np.frombuffer(raw, dtype=np.uint8).reshape(rows, cols, 3)

    def read(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        """Assemble the region ``[row:row+height, col:col+width]`` (clipped to the shape)."""
        height = min(height, self._shape[0] - row)
        width = min(width, self._shape[1] - col)
        out = np.empty((height, width, 3), dtype=np.uint8)
        c = self._chunk
        for kr in range(row // c, (row + height - 1) // c + 1):
            for kc in range(col // c, (col + width - 1) // c + 1):
                block = self._get((kr, kc))
                r0, c0 = kr * c, kc * c
                rs, re = max(row, r0), min(row + height, r0 + block.shape[0])
                cs, ce = max(col, c0), min(col + width, c0 + block.shape[1])
                out[rs - row : re - row, cs - col : ce - col] = block[
                    rs - r0 : re - r0, cs - c0 : ce - c0
                ]
        return out

    def close(self) -> None:
        """Close and delete the spool file."""
        self._file.close()
        self._path.unlink(missing_ok=True)


def level_downsample(shape0: tuple[int, int], shape: tuple[int, int]) -> float:
    """Downsample factor of a level relative to level 0.

    A power of two ``p`` is returned exactly when the level's shape is the floor or ceiling of
    ``shape0 / p`` (how pyramids round odd sizes); otherwise the ratio of the column counts.

    Parameters
    ----------
    shape0, shape
        ``(rows, cols)`` of level 0 and of the level.

    Returns
    -------
    float
        The factor (1.0 for level 0).
    """
    ratio = shape0[1] / shape[1]
    power = 2.0 ** round(math.log2(ratio)) if ratio > 0 else 1.0
    for axis in (0, 1):
        if shape[axis] not in (math.floor(shape0[axis] / power), math.ceil(shape0[axis] / power)):
            return float(ratio)
    return float(power)
