"""Segmentation backends behind one call: :func:`segment_crops` (classical or Cellpose).

A backend turns a batch of RGB crops into whole-cell and nucleus instance labels. ``"auto"``
resolves to Cellpose only when its weights are already on this machine (never a download).
"""

from __future__ import annotations

import numpy as np

from hemascope.segment.classical import VERSION as CLASSICAL_VERSION
from hemascope.segment.classical import segment_classical
from hemascope.segment.settings import SegmentSettings


def resolve_segmenter(settings: SegmentSettings) -> str:
    """The backend a run will use: ``"classical"`` or ``"cellpose"`` (``"auto"`` resolved).

    Parameters
    ----------
    settings
        Run settings.

    Returns
    -------
    str
        ``"cellpose"`` for ``segmenter="cellpose"`` (a missing model then fails later with
        :class:`~hemascope.errors.ModelNotFoundError`), or for ``"auto"`` when the model file is
        present locally; ``"classical"`` otherwise.
    """
    if settings.segmenter == "auto":
        from hemascope.segment.cellpose_backend import cellpose_weights_available

        return "cellpose" if cellpose_weights_available(settings.model) else "classical"
    return settings.segmenter


def segmenter_version(name: str) -> str:
    """Version string recorded in the cell table for backend ``name``."""
    if name == "cellpose":
        from importlib.metadata import version

        return f"cellpose-{version('cellpose')}"
    return CLASSICAL_VERSION


def segment_crops(
    crops: list[np.ndarray],
    mpp: float,
    background: tuple[float, float, float] | np.ndarray | None,
    settings: SegmentSettings,
    red_cell_tint: float = 0.0,
    red_cell_chroma: tuple[float, float, float] | None = None,
    close_up: bool = False,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Segment each crop into whole-cell and nucleus instance labels.

    Parameters
    ----------
    crops
        ``(rows, cols, 3)`` uint8 RGB crops at level-0 resolution.
    mpp
        µm/px of the crops.
    background
        Glass colour of the slide.
    settings
        Run settings (``segmenter`` already resolved or ``"auto"``).
    red_cell_tint
        The slide's red-cell tint.
    red_cell_chroma
        The red cells' OD direction (classical backend: red-cell-coloured pixels are no white cell).
    close_up
        The crops come from a close-up (classical backend: eosinophil granules by density).

    Returns
    -------
    list of (cells, nuclei)
        int32 labels per crop; nucleus pixels of cell ``k`` are labelled ``k``.
    """
    bg = None if background is None else np.asarray(background, dtype=np.float32)
    if resolve_segmenter(settings) == "cellpose":
        from hemascope.segment.cellpose_backend import segment_crops_cellpose

        return segment_crops_cellpose(crops, mpp, bg, settings, red_cell_tint)
    return [segment_classical(crop, mpp, bg, settings.classical, red_cell_tint, red_cell_chroma, close_up=close_up)
            for crop in crops]
