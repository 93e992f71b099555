"""Nuclei of the ``classical`` backend (:mod:`hemascope.segment.classical`): the nuclear
evidence (red-channel density, density off the red cells' colour, or along the nuclei's own
colour), its crop-wide threshold, the nuclear support, and a candidate's own nucleus where a darker
neighbour set that threshold (:func:`centre_nucleus`)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage import filters, morphology

from hemascope.segment.classical_params import ClassicalParams
from hemascope.segment.instances import min_nucleus_px
from hemascope.segment.instances import um_to_px as _px
from hemascope.segment.masks import disk, fill_holes
from hemascope.segment.stain import leukocyte_tint, nuclear_stain, optical_density, total_density


def nucleus_mask(
    od: np.ndarray, mpp: float, params: ClassicalParams = ClassicalParams(), *, hysteresis: bool = False
) -> np.ndarray:
    """Boolean mask of nuclear-stained pixels.

    Parameters
    ----------
    od
        ``(rows, cols, 3)`` optical densities (:func:`~hemascope.segment.stain.optical_density`).
    mpp
        Micrometres per pixel of ``od``.
    params
        Backend parameters.
    hysteresis
        Also keep fainter stain (down to ``nucleus_hysteresis`` times the threshold) connected to
        dense chromatin: the *nuclear support* that decides which cells exist (thin band nuclei),
        wider than the nucleus outline itself.

    Returns
    -------
    numpy.ndarray
        ``(rows, cols)`` bool.
    """
    nuclei, support = nucleus_masks(od, mpp, params, support=hysteresis)
    return nuclei if support is None else support  # support: computed when hysteresis


def nucleus_masks(
    od: np.ndarray, mpp: float, params: ClassicalParams = ClassicalParams(), *, support: bool = True,
    off_red_cell: np.ndarray | None = None, along: np.ndarray | None = None, among_red_cells: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The nucleus mask and the nuclear support (see :func:`nucleus_mask`) from one smoothing pass.

    The nuclear evidence is smoothed and thresholded at the larger of Otsu's threshold and a floor;
    specks are removed and holes filled. The evidence is the red-channel OD (floor
    ``nucleus_min_od``) or, when given, the density off the red cells' colour (floor
    ``nucleus_min_off_od``), which finds nuclei of any hue relative to the image's own red cells.

    Parameters
    ----------
    od
        ``(rows, cols, 3)`` optical densities.
    mpp
        Micrometres per pixel of ``od``.
    params
        Backend parameters.
    support
        Also compute the hysteresis mask (else ``None`` is returned for it).
    off_red_cell
        ``(rows, cols)`` density off the red-cell colour
        (:func:`~hemascope.segment.stain.off_red_cell_density`), used instead of the red channel.
    along
        A unit OD direction (the nuclei's own colour, :func:`non_lilac_nucleus_colour`): the
        density along it is the evidence instead of the red channel (same floor).
    among_red_cells
        With ``along``: red cells of the nuclei's hue are in view, and the threshold is the upper
        one of a three-class Otsu (pale stain, red cells, nuclei) instead of Otsu's.

    Returns
    -------
    nuclei, support : numpy.ndarray
        ``(rows, cols)`` bool; ``support`` is ``None`` when not asked for.
    """
    stain, floor = nuclear_evidence(od, mpp, params, off_red_cell=off_red_cell, along=along)
    threshold = floor
    dense = stain[stain > floor / 2]
    if dense.size > 64 and np.ptp(dense) > 1e-3:
        if along is None or not among_red_cells:
            threshold = max(threshold, float(filters.threshold_otsu(dense)))
        else:  # the densest of three classes: pale stain, red cells of the nuclei's hue, nuclei
            threshold = max(threshold, float(filters.threshold_multiotsu(dense[::4], classes=3)[-1]))
    nuclei = _clean(stain > threshold, mpp, params)
    if not support:
        return nuclei, None
    return nuclei, _support(stain, floor, threshold, mpp, params)


