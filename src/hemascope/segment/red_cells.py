"""The red cells a picture shows: whether there are any, their colour, and its scatter.

Everything the stain-adaptive tests measure against (:mod:`hemascope.segment.stain`) is referenced
to the red cells of the same picture. Here they are found as the stain far from every nucleus
(:func:`_red_cell_reference`; blue-grey red cells as dense as the nuclei by their colour,
:func:`_blue_red_cell_reference`), on fields (:func:`field_red_cell_chroma`, with the scatter of
their colour that sets the colour floors, :func:`colour_floor`) and in close-ups
(:func:`close_up_red_cell_chroma`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from hemascope.segment.stain import (
    blue_grey,
    colour_cluster,
    colour_tint,
    leukocyte_tint,
    off_red_cell_density,
    optical_density,
    red_cell_chroma,
)

#: Least density off the red-cell colour (75th percentile over the dense stain) for a close-up's
#: colours to be trusted: desaturated images (grey, pale) keep the tint tests.
CLOSE_UP_MIN_COLOUR_CONTRAST = 0.17


def _red_cell_reference(image: np.ndarray, background: np.ndarray | None, mpp: float,
                        reference_um: float = 8.0, min_um2: float = 20.0, any_hue: bool = False
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(od, red-cell pixels, dense stain)`` of an image, or ``None`` when it shows no red cells.

    Red-cell pixels are the stained pixels farther than ``reference_um`` from any dense stain
    (above Otsu's threshold of the stained pixels' density: nuclei, and a cytoplasm rim reaches at
    most ~7 µm beyond them), at least ``min_um2`` of them; where dark red cells pass Otsu's
    threshold too and leave none, the dense stain is the densest of three classes, provided it
    has the nuclei's lilac tint (see :func:`close_up_red_cell_chroma`) — or of any hue with
    ``any_hue`` (fields, where only whether red cells are there is asked of it: magenta nuclei
    among dark red cells).
    """
    from scipy import ndimage as ndi
    from skimage import filters

    od = optical_density(image, background)
    total = filters.gaussian(od.sum(axis=-1), sigma=max(0.5 / mpp, 0.5))
    stained = total > 0.15
    if stained.sum() < 64 or np.ptp(total[stained]) < 1e-3:
        return None
    coloured = stained & (np.linalg.norm(od, axis=-1) > 0.1)
    for classes in (2, 3):  # dark red cells may pass Otsu's threshold: then the densest of three classes
        cut = (filters.threshold_otsu(total[stained]) if classes == 2
               else filters.threshold_multiotsu(total[stained][::4], classes=3)[-1])
        dense = total > cut
        pick = coloured & (ndi.distance_transform_edt(~dense) > reference_um / mpp)
        if pick.sum() >= min_um2 / mpp**2 and (classes == 2 or any_hue or np.median(leukocyte_tint(od[dense])) >= 0.07):
            return od, pick, dense  # (three classes: only for lilac nuclei; magenta ones keep the tint-free path)
    return None


