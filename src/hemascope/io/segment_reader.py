"""Direct region reads of one TIFF page: the fast path of :meth:`Slide.read_region` and of dask.

:class:`SegmentReader` serves every single-page 8-bit RGB(A) layout whose segments form a regular
grid: tiles (what scanners and our writer produce), strips (full-width bands, e.g. ImageJ or
Bio-Formats files), planar layouts (one plane per segment, e.g. Bio-Formats' one-row-per-strip
OME-TIFF) and NDPI restart-interval tiles (tifffile splits NDPI JPEG streams at their McuStarts).
A read decodes only the segments it touches, each with a validated ``os.pread`` and a strict
decode, with no zarr or file lock in between; decoded segments are kept in a byte-bounded LRU
cache. Dask chunks are the file's tiles; strips and NDPI intervals are grouped into blocks of at
least 256 x 256 pixels (:func:`read_ahead_chunks`), so a level of one-row or 8-row strips is not
thousands of tiny tasks.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from hemascope.errors import CorruptSlideError, SlideError
from hemascope.io.strict_jpeg import strict_jpeg
from hemascope.io.tiff_tiles import tifffile_warnings_as_errors

_JPEG = 7
MIN_CHUNK = 256
"""Smallest dask chunk edge (pixels) advertised for levels whose segments are smaller."""
MAX_CHUNK_COLS = 4096
"""Widest dask chunk advertised for strip layouts (a strip is cached once, sliced many times)."""


def segment_shape(page: Any) -> tuple[int, int]:
    """``(rows, cols)`` of one segment: a tile, an NDPI restart interval, or a strip."""
    if page.is_tiled or page.jpegheader is not None:
        return int(page.tilelength), int(page.tilewidth)
    return int(min(page.rowsperstrip, page.imagelength)), int(page.imagewidth)


def is_fast_readable(page: Any) -> bool:
    """Whether :class:`SegmentReader` can serve ``page``.

    8-bit unsigned RGB(A) or YCbCr, 2-D, chunky or planar, whose segment count matches the grid
    of :func:`segment_shape` (so every region maps to known segments).
    """
    if not (
        page.imagedepth == 1
        and page.tiledepth == 1
        and page.samplesperpixel in (3, 4)
        and page.bitspersample == 8
        and page.sampleformat == 1
        and page.photometric in (2, 6)  # RGB, YCbCr (decoded to RGB)
        and page.planarconfig in (1, 2)
        and (page.planarconfig == 1 or page.compression != _JPEG or page.photometric == 2)
    ):
        return False
    rows, cols = segment_shape(page)
    if rows <= 0 or cols <= 0:
        return False
    planes = page.samplesperpixel if page.planarconfig == 2 else 1
    grid = -(-int(page.imagelength) // rows) * -(-int(page.imagewidth) // cols)
    return len(page.dataoffsets) == planes * grid == len(page.databytecounts)


def read_ahead_chunks(segment: tuple[int, int], shape: tuple[int, int]) -> tuple[int, int]:
    """Dask chunk ``(rows, cols)``: whole segments, grouped to at least :data:`MIN_CHUNK` px.

    Parameters
    ----------
    segment
        Segment ``(rows, cols)``.
    shape
        Level ``(rows, cols)``.
    """
    rows = min(-(-MIN_CHUNK // segment[0]) * segment[0], shape[0])
    if segment[1] > MAX_CHUNK_COLS:  # strips: dask chunks slice cached strips
        cols = MAX_CHUNK_COLS
    else:
        cols = min(-(-MIN_CHUNK // segment[1]) * segment[1], shape[1])
    return max(rows, 1), max(cols, 1)


class SegmentReader:
    """Read regions of one TIFF page by decoding only the segments they touch.

    Reads use ``os.pread`` on a private file descriptor, so dask threads can decode in parallel.

    Parameters
    ----------
    path
        The TIFF file.
    page
        The tifffile ``TiffPage`` of the level (must satisfy :func:`is_fast_readable`).
    what
        Description used in error messages.
    cache_bytes
        Decoded segments kept (least recently used dropped first); at least two are always kept.
    empty_value
        Value of segments stored with offset and byte count 0 (Philips background), or ``None``
        when such segments are errors (``check_segments`` refuses them when the slide is opened).
    """

    dtype = np.dtype(np.uint8)
    ndim = 3

    def __init__(
        self,
        path: str | os.PathLike[str],
        page: Any,
        what: str,
        cache_bytes: int = 96 * 2**20,
        empty_value: int | None = None,
    ):
        self._what = what
        self._empty_value = empty_value
        self._shape = (int(page.imagelength), int(page.imagewidth))
        self._segment = segment_shape(page)
        self._tiled = bool(page.is_tiled) and page.jpegheader is None  # NDPI intervals: grouped
        self._grid_cols = -(-self._shape[1] // self._segment[1])
        grid = -(-self._shape[0] // self._segment[0]) * self._grid_cols
        self._planes = 3 if page.planarconfig == 2 else 1
        self._samples = 1 if page.planarconfig == 2 else int(page.samplesperpixel)
        self._plane_stride = grid
        self._offsets = np.asarray(page.dataoffsets, dtype=np.int64).tolist()
        self._counts = np.asarray(page.databytecounts, dtype=np.int64).tolist()
        self._decode = page.decode
        self._jpeg = page.compression == _JPEG
        self._raw = int(page.compression) == 1 and int(page.predictor) == 1 and page.fillorder == 1
        chunky_rgb = page.samplesperpixel == 3 and page.planarconfig == 1
        self._photometric = int(page.photometric) if chunky_rgb else None
        self._decode_args: dict[str, Any] = {}
        if page.jpegtables is not None:
            self._decode_args["jpegtables"] = page.jpegtables
        if page.jpegheader is not None:
            self._decode_args["jpegheader"] = page.jpegheader
        self._fd = os.open(os.fspath(path), os.O_RDONLY)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._cached = 0
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)  # signalled when a decode finishes
        self._inflight: set[int] = set()

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(rows, cols, 3)``: the page as an RGB array (for :func:`dask.array.from_array`)."""
        return (*self._shape, 3)

    @property
    def chunks(self) -> tuple[int, int, int]:
        """Dask chunk shape ``(rows, cols, 3)``: the tile, or :func:`read_ahead_chunks` of strips."""
        if self._tiled:
            return (*self._segment, 3)
        return (*read_ahead_chunks(self._segment, self._shape), 3)

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        """Numpy-style slicing with slices (what dask asks for: one chunk)."""
        key = (key if isinstance(key, tuple) else (key,)) + (slice(None),) * 3
        r0, r1, rstep = key[0].indices(self._shape[0])
        c0, c1, cstep = key[1].indices(self._shape[1])
        block = self.read(r0, c0, max(r1 - r0, 0), max(c1 - c0, 0))
        return block[::rstep, ::cstep, key[2]]

    def _segment_at(self, index: int) -> np.ndarray:
        with self._ready:
            while True:
                cached = self._cache.get(index)
                if cached is not None:
                    self._cache.move_to_end(index)
                    return cached
                if index not in self._inflight:  # decode it here; others wait, not repeat
                    self._inflight.add(index)
                    break
                self._ready.wait()
        try:
            if self._fd < 0:
                raise SlideError(f"{self._what}: the slide was closed")
            planes = [
                self._decode_plane(index + p * self._plane_stride) for p in range(self._planes)
            ]
            block = planes[0] if self._planes == 1 else np.concatenate(planes, axis=2)
            self._store(index, block)
            return block
        finally:
            with self._ready:
                self._inflight.discard(index)
                self._ready.notify_all()

    def _decode_plane(self, index: int) -> np.ndarray:
        rows, cols = self._segment
        channels = 1 if self._planes > 1 else 3
        if self._counts[index] == 0 and self._empty_value is not None:
            return np.full((rows, cols, channels), self._empty_value, np.uint8)
        data = os.pread(self._fd, self._counts[index], self._offsets[index])
        what = f"{self._what}: segment {index}"
        if len(data) != self._counts[index]:
            raise CorruptSlideError(f"{what} is truncated")
        try:
            segment = None
            if self._jpeg:
                segment = strict_jpeg(
                    data,
                    what,
                    tables=self._decode_args.get("jpegtables"),
                    header=self._decode_args.get("jpegheader"),
                    photometric=self._photometric,
                    max_shape=self._segment,
                )
            if segment is None:
                with tifffile_warnings_as_errors(what):
                    segment = self._decode(data, index, **self._decode_args)[0]
        except CorruptSlideError:
            raise
        except Exception as exc:  # noqa: BLE001 - any codec failure means a damaged segment
            raise CorruptSlideError(f"{what} cannot be decoded ({exc!s:.200})") from exc
        if segment is None:
            raise CorruptSlideError(f"{what} has no data")
        segment = np.asarray(segment)
        row_size = cols * self._samples
        got = segment.size // row_size
        if segment.size % row_size or not 0 < got <= rows:
            raise CorruptSlideError(f"{what} decodes to {segment.shape}, not the segment size")
        return segment.reshape(got, cols, self._samples)[:, :, :channels]

    def _prefetch_raw(self, indices: list[int]) -> None:
        """Read uncompressed segments missing from the cache, one ``pread`` per contiguous run.

        Bio-Formats writes planar images as one-row strips stored back to back: a 256-row region
        is then one read per plane, decoded as one reshape (read-ahead), instead of 768 decodes.
        """
        with self._lock:
            missing = sorted(i for i in indices if i not in self._cache)
        if not missing or self._fd < 0:
            return
        runs: list[list[int]] = []
        for index in missing:
            if runs and index == runs[-1][-1] + 1 and all(
                self._offsets[index + p * self._plane_stride]
                == self._offsets[index - 1 + p * self._plane_stride]
                + self._counts[index - 1 + p * self._plane_stride]
                for p in range(self._planes)
            ):
                runs[-1].append(index)
            else:
                runs.append([index])
        for run in runs:
            self._read_raw_run(run)

    def _read_raw_run(self, run: list[int]) -> None:
        rows, cols = self._segment
        channels = 1 if self._planes > 1 else 3
        row_size = cols * self._samples
        planes = []
        for plane in range(self._planes):
            first, last = run[0] + plane * self._plane_stride, run[-1] + plane * self._plane_stride
            start = self._offsets[first]
            total = self._offsets[last] + self._counts[last] - start
            data = os.pread(self._fd, total, start)
            if len(data) != total or total % row_size:
                raise CorruptSlideError(
                    f"{self._what}: segments {first}-{last} hold {len(data)} bytes, not whole rows"
                )
            planes.append(np.frombuffer(data, np.uint8).reshape(-1, cols, self._samples)
                          [:, :, :channels])
        if len({plane.shape[0] for plane in planes}) != 1:
            raise CorruptSlideError(f"{self._what}: colour planes of segments {run[0]}- differ")
        band = planes[0] if self._planes == 1 else np.concatenate(planes, axis=2)
        position = 0
        for index in run:
            got = self._counts[index] // row_size
            if not 0 < got <= rows or self._counts[index] % row_size:
                raise CorruptSlideError(
                    f"{self._what}: segment {index} holds {self._counts[index]} bytes, "
                    "not whole rows"
                )
            if position + got > band.shape[0]:
                raise CorruptSlideError(f"{self._what}: segment {index} lies outside its run")
            self._store(index, band[position : position + got])
            position += got

    def _store(self, index: int, block: np.ndarray) -> None:
        with self._lock:
            self._cache[index] = block
            self._cached += block.nbytes
            while self._cached > self._cache_bytes and len(self._cache) > 2:
                self._cached -= self._cache.popitem(last=False)[1].nbytes

    def read(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        """Return the ``(height, width, 3)`` region at ``(row, col)`` (must lie inside the page)."""
        out = np.empty((height, width, 3), dtype=np.uint8)
        if height == 0 or width == 0:
            return out
        sh, sw = self._segment
        if self._raw:
            self._prefetch_raw([
                sr * self._grid_cols + sc
                for sr in range(row // sh, (row + height - 1) // sh + 1)
                for sc in range(col // sw, (col + width - 1) // sw + 1)
            ])
        for sr in range(row // sh, (row + height - 1) // sh + 1):
            for sc in range(col // sw, (col + width - 1) // sw + 1):
                block = self._segment_at(sr * self._grid_cols + sc)
                r0, c0 = sr * sh, sc * sw
                rs, re = max(row, r0), min(row + height, r0 + sh, self._shape[0])
                cs, ce = max(col, c0), min(col + width, c0 + sw)
                if re - r0 > block.shape[0]:
                    raise CorruptSlideError(
                        f"{self._what}: segment {sr * self._grid_cols + sc} holds "
                        f"{block.shape[0]} rows, {re - r0} needed"
                    )
                out[rs - row : re - row, cs - col : ce - col] = block[
                    rs - r0 : re - r0, cs - c0 : ce - c0
                ]
        return out

    def clear_cache(self) -> None:
        """Drop every decoded segment (the next reads decode from the file again)."""
        with self._lock:
            self._cache.clear()
            self._cached = 0

    def close(self) -> None:
        """Close the file descriptor."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
