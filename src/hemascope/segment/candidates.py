"""White-cell candidates: nuclear-stained blobs found at reduced resolution.

On fields and slides, where the red cells' own colour is known (``red_cell_chroma``), a pixel is
white-cell stained when it carries enough optical density *off the red cells' colour*
(:func:`~hemascope.segment.stain.off_red_cell_density`): red cells and their clumps carry none,
however dark, and nuclei of any hue do — purple-blue nuclei that absorb red light as well as the
magenta nuclei of some stains that absorb hardly any. In close-ups (red-cell colour unknown) a
pixel must both absorb red light (red-channel optical density above ``candidate_min_od``) and
carry the blue-lilac leukocyte tint (:func:`~hemascope.segment.stain.leukocyte_tint`).

Blobs are closed by about one micrometre (the lobes of a neutrophil become one) and kept when
their area is that of a nucleus of a white cell of at least ``min_diameter_um`` (platelets are
smaller). On fields, a blob of touching cells (packed leukaemic fields) is split at the necks of
its distance transform (h-maxima deeper than :data:`SPLIT_DEPTH_UM`), one candidate per part.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage import filters, measure, morphology, segmentation

from hemascope.segment.masks import binary_closing, fill_holes
from hemascope.segment.red_cells import colour_floor
from hemascope.segment.stain import (
    blue_grey,
    is_close_up,
    leukocyte_tint,
    nuclear_stain,
    off_red_cell_density,
    optical_density,
    total_density,
)
from hemascope.segment.stain import red_cell_chroma as main_stain_colour

#: Lowest leukocyte tint of a nuclear-stained pixel, above the image's own red-cell tint.
CANDIDATE_MIN_TINT = 0.07
#: Lowest density off the red-cell colour of a nuclear-stained pixel (fields and slides).
MIN_OFF_RED_CELL_OD = 0.08
#: The same in a close-up among blue-grey red cells (:func:`~hemascope.segment.stain.blue_grey`),
#: its red-cell colour measured on its own red cells: a nucleus as blue as they are, and often no
#: denser, carries less. On a field among them, blobs above it are added only where they hold no
#: blob of :data:`MIN_OFF_RED_CELL_OD` (a lower floor alone bridges packed cells into one blob).
BLUE_GREY_MIN_OFF_RED_CELL_OD = 0.05
#: A candidate nucleus covers at least this fraction of a disc of ``min_diameter_um`` (10.8 µm² at
#: 5 µm, a nucleus about 3.7 µm across; platelets, 2-3 µm, stay below even when blurred).
MIN_NUCLEUS_FRACTION = 0.55
#: Touching blobs are split where the distance transform dips by at least this much (µm) between
#: two maxima (fields and slides only: in a close-up one cell fills the view).
SPLIT_DEPTH_UM = 0.5
#: Least summed optical density of the densest stain of a close-up on bare glass.
BARE_GLASS_MIN_OD = 0.3
#: On a field whose red cells were not seen (no red-cell colour: white cells on bare glass, or red
#: cells with no nucleus far enough from their dense parts to measure them by), a blob that passes
#: the lilac tests is a nucleus only when it is this many times denser than the stain farther than
#: :data:`CYTOPLASM_UM` from every blob (measured at the candidates' 1 µm/px on another lab's fields
#: with their white cell painted out: red cells' purple rims and overlaps 1.0-1.5; nuclei 1.9-6.5).
DISTINCT_DENSITY_RATIO = 1.6
#: The stain a blob is compared with lies this far (µm) from every blob: not a white cell's own
#: cytoplasm (a pale monocyte's nucleus is only 1.3 times denser than it) but red cells. Where
#: there is none, the blobs lie on bare glass and are kept — unless one of them is larger than
#: :data:`BRIDGED_BLOB_UM2` (no nucleus, nor a few touching ones): packed red cells whose rims all
#: pass, bridged into one blob, compared then with the stain around them.
CYTOPLASM_UM = 6.0
BRIDGED_BLOB_UM2 = 1000.0
#: Where no blob of such a field passes the lilac tests, its densest stain is taken for nuclei
#: (magenta, on bare glass) where it is this many times denser than the rest and its colour lies
#: :data:`DISTINCT_DEGREES` from the stain's main colour
#: (:func:`~hemascope.segment.stain.red_cell_chroma`) over :data:`DENSEST_DISTINCT_SHARE` of its
#: area. Measured on another lab's fields: magenta and rapid-stain nuclei on glass 2.9-6.2 times
#: denser, 3.1-4.2° off; red cells' dense parts (overlaps) 2.1-3.6 times, 0.1-3.8° — a few of
#: them pass both (3-10 of 23-38 blobs), never most of the densest stain as a nucleus does.
DENSEST_DENSITY_RATIO = 2.5
DISTINCT_DEGREES = 2.5
DENSEST_DISTINCT_SHARE = 0.5


def densest_stain(od: np.ndarray, sigma: float) -> np.ndarray:
    """The densest stain of an image: smoothed summed OD above Otsu's threshold of the stained
    pixels (and :data:`BARE_GLASS_MIN_OD`). On bare glass that is the white cell's nucleus,
    whatever the stain's hue.

    Parameters
    ----------
    od
        ``(rows, cols, 3)`` optical densities.
    sigma
        Gaussian smoothing (pixels).

    Returns
    -------
    numpy.ndarray
        ``(rows, cols)`` bool.
    """
    return _densest(filters.gaussian(total_density(od), sigma=sigma))


def _densest(total: np.ndarray) -> np.ndarray:
    """:func:`densest_stain` of the smoothed summed optical density ``total``."""
    stained = total > 0.15
    threshold = BARE_GLASS_MIN_OD
    if stained.sum() > 16 and np.ptp(total[stained]) > 1e-3:
        threshold = max(threshold, float(filters.threshold_otsu(total[stained])))
    return total > threshold


def split_touching(piece: np.ndarray, depth_px: float, min_area: float) -> list[tuple[float, float]]:
    """Centroids of the parts of a blob of touching cells, split at the necks of its distance map.

    Parameters
    ----------
    piece
        Boolean mask of one connected blob.
    depth_px
        Least drop of the distance transform (pixels) between two maxima for them to be two cells.
    min_area
        Parts smaller than this (pixels) are no cell of their own and yield no centroid.

    Returns
    -------
    list of (row, col)
        One centroid per part of at least ``min_area``; empty when the blob has one maximum (or
        no part is large enough): the caller then takes the blob's own centroid.
    """
    distance = ndi.distance_transform_edt(np.pad(piece, 1))[1:-1, 1:-1]
    markers, n = ndi.label(morphology.h_maxima(distance, max(depth_px, 0.5)) & piece)
    if n < 2:
        return []
    parts = segmentation.watershed(-distance, markers=markers, mask=piece)
    out = []
    for part in range(1, n + 1):
        rr, cc = np.nonzero(parts == part)
        if len(rr) >= min_area:
            out.append((float(rr.mean()), float(cc.mean())))
    return out


def _nucleus_blobs(nuclear: np.ndarray, mpp: float, min_area: float) -> tuple[np.ndarray, np.ndarray]:
    """Blobs of nuclear stain bridged by about a micrometre: labels and those of ``min_area``."""
    if not nuclear.any():
        return np.zeros(nuclear.shape, dtype=np.int32), np.zeros(0, dtype=int)
    nuclear = fill_holes(binary_closing(nuclear, max(int(round(1.0 / mpp)), 1)))
    labels = measure.label(nuclear)
    kept = np.flatnonzero(np.bincount(labels.ravel()) >= min_area)
    return labels, kept[kept > 0]


def find_candidates(
    image: np.ndarray,
    mpp: float,
    background: np.ndarray | tuple[float, float, float] | None,
    *,
    min_diameter_um: float = 5.0,
    min_od: float = 0.25,
    red_cell_tint: float = 0.0,
    red_cell_chroma: tuple[float, float, float] | None = None,
    split: bool | None = None,
    red_cell_scatter: float | None = None,
) -> np.ndarray:
    """Centres of white-cell candidates in an RGB image at reduced resolution.

    Parameters
    ----------
    image
        ``(rows, cols, 3)`` uint8 RGB.
    mpp
        µm/px of ``image``.
    background
        Glass colour of the slide (estimated from ``image`` when ``None``).
    min_diameter_um
        Smallest white-cell diameter.
    min_od
        Lowest red-channel optical density of nuclear stain (close-ups, ``red_cell_chroma=None``).
    red_cell_tint
        The slide's red-cell tint (the tint is measured relative to it).
    red_cell_chroma
        The red cells' OD direction. When given (fields, slides), a white-cell pixel is one with
        :data:`MIN_OFF_RED_CELL_OD` (:data:`BLUE_GREY_MIN_OFF_RED_CELL_OD` in a close-up among
        blue-grey red cells, and for pale nuclei the higher floor misses on a field among them)
        of density off that direction
        (:func:`~hemascope.segment.stain.off_red_cell_density`), instead of the red-channel and
        tint tests: red-cell clumps carry none, whatever the stain, and nuclei of any hue do
        (magenta nuclei absorb little red light); touching blobs are split
        (:func:`split_touching`).
    split
        Split blobs of touching cells (default: when ``red_cell_chroma`` is given; pass
        ``False`` for close-ups, where one cell fills the view and its lobes would be split).
        In a close-up (``split=False``, or an image narrower than
        :data:`~hemascope.segment.stain.CLOSE_UP_UM`) without red-cell colour where no blob
        passes the lilac tests, the densest stain (:func:`densest_stain`) is taken instead: a
        magenta nucleus (Wright, Leishman) on bare glass or among red cells of its own hue. On a
        field without red-cell colour (white cells on bare glass, or red cells and no nucleus to
        measure their colour away from) blobs must be stain of their own
        (:data:`DISTINCT_DENSITY_RATIO`; the densest stain only as :data:`DENSEST_DENSITY_RATIO`
        says): the densest stain of a field of red cells only is its red cells.
    red_cell_scatter
        The scatter of the field's red cells' colour
        (:attr:`~hemascope.segment.red_cells.FieldRedCells.scatter`): blobs above twice it (within
        ``[0.04, 0.08]``, :func:`~hemascope.segment.red_cells.colour_floor`) that hold none of the
        :data:`MIN_OFF_RED_CELL_OD` blobs are added — a pale stain's nuclei.

    Returns
    -------
    numpy.ndarray
        ``(n, 2)`` float ``(row, col)`` centroids of the candidate nuclei, in ``image`` pixels,
        sorted by row then column.
    """
    od = optical_density(image, None if background is None else np.asarray(background, dtype=np.float32))
    sigma = max(0.5 / mpp, 0.5)
    close_up = split is False or is_close_up(image.shape, mpp)  # split=False: the caller's close-up
    pale = blue_grey(red_cell_chroma)  # nuclei near the red cells' hue carry little density off it
    if red_cell_chroma is None:
        stain = filters.gaussian(nuclear_stain(od), sigma=sigma)
        tint = filters.gaussian(leukocyte_tint(od, red_cell_tint), sigma=sigma)
        nuclear = (stain > min_od) & (tint > CANDIDATE_MIN_TINT)
    else:  # the colour test against the red cells' own colour replaces the tint test
        off = filters.gaussian(off_red_cell_density(od, red_cell_chroma), sigma=sigma)
        nuclear = off > (BLUE_GREY_MIN_OFF_RED_CELL_OD if close_up and pale else MIN_OFF_RED_CELL_OD)
    min_area = MIN_NUCLEUS_FRACTION * np.pi * (min_diameter_um / 2) ** 2 / mpp**2
    labels, kept = _nucleus_blobs(nuclear, mpp, min_area)
    if red_cell_chroma is None and not close_up:  # a field without red-cell colour: drop red cells
        labels, kept = _stain_of_its_own(image, background, od, sigma, labels, kept, mpp, min_area)
    elif not len(kept) and close_up and red_cell_chroma is None:  # no lilac nucleus: the densest stain
        labels, kept = _nucleus_blobs(densest_stain(od, sigma), mpp, min_area)
    if split is None:
        split = red_cell_chroma is not None
    centres = _blob_centres(labels, kept, mpp, min_area, split)
    low_floor = min(BLUE_GREY_MIN_OFF_RED_CELL_OD if pale else MIN_OFF_RED_CELL_OD,
                    colour_floor(MIN_OFF_RED_CELL_OD, red_cell_scatter, 2.0))
    if red_cell_chroma is not None and not close_up and low_floor < MIN_OFF_RED_CELL_OD:
        # pale nuclei the field's floor misses (near blue-grey red cells' hue, or standing out
        # from red cells of little colour scatter): blobs of the lower floor holding none of its
        # blobs (a lower floor alone would bridge packed cells into one blob)
        low, low_kept = _nucleus_blobs(off > low_floor, mpp, min_area)
        fresh = np.setdiff1d(low_kept, low[np.isin(labels, kept)])
        centres += _blob_centres(low, fresh, mpp, min_area, split)
    if not centres:
        return np.zeros((0, 2))
    out = np.asarray(centres, dtype=np.float64)
    return out[np.lexsort((out[:, 1], out[:, 0]))]


def _stain_of_its_own(image: np.ndarray, background: np.ndarray | tuple[float, float, float] | None,
                      od: np.ndarray, sigma: float, labels: np.ndarray, kept: np.ndarray, mpp: float,
                      min_area: float) -> tuple[np.ndarray, np.ndarray]:
    """The blobs of a field without red-cell colour that are denser than its red cells
    (:data:`DISTINCT_DENSITY_RATIO`); where none is, the densest stain's blobs distinct in both
    density (:data:`DENSEST_DENSITY_RATIO`) and colour (:data:`DISTINCT_DEGREES`): a magenta
    nucleus on bare glass, which the lilac tests miss."""
    main = main_stain_colour(image, None if background is None else np.asarray(background, dtype=np.float32))
    if main is None:
        return labels, kept
    total = filters.gaussian(total_density(od), sigma=sigma)
    stained = total > 0.15
    distinct = _distinct_blobs(od, total, stained, labels, kept, DISTINCT_DENSITY_RATIO, mpp)
    if len(distinct):
        return labels, distinct
    labels, kept = _nucleus_blobs(_densest(total), mpp, min_area)
    distinct = _distinct_blobs(od, total, stained, labels, kept, DENSEST_DENSITY_RATIO, mpp, np.asarray(main))
    areas = np.bincount(labels.ravel())
    if areas[distinct].sum() < DENSEST_DISTINCT_SHARE * areas[kept].sum():  # red cells' dense parts
        return labels, distinct[:0]
    return labels, distinct


def _distinct_blobs(od: np.ndarray, total: np.ndarray, stained: np.ndarray, labels: np.ndarray,
                    kept: np.ndarray, ratio: float, mpp: float, main: np.ndarray | None = None
                    ) -> np.ndarray:
    """The labels of ``kept`` (of a ``mpp`` image) whose median density is ``ratio`` times the
    stain's farther than :data:`CYTOPLASM_UM` from every blob (see there) and, with ``main``, whose
    colour lies :data:`DISTINCT_DEGREES` from that colour."""
    if not len(kept):
        return kept
    inside = np.isin(labels, kept)
    rest = stained & (ndi.distance_transform_edt(~inside) > CYTOPLASM_UM / mpp)  # no cell's own cytoplasm
    if rest.sum() < 16 and np.bincount(labels.ravel())[kept].max() * mpp**2 > BRIDGED_BLOB_UM2:
        rest = stained & ~inside  # packed red cells bridged into one blob: the stain around it
    base = float(np.median(total[rest])) if rest.sum() >= 16 else 0.0  # none: blobs on bare glass
    boxes = ndi.find_objects(labels)
    out = []
    for k in kept:
        box = boxes[k - 1]
        blob = labels[box] == k
        keep = base <= 0 or float(np.median(total[box][blob])) >= ratio * base
        if keep and main is not None:
            colour = od[box][blob].mean(axis=0)
            cosine = float(colour @ main / max(float(np.linalg.norm(colour)), 1e-6))
            keep = bool(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))) >= DISTINCT_DEGREES)
        if keep:
            out.append(k)
    return np.asarray(out, dtype=kept.dtype)


def _blob_centres(labels: np.ndarray, kept: np.ndarray, mpp: float, min_area: float,
                  split: bool) -> list[tuple[float, float]]:
    """Centroid of each kept blob (or of its parts, :func:`split_touching`), from its bounding box only."""
    boxes = ndi.find_objects(labels)
    centres: list[tuple[float, float]] = []
    for k in kept:
        rows, cols = boxes[k - 1]
        piece = labels[rows, cols] == k
        parts = split_touching(piece, SPLIT_DEPTH_UM / mpp, min_area) if split else []
        if not parts:
            rr, cc = np.nonzero(piece)
            parts = [(float(rr.mean()), float(cc.mean()))]
        centres.extend((r + rows.start, c + cols.start) for r, c in parts)
    return centres
