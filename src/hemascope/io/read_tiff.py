"""Reader for the TIFF family: pyramidal TIFF/BigTIFF, OME-TIFF, Aperio SVS, Hamamatsu NDPI.

Levels are dask arrays whose chunks are the file's tiles or strips. Regular tiled RGB levels (what
every whole-slide scanner and our writer produce) are served by :class:`TiledPageReader`: validated
``os.pread`` + decode per tile, with no zarr or file lock in between (2-3x faster through dask than
tifffile's zarr store, see BENCHMARKS.md); it is also the fast path of
:meth:`Slide.read_region`. Every other layout (strips, NDPI, planar RGB, multi-page levels) goes
through tifffile's ``aszarr`` store opened with zarr 3 — a multiscales group or a single array,
the two layouts tifffile writes. Opening reads only the IFDs and tile tables, never pixels.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import dask.array as da

from hemascope.errors import CorruptSlideError, HemascopeError, UnsupportedFormatError
from hemascope.io.lazy import guarded_dask, lazy_pyramid
from hemascope.io.slide import Slide
from hemascope.io.tiff_tiles import (
    TiledPageReader,
    check_segments,
    install_checked_decode,
    is_fast_readable,
    tifffile_warnings_as_errors,
)

_UNIT_TO_UM = {"pm": 1e-6, "nm": 1e-3, "µm": 1.0, "um": 1.0, "mm": 1e3, "cm": 1e4, "m": 1e6}
PLAUSIBLE_MPP = (0.01, 50.0)
"""µm/px outside this range (e.g. 72 dpi screen resolution) is treated as unknown."""


def _plausible(mpp: float | None) -> float | None:
    if mpp is None or not PLAUSIBLE_MPP[0] <= mpp <= PLAUSIBLE_MPP[1]:
        return None
    return float(mpp)


def _resolution_mpp(page: Any) -> float | None:
    import tifffile

    if page.resolutionunit in (tifffile.RESUNIT.NONE, None) or 282 not in page.tags:
        return None
    try:
        px_per_um = page.get_resolution(tifffile.RESUNIT.MICROMETER)[0]
    except Exception:  # noqa: BLE001 - odd resolution tags mean "unknown"
        return None
    return _plausible(1.0 / px_per_um) if px_per_um and px_per_um > 0 else None


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) else value


def _ome_metadata(tif: Any) -> tuple[float | None, float | None, dict[str, Any]]:
    import tifffile

    ome = tifffile.xml2dict(tif.ome_metadata).get("OME", {})
    pixels = _first(ome.get("Image", {})).get("Pixels", {})
    mpp = None
    if "PhysicalSizeX" in pixels:
        unit = pixels.get("PhysicalSizeXUnit", "µm")
        mpp = _plausible(float(pixels["PhysicalSizeX"]) * _UNIT_TO_UM.get(unit, float("nan")))
    objective = _first(_first(ome.get("Instrument", {})).get("Objective", {})).get(
        "NominalMagnification"
    )
    name = _first(ome.get("Image", {})).get("Name")
    return mpp, (float(objective) if objective else None), {"ome_name": name}


def _file_metadata(tif: Any, page: Any) -> tuple[str, float | None, float | None, dict[str, Any]]:
    """Format name, µm/px, objective power and extra metadata from the file's own tags."""
    from tifffile import tifffile as tf

    extra: dict[str, Any] = {"bigtiff": bool(tif.is_bigtiff)}
    mpp, objective = None, None
    if tif.is_svs:
        fmt = "svs"
        desc = tf.svs_description_metadata(page.description)
        mpp = _plausible(float(desc["MPP"])) if "MPP" in desc else None
        objective = float(desc["AppMag"]) if "AppMag" in desc else None
        extra["aperio"] = {k: v for k, v in desc.items() if isinstance(v, str | int | float)}
    elif tif.is_ndpi:
        fmt = "ndpi"
        tags = page.ndpi_tags or {}
        objective = float(tags["Magnification"]) if tags.get("Magnification") else None
    elif tif.is_ome:
        fmt = "ome-tiff"
        mpp, objective, more = _ome_metadata(tif)
        extra.update(more)
    else:
        fmt = "tiff"
        if page.description:
            extra["description"] = page.description[:1000]
    if mpp is None:
        mpp = _resolution_mpp(page)
    return fmt, mpp, objective, extra


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
    attrs = dict(node.attrs)
    multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    if multiscales:
        paths = [d["path"] if isinstance(d, dict) else str(d) for d in multiscales[0]["datasets"]]
    else:
        paths = sorted(node.array_keys(), key=int)
    return [node[p] for p in paths]


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
        Unparsable structure, missing or out-of-file tiles, zero-size levels.
    UnsupportedFormatError
        Pixels that are not 8-bit RGB.
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
        raise UnsupportedFormatError(
            f"{path.name}: {page0.photometric.name} image; hemascope reads RGB images only"
        )
    fmt, mpp, objective, extra = _file_metadata(tif, page0)
    arrays: list[Any] = []
    stat = path.stat()
    levels: list[da.Array] = []
    for index, level in enumerate(series.levels):
        what = f"{path.name} level {index}"
        if 0 in tuple(level.shape):
            raise CorruptSlideError(f"{what}: zero-size level {tuple(level.shape)}")
        for page in level.pages:
            if page is not None:
                check_segments(page, file_size, what, keyframe=level.keyframe)
        install_checked_decode(level.keyframe, what)
        token = (str(path), stat.st_mtime_ns, stat.st_size, index)
        page = level.keyframe
        if list(level.pages) == [page] and level.axes == "YXS" and is_fast_readable(page):
            # regular RGB tiles: dask chunks decode straight from the file (parallel preads)
            reader = TiledPageReader(path, page, what)
            closers.append(reader)
            lazy = guarded_dask(reader, reader.chunks, what, token, region_reader=reader)
        else:
            # strips, NDPI, planar or multi-page levels: tifffile's zarr store decodes them
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
    tile = (int(page0.tilelength), int(page0.tilewidth)) if page0.is_tiled else None
    if len(levels) == 1:
        levels = lazy_pyramid(levels[0], tile[1] if tile else 512)
    metadata = {
        "tile_size": list(tile) if tile else None,
        "compression": page0.compression.name.lower(),
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
