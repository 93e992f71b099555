"""Tiling a slide into independent regions: :func:`plan_regions` and :func:`segment_region`.

A region is a *core* box (the regions' cores tile the slide without overlap, aligned to the file's
tiles) grown by an *overlap* of at least one white-cell diameter into a *window*. Candidates are
searched in the window, each is segmented in a level-0 crop around it, and a cell is kept by the
region whose core holds its centroid. Candidate search and segmentation only depend on pixels
around each cell, on a sampling grid shared by every region, so two regions that both see a
cell find it identically, and exactly one of them keeps it: no cell twice, none cut in half.

Both functions are pure (plain, picklable inputs and outputs), so regions can be run in any order,
on dask threads or dask.distributed workers, and resumed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from hemascope.errors import InvalidInputError
from hemascope.progress import CancelToken, check_cancelled
from hemascope.segment.backends import resolve_segmenter, segment_crops, segmenter_version
from hemascope.segment.candidates import find_candidates
from hemascope.segment.crop_cells import (
    CellMask,
    cut_to_box,
    same_cell,
    select_instance,
    whole_neighbours,
)
from hemascope.segment.illumination import Illumination
from hemascope.segment.settings import SegmentSettings
from hemascope.segment.smear import SmearMask, compute_smear_mask, flat_field
from hemascope.segment.stain import blue_grey, coloured_stain, ink_like, is_close_up
from hemascope.segment.table import as_cell_table, cell_rows, empty_cell_table

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Region:
    """One independent piece of work: a core box, its window and the slide facts it needs.

    Attributes
    ----------
    index
        Position in the plan.
    core
        Level-0 ``(row0, col0, row1, col1)``, half-open; cores tile the slide.
    window
        The core grown by the overlap (may extend past the slide; reads outside are glass).
    mpp
        µm/px of level 0 used for this run.
    mpp_source
        ``"file"``, ``"user"`` or ``"estimated"``.
    background
        Glass colour of the slide.
    red_cell_tint
        Red-cell tint of the slide (stain reference).
    smear, smear_origin, smear_downsample
        Smear-mask pixels over the window (bool), the mask-pixel ``(row, col)`` of ``smear[0, 0]``
        and the level-0 pixels per mask pixel.
    grid
        Level-0 pixels per candidate-search pixel (the window starts on this grid).
    red_cell_chroma
        The red cells' OD direction (``None`` for close-ups), see
        :func:`~hemascope.segment.stain.red_cell_chroma`.
    outside_field
        The smear mask's :attr:`~hemascope.segment.smear.SmearMask.outside_field` over the
        window (same origin as ``smear``), or ``None``: pixels there are read as glass.
    illumination
        The slide's :attr:`~hemascope.segment.smear.SmearMask.illumination` (``None``: evenly
        lit), divided out of every pixel read.
    red_cell_scatter
        The field's :attr:`~hemascope.segment.smear.SmearMask.red_cell_scatter`: the colour
        floors follow it (:func:`~hemascope.segment.red_cells.colour_floor`).
    """

    index: int
    core: Box
    window: Box
    mpp: float
    mpp_source: str
    background: tuple[float, float, float]
    red_cell_tint: float
    smear: np.ndarray
    smear_origin: tuple[int, int]
    smear_downsample: float
    grid: int
    red_cell_chroma: tuple[float, float, float] | None = None
    outside_field: np.ndarray | None = None
    illumination: Illumination | None = None
    red_cell_scatter: float | None = None

    def owns(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Whether level-0 centroids ``(rows, cols)`` lie in this region's core."""
        r0, c0, r1, c1 = self.core
        rows, cols = np.asarray(rows), np.asarray(cols)
        return (rows >= r0) & (rows < r1) & (cols >= c0) & (cols < c1)


def _tile_size(slide) -> int:
    chunks = getattr(slide.levels[0], "chunksize", None)
    return int(chunks[0]) if chunks else 512


def _candidate_grid(slide, mpp: float, settings: SegmentSettings) -> int:
    return max(int(settings.candidate_mpp / mpp), 1)


