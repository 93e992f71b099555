"""Write OME-Zarr (NGFF v0.5 on zarr 3, or v0.4 on zarr v2): an RGB image pyramid plus label pyramids."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np

from hemascope.errors import InvalidInputError
from hemascope.io.lazy import reduce2
from hemascope.io.tiles import level_downsample, level_shapes_for
from hemascope.io.write_tiff import check_mpp
from hemascope.progress import CancelToken, ProgressCallback, check_cancelled, report

VERSIONS = ("0.5", "0.4")
_RGB = ("FF0000", "00FF00", "0000FF")


def _as_dask(array: Any, chunks: int, what: str) -> da.Array:
    arr = array if isinstance(array, da.Array) else da.from_array(np.asarray(array), chunks=chunks)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise InvalidInputError(
            f"{what}: expected RGB uint8 (rows, cols, 3), got {arr.shape} {arr.dtype}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidInputError(f"{what} has zero size")
    return arr


def _yx(array: Any) -> tuple[int, int]:
    """The (rows, cols) of an image or label array."""
    return int(array.shape[0]), int(array.shape[1])


def _axes(names: str, with_unit: bool) -> list[dict[str, str]]:
    axes = []
    for name in names:
        axis = {"name": name, "type": "channel" if name == "c" else "space"}
        if name != "c" and with_unit:
            axis["unit"] = "micrometer"
        axes.append(axis)
    return axes


def _multiscale(name: str, axes: str, scales: list[float], version: str, with_unit: bool) -> dict:
    lead = [1.0] * (len(axes) - 2)
    datasets = [
        {"path": str(i), "coordinateTransformations": [{"type": "scale", "scale": [*lead, s, s]}]}
        for i, s in enumerate(scales)
    ]
    ms: dict[str, Any] = {"name": name, "axes": _axes(axes, with_unit), "datasets": datasets}
    if version == "0.4":
        ms["version"] = "0.4"
    return ms


def _set_ome_attrs(group: Any, version: str, attrs: dict) -> None:
    if version == "0.5":
        group.attrs["ome"] = {"version": "0.5", **attrs}
    else:
        group.attrs.update(attrs)


def _create(group: Any, name: str, shape: tuple, chunks: tuple, dtype: Any, version: str) -> Any:
    kwargs: dict[str, Any] = {"name": name, "shape": shape, "chunks": chunks, "dtype": dtype}
    if version == "0.4":
        kwargs["chunk_key_encoding"] = {"name": "v2", "separator": "/"}
    else:
        kwargs["dimension_names"] = ["c", "y", "x"] if len(shape) == 3 else ["y", "x"]
    return group.create_array(**kwargs, fill_value=0)


def _write_image_levels(
    group: Any,
    levels: list[da.Array] | None,
    base: da.Array | None,
    n_levels: int | None,
    chunks: int,
    version: str,
    step: Callable[[str], None],
) -> list[tuple[int, int]]:
    """Write levels ``0..n`` as ``(c, y, x)`` arrays; build missing ones from the written level above."""
    if levels is not None:
        shapes = [_yx(lv) for lv in levels]
    else:
        assert base is not None  # write_ome_zarr passes the levels or a base image
        shapes = level_shapes_for(_yx(base), chunks, n_levels)
    previous: da.Array | None = None  # the level written last
    for i, shape in enumerate(shapes):
        if levels is not None:
            data = levels[i]
        elif previous is not None:
            data = reduce2(previous, chunks)
        else:  # level 0 of a pyramid built from base
            assert base is not None
            data = base
        step(f"image level {i}")
        arr = _create(group, str(i), (3, *shape), (3, chunks, chunks), np.uint8, version)
        da.store(data.transpose(2, 0, 1).rechunk((3, chunks, chunks)), arr, lock=False)
        previous = da.from_zarr(arr).transpose(1, 2, 0)
    return shapes


def _write_labels(
    root: Any,
    labels: Mapping[str, Any],
    image_shape: tuple[int, int],
    n_levels: int,
    mpp: float | None,
    chunks: int,
    version: str,
    step: Callable[[str], None],
) -> None:
    group = root.create_group("labels")
    _set_ome_attrs(group, version, {"labels": list(labels)})
    for name, label in labels.items():
        arr = label
        if arr.dtype == bool:
            arr = arr.astype(np.uint8)
        sub = group.create_group(name)
        scales = []
        level = 0
        while level < n_levels and arr.shape[0] >= 1 and arr.shape[1] >= 1:
            step(f"label {name} level {level}")
            z = _create(sub, str(level), tuple(arr.shape), (chunks, chunks), arr.dtype, version)
            chunked = arr if isinstance(arr, da.Array) else da.from_array(arr, chunks=chunks)
            da.store(chunked.rechunk((chunks, chunks)), z, lock=False)
            scales.append((mpp or 1.0) * level_downsample(image_shape, tuple(arr.shape)))
            level += 1
            if max(arr.shape) <= 1:
                break
            arr = da.from_zarr(z)[::2, ::2]
        attrs: dict[str, Any] = {
            "multiscales": [_multiscale(name, "yx", scales, version, mpp is not None)],
            "image-label": {"source": {"image": "../../"}},
        }
        if version == "0.4":
            attrs["image-label"]["version"] = "0.4"
        _set_ome_attrs(sub, version, attrs)


def write_ome_zarr(
    path: str | os.PathLike[str],
    levels_or_array: Any,
    *,
    mpp: float | None,
    version: str = "0.5",
    labels: Mapping[str, Any] | None = None,
    chunks: int = 512,
    n_levels: int | None = None,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Path:
    """Write an RGB image (and optional label images) as an OME-Zarr multiscale directory.

    Parameters
    ----------
    path
        Output directory (conventionally ``*.ome.zarr``).
    levels_or_array
        Either one ``(rows, cols, 3)`` uint8 array (numpy or dask), whose pyramid is built by 2x
        box-filter reduction of each written level, or a sequence of such arrays, level 0 first
        (e.g. ``slide.levels``). Stored as ``(c, y, x)`` arrays ``0, 1, ...``.
    mpp
        Micrometres per pixel of level 0 (the ``scale`` transformations, unit micrometer);
        ``None`` writes pixel scales without a unit.
    version
        ``"0.5"`` (zarr format 3, metadata under the ``ome`` attribute) or ``"0.4"``
        (zarr format 2, ``/``-separated chunk keys).
    labels
        ``{name: 2-D integer array}`` (numpy or dask, level-0 shape or a whole-number reduction of it);
        each becomes a label pyramid under ``labels/<name>`` (nearest-neighbour 2x reductions).
    chunks
        Chunk edge in pixels.
    n_levels
        Pyramid levels when a single array is given (default: at least 3, until one chunk fits).
    overwrite
        Replace an existing ``path``; otherwise an existing path is an error.
    progress
        ``progress(done, total, message)`` after each stored array (image or label level).
    cancel
        Checked before each stored array; when set, the partial directory is removed and
        :class:`~hemascope.errors.Cancelled` raised.

    Returns
    -------
    pathlib.Path
        The written directory.

    Raises
    ------
    InvalidInputError
        For non-RGB-uint8 images, non-integer labels, a bad version, mpp or chunk size, or an
        existing path without ``overwrite``.
    Cancelled
        When ``cancel`` is set.
    """
    import zarr

    mpp = check_mpp(mpp)
    if version not in VERSIONS:
        raise InvalidInputError(f"version must be one of {VERSIONS}, got {version!r}")
    if chunks < 16:
        raise InvalidInputError(f"chunks must be >= 16, got {chunks}")
    path = Path(path)
    if path.exists() and not overwrite:
        raise InvalidInputError(f"{path} exists (pass overwrite=True to replace it)")
    if isinstance(levels_or_array, Sequence) and not isinstance(levels_or_array, np.ndarray):
        levels = [_as_dask(a, chunks, f"level {i}") for i, a in enumerate(levels_or_array)]
        if not levels:
            raise InvalidInputError("levels_or_array is an empty sequence")
        base = None
    else:
        levels, base = None, _as_dask(levels_or_array, chunks, "image")

    labels = {
        str(name): label if isinstance(label, da.Array) else np.asarray(label)
        for name, label in (labels or {}).items()
    }
    for name, label in labels.items():
        if label.ndim != 2 or not (np.issubdtype(label.dtype, np.integer) or label.dtype == bool):
            raise InvalidInputError(
                f"label {name!r}: expected a 2-D integer array, got {label.shape} {label.dtype}"
            )
    if levels is not None:
        n_image = len(levels)
    else:
        assert base is not None  # set with levels = None above
        n_image = len(level_shapes_for(_yx(base), chunks, n_levels))
    total, done = n_image * (1 + len(labels)), 0

    def step(message: str) -> None:
        nonlocal done
        check_cancelled(cancel)
        report(progress, done, total, f"writing {message}")
        done += 1

    try:
        root = zarr.open_group(str(path), mode="w", zarr_format=3 if version == "0.5" else 2)
        shapes = _write_image_levels(root, levels, base, n_levels, chunks, version, step)
        _write_root_attrs(root, path, shapes, mpp, version)
        if labels:
            _write_labels(root, labels, shapes[0], len(shapes), mpp, chunks, version, step)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    report(progress, total, total, "OME-Zarr written")
    return path


def _write_root_attrs(
    root: Any, path: Path, shapes: list[tuple[int, int]], mpp: float | None, version: str
) -> None:
    scale0 = mpp if mpp is not None else 1.0
    scales = [scale0 * level_downsample(shapes[0], s) for s in shapes]
    attrs: dict[str, Any] = {
        "multiscales": [
            _multiscale(
                path.name.lstrip(".").split(".")[0], "cyx", scales, version, mpp is not None
            )
        ],
        "omero": {
            "channels": [
                {"label": c, "color": col, "window": {"start": 0, "end": 255, "min": 0, "max": 255}}
                for c, col in zip("RGB", _RGB, strict=True)
            ],
            "rdefs": {"model": "color"},
        },
    }
    if version == "0.4":
        attrs["omero"]["version"] = "0.4"
    _set_ome_attrs(root, version, attrs)
