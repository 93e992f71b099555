"""Reader for the TIFF family: pyramidal TIFF/BigTIFF, OME-TIFF, Aperio SVS, Hamamatsu NDPI.

Levels are dask arrays whose chunks are the file's tiles (strips and other small segments grouped
to at least 256 px). Single-page RGB levels — tiles (what every whole-slide scanner and our writer
produce), strips, planar layouts, NDPI restart intervals — are served by
:class:`~hemascope.io.segment_reader.SegmentReader`: validated ``os.pread`` + strict decode per
segment, with no zarr or file lock in between (2-3x faster through dask than tifffile's zarr
store, see BENCHMARKS.md); it is also the fast path of :meth:`Slide.read_region`. Multi-page
levels and odd layouts go through tifffile's ``aszarr`` store opened with zarr 3 — a multiscales
group or a single array, the two layouts tifffile writes. Opening reads only the IFDs and tile
tables, never pixels.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import dask.array as da

from hemascope.errors import CorruptSlideError, HemascopeError, UnsupportedFormatError
from hemascope.io.lazy import guarded_dask, lazy_pyramid
from hemascope.io.limits import MAX_LEVELS, MAX_PAGES, check_level_geometry
from hemascope.io.segment_reader import SegmentReader, is_fast_readable
from hemascope.io.slide import Slide
from hemascope.io.tiff_metadata import compression_name, file_metadata
from hemascope.io.tiff_tiles import (
    check_segments,
    install_checked_decode,
    tifffile_warnings_as_errors,
)

PHILIPS_BACKGROUND = 255
"""Value of the tiles a Philips TIFF leaves empty (outside the scanned area): white glass."""

def _rgb_view(level: da.Array, axes: str, what: str) -> da.Array:
    """Reorder a tifffile level to ``(rows, cols, 3)``; refuse what is not 8-bit RGB(A)."""
    if level.dtype != "uint8":
        raise UnsupportedFormatError(
            f"{what}: {level.dtype} pixels; hemascope reads 8-bit RGB only"
        )
    if axes.endswith("YXS") and len(axes) == 3 and level.shape[2] in (3, 4):
        return level if level.shape[2] == 3 else level[..., :3]  # no needless graph layer
    if axes in ("SYX", "CYX") and level.shape[0] in (3, 4):
        return level[:3].transpose(1, 2, 0)
    raise UnsupportedFormatError(
        f"{what}: axes {axes} shape {tuple(level.shape)}; hemascope reads RGB images only"
    )


def _zarr_levels(series: Any) -> list[Any]:
    """Open tifffile's ``aszarr`` store with zarr 3: a multiscales group or a single array."""
    import zarr

    node = zarr.open(series.aszarr(), mode="r")
    if isinstance(node, zarr.Array):
        return [node]
    attrs: dict[str, Any] = dict(node.attrs)  # OME JSON: checked as it is used
    multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    if multiscales:
        paths = [d["path"] if isinstance(d, dict) else str(d) for d in multiscales[0]["datasets"]]
    else:
        paths = sorted(node.array_keys(), key=int)
    return [node[p] for p in paths]


def _segment_shape(page: Any, level: Any) -> tuple[int, ...]:
    """The shape of one stored segment (tile or strip) in the axes of ``level.shape``."""
    shape = [1] * len(level.shape)
    rows = int(page.tilelength) if page.is_tiled else int(min(page.rowsperstrip, page.imagelength))
    cols = int(page.tilewidth) if page.is_tiled else int(page.imagewidth)
    axes = level.axes
    for axis, size in (("Y", rows), ("X", cols), ("S", int(page.samplesperpixel))):
        if axis in axes:
            shape[axes.index(axis)] = size
    return tuple(shape)


