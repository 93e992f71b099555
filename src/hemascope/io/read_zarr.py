"""Reader for OME-Zarr image directories (NGFF v0.4 on zarr v2, v0.5 on zarr 3).

Array metadata is checked before zarr opens anything: an array whose codecs include ``pickle`` (or
with an object dtype) is refused, never unpickled. Chunks absent from the store are the array's
fill value, as the zarr specification defines (writers skip empty chunks), not corruption.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import dask.array as da

from hemascope.errors import CorruptSlideError, HemascopeError, UnsupportedFormatError
from hemascope.io.lazy import guarded_dask
from hemascope.io.limits import MAX_LEVELS, check_level_geometry
from hemascope.io.slide import Slide
from hemascope.io.tiff_metadata import plausible_mpp
from hemascope.io.zarr_chunks import require_some_chunk
from hemascope.io.zarr_guard import GuardedLocalStore, check_store_file, inside

_UNIT_TO_UM = {
    "nanometer": 1e-3,
    "micrometer": 1.0,
    "micron": 1.0,
    "millimeter": 1e3,
    "centimeter": 1e4,
    "meter": 1e6,
}


def _codec_names(node: Any) -> list[str]:
    """Every ``id``/``name`` of a codec-like mapping anywhere in a metadata document."""
    names: list[str] = []
    if isinstance(node, dict):
        for key in ("id", "name"):
            if isinstance(node.get(key), str):
                names.append(node[key])
        for value in node.values():
            names += _codec_names(value)
    elif isinstance(node, list):
        for value in node:
            names += _codec_names(value)
    return names


def check_array_metadata(array_dir: Path, what: str) -> None:
    """Refuse a zarr array whose stored metadata asks for pickle or object data.

    Parameters
    ----------
    array_dir
        Directory of one zarr array (holding ``zarr.json`` or ``.zarray``).
    what
        Description used in error messages.

    Raises
    ------
    UnsupportedFormatError
        A pickle codec or an object dtype (opening it could execute code).
    CorruptSlideError
        The metadata is missing or not JSON.
    """
    for name in ("zarr.json", ".zarray"):
        meta_path = array_dir / name
        if check_store_file(array_dir, meta_path, what):
            break
    else:
        raise CorruptSlideError(f"{what}: array metadata missing in {array_dir.name}")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CorruptSlideError(f"{what}: unreadable array metadata ({exc!s:.200})") from exc
    if not isinstance(meta, dict):
        raise CorruptSlideError(f"{what}: array metadata is not a JSON object")
    for key in ("shape", "chunks" if "chunks" in meta else "chunk_grid"):
        if key not in meta:
            raise CorruptSlideError(f"{what}: array metadata has no {key!r}")
    shape = meta["shape"]
    if not isinstance(shape, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in shape
    ):
        raise CorruptSlideError(f"{what}: malformed shape {str(shape)[:80]}")
    if any("pickle" in n.lower() for n in _codec_names(meta)):
        raise UnsupportedFormatError(f"{what}: uses the pickle codec; refusing to unpickle data")
    dtype = meta.get("dtype", meta.get("data_type"))
    if isinstance(dtype, str) and ("O" in dtype or dtype == "object"):
        raise UnsupportedFormatError(f"{what}: object dtype arrays are refused")


_DEFAULT_AXES = {"0.1": "tczyx", "0.2": "tczyx"}
"""NGFF before v0.3 has no ``axes``: images are always 5-D ``tczyx``."""


def _multiscales(attrs: dict[str, Any]) -> tuple[list[Any] | None, str | None]:
    ome = attrs.get("ome")
    if isinstance(ome, dict) and ome.get("multiscales"):
        return ome["multiscales"], str(ome.get("version", "0.5"))
    ms = attrs.get("multiscales")
    if ms:
        if not isinstance(ms, list):
            raise CorruptSlideError("multiscales metadata is not a list")
        first = ms[0] if isinstance(ms[0], dict) else {}
        return ms, str(first.get("version", "0.4"))
    return None, None


def _scale(transforms: Any, ndim: int, what: str) -> list[float] | None:
    if transforms is None:
        return None
    if not isinstance(transforms, list):
        raise CorruptSlideError(f"{what}: coordinateTransformations is not a list")
    for t in transforms:
        if isinstance(t, dict) and t.get("type") == "scale":
            scale = t.get("scale")
            if (
                not isinstance(scale, list)
                or len(scale) != ndim
                or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in scale)
                or not all(math.isfinite(v) and v > 0 for v in scale)
            ):
                raise CorruptSlideError(
                    f"{what}: scale {str(scale)[:80]} is not {ndim} positive numbers"
                )
            return [float(v) for v in scale]
    return None


def _level_mpp(ms: dict[str, Any], axes: list[dict[str, Any]], y: int, what: str) -> float | None:
    scale = _scale(ms["datasets"][0].get("coordinateTransformations"), len(axes), what)
    if scale is None:
        return None
    outer = _scale(ms.get("coordinateTransformations"), len(axes), what)
    value = scale[y] * (outer[y] if outer else 1.0)
    factor = _UNIT_TO_UM.get(str(axes[y].get("unit", "")).lower())
    return plausible_mpp(value * factor) if factor is not None else None


def _to_rgb(array: da.Array, names: list[str], what: str) -> da.Array:
    if "c" not in names or "y" not in names or "x" not in names:
        raise UnsupportedFormatError(f"{what}: axes {names}; an RGB image needs c, y and x")
    index = tuple(slice(None) if n in ("c", "y", "x") else 0 for n in names)
    kept = [n for n in names if n in ("c", "y", "x")]
    array = array[index].transpose([kept.index("y"), kept.index("x"), kept.index("c")])
    if array.shape[2] not in (3, 4):
        raise UnsupportedFormatError(
            f"{what}: {array.shape[2]} channel(s); hemascope reads RGB only"
        )
    return array[..., :3]


def _open_group(path: Path) -> tuple[Any, dict[str, Any], Path]:
    """The image group: the directory itself, or ``0`` in a bioformats2raw layout."""
    import zarr

    node = zarr.open(store=GuardedLocalStore(path, what=path.name), mode="r")
    if not isinstance(node, zarr.Group):
        raise UnsupportedFormatError(f"{path.name}: a bare zarr array, not an OME-Zarr image")
    attrs: dict[str, Any] = dict(node.attrs)  # OME JSON: checked as it is used
    if _multiscales(attrs)[0] is None and "bioformats2raw.layout" in attrs.get("ome", attrs):
        image = path / "0"  # bioformats2raw: series 0 holds the image
        if not image.is_dir() or not inside(path, image):
            raise UnsupportedFormatError(f"{path.name}: bioformats2raw layout without image 0")
        node = zarr.open(store=GuardedLocalStore(image, what=path.name), mode="r")
        if not isinstance(node, zarr.Group):
            raise UnsupportedFormatError(f"{path.name}/0: not an OME-Zarr image group")
        return node, dict(node.attrs), image
    return node, attrs, path


def _axes_and_paths(
    ms: dict[str, Any], version: str | None, name: str
) -> tuple[list[dict[str, Any]], list[str]]:
    datasets = ms.get("datasets")
    if not isinstance(datasets, list) or not datasets:
        raise CorruptSlideError(f"{name}: multiscales without datasets")
    if len(datasets) > MAX_LEVELS:
        raise UnsupportedFormatError(f"{name}: {len(datasets)} datasets (at most {MAX_LEVELS})")
    raw_axes = ms.get("axes", _DEFAULT_AXES.get(str(version)))
    if not isinstance(raw_axes, list | str) or not raw_axes or len(raw_axes) > 8:
        raise CorruptSlideError(f"{name}: missing or malformed axes")
    axes = [a if isinstance(a, dict) else {"name": a} for a in raw_axes]
    names = [a.get("name") for a in axes]
    if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise CorruptSlideError(f"{name}: malformed axes {str(raw_axes)[:80]}")
    paths = []
    for d in datasets:
        sub = d.get("path") if isinstance(d, dict) else None
        if not isinstance(sub, str) or not sub or sub.startswith("/") or ".." in sub.split("/"):
            raise CorruptSlideError(f"{name}: malformed dataset path {str(d)[:80]}")
        paths.append(sub)
    return axes, paths


def open_ome_zarr(path: Path) -> Slide:
    """Open an OME-Zarr image directory lazily.

    Parameters
    ----------
    path
        Directory of an OME-Zarr v0.1-v0.4 (zarr v2) or v0.5 (zarr 3) image with 8-bit RGB data,
        or a bioformats2raw layout (the image in ``0``).

    Returns
    -------
    Slide
        ``format="ome-zarr"``; dask chunks are the zarr chunks; ``mpp`` from the level-0 ``scale``
        transformation when its axis has a length unit.

    Raises
    ------
    UnsupportedFormatError
        Not an OME-Zarr image, not 8-bit RGB, a pickle/object codec, or sizes beyond
        :mod:`hemascope.io.limits`.
    CorruptSlideError
        Unreadable or malformed metadata, zero-size levels, links leaving the store or to
        special files, or a level none of whose chunks is in the store.
    """
    try:
        return _open_ome_zarr(path)
    except HemascopeError:
        raise
    except Exception as exc:  # noqa: BLE001 - any other failure on hostile metadata is damage
        raise CorruptSlideError(f"{path.name}: unreadable OME-Zarr ({exc!s:.200})") from exc


def _open_ome_zarr(path: Path) -> Slide:
    group, attrs, image_dir = _open_group(path)
    multiscales, version = _multiscales(attrs)
    if not multiscales or not isinstance(multiscales[0], dict):
        raise UnsupportedFormatError(f"{path.name}: a zarr group without OME multiscales metadata")
    ms = multiscales[0]
    axes, paths = _axes_and_paths(ms, version, path.name)
    names = [str(a["name"]) for a in axes]
    if "y" not in names:
        raise UnsupportedFormatError(f"{path.name}: axes {names}; an RGB image needs c, y and x")
    stat = path.stat()
    levels = []
    for index, sub in enumerate(paths):
        what = f"{path.name} level {index}"
        array_dir = image_dir / sub
        if not inside(image_dir, array_dir):
            raise CorruptSlideError(f"{what}: {sub!r} points outside the store; refused")
        check_array_metadata(array_dir, what)
        array = group[sub]
        if array.dtype != "uint8":
            raise UnsupportedFormatError(
                f"{what}: {array.dtype} data; hemascope reads 8-bit RGB only"
            )
        if len(array.shape) != len(names):
            raise CorruptSlideError(f"{what}: {len(array.shape)}-D array for axes {names}")
        if 0 in array.shape:
            raise CorruptSlideError(f"{what}: zero-size level {array.shape}")
        chunks = tuple(int(c) for c in array.chunks)
        check_level_geometry(tuple(int(s) for s in array.shape), chunks, 1, what)
        token = ("ome-zarr", str(path), sub, stat.st_mtime_ns)
        lazy = guarded_dask(array, chunks, what, token)
        levels.append(_to_rgb(lazy, names, what))
        require_some_chunk(array, array_dir, what)
    mpp = _level_mpp(ms, axes, names.index("y"), path.name)
    tile = levels[0].chunksize
    return Slide(
        levels=levels,
        mpp=mpp,
        path=path,
        format="ome-zarr",
        metadata={
            "ngff_version": version,
            "zarr_format": int(group.metadata.zarr_format),
            "tile_size": [int(tile[0]), int(tile[1])],
            "axes": names,
            "labels": _label_names(group),
            "pyramid": "file",
            "layout": "bioformats2raw" if image_dir != path else "ome-zarr",
        },
        mpp_source="file" if mpp is not None else None,
    )


def _label_names(group: Any) -> list[str]:
    try:
        attrs = dict(group["labels"].attrs)
    except Exception:  # noqa: BLE001 - no labels group
        return []
    labels = attrs.get("ome", attrs).get("labels", [])
    return [str(n) for n in labels] if isinstance(labels, list) else []
