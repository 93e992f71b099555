"""Where the smear is: a low-resolution smear-vs-glass mask, combined with an optional ROI polygon.

The mask is computed on a thumbnail of about ``mask_mpp`` µm/px. Glass is bright; the smear is
faintly to strongly stained; pen marks and the slide edge or label are far denser than any stained
blood (or not stain-coloured at all) and are excluded, with a safety margin around them. The dark
surround of a photograph through a microscope (outside the round field stop of an eyepiece or a
camera adapter) lets no light through in any colour: it is no smear either, but it is excluded
without a margin (cells reach the edge of the field) and its pixels are read as glass
(:func:`blank_outside_field`), so that it is never taken for stain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage import draw, filters, morphology

from hemascope.errors import InvalidInputError
from hemascope.segment.illumination import Illumination, estimate_illumination
from hemascope.segment.masks import fill_holes
from hemascope.segment.red_cells import close_up_red_cell_chroma, field_red_cell_chroma
from hemascope.segment.stain import (
    CLOSE_UP_MAX_RED_CELL_TINT,
    blue_grey,
    chroma_tint_cap,
    colour_tint,
    estimate_background,
    optical_density,
    red_cell_chroma,
    red_cell_tint,
    red_cell_tint_cap,
    total_density,
)

#: Mean OD (sum of channels) above which a low-resolution pixel is not smear but ink/edge/label.
_INK_OD = 1.2
#: Fields narrower than this (µm) are white-cell close-ups: no pen marks or slide edges to find.
_MIN_INK_FIELD_UM = 200.0
#: Mean OD below which a low-resolution pixel is bare glass.
_GLASS_OD = 0.04
#: Optical density, in every channel, above which a pixel lets (almost) no light through: the dark
#: surround outside a microscope's field stop, not stain (a nucleus transmits blue light).
OUTSIDE_FIELD_OD = 0.8
#: A pixel next to that surround is read as glass when this dark in every channel (the field
#: stop's blurred edge; no nucleus is).
_OUTSIDE_FIELD_EDGE_OD = 0.6
#: Least area (µm²) of a dark surround touching the image border: far above any nucleus.
_OUTSIDE_FIELD_MIN_UM2 = 2000.0
#: Shorter side (pixels, and µm when known) of a picture whose illumination is measured: an
#: eyepiece's field of view at 100x is about 180-250 µm across.
_MIN_FIELD_SIDE = 512
_MIN_FIELD_UM = 150.0
#: Coarsest thumbnail (µm/px) on which a field is checked for red cells (nuclei >= ~3 px across).
_MAX_RED_CELL_CHECK_MPP = 2.0
#: Longest side of the smear-mask thumbnail (coarser than ``mask_mpp`` on very large slides), so
#: that the mask's memory is bounded whatever the slide size.
_MAX_MASK_SIDE = 2048


@dataclass(frozen=True)
class SmearMask:
    """A boolean mask over the slide at reduced resolution.

    Attributes
    ----------
    mask
        ``(rows, cols)`` bool, True where white cells may be searched.
    downsample
        Level-0 pixels per mask pixel.
    background
        Glass colour (RGB) measured on the thumbnail.
    red_cell_tint
        The slide's red-cell tint (:func:`~hemascope.segment.stain.red_cell_tint`).
    red_cell_chroma
        The red cells' OD direction (:func:`~hemascope.segment.stain.red_cell_chroma`; for
        close-ups, fields narrower than :data:`~hemascope.segment.stain.CLOSE_UP_UM` where a white
        cell may be the dominant stain, :func:`~hemascope.segment.red_cells.close_up_red_cell_chroma`);
        ``None`` when no red cells are seen, a close-up's colours are too weak, or the slide is blank.
    outside_field
        Same grid as ``mask``: True outside a photograph's field stop (:func:`outside_field`) and
        one mask pixel into it (its edge); ``None`` when the whole image is field of view.
    illumination
        The radial fall-off of a photographed field
        (:func:`~hemascope.segment.illumination.estimate_illumination`), divided out of every
        pixel the regions read; ``None`` for slides, close-ups and evenly lit fields.
    red_cell_scatter
        The scatter of a field's red cells' colour
        (:attr:`~hemascope.segment.red_cells.FieldRedCells.scatter`: the colour floors follow it,
        :func:`~hemascope.segment.red_cells.colour_floor`); ``None`` for close-ups, coarse
        thumbnails and fields without red cells.
    """

    mask: np.ndarray
    downsample: float
    background: tuple[float, float, float]
    red_cell_tint: float = 0.0
    red_cell_chroma: tuple[float, float, float] | None = None
    outside_field: np.ndarray | None = None
    illumination: Illumination | None = None
    red_cell_scatter: float | None = None

    def as_flat_field(self, image: np.ndarray, top_left: tuple[float, float], step: float = 1.0) -> np.ndarray:
        """``image`` (read at level-0 ``top_left``, ``step`` level-0 pixels per pixel) evenly lit,
        with the pixels outside a photograph's field stop read as glass (:func:`blank_outside_field`)."""
        return flat_field(image, top_left, step, self.illumination, self.outside_field, (0.0, 0.0),
                          self.downsample, self.background)

    def covers(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Whether level-0 points ``(rows, cols)`` lie inside the mask."""
        r = np.clip((np.asarray(rows) / self.downsample).astype(int), 0, self.mask.shape[0] - 1)
        c = np.clip((np.asarray(cols) / self.downsample).astype(int), 0, self.mask.shape[1] - 1)
        return self.mask[r, c]

    def any_in(self, box: tuple[int, int, int, int]) -> bool:
        """Whether any mask pixel falls inside the level-0 box ``(row0, col0, row1, col1)``."""
        r0, c0, r1, c1 = (int(v / self.downsample) for v in box)
        return bool(self.mask[r0 : max(r1, r0 + 1), c0 : max(c1, c0 + 1)].any())


def smear_mask_from_thumbnail(
    thumbnail: np.ndarray, mpp: float | None, outside: np.ndarray | None = None
) -> np.ndarray:
    """Smear-vs-glass mask of a thumbnail, without pen marks, slide edges and the field stop.

    Optical densities are computed strip by strip (:data:`_STRIP_ROWS` rows plus a margin wider
    than the smoothing kernel, so the result equals a whole-image computation): only boolean
    masks of the whole thumbnail are held.

    Parameters
    ----------
    thumbnail
        ``(rows, cols, 3)`` uint8 RGB at low resolution.
    mpp
        Its µm/px (``None``: sizes are taken relative to the thumbnail).
    outside
        Where the thumbnail shows no specimen (:func:`outside_field`): excluded without the
        safety margin of ink.

    Returns
    -------
    numpy.ndarray
        ``(rows, cols)`` bool.
    """
    background = estimate_background(thumbnail)
    scale = mpp if mpp else 8.0
    limit = max(min(thumbnail.shape[:2]) / 16, 1.0)  # kernels stay small against the image
    smooth = float(np.clip(24.0 / scale, 1.0, limit))  # ~ three red cells
    find_ink = mpp is None or min(thumbnail.shape[:2]) * mpp >= _MIN_INK_FIELD_UM
    if outside is not None:  # read as glass: its darkness must not bleed into the smoothed density
        thumbnail = thumbnail.copy()
        thumbnail[outside] = np.round(background).astype(np.uint8)
    smear, ink = _strip_masks(thumbnail, background, smooth, find_ink)
    if find_ink:
        ink = morphology.dilation(ink, morphology.disk(int(np.clip(round(40.0 / scale), 1, limit))))
    smear &= ~ink
    smear = morphology.remove_small_objects(smear, max_size=int(np.clip((100.0 / scale) ** 2, 4, limit**2)))
    return fill_holes(smear) & ~ink


#: Thumbnail rows turned into optical densities at a time (bounds the float arrays held).
_STRIP_ROWS = 256


def _strip_masks(
    thumbnail: np.ndarray, background: np.ndarray, smooth: float, find_ink: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Stained-vs-glass and ink masks (before dilation) of a thumbnail, row strip by row strip."""
    rows = thumbnail.shape[0]
    halo = int(4 * smooth) + 6  # the Gaussian's reach (truncate=4) plus the ink opening's
    smear = np.zeros(thumbnail.shape[:2], dtype=bool)
    ink = np.zeros(thumbnail.shape[:2], dtype=bool)
    for r0 in range(0, rows, _STRIP_ROWS):
        r1 = min(r0 + _STRIP_ROWS, rows)
        a, b = max(r0 - halo, 0), min(r1 + halo, rows)
        od = optical_density(thumbnail[a:b], background)
        density = filters.gaussian(total_density(od), sigma=smooth)[r0 - a : r1 - a]
        smear[r0:r1] = density > _GLASS_OD
        if find_ink:
            # Dense over several red-cell widths (no nucleus is that large): pen, slide edge, label.
            # Ink that is not Romanowsky-coloured: green/blue pens absorb red but little green.
            neutral = (od[..., 1] < 0.6 * od[..., 0]) & (od.sum(axis=-1) > 0.6)
            ink[r0:r1] = (density > _INK_OD) | ndi.binary_opening(neutral, iterations=2)[r0 - a : r1 - a]
    return smear, ink


def outside_field(thumbnail: np.ndarray, background: np.ndarray, mpp: float | None) -> np.ndarray | None:
    """Where a photograph through a microscope shows no specimen: the dark surround of its field stop.

    Areas that let almost no light through in any colour (:data:`OUTSIDE_FIELD_OD` in every
    channel), touch the image border and cover at least :data:`_OUTSIDE_FIELD_MIN_UM2`: the black
    corners or ring of an eyepiece photograph or of a camera with a round field of view.

    Parameters
    ----------
    thumbnail
        ``(rows, cols, 3)`` uint8 RGB at low resolution.
    background
        Glass colour.
    mpp
        Its µm/px (``None``: unknown; an area must also cover 1 % of the thumbnail).

    Returns
    -------
    numpy.ndarray or None
        ``(rows, cols)`` bool, or ``None`` when there is no such area.
    """
    rows = thumbnail.shape[0]
    dark = np.zeros(thumbnail.shape[:2], dtype=bool)
    for r0 in range(0, rows, _STRIP_ROWS):
        dark[r0 : r0 + _STRIP_ROWS] = optical_density(thumbnail[r0 : r0 + _STRIP_ROWS], background).min(axis=-1) > OUTSIDE_FIELD_OD
    if not dark.any():
        return None
    labels, _ = ndi.label(dark)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    sizes = np.bincount(labels.ravel())
    # scale unknown (the thumbnail may be the picture itself): at least a hundredth of the picture too
    least = _OUTSIDE_FIELD_MIN_UM2 / mpp**2 if mpp else max(_OUTSIDE_FIELD_MIN_UM2 / 64.0, 0.01 * dark.size)
    big = border[(border > 0) & (sizes[border] >= least)]
    if not len(big):
        return None
    return np.isin(labels, big)


def flat_field(
    image: np.ndarray, top_left: tuple[float, float], step: float, illumination: Illumination | None,
    outside: np.ndarray | None, outside_top_left: tuple[float, float], downsample: float,
    background: tuple[float, float, float],
) -> np.ndarray:
    """``image`` (read at level-0 ``top_left``, ``step`` level-0 pixels per pixel) evenly lit
    (``illumination`` divided out) and with the pixels outside a photograph's field stop read as
    glass (:func:`blank_outside_field`; ``outside`` starts at level-0 ``outside_top_left``, one of
    its pixels spans ``downsample`` level-0 pixels). ``image`` itself when neither applies."""
    if illumination is not None:
        image = illumination.correct(image, top_left, step)
    origin = (top_left[0] - outside_top_left[0], top_left[1] - outside_top_left[1])
    return blank_outside_field(image, outside, origin, step, downsample, background)


def blank_outside_field(
    image: np.ndarray, outside: np.ndarray | None, origin: tuple[float, float], step: float,
    downsample: float, background: tuple[float, float, float],
) -> np.ndarray:
    """An image with the pixels outside a photograph's field stop painted the glass colour.

    A pixel is painted when it lies in :attr:`SmearMask.outside_field` (the dark surround found by
    :func:`outside_field` and one mask pixel next to it) and is itself dark in every channel
    (:data:`_OUTSIDE_FIELD_EDGE_OD`): the field stop's edge is followed at full resolution, and
    stain well inside the field is never touched.

    Parameters
    ----------
    image
        ``(rows, cols, 3)`` uint8 RGB read from the slide.
    outside
        :attr:`SmearMask.outside_field` over the area read (``None``: returned as is).
    origin
        Level-0 ``(row, col)`` of ``image[0, 0]`` minus that of ``outside[0, 0]``.
    step
        Level-0 pixels per ``image`` pixel.
    downsample
        Level-0 pixels per ``outside`` pixel.
    background
        Glass colour.

    Returns
    -------
    numpy.ndarray
        ``image`` itself when nothing is painted, else a painted copy.
    """
    if outside is None or not outside.any():
        return image
    rows = origin[0] + np.arange(image.shape[0]) * step  # level-0, from outside[0, 0]
    cols = origin[1] + np.arange(image.shape[1]) * step
    rr = np.clip((rows // downsample).astype(int), 0, outside.shape[0] - 1)
    cc = np.clip((cols // downsample).astype(int), 0, outside.shape[1] - 1)
    where = outside[rr[:, None], cc[None, :]] & (rows >= 0)[:, None] & (cols >= 0)[None, :]
    if not where.any():
        return image
    where &= optical_density(image, np.asarray(background, dtype=np.float32)).min(axis=-1) > _OUTSIDE_FIELD_EDGE_OD
    if not where.any():
        return image
    out = image.copy()
    out[where] = np.round(background).astype(np.uint8)
    return out


def roi_mask(roi_um: np.ndarray | list, shape: tuple[int, int], um_per_px: float) -> np.ndarray:
    """Rasterise a polygon given in µm ``(y, x)`` = ``(row, col)`` onto a grid of ``um_per_px``.

    Parameters
    ----------
    roi_um
        ``(n, 2)`` vertices in µm, ``n >= 3``.
    shape
        Grid ``(rows, cols)``.
    um_per_px
        µm per grid pixel.

    Returns
    -------
    numpy.ndarray
        ``(rows, cols)`` bool.

    Raises
    ------
    InvalidInputError
        For a malformed polygon or one that does not overlap the slide.
    """
    poly = np.asarray(roi_um, dtype=float)
    if poly.ndim != 2 or poly.shape[1] != 2 or poly.shape[0] < 3 or not np.isfinite(poly).all():
        raise InvalidInputError(f"ROI must be a polygon of at least 3 (y, x) µm vertices, got shape {poly.shape}")
    mask = draw.polygon2mask(shape, poly / um_per_px)
    if not mask.any():
        rows, cols = shape
        raise InvalidInputError(
            f"the ROI (y {poly[:, 0].min():.0f}..{poly[:, 0].max():.0f} µm, "
            f"x {poly[:, 1].min():.0f}..{poly[:, 1].max():.0f} µm) lies outside the slide "
            f"({rows * um_per_px:.0f} x {cols * um_per_px:.0f} µm)"
        )
    return mask


def low_resolution(
    slide, target_mpp: float | None, max_side: int = 4096, min_side: int = 256
) -> tuple[np.ndarray, float]:
    """A low-resolution RGB copy of a slide, read level by level in bounded memory.

    Parameters
    ----------
    slide
        A :class:`hemascope.io.Slide`.
    target_mpp
        Wanted µm/px (``None``: the longer side becomes ``max_side``).
    max_side
        Upper bound of the longer side.
    min_side
        The longer side is never reduced below this (small fields keep their detail).

    Returns
    -------
    image, downsample
        ``(rows, cols, 3)`` uint8 and its level-0 pixels per pixel.
    """
    rows0, cols0 = slide.shape
    want = 1.0
    if target_mpp and slide.mpp:
        want = min(target_mpp / slide.mpp, max(rows0, cols0) / min_side)
    want = max(want, max(rows0, cols0) / max_side, 1.0)
    level = 0
    for i, d in enumerate(slide.downsamples):
        if d <= want * 1.0001:
            level = i
    arr = slide.levels[level]
    d = slide.downsamples[level]
    factor = max(int(want / d), 1)
    while max(rows0, cols0) / (d * factor) > max_side * 1.0001:
        factor += 1
    for i, di in enumerate(slide.downsamples):  # a level that is already that coarse
        if factor > 1 and abs(di - d * factor) < 1e-6:
            level, d, factor, arr = i, di, 1, slide.levels[i]
    if factor > 1:
        import dask.array as da

        rows, cols = (arr.shape[0] // factor) * factor, (arr.shape[1] // factor) * factor
        if rows == 0 or cols == 0:
            factor = 1
        else:
            arr = da.coarsen(_mean_uint8, arr[:rows, :cols, :3], {0: factor, 1: factor},
                             trim_excess=True, dtype=np.uint8)
    image = np.asarray(arr.compute() if hasattr(arr, "compute") else arr)[..., :3]
    return np.ascontiguousarray(image, dtype=np.uint8), d * factor


def _mean_uint8(block: np.ndarray, axis=None, **_: object) -> np.ndarray:
    return np.round(np.mean(block, axis=axis, dtype=np.float32)).astype(np.uint8)


def _nuclei_only_without(chroma: tuple[float, float, float], scatter: float | None, thumb: np.ndarray,
                         bg: np.ndarray, mpp: float, step: int) -> bool:
    """Whether a field's red-cell colour ``chroma`` leaves no white-cell candidate while the tests
    of a field without red-cell colour find nuclei (:func:`~hemascope.segment.candidates.find_candidates`
    on the thumbnail, both ways): the "red cells" seen are then the white cells' own cytoplasm (big
    or blurred white cells on bare glass) or too close in colour to a pale stain's nuclei, and the
    field is referenced as one without red cells. (Not asked of blue-grey red cells: as lilac as
    nuclei, their overlaps pass the colourless tests.)"""
    from hemascope.segment.candidates import find_candidates
    from hemascope.segment.settings import SegmentSettings

    settings = SegmentSettings()
    grid = max(int(settings.candidate_mpp / mpp), 1)  # the regions' candidate search sees this grid
    rows, cols = thumb.shape[0] // grid * grid, thumb.shape[1] // grid * grid
    reduced = _mean_uint8(thumb[:rows, :cols].reshape(rows // grid, grid, cols // grid, grid, 3), axis=(1, 3))
    mpp *= grid
    if len(find_candidates(reduced, mpp, bg, red_cell_chroma=chroma, red_cell_scatter=scatter)):  # no tint test
        return False
    bare = red_cell_tint(thumb[::step, ::step], bg, CLOSE_UP_MAX_RED_CELL_TINT)  # as a field without red cells
    return len(find_candidates(reduced, mpp, bg, min_od=settings.candidate_min_od, red_cell_tint=bare)) > 0


def compute_smear_mask(slide, roi_um=None, mask_mpp: float = 8.0) -> SmearMask:
    """The smear mask of a slide, optionally restricted to an ROI polygon in µm.

    Parameters
    ----------
    slide
        A :class:`hemascope.io.Slide` (its ``mpp`` may be ``None`` when no ROI is given).
    roi_um
        Optional ``(n, 2)`` polygon, ``(y, x)`` µm.
    mask_mpp
        µm/px of the mask.

    Returns
    -------
    SmearMask
        The mask, its downsample and the glass colour.

    Raises
    ------
    InvalidInputError
        If an ROI is given without µm/px, or lies outside the slide.
    """
    thumb, downsample = low_resolution(slide, mask_mpp, max_side=_MAX_MASK_SIDE)
    mpp = slide.mpp * downsample if slide.mpp else None
    outside = outside_field(thumb, estimate_background(thumb), mpp)
    # where a pixel read may be the surround: it and the stop's edge (dilated once, here)
    surround = None if outside is None else ndi.binary_dilation(outside, structure=np.ones((3, 3), dtype=bool))
    cap = red_cell_tint_cap(slide.shape, slide.mpp)
    close_up = cap == CLOSE_UP_MAX_RED_CELL_TINT
    illumination = None
    scatter = None
    # a photographed field: a picture or one-level image, not a scanned slide (a pyramid), nor a
    # close-up or a small crop of a field (too few glass blocks between the cells to fit a fall-off)
    field = slide.is_picture or len(slide.downsamples) == 1
    if field and min(slide.shape) >= _MIN_FIELD_SIDE and min(slide.shape) * (slide.mpp or 1.0) >= _MIN_FIELD_UM:
        illumination = estimate_illumination(thumb, downsample, outside)
        if illumination is not None:
            thumb = illumination.correct(thumb, (0.0, 0.0), downsample)
    bg = estimate_background(thumb)
    mask = smear_mask_from_thumbnail(thumb, mpp, outside)
    if roi_um is not None:
        if mpp is None:
            raise InvalidInputError("an ROI in µm needs the slide's µm/px (pass mpp)")
        mask &= roi_mask(roi_um, mask.shape, mpp)
    if outside is not None:  # the stain references are measured in the field of view only
        thumb = thumb.copy()
        thumb[outside] = np.round(bg).astype(np.uint8)
    step = max(int(np.ceil(np.sqrt(thumb.shape[0] * thumb.shape[1] / 1e6))), 1)  # <= ~1 Mpx
    thumb_mpp = slide.mpp * downsample if slide.mpp else None
    apart = True  # the red cells' colour measured apart from the nuclei (a close-up's far stain, a field's clusters)
    if close_up and thumb_mpp:
        chroma = close_up_red_cell_chroma(thumb, bg, thumb_mpp)
    elif thumb_mpp is not None and thumb_mpp <= _MAX_RED_CELL_CHECK_MPP:
        chroma, seen, scatter = field_red_cell_chroma(thumb, bg, thumb_mpp, step)
        if (seen and chroma is not None and not blue_grey(chroma)
                and _nuclei_only_without(chroma, scatter, thumb, bg, thumb_mpp, step)):
            chroma, seen, scatter = None, False, None
        if not seen:  # white cells on bare glass (no red cells in the field): referenced like a
            # close-up, so that their own cytoplasm does not become the red-cell reference
            cap = CLOSE_UP_MAX_RED_CELL_TINT
    else:  # a slide's coarse thumbnail, where red cells and nuclei blend
        chroma = red_cell_chroma(thumb[::step, ::step], bg)
        apart = False
    tint = red_cell_tint(thumb[::step, ::step], bg, chroma_tint_cap(chroma, cap))
    if apart and chroma is not None and blue_grey(chroma):
        # blue-grey red cells are their own tint: under the cap, those touching a white cell
        # passed for its cytoplasm
        tint = max(tint, colour_tint(chroma))
    return SmearMask(
        mask=mask,
        downsample=float(downsample),
        background=(float(bg[0]), float(bg[1]), float(bg[2])),
        red_cell_tint=tint,
        red_cell_chroma=chroma,
        outside_field=surround,
        illumination=illumination,
        red_cell_scatter=scatter,
    )

