"""The ``classical`` backend: white-cell nucleus and whole-cell masks with scikit-image only.

Steps, all sizes in micrometres:

1. optical density against the glass colour (:mod:`hemascope.segment.stain`);
2. **nucleus**: the nuclear evidence smoothed, thresholded at the larger of Otsu's threshold and
   a floor, small specks removed, holes filled; a hysteresis version (fainter stain joined to
   dense chromatin: thin band nuclei) seeds and validates the cells. The evidence is the density
   off the red cells' own colour where that colour is known (fields, slides: nuclei of any hue,
   magenta ones included), else the red-channel OD (the purple-blue nuclear dye); in a close-up
   whose red-channel nuclei lack the lilac tint (magenta nuclei of Wright, Leishman and rapid
   stains, red-cell colour unknown), the density along the nuclei's own colour, thresholded as
   the densest of three classes among red cells of their hue (Otsu on bare glass); a candidate's
   own nucleus where a darker neighbour set the crop's threshold above it
   (:mod:`hemascope.segment.nuclei`);
3. **whole cell**: pixels bluer than the red cells around the cell (their tint, measured
   locally, away from the nuclei; every stained pixel for a cell on bare glass) plus the nuclei,
   closed, hole-filled and opened to cut thin bridges to red cells, then kept only where they
   hold a nucleus; a cell whose cytoplasm no colour test sees (the red cells' own colour, in a
   pale or blue-grey stain, or granules as dense as the red cells: an eosinophil's, told by their
   specks) keeps what a watershed floods from it before it floods from the red cells: its
   cytoplasm up to the glass or to the edge of a red cell it touches;
4. **touching cells** are split by a watershed on distance-transform markers (h-maxima), so the
   lobes of one neutrophil stay one cell; parts cut through one nucleus (a single maximum of its
   own distance map) are joined again; instances without a nucleus are dropped
   (:mod:`hemascope.segment.instances`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage as ndi
from skimage import filters, morphology, segmentation

from hemascope.segment.classical_params import ClassicalParams
from hemascope.segment.instances import min_nucleus_px, split_cells
from hemascope.segment.instances import um_to_px as _px
from hemascope.segment.masks import binary_closing, disk, fill_holes
from hemascope.segment.nuclei import (
    centre_nucleus,
    non_lilac_nucleus_colour,
    nucleus_masks,
    stain_away_from,
)
from hemascope.segment.reference import local_reference, reference_tint
from hemascope.segment.stain import (
    estimate_background,
    leukocyte_tint,
    off_red_cell_density,
    optical_density,
    red_cell_tint_cap,
    total_density,
)
from hemascope.segment.stain import red_cell_tint as estimate_red_cell_tint

VERSION = "classical-11"

#: A nucleus's cytoplasm is unseen by colour (:func:`_own_basin`) when the ring around it is at
#: least :data:`UNSEEN_MIN_RING` stained and no red cell, and the colour tests keep less than this share of that.
UNSEEN_MIN_SHARE = 0.5
#: ... (an eosinophil's ring may be half glass where its nucleus lies near the cell's edge).
UNSEEN_MIN_RING = 0.4
#: ... and its nucleus at least this many times ``cell_min_nucleus_um2`` (a scale bar's glyphs are no cell).
UNSEEN_MIN_NUCLEI = 2
#: Radius (µm) of the specks :func:`granularity` measures (an eosinophil's granules).
GRANULE_UM = 0.6
#: Stain this many times as granular as the red cells around (their median) is no red cell
#: (:func:`_own_basin`).
GRANULAR_FACTOR = 4.0


def cell_mask(
    od: np.ndarray,
    nuclei: np.ndarray,
    mpp: float,
    params: ClassicalParams = ClassicalParams(),
    red_cell_tint: float = 0.0,
    granules: bool = True,
    off_red_cell: np.ndarray | None = None,
    seen: np.ndarray | None = None,
    *,
    trim_after: bool = False,
    elsewhere: np.ndarray | None = None,
) -> np.ndarray:
    """Boolean mask of white-cell pixels (cytoplasm and nucleus) around the given nuclei.

    The stained pixels farther than ``reference_um`` from every nucleus are the *local reference*
    (red cells, at this spot of the slide): white-cell pixels are those bluer than the reference's
    tint (:func:`~hemascope.segment.reference.reference_tint`, or the slide's ``red_cell_tint``,
    whichever is larger) by ``tint_threshold``, and at
    least ``cytoplasm_min_red_cell_density`` times as dense as the reference's median (the faint
    haze around cells of a defocused picture is no cytoplasm); a cell
    with fewer than ``reference_min_um2`` of stained pixels around it lies on bare glass, and every
    stained pixel counts (the pink granules of an eosinophil too); among red cells, pixels denser
    than ``granule_density_factor`` times the reference's 90th density percentile count too,
    whatever their colour (the orange granules of an eosinophil have the red cells' tint); a cell
    whose cytoplasm these tests do not see keeps what flooding from it reaches first
    (:func:`_own_basin`). When there is neither room for a local reference nor glass around (a
    tight crop), the slide's ``red_cell_tint`` is the reference. The glass-or-red-cells decision
    is checked one ``scale_tolerance`` nearer and farther, for a µm/px that is only approximate
    (:func:`~hemascope.segment.reference.local_reference`).
    Nothing farther than ``max_rim_um`` from a nucleus is cytoplasm. These plus the nuclei are
    closed, hole-filled and opened (cutting thin bridges to red cells); only regions holding a
    nucleus stay.

    Parameters
    ----------
    od
        ``(rows, cols, 3)`` optical densities.
    nuclei
        Nucleus mask from :func:`nucleus_mask`.
    mpp
        Micrometres per pixel.
    params
        Backend parameters.
    red_cell_tint
        The slide's red-cell tint (:func:`~hemascope.segment.stain.red_cell_tint`).
    granules
        Apply the dense-granule rule (close-ups; on fields the red-cell colour test decides).
    off_red_cell
        Smoothed density off the red-cell colour: when given, cytoplasm (not granules, nor the
        unseen cytoplasm of :func:`_own_basin`) must carry ``min_off_red_cell_cytoplasm_od`` of it.
    seen
        Pixels inside the picture (``None``: all); the padding outside it is no glass.
    trim_after
        Apply the ``off_red_cell`` test to the closed and opened mask (fields) instead of to the
        pixels before closing (close-ups).
    elsewhere
        Pixels of other white cells (near their candidates, whose nuclei may lie outside the
        crop): no local red-cell reference.

    Returns
    -------
    numpy.ndarray
        ``(rows, cols)`` bool.
    """
    sigma = max(_px(params.tint_smooth_um, mpp), 0.5)
    dense = filters.gaussian(total_density(od), sigma=sigma)
    stained = dense > params.cell_min_od
    flooded = np.zeros_like(stained)  # cytoplasm no colour test sees (_own_basin)
    distance, nearest = ndi.distance_transform_edt(~nuclei, return_indices=True)
    rim = _px(params.max_rim_um, mpp)
    reference = local_reference(od, dense, stained, nuclei, distance, mpp, red_cell_tint, params, seen, elsewhere)
    local = reference.pixels
    off_ok = None if off_red_cell is None else (off_red_cell > params.min_off_red_cell_cytoplasm_od) | nuclei
    if reference.glass:  # glass around, no red cells: every stained pixel
        mask = stained | nuclei
    else:  # red cells around (or no room to see): the white cell is what is bluer than they are
        if local is not None:
            red_cell_tint = max(red_cell_tint, reference_tint(od, dense, local, params))
            # the haze and halos of defocus are fainter than red cells; cytoplasm is not
            stained = stained & (dense > params.cytoplasm_min_red_cell_density * float(np.median(dense[local])))
        tint = filters.gaussian(leukocyte_tint(od, red_cell_tint), sigma=sigma)
        mask = (tint > params.tint_threshold) & stained | nuclei
        if off_ok is not None and not trim_after:
            mask &= off_ok
        if local is not None and granules:  # granules denser than nearly all red cells (eosinophils: red-cell coloured)
            mask |= dense > params.granule_density_factor * float(np.quantile(dense[local], 0.9))
        if local is not None:  # the cytoplasm up to the glass or the red cells' edge, whatever its colour
            coloured = mask if off_ok is None else mask & off_ok

            def granular() -> np.ndarray:  # stain as granular as an eosinophil's: no red cell
                grain = granularity(od, mpp, nuclei)
                return grain > GRANULAR_FACTOR * float(np.median(grain[local]))

            flooded = _own_basin(dense, stained, coloured, nuclei, distance, nearest, sigma, rim,
                                 float(np.median(dense[local])), UNSEEN_MIN_NUCLEI * min_nucleus_px(mpp, params),
                                 granular)
            mask |= flooded
    mask &= distance <= rim  # cytoplasm is a rim around the nucleus
    mask = binary_closing(mask, int(round(_px(params.close_um, mpp))))
    mask = fill_holes(mask)
    mask = morphology.opening(mask, disk(_px(params.open_um, mpp))) | nuclei
    mask = fill_holes(mask)
    if off_ok is not None and trim_after:  # the flooded cytoplasm (and its closing) is exempt
        mask &= off_ok | fill_holes(binary_closing(flooded | nuclei, int(round(_px(params.close_um, mpp)))))
    labels, _ = ndi.label(mask)
    keep = np.unique(labels[nuclei])
    return np.isin(labels, keep[keep > 0])


def granularity(od: np.ndarray, mpp: float, nuclei: np.ndarray) -> np.ndarray:
    """How granular the stain is around each pixel: the density's small dense specks (a white top-hat
    of radius ``GRANULE_UM``) averaged over 1 µm outside ``nuclei`` (whose chromatin is specks too).
    High in an eosinophil's granular cytoplasm, low in red cells, whose edges and pallor are no specks."""
    density = filters.gaussian(total_density(od), sigma=max(_px(0.1, mpp), 0.5))
    specks = np.where(nuclei, 0.0, morphology.white_tophat(density, disk(_px(GRANULE_UM, mpp))))
    sigma = max(_px(1.0, mpp), 0.5)
    return filters.gaussian(specks, sigma=sigma) / np.maximum(filters.gaussian((~nuclei).astype(np.float32), sigma=sigma), 0.1)