def slide_mpp(
    slide, smear: SmearMask | None = None, estimate: Callable[[np.ndarray], float] | None = None
) -> tuple[float, str]:
    """The slide's µm/px and its source, estimating it from red cells when the file lacks it.

    Parameters
    ----------
    slide
        A :class:`hemascope.io.Slide`.
    smear
        Its smear mask (where to look for red cells); computed when ``None``.
    estimate
        ``picture -> µm/px`` of the (flat-fielded) central square read for it (default
        :func:`hemascope.segment.estimate_mpp`; the commands pass
        :func:`hemascope.classify.cell_scale.picture_scale`, which also reads a one-cell picture's cell).

    Returns
    -------
    mpp, source
        µm/px and ``"file"``/``"user"``/``"estimated"``; an estimated µm/px is a
        :class:`~hemascope.segment.scale.ScaleEstimate` (a ``float`` with a confidence).

    Raises
    ------
    InvalidInputError
        When the pixel size is unknown and cannot be estimated.
    """
    from hemascope.segment.scale import ScaleEstimate, estimate_mpp

    if slide.mpp:  # an estimate set earlier (e.g. pooled over a batch) keeps its confidence
        known = slide.mpp if isinstance(slide.mpp, ScaleEstimate) else float(slide.mpp)
        return known, slide.mpp_source or "file"

    smear = smear or compute_smear_mask(slide)  # coarse: its sizes assume 8 µm/px thumbnails
    rows, cols = slide.shape
    size = min(2048, rows, cols)
    d = smear.downsample
    if smear.outside_field is not None:  # a photograph's field stop: the largest square inside it
        depth = ndi.distance_transform_edt(~smear.outside_field)
        r, c = np.unravel_index(int(np.argmax(depth)), depth.shape)
        centre = ((r + 0.5) * d, (c + 0.5) * d)
        size = max(min(size, int(np.sqrt(2.0) * (depth[r, c] - 1) * d)), 64)
    elif smear.mask.any():
        ys, xs = np.nonzero(smear.mask)
        k = len(ys) // 2
        centre = (ys[k] * d, xs[k] * d)
    else:
        centre = (rows / 2, cols / 2)
    r0 = int(np.clip(centre[0] - size / 2, 0, rows - size))
    c0 = int(np.clip(centre[1] - size / 2, 0, cols - size))
    try:  # a ScaleEstimate: a float that also carries its confidence
        picture = smear.as_flat_field(slide.read_region(0, r0, c0, size, size), (r0, c0))
        return (estimate or estimate_mpp)(picture), "estimated"
    except InvalidInputError as exc:
        raise InvalidInputError(f"{slide.name}: µm/px unknown and not estimable ({exc})") from None


