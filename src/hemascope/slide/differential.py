"""Differential count of white cells with Wilson confidence intervals and a minimum-cell rule.

A manual differential counts 100–500 white cells; with fewer the percentages are too uncertain to
report. :func:`differential_count` gives counts, percentages and 95 % Wilson score intervals per
class, the blast percentage, and a ``sufficient`` flag with the reason when the count is too small.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hemascope.classes import CELL_CLASSES, RESEARCH_USE_ONLY
from hemascope.errors import InvalidInputError

#: Classes counted but kept out of the denominator of a white-cell differential.
DEFAULT_EXCLUDED: tuple[str, ...] = ("platelet", "unclassified")

#: The default minimum number of white cells for a reportable differential (a 100-cell count).
DEFAULT_MIN_CELLS = 100


def wilson_interval(successes: int, total: int, *, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score confidence interval of a binomial proportion.

    Parameters
    ----------
    successes : int
        Number of cells of the class.
    total : int
        Number of cells counted (the denominator).
    z : float, optional
        Normal quantile; the default gives a two-sided 95 % interval.

    Returns
    -------
    tuple of float
        ``(low, high)`` as fractions in [0, 1]; ``(0.0, 1.0)`` when ``total`` is 0.

    Raises
    ------
    InvalidInputError
        If the counts are negative or ``successes > total``.
    """
    if total < 0 or successes < 0 or successes > total:
        raise InvalidInputError(f"invalid counts for a proportion: {successes} of {total}")
    if total == 0:
        return 0.0, 1.0
    p = successes / total
    z2 = z * z
    denom = 1.0 + z2 / total
    centre = (p + z2 / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class DifferentialCount:
    """Counts and percentages of white-cell classes on one slide.

    Attributes
    ----------
    counts : dict of str to int
        Cells per class, every class of :data:`hemascope.classes.CELL_CLASSES` present (0 if none),
        plus ``unclassified`` when such cells were given.
    n_counted : int
        The denominator: cells of classes not in ``excluded``.
    percent, ci_low, ci_high : dict of str to float
        Percentage of the denominator and its 95 % Wilson interval (in %) per counted class.
    blast_percent : float
        Blasts as % of the counted cells (``nan`` when nothing was counted).
    blast_ci : tuple of float
        Wilson interval of the blast percentage (in %).
    possible_blasts : int
        Cells whose most likely class was ``blast`` but whose blast call the cell model's blast
        rule withheld (they are counted as their next class): cells to review.
    blast_percent_with_possible : float
        The blast percentage were every possible blast a blast (``nan`` when nothing was counted
        or the model has no ``blast`` class): with ``blast_percent``, the range review can move it in.
    sufficient : bool
        True when ``n_counted >= min_cells``.
    reason : str
        Why the count is insufficient ("" when sufficient).
    min_cells : int
        The minimum-cell rule applied.
    excluded : tuple of str
        Classes counted but kept out of the denominator.
    notice : str
        Always :data:`hemascope.classes.RESEARCH_USE_ONLY`.
    """

    counts: dict[str, int]
    n_counted: int
    percent: dict[str, float]
    ci_low: dict[str, float]
    ci_high: dict[str, float]
    blast_percent: float
    blast_ci: tuple[float, float]
    sufficient: bool
    reason: str
    min_cells: int
    excluded: tuple[str, ...] = DEFAULT_EXCLUDED
    possible_blasts: int = 0
    blast_percent_with_possible: float = float("nan")
    kind: str = "differential"
    note: str = ""
    notice: str = field(default=RESEARCH_USE_ONLY)

    @property
    def excluded_counts(self) -> dict[str, int]:
        """Cells found but kept out of the denominator, per class (only classes with cells)."""
        return {k: v for k, v in self.counts.items() if k in self.excluded and v}

    def to_frame(self) -> pd.DataFrame:
        """One row per class: ``class, count, percent, ci_low, ci_high, counted``."""
        rows = []
        for name, count in self.counts.items():
            counted = name not in self.excluded
            rows.append(
                {
                    "class": name,
                    "count": count,
                    "percent": self.percent.get(name, float("nan")),
                    "ci_low": self.ci_low.get(name, float("nan")),
                    "ci_high": self.ci_high.get(name, float("nan")),
                    "counted": counted,
                }
            )
        return pd.DataFrame(rows)

    def to_dict(self) -> dict:
        """A JSON-serialisable dictionary (NaN written as ``None``)."""

        def clean(value: float) -> float | None:
            return (
                None if value is None or (isinstance(value, float) and math.isnan(value)) else value
            )

        return {
            "counts": dict(self.counts),
            "n_counted": self.n_counted,
            "percent": {k: clean(v) for k, v in self.percent.items()},
            "ci_low": {k: clean(v) for k, v in self.ci_low.items()},
            "ci_high": {k: clean(v) for k, v in self.ci_high.items()},
            "blast_percent": clean(self.blast_percent),
            "blast_ci": [clean(v) for v in self.blast_ci],
            "possible_blasts": self.possible_blasts,
            "blast_percent_with_possible": clean(self.blast_percent_with_possible),
            "sufficient": self.sufficient,
            "reason": self.reason,
            "min_cells": self.min_cells,
            "excluded": list(self.excluded),
            "excluded_counts": self.excluded_counts,
            "kind": self.kind,
            "note": self.note,
            "notice": self.notice,
        }


def differential_count(
    labels: Iterable[str] | pd.Series | np.ndarray,
    *,
    min_cells: int = DEFAULT_MIN_CELLS,
    excluded: Iterable[str] = DEFAULT_EXCLUDED,
    classes: Iterable[str] | None = None,
    possible_blast: Iterable[bool] | None = None,
) -> DifferentialCount:
    """Count white cells per class with percentages, Wilson intervals and a minimum-cell rule.

    Cell models whose classes are white-cell types (a subset of
    :data:`hemascope.classes.CELL_CLASSES`) give a white-cell *differential* (``kind``
    ``"differential"``). Other cell models (``blast``: blast/nonblast; ``taleqani-cells``: B-ALL
    stages) give a *class count* of their own classes (``kind`` ``"class count"``, with a
    ``note``): what applies is reported — the blast percentage when the model has a ``blast``
    class — and the white-cell differential is not pretended.

    Parameters
    ----------
    labels : iterable of str
        One predicted class per cell (names from ``classes``, or ``"unclassified"``), e.g. the
        ``class`` column of a cell table.
    min_cells : int, optional
        Minimum number of counted cells for the differential to be ``sufficient``.
    excluded : iterable of str, optional
        Classes counted but left out of the denominator (platelets are not white cells).
    classes : iterable of str, optional
        The cell model's classes in output order (default
        :data:`hemascope.classes.CELL_CLASSES`); labels of the white-cell classes are accepted
        whatever the model.
    possible_blast : iterable of bool, optional
        One flag per cell: its blast call was withheld by the cell model's blast rule (the
        ``possible_blast`` column of a cell table); counted in ``possible_blasts``.

    Returns
    -------
    DifferentialCount
        Counts, percentages and intervals; ``sufficient`` is False (with a reason) below
        ``min_cells``.

    Raises
    ------
    InvalidInputError
        If a label is not a known class, ``min_cells`` is negative or ``possible_blast`` does
        not give one flag per cell.
    """
    if min_cells < 0:
        raise InvalidInputError(f"min_cells must be >= 0, got {min_cells}")
    values = [str(v) for v in (labels.tolist() if hasattr(labels, "tolist") else labels)]
    flags = np.zeros(len(values), dtype=bool)
    if possible_blast is not None:
        given = pd.Series(list(possible_blast), dtype=object)
        if len(given) != len(values):
            raise InvalidInputError(f"possible_blast needs one flag per cell ({len(values)}), got {len(given)}")
        # missing flags (cells of a table without the column) are no flag; a cell now called blast
        # (a reviewer's correction) is a blast, not a possible one
        flags = given.fillna(False).astype(bool).to_numpy() & (np.asarray(values, dtype=object) != "blast")
    model_classes = tuple(CELL_CLASSES) if classes is None else tuple(str(c) for c in classes)
    white_cells = set(model_classes) <= set(CELL_CLASSES)
    listed = tuple(CELL_CLASSES) if white_cells else model_classes
    known = set(listed) | {"unclassified"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InvalidInputError(
            f"unknown cell classes {unknown}; expected names from {list(listed)} or 'unclassified'"
        )
    excluded_t = tuple(excluded)
    kind, note = "differential", ""
    if not white_cells:
        kind = "class count"
        note = (f"the cell model's classes ({', '.join(model_classes)}) are not white-cell types: "
                "counts of its classes are shown, not a white-cell differential")
    counts = {name: 0 for name in listed}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    n_counted = sum(c for name, c in counts.items() if name not in excluded_t)
    percent: dict[str, float] = {}
    ci_low: dict[str, float] = {}
    ci_high: dict[str, float] = {}
    for name, count in counts.items():
        if name in excluded_t:
            continue
        low, high = wilson_interval(count, n_counted)
        percent[name] = 100.0 * count / n_counted if n_counted else float("nan")
        ci_low[name], ci_high[name] = 100.0 * low, 100.0 * high
    blast_pct = percent.get("blast", float("nan"))
    # every possible blast a blast: those called an excluded class join the denominator too
    possible_out = int((flags & np.isin(np.asarray(values, dtype=object), excluded_t)).sum())
    with_possible = float("nan")
    if "blast" in counts and n_counted + possible_out:
        with_possible = 100.0 * (counts["blast"] + int(flags.sum())) / (n_counted + possible_out)
    blast_ci = (ci_low.get("blast", float("nan")), ci_high.get("blast", float("nan")))
    sufficient = n_counted >= min_cells and n_counted > 0
    reason = ""
    if not sufficient:
        what = "a reliable differential" if kind == "differential" else "reliable percentages"
        reason = (
            f"too few white cells for {what}: {n_counted} counted, "
            f"at least {min_cells} needed"
        )
    return DifferentialCount(
        counts=counts,
        n_counted=n_counted,
        percent=percent,
        ci_low=ci_low,
        ci_high=ci_high,
        blast_percent=blast_pct,
        blast_ci=blast_ci,
        sufficient=sufficient,
        reason=reason,
        min_cells=min_cells,
        excluded=excluded_t,
        possible_blasts=int(flags.sum()),
        blast_percent_with_possible=with_possible,
        kind=kind,
        note=note,
    )
