"""Stain-aware colour features of Romanowsky (May-Grünwald-Giemsa, Wright) smears.

Everything here works in optical density (OD) relative to the glass colour, so that a brighter or
dimmer illumination, a yellow or blue white balance and a lighter or darker stain all move the
features by a scale factor rather than breaking a fixed RGB threshold:

- the **nuclear stain** is the red-channel OD: the purple-blue nuclear dye absorbs red light
  strongly, the pink haemoglobin of red cells hardly does;
- the **leukocyte tint** ``(OD_r - OD_b) / OD_sum`` separates the blue-lilac cytoplasm of white cells
  from pink red cells independently of how dark the stain is.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from hemascope.errors import InvalidInputError

#: Lowest glass brightness accepted per channel; darker "glass" means there is no glass in view.
_MIN_GLASS = 150.0


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Validate an RGB(A) uint8 image ``(rows, cols, 3|4)`` and return its RGB part.

    Parameters
    ----------
    image
        Array-like image.

    Returns
    -------
    numpy.ndarray
        ``(rows, cols, 3)`` uint8 view of ``image``.

    Raises
    ------
    InvalidInputError
        If the image is not 8-bit RGB or has zero size.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
        raise InvalidInputError(
            f"expected an RGB uint8 image (rows, cols, 3), got shape {image.shape} dtype {image.dtype}"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise InvalidInputError("image has zero size")
    return image[..., :3]


def estimate_background(image: np.ndarray, fraction: float = 0.05) -> np.ndarray:
    """Estimate the glass (background) colour of an RGB image.

    Parameters
    ----------
    image
        ``(rows, cols, 3)`` uint8 image.
    fraction
        Fraction of the brightest pixels whose median colour is taken as glass.

    Returns
    -------
    numpy.ndarray
        ``(3,)`` float32 RGB colour, each channel clipped to ``[150, 255]``.
    """
    rgb = as_rgb_uint8(image).reshape(-1, 3)
    if rgb.shape[0] > 400_000:  # a regular subsample is plenty for a percentile
        rgb = rgb[:: rgb.shape[0] // 400_000]
    brightness = rgb.astype(np.int32).sum(axis=1)
    cut = np.quantile(brightness, 1.0 - fraction)
    glass = np.median(rgb[brightness >= cut], axis=0).astype(np.float32)
    return np.clip(glass, _MIN_GLASS, 255.0)


def optical_density(image: np.ndarray, background: np.ndarray | None = None) -> np.ndarray:
    """Per-channel optical density ``-log10(I / I_glass)``, clipped at 0.

    Parameters
    ----------
    image
        ``(rows, cols, 3)`` uint8 image.
    background
        Glass colour (``(3,)``); estimated from ``image`` when ``None``.

    Returns
    -------
    numpy.ndarray
        ``(rows, cols, 3)`` float32 optical densities.
    """
    rgb = as_rgb_uint8(image)
    if background is None:
        background = estimate_background(rgb)
    lut = _od_lookup(np.asarray(background, dtype=np.float32))
    od = np.empty(rgb.shape, dtype=np.float32)
    for c in range(3):
        od[..., c] = lut[c][rgb[..., c]]
    return od


def _od_lookup(background: np.ndarray) -> np.ndarray:
    levels = np.maximum(np.arange(256, dtype=np.float32), 1.0)
    return np.maximum(-np.log10(levels[None, :] / background[:, None]), 0.0).astype(np.float32)


def nuclear_stain(od: np.ndarray) -> np.ndarray:
    """The nuclear-dye density: red-channel optical density (float32, ``(rows, cols)``)."""
    return od[..., 0]


def leukocyte_tint(od: np.ndarray, red_cell_tint: float = 0.0, floor: float = 0.05) -> np.ndarray:
    """Blue-lilac tint of white cells relative to the red cells of the same slide.

    ``(OD_r - OD_b - t_rbc * OD_sum) / (OD_sum + floor)`` where ``t_rbc`` is the slide's red-cell
    tint (:func:`red_cell_tint`), so a bluer or redder stain shifts both alike and cancels.

    Parameters
    ----------
    od
        ``(rows, cols, 3)`` optical densities.
    red_cell_tint
        The slide's red-cell tint (0 for a typical May-Grünwald-Giemsa stain).
    floor
        Added to the denominator so that faint glass pixels get a tint near 0.

    Returns
    -------
    numpy.ndarray
        ``(rows, cols)`` float32: 0 in red cells, about 0.15-0.3 in nuclei and blue cytoplasm.
    """
    red, blue = od[..., 0], od[..., 2]
    total = red + od[..., 1] + blue  # channel adds: ~6x faster than a sum over the last axis
    tint = red - blue
    if red_cell_tint:
        tint -= np.float32(red_cell_tint) * total
    total += np.float32(floor)
    tint /= total
    return tint.astype(np.float32, copy=False)


#: Upper bound of a red-cell tint: grey-blue red cells (some stains) reach about 0.2.
MAX_RED_CELL_TINT = 0.25
#: Upper bound in a close-up (a field narrower than :data:`CLOSE_UP_UM`): there a white cell may
#: cover most of the stain, and its lilac cytoplasm must not become the red-cell reference.
CLOSE_UP_MAX_RED_CELL_TINT = 0.02
CLOSE_UP_UM = 80.0
#: The red-cell tint lies at most this far above the tint of the red cells' colour direction
#: (:func:`chroma_tint_cap`).
CHROMA_TINT_MARGIN = 0.1
#: The red-cell tint is this quantile of the stained pixels' tint: red cells are the least blue
#: stained pixels, and in a crop around a white cell they may be well under half of the stain.
RED_CELL_TINT_QUANTILE = 0.3


def red_cell_tint_cap(shape: tuple[int, ...], mpp: float | None) -> float:
    """The cap of :func:`red_cell_tint` for an image of ``shape`` at ``mpp`` (close-ups: lower).

    Parameters
    ----------
    shape
        Image (or slide level-0) shape.
    mpp
        µm/px (``None``: unknown, the field is taken as wide).

    Returns
    -------
    float
        :data:`CLOSE_UP_MAX_RED_CELL_TINT` for a field narrower than :data:`CLOSE_UP_UM`, else
        :data:`MAX_RED_CELL_TINT`.
    """
    return CLOSE_UP_MAX_RED_CELL_TINT if is_close_up(shape, mpp) else MAX_RED_CELL_TINT


def is_close_up(shape: tuple[int, ...], mpp: float | None) -> bool:
    """Whether an image of ``shape`` at ``mpp`` is a close-up (narrower than :data:`CLOSE_UP_UM`)."""
    return bool(mpp) and min(shape[0], shape[1]) * float(mpp or 0.0) < CLOSE_UP_UM


def red_cell_tint(image: np.ndarray, background: np.ndarray | None = None,
                  max_tint: float = MAX_RED_CELL_TINT) -> float:
    """The tint ``(OD_r - OD_b) / OD_sum`` of the red cells: a low quantile over the stained pixels.

    Red cells are the least blue, least nuclear-stained stain of a smear (and of a low-resolution
    thumbnail, where the ratio is unchanged by mixing with glass): among the stained pixels whose
    red-channel density is below its 60th percentile, the :data:`RED_CELL_TINT_QUANTILE` quantile
    of the tint is theirs, even in a crop where a white cell covers most of the stain. Measured per
    image, so that lilac, pink or grey-blue red cells (different stains) are each the reference.
    The result is capped at ``max_tint``.

    Parameters
    ----------
    image
        ``(rows, cols, 3)`` uint8 RGB (a thumbnail or a field).
    background
        Glass colour (estimated when ``None``).
    max_tint
        Cap of the result (:func:`red_cell_tint_cap`).

    Returns
    -------
    float
        The reference tint (0 when nothing is stained).
    """
    od = optical_density(image, background)
    total = od.sum(axis=-1)
    stained = total > 0.15
    if stained.sum() < 16:
        return 0.0
    red = od[..., 0][stained]
    pale = red <= np.quantile(red, 0.6)  # nuclei (dense nuclear dye) are no red cells
    ratio = (red - od[..., 2][stained])[pale] / total[stained][pale]
    return float(min(np.quantile(ratio, RED_CELL_TINT_QUANTILE), max_tint))


def chroma_tint_cap(chroma: tuple[float, float, float] | None, cap: float) -> float:
    """``cap`` of :func:`red_cell_tint`, lowered to :data:`CHROMA_TINT_MARGIN` above the tint of
    the red cells' own colour (:func:`red_cell_chroma`) when that is known: in a field crowded by
    big white cells their lilac cytoplasm is most of the pale stain, and its tint is no red cell's."""
    if chroma is None:
        return cap
    own = float(leukocyte_tint(np.asarray(chroma, dtype=np.float32), floor=0.0))
    return min(cap, own + CHROMA_TINT_MARGIN)


