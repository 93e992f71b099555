"""Optional DICOM-WSI backend (extra ``dicom``) built on `wsidicom <https://pypi.org/project/wsidicom/>`_.

DICOM whole-slide images are a series of instances (one per pyramid level) in one directory. They
are opened with wsidicom, so DICOM does not depend on OpenSlide's flavour detection; without
wsidicom, ``.dcm`` files go to OpenSlide when it is installed. Tiles are read as encoded frames
and JPEG frames are decoded strictly (:mod:`hemascope.io.strict_jpeg`); other transfer syntaxes
are decoded by wsidicom.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from hemascope.errors import CorruptSlideError, HemascopeError, SlideError, UnsupportedFormatError
from hemascope.io.lazy import guarded_dask
from hemascope.io.limits import MAX_LEVELS, check_level_geometry
from hemascope.io.slide import Slide
from hemascope.io.strict_jpeg import strict_jpeg
from hemascope.io.tiff_metadata import plausible_mpp

_SOI = b"\xff\xd8"


def wsidicom_available() -> bool:
    """Whether the ``dicom`` extra (wsidicom) is installed."""
    try:
        import wsidicom  # noqa: F401
    except ImportError:
        return False
    return True


class DicomLevel:
    """One DICOM pyramid level as an array-like (for dask) and a thread-safe region reader."""

    def __init__(self, wsi: Any, level: Any, what: str, cache_tiles: int = 64) -> None:
        self._wsi = wsi
        self._level = int(level.level)
        self._what = what
        self.shape = (int(level.size.height), int(level.size.width), 3)
        self.tile = (int(level.tile_size.height), int(level.tile_size.width))
        self.dtype = np.dtype(np.uint8)
        self.ndim = 3
        self._cols = -(-self.shape[1] // self.tile[1])
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._cache_tiles = cache_tiles
        self._lock = threading.Lock()

    def _decode(self, tx: int, ty: int) -> np.ndarray:
        what = f"{self._what}: tile ({ty}, {tx})"
        try:
            data = self._wsi.read_encoded_tile(self._level, (tx, ty),
                                               crop_to_image_boundary=False)
            tile = None
            if bytes(data[:2]) == _SOI:
                tile = strict_jpeg(data, what, photometric=6, max_shape=self.tile)
            if tile is None:
                tile = np.asarray(self._wsi.read_tile(self._level, (tx, ty), as_array=True,
                                                      crop_to_image_boundary=False))
        except HemascopeError:
            raise
        except Exception as exc:  # noqa: BLE001 - wsidicom and codec errors on damaged data
            raise CorruptSlideError(f"{what} cannot be read ({exc!s:.200})") from exc
        if tile.ndim != 3 or tile.shape[0] < 1 or tile.shape[2] < 3:
            raise CorruptSlideError(f"{what} decodes to {tile.shape}")
        return tile[..., :3]

    def _tile(self, tx: int, ty: int) -> np.ndarray:
        with self._lock:
            cached = self._cache.get((tx, ty))
            if cached is not None:
                self._cache.move_to_end((tx, ty))
                return cached
        tile = self._decode(tx, ty)
        with self._lock:
            self._cache[(tx, ty)] = tile
            if len(self._cache) > self._cache_tiles:
                self._cache.popitem(last=False)
        return tile

    def read(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        """``(height, width, 3)`` region at ``(row, col)`` (inside the level)."""
        out = np.empty((height, width, 3), np.uint8)
        th, tw = self.tile
        for ty in range(row // th, (row + height - 1) // th + 1):
            for tx in range(col // tw, (col + width - 1) // tw + 1):
                tile = self._tile(tx, ty)
                r0, c0 = ty * th, tx * tw
                rs, re = max(row, r0), min(row + height, r0 + th)
                cs, ce = max(col, c0), min(col + width, c0 + tw)
                if re - r0 > tile.shape[0] or ce - c0 > tile.shape[1]:
                    raise CorruptSlideError(f"{self._what}: tile ({ty}, {tx}) is too small")
                out[rs - row : re - row, cs - col : ce - col] = tile[rs - r0 : re - r0,
                                                                     cs - c0 : ce - c0]
        return out

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        key = (key if isinstance(key, tuple) else (key,)) + (slice(None),) * 3
        r0, r1, rstep = key[0].indices(self.shape[0])
        c0, c1, cstep = key[1].indices(self.shape[1])
        block = self.read(r0, c0, max(r1 - r0, 0), max(c1 - c0, 0))
        return block[::rstep, ::cstep, key[2]]


def open_dicom(path: Path) -> Slide:
    """Open a DICOM-WSI series (a ``.dcm`` instance or the directory holding the series).

    Parameters
    ----------
    path
        One instance of the series (its directory is opened) or the directory itself.

    Returns
    -------
    Slide
        ``format="dicom"``; one level per pyramid level, dask chunks = DICOM tiles, ``mpp`` from
        the base level's pixel spacing.

    Raises
    ------
    UnsupportedFormatError
        wsidicom is not installed, or the files are not a DICOM whole-slide image.
    CorruptSlideError
        The series cannot be read (missing instances, damaged datasets).
    """
    try:
        from wsidicom import WsiDicom
    except ImportError as exc:
        raise UnsupportedFormatError(
            f"{path.name}: DICOM-WSI needs wsidicom (pip install 'hemascope[dicom]')"
        ) from exc
    folder = path if path.is_dir() else path.parent
    try:
        wsi = WsiDicom.open(folder)
    except Exception as exc:  # noqa: BLE001 - wsidicom raises many types on foreign files
        raise UnsupportedFormatError(
            f"{path.name}: not a DICOM whole-slide image wsidicom can open ({exc!s:.200})"
        ) from exc
    try:
        return _slide(wsi, path)
    except SlideError:
        wsi.close()
        raise
    except Exception as exc:  # noqa: BLE001 - malformed datasets
        wsi.close()
        raise CorruptSlideError(f"{path.name}: unreadable DICOM-WSI ({exc!s:.200})") from exc


def _slide(wsi: Any, path: Path) -> Slide:
    levels_meta = sorted(wsi.levels, key=lambda lv: int(lv.level))
    if not levels_meta or len(levels_meta) > MAX_LEVELS:
        raise CorruptSlideError(f"{path.name}: {len(levels_meta)} pyramid levels")
    stat = path.stat()
    levels = []
    for index, meta in enumerate(levels_meta):
        what = f"{path.name} level {index}"
        reader = DicomLevel(wsi, meta, what)
        if 0 in reader.shape:
            raise CorruptSlideError(f"{what}: zero-size level")
        check_level_geometry(reader.shape, (*reader.tile, 3), 1, what)
        token = ("dicom", str(path), stat.st_mtime_ns, int(meta.level))
        levels.append(guarded_dask(reader, (*reader.tile, 3), what, token, region_reader=reader))
    mpp = plausible_mpp(float(wsi.mpp.width)) if wsi.mpp is not None else None
    slide = Slide(
        levels=levels,
        mpp=mpp,
        path=path,
        format="dicom",
        metadata={
            "tile_size": [int(levels_meta[0].tile_size.height),
                          int(levels_meta[0].tile_size.width)],
            "pyramid": "file",
            "backend": "wsidicom",
        },
        mpp_source="file" if mpp is not None else None,
    )
    slide._closers.append(wsi)
    return slide
