"""Optional OpenSlide backend (extra ``openslide``) for MRXS and other vendor formats."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from hemascope.errors import CorruptSlideError, HemascopeError, UnsupportedFormatError
from hemascope.io.lazy import guarded_dask
from hemascope.io.limits import check_level_geometry
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


class OpenSlideHandle:
    """An OpenSlide handle that is reopened after a failed read.

    After any error OpenSlide puts the handle in an error state: every later call fails with the
    first error. One damaged tile must not make the rest of the slide unreadable (napari asks for
    the smallest level first), so the failed handle is closed and the next read uses a fresh one.

    Parameters
    ----------
    path
        The slide file.
    handle
        An open ``openslide.OpenSlide`` for it.
    """

    def __init__(self, path: Path, handle: Any) -> None:
        self._path = path
        self._handle = handle
        self._lock = threading.Lock()

    @property
    def current(self) -> Any:
        """The usable ``openslide.OpenSlide``."""
        with self._lock:
            if self._handle is None:
                import openslide

                self._handle = openslide.OpenSlide(str(self._path))
            return self._handle

    def discard(self, broken: Any) -> None:
        """Close ``broken`` (a handle that failed) unless it was already replaced."""
        with self._lock:
            if self._handle is broken:
                self._handle = None
        try:
            broken.close()
        except Exception:  # noqa: BLE001 - closing a broken handle must not mask the read error
            pass

    def close(self) -> None:
        """Close the handle."""
        with self._lock:
            handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()


class OpenSlideLevel:
    """One OpenSlide level as an array-like (for dask) and a region reader (the fast path)."""

    def __init__(self, handle: OpenSlideHandle, level: int, what: str) -> None:
        self._handle = handle
        self._level = level
        self._what = what
        current = handle.current
        self._downsample = float(current.level_downsamples[level])
        width, height = current.level_dimensions[level]
        self.shape = (int(height), int(width), 3)
        self.dtype = np.dtype(np.uint8)
        self.ndim = 3

    def read(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        """``(height, width, 3)`` region at ``(row, col)`` of this level."""
        location = (int(round(col * self._downsample)), int(round(row * self._downsample)))
        handle = self._handle.current
        try:
            region = handle.read_region(location, self._level, (int(width), int(height)))
        except Exception as exc:  # noqa: BLE001 - OpenSlideError on damaged tiles
            self._handle.discard(handle)
            raise CorruptSlideError(
                f"{self._what}: OpenSlide cannot read the region at row {row}, col {col} "
                f"({exc!s:.200})"
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
    holder = OpenSlideHandle(path, handle)
    try:
        props = handle.properties
        stat = path.stat()
        levels = []
        for level in range(handle.level_count):
            what = f"{path.name} level {level}"
            reader = OpenSlideLevel(holder, level, what)
            if 0 in reader.shape:
                raise CorruptSlideError(f"{what}: zero-size level")
            th = int(
                props.get(f"openslide.level[{level}].tile-height", DEFAULT_TILE) or DEFAULT_TILE
            )
            tw = int(
                props.get(f"openslide.level[{level}].tile-width", DEFAULT_TILE) or DEFAULT_TILE
            )
            check_level_geometry(reader.shape, (th, tw, 3), 1, what)
            token = ("openslide", str(path), stat.st_mtime_ns, level)
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
    except HemascopeError:
        holder.close()
        raise
    except Exception as exc:  # noqa: BLE001 - malformed properties of a damaged file
        holder.close()
        raise CorruptSlideError(f"{path.name}: unreadable OpenSlide metadata ({exc!s:.200})") from exc
    slide._closers.append(holder)
    return slide
