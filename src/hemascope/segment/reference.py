"""The local red-cell reference of one white cell, tolerant of a µm/px that is only approximate.

Part of the ``classical`` backend (:func:`hemascope.segment.classical.cell_mask`): the stained
pixels farther than ``reference_um`` from every nucleus are the red cells at this spot of the
slide, against whose tint the cytoplasm is told apart; a cell with too few stained pixels around it
lies on bare glass (every stained pixel near it is its own).

That distance is in micrometres, so a µm/px given only approximately, or estimated a little off,
moves the ring: with the scale stated too small (the cell looks larger), the ring lies beyond the
red cells that touch a large cell and the cell is taken for one on bare glass, red cells and all;
with the scale stated too large, the ring reaches into the pale cytoplasm of a large cell on bare
glass, which becomes its own "red-cell" reference and is lost. Both are checked here against the
ring one ``scale_tolerance`` nearer or farther: red cells are dense (the 90th percentile of their
summed OD at least ``red_cell_min_density`` of the nuclei's median, whatever the stain's
strength), the fringe of a cell's pale cytoplasm is not; and red cells are no bluer than the
slide's red cells, a large cell's own cytoplasm is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hemascope.segment.classical_params import ClassicalParams
from hemascope.segment.instances import um_to_px
from hemascope.segment.stain import colour_tint, leukocyte_tint

#: A cell lies on bare glass only if the part of the picture in view beyond its reference ring covers at least
#: this many times ``reference_min_um2`` (a tight box shows too little around the cell to tell).
GLASS_MIN_VIEW = 2.0


@dataclass(frozen=True)
class Reference:
    """Where a white cell's cytoplasm is judged against.

    Attributes
    ----------
    pixels
        The stained pixels taken as the local red cells (``None``: none measured).
    glass
        The cell lies on bare glass: every stained pixel near it is its own.
    """

    pixels: np.ndarray | None
    glass: bool


def _dense_as_red_cells(dense: np.ndarray, ring: np.ndarray, nuclei: np.ndarray, params: ClassicalParams) -> bool:
    """Whether the stain of ``ring`` is as dense as red cells (its 90th percentile at least
    ``red_cell_min_density`` of the nuclei's median), not the faint fringe of a cell's own cytoplasm."""
    return bool(np.quantile(dense[ring], 0.9) >= params.red_cell_min_density * np.median(dense[nuclei]))


def _coloured_as_red_cells(od: np.ndarray, dense: np.ndarray, ring: np.ndarray, red_cell_tint: float,
                           params: ClassicalParams) -> bool:
    """Whether ``ring`` is no bluer than the slide's red cells: the median tint of its denser half
    (faint edge pixels have a tint near 0 whatever their colour) within ``tint_threshold`` of
    ``red_cell_tint``, so that it would not pass for cytoplasm."""
    densities = dense[ring]
    denser = od[ring][densities >= np.median(densities)]
    return bool(np.median(leukocyte_tint(denser)) <= red_cell_tint + params.tint_threshold)


def local_reference(od: np.ndarray, dense: np.ndarray, stained: np.ndarray, nuclei: np.ndarray,
                    distance: np.ndarray, mpp: float, red_cell_tint: float,
                    params: ClassicalParams = ClassicalParams(), seen: np.ndarray | None = None,
                    elsewhere: np.ndarray | None = None) -> Reference:
    """The local red-cell reference of the cell(s) around some nuclei.

    At the stated scale: the stained pixels farther than ``reference_um`` from the nuclei when they
    cover ``reference_min_um2`` (red cells around); bare glass when they cover less than 30 % of
    that far area, provided there is enough of it in view (``seen``) to tell; else none (a tight
    crop: the slide's red-cell tint decides). Then, as if the
    scale were off by ``scale_tolerance``:

    - *bare glass* becomes the ring ``scale_tolerance`` nearer (its area ``scale_tolerance²``
      smaller) when that ring holds enough stain as dense as red cells and no bluer than the
      slide's red cells (``red_cell_tint`` + ``tint_threshold``; a large cell's own cytoplasm is
      bluer): red cells touching a large cell;
    - *red cells around* become bare glass when the ring ``scale_tolerance`` farther would be
      bare glass and the stain of the ring at the stated distance is fainter than red cells: the
      pale fringe of a large cell's cytoplasm.

    Parameters
    ----------
    od
        ``(rows, cols, 3)`` optical densities.
    dense
        Smoothed summed optical density.
    stained
        Stained pixels (``dense`` above ``cell_min_od``).
    nuclei
        The nuclei (their support).
    distance
        Distance (pixels) of every pixel to the nearest nucleus pixel.
    mpp
        Micrometres per pixel (perhaps only approximate).
    red_cell_tint
        The slide's red-cell tint.
    params
        Backend parameters.
    seen
        The pixels inside the picture (``None``: all). Outside it a crop is padded with blank
        glass, which is no evidence of glass: a tight box around a cell among red cells is not
        a cell on bare glass.
    elsewhere
        Pixels of other white cells (``None``: none known): left out of every ring, as if
        outside the view.

    Returns
    -------
    Reference
        The reference pixels and whether the cell lies on bare glass.
    """
    tolerance = params.scale_tolerance

    def ring(reference_um: float, min_um2: float) -> tuple[np.ndarray, bool, bool]:
        far = distance > um_to_px(reference_um, mpp)
        if elsewhere is not None:
            far &= ~elsewhere
        local = stained & far
        enough = bool(local.sum() >= min_um2 / mpp**2)
        in_view = bool((far if seen is None else far & seen).sum() >= GLASS_MIN_VIEW * min_um2 / mpp**2)
        return local, enough, not enough and in_view and bool(local.sum() < 0.3 * far.sum())

    local, enough, glass = ring(params.reference_um, params.reference_min_um2)
    if enough:
        _, _, glass_farther = ring(params.reference_um * tolerance, params.reference_min_um2 * tolerance**2)
        if glass_farther and not _dense_as_red_cells(dense, local, nuclei, params):
            return Reference(None, True)  # the stated ring is the pale fringe of the cell's own cytoplasm
        return Reference(local, False)
    if glass:
        near, near_enough, _ = ring(params.reference_um / tolerance, params.reference_min_um2 / tolerance**2)
        if near_enough and _dense_as_red_cells(dense, near, nuclei, params) and _coloured_as_red_cells(
                od, dense, near, red_cell_tint, params):
            return Reference(near, False)  # red cells touching a large cell, inside the stated ring
        return Reference(None, True)
    return Reference(None, False)


def reference_tint(od: np.ndarray, dense: np.ndarray, local: np.ndarray, params: ClassicalParams) -> float:
    """The tint of the local red cells ``local`` (the reference's pixels) that cytoplasm must
    exceed (:func:`~hemascope.segment.classical.cell_mask`): their median
    :func:`~hemascope.segment.stain.leukocyte_tint`, and, where most of them are dense (half
    ``red_cell_min_od`` smoothed), at least their tint ``(OD_r - OD_b) / OD_sum`` less
    ``tint_threshold``. The tint's floor understates dense blue-grey red cells' tint, so that they
    passed for cytoplasm bluer than themselves (a lymphocyte took the red cells it touches); a
    pale reference (the fringe of a big cell's own cytoplasm) keeps the median."""
    tint = float(np.median(leukocyte_tint(od[local])))
    dense_local = local & (dense > params.red_cell_min_od / 2)
    if dense_local.sum() > local.sum() / 2:
        tint = max(tint, colour_tint(od[dense_local].sum(axis=0)) - params.tint_threshold)
    return tint
