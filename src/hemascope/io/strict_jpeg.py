"""Strict JPEG decoding: data that libjpeg decodes only "with warnings" is corrupt, not pixels.

libjpeg reports damaged entropy-coded data (``Corrupt JPEG data: premature end of data segment``,
bad Huffman codes, lost restart markers) as *warnings* and fills what it could not decode with
grey; imagecodecs (and so tifffile) ignores them. OpenSlide treats them as errors, and so does
hemascope: every JPEG tile or strip goes through :func:`strict_jpeg` first.

With `simplejpeg <https://pypi.org/project/simplejpeg/>`_ installed (a dependency of hemascope)
libjpeg-turbo's warnings are errors: when the JPEG's own colour space
is the one the TIFF declares, the tile is decoded there in one pass, otherwise it is checked at
1/8 scale (all entropy data is still decoded) and decoded by tifffile as before. Without it, a
fallback detects the commonest damage (entropy data ending before the image does) by decoding
twice with different padding: libjpeg zero-fills missing data, so an image that needed more data
than the tile holds decodes differently.
"""

from __future__ import annotations

import numpy as np

from hemascope.errors import CorruptSlideError

_SOI, _EOI = b"\xff\xd8", b"\xff\xd9"


def merge_tables(data: bytes, tables: bytes | None, header: bytes | None) -> bytes:
    """One self-contained JPEG stream from a TIFF segment and its shared tables/header.

    Parameters
    ----------
    data
        The segment's bytes (an abbreviated JPEG stream).
    tables
        The page's JPEGTables (SOI, DQT/DHT, EOI) or ``None``.
    header
        tifffile's synthetic header for an NDPI restart interval, or ``None``. The interval's
        data is the entropy-coded segment up to the next restart marker, without an end marker:
        the trailing restart marker is dropped and an end marker appended, so that a complete
        interval decodes without warnings (OpenSlide assembles NDPI tiles the same way).

    Returns
    -------
    bytes
        A JPEG stream a standalone decoder can read.
    """
    if header:
        body = bytes(data)
        if len(body) >= 2 and body[-2] == 0xFF and 0xD0 <= body[-1] <= 0xD7:
            body = body[:-2]
        return bytes(header) + body + (b"" if body.endswith(_EOI) else _EOI)
    if tables and len(tables) > 4 and bytes(data[:2]) == _SOI:
        return bytes(tables[:-2]) + bytes(data[2:])
    return bytes(data)


def strict_jpeg(
    data: bytes,
    what: str,
    *,
    tables: bytes | None = None,
    header: bytes | None = None,
    photometric: int | None = None,
    max_shape: tuple[int, int] | None = None,
) -> np.ndarray | None:
    """Check (and where possible decode) one JPEG segment strictly.

    Parameters
    ----------
    data
        The segment's bytes.
    what
        Description used in error messages (``"slide.svs level 0 tile 12"``).
    tables, header
        See :func:`merge_tables`.
    photometric
        The TIFF photometric interpretation of a 3-sample chunky segment (2 RGB, 6 YCbCr), or
        ``None`` (other layouts: check only). tifffile lets libjpeg detect the colour space of
        YCbCr data and forces RGB for RGB data without a JFIF marker; the segment is decoded here
        only when that gives the same colour space.
    max_shape
        The segment's ``(rows, cols)`` in the file's geometry: a JPEG header claiming more is
        refused before anything is allocated (a decompression bomb).

    Returns
    -------
    numpy.ndarray or None
        The decoded ``(rows, cols, 3)`` uint8 RGB segment when it could be decoded here exactly as
        tifffile would; ``None`` when the data is clean but must be decoded by the caller.

    Raises
    ------
    CorruptSlideError
        libjpeg reported corrupt data, the segment is not a decodable JPEG, or its header claims
        more than ``max_shape``.
    """
    stream = merge_tables(data, tables, header)
    try:
        import simplejpeg
    except ImportError:
        _check_size(_header_shape(stream, what), max_shape, what)
        _check_by_padding(stream, what)
        return None
    try:
        if header and photometric == 6:  # NDPI: tifffile wrote this header with the interval size
            return simplejpeg.decode_jpeg(stream, colorspace="RGB", strict=True)
        rows, cols, space, _ = simplejpeg.decode_jpeg_header(stream)
        _check_size((rows, cols), max_shape, what)
        if photometric == 6 or (photometric == 2 and space == "RGB"):  # tifffile's choice too
            return simplejpeg.decode_jpeg(stream, colorspace="RGB", strict=True)
        simplejpeg.decode_jpeg(stream, colorspace="GRAY", min_factor=8, strict=True)
    except (ValueError, RuntimeError) as exc:
        raise CorruptSlideError(f"{what}: corrupt JPEG data ({exc!s:.200})") from exc
    return None


def _header_shape(stream: bytes, what: str) -> tuple[int, int]:
    from tifffile import tifffile as tf

    try:
        shape = tf.jpeg_shape(stream)
    except Exception as exc:  # noqa: BLE001 - no parsable frame header
        raise CorruptSlideError(f"{what}: corrupt JPEG header ({exc!s:.200})") from exc
    return int(shape[1]), int(shape[2])


def _check_size(shape: tuple[int, int], max_shape: tuple[int, int] | None, what: str) -> None:
    if max_shape is not None and (shape[0] > max_shape[0] or shape[1] > max_shape[1]):
        raise CorruptSlideError(
            f"{what}: the JPEG claims {shape[0]} x {shape[1]} px in a {max_shape[0]} x "
            f"{max_shape[1]} segment"
        )


def _check_by_padding(stream: bytes, what: str) -> None:
    import imagecodecs

    if not stream.endswith(_EOI):
        raise CorruptSlideError(f"{what}: JPEG data is truncated (no end marker)")
    try:
        plain = imagecodecs.jpeg8_decode(stream)
        padded = imagecodecs.jpeg8_decode(stream[:-2] + b"\xff\x00" * 64 + _EOI)
    except Exception as exc:  # noqa: BLE001 - any libjpeg error means damaged data
        raise CorruptSlideError(f"{what}: corrupt JPEG data ({exc!s:.200})") from exc
    if not np.array_equal(plain, padded):
        raise CorruptSlideError(
            f"{what}: corrupt JPEG data (premature end of data segment)"
        )
