"""Bounds on what a slide file may claim, so hostile files fail fast in bounded memory, and on
the µm/px a user may give (:func:`check_given_mpp`).

Real whole-slide images stay far inside these limits (the largest scanners write about
200,000 x 100,000 px per level, tiles of 256-4,096 px). A file claiming more is refused with a
documented error when it is opened, before any allocation or page walk proportional to the claim.
"""

from __future__ import annotations

from hemascope.errors import CorruptSlideError, InvalidInputError, UnsupportedFormatError

MAX_LEVEL_PIXELS = 2**36
"""Most pixels one level may have (6.9e10, e.g. 262,144 x 262,144)."""

MAX_CHUNK_BYTES = 2**28
"""Most decoded bytes one tile, strip or zarr chunk may have (256 MiB)."""

MAX_CHUNKS_PER_LEVEL = 2**24
"""Most tiles/chunks one level may be split into (16.8 million)."""

MAX_LEVELS = 64
"""Most pyramid levels (a 2x pyramid of 2**36 pixels needs 19)."""

MAX_PAGES = 100_000
"""Most IFDs a TIFF may chain (walked when the file is opened)."""

GIVEN_MPP_RANGE = (0.01, 2.0)
"""µm/px a user may give for pictures of blood cells: from a 100x objective on a camera without
binning (about 0.02) to a 5x scan (2). Outside it a white cell spans a pixel or two (or thousands:
a picture resampled to the model's scale would not fit in memory), or the number is in other
units (nm/px, px/µm)."""


def check_given_mpp(mpp: object, what: str = "mpp") -> float:
    """A µm/px given by the user, as a float, when it lies in :data:`GIVEN_MPP_RANGE`.

    Raises
    ------
    InvalidInputError
        Not a number in the range; the message says what was expected.
    """
    lo, hi = GIVEN_MPP_RANGE
    try:
        value = float(mpp)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInputError(f"{what} must be a number of µm per pixel, got {mpp!r}") from None
    if not lo <= value <= hi:  # also NaN
        raise InvalidInputError(
            f"{what} {value:g} µm/px is no microscope pixel size for blood cells (expected {lo:g}-{hi:g}; "
            "0.1-0.5 is typical): is it in nm/px or px/µm?"
        )
    return value


def check_level_geometry(
    shape: tuple[int, ...], chunks: tuple[int, ...], itemsize: int, what: str
) -> None:
    """Refuse a level whose claimed size or chunking is absurd.

    Parameters
    ----------
    shape
        The level's array shape (any number of axes).
    chunks
        Its chunk (tile/strip) shape, same length.
    itemsize
        Bytes per sample.
    what
        Description used in error messages.

    Raises
    ------
    CorruptSlideError
        Zero or negative chunk sizes, or a chunk/axis count that does not match the shape.
    UnsupportedFormatError
        More than :data:`MAX_LEVEL_PIXELS` pixels, chunks over :data:`MAX_CHUNK_BYTES`, or more
        than :data:`MAX_CHUNKS_PER_LEVEL` chunks.
    """
    if len(chunks) != len(shape):
        raise CorruptSlideError(f"{what}: {len(chunks)}-D chunks for a {len(shape)}-D array")
    if any(int(c) <= 0 for c in chunks):
        raise CorruptSlideError(f"{what}: chunk shape {tuple(chunks)} has a zero or negative size")
    if any(int(s) < 0 for s in shape):
        raise CorruptSlideError(f"{what}: negative size {tuple(shape)}")
    pixels = 1
    for s in shape:
        pixels *= int(s)
    if pixels > MAX_LEVEL_PIXELS * 4:  # samples, not pixels: allow RGBA
        raise UnsupportedFormatError(
            f"{what}: claims {tuple(shape)} samples, more than hemascope reads "
            f"({MAX_LEVEL_PIXELS:.3g} pixels per level)"
        )
    chunk_bytes = itemsize
    n_chunks = 1
    for s, c in zip(shape, chunks, strict=True):
        chunk_bytes *= int(c)  # decoders allocate whole chunks, even past the edge
        n_chunks *= -(-int(s) // int(c))
    if chunk_bytes > MAX_CHUNK_BYTES:
        raise UnsupportedFormatError(
            f"{what}: chunks of {tuple(chunks)} ({chunk_bytes / 2**20:.0f} MiB decoded) exceed "
            f"the {MAX_CHUNK_BYTES // 2**20} MiB limit"
        )
    if n_chunks > MAX_CHUNKS_PER_LEVEL:
        raise UnsupportedFormatError(
            f"{what}: {n_chunks} chunks in one level exceed the limit of {MAX_CHUNKS_PER_LEVEL}"
        )
