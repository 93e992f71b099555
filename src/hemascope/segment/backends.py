"""Segmentation backends behind one call: :func:`segment_crops` (classical, learned or Cellpose).

A backend turns a batch of RGB crops into whole-cell and nucleus instance labels. ``"auto"``
resolves to Cellpose only when its weights are already on this machine (never a download).
``"learned"`` is the bundled small network (:mod:`hemascope.segment.learned`).
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
        ``"classical"`` or ``"learned"`` as given; ``"cellpose"`` for ``segmenter="cellpose"`` (a
        missing model then fails with :class:`~hemascope.errors.ModelNotFoundError`, see
        :func:`load_backend`), or for ``"auto"`` when the model file is present locally;
        ``"classical"`` otherwise.
    """
    if settings.segmenter == "auto":
        from hemascope.segment.cellpose_backend import cellpose_weights_available

        return "cellpose" if cellpose_weights_available(settings.model) else "classical"
    return settings.segmenter


def load_backend(settings: SegmentSettings) -> None:
    """Load the model of the run's backend (Cellpose, learned) now, so that a missing or foreign
    weights file fails before any work.

    Raises
    ------
    ModelNotFoundError
        The weights file is not on this machine.
    ModelError
        It cannot be loaded.
    """
    name = resolve_segmenter(settings)
    if name == "cellpose":
        from hemascope.segment.cellpose_backend import load_cellpose_model

        load_cellpose_model(settings.model, settings.device)
    elif name == "learned":
        from hemascope.segment.learned import load_learned_segmenter

        load_learned_segmenter(settings.model)


def segmenter_version(name: str, model: str | None = None) -> str:
    """Version string recorded in the cell table for backend ``name`` (``model``: its weights)."""
    if name == "learned":
        from hemascope.segment.learned import learned_version

        return learned_version(model)
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
    seen: list[tuple[int, int, int, int] | None] | None = None,
    others: list[np.ndarray] | None = None,
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
    seen
        Per crop ``(row0, row1, col0, col1)``, its part inside the picture (``None``: all); crops
        are padded with blank glass beyond the picture's edge, which the classical backend must
        not take for glass around a cell.
    others
        Per crop, ``(n, 2)`` crop pixels of the other candidates near it (classical backend: their
        cells' stain is no red-cell reference).

    Returns
    -------
    list of (cells, nuclei)
        int32 labels per crop; nucleus pixels of cell ``k`` are labelled ``k``.
    """
    bg = None if background is None else np.asarray(background, dtype=np.float32)
    name = resolve_segmenter(settings)
    if name == "learned":
        from hemascope.segment.learned import segment_crops_learned

        return segment_crops_learned(crops, mpp, bg, settings.model, settings.classical.cell_min_area_um2,
                                     settings.classical.cell_min_nucleus_um2)
    if name == "cellpose":
        from hemascope.segment.cellpose_backend import segment_crops_cellpose

        return segment_crops_cellpose(crops, mpp, bg, settings, red_cell_tint)
    boxes = seen if seen is not None else [None] * len(crops)
    near = others if others is not None else [None] * len(crops)
    return [
        _classical_at_working_scale(crop, mpp, bg, settings, red_cell_tint, red_cell_chroma, close_up, box, points)
        for crop, box, points in zip(crops, boxes, near, strict=True)
    ]


#: The classical segmenter works at no finer µm/px than this (CellaVision's, where it was tuned):
#: its morphology is sized in micrometres, so on a 100x camera picture at 0.04 µm/px an opening's
#: footprint and the crop both grow (cost ~ 1/mpp^4: 2.5 min for one 12-MP field).
CLASSICAL_FINEST_MPP = 0.1


def _classical_at_working_scale(
    crop: np.ndarray,
    mpp: float,
    background: np.ndarray | None,
    settings: SegmentSettings,
    red_cell_tint: float,
    red_cell_chroma: tuple[float, float, float] | None,
    close_up: bool,
    seen: tuple[int, int, int, int] | None = None,
    others: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`segment_classical` on ``crop``, at :data:`CLASSICAL_FINEST_MPP` when the crop is finer
    (area-averaged down, labels brought back to the crop's grid by nearest neighbour)."""
    if mpp >= CLASSICAL_FINEST_MPP:
        return segment_classical(crop, mpp, background, settings.classical, red_cell_tint, red_cell_chroma,
                                 close_up=close_up, seen=seen, centre=(crop.shape[0] // 2, crop.shape[1] // 2),
                                 others=others)
    from PIL import Image

    rows, cols = crop.shape[:2]
    shape = (max(1, round(rows * mpp / CLASSICAL_FINEST_MPP)), max(1, round(cols * mpp / CLASSICAL_FINEST_MPP)))
    small = np.asarray(Image.fromarray(np.ascontiguousarray(crop)).resize(shape[::-1], Image.Resampling.BOX))
    if seen is not None:  # the box on the working grid
        seen = (seen[0] * shape[0] // rows, -(-seen[1] * shape[0] // rows),
                seen[2] * shape[1] // cols, -(-seen[3] * shape[1] // cols))
    cells, nuclei = segment_classical(small, mpp * cols / shape[1], background, settings.classical, red_cell_tint,
                                      red_cell_chroma, close_up=close_up, seen=seen,
                                      centre=(shape[0] // 2, shape[1] // 2),
                                      others=None if others is None else others * (shape[0] / rows))
    r = np.minimum((np.arange(rows) + 0.5) * shape[0] / rows, shape[0] - 1).astype(int)
    c = np.minimum((np.arange(cols) + 0.5) * shape[1] / cols, shape[1] - 1).astype(int)
    return cells[np.ix_(r, c)], nuclei[np.ix_(r, c)]