def nuclear_evidence(od: np.ndarray, mpp: float, params: ClassicalParams = ClassicalParams(), *,
                     off_red_cell: np.ndarray | None = None, along: np.ndarray | None = None
                     ) -> tuple[np.ndarray, float]:
    """The smoothed nuclear evidence of :func:`nucleus_masks` and its floor."""
    evidence, floor = nuclear_stain(od), params.nucleus_min_od
    if off_red_cell is not None:
        evidence, floor = off_red_cell, params.nucleus_min_off_od
    elif along is not None:
        evidence = od @ np.asarray(along, dtype=np.float32)
    return filters.gaussian(evidence, sigma=max(_px(params.smooth_um, mpp), 0.5)), floor


def _clean(mask: np.ndarray, mpp: float, params: ClassicalParams) -> np.ndarray:
    min_px = max(int(params.nucleus_min_area_um2 / mpp**2), 1)
    return fill_holes(morphology.remove_small_objects(mask, max_size=min_px))


def _support(stain: np.ndarray, floor: float, threshold: float, mpp: float, params: ClassicalParams) -> np.ndarray:
    low = max(floor, params.nucleus_hysteresis * threshold)
    return _clean(filters.apply_hysteresis_threshold(stain, low, threshold), mpp, params)


#: A candidate's crop (:func:`centre_nucleus`) whose nuclei come no nearer its centre than this
#: (µm) ...
CENTRE_UM = 3.0
#: ... has the threshold taken again over the stain within this distance (µm) of the centre.
CENTRE_WINDOW_UM = 6.0
#: The nucleus found so holds at least this share of the crop's nuclei's median evidence (pale
#: monocytes beside lymphocytes: 0.44-0.46 on another lab's pictures; a red-cell doublet off the
#: red cells' colour, taken for one in a dark stain: 0.30).
CENTRE_MIN_SHARE = 0.37


def centre_nucleus(od: np.ndarray, off_red_cell: np.ndarray | None, nuclei: np.ndarray, centre: tuple[int, int],
                   mpp: float, params: ClassicalParams = ClassicalParams()) -> tuple[np.ndarray, np.ndarray] | None:
    """The nucleus, and its support, of the candidate at ``centre`` of a crop when the crop-wide
    threshold left it out: a paler cell beside a darker one (a pale monocyte touching a
    lymphocyte), whose nucleus is no denser than its neighbour's cytoplasm.

    Only where the crop's nuclei lie elsewhere (a darker nucleus set the threshold) and none
    within :data:`CENTRE_UM` of ``centre``: Otsu's threshold is taken again over the stain within
    :data:`CENTRE_WINDOW_UM` of it, a micrometre or more from those nuclei, and the stain above it
    that reaches the centre is the candidate's nucleus, if it holds :data:`CENTRE_MIN_SHARE` of
    the other nuclei's evidence (red cells do not).

    Parameters
    ----------
    od, off_red_cell
        The crop's optical densities and density off the red cells' colour (the evidence of
        :func:`nuclear_evidence`).
    nuclei
        The crop-wide nucleus mask (:func:`nucleus_masks`).
    centre
        The candidate's pixel ``(row, col)``.
    mpp
        Micrometres per pixel.
    params
        Backend parameters.

    Returns
    -------
    (nucleus, support) or None
        Boolean masks of the candidate's own nucleus and nuclear support (clear of ``nuclei``),
        or ``None`` when there is no such nucleus.
    """
    if not nuclei.any():
        return None
    rows, cols = np.ogrid[: nuclei.shape[0], : nuclei.shape[1]]
    distance = np.hypot(rows - centre[0], cols - centre[1]) * mpp
    if nuclei[distance <= CENTRE_UM].any():
        return None
    stain, floor = nuclear_evidence(od, mpp, params, off_red_cell=off_red_cell)
    near = ~ndi.binary_dilation(nuclei, disk(_px(1.0, mpp))) & (distance <= 2 * CENTRE_WINDOW_UM)
    window = near & (distance <= CENTRE_WINDOW_UM) & (stain > floor / 2)
    if window.sum() <= 64 or np.ptp(stain[window]) <= 1e-3:
        return None
    threshold = max(floor, float(filters.threshold_otsu(stain[window])))
    nucleus = _clean((stain > threshold) & near, mpp, params)
    labels, _ = ndi.label(nucleus)
    reached = np.unique(labels[(distance <= CENTRE_UM) & nucleus])
    nucleus = np.isin(labels, reached[reached > 0])
    if (nucleus.sum() < min_nucleus_px(mpp, params)
            or np.median(stain[nucleus]) < CENTRE_MIN_SHARE * np.median(stain[nuclei])):
        return None
    labels, _ = ndi.label(_support(np.where(near, stain, 0.0), floor, threshold, mpp, params))
    own = np.unique(labels[nucleus])
    return nucleus, np.isin(labels, own[own > 0])


