"""Slide-level checks that decide whether the slide-level figures may be shown.

Two checks travel with every analysed slide (``SlideResult.checks``):

- ``smear``: does the slide look like a blood or marrow smear at all
  (:func:`hemascope.io.smear_check.smear_likeness`)? Tissue sections, blank glass and the like
  are not what the cell models were trained on.
- ``domain_shift``: are its cells like the cell model's training data
  (:mod:`hemascope.classify.shift`)? A different microscope, camera or stain moves the
  network's internal statistics; the model's card holds the calibrated threshold.

A third entry, ``stain`` (never failed), says which reference stain the cells' lies nearest and
whether they were also read in another (:mod:`hemascope.classify.stain`).

:func:`slide_checks` runs them (plus the confidence of an estimated µm/px). When one fails, :func:`withhold` keeps the counts (the cells were found and are reviewable)
but withholds the blast percentage and every slide-level prediction, saying why: a confident
wrong answer is worse than none. Neither check can see an unseen *cell type* (the guard measures
imaging, not morphology), which the report says too.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

#: What the report says the domain-shift guard can and cannot see.
GUARD_SCOPE = (
    "the shift guard detects another microscope, camera or stain; it cannot detect cell types "
    "absent from the training data"
)


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def slide_checks(slide: Any, cells: pd.DataFrame, cell_model: Any) -> dict[str, dict[str, Any]]:
    """Run the slide-level checks: smear likeness, domain shift and, when the µm/px was
    estimated from the image, the estimate's confidence.

    Parameters
    ----------
    slide
        The analysed :class:`~hemascope.io.Slide`.
    cells
        Its cell table (level-0 ``row``/``col`` centroids).
    cell_model
        The :class:`~hemascope.models.LoadedModel` that classified the cells; the domain shift
        is measured with it, unadapted, on a seeded sample of up to 512 cells.

    Returns
    -------
    dict
        ``{name: {"ok": bool | None, "score": float | None, "reason": str, ...}}``; ``ok`` is
        ``None`` when a check could not be judged.
    """
    from hemascope.classify.crops import slide_crop
    from hemascope.classify.probe import probe_subset
    from hemascope.io.smear_check import smear_likeness

    smear = smear_likeness(slide)
    checks: dict[str, dict[str, Any]] = {
        "smear": {"ok": bool(smear.is_smear), "score": _finite(smear.score), "reason": smear.reason}}
    if hasattr(slide.mpp, "low_confidence"):  # estimated from the image (segment.scale)
        low = bool(slide.mpp.low_confidence)
        checks["scale"] = {
            "ok": not low, "score": _finite(slide.mpp.confidence),
            "reason": f"µm/px estimated from the image as {float(slide.mpp):.3f} (confidence "
                      f"{slide.mpp.confidence:.2f})" + ("; low confidence: pass the scale (--mpp)" if low else ""),
        }
    if len(cells) == 0 or "row" not in cells:
        checks["domain_shift"] = unjudged_shift("no cells to judge")
        return checks
    card = cell_model.card
    picked = cells.iloc[probe_subset(len(cells))]
    level = slide.best_level_for_mpp(card.mpp)
    crops = np.stack([slide_crop(slide, r, c, card, level)
                      for r, c in zip(picked["row"], picked["col"], strict=True)])
    checks.update(cell_checks(crops, cell_model))
    return checks


def unjudged_shift(reason: str) -> dict[str, Any]:
    """The ``domain_shift`` check when it could not be judged, and why."""
    return {"ok": None, "score": None, "reason": reason, "scope": GUARD_SCOPE}


def cell_checks(crops: np.ndarray, cell_model: Any) -> dict[str, dict[str, Any]]:
    """The checks judged on the cells themselves: ``domain_shift`` and ``stain``.

    Parameters
    ----------
    crops
        ``(n, size, size, 3)`` uint8 crops at the cell model's scale: a sample of the cells (of one
        slide, or of the fields of one specimen).
    cell_model
        The :class:`~hemascope.models.LoadedModel` that classified them (run unadapted).

    Returns
    -------
    dict
        ``{"domain_shift": {...}, "stain": {...}}`` as in :func:`slide_checks`.
    """
    from hemascope.classify.probe import probe_cells
    from hemascope.classify.stain import read_stain

    card = cell_model.card
    _, shift = probe_cells(cell_model.module, card, crops, cell_model.device, adapt=False)
    judged = math.isfinite(shift.score) and math.isfinite(shift.threshold)
    stain, _ = read_stain(crops, card)
    return {
        "domain_shift": {"ok": (not shift.shifted) if judged else None, "score": _finite(shift.score),
                         "threshold": _finite(shift.threshold), "n_cells": shift.n_cells,
                         "reason": shift.reason, "scope": GUARD_SCOPE},
        "stain": {"ok": True, "nearest": stain.nearest, "angles": stain.angles,
                  "also_read_as": stain.also_read_as, "reason": stain.reason,
                  **({"note": stain.reason} if stain.also_read_as else {})},
    }


def failed_checks(checks: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The reasons of the checks that failed (``ok`` is false), in a stable order."""
    return [
        str(check.get("reason") or name)
        for name, check in sorted(checks.items())
        if isinstance(check, Mapping) and check.get("ok") is False
    ]


