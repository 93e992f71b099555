"""Cell label masks as OME-Zarr labels (written through :func:`hemascope.io.write_ome_zarr`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hemascope.results import atomic_path


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


__all__ = ["write_labels_zarr"]