def non_lilac_nucleus_colour(od: np.ndarray, nuclei: np.ndarray, red_cell_tint: float,
                             params: ClassicalParams = ClassicalParams()) -> np.ndarray | None:
    """The nuclei's own OD direction when they lack the blue-lilac tint, else ``None``.

    The red-channel nucleus evidence and the tint tests hold for purple-blue nuclei. Magenta
    nuclei (Wright, Leishman, rapid stains) absorb green light far more than red and carry almost
    no leukocyte tint (:func:`~hemascope.segment.stain.leukocyte_tint`); where the median tint
    of the red-channel nucleus mask is below ``lilac_min_tint``, the mean colour of its pixels
    (their unit OD direction) is returned, and the density along it finds the nuclei.

    Parameters
    ----------
    od
        ``(rows, cols, 3)`` optical densities.
    nuclei
        Red-channel nucleus mask (:func:`nucleus_masks`).
    red_cell_tint
        The slide's red-cell tint.
    params
        Backend parameters.

    Returns
    -------
    numpy.ndarray or None
        ``(3,)`` float32 unit vector, or ``None`` (lilac nuclei, or no nucleus).
    """
    if nuclei.sum() < 16:
        return None
    stain = od[nuclei]
    if float(np.median(leukocyte_tint(stain, red_cell_tint))) >= params.lilac_min_tint:
        return None
    colour = stain.mean(axis=0)
    return (colour / max(float(np.linalg.norm(colour)), 1e-6)).astype(np.float32)


def stain_away_from(od: np.ndarray, nuclei: np.ndarray, mpp: float, params: ClassicalParams) -> bool:
    """Whether at least ``reference_min_um2`` of dense stain (summed OD above
    ``red_cell_min_od``) lies farther than ``reference_um`` from the nuclei: red cells in view,
    not a cell on bare glass (whose pale cytoplasm may reach farther)."""
    far = ndi.distance_transform_edt(~nuclei) > _px(params.reference_um, mpp)
    return bool((far & (total_density(od) > params.red_cell_min_od)).sum() >= params.reference_min_um2 / mpp**2)




def nuclei_inside(image: np.ndarray, cells: np.ndarray, mpp: float, background: np.ndarray | None = None,
                  params: ClassicalParams = ClassicalParams()) -> np.ndarray:
    """Nucleus labels inside given cell labels (used by backends that only outline whole cells).

    Parameters
    ----------
    image
        ``(rows, cols, 3)`` uint8 RGB.
    cells
        Whole-cell instance labels.
    mpp
        Micrometres per pixel.
    background
        Glass colour (estimated when ``None``).
    params
        Backend parameters.

    Returns
    -------
    numpy.ndarray
        int32 labels, nucleus pixels of cell ``k`` labelled ``k``.
    """
    nuclei = nucleus_mask(optical_density(image, background), mpp, params)
    return np.where(nuclei, cells, 0).astype(np.int32)