def open_tiff(path: Path) -> Slide:
    """Open a TIFF-family slide lazily.

    Parameters
    ----------
    path
        An existing TIFF, BigTIFF, OME-TIFF, SVS or NDPI file.

    Returns
    -------
    Slide
        Levels as dask arrays (chunks = tiles); ``format`` one of ``"svs"``, ``"ndpi"``,
        ``"ome-tiff"``, ``"tiff"``. A single-level file gets a lazily computed pyramid.

    Raises
    ------
    CorruptSlideError
        Unparsable structure, an IFD chain that loops, missing or out-of-file tiles, zero-size
        levels.
    UnsupportedFormatError
        Pixels that are not 8-bit RGB, a compression no installed codec decodes, or claimed sizes
        beyond :mod:`hemascope.io.limits`.
    """
    import tifffile

    file_size = path.stat().st_size
    try:
        with tifffile_warnings_as_errors(f"{path.name}: damaged TIFF", logging.ERROR):
            tif = tifffile.TiffFile(path)
    except CorruptSlideError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse failure of a TIFF header is corruption
        raise CorruptSlideError(f"{path.name}: not a readable TIFF ({exc!s:.200})") from exc
    try:
        _walk_pages(path, tif)
    except BaseException:
        tif.close()
        raise
    closers: list[Any] = [tif]
    try:
        # tifffile logs (at ERROR) and skips IFDs it cannot parse: a silently shorter pyramid
        with tifffile_warnings_as_errors(f"{path.name}: damaged TIFF", logging.ERROR):
            return _open_tiff(path, tif, file_size, closers)
    except HemascopeError:
        _close_all(closers)
        raise
    except Exception as exc:  # noqa: BLE001 - damaged IFDs surface as many exception types
        _close_all(closers)
        raise CorruptSlideError(f"{path.name}: damaged TIFF structure ({exc!s:.200})") from exc


def _walk_pages(path: Path, tif: Any) -> None:
    """Walk the whole IFD chain once: a chain that loops is damage, not an endless series.

    tifffile detects the loop while counting pages (and logs it), but its lazy page iterator used
    by ``series`` can spin forever on the same chain; counting first makes the chain finite.
    """
    with tifffile_warnings_as_errors(f"{path.name}: damaged TIFF", logging.WARNING, "circular"):
        count = len(tif.pages)
    if count > MAX_PAGES:
        raise UnsupportedFormatError(f"{path.name}: {count} IFDs (at most {MAX_PAGES} are read)")


def _check_compression(level: Any, what: str) -> None:
    import tifffile

    code = int(level.keyframe.compression)
    if code not in tifffile.TIFF.DECOMPRESSORS:
        raise UnsupportedFormatError(
            f"{what}: unsupported compression {compression_name(level.keyframe)} ({code})"
        )


def _levels_of(
    path: Path, series: Any, file_size: int, closers: list[Any], *, philips: bool
) -> list[da.Array]:
    """The 8-bit levels of ``series``, each a dask array reading the file lazily."""
    arrays: list[Any] = []
    stat = path.stat()
    levels: list[da.Array] = []
    for index, level in enumerate(series.levels):
        what = f"{path.name} level {index}"
        if 0 in tuple(level.shape):
            raise CorruptSlideError(f"{what}: zero-size level {tuple(level.shape)}")
        _check_compression(level, what)
        page = level.keyframe
        check_level_geometry(tuple(level.shape), _segment_shape(page, level), 1, what)
        for other in level.pages:
            if other is not None:
                check_segments(other, file_size, what, keyframe=page, allow_empty=philips)
        install_checked_decode(page, what)
        token = (str(path), stat.st_mtime_ns, stat.st_size, index)
        if list(level.pages) == [page] and level.axes in ("YXS", "SYX") and is_fast_readable(page):
            # tiles, strips, planes, NDPI intervals: chunks decode straight from the file
            background = PHILIPS_BACKGROUND if philips else None
            reader = SegmentReader(path, page, what, empty_value=background)
            closers.append(reader)
            lazy = guarded_dask(reader, reader.chunks, what, token, region_reader=reader)
            levels.append(lazy)
            continue
        # multi-page levels and other layouts: tifffile's zarr store decodes them
        if not arrays:
            arrays = _zarr_levels(series)
            if len(arrays) != len(series.levels):
                raise CorruptSlideError(
                    f"{path.name}: {len(arrays)} zarr levels, {len(series.levels)} expected"
                )
        array = arrays[index]
        chunks = tuple(int(c) for c in array.chunks)
        lazy = guarded_dask(array, chunks, what, token, tifffile_backed=True)
        levels.append(_rgb_view(lazy, level.axes, what))
    return levels


