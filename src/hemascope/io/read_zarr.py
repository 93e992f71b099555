"""Reader for OME-Zarr image directories (NGFF v0.4 on zarr v2, v0.5 on zarr 3).

Array metadata is checked before zarr opens anything: an array whose codecs include ``pickle`` (or
with an object dtype) is refused, never unpickled. Chunks absent from the store are the array's
fill value, as the zarr specification defines (writers skip empty chunks), not corruption.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dask.array as da

from hemascope.errors import CorruptSlideError, HemascopeError, UnsupportedFormatError
from hemascope.io.lazy import guarded_dask
from hemascope.io.slide import Slide

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
        if meta_path.is_file():
            break
    else:
        raise CorruptSlideError(f"{what}: array metadata missing in {array_dir.name}")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptSlideError(f"{what}: unreadable array metadata ({exc!s:.200})") from exc
    if not isinstance(meta, dict):
        raise CorruptSlideError(f"{what}: array metadata is not a JSON object")
    if any("pickle" in n.lower() for n in _codec_names(meta)):
        raise UnsupportedFormatError(f"{what}: uses the pickle codec; refusing to unpickle data")
    dtype = meta.get("dtype", meta.get("data_type"))
    if isinstance(dtype, str) and ("O" in dtype or dtype == "object"):
        raise UnsupportedFormatError(f"{what}: object dtype arrays are refused")


def _multiscales(attrs: dict[str, Any]) -> tuple[list[dict[str, Any]] | None, str | None]:
    ome = attrs.get("ome")
    if isinstance(ome, dict) and ome.get("multiscales"):
        return ome["multiscales"], str(ome.get("version", "0.5"))
    if attrs.get("multiscales"):
        ms = attrs["multiscales"]
        return ms, str(ms[0].get("version", "0.4")) if isinstance(ms[0], dict) else None
    return None, None


def _scale(transforms: Any) -> list[float] | None:
    for t in transforms or []:
        if isinstance(t, dict) and t.get("type") == "scale":
            return [float(v) for v in t["scale"]]
    return None


def _level_mpp(ms: dict[str, Any], axes: list[dict[str, Any]], y: int) -> float | None:
    scale = _scale(ms["datasets"][0].get("coordinateTransformations"))
    if scale is None:
        return None
    outer = _scale(ms.get("coordinateTransformations"))
    value = scale[y] * (outer[y] if outer else 1.0)
    factor = _UNIT_TO_UM.get(str(axes[y].get("unit", "")).lower())
    if factor is None or value <= 0:
        return None
    return value * factor


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


def open_ome_zarr(path: Path) -> Slide:
    """Open an OME-Zarr image directory lazily.

    Parameters
    ----------
    path
        Directory of an OME-Zarr v0.4 (zarr v2) or v0.5 (zarr 3) image with 8-bit RGB data.

    Returns
    -------
    Slide
        ``format="ome-zarr"``; dask chunks are the zarr chunks; ``mpp`` from the level-0 ``scale``
        transformation when its axis has a length unit.

    Raises
    ------
    UnsupportedFormatError
        Not an OME-Zarr image, not 8-bit RGB, or a pickle/object codec.
    CorruptSlideError
        Unreadable metadata or zero-size levels.
    """
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
        if not isinstance(node, zarr.Group):
            raise UnsupportedFormatError(f"{path.name}: a bare zarr array, not an OME-Zarr image")
        group = node
        attrs = dict(group.attrs)
    except HemascopeError:
        raise
    except Exception as exc:  # noqa: BLE001 - unreadable group metadata
        raise CorruptSlideError(f"{path.name}: unreadable zarr metadata ({exc!s:.200})") from exc
    multiscales, version = _multiscales(attrs)
    if not multiscales or not isinstance(multiscales[0], dict):
        raise UnsupportedFormatError(f"{path.name}: a zarr group without OME multiscales metadata")
    ms = multiscales[0]
    try:
        axes = [a if isinstance(a, dict) else {"name": a} for a in ms["axes"]]
        names = [str(a["name"]) for a in axes]
        paths = [str(d["path"]) for d in ms["datasets"]]
    except (KeyError, TypeError) as exc:
        raise CorruptSlideError(f"{path.name}: malformed multiscales metadata ({exc})") from exc
    stat = path.stat()
    levels = []
    for index, sub in enumerate(paths):
        what = f"{path.name} level {index}"
        check_array_metadata(path / sub, what)
        try:
            array = group[sub]
        except Exception as exc:  # noqa: BLE001 - damaged array metadata
            raise CorruptSlideError(f"{what}: cannot open array {sub!r} ({exc!s:.200})") from exc
        if array.dtype != "uint8":
            raise UnsupportedFormatError(
                f"{what}: {array.dtype} data; hemascope reads 8-bit RGB only"
            )
        if len(array.shape) != len(names):
            raise CorruptSlideError(f"{what}: {len(array.shape)}-D array for axes {names}")
        if 0 in array.shape:
            raise CorruptSlideError(f"{what}: zero-size level {array.shape}")
        token = ("ome-zarr", str(path), sub, stat.st_mtime_ns)
        lazy = guarded_dask(array, tuple(int(c) for c in array.chunks), what, token)
        levels.append(_to_rgb(lazy, names, what))
    mpp = _level_mpp(ms, axes, names.index("y"))
    chunks = levels[0].chunksize
    return Slide(
        levels=levels,
        mpp=mpp,
        path=path,
        format="ome-zarr",
        metadata={
            "ngff_version": version,
            "zarr_format": int(group.metadata.zarr_format),
            "tile_size": [int(chunks[0]), int(chunks[1])],
            "axes": names,
            "labels": _label_names(group),
            "pyramid": "file",
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