def _own_basin(dense: np.ndarray, stained: np.ndarray, cell: np.ndarray, nuclei: np.ndarray, distance: np.ndarray,
               nearest: np.ndarray, sigma: float, rim: float, red_cell_density: float, min_nucleus: int,
               granular: Callable[[], np.ndarray]) -> np.ndarray:
    """The cytoplasm the colour tests do not see: the stained pixels that flooding the density's
    edges from such a cell reaches before flooding from the red cells does, up to the glass or the
    edge of a red cell it touches, whatever their colour (a neutrophil's cytoplasm of the red cells'
    hue in a pale or blue-grey stain).

    The red cells are the stain beyond ``rim`` (px) of every nucleus and, in stained regions that
    reach that far (a cell touching red cells), the pixels outside ``cell`` (the nuclei and the
    cytoplasm told by colour) at least ``red_cell_density`` dense, except the ``granular()``
    pixels (computed only when needed: an eosinophil's granules as dense as red cells). A nucleus
    of at least ``min_nucleus`` px has unseen cytoplasm when the ring 2-4 ``sigma`` (the
    smoothing, px) out from it (``nearest``: the nearest nucleus pixel's index, from
    ``distance``'s transform) is at least :data:`UNSEEN_MIN_RING` stained and no red cell —
    cytoplasm most of the way round, not red cells and glass packed against it — and ``cell``
    covers less than :data:`UNSEEN_MIN_SHARE` of that. The watershed
    runs on the edges (Sobel) of ``dense`` from such a nucleus and its blurred edge (stained
    pixels within 2 ``sigma``), from the red cells and from the other cells' ``cell`` pixels, so
    that none loses to it; of its basin, the pixels nearer that nucleus than any other are returned.
    The lobes of one nucleus within 3 ``sigma`` of each other count as one nucleus."""
    owner = ndi.label(ndi.binary_dilation(nuclei, disk(1.5 * sigma)))[0][tuple(nearest)]
    size = np.bincount(owner[nuclei], minlength=int(owner.max()) + 1)
    ring = (distance > 2 * sigma) & (distance <= 4 * sigma)
    around = np.bincount(owner[ring], minlength=size.size)
    ring &= stained
    coloured = np.bincount(owner[ring & cell], minlength=size.size)
    maybe = (size >= min_nucleus) & (coloured < UNSEEN_MIN_SHARE * np.bincount(owner[ring], minlength=size.size))
    if not maybe[1:].any():  # colour sees most of every large nucleus's stained ring, whatever is red
        return np.zeros_like(cell)
    labels, _ = ndi.label(stained | cell)
    reaching = np.isin(labels, np.unique(labels[(distance > rim) & (stained | cell)]))
    red = stained & ~cell & ~granular() & ((distance > rim) | (reaching & (dense >= red_cell_density)))
    filled = np.bincount(owner[ring & ~red], minlength=size.size)
    unseen = (size >= min_nucleus) & (filled >= UNSEEN_MIN_RING * around) & (coloured < UNSEEN_MIN_SHARE * filled)
    unseen[0] = False
    if not unseen.any():
        return np.zeros_like(cell)
    near = (distance <= 2 * sigma) & stained & ~red | nuclei
    source = unseen[owner] & (cell | near)
    markers = np.where(source, 1, np.where(red, 2, np.where(cell, 3, 0))).astype(np.int32)
    basin = segmentation.watershed(filters.sobel(dense), markers, mask=stained | cell | source) == 1
    return basin & unseen[owner]  # nearer that nucleus than any other