def withhold(
    differential: dict[str, Any], subtypes: list[dict[str, Any]], reasons: list[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Withhold the blast percentage and slide-level predictions for the given reasons.

    Parameters
    ----------
    differential
        The differential count as plain values (``DifferentialCount.to_dict()``).
    subtypes
        Every slide model's prediction as plain values (``SubtypePrediction.to_dict()``).
    reasons
        Why (from :func:`failed_checks`); nothing is changed when empty.

    Returns
    -------
    (differential, subtypes)
        Copies: the differential keeps its counts but has ``blast_percent``/``blast_ci`` (and
        ``blast_percent_with_possible``) set to ``None`` and ``withheld`` set to the reasons; every prediction is an abstention whose
        reason names the failed checks.
    """
    if not reasons:
        return differential, subtypes
    why = "; ".join(reasons)
    diff = copy.deepcopy(differential)
    diff["blast_percent"] = None
    diff["blast_ci"] = [None, None]
    if "blast_percent_with_possible" in diff:
        diff["blast_percent_with_possible"] = None
    diff["withheld"] = f"blast % withheld: {why}"
    out = []
    for subtype in subtypes:
        s = copy.deepcopy(subtype)
        if not s.get("abstained"):
            s["abstained"] = True
            s["label"] = None
            s["probabilities"] = dict.fromkeys(s.get("probabilities") or {})
            s["reason"] = f"withheld: {why}"
        out.append(s)
    return diff, out


def warning_lines(checks: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One ``WARNING: ...`` line per failed check, then one ``NOTE: ...`` per check that passed
    with a note (how the stain was read); empty when there is nothing to say."""
    notes = [f"NOTE: {check['note']}" for _, check in sorted(checks.items())
             if isinstance(check, Mapping) and check.get("ok") is not False and check.get("note")]
    return [f"WARNING: {reason} (blast % and slide-level predictions withheld)"
            for reason in failed_checks(checks)] + notes


def thin_differential(differential: Mapping[str, Any]) -> list[str]:
    """``["NOTE: too few white cells ... (blast % x, 95 % CI a-b)"]`` for a differential counted
    on fewer cells than its minimum (empty otherwise), for one-line summaries that show the blast %."""
    if differential.get("sufficient") is not False or not differential.get("reason"):
        return []
    line = f"NOTE: {differential['reason']}"
    blast, ci = differential.get("blast_percent"), differential.get("blast_ci") or [None, None]
    values = [blast, *ci]
    if all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
        line += f" (blast % {blast:.0f}, 95 % CI {ci[0]:.0f}-{ci[1]:.0f})"
    return [line]


__all__ = ["GUARD_SCOPE", "cell_checks", "failed_checks", "slide_checks", "thin_differential",
           "unjudged_shift", "warning_lines", "withhold"]
