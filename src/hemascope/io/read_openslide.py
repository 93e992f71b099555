"""Optional OpenSlide backend (extra ``openslide``) for MRXS and other vendor formats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hemascope.errors import CorruptSlideError, UnsupportedFormatError
from hemascope.io.lazy import guarded_dask
from hemascope.io.slide import Slide

DEFAULT_TILE = 512


def openslide_vendor(path: Path) -> str | None:
    """OpenSlide's vendor name for ``path``, or ``None`` (also when OpenSlide is not installed)."""
    try:
        import openslide
    except ImportError:
        return None
    try:
        return openslide.OpenSlide.detect_format(str(path))
    except Exception:  # noqa: BLE001 - detection failure means "not an OpenSlide file"
        return None


def rgba_on_white(rgba: np.ndarray) -> np.ndarray:
    """Composite an RGBA uint8 array over white (OpenSlide marks areas without data transparent).

    Parameters
    ----------
    rgba
        ``(rows, cols, 4)`` uint8, not premultiplied.

    Returns
    -------
    numpy.ndarray
        ``(rows, cols, 3)`` uint8.
    """
    rgb = rgba[..., :3]
    alpha = rgba[..., 3:4]
    if alpha.min() == 255:
        return np.ascontiguousarray(rgb)
    blended = (rgb.astype(np.uint16) * alpha + 255 * (255 - alpha.astype(np.uint16)) + 127) // 255
    return blended.astype(np.uint8)


class OpenSlideLevel:
    """One OpenSlide level as an array-like (for dask) and a region reader (the fast path)."""

    def __init__(self, handle: Any, level: int) -> None:
        self._handle = handle
        self._level = level
        self._downsample = float(handle.level_downsamples[level])
        width, height = handle.level_dimensions[level]
        self.shape = (int(height), int(width), 3)
        self.dtype = np.dtype(np.uint8)
        self.ndim = 3

    def read(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        """``(height, width, 3)`` region at ``(row, col)`` of this level."""
        location = (int(round(col * self._downsample)), int(round(row * self._downsample)))
        try:
            region = self._handle.read_region(location, self._level, (int(width), int(height)))
        except Exception as exc:  # noqa: BLE001 - OpenSlideError on damaged tiles
            raise CorruptSlideError(
                f"level {self._level}: OpenSlide read failed ({exc!s:.200})"
            ) from exc
        return rgba_on_white(np.asarray(region))

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        rows, cols = key[0], key[1]
        r0, r1, _ = rows.indices(self.shape[0])
        c0, c1, _ = cols.indices(self.shape[1])
        block = self.read(r0, c0, max(r1 - r0, 1), max(c1 - c0, 1))[: r1 - r0, : c1 - c0]
        return block[(slice(None), slice(None), *key[2:])] if len(key) > 2 else block


def _float_property(props: Any, name: str) -> float | None:
    try:
        value = float(props[name])
    except (KeyError, TypeError, ValueError):
        return None
    return value if value > 0 else None


def open_with_openslide(path: Path) -> Slide:
    """Open a slide through OpenSlide.

    Parameters
    ----------
    path
        A file OpenSlide recognises (MRXS, VMS, SCN, BIF, generic tiled TIFF, ...).

    Returns
    -------
    Slide
        ``format="openslide"``; levels as dask arrays in OpenSlide's tile size (512 when it
        records none), ``mpp`` and objective power from OpenSlide's standard properties.

    Raises
    ------
    UnsupportedFormatError
        OpenSlide is not installed or does not recognise the file.
    CorruptSlideError
        OpenSlide recognises the file but cannot open it.
    """
    try:
        import openslide
    except ImportError as exc:
        raise UnsupportedFormatError(
            f"{path.name}: needs OpenSlide (pip install 'hemascope[openslide]')"
        ) from exc
    try:
        handle = openslide.OpenSlide(str(path))
    except openslide.OpenSlideUnsupportedFormatError as exc:
        raise UnsupportedFormatError(f"{path.name}: OpenSlide does not recognise it") from exc
    except Exception as exc:  # noqa: BLE001 - OpenSlideError and OS errors on damaged files
        raise CorruptSlideError(f"{path.name}: OpenSlide cannot open it ({exc!s:.200})") from exc
    try:
        props = handle.properties
        stat = path.stat()
        levels = []
        for level in range(handle.level_count):
            reader = OpenSlideLevel(handle, level)
            if 0 in reader.shape:
                raise CorruptSlideError(f"{path.name} level {level}: zero-size level")
            th = int(
                props.get(f"openslide.level[{level}].tile-height", DEFAULT_TILE) or DEFAULT_TILE
            )
            tw = int(
                props.get(f"openslide.level[{level}].tile-width", DEFAULT_TILE) or DEFAULT_TILE
            )
            token = ("openslide", str(path), stat.st_mtime_ns, level)
            what = f"{path.name} level {level}"
            levels.append(guarded_dask(reader, (th, tw, 3), what, token, region_reader=reader))
        mpp = _float_property(props, openslide.PROPERTY_NAME_MPP_X)
        slide = Slide(
            levels=levels,
            mpp=mpp,
            path=path,
            format="openslide",
            objective_power=_float_property(props, openslide.PROPERTY_NAME_OBJECTIVE_POWER),
            metadata={
                "vendor": props.get(openslide.PROPERTY_NAME_VENDOR),
                "tile_size": [int(levels[0].chunksize[0]), int(levels[0].chunksize[1])],
                "pyramid": "file",
            },
            mpp_source="file" if mpp is not None else None,
        )
    except Exception:
        handle.close()
        raise
    slide._closers.append(handle)
    return slide