def segment_classical(
    image: np.ndarray,
    mpp: float,
    background: np.ndarray | None = None,
    params: ClassicalParams = ClassicalParams(),
    red_cell_tint: float | None = None,
    red_cell_chroma: tuple[float, float, float] | None = None,
    *,
    close_up: bool = False,
    seen: tuple[int, int, int, int] | None = None,
    centre: tuple[int, int] | None = None,
    others: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Segment every white cell of an RGB image into whole-cell and nucleus instance labels.

    Parameters
    ----------
    image
        ``(rows, cols, 3)`` uint8 RGB.
    mpp
        Micrometres per pixel of ``image``.
    background
        Glass colour; estimated from ``image`` when ``None`` (pass the slide's for small crops).
    params
        Backend parameters.
    red_cell_tint
        The slide's red-cell tint; measured on ``image`` when ``None``.
    red_cell_chroma
        The slide's red-cell OD direction (:func:`~hemascope.segment.stain.red_cell_chroma`):
        when given, the nucleus is found on the density off it (nuclei of any hue), pixels with
        less than ``min_off_red_cell_od`` of it (red cells and their clumps, whatever the stain;
        a field's :meth:`~hemascope.segment.classical_params.ClassicalParams.for_field`) are no
        nucleus, and cytoplasm must carry ``min_off_red_cell_cytoplasm_od``.
    close_up
        ``image`` is (a crop of) a close-up: eosinophil granules are found by their density
        (:func:`cell_mask`), exempt from the cytoplasm colour test.
    seen
        ``(row0, row1, col0, col1)``: the part of ``image`` inside the picture, when ``image`` is
        a crop padded beyond the picture's edge (``None``: all of it).
    centre
        The pixel of the candidate ``image`` was cut around, on a field (``red_cell_chroma``
        given, not ``close_up``): where a darker cell set the crop's nucleus threshold, the
        candidate's own nucleus is found by :func:`~hemascope.segment.nuclei.centre_nucleus`.
    others
        ``(n, 2)`` pixels ``(row, col)`` of the other candidates near the crop (perhaps outside
        it). On a field with no red-cell colour (``red_cell_chroma`` ``None``: white cells on bare
        glass), the stain within ``neighbour_um`` of them is those cells', no red-cell reference
        for this one's cytoplasm (a neighbour's pale cytoplasm passed for red cells and took this
        cell's cytoplasm of the same colour). Where the red cells' colour is known, red cells
        between packed white cells are the reference and stay.

    Returns
    -------
    cells, nuclei : numpy.ndarray
        int32 instance labels of the same shape; nucleus ``k`` lies inside cell ``k``.
    """
    if background is None:
        background = estimate_background(image)
    if red_cell_tint is None:
        red_cell_tint = estimate_red_cell_tint(image, background, red_cell_tint_cap(image.shape, mpp))
    od = optical_density(image, background)
    off = None if red_cell_chroma is None else off_red_cell_density(od, red_cell_chroma)
    nuclei, support = nucleus_masks(od, mpp, params, off_red_cell=off)
    if centre is not None and off is not None and not close_up:  # a paler cell beside a darker one
        own = centre_nucleus(od, off, nuclei, centre, mpp, params)
        if own is not None:
            nuclei, support = nuclei | own[0], support | own[1]
    if off is None and close_up:  # magenta nuclei (Wright, Leishman): found by their own colour
        colour = non_lilac_nucleus_colour(od, nuclei, red_cell_tint, params)
        if colour is not None:  # among red cells of their hue, nuclei are the densest of three classes
            nuclei, support = nucleus_masks(od, mpp, params, along=colour, among_red_cells=True)
            if not stain_away_from(od, nuclei, mpp, params):  # on bare glass: Otsu
                nuclei, support = nucleus_masks(od, mpp, params, along=colour)
    outline = nuclei  # the nucleus outline reported
    if close_up and off is not None:  # outline on the red channel (sharper chromatin edge there)
        outline = nucleus_masks(od, mpp, params, support=False)[0]
    if off is not None:  # red cells and their clumps are no nuclei, however dark
        off = filters.gaussian(off, sigma=max(_px(params.smooth_um, mpp), 0.5))
        nuclei &= off > params.min_off_red_cell_od
        outline &= off > params.min_off_red_cell_od
    nuclei |= outline
    support |= nuclei
    if not nuclei.any() or support.sum() < min_nucleus_px(mpp, params):  # no cell can be kept
        empty = np.zeros(nuclei.shape, dtype=np.int32)
        return empty, empty.copy()
    mask = cell_mask(od, support, mpp, params, red_cell_tint, granules=close_up or off is None,
                     off_red_cell=off, seen=_box_mask(image.shape, seen), trim_after=not close_up,
                     elsewhere=None if off is not None else _near(image.shape, others, _px(params.neighbour_um, mpp)))
    cells = split_cells(mask, support, mpp, params, nuclei)
    nucleus_labels = np.where(outline, cells, 0).astype(np.int32)
    return cells, nucleus_labels


def _near(shape: tuple[int, ...], points: np.ndarray | None, radius_px: float) -> np.ndarray | None:
    """Pixels within ``radius_px`` of any of ``points`` (``None`` when there are none)."""
    if points is None or not len(points):
        return None
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    near = np.zeros(shape[:2], dtype=bool)
    for r, c in points:
        near |= (rows - r) ** 2 + (cols - c) ** 2 <= radius_px**2
    return near


def _box_mask(shape: tuple[int, ...], box: tuple[int, int, int, int] | None) -> np.ndarray | None:
    if box is None:
        return None
    mask = np.zeros(shape[:2], dtype=bool)
    mask[box[0] : box[1], box[2] : box[3]] = True
    return mask
