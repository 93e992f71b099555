"""Whole-slide and field cell finding: :func:`find_cells` runs the regions on dask threads."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from hemascope.errors import InvalidInputError
from hemascope.io.limits import check_given_mpp
from hemascope.progress import CancelToken, ProgressCallback, check_cancelled, report
from hemascope.segment.backends import load_backend, resolve_segmenter
from hemascope.segment.crop_cells import CellMask
from hemascope.segment.regions import plan_regions, segment_region_with_masks, slide_mpp
from hemascope.segment.scale import ScaleEstimate
from hemascope.segment.settings import SegmentSettings
from hemascope.segment.smear import SmearMask, compute_smear_mask
from hemascope.segment.table import concat_cell_tables


@dataclass
class Segmentation:
    """What :func:`find_cells` found.

    Attributes
    ----------
    cells
        Cell table (columns :data:`~hemascope.segment.table.CELL_COLUMNS`), ``id`` 1..N.
    mpp
        µm/px of level 0 used.
    mpp_source
        ``"file"``, ``"user"`` or ``"estimated"``.
    smear_mask
        The smear (and ROI) mask at low resolution.
    segmenter
        The backend used (``"auto"`` resolved).
    cell_labels, nucleus_labels
        uint32 instance labels over the whole image (value = ``id``) for in-memory fields;
        ``None`` for slides (see :func:`~hemascope.segment.labels.write_label_pyramid`).
    masks
        Per-cell masks in table order (used to paint labels); ``None`` unless kept.
    scale
        The :class:`~hemascope.segment.scale.ScaleEstimate` when the µm/px was estimated
        (``scale.low_confidence`` says whether to trust it), else ``None``.
    """

    cells: pd.DataFrame
    mpp: float
    mpp_source: str
    smear_mask: SmearMask
    segmenter: str
    cell_labels: np.ndarray | None = None
    nucleus_labels: np.ndarray | None = None
    masks: list[CellMask] | None = None
    scale: ScaleEstimate | None = None


def paint_labels(shape: tuple[int, int], masks: list[CellMask]) -> tuple[np.ndarray, np.ndarray]:
    """Paint per-cell masks into uint32 cell and nucleus label images (cell ``i`` gets ``i + 1``).

    Each cell is outlined in its own crop, so the outlines of touching cells may overlap (one
    taking in part of its neighbour, up to its crop's edge); a pixel claimed by several goes to
    the cell whose nucleus is nearest (a nucleus pixel stays its own cell's), between equals the
    one whose outline's centre is nearest: :func:`paint_window`.

    Parameters
    ----------
    shape
        Level-0 ``(rows, cols)``.
    masks
        Masks in table order.

    Returns
    -------
    cells, nuclei
        uint32 label images.
    """
    return paint_window((0, 0, int(shape[0]), int(shape[1])), masks, np.arange(1, len(masks) + 1))


def paint_window(window: tuple[int, int, int, int], masks: Sequence[CellMask], values: Sequence[int] | np.ndarray,
                 which: Iterable[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Paint the masks that meet ``window`` (level-0 ``(row0, col0, row1, col1)``) into its cell and
    nucleus label arrays, mask ``i`` as ``values[i]``.

    A pixel claimed by several outlines goes to the cell whose nucleus is nearest (a nucleus pixel
    stays its own cell's) and, between equals — the nucleus mask that touching cells of a packed
    field share, each up to its own crop's edge — to the cell whose outline's centre is nearest
    (not to the first painted, which would keep all it outlined, cut straight by its crop). The
    rule is per pixel, so a label image painted window by window
    (:func:`hemascope.export.labels.lazy_label_image`) is the one painted whole, and its cell and
    nucleus images agree.

    Parameters
    ----------
    window
        Level-0 box painted.
    masks
        Per-cell masks (``origin``, ``cell``, ``nucleus``).
    values
        Label value of each mask.
    which
        Indices of the masks to paint (default: all), in painting order.

    Returns
    -------
    cells, nuclei
        uint32 arrays of the window's shape.
    """
    w0, v0, w1, v1 = window
    shape = (w1 - w0, v1 - v0)
    cells = np.zeros(shape, dtype=np.uint32)
    nuclei = np.zeros(shape, dtype=np.uint32)
    nearest = np.full(shape, np.inf, dtype=np.float32)  # each painted pixel's distance to its nucleus
    owner = np.full(shape, -1, dtype=np.int64)  # the mask each painted pixel came from
    centres: dict[int, tuple[float, float]] = {}  # level-0 centres of the outlines met in a tie
    for index in map(int, range(len(masks)) if which is None else which):
        m = masks[index]
        r0, c0 = m.origin
        r1, c1 = r0 + m.cell.shape[0], c0 + m.cell.shape[1]
        a0, b0 = max(r0, w0), max(c0, v0)
        a1, b1 = min(r1, w1), min(c1, v1)
        if a1 <= a0 or b1 <= b0:
            continue
        sub = (slice(a0 - r0, a1 - r0), slice(b0 - c0, b1 - c0))
        box = (slice(a0 - w0, a1 - w0), slice(b0 - v0, b1 - v0))
        distance = _distance_to_nucleus(m)[sub]
        own = m.cell[sub] & (distance < nearest[box])
        tie = m.cell[sub] & (distance == nearest[box])
        if tie.any():  # a nucleus (or a point) as near to both: the nearer outline's centre
            rows, cols = np.nonzero(tie)
            others, which_other = np.unique(owner[box][tie], return_inverse=True)
            for k in (index, *map(int, others)):
                if k not in centres:
                    centres[k] = _outline_centre(masks[k])
            theirs = np.array([centres[int(k)] for k in others])[which_other]
            mine = centres[index]
            rows, cols = rows + a0, cols + b0
            own[tie] = np.hypot(rows - mine[0], cols - mine[1]) < np.hypot(rows - theirs[:, 0], cols - theirs[:, 1])
        cells[box][own] = values[index]
        nearest[box][own] = distance[own]
        owner[box][own] = index
        nuclei[box][own] = np.where(m.nucleus[sub][own], values[index], 0)
    return cells, nuclei


def _distance_to_nucleus(mask: CellMask) -> np.ndarray:
    """Each pixel's distance (px) to the cell's nucleus (to its outline's centroid without one)."""
    from scipy import ndimage as ndi

    if mask.nucleus.any():
        return ndi.distance_transform_edt(~mask.nucleus).astype(np.float32)
    rows, cols = np.nonzero(mask.cell)
    rr, cc = np.indices(mask.cell.shape, dtype=np.float32)
    return np.hypot(rr - rows.mean(), cc - cols.mean()).astype(np.float32)


def _outline_centre(mask: CellMask) -> tuple[float, float]:
    """The level-0 centroid of the cell's outline."""
    rows, cols = np.nonzero(mask.cell)
    return mask.origin[0] + float(rows.mean()), mask.origin[1] + float(cols.mean())


def _as_slide(source: Any, mpp: float | None):
    from hemascope.io import Slide, slide_from_array

    if isinstance(source, Slide):
        if mpp is not None:
            source.mpp, source.mpp_source = check_given_mpp(mpp), "user"
        return source, False
    if isinstance(source, np.ndarray):
        return slide_from_array(source, mpp=None if mpp is None else check_given_mpp(mpp)), True
    raise InvalidInputError(f"expected a Slide or an RGB uint8 array, got {type(source).__name__}")


def find_cells(
    source: Any,
    *,
    mpp: float | None = None,
    segmenter: str = "classical",
    roi: Any = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    region_size: int = 2048,
    num_workers: int | None = None,
    keep_masks: bool | None = None,
    **settings: Any,
) -> Segmentation:
    """Find and segment the white cells of a slide or an in-memory field.

    Parameters
    ----------
    source
        A :class:`hemascope.io.Slide` or a ``(rows, cols, 3)`` uint8 RGB array.
    mpp
        µm/px of level 0; overrides the file's value. When neither is known it is estimated from
        the red cells (``mpp_source="estimated"``; ``Segmentation.scale`` holds its confidence).
    segmenter
        ``"classical"``, ``"learned"``, ``"cellpose"`` or ``"auto"``.
    roi
        Optional polygon ``(n, 2)`` in µm, ``(y, x)``; only cells inside are searched.
    progress
        ``progress(done, total, message)`` after each region.
    cancel
        Token with ``is_set()``; checked before each region (raises :class:`~hemascope.errors.Cancelled`).
    region_size
        Region core side in level-0 pixels.
    num_workers
        Threads (default: all cores).
    keep_masks
        Keep every cell's masks in ``Segmentation.masks`` (needed for label images). Default:
        True for in-memory fields, False for slides, so that memory stays flat in slide size.
    **settings
        Further :class:`~hemascope.segment.settings.SegmentSettings` fields (``model``, ``device``,
        ``min_diameter_um``, classical parameters, ...).

    Returns
    -------
    Segmentation
        The cell table (empty with the right columns when there are no cells), scale, smear mask
        and, for fields, label images.

    Raises
    ------
    InvalidInputError
        For a non-RGB input, an ROI outside the slide, or an unknown and non-estimable µm/px.
    ModelNotFoundError
        For ``segmenter="cellpose"`` without local weights.
    """
    import dask

    run_settings = SegmentSettings.from_any(settings, segmenter=segmenter)
    if run_settings.segmenter == "auto":
        run_settings = replace(run_settings, segmenter=resolve_segmenter(run_settings))
    load_backend(run_settings)  # fail fast, before any work
    slide, is_field = _as_slide(source, mpp)
    mpp_value, mpp_source = slide_mpp(slide)
    if slide.mpp is None:
        slide.mpp, slide.mpp_source = float(mpp_value), mpp_source
    smear = compute_smear_mask(slide, roi)
    regions = plan_regions(slide, run_settings, region_size=region_size, smear=smear)
    total = len(regions)
    done = 0
    lock = threading.Lock()
    report(progress, 0, total, "segmenting")

    if keep_masks is None:
        keep_masks = is_field

    def run_one(region):
        nonlocal done
        check_cancelled(cancel)
        table, masks = segment_region_with_masks(slide, region, run_settings)
        result = (table, masks if keep_masks else [])
        with lock:
            done += 1
            report(progress, done, total, f"region {done}/{total}")
        return result

    tasks = [dask.delayed(run_one)(r) for r in regions]
    workers = num_workers or os.cpu_count() or 1
    results = dask.compute(*tasks, scheduler="threads", num_workers=workers) if tasks else []
    check_cancelled(cancel)
    tables = []
    all_masks: list[CellMask] = []
    for table, masks in results:
        table = table.assign(_mask=np.arange(len(all_masks), len(all_masks) + len(table)))
        tables.append(table)
        all_masks.extend(masks)
    cells = concat_cell_tables(tables)
    order = cells.pop("_mask").to_numpy(dtype=int) if "_mask" in cells else np.zeros(0, dtype=int)
    masks_in_order = [all_masks[i] for i in order] if keep_masks else None
    scale = mpp_value if isinstance(mpp_value, ScaleEstimate) else None
    seg = Segmentation(cells, float(mpp_value), mpp_source, smear, run_settings.segmenter, masks=masks_in_order,
                       scale=scale)
    if is_field:
        seg.cell_labels, seg.nucleus_labels = paint_labels(slide.shape, masks_in_order or [])
    return seg