def plan_regions(
    slide,
    settings: SegmentSettings | Mapping[str, Any] | None = None,
    *,
    region_size: int = 2048,
    roi: Any = None,
    smear: SmearMask | None = None,
) -> list[Region]:
    """Split a slide into independent regions over its smear (and ROI).

    Parameters
    ----------
    slide
        A :class:`hemascope.io.Slide`; when its ``mpp`` is ``None`` it is estimated from red cells.
    settings
        :class:`SegmentSettings` or a mapping of them.
    region_size
        Core side in level-0 pixels (rounded up to whole file tiles).
    roi
        Optional polygon ``(n, 2)`` in µm, ``(y, x)`` = ``(row, col)``.
    smear
        A precomputed smear mask (computed when ``None``).

    Returns
    -------
    list of Region
        Regions whose core overlaps the smear; empty for a blank slide.

    Raises
    ------
    InvalidInputError
        For an ROI outside the slide, or an unknown and non-estimable µm/px.
    """
    settings = SegmentSettings.from_any(settings)
    if region_size < 64:
        raise InvalidInputError(f"region_size must be >= 64, got {region_size}")
    mpp, source = slide_mpp(slide)
    if smear is None or roi is not None:
        if slide.mpp is None:
            slide.mpp, slide.mpp_source = mpp, source
        smear = compute_smear_mask(slide, roi)
    tile = _tile_size(slide)
    if region_size >= tile:
        core = int(math.ceil(region_size / tile) * tile)
    else:  # a whole fraction of a tile, so cores still align with the tiles
        core = tile // (tile // region_size)
    grid = _candidate_grid(slide, mpp, settings)
    overlap = int(math.ceil(settings.max_diameter_um / mpp / grid + 2) * grid)
    rows, cols = slide.shape
    regions: list[Region] = []
    for r0 in range(0, rows, core):
        for c0 in range(0, cols, core):
            box = (r0, c0, min(r0 + core, rows), min(c0 + core, cols))
            if not smear.any_in(box):
                continue
            window = ((r0 - overlap) // grid * grid, (c0 - overlap) // grid * grid, box[2] + overlap, box[3] + overlap)
            d = smear.downsample
            wr0, wc0 = max(int(window[0] / d), 0), max(int(window[1] / d), 0)
            cut = (slice(wr0, int(math.ceil(window[2] / d))), slice(wc0, int(math.ceil(window[3] / d))))
            outside = None if smear.outside_field is None else smear.outside_field[cut]
            regions.append(
                Region(len(regions), box, window, mpp, source, smear.background, smear.red_cell_tint,
                       smear.mask[cut].copy(), (wr0, wc0), d, grid, smear.red_cell_chroma,
                       None if outside is None or not outside.any() else outside.copy(), smear.illumination,
                       smear.red_cell_scatter)
            )
    return regions


def _in_smear(region: Region, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    d = region.smear_downsample
    r = np.floor(rows / d).astype(int) - region.smear_origin[0]
    c = np.floor(cols / d).astype(int) - region.smear_origin[1]
    ok = (r >= 0) & (c >= 0) & (r < region.smear.shape[0]) & (c < region.smear.shape[1])
    out = np.zeros(len(rows), dtype=bool)
    out[ok] = region.smear[r[ok], c[ok]]
    return out


def _as_flat_field(region: Region, image: np.ndarray, top_left: tuple[int, int], step: int) -> np.ndarray:
    """``image`` (read at level-0 ``top_left``, ``step`` level-0 pixels per pixel) evenly lit
    (:class:`~hemascope.segment.illumination.Illumination`), the pixels outside a photograph's
    field stop read as glass (:func:`~hemascope.segment.smear.blank_outside_field`)."""
    d = region.smear_downsample
    return flat_field(image, top_left, step, region.illumination, region.outside_field,
                      (region.smear_origin[0] * d, region.smear_origin[1] * d), d, region.background)


def read_reduced(slide, box: Box, grid: int) -> np.ndarray:
    """Read a level-0 box at ``1/grid`` resolution (block means over the best pyramid level).

    Parameters
    ----------
    slide
        A :class:`hemascope.io.Slide`.
    box
        Level-0 ``(row0, col0, row1, col1)`` with ``row0``/``col0`` multiples of ``grid``.
    grid
        Level-0 pixels per output pixel.

    Returns
    -------
    numpy.ndarray
        ``(ceil(h / grid), ceil(w / grid), 3)`` uint8.
    """
    level = 0
    for i, d in enumerate(slide.downsamples):
        if d <= grid and grid % round(d) == 0 and abs(d - round(d)) < 1e-6:
            level = i
    d = int(round(slide.downsamples[level]))
    f = grid // d
    r0, c0, r1, c1 = box
    h = int(math.ceil((r1 - r0) / grid)) * f
    w = int(math.ceil((c1 - c0) / grid)) * f
    image = slide.read_region(level, r0 // d, c0 // d, h, w)
    if f > 1:
        image = image.reshape(h // f, f, w // f, f, 3).mean(axis=(1, 3))
        image = np.round(image).astype(np.uint8)
    return image


#: Half-side of a close-up's crops at most, in largest cell diameters (a field's: 0.75).
CLOSE_UP_CROP_DIAMETERS = 1.25

#: Above this many candidates in a region, its level-0 window is read once instead of crop by crop.
_WINDOW_READ_MIN_CANDIDATES = 24


def _read_crops(slide, region: Region, rows: np.ndarray, cols: np.ndarray, half: int) -> list[np.ndarray]:
    size = 2 * half + 1
    if len(rows) < _WINDOW_READ_MIN_CANDIDATES:
        return [slide.read_region(0, r - half, c - half, size, size) for r, c in zip(rows, cols, strict=True)]
    r0, c0 = int(rows.min()) - half, int(cols.min()) - half
    window = slide.read_region(0, r0, c0, int(rows.max()) - r0 + half + 1, int(cols.max()) - c0 + half + 1)
    return [window[r - half - r0 : r + half + 1 - r0, c - half - c0 : c + half + 1 - c0].copy()
            for r, c in zip(rows, cols, strict=True)]


def _inside_picture(shape: tuple[int, ...], r0: int, c0: int, crop_shape: tuple[int, ...]
                    ) -> tuple[int, int, int, int] | None:
    """The box ``(row0, row1, col0, col1)`` of a crop at level-0 ``(r0, c0)`` that lies inside the
    picture (``None``: all of it)."""
    box = (max(-r0, 0), min(crop_shape[0], shape[0] - r0), max(-c0, 0), min(crop_shape[1], shape[1] - c0))
    return None if box == (0, crop_shape[0], 0, crop_shape[1]) else box


def _other_candidates(rows: np.ndarray, cols: np.ndarray, index: int, half: int, reach: float) -> np.ndarray:
    """Crop pixels ``(row, col)`` of the candidates other than ``index`` whose cells may reach into
    its crop (``half`` px each side; a cell spans ``reach`` px from its candidate)."""
    r0, c0 = rows[index] - half, cols[index] - half
    near = (np.abs(rows - rows[index]) <= half + reach) & (np.abs(cols - cols[index]) <= half + reach)
    near[index] = False
    return np.stack([rows[near] - r0, cols[near] - c0], axis=1).astype(np.float64)


#: Candidates segmented together; ``cancel`` is checked between such batches, so a cancelled
#: run stops within one batch's work however big the region is.
CANDIDATE_BATCH = 64

def segment_region_with_masks(
    slide, region: Region, settings: SegmentSettings | Mapping[str, Any] | None = None,
    *, cancel: CancelToken | None = None,
) -> tuple[pd.DataFrame, list[CellMask]]:
    """:func:`segment_region` that also returns each kept cell's masks (for label images).

    Returns
    -------
    cells, masks
        The region's cell table (``id`` numbered 1..n within the region) and one
        :class:`CellMask` per row.

    Raises
    ------
    Cancelled
        ``cancel`` was set (checked before each batch of :data:`CANDIDATE_BATCH` candidates).
    """
    settings = SegmentSettings.from_any(settings)
    check_cancelled(cancel)
    mpp, grid = region.mpp, region.grid
    reduced = _as_flat_field(region, read_reduced(slide, region.window, grid), region.window[:2], grid)
    # In a close-up one cell fills the view: its lobes are not split into candidates, and two
    # candidates on it (two lobes) whose crops outline it differently are one cell; a second cell
    # touching it is found in its crop (crop_cells.whole_neighbours). Not so on fields, where
    # touching cells of a packed field may share one outline yet are counted one by one from their
    # own candidates (docs/segmentation.md).
    close_up = is_close_up(slide.shape, mpp)
    centres = find_candidates(
        reduced, mpp * grid, region.background,
        min_diameter_um=settings.min_diameter_um, min_od=settings.candidate_min_od,
        red_cell_tint=region.red_cell_tint, red_cell_chroma=region.red_cell_chroma, split=not close_up,
        red_cell_scatter=region.red_cell_scatter,
    )
    if not close_up:  # a field's nucleus floor follows its red cells' colour
        field = settings.classical.for_field(region.red_cell_scatter, blue_grey(region.red_cell_chroma))
        settings = replace(settings, classical=field)
    rows = region.window[0] + centres[:, 0] * grid + (grid - 1) / 2
    cols = region.window[1] + centres[:, 1] * grid + (grid - 1) / 2
    keep = _in_smear(region, rows, cols) if len(rows) else np.zeros(0, dtype=bool)
    rows, cols = np.round(rows[keep]).astype(int), np.round(cols[keep]).astype(int)
    half = int(math.ceil(0.75 * settings.max_diameter_um / mpp))  # the largest cell fits, off-centre too
    if close_up and len(rows):
        # a close-up's crops reach its far edges (up to CLOSE_UP_CROP_DIAMETERS of the largest cell
        # each side): two big cells touching beside a candidate between them are both whole in its crop
        reach = max(rows.max(), slide.shape[0] - 1 - rows.min(), cols.max(), slide.shape[1] - 1 - cols.min())
        half = min(max(half, int(reach)), int(math.ceil(CLOSE_UP_CROP_DIAMETERS * settings.max_diameter_um / mpp)))
    check_cancelled(cancel)
    all_crops = [_as_flat_field(region, crop, (r - half, c - half), 1)  # one window read for the region
                 for crop, r, c in zip(_read_crops(slide, region, rows, cols, half), rows, cols, strict=True)]
    name = resolve_segmenter(settings)
    version = segmenter_version(name, settings.model)
    coloured = coloured_stain(reduced, region.background)  # else no ink to tell from stain
    tables: list[dict[str, Any]] = []
    masks: list[CellMask] = []
    seen: list[tuple[float, float]] = []  # centroids of the cells kept
    for start in range(0, len(rows), CANDIDATE_BATCH):
        check_cancelled(cancel)
        stop = start + CANDIDATE_BATCH
        crops = all_crops[start:stop]
        inside = [_inside_picture(slide.shape, r - half, c - half, crop.shape)
                  for r, c, crop in zip(rows[start:stop], cols[start:stop], crops, strict=True)]
        near = None if close_up or region.red_cell_chroma is not None else [  # fields on bare glass only
            _other_candidates(rows, cols, i, half, settings.classical.neighbour_um / mpp)
            for i in range(start, min(stop, len(rows)))]
        results = segment_crops(crops, mpp, region.background, settings, region.red_cell_tint, region.red_cell_chroma,
                                close_up=close_up, seen=inside, others=near)
        for (r, c), crop, box, (cells, nuclei) in zip(zip(rows[start:stop], cols[start:stop], strict=True), crops,
                                                      inside, results, strict=True):
            label = select_instance(cells, (half, half), settings.min_diameter_um / mpp)
            if not label:
                continue
            # a close-up's candidate may be two touching cells (one blob): its crop's other whole cells
            labels = [label, *(whole_neighbours(cells, nuclei, label, box, crop, region.background)
                               if close_up else [])]
            for cell in labels:
                one = cells == cell
                (row,) = cell_rows(one.astype(np.int32), (nuclei == cell).astype(np.int32), crop, mpp,
                                   offset=(r - half, c - half), segmenter=name, segmenter_version=version)
                cy, cx = row["row"], row["col"]
                if not region.owns(np.array([cy]), np.array([cx]))[0]:
                    continue
                if coloured and ink_like([row[f"nucleus_mean_{k}"] for k in "rgb"], region.background):
                    continue  # a scale bar or text burnt into the picture, not a nucleus
                if any(math.hypot(cy - y, cx - x) < settings.min_diameter_um / 2 / mpp for y, x in seen):
                    continue  # the same cell reached from a second candidate (e.g. another lobe)
                mask = cut_to_box(one, nuclei == cell, (r - half, c - half))
                if close_up and any(same_cell(mask, other) for other in masks):
                    continue  # the same cell outlined differently from a second candidate's crop
                seen.append((cy, cx))
                tables.append(row)
                masks.append(mask)
        del crops, results
    del all_crops
    release_free_heap()
    if not tables:
        return empty_cell_table(), []
    out = pd.DataFrame(tables)
    out["id"] = np.arange(1, len(out) + 1, dtype=np.int64)
    return as_cell_table(out), masks


def _load_malloc_trim():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl): nothing to do
        return None


_MALLOC_TRIM = _load_malloc_trim()


def release_free_heap() -> None:
    """Give the C heap's free pages back to the system (glibc ``malloc_trim``; elsewhere a no-op).

    Each region allocates and frees many image-sized arrays on several threads; glibc keeps the
    freed memory in per-thread arenas, fragmented by the small objects that live on (cell rows), so
    the process's resident memory creeps up with the number of regions, i.e. with slide size.
    Trimming after each region keeps it flat.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def segment_region(
    slide, region: Region, settings: SegmentSettings | Mapping[str, Any] | None = None,
    *, cancel: CancelToken | None = None,
) -> pd.DataFrame:
    """Find and segment the white cells owned by one region.

    Parameters
    ----------
    slide
        The :class:`hemascope.io.Slide` the region was planned on.
    region
        One of :func:`plan_regions`.
    settings
        :class:`SegmentSettings` or a mapping (e.g. ``{"segmenter": "classical"}``).
    cancel
        Checked between batches of candidates (:data:`CANDIDATE_BATCH`); see
        :mod:`hemascope.progress`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`~hemascope.segment.table.CELL_COLUMNS`; cells whose centroid lies in the
        region's core; ``id`` numbered 1..n within the region (renumber after concatenating, see
        :func:`~hemascope.segment.table.concat_cell_tables`).
    """
    return segment_region_with_masks(slide, region, settings, cancel=cancel)[0]
