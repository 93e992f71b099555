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

from collections.abc import Sequence

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


def colour_tint(colour: tuple[float, float, float] | np.ndarray) -> float:
    """The tint ``(OD_r - OD_b) / OD_sum`` of one OD vector (a colour direction, or a region's summed
    density), as :func:`red_cell_tint` measures it: :func:`leukocyte_tint` without its floor."""
    return float(leukocyte_tint(np.asarray(colour, dtype=np.float32), floor=0.0))


def chroma_tint_cap(chroma: tuple[float, float, float] | None, cap: float) -> float:
    """``cap`` of :func:`red_cell_tint`, lowered to :data:`CHROMA_TINT_MARGIN` above the tint of
    the red cells' own colour (:func:`red_cell_chroma`) when that is known: in a field crowded by
    big white cells their lilac cytoplasm is most of the pale stain, and its tint is no red cell's."""
    if chroma is None:
        return cap
    return min(cap, colour_tint(chroma) + CHROMA_TINT_MARGIN)


#: No stain's nuclei absorb blue light nearly as much as green: their blue OD is 0.0-0.73 of their
#: green OD relative to the glass (segmented nuclei of PBC, DeepAPL and Taleqani pictures, and of
#: another lab's cells in eleven stain, camera and optics copies, rapid stains and a desaturated copy
#: among them). Ink does: scale bars and text burnt into camera pictures, black ones 0.92-0.99.
INK_BLUE_GREEN = 0.88
#: Ink is also known by its colour in the picture itself: neutral grey (channel spread under this
#: share of the mean; stained nuclei 0.13 and up), whatever the glass's tint (grey text on a white
#: label over yellow glass reads 0.64 relative to the glass) ...
INK_NEUTRAL_SPREAD = 0.1
#: ... or red (red OD under this share of green; nuclei 0.27 and up, magenta stains the lowest)
#: from this blue-to-green ratio up (red text 0.86).
INK_RED_GREEN = 0.25
INK_BLUE_GREEN_RED = 0.78


def ink_like(rgb: Sequence[float] | np.ndarray, background: Sequence[float] | np.ndarray) -> bool:
    """Whether a mean colour (a found nucleus's) is ink rather than stain: its optical density in
    blue (relative to ``background``, the glass) reaches :data:`INK_BLUE_GREEN` of that in green, or
    the colour is neutral grey, or red. Too pale a colour (green OD under 0.05) is not judged. Only
    meaningful where the stain itself has colour (:func:`coloured_stain`)."""
    colour, glass = np.asarray(rgb, dtype=np.float64), np.asarray(background, dtype=np.float64)
    if not (np.all(np.isfinite(colour)) and np.all(glass > 0)):
        return False
    od = np.maximum(-np.log10(np.clip(colour, 1.0, 255.0) / glass), 0.0)  # as optical_density
    if od[1] < 0.05:
        return False
    blue = od[2] / od[1]
    neutral = (colour.max() - colour.min()) < INK_NEUTRAL_SPREAD * max(colour.mean(), 1.0)
    red = od[0] < INK_RED_GREEN * od[1] and blue >= INK_BLUE_GREEN_RED
    return bool(blue >= INK_BLUE_GREEN or neutral or red)


#: A picture's stain has colour when its stained pixels' OD directions lie this far (degrees,
#: median) from neutral grey: MGG red cells 17, nuclei 27, blue-grey red cells 23; a monochrome
#: camera's picture about 0.
COLOURED_STAIN_DEGREES = 8.0


def coloured_stain(image: np.ndarray, background: np.ndarray | tuple[float, float, float]) -> bool:
    """Whether a picture's stain has colour: the median angle between its stained pixels' OD
    (summed OD over 0.15: red cells, cytoplasm, nuclei) and neutral grey reaches
    :data:`COLOURED_STAIN_DEGREES`. A picture without colour (a monochrome camera's, saved as RGB)
    has none to tell ink by."""
    od = optical_density(image, np.asarray(background, dtype=np.float32))
    total = od.sum(axis=-1)
    stained = total > 0.15
    if stained.sum() < 16:
        return True
    vectors = od[stained]
    cosine = total[stained] / (np.sqrt(3.0) * np.maximum(np.linalg.norm(vectors, axis=1), 1e-6))
    return bool(np.degrees(np.arccos(np.clip(np.median(cosine), -1.0, 1.0))) >= COLOURED_STAIN_DEGREES)


def total_density(od: np.ndarray) -> np.ndarray:
    """Sum of the three channel optical densities (float32, ``(rows, cols)``)."""
    return od.sum(axis=-1, dtype=np.float32)


#: Angle (cosine) within which a stained pixel belongs to the dominant (red-cell) colour cluster.
_CLUSTER_COS = float(np.cos(np.radians(12.0)))
#: Least share of the stained pixels for a colour cluster to be taken for the red cells.
_MIN_CLUSTER_SHARE = 0.15
#: The smaller cluster is the paler (red cells) only when its median density is below this share of
#: the largest's: pink blasts a little paler than the grey-blue red cells (0.160 against 0.177 OD,
#: Taleqani Pro-B fields) are not the red cells.
PALER_CLUSTER_MARGIN = 0.85
#: Most leukocyte tint of a pink red-cell colour (MGG red cells: about 0).
PINK_RED_CELL_TINT = 0.08
#: Least leukocyte tint of white cells' lilac cytoplasm (CellaVision: 0.15-0.3).
LILAC_CYTOPLASM_TINT = 0.12


def colour_cluster(chroma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
    of lower median density is taken (the smaller one only when clearly paler,
    :data:`PALER_CLUSTER_MARGIN`) — unless it is lilac and the denser one pink
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
    first, members = colour_cluster(chroma)
    rest = ~members
    if rest.sum() >= _MIN_CLUSTER_SHARE * len(chroma):
        second, members2 = colour_cluster(chroma[rest])
        if members2.sum() >= _MIN_CLUSTER_SHARE * len(chroma):
            paler_second = np.median(density[rest][members2]) < PALER_CLUSTER_MARGIN * np.median(density[members])
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


#: Least leukocyte tint of a red-cell OD direction for the red cells to count as blue-grey
#: (:func:`blue_grey`): then the tint tests cannot tell them from white cells. (CellaVision
#: close-ups' red-cell colour reaches 0.18 where a white cell's cytoplasm is taken for it; the
#: Taleqani fields' blue-grey red cells are about 0.33.)
BLUE_RED_CELL_TINT = 0.19


def blue_grey(chroma: tuple[float, float, float] | np.ndarray | None) -> bool:
    """Whether a red-cell OD direction is blue-grey: its leukocyte tint reaches
    :data:`BLUE_RED_CELL_TINT` (red cells as blue-lilac, by the tint, as white cells)."""
    if chroma is None:
        return False
    return colour_tint(chroma) >= BLUE_RED_CELL_TINT