def total_density(od: np.ndarray) -> np.ndarray:
    """Sum of the three channel optical densities (float32, ``(rows, cols)``)."""
    return od.sum(axis=-1, dtype=np.float32)


#: Angle (cosine) within which a stained pixel belongs to the dominant (red-cell) colour cluster.
_CLUSTER_COS = float(np.cos(np.radians(12.0)))
#: Least share of the stained pixels for a colour cluster to be taken for the red cells.
_MIN_CLUSTER_SHARE = 0.15
#: Most leukocyte tint of a pink red-cell colour (MGG red cells: about 0).
PINK_RED_CELL_TINT = 0.08
#: Least leukocyte tint of white cells' lilac cytoplasm (CellaVision: 0.15-0.3).
LILAC_CYTOPLASM_TINT = 0.12


def _cluster(chroma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre of the largest cluster of unit vectors and its members (median, then re-centring)."""
    centre = np.median(chroma, axis=0)
    near = np.ones(len(chroma), dtype=bool)
    for _ in range(3):
        centre /= np.linalg.norm(centre)
        near = chroma @ centre > _CLUSTER_COS
        if near.sum() < 16:
            break
        centre = chroma[near].mean(axis=0)
    return centre / np.linalg.norm(centre), near


def red_cell_chroma(image: np.ndarray, background: np.ndarray | None = None) -> tuple[float, float, float] | None:
    """The colour direction (unit OD vector) of the red cells of a field, whatever the stain.

    The stained pixels' OD directions are clustered (the largest cluster: a median, then three
    rounds of re-centring on the pixels within 12°; then the largest cluster of the rest). Red
    cells are most of the stain of a smear field, pink, lilac or grey-blue; where white cells
    crowd a field (leukaemia), they may be the largest cluster, but red cells stay the *paler*
    one: of two clusters each holding at least :data:`_MIN_CLUSTER_SHARE` of the stain, the one
    of lower median density is taken — unless it is lilac and the denser one pink
    (:func:`_lilac_paler_than_pink`: big white cells whose pale cytoplasm is more of the stain
    than the red cells).

    Parameters
    ----------
    image
        ``(rows, cols, 3)`` uint8 RGB (a thumbnail or a field).
    background
        Glass colour (estimated when ``None``).

    Returns
    -------
    tuple of float or None
        The unit ``(r, g, b)`` OD direction; ``None`` when fewer than 16 pixels are stained.
    """
    od = optical_density(image, background).reshape(-1, 3)
    if od.shape[0] > 250_000:
        od = od[:: od.shape[0] // 250_000]
    norm = np.linalg.norm(od, axis=1)
    stained = norm > 0.1
    if stained.sum() < 16:
        return None
    chroma = od[stained] / norm[stained, None]
    density = norm[stained]
    first, members = _cluster(chroma)
    rest = ~members
    if rest.sum() >= _MIN_CLUSTER_SHARE * len(chroma):
        second, members2 = _cluster(chroma[rest])
        if members2.sum() >= _MIN_CLUSTER_SHARE * len(chroma):
            paler_second = np.median(density[rest][members2]) < np.median(density[members])
            paler, denser = (second, first) if paler_second else (first, second)
            first = denser if _lilac_paler_than_pink(paler, denser) else paler
    return float(first[0]), float(first[1]), float(first[2])


def _lilac_paler_than_pink(paler: np.ndarray, denser: np.ndarray) -> bool:
    """Whether the paler of two colour clusters is white cells' lilac cytoplasm
    (:data:`LILAC_CYTOPLASM_TINT`) and the denser pink red cells (:data:`PINK_RED_CELL_TINT`). (Blue-grey
    red cells beside lilac nuclei are no such case: neither cluster is pink.)"""
    tints = leukocyte_tint(np.stack([paler, denser]).astype(np.float32), floor=0.0)
    return bool(tints[0] >= LILAC_CYTOPLASM_TINT and tints[1] < PINK_RED_CELL_TINT)


def off_red_cell_density(od: np.ndarray, chroma: tuple[float, float, float] | np.ndarray) -> np.ndarray:
    """Optical density not explained by the red-cell stain: the OD vector's part orthogonal to it.

    Red cells, alone or stacked in clumps, have ~0 whatever their density; nuclei and blue or
    lilac cytoplasm (colours other than the red cells') have more the denser they are.

    Parameters
    ----------
    od
        ``(..., 3)`` optical densities.
    chroma
        Unit red-cell OD direction (:func:`red_cell_chroma`).

    Returns
    -------
    numpy.ndarray
        ``(...)`` float32, OD units.
    """
    e = np.asarray(chroma, dtype=np.float32)
    along = od @ e
    total = np.einsum("...k,...k->...", od, od)
    return np.sqrt(np.maximum(total - along * along, 0.0)).astype(np.float32)



#: Least density off the red-cell colour (75th percentile over the dense stain) for a close-up's
#: colours to be trusted: desaturated images (grey, pale) keep the tint tests.
CLOSE_UP_MIN_COLOUR_CONTRAST = 0.17
#: Least leukocyte tint of a red-cell OD direction for the red cells to count as blue-grey
#: (:func:`blue_grey`): then the tint tests cannot tell them from white cells. (CellaVision
#: close-ups' red-cell colour reaches 0.18 where a white cell's cytoplasm is taken for it; the
#: Taleqani fields' blue-grey red cells are about 0.33.)
BLUE_RED_CELL_TINT = 0.19


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


def blue_grey(chroma: tuple[float, float, float] | np.ndarray | None) -> bool:
    """Whether a red-cell OD direction is blue-grey: its leukocyte tint reaches
    :data:`BLUE_RED_CELL_TINT` (red cells as blue-lilac, by the tint, as white cells)."""
    if chroma is None:
        return False
    return bool(leukocyte_tint(np.asarray(chroma, dtype=np.float32), floor=0.0) >= BLUE_RED_CELL_TINT)


def _blue_red_cell_reference(image: np.ndarray, background: np.ndarray | None, mpp: float,
                             reference_um: float = 8.0, min_um2: float = 20.0
                             ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """:func:`_red_cell_reference` by colour instead of density, for blue-grey red cells.

    Blue-grey red cells may be as dense as the nuclei (no density threshold leaves any red cell
    far from the "dense" stain), yet of another colour: the nuclei are then what lies off the
    stain's main colour (:func:`red_cell_chroma`) beyond Otsu's threshold, and the red cells the
    stained pixels farther than ``reference_um`` from them — kept only when they are blue-grey
    (:data:`BLUE_RED_CELL_TINT`), the one case the density path cannot see, and the nuclei at
    least as blue-lilac as they are (else the main colour was a white cell filling the picture).
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

    The stain's colour clusters (:func:`red_cell_chroma`, on every ``step``-th pixel) give the
    red-cell colour, unless the field shows red cells far from every nucleus
    (:func:`_red_cell_reference`) over at least :data:`FAR_RED_CELL_MIN_UM2`, :data:`FAR_RED_CELL_FREE_UM2`
    of it in stain joined to no nucleus, whose own colour lies more than
    :data:`FAR_RED_CELL_MIN_ANGLE` from it: where big white cells are much of the
    stain (leukaemic fields, a crowd of monocytes or eosinophils), the largest or paler cluster
    is theirs — every red cell is then "off the red-cell colour" and no cell keeps its cytoplasm.

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
    far = _far_colour(od, pick) if reference is not None and pick.sum() * mpp**2 >= FAR_RED_CELL_MIN_UM2 else None
    if far is not None and _angle(far, chroma) > FAR_RED_CELL_MIN_ANGLE:
        pieces, _ = ndi.label(od.sum(axis=-1) > 0.15)
        if (pick & ~np.isin(pieces, pieces[dense])).sum() * mpp**2 >= FAR_RED_CELL_FREE_UM2:
            chroma = far
    off = filters.gaussian(off_red_cell_density(od, chroma), sigma=max(0.5 / mpp, 0.5))
    return FieldRedCells(chroma, True, float(np.quantile(off[pick], 0.99)))


def _far_colour(od: np.ndarray, pick: np.ndarray) -> tuple[float, float, float]:
    vectors = od[pick]
    centre, _ = _cluster(vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    return float(centre[0]), float(centre[1]), float(centre[2])


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
    """The red cells' OD direction in a close-up (a field narrower than :data:`CLOSE_UP_UM`).

    In a close-up a white cell may be most of the stain, so the stain's largest colour cluster
    (:func:`red_cell_chroma`) may be the white cell. Here the red cells are the stained pixels
    farther than ``reference_um`` from any dense stain (:func:`_red_cell_reference`: nuclei, and a
    cytoplasm rim reaches at most ~7 µm beyond them); their largest colour cluster is the red-cell
    colour. Where dark red cells pass Otsu's threshold too (dark stains, crowded close-ups), the
    dense stain is the densest of three classes instead, provided it has the nuclei's lilac tint
    (magenta nuclei are left to the tint-free path of :mod:`hemascope.segment.classical`); where
    blue-grey red cells are as dense as the nuclei, they are found by colour
    (:func:`_blue_red_cell_reference`). It is returned only when the dense stain stands out from
    it (:data:`CLOSE_UP_MIN_COLOUR_CONTRAST`): in desaturated images the colour differences shrink
    and the tint tests do better — unless the red cells are blue-grey (:func:`blue_grey`; some
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
    vectors = od[pick]
    centre, _ = _cluster(vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    if (np.quantile(off_red_cell_density(od[dense], centre), 0.75) < CLOSE_UP_MIN_COLOUR_CONTRAST
            and not blue_grey(centre)):
        return None
    return float(centre[0]), float(centre[1]), float(centre[2])
