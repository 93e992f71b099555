"""Zero-configuration pixel size: µm/px of a smear image from what is in it, with a confidence.

Cues (each in :attr:`ScaleEstimate.cues`):

``red_cell_arcs``
    Red cells are discs of nearly one size (median diameter :data:`RED_CELL_DIAMETER_UM`), so
    every convex piece of their outline is an arc of a circle of the red-cell radius — isolated,
    touching, overlapping, cut by the border, with or without a pale centre
    (:mod:`hemascope.segment.arcs`). Outlines near a white cell do not vote.
``red_cell_discs``
    Whole red cells (not touching the border): the largest inscribed circle of each (a maximum
    of the distance transform of the red-cell area), voting like a whole circumference.
``nucleus``
    The white-cell nucleus (the image's own outlier in nuclear stain; among blue-grey red cells,
    where white cells pack a field, the stain absorbing at least as much green as red): its
    equivalent diameter is 4-12 µm in nearly every white cell, so it checks the red-cell answer;
    outlines around nuclei do not vote.
``white_cell_arcs``
    On a close-up-like image (a compact nucleus is found, :func:`~hemascope.segment.white_cell_scale.lone_nucleus`,
    and the outline left beside it is under :data:`_CLOSE_UP_OUTLINE` nucleus circumferences):
    arcs centred on the white cell's nucleus (the outline of that white cell or of its nucleus,
    :func:`~hemascope.segment.white_cell_scale.white_cell_zone`) do not vote, nor do arcs of a size
    no red cell has beside that nucleus (outside :data:`RED_CELL_PER_NUCLEUS` nuclei across:
    granules, specks, clumps). Fields and crops with many red cells vote as before.
``path``
    ``"red_cells"``, or ``"white_cell"`` on a close-up of a white cell with no red-cell population:
    the red-cell-sized votes amount to less than :data:`LONE_CELL_EVIDENCE` circumferences and the
    votes of any size (``any_size_circumferences``) to less than half a circumference or to
    granules. The answer is then the cell's whole nucleus (all lobes; ``nucleus_diameter_px``)
    taken as :data:`~hemascope.segment.white_cell_scale.LONE_NUCLEUS_UM` across (``nucleus_mpp``),
    always low confidence (one cell of a biologically variable size).
``lone_nucleus_centre``
    Where that nucleus lies (``(row, col)`` of its pixels' mean, in the image), when it is wholly
    inside the image and its cell does not cover the image's centre (the centre is off the stained
    object holding it, or on red cells touching it further than the nucleus's diameter away): the
    cell a one-cell field shows off its centre, for the cell model's reading
    (:func:`hemascope.classify.cell_scale.picture_scale`).

The answer is the weighted mode of the red-cell votes. Confidence (0-1) grows with the amount of
red-cell edge seen (in whole circumferences) and with the share of votes agreeing with the mode;
it drops when the nucleus would have an implausible size at that scale, and when another radius
(more than 25 % away) is voted nearly as strongly as the chosen one (``rival``: the mode is then
a coin toss between, e.g., the red cells and a clump of smaller or larger outlines). Below
:data:`MIN_CONFIDENCE` the estimate is flagged ``low_confidence``: callers must say so (the CLI
does) or ask for ``--mpp``. An image with no usable cue at all raises instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage import feature, filters, morphology

from hemascope.errors import InvalidInputError
from hemascope.segment.arcs import ArcVotes, arc_votes
from hemascope.segment.masks import fill_holes
from hemascope.segment.stain import as_rgb_uint8, leukocyte_tint, optical_density, total_density
from hemascope.segment.white_cell_scale import (
    LONE_NUCLEUS_UM,
    MIN_NUCLEUS_PX,
    absorbs_green,
    lone_nucleus,
    white_cell_zone,
)

#: Median diameter of a normal red cell in a dried smear, in micrometres.
RED_CELL_DIAMETER_UM = 7.5
#: Plausible equivalent diameter of a white-cell nucleus (µm).
NUCLEUS_RANGE_UM = (4.0, 12.0)
#: Red-cell edge (circumferences agreeing with the mode, white-cell outlines and votes of no red-cell
#: size left out) under which the image may be a close-up of a white cell (answered from its nucleus) ...
LONE_CELL_EVIDENCE = 0.25
#: Red-cell diameter, in diameters of the main white cell's whole nucleus: votes outside are no red cells.
RED_CELL_PER_NUCLEUS = (0.4, 2.5)
#: ... when the votes of any size amount to less than this many circumferences ...
_UNSIZED_EVIDENCE = 0.5
#: ... or their mode is under this share of the nucleus across (granules, specks: never a red cell).
_SPECK_PER_NUCLEUS = 0.2
#: The nucleus sizes the red-cell votes only where the outline searched for arcs is under this many
#: nucleus circumferences (close-ups and crops: under 2; a field of many red cells: more, and there
#: a "nucleus" may be red cells run together).
_CLOSE_UP_OUTLINE = 2.0
#: Confidence of an answer from one white cell's nucleus (always flagged).
_LONE_CELL_CONFIDENCE = 0.1
#: Estimates with a confidence below this are flagged ``low_confidence``.
MIN_CONFIDENCE = 0.5
#: Red-cell edge (in whole circumferences) for full confidence from the amount of evidence.
_FULL_EVIDENCE = 3.0
#: Share of the red-cell edge (arc length) voting within ±12 % of the mode for full confidence.
_FULL_AGREEMENT = 0.4
#: A rival peak of the red-cell votes (another radius, > 25 % away) up to this height relative to
#: the chosen one costs nothing; above it the confidence falls linearly to 0 at equal heights.
_RIVAL_FREE = 0.6
#: Where the red-cell edge is put, between the glass and the red-cell density (0 glass, 1 red cell).
_EDGE_LEVEL = 0.5
#: Pixels whose brightest channel is below this are black print (scale bars, labels), not stain.
_INK_LEVEL = 50
#: Share of a picture's stain absorbing less green than red from which its red cells count as
#: blue-grey and its nuclei are also sought by the green test (:func:`_green_nuclei`) ...
_BLUE_GREY_SHARE = 0.25
#: ... whose nuclei replace the tint test's when they cover more than this many times their area
#: (the tint test then missed most of them: pale blasts packing a field; 1.5-6 measured alike on
#: Taleqani fields, 6 cost another lab's blue-grey crops least).
_HIDDEN_NUCLEI = 6.0
#: Smallest nucleus (px) the green test keeps.
_GREEN_NUCLEUS_MIN_PX = 20
#: Longest image side analysed (larger images are centre-cropped: a 1024² field shows hundreds of red cells).
_MAX_SIDE = 1024


class ScaleEstimate(float):
    """An estimated µm/px that is also a ``float`` (``float(est)``, arithmetic, formatting work).

    Attributes
    ----------
    mpp
        Estimated micrometres per pixel (the float value itself).
    confidence
        0 (a guess) to 1 (many red cells agree, the nucleus fits).
    low_confidence
        ``confidence < MIN_CONFIDENCE``: report it, or ask the user for the µm/px.
    cues
        Per-cue facts (µm/px each cue alone implies, votes, support).
    reason
        One line saying what the estimate rests on (and why it is low-confidence, when it is).
    """

    mpp: float
    confidence: float
    low_confidence: bool
    cues: dict
    reason: str

    def __new__(cls, mpp: float, confidence: float, cues: dict | None = None, reason: str = "") -> ScaleEstimate:
        obj = super().__new__(cls, float(mpp))
        obj.mpp = float(mpp)
        obj.confidence = float(confidence)
        obj.low_confidence = bool(confidence < MIN_CONFIDENCE)
        obj.cues = dict(cues or {})
        obj.reason = reason
        return obj

    def __reduce__(self):
        return (ScaleEstimate, (self.mpp, self.confidence, self.cues, self.reason))

    def __repr__(self) -> str:
        flag = ", low confidence" if self.low_confidence else ""
        return f"ScaleEstimate(mpp={self.mpp:.4g}, confidence={self.confidence:.2f}{flag})"

    @property
    def from_close_up(self) -> bool:
        """Whether it was measured on a close-up of one white cell (little but that cell in view:
        the white cell's own arcs left out, or its nucleus the only cue)."""
        return "white_cell_arcs" in self.cues or self.cues.get("path") == "white_cell"

    def as_dict(self) -> dict:
        """Plain values for result files: ``mpp``, ``confidence``, ``low_confidence``, ``reason``."""
        return {"mpp": self.mpp, "confidence": self.confidence, "low_confidence": self.low_confidence,
                "reason": self.reason}


@dataclass
class _Masks:
    red: np.ndarray  # red-cell (stained, holes filled) area
    exclude: np.ndarray  # around white-cell nuclei: outlines here do not vote
    nucleus_diameters: np.ndarray  # px, largest first
    nuclei: np.ndarray  # white-cell nucleus pixels
    stain: np.ndarray  # anything stained (not glass, not black print)
    nuclear: np.ndarray  # nuclear-dye density (red-channel OD, smoothed)
    green: np.ndarray  # green-channel OD, smoothed
    tint: np.ndarray  # leukocyte tint (smoothed)
    white_tint: float  # tint above which stain may be a white cell's


def _centre_crop(image: np.ndarray) -> np.ndarray:
    rows, cols = image.shape[:2]
    r0, c0 = max((rows - _MAX_SIDE) // 2, 0), max((cols - _MAX_SIDE) // 2, 0)
    return image[r0 : r0 + _MAX_SIDE, c0 : c0 + _MAX_SIDE]


def _touches_border(mask: np.ndarray) -> bool:
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def _on_centre(masks: _Masks, cell: np.ndarray, centroid: tuple[float, float], diameter: float) -> bool:
    """Whether the image's centre lies on the white cell whose nucleus (``centroid``, ``diameter``)
    the stained object ``cell`` holds: on that object, unless only red cells touching the white cell
    reach the centre (further than the nucleus's diameter from it, on stain of no white cell's tint)."""
    row, col = cell.shape[0] // 2, cell.shape[1] // 2
    if not cell[row, col]:
        return False
    far = np.hypot(centroid[0] - row, centroid[1] - col) > diameter
    return not (far and masks.tint[row, col] <= masks.white_tint)


def _masks(image: np.ndarray) -> _Masks | None:
    """Red-cell area and white-cell exclusion zone from the image's own colours (``None``: blank)."""
    od = optical_density(image)
    density = filters.gaussian(total_density(od), sigma=1.0)
    tint = filters.gaussian(leukocyte_tint(od), sigma=1.0)
    # black print (scale bars, labels): far denser than any stain, and not a cell outline
    ink = ndi.binary_dilation(image.max(axis=-1) < _INK_LEVEL, iterations=2)
    rough = (density > 0.06) & ~ink
    if rough.sum() < 50:
        return None
    cut = np.percentile(tint[rough], 70)  # the bluest 30 % of stain may be white cells
    pink = density[((tint <= cut) | ~rough) & ~ink]  # glass and red cells
    if pink.size < 50 or np.ptp(pink) < 0.05:
        return None
    pink = np.minimum(pink, np.percentile(pink, 99))  # a few outliers cannot pull the split
    split = max(float(filters.threshold_otsu(pink)), 0.05)
    low, high = pink[pink <= split], pink[pink > split]
    if low.size == 0 or high.size == 0:
        return None
    glass, red = float(np.median(low)), float(np.median(high))
    stained = (density > glass + _EDGE_LEVEL * (red - glass)) & ~ink
    red_od = filters.gaussian(od[..., 0], sigma=1.0)
    green_od = filters.gaussian(od[..., 1], sigma=1.0)
    red_cells = fill_holes(stained)
    # nuclei: the bluest stain, denser in red than the red cells ...
    red_cell_level = float(np.median(red_od[stained & (tint <= cut)])) if (stained & (tint <= cut)).any() else 0.0
    nuclear_level = max(float(filters.threshold_otsu(red_od[stained])) if stained.sum() > 16 else 0.0,
                        1.5 * red_cell_level, 0.15)
    nuclei = fill_holes((red_od > nuclear_level) & (tint > cut))
    if _blue_grey(red_cells, red_od, green_od):  # ... unless blue-grey red cells hid most of them
        green_nuclei = _green_nuclei(red_cells, red_od, green_od)
        if green_nuclei.sum() > _HIDDEN_NUCLEI * nuclei.sum():
            nuclei = green_nuclei
    labels, n = ndi.label(nuclei)
    exclude = np.zeros(nuclei.shape, dtype=bool)
    diameters = np.zeros(0)
    if n:
        areas = np.bincount(labels.ravel())
        radii = np.sqrt(areas / np.pi)
        dist, (ir, ic) = ndi.distance_transform_edt(~nuclei, return_indices=True)
        exclude = dist < radii[labels[ir, ic]] + 2  # the cytoplasm around a nucleus
        diameters = np.sort(2 * radii[1:])[::-1]
    return _Masks(red_cells, exclude, diameters, nuclei, rough, red_od, green_od, tint, float(cut))


def _blue_grey(stained: np.ndarray, red_od: np.ndarray, green_od: np.ndarray) -> bool:
    """Whether the picture's red cells are blue-grey: at least :data:`_BLUE_GREY_SHARE` of its stain
    absorbs less green than red. A nucleus absorbs at least as much green as red in every stain
    measured; pink red cells do too (0-6 % of CellaVision crops' stain does not), blue-grey ones
    do not (median 75 % of the Taleqani fields' stain; BENCHMARKS.md, "Blue-grey fields packed
    with blasts")."""
    return bool(stained.any()) and float((~absorbs_green(red_od[stained], green_od[stained])).mean()) >= _BLUE_GREY_SHARE


def _green_nuclei(stained: np.ndarray, red_od: np.ndarray, green_od: np.ndarray) -> np.ndarray:
    """White-cell nuclei of a blue-grey picture: stain absorbing at least as much green as red.

    Its red cells are as blue and as dense as a pale blast's nucleus, so the tint and density tests
    miss the nuclei wherever white cells are a large part of the stain (a field packed with blasts:
    their outlines then voted as red cells a third too large). Thin rims (one-pixel opening) and
    specks under :data:`_GREEN_NUCLEUS_MIN_PX` are dropped."""
    nuclei = fill_holes(ndi.binary_opening(stained & absorbs_green(red_od, green_od)))
    return morphology.remove_small_objects(nuclei, max_size=_GREEN_NUCLEUS_MIN_PX - 1)


def _disc_votes(red: np.ndarray, exclude: np.ndarray) -> np.ndarray:
    """Inscribed-circle radii of whole red cells (distance-transform maxima away from the border)."""
    dist = ndi.distance_transform_edt(np.pad(red, 1))[1:-1, 1:-1]
    peaks = feature.peak_local_max(dist, min_distance=3, threshold_abs=3, exclude_border=False)
    if not len(peaks):
        return np.zeros(0)
    values = dist[peaks[:, 0], peaks[:, 1]]
    rows, cols = red.shape
    border = np.minimum.reduce([peaks[:, 0], peaks[:, 1], rows - 1 - peaks[:, 0], cols - 1 - peaks[:, 1]])
    keep = (values < border - 1) & ~exclude[peaks[:, 0], peaks[:, 1]]
    return values[keep]


def _nucleus_size_um(mpp: float, diameters_px: np.ndarray) -> float | None:
    """Typical nucleus diameter (µm) at ``mpp``: the median of the blobs large enough to be nuclei."""
    um = diameters_px * mpp
    nuclei = um[um >= NUCLEUS_RANGE_UM[0]]
    if nuclei.size:
        return float(np.median(nuclei))
    return float(um.max()) if um.size and um.max() >= 2.5 else None  # platelets, specks: no nucleus


def _nucleus_check(size_um: float | None) -> float:
    """1 when the nucleus has a plausible size (or there is none), falling to 0 as it grows absurd."""
    if size_um is None:
        return 1.0
    lo, hi = NUCLEUS_RANGE_UM
    if lo <= size_um <= hi:
        return 1.0
    off = lo / size_um if size_um < lo else size_um / hi
    return float(np.clip(1.0 - 2.0 * (off - 1.0), 0.0, 1.0))


def _red_cell_votes(arcs: ArcVotes, discs: np.ndarray) -> tuple[ArcVotes, float, float, float]:
    """Arc and disc votes pooled: the votes, modal radius, agreement and circumferences agreeing."""
    lengths = arcs.weights if arcs.lengths is None else arcs.lengths  # as ArcVotes.mode reads them
    per_length = arcs.weights.sum() / lengths.sum() if lengths.sum() > 0 else 1.0
    disc_weight = 2 * np.pi * discs * per_length
    votes = ArcVotes(np.concatenate([arcs.radii, discs]), np.concatenate([arcs.weights, disc_weight]),
                     np.concatenate([lengths, 2 * np.pi * discs]))
    radius, agreement = votes.mode()
    evidence = agreement * arcs.outline / (2 * np.pi * radius) if radius > 0 else 0.0
    return votes, radius, agreement, evidence


def _white_cell_estimate(nucleus_px: float, evidence: float, cues: dict) -> ScaleEstimate:
    """The answer from one white cell's whole nucleus (always flagged low confidence)."""
    mpp = LONE_NUCLEUS_UM / nucleus_px
    cues.update(path="white_cell", nucleus_mpp=mpp, nucleus_diameter_px=nucleus_px, circumferences=evidence)
    return ScaleEstimate(mpp, _LONE_CELL_CONFIDENCE, cues,
                         f"a close-up of a white cell ({evidence:.1f} red-cell circumferences): from its "
                         f"nucleus taken as {LONE_NUCLEUS_UM:g} µm across (a guess from one cell)")


def estimate_mpp(image: np.ndarray, red_cell_um: float = RED_CELL_DIAMETER_UM) -> ScaleEstimate:
    """Estimate micrometres per pixel from the red cells (and white-cell nuclei) of ``image``.

    Works on dense fields where red cells touch or overlap, on crops with a few partial red cells
    and on close-ups (one white cell without red cells: from its nucleus, always flagged); the
    result says how far it can be trusted (see the module notes).

    Parameters
    ----------
    image
        ``(rows, cols, 3)`` uint8 RGB smear image (field, crop or level-0 region of a slide).
    red_cell_um
        Assumed median red-cell diameter.

    Returns
    -------
    ScaleEstimate
        A ``float`` subclass: the µm/px, with ``confidence``, ``low_confidence``, ``cues`` and
        ``reason``.

    Raises
    ------
    InvalidInputError
        If the image shows neither red cells nor a nucleus (blank, glass only, not a smear).
    """
    full = as_rgb_uint8(image)
    image = _centre_crop(full)
    hint = "pass the µm/px explicitly (mpp=..., --mpp)"
    masks = _masks(image)
    if masks is None:
        raise InvalidInputError(f"cannot estimate the pixel size: no stained cells in the image; {hint}")
    nucleus_px, nucleus, nucleus_cell = lone_nucleus(masks.stain, masks.nuclear, masks.tint, masks.green)
    arcs = arc_votes(filters.gaussian(masks.red.astype(float), sigma=1.0), exclude=masks.exclude)
    discs = _disc_votes(masks.red, masks.exclude)
    cues: dict = {"lone_nucleus_px": nucleus_px}
    if nucleus_px >= MIN_NUCLEUS_PX:  # arcs centred on the white cell: its outline, its nucleus's
        rows, cols = np.nonzero(nucleus)
        centroid = (float(rows.mean()), float(cols.mean()))
        # a one-cell field's cell, off the centre: for the cell model's reading (picture_scale)
        if not _touches_border(nucleus) and not _on_centre(masks, nucleus_cell, centroid, nucleus_px):
            offset = ((full.shape[0] - image.shape[0]) // 2, (full.shape[1] - image.shape[1]) // 2)
            cues.update(lone_nucleus_centre=(centroid[0] + offset[0], centroid[1] + offset[1]))
        zone = white_cell_zone(masks.red, masks.nuclei | nucleus)
        centres = np.round(np.zeros((0, 2)) if arcs.centres is None else arcs.centres).astype(int)
        inside = (centres >= 0).all(axis=1) & (centres[:, 0] < zone.shape[0]) & (centres[:, 1] < zone.shape[1])
        on_white_cell = np.zeros(len(centres), dtype=bool)
        on_white_cell[inside] = zone[centres[inside, 0], centres[inside, 1]]
        cell_arcs = arcs.without(on_white_cell)
        outline = cell_arcs.outline / (np.pi * nucleus_px)  # outline left, in nucleus circumferences
        cues.update(outline_per_nucleus=outline)
        if outline < _CLOSE_UP_OUTLINE:  # close-up-like: little besides the white cell (fields: as before)
            arcs, discs = cell_arcs, _disc_votes(masks.red, masks.exclude | zone)
            cues.update(white_cell_arcs=int(on_white_cell.sum()))
    votes, radius, agreement, evidence = _red_cell_votes(arcs, discs)
    cues.update(any_size_circumferences=evidence, any_size_mpp=red_cell_um / 2 / radius if radius > 0 else 0.0)
    if "white_cell_arcs" in cues:  # granules, specks, clumps: no red cells beside this nucleus
        lo, hi = RED_CELL_PER_NUCLEUS[0] * nucleus_px / 2, RED_CELL_PER_NUCLEUS[1] * nucleus_px / 2
        sized = _red_cell_votes(arcs.without((arcs.radii < lo) | (arcs.radii > hi)), discs[(discs >= lo) & (discs <= hi)])
        if sized[3] >= LONE_CELL_EVIDENCE:
            votes, radius, agreement, evidence = sized
        elif evidence < _UNSIZED_EVIDENCE or 2 * radius < _SPECK_PER_NUCLEUS * nucleus_px:  # a close-up of a white cell
            return _white_cell_estimate(nucleus_px, sized[3], cues)
    cues.update(red_cell_votes=int(votes.radii.size), red_cell_arcs=int(arcs.radii.size), red_cell_discs=int(discs.size))
    big_nuclei = masks.nucleus_diameters
    if radius > 0:
        mpp = red_cell_um / 2 / radius
        nucleus_um = _nucleus_size_um(mpp, big_nuclei)
        nucleus_fit = _nucleus_check(nucleus_um)
        rival = votes.rival(radius)
        rival_fit = float(np.clip((1.0 - rival) / (1.0 - _RIVAL_FREE), 0.0, 1.0))
        confidence = (min(evidence / _FULL_EVIDENCE, 1.0) * min(agreement / _FULL_AGREEMENT, 1.0)
                      * nucleus_fit * rival_fit)
        cues.update(path="red_cells", red_cell_mpp=mpp, red_cell_radius_px=radius, circumferences=evidence,
                    agreement=agreement, nucleus_fit=nucleus_fit, rival=rival)
        reason = (f"red-cell edges: {evidence:.1f} circumferences, {agreement:.0%} agree; "
                  f"nucleus fit {nucleus_fit:.2f}")
        if rival > _RIVAL_FREE:
            reason += f"; a second radius {rival:.0%} as strongly voted"
        if nucleus_um is not None:
            cues["nucleus_diameter_um"] = nucleus_um
        return ScaleEstimate(mpp, confidence, cues, reason)
    if big_nuclei.size and big_nuclei[0] >= MIN_NUCLEUS_PX:  # a nucleus that only the white-cell tint found
        return _white_cell_estimate(float(big_nuclei[0]), 0.0, cues)
    raise InvalidInputError(f"cannot estimate the pixel size: no red-cell edges or nucleus found; {hint}")
