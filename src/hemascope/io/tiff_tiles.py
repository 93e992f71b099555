"""Direct, validated tile access to tiled TIFF pages: the fast path of :meth:`Slide.read_region`.

tifffile zero-fills tiles whose offset or byte count is 0 and only logs a warning; a truncated file
yields short reads. :class:`TiledPageReader` checks every tile's offset and byte count against the
file size when a slide is opened, and turns decode failures (and tifffile's warnings) into
:class:`~hemascope.errors.CorruptSlideError` when tiles are read.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from hemascope.errors import CorruptSlideError, SlideError
from hemascope.io.limits import MAX_CHUNK_BYTES
from hemascope.io.strict_jpeg import strict_jpeg


class _RecordCapture(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def tifffile_warnings_as_errors(
    what: str, level: int = logging.WARNING, contains: str = ""
) -> Iterator[None]:
    """Raise :class:`CorruptSlideError` if tifffile logs at ``level`` or above inside the block.

    tifffile reports damaged data (missing tiles it zero-fills, undecodable segments, IFDs it
    skips) through its logger rather than exceptions; inside this block such a report becomes an
    error.

    Parameters
    ----------
    what
        Description of the data being read, used in the error message.
    level
        Lowest logging level that counts (``logging.ERROR`` while parsing a file's structure,
        where tifffile also warns about harmless oddities).
    contains
        Count only messages containing this text (default: every message).
    """
    logger = logging.getLogger("tifffile")
    capture = _RecordCapture(level)
    logger.addHandler(capture)
    try:
        yield
    finally:
        logger.removeHandler(capture)
    messages = [m for m in capture.messages if contains in m]
    if messages:
        raise CorruptSlideError(f"{what}: {messages[0][:200]}")


def check_segments(
    page: Any, file_size: int, what: str, keyframe: Any = None, allow_empty: bool = False
) -> None:
    """Validate a page's strip/tile offsets and byte counts against the file size.

    Parameters
    ----------
    page
        A tifffile ``TiffPage`` or ``TiffFrame``.
    file_size
        Size of the file in bytes.
    what
        Description used in error messages (e.g. ``"level 0"``).
    keyframe
        The ``TiffPage`` holding the geometry of a ``TiffFrame`` (default: ``page`` itself).
    allow_empty
        Accept segments with offset and byte count both 0 (Philips TIFFs leave tiles outside the
        scanned area empty; they are read as white background, as OpenSlide does).

    Raises
    ------
    CorruptSlideError
        If a segment is missing (offset or byte count 0), lies beyond the end of the file, is
        larger than :data:`~hemascope.io.limits.MAX_CHUNK_BYTES`, or the number of segments does
        not match the image geometry.
    """
    offsets = np.asarray(page.dataoffsets, dtype=np.int64)
    counts = np.asarray(page.databytecounts, dtype=np.int64)
    if offsets.size == 0 or offsets.shape != counts.shape:
        raise CorruptSlideError(
            f"{what}: no image data (offsets {offsets.size}, counts {counts.size})"
        )
    geometry = keyframe if keyframe is not None else page
    if geometry.is_tiled:
        expected = -(-geometry.imagelength // geometry.tilelength) * -(
            -geometry.imagewidth // geometry.tilewidth
        )
        if geometry.planarconfig == 2:
            expected *= geometry.samplesperpixel
        if offsets.size != expected:
            raise CorruptSlideError(f"{what}: {offsets.size} tiles, the geometry needs {expected}")
    empty = (offsets == 0) & (counts == 0) if allow_empty else np.zeros(offsets.shape, bool)
    if empty.all():
        raise CorruptSlideError(f"{what}: every tile is empty")
    missing = int(np.count_nonzero(((offsets <= 0) | (counts <= 0)) & ~empty))
    if missing:
        raise CorruptSlideError(
            f"{what}: {missing} tile(s)/strip(s) have no data (offset or size 0)"
        )
    if int(counts.max()) > MAX_CHUNK_BYTES:
        raise CorruptSlideError(
            f"{what}: a tile/strip claims {int(counts.max())} bytes (limit {MAX_CHUNK_BYTES})"
        )
    beyond = int(np.count_nonzero(offsets + counts > file_size))
    if beyond:
        raise CorruptSlideError(
            f"{what}: {beyond} tile(s)/strip(s) extend past the end of the file ({file_size} bytes)"
        )


_JPEG = 7
_EOI = b"\xff\xd9"


def install_checked_decode(page: Any, what: str) -> None:
    """Make ``page.decode`` refuse missing and truncated JPEG segments.

    libjpeg decodes a truncated or damaged JPEG with only a warning, filling the rest of the tile
    with grey, and tifffile zero-fills a segment without data. The wrapper (used by tifffile's zarr
    store) raises :class:`CorruptSlideError` instead: a JPEG segment must end with the EOI marker
    and decode without warnings (:func:`~hemascope.io.strict_jpeg.strict_jpeg`).

    Parameters
    ----------
    page
        A tifffile ``TiffPage`` (its cached ``decode`` is replaced on this instance only).
    what
        Description used in error messages.
    """
    original = page.decode
    jpeg = page.compression == _JPEG and page.bitspersample == 8
    max_shape = (
        (int(page.tilelength), int(page.tilewidth))
        if page.is_tiled
        else (int(page.rowsperstrip), int(page.imagewidth))
    )

    def checked_decode(data: bytes | None, index: int, **kwargs: Any) -> Any:
        if data is None:
            raise CorruptSlideError(f"{what}: segment {index} has no data")
        if jpeg:
            if not page.is_ndpi and not bytes(data).rstrip(b"\x00").endswith(_EOI):
                raise CorruptSlideError(
                    f"{what}: JPEG segment {index} is truncated (no end marker)"
                )
            strict_jpeg(
                data,
                f"{what} segment {index}",
                tables=kwargs.get("jpegtables"),
                header=kwargs.get("jpegheader"),
                max_shape=max_shape,
            )
        return original(data, index, **kwargs)

    page.__dict__["decode"] = checked_decode


def is_fast_readable(page: Any) -> bool:
    """Whether :class:`TiledPageReader` can serve ``page`` (tiled, chunky, unsigned 8-bit RGB(A), 2-D)."""
    return bool(
        page.is_tiled
        and not page.is_ndpi
        and page.planarconfig == 1
        and page.imagedepth == 1
        and page.tiledepth == 1
        and page.samplesperpixel in (3, 4)
        and page.bitspersample == 8
        and page.sampleformat == 1
        and page.photometric in (2, 6)  # RGB, YCbCr (decoded to RGB)
    )


class TiledPageReader:
    """Read regions of one tiled TIFF page by decoding only the tiles they touch.

    Reads use ``os.pread`` on a private file descriptor, so dask threads can decode in parallel.
    A small LRU cache of decoded tiles serves overlapping requests (crops around nearby cells).

    Parameters
    ----------
    path
        The TIFF file.
    page
        The tifffile ``TiffPage`` of the level (must satisfy :func:`is_fast_readable`).
    what
        Description used in error messages.
    cache_tiles
        Number of decoded tiles kept.
    empty_value
        Value of tiles stored with offset and byte count 0 (Philips background), or ``None`` when
        such tiles are errors (:func:`check_segments` refuses them when the slide is opened).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        page: Any,
        what: str,
        cache_tiles: int = 32,
        empty_value: int | None = None,
    ):
        self._page = page
        self._empty_value = empty_value
        self._jpeg = page.compression == _JPEG
        self._photometric = int(page.photometric) if page.samplesperpixel == 3 else None
        self._what = what
        self._shape = (int(page.imagelength), int(page.imagewidth))
        self._tile = (int(page.tilelength), int(page.tilewidth))
        self._ntc = -(-self._shape[1] // self._tile[1])
        self._offsets = np.asarray(page.dataoffsets, dtype=np.int64).tolist()
        self._counts = np.asarray(page.databytecounts, dtype=np.int64).tolist()
        self._decode = page.decode
        self._decode_args: dict[str, Any] = {}
        if page.jpegtables is not None:
            self._decode_args["jpegtables"] = page.jpegtables
        if page.jpegheader is not None:
            self._decode_args["jpegheader"] = page.jpegheader
        self._fd = os.open(os.fspath(path), os.O_RDONLY)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_size = cache_tiles
        self._lock = threading.Lock()

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(rows, cols, 3)``: the page as an RGB array (for :func:`dask.array.from_array`)."""
        return (*self._shape, 3)

    @property
    def chunks(self) -> tuple[int, int, int]:
        """The tile shape ``(tile_rows, tile_cols, 3)``."""
        return (*self._tile, 3)

    dtype = np.dtype(np.uint8)
    ndim = 3

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        """Numpy-style slicing with slices (what dask asks for: one tile-aligned chunk)."""
        key = (key if isinstance(key, tuple) else (key,)) + (slice(None),) * 3
        r0, r1, rstep = key[0].indices(self._shape[0])
        c0, c1, cstep = key[1].indices(self._shape[1])
        block = self.read(r0, c0, max(r1 - r0, 0), max(c1 - c0, 0))
        return block[::rstep, ::cstep, key[2]]

    def _tile_at(self, index: int) -> np.ndarray:
        with self._lock:
            cached = self._cache.get(index)
            if cached is not None:
                self._cache.move_to_end(index)
                return cached
        if self._fd < 0:
            raise SlideError(f"{self._what}: the slide was closed")
        if self._counts[index] == 0 and self._empty_value is not None:
            tile = np.full((*self._tile, 3), self._empty_value, np.uint8)
        else:
            tile = self._decode_tile(index)
        with self._lock:
            self._cache[index] = tile
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return tile

    def _decode_tile(self, index: int) -> np.ndarray:
        data = os.pread(self._fd, self._counts[index], self._offsets[index])
        if len(data) != self._counts[index]:
            raise CorruptSlideError(f"{self._what}: tile {index} is truncated")
        what = f"{self._what}: tile {index}"
        try:
            segment = None
            if self._jpeg:
                segment = strict_jpeg(
                    data,
                    what,
                    tables=self._decode_args.get("jpegtables"),
                    photometric=self._photometric,
                    max_shape=self._tile,
                )
            if segment is None:
                with tifffile_warnings_as_errors(what):
                    segment = self._decode(data, index, **self._decode_args)[0]
        except CorruptSlideError:
            raise
        except Exception as exc:  # noqa: BLE001 - any codec failure means a damaged tile
            raise CorruptSlideError(f"{what} cannot be decoded ({exc!s:.200})") from exc
        if segment is None:
            raise CorruptSlideError(f"{what} has no data")
        segment = np.asarray(segment)
        pixels = self._tile[0] * self._tile[1]
        if segment.size < pixels * 3 or segment.size % pixels:
            raise CorruptSlideError(f"{what} decodes to {segment.shape}, not the tile size")
        return segment.reshape(self._tile[0], self._tile[1], -1)[..., :3]

    def read(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        """Return the ``(height, width, 3)`` region at ``(row, col)`` (must lie inside the page)."""
        out = np.empty((height, width, 3), dtype=np.uint8)
        if height == 0 or width == 0:
            return out
        th, tw = self._tile
        for tr in range(row // th, (row + height - 1) // th + 1):
            for tc in range(col // tw, (col + width - 1) // tw + 1):
                tile = self._tile_at(tr * self._ntc + tc)
                r0, c0 = tr * th, tc * tw
                rs, re = max(row, r0), min(row + height, r0 + th)
                cs, ce = max(col, c0), min(col + width, c0 + tw)
                out[rs - row : re - row, cs - col : ce - col] = tile[
                    rs - r0 : re - r0, cs - c0 : ce - c0
                ]
        return out

    def close(self) -> None:
        """Close the file descriptor."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