def _blue_red_cell_reference(image: np.ndarray, background: np.ndarray | None, mpp: float,
                             reference_um: float = 8.0, min_um2: float = 20.0
                             ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """:func:`_red_cell_reference` by colour instead of density, for blue-grey red cells.

    Blue-grey red cells may be as dense as the nuclei (no density threshold leaves any red cell
    far from the "dense" stain), yet of another colour: the nuclei are then what lies off the
    stain's main colour (:func:`~hemascope.segment.stain.red_cell_chroma`) beyond Otsu's
    threshold, and the red cells the stained pixels farther than ``reference_um`` from them — kept
    only when they are blue-grey (:data:`~hemascope.segment.stain.BLUE_RED_CELL_TINT`), the one
    case the density path cannot see, and the nuclei at least as blue-lilac as they are (else the
    main colour was a white cell filling the picture).
    """
    from scipy import ndimage as ndi
    from skimage import filters

    chroma = red_cell_chroma(image, background)
    if chroma is None or not blue_grey(chroma):
        return None
    od = optical_density(image, background)
    sigma = max(0.5 / mpp, 0.5)
    stained = filters.gaussian(od.sum(axis=-1), sigma=sigma) > 0.15
    off = filters.gaussian(off_red_cell_density(od, chroma), sigma=sigma)
    if stained.sum() < 64 or np.ptp(off[stained]) < 1e-3:
        return None
    dense = off > filters.threshold_otsu(off[stained])
    pick = stained & (np.linalg.norm(od, axis=-1) > 0.1) & (ndi.distance_transform_edt(~dense) > reference_um / mpp)
    if pick.sum() < min_um2 / mpp**2:
        return None
    # nuclei at least as blue-lilac as the red cells (else the "red cells" are a white cell)
    if np.median(leukocyte_tint(od[dense])) < np.median(leukocyte_tint(od[pick])):
        return None
    return od, pick, dense


#: Least area (µm²) of stain far from every nucleus (:func:`_red_cell_reference`) whose own colour
#: is taken for a field's red cells when the stain's colour clusters disagree with it: about six
#: red cells. Less may be the cytoplasm of big white cells on bare glass, or, in packed leukaemic
#: fields, a few red cells at the edge of the white cells (their colour measured 15-22° off the
#: field's red cells on Taleqani Pre-B fields, every one under 260 µm²).
FAR_RED_CELL_MIN_UM2 = 300.0
#: ... of which at least this much (µm², about one red cell) lies in stain not joined to any
#: nucleus: in packed fields every red cell touches the white cells' stain.
FAR_RED_CELL_FREE_UM2 = 50.0
#: Least angle (degrees) between that colour and the clusters' for the far stain's to be taken.
FAR_RED_CELL_MIN_ANGLE = 8.0
#: The far stain's colour is taken whatever its area when it lies between these many degrees from the
#: clusters' and is less blue by at least :data:`FAR_REDDER_MIN_TINT` (tint ``(OD_r - OD_b) / OD_sum``)
#: and by :data:`FAR_REDDER_TINT_PER_DEGREE` per degree between them: red cells are the least blue
#: stain of a smear, and clusters pulled bluer by white cells' cytoplasm (measured 0.008-0.018 per
#: degree on another lab's fields) are theirs. A far colour that differs otherwise is no red cell:
#: a pale blast among blue-grey red cells denser than it (0.001 per degree), the pink smudges of
#: packed leukaemic fields (17-23°, 0.003-0.009 per degree).
FAR_REDDER_ANGLES = (3.0, 16.5)
FAR_REDDER_MIN_TINT = 0.03
FAR_REDDER_TINT_PER_DEGREE = 0.008
#: Blue-grey clusters with the dense stain's colour within this many degrees of them may be red
#: cells denser than the nuclei (Taleqani fields: 1° and 8° on ``Pro-516`` and ``Pre-043``) ...
DENSE_RED_CELL_ANGLE = 10.0
#: ... and then a far colour of at least this tint is a pale white cell's lying far from them, not
#: red cells (0.17 on ``Pro-516``); pink red cells, whose colour a crowd of big lilac white cells
#: with its nuclei hides from the clusters, have a tint near 0 (BENCHMARKS.md, session 29).
FAR_PINK_MAX_TINT = 0.1


class FieldRedCells(NamedTuple):
    """What a field's red cells give the colour tests (:func:`field_red_cell_chroma`)."""

    #: The red cells' unit OD direction (``None``: none seen, or fewer than 16 stained pixels).
    chroma: tuple[float, float, float] | None
    #: Whether the field shows red cells at all.
    seen: bool
    #: The 99th percentile of the red cells' own density off ``chroma`` (smoothed by 0.5 µm):
    #: the scatter of their colour that a nucleus must stand out from (``None``: not measured).
    scatter: float | None = None


def field_red_cell_chroma(image: np.ndarray, background: np.ndarray | None, mpp: float,
                          step: int = 1) -> FieldRedCells:
    """The red cells' OD direction of a field (wider than a close-up), and the scatter of their colour.

    The stain's colour clusters (:func:`~hemascope.segment.stain.red_cell_chroma`, on every
    ``step``-th pixel) give the red-cell colour, unless the field shows red cells far from every
    nucleus (:func:`_red_cell_reference`) over at least :data:`FAR_RED_CELL_MIN_UM2`,
    :data:`FAR_RED_CELL_FREE_UM2` of it in stain joined to no nucleus, whose own colour lies more
    than :data:`FAR_RED_CELL_MIN_ANGLE` from it: where big white cells are much of the stain
    (leukaemic fields, a crowd of monocytes or eosinophils), the largest or paler cluster is
    theirs — every red cell is then "off the red-cell colour" and no cell keeps its cytoplasm.
    Whatever its area, the far stain's colour is also taken when it is the clusters' made less
    blue (:data:`FAR_REDDER_ANGLES`): a cluster pulled towards white cells' cytoplasm (pale
    stains, where the nuclei then stood out too little from it to be found). Neither is taken
    where blue-grey red cells are the dense stain and the far stain is a pale white cell's
    (:func:`_white_cell_far_from_red_cells`).

    Red cells are seen where there is stain away from every nucleus and its cytoplasm, or
    blue-grey red cells as dense as the nuclei told apart by their colour
    (:func:`_blue_red_cell_reference`). A field of white cells on bare glass (a red-cell-poor
    area, a cytospin, a lysed preparation) shows none; its stain references must not be measured
    on the white cells themselves.

    Parameters
    ----------
    image
        ``(rows, cols, 3)`` uint8 RGB (a field or a slide's thumbnail).
    background
        Glass colour (estimated when ``None``).
    mpp
        µm/px of ``image``.
    step
        Subsampling of the colour clustering (a thumbnail of at most ~1 Mpx).

    Returns
    -------
    FieldRedCells
        The colour, whether red cells were seen, and the scatter of their colour
        (:func:`colour_floor`).
    """
    from scipy import ndimage as ndi
    from skimage import filters

    reference = _red_cell_reference(image, background, mpp, any_hue=True)
    seen = reference if reference is not None else _blue_red_cell_reference(image, background, mpp)
    if seen is None:
        return FieldRedCells(None, False)
    chroma = red_cell_chroma(image[::step, ::step], background)
    if chroma is None:
        return FieldRedCells(None, True)
    od, pick, dense = seen
    far = _far_colour(od, pick) if reference is not None else None
    if far is not None and _white_cell_far_from_red_cells(od, dense, chroma, far):
        far = None
    if far is not None and (
        (pick.sum() * mpp**2 >= FAR_RED_CELL_MIN_UM2 and _angle(far, chroma) > FAR_RED_CELL_MIN_ANGLE)
        or _redder(far, chroma)
    ):  # the clusters may be white cells
        pieces, _ = ndi.label(od.sum(axis=-1) > 0.15)
        if (pick & ~np.isin(pieces, pieces[dense])).sum() * mpp**2 >= FAR_RED_CELL_FREE_UM2:
            chroma = far
    off = filters.gaussian(off_red_cell_density(od, chroma), sigma=max(0.5 / mpp, 0.5))
    return FieldRedCells(chroma, True, float(np.quantile(off[pick], 0.99)))


def _white_cell_far_from_red_cells(od: np.ndarray, dense: np.ndarray, chroma: tuple[float, float, float],
                                   far: tuple[float, float, float]) -> bool:
    """Whether the far stain's colour ``far`` is a pale white cell's: the clusters' colour
    ``chroma`` is blue-grey, the dense stain is of that colour (blue-grey red cells denser than
    the nuclei, :data:`DENSE_RED_CELL_ANGLE`), and ``far`` is neither pink
    (:data:`FAR_PINK_MAX_TINT`) nor within :data:`FAR_REDDER_ANGLES` of the clusters (19-40° on
    the Taleqani fields; a few degrees off, it is those red cells' own colour, made less blue)."""
    if not blue_grey(chroma) or colour_tint(far) < FAR_PINK_MAX_TINT or _angle(far, chroma) <= FAR_REDDER_ANGLES[1]:
        return False
    coloured = dense & (np.linalg.norm(od, axis=-1) > 0.1)
    return bool(coloured.any()) and _angle(_far_colour(od, coloured), chroma) < DENSE_RED_CELL_ANGLE


def _far_colour(od: np.ndarray, pick: np.ndarray) -> tuple[float, float, float]:
    """The largest colour cluster of the red-cell pixels ``pick`` (unit OD direction)."""
    vectors = od[pick]
    centre, _ = colour_cluster(vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    return float(centre[0]), float(centre[1]), float(centre[2])


def _redder(far: tuple[float, float, float], clusters: tuple[float, float, float]) -> bool:
    """Whether ``far`` is ``clusters`` made less blue (see :data:`FAR_REDDER_ANGLES`)."""
    angle = _angle(far, clusters)
    drop = colour_tint(clusters) - colour_tint(far)
    return (FAR_REDDER_ANGLES[0] < angle <= FAR_REDDER_ANGLES[1]
            and drop >= max(FAR_REDDER_MIN_TINT, FAR_REDDER_TINT_PER_DEGREE * angle))


def _angle(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    return float(np.degrees(np.arccos(np.clip(float(np.dot(a, b)), -1.0, 1.0))))


def colour_floor(base: float, scatter: float | None, factor: float) -> float:
    """A floor of density off the red cells' colour for a field whose red cells scatter by
    ``scatter`` (:class:`FieldRedCells`): ``factor`` times it, within ``[base / 2, base]``
    (``base`` when unknown). The fixed floors were chosen on CellaVision fields whose red cells
    scatter by 0.03 (median; up to 0.1); a pale stain or a clean camera scatters less, and its
    nuclei, paler too, stand out from it with less density."""
    if scatter is None:
        return base
    return float(np.clip(factor * scatter, base / 2, base))


def close_up_red_cell_chroma(image: np.ndarray, background: np.ndarray | None, mpp: float,
                             reference_um: float = 8.0, min_um2: float = 20.0
                             ) -> tuple[float, float, float] | None:
    """The red cells' OD direction in a close-up (a field narrower than
    :data:`~hemascope.segment.stain.CLOSE_UP_UM`).

    In a close-up a white cell may be most of the stain, so the stain's largest colour cluster
    (:func:`~hemascope.segment.stain.red_cell_chroma`) may be the white cell. Here the red cells are the stained pixels
    farther than ``reference_um`` from any dense stain (:func:`_red_cell_reference`: nuclei, and a
    cytoplasm rim reaches at most ~7 µm beyond them); their largest colour cluster is the red-cell
    colour. Where dark red cells pass Otsu's threshold too (dark stains, crowded close-ups), the
    dense stain is the densest of three classes instead, provided it has the nuclei's lilac tint
    (magenta nuclei are left to the tint-free path of :mod:`hemascope.segment.classical`); where
    blue-grey red cells are as dense as the nuclei, they are found by colour
    (:func:`_blue_red_cell_reference`). It is returned only when the dense stain stands out from
    it (:data:`CLOSE_UP_MIN_COLOUR_CONTRAST`): in desaturated images the colour differences shrink
    and the tint tests do better — unless the red cells are blue-grey (:func:`~hemascope.segment.stain.blue_grey`; some
    stains, the Taleqani fields'), as blue-lilac by the tint as the white cells, when only their
    colour direction tells them apart.

    Parameters
    ----------
    image
        ``(rows, cols, 3)`` uint8 RGB.
    background
        Glass colour (estimated when ``None``).
    mpp
        µm/px of ``image``.
    reference_um
        Least distance from dense stain of a red-cell reference pixel.
    min_um2
        Least area of red-cell reference pixels (fewer: a cell on bare glass, ``None``).

    Returns
    -------
    tuple of float or None
        The unit ``(r, g, b)`` OD direction, or ``None`` (no red cells seen, or weak colours).
    """
    reference = _red_cell_reference(image, background, mpp, reference_um, min_um2)
    if reference is None:
        reference = _blue_red_cell_reference(image, background, mpp, reference_um, min_um2)
    if reference is None:
        return None
    od, pick, dense = reference
    centre = _far_colour(od, pick)
    if (np.quantile(off_red_cell_density(od[dense], centre), 0.75) < CLOSE_UP_MIN_COLOUR_CONTRAST
            and not blue_grey(centre)):
        return None
    return centre
