"""Write a pyramidal (OME-)TIFF tile by tile, in memory bounded by a few tiles."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from hemascope.errors import InvalidInputError
from hemascope.io.tiles import (
    TileSource,
    TileSpool,
    as_tile_source,
    downsample2,
    iter_tile_origins,
    level_shapes_for,
)
from hemascope.progress import CancelToken, ProgressCallback, check_cancelled, report

COMPRESSIONS = ("jpeg", "zlib", "zstd", "lzw", "none")
_BIGTIFF_BYTES = 2**31


def check_mpp(mpp: float | None) -> float | None:
    """Validate a µm/px value (positive and finite, or ``None``) and return it as float."""
    if mpp is None:
        return None
    try:
        value = float(mpp)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"mpp must be a number, got {mpp!r}") from exc
    if not math.isfinite(value) or value <= 0:
        raise InvalidInputError(f"mpp must be positive and finite, got {mpp!r}")
    return value


def _level_tiles(
    source: TileSource,
    shape: tuple[int, int],
    tile_size: int,
    spool: TileSpool | None,
    step: Callable[[], None],
) -> Iterator[np.ndarray]:
    """Yield full-size tiles of one level (edges padded white); spool their 2x reductions."""
    for row, col in iter_tile_origins(shape, tile_size):
        step()
        height = min(tile_size, shape[0] - row)
        width = min(tile_size, shape[1] - col)
        tile = np.asarray(source.read(row, col, height, width))
        if tile.shape != (height, width, 3) or tile.dtype != np.uint8:
            raise InvalidInputError(
                f"tile source returned {tile.shape} {tile.dtype} at ({row}, {col}); "
                f"expected ({height}, {width}, 3) uint8"
            )
        if spool is not None:
            spool.put(row // 2, col // 2, downsample2(tile))
        if height != tile_size or width != tile_size:
            padded = np.full((tile_size, tile_size, 3), 255, dtype=np.uint8)
            padded[:height, :width] = tile
            tile = padded
        yield tile


def write_pyramidal_tiff(
    path: str | os.PathLike[str],
    source: np.ndarray | TileSource,
    *,
    mpp: float | None,
    tile_size: int = 512,
    compression: str = "jpeg",
    quality: int = 90,
    n_levels: int | None = None,
    ome: bool = True,
    description: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Path:
    """Write an RGB image as a tiled pyramidal TIFF, streaming tile by tile.

    Level ``k + 1`` is the 2x box-filtered reduction of level ``k``; it is spooled to a temporary,
    compressed file next to ``path`` while level ``k`` is written, so memory stays bounded by a few
    tiles whatever the image size (100k x 100k slides stream through).

    Parameters
    ----------
    path
        Output file (``.ome.tif``, ``.tif``, ``.svs``, ...). BigTIFF is used when level 0 exceeds 2 GiB
        uncompressed.
    source
        ``(rows, cols, 3)`` uint8 array (numpy, memmap, dask) or a :class:`~hemascope.io.tiles.TileSource`
        (``.shape -> (rows, cols)``, ``.read(row, col, height, width) -> ndarray``). Tiles are requested
        once each, in row-major order.
    mpp
        Micrometres per pixel of level 0, recorded as OME ``PhysicalSizeX/Y`` (when ``ome``) and as the
        TIFF resolution (pixels per centimetre) of every level. ``None`` records no scale.
    tile_size
        Tile edge in pixels (a multiple of 16).
    compression
        ``"jpeg"`` (default), ``"zlib"``, ``"zstd"``, ``"lzw"`` or ``"none"``.
    quality
        JPEG quality 1-100.
    n_levels
        Number of pyramid levels; default: at least 3, until the smallest level fits one tile.
    ome
        Write OME-XML with the reduced levels as SubIFDs (OME-TIFF). With ``False`` the levels follow
        each other in the main IFD chain (the layout of Aperio SVS and of OpenSlide's generic TIFF).
    description
        ImageDescription of the first page; only with ``ome=False``, since OME-TIFF keeps its
        OME-XML there. (An Aperio header alone does not make an SVS file: readers also expect a
        thumbnail page after level 0, which this writer does not write.)
    progress
        ``progress(done, total, message)`` after every tile of every level.
    cancel
        Checked before every tile; when set, the partial file is removed and
        :class:`~hemascope.errors.Cancelled` raised.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    InvalidInputError
        For a non-RGB-uint8 source, a bad tile size, compression, quality, mpp or level count.
    Cancelled
        When ``cancel`` is set.
    """
    import tifffile

    mpp = check_mpp(mpp)
    src = as_tile_source(source)
    if tile_size < 16 or tile_size % 16:
        raise InvalidInputError(f"tile_size must be a positive multiple of 16, got {tile_size}")
    if compression not in COMPRESSIONS:
        raise InvalidInputError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
    if not 1 <= int(quality) <= 100:
        raise InvalidInputError(f"quality must be in 1..100, got {quality}")
    if n_levels is not None and n_levels < 1:
        raise InvalidInputError(f"n_levels must be >= 1, got {n_levels}")
    if ome and description is not None:
        raise InvalidInputError("description= replaces the OME-XML: pass ome=False with it")

    path = Path(path)
    shapes = level_shapes_for(src.shape, tile_size, n_levels)
    bigtiff = shapes[0][0] * shapes[0][1] * 3 > _BIGTIFF_BYTES
    options: dict = {
        "photometric": "rgb",
        "tile": (tile_size, tile_size),
        "dtype": np.uint8,
        "software": "hemascope",
        "compression": None if compression == "none" else compression,
    }
    if compression == "jpeg":
        options["compressionargs"] = {"level": int(quality)}
    metadata: dict | None = None  # None: no tifffile "shaped" JSON next to a user description
    if ome:
        metadata = {"axes": "YXS", "Name": path.name.split(".")[0]}
        if mpp is not None:
            metadata.update(
                PhysicalSizeX=mpp, PhysicalSizeXUnit="µm", PhysicalSizeY=mpp, PhysicalSizeYUnit="µm"
            )

    total = sum(-(-rows // tile_size) * -(-cols // tile_size) for rows, cols in shapes)
    done = 0

    def step() -> None:
        nonlocal done
        check_cancelled(cancel)
        if done:
            report(progress, done, total, "writing pyramid")
        done += 1

    spools: list[TileSpool] = []
    try:
        with tifffile.TiffWriter(path, bigtiff=bigtiff, ome=ome) as tif:
            level_source: TileSource = src
            for level, shape in enumerate(shapes):
                spool = None
                if level + 1 < len(shapes):
                    spool = TileSpool(shapes[level + 1], tile_size // 2, directory=path.parent)
                    spools.append(spool)
                kwargs = dict(options)
                if mpp is not None:
                    ppcm = 1e4 / (mpp * 2**level)
                    kwargs.update(resolution=(ppcm, ppcm), resolutionunit="CENTIMETER")
                if level == 0:
                    kwargs.update(metadata=metadata, description=description)
                    if ome and len(shapes) > 1:
                        kwargs["subifds"] = len(shapes) - 1
                else:
                    kwargs.update(subfiletype=1, metadata=None)
                tiles = _level_tiles(level_source, shape, tile_size, spool, step)
                tif.write(tiles, shape=(shape[0], shape[1], 3), **kwargs)
                if level > 0:
                    spools[level - 1].close()
                level_source = spool  # type: ignore[assignment]
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    finally:
        for spool in spools:
            spool.close()
    report(progress, total, total, "pyramid written")
    return path