#: A single-level TIFF of more than 8 bits per sample up to this many pixels is read whole and
#: brought to 8 bits (camera pictures); larger deep files are refused (no lazy 16-bit path).
DEEP_PICTURE_MAX_PIXELS = 2**26


def _is_deep_picture(series: Any, page: Any) -> bool:
    rows, cols = int(page.imagelength), int(page.imagewidth)
    return (
        int(page.bitspersample) > 8
        and page.dtype is not None
        and page.dtype.kind == "u"
        and len(series.levels) == 1
        and rows * cols <= DEEP_PICTURE_MAX_PIXELS
    )


def _deep_picture_level(path: Path, series: Any, closers: list[Any]) -> da.Array:
    """A deep (e.g. 12-bit camera in 16-bit) single-level RGB TIFF as 8-bit RGB, decoded whole
    once, on first pixel access (:class:`~hemascope.io.read_image.FlatImage`)."""
    from hemascope.io.read_image import FlatImage, deep_samples_to_rgb

    page = series.levels[0].keyframe
    flat = FlatImage(path, lambda _: deep_samples_to_rgb(series.asarray(), path.name))
    closers.append(flat)
    return flat.level(int(page.imagelength), int(page.imagewidth))


def _close_all(closers: list[Any]) -> None:
    for closer in closers:
        closer.close()


def _open_tiff(path: Path, tif: Any, file_size: int, closers: list[Any]) -> Slide:
    if not tif.series:
        raise CorruptSlideError(f"{path.name}: the TIFF holds no image")
    for other in tif.series:
        if 0 in tuple(other.shape):
            raise CorruptSlideError(
                f"{path.name}: zero-size image {tuple(other.shape)} in the file"
            )
    series = tif.series[0]
    page0 = series.levels[0].keyframe
    if page0.photometric not in (2, 6):  # RGB, YCbCr
        kind = getattr(page0.photometric, "name", f"photometric {int(page0.photometric)}")
        raise UnsupportedFormatError(f"{path.name}: {kind} image; hemascope reads RGB images only")
    fmt, mpp, objective, extra = file_metadata(tif, page0)
    if _is_deep_picture(series, page0):
        _check_compression(series.levels[0], path.name)
        levels = [_deep_picture_level(path, series, closers)]
        extra = {**extra, "bits_per_sample": int(page0.bitspersample)}
    elif len(series.levels) > MAX_LEVELS:
        raise UnsupportedFormatError(f"{path.name}: {len(series.levels)} pyramid levels")
    else:
        levels = _levels_of(path, series, file_size, closers, philips=fmt == "philips-tiff")
    tile = (int(page0.tilelength), int(page0.tilewidth)) if page0.is_tiled else None
    if len(levels) == 1:
        levels = lazy_pyramid(levels[0], tile[1] if tile else 512)
    metadata = {
        "tile_size": list(tile) if tile else None,
        "compression": compression_name(page0),
        "series": series.name,
        "pyramid": "file" if len(series.levels) > 1 else "computed",
        **extra,
    }
    slide = Slide(
        levels=levels,
        mpp=mpp,
        path=path,
        format=fmt,
        objective_power=objective,
        metadata=metadata,
        mpp_source="file" if mpp is not None else None,
    )
    slide._closers.extend(reversed(closers))
    return slide
