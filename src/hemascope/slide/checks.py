"""Slide-level checks that decide whether the slide-level figures may be shown.

Two checks travel with every analysed slide (``SlideResult.checks``):

- ``smear``: does the slide look like a blood or marrow smear at all
  (:func:`hemascope.io.smear_check.smear_likeness`)? Tissue sections, blank glass and the like
  are not what the cell models were trained on.
- ``domain_shift``: are its cells like the cell model's training data
  (:mod:`hemascope.classify.shift`)? A different microscope, camera or stain moves the
  network's internal statistics; the model's card holds the calibrated threshold.

When either fails, :func:`withhold` keeps the counts (the cells were found and are reviewable)
but withholds the blast percentage and every slide-level prediction, saying why: a confident
wrong answer is worse than none. Neither check can see an unseen *cell type* (the guard measures
imaging, not morphology), which the report says too.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

#: What the report says the domain-shift guard can and cannot see.
GUARD_SCOPE = (
    "the shift guard detects another microscope, camera or stain; it cannot detect cell types "
    "absent from the training data"
)


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
        Copies: the differential keeps its counts but has ``blast_percent``/``blast_ci`` set to
        ``None`` and ``withheld`` set to the reasons; every prediction is an abstention whose
        reason names the failed checks.
    """
    if not reasons:
        return differential, subtypes
    why = "; ".join(reasons)
    diff = copy.deepcopy(differential)
    diff["blast_percent"] = None
    diff["blast_ci"] = [None, None]
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
    """One ``WARNING: ...`` line per failed check (empty when every check passed or none ran)."""
    return [f"WARNING: {reason} (blast % and slide-level predictions withheld)"
            for reason in failed_checks(checks)]


__all__ = ["GUARD_SCOPE", "failed_checks", "warning_lines", "withhold"]
