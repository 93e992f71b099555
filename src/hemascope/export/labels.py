"""Cell label masks as OME-Zarr labels.

:func:`write_labels_zarr` stores an image pyramid with its labels (the napari writer, when the user
saves an image and its masks together). :func:`write_cell_labels` — what an analysis writes —
stores the label pyramid alone and *references* the slide it was computed on (its path, shape and
µm/px in the root attributes): a result folder never holds a second, lossless copy of the slide.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hemascope.files import atomic_path


def write_labels_zarr(
    path: str | Path,
    image: Any,
    labels: Any,
    *,
    mpp: float | None,
    name: str = "cells",
    version: str = "0.5",
) -> Path:
    """Write an image pyramid with a cell label image under ``labels/<name>``, atomically.

    Parameters
    ----------
    path
        Destination directory (``*.ome.zarr``); replaced as a whole if it exists.
    image
        The RGB image: a :class:`~hemascope.io.Slide` (its levels are streamed), a list of levels,
        or one ``(rows, cols, 3)`` uint8 array.
    labels
        2-D integer instance labels of level-0 shape (numpy or dask), 0 = background.
    mpp
        µm per level-0 pixel.
    name
        Name of the label image.
    version
        OME-Zarr version, ``"0.5"`` or ``"0.4"``.

    Returns
    -------
    Path
        ``path``.
    """
    from hemascope.io import write_ome_zarr

    levels = getattr(image, "levels", image)
    if isinstance(labels, np.ndarray) and labels.dtype.kind not in "iu":
        labels = labels.astype(np.int32)
    with atomic_path(path) as tmp:
        write_ome_zarr(tmp, levels, mpp=mpp, version=version, labels={name: labels})
    return Path(path)


#: Root attribute of a labels-only store naming the slide the labels belong to.
SOURCE_ATTRIBUTE = "hemascope"


def write_cell_labels(
    path: str | Path,
    labels: Any,
    *,
    nuclei: Any = None,
    mpp: float | None,
    source: str | Path | None = None,
    n_levels: int | None = None,
    name: str = "cells",
    chunks: int = 1024,
) -> Path:
    """Write a cell label pyramid as OME-Zarr ``labels/<name>``, referencing its slide, atomically.

    Parameters
    ----------
    path
        Destination directory (``labels.ome.zarr``); replaced as a whole if it exists.
    labels
        2-D integer instance labels of level-0 shape (numpy or dask), 0 = background.
    nuclei
        Optional nucleus labels of the same shape (value = the cell's label), written as
        ``labels/nuclei``.
    mpp
        µm per level-0 pixel (the scale of the label pyramid).
    source
        The slide file the labels were computed on (recorded, not copied).
    n_levels
        Pyramid levels (default: until a level fits in one chunk).
    name
        Name of the label image.
    chunks
        Chunk edge in pixels.

    Returns
    -------
    Path
        ``path``. :func:`hemascope.napari.layers.open_label_pyramid` reads it back.
    """
    import dask.array as da
    import zarr

    from hemascope.io.tiles import level_shapes_for
    from hemascope.io.write_zarr import _set_ome_attrs, _write_labels

    shape = (int(labels.shape[0]), int(labels.shape[1]))
    if isinstance(labels, np.ndarray) and labels.dtype.kind not in "iu":
        labels = labels.astype(np.int32)
    if n_levels is None:
        n_levels = len(level_shapes_for(shape, chunks, None))
    images = {name: labels if isinstance(labels, da.Array) else da.from_array(labels, chunks=chunks)}
    if nuclei is not None:
        images["nuclei"] = nuclei if isinstance(nuclei, da.Array) else da.from_array(nuclei, chunks=chunks)
    with atomic_path(path) as tmp:
        root = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        _write_labels(root, images, shape, n_levels, mpp, chunks, "0.5", lambda _msg: None)
        _set_ome_attrs(root["labels"], "0.5", {"labels": list(images)})
        root.attrs[SOURCE_ATTRIBUTE] = {
            "source_image": None if source is None else str(Path(source).resolve()),
            "shape": list(shape),
            "mpp": mpp,
            "note": "labels only: the image is the source slide (not copied)",
        }
    return Path(path)


# --- per-cell masks ► label images ---------------------------------------------------------------
def pack_cell_masks(masks: list[Any]) -> dict[str, np.ndarray]:
    """Pack per-cell masks (objects with ``origin``, ``cell``, ``nucleus``) into flat arrays.

    Parameters
    ----------
    masks
        :class:`hemascope.segment.crop_cells.CellMask` objects.

    Returns
    -------
    dict of str to numpy.ndarray
        ``origins`` and ``shapes`` ``(n, 2)`` int64 and bit-packed ``cell``/``nucleus`` pixels,
        ready for :func:`numpy.savez` (no pickling).
    """
    origins = np.array([m.origin for m in masks], dtype=np.int64).reshape(-1, 2)
    shapes = np.array([m.cell.shape for m in masks], dtype=np.int64).reshape(-1, 2)
    flat_cell = np.concatenate([m.cell.ravel() for m in masks]) if masks else np.zeros(0, bool)
    flat_nucleus = np.concatenate([m.nucleus.ravel() for m in masks]) if masks else np.zeros(0, bool)
    return {"origins": origins, "shapes": shapes, "cell": np.packbits(flat_cell), "nucleus": np.packbits(flat_nucleus)}


def unpack_cell_masks(packed: Any) -> list[Any]:
    """The inverse of :func:`pack_cell_masks`: a list of ``CellMask``."""
    from hemascope.segment.crop_cells import CellMask

    shapes = np.asarray(packed["shapes"])
    sizes = shapes[:, 0] * shapes[:, 1] if len(shapes) else np.zeros(0, np.int64)
    total = int(sizes.sum())
    cell = np.unpackbits(packed["cell"], count=total).astype(bool)
    nucleus = np.unpackbits(packed["nucleus"], count=total).astype(bool)
    out, start = [], 0
    for origin, shape, size in zip(np.asarray(packed["origins"]), shapes, sizes, strict=True):
        stop = start + int(size)
        shape_t = (int(shape[0]), int(shape[1]))
        out.append(CellMask((int(origin[0]), int(origin[1])), cell[start:stop].reshape(shape_t),
                            nucleus[start:stop].reshape(shape_t)))
        start = stop
    return out


def lazy_label_image(shape: tuple[int, int], masks: list[Any], values: Any, *, chunks: int = 1024,
                     part: str = "cell") -> Any:
    """A lazy (dask) uint32 label image of the cells (or their nuclei), mask ``i`` as ``values[i]``.

    Each chunk paints only the masks whose box meets it, so whole-slide label images are written
    chunk by chunk in bounded memory, by the rule of :func:`hemascope.segment.paint_window`: a
    pixel two outlines claim is the cell's whose nucleus is nearest, in the cell image and the
    nucleus image alike (the image ``hemascope segment`` paints for a picture).

    Parameters
    ----------
    shape
        Level-0 ``(rows, cols)``.
    masks
        Per-cell masks (``origin``, ``cell``, ``nucleus``).
    values
        Label value of each mask (e.g. the cell ``id`` column, 1..N).
    chunks
        Chunk edge in pixels.
    part
        ``"cell"`` or ``"nucleus"``: which label image.

    Returns
    -------
    dask.array.Array
    """
    import dask.array as da

    from hemascope.segment import paint_window

    if part not in ("cell", "nucleus"):
        raise ValueError(f"part must be 'cell' or 'nucleus', got {part!r}")
    values = np.asarray(values, dtype=np.uint32)
    boxes = np.array([(*m.origin, m.origin[0] + m.cell.shape[0], m.origin[1] + m.cell.shape[1]) for m in masks],
                     dtype=np.int64).reshape(-1, 4)

    def paint(block_info: dict | None = None) -> np.ndarray:
        assert block_info is not None  # map_blocks passes it to a function that takes it
        (r0, r1), (c0, c1) = block_info[None]["array-location"]
        hit = np.nonzero((boxes[:, 0] < r1) & (boxes[:, 2] > r0) & (boxes[:, 1] < c1) & (boxes[:, 3] > c0))[0]
        cells, nuclei = paint_window((r0, c0, r1, c1), masks, values, hit)
        return cells if part == "cell" else nuclei

    return da.map_blocks(paint, dtype=np.uint32, chunks=da.core.normalize_chunks((chunks, chunks), shape))


__all__ = [
    "SOURCE_ATTRIBUTE",
    "lazy_label_image",
    "pack_cell_masks",
    "unpack_cell_masks",
    "write_cell_labels",
    "write_labels_zarr",
]
