"""Validation of TIFF segments (tiles and strips): offsets, sizes, strict decoding.

tifffile zero-fills tiles whose offset or byte count is 0 and only logs a warning; a truncated file
yields short reads; libjpeg decodes damaged data with only a warning. :func:`check_segments`
checks every segment's offset and byte count against the file size when a slide is opened, and
:func:`install_checked_decode` makes decoding strict; :mod:`hemascope.io.segment_reader` reads
regions through them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from hemascope.errors import CorruptSlideError
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
