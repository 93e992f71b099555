"""Baselines of the patient-level cross-validation: one number per patient, e.g. % promyelocytes.

Clinicians suspect APL from the share of (abnormal) promyelocytes and blasts in the smear; a bag
model is worth shipping only if it beats that. :func:`class_proportions` counts, per bag, the share
of cells of some classes (technologist labels or the cell model's), and
:func:`cross_validate_scores` judges such a score with the same folds, calibration and metrics as
:func:`hemascope.train.bags_cv.cross_validate` judges bag models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from hemascope.errors import InvalidInputError
from hemascope.train.bags_cv import CrossValidation, assemble_cross_validation, positive_index
from hemascope.train.bags_data import Bag


def class_proportions(
    bags: Sequence[Bag],
    classes: Sequence[str],
    *,
    cell_classes: Mapping[str, np.ndarray] | None = None,
) -> dict[str, float]:
    """Share of each bag's cells whose class is one of ``classes``.

    Parameters
    ----------
    bags : sequence of Bag
        Bags of every cell, with ``cell_classes`` (the cell model's classes).
    classes : sequence of str
        The classes counted (e.g. ``["ig"]``, or ``["promyelocyte"]`` with technologist labels).
    cell_classes : mapping of str to numpy.ndarray, optional
        Other per-cell labels by bag name (e.g. the technologists'), used instead of the bags'.

    Returns
    -------
    dict
        Bag name → proportion in [0, 1] (0 for an empty bag).
    """
    out = {}
    for bag in bags:
        labels = bag.cell_classes if cell_classes is None else cell_classes[bag.name]
        if labels is None:
            raise InvalidInputError(f"bag {bag.name!r} has no per-cell classes")
        labels = np.asarray(labels, dtype=str)
        out[bag.name] = float(np.isin(labels, list(classes)).mean()) if labels.size else 0.0
    return out


def cross_validate_scores(
    scores: Mapping[str, float],
    folds: pd.DataFrame,
    classes: Sequence[str],
    *,
    positive: str | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> CrossValidation:
    """Cross-validate one number per bag (e.g. % promyelocytes) as a two-class baseline.

    In each fold a logistic regression on the score (standardised on the training folds) is fitted
    to the training bags and applied to the held-out ones; the probabilities are then calibrated and
    scored exactly as :func:`cross_validate` does for bag models.

    Parameters
    ----------
    scores : mapping of str to float
        Score per bag name (every bag of ``folds``).
    folds : pandas.DataFrame
        Fold lists with ``label``.
    classes : sequence of str
        Two classes; ``positive`` is the one the score points to when it is high or low (the fit
        learns the sign).
    positive, n_bootstrap, seed : optional
        As :func:`cross_validate`.

    Returns
    -------
    CrossValidation
        Without a curve.
    """
    classes = list(classes)
    if len(classes) != 2:
        raise InvalidInputError("a score baseline needs exactly two classes")
    positive, pos = positive_index(classes, positive)
    targets = {
        n: classes.index(str(label)) for n, label in zip(folds["bag"], folds["label"], strict=True)
    }
    rows = []
    for (repeat, fold), part in folds.groupby(["repeat", "fold"]):
        everyone = folds[folds["repeat"] == repeat]
        train = everyone[everyone["fold"] != fold]
        x = np.array([scores[n] for n in train["bag"]], dtype=np.float64)
        is_pos = np.array([targets[n] == pos for n in train["bag"]])
        w, b, mu, sd = _logistic_1d(x, is_pos)
        for name in part["bag"]:
            z = w * (scores[name] - mu) / sd + b
            logit = np.zeros(2)
            logit[pos] = z
            rows.append((repeat, fold, name, 0, logit))
    table = pd.DataFrame(rows, columns=["repeat", "fold", "bag", "n_instances", "logit"])
    return assemble_cross_validation(
        table, [], classes, positive, pos, targets, folds, n_bootstrap, seed
    )


def _logistic_1d(
    x: np.ndarray, y: np.ndarray, l2: float = 1e-2, iterations: int = 50
) -> tuple[float, float, float, float]:
    """Newton fit of ``P(y) = sigmoid(w (x - mu) / sd + b)``; returns ``w, b, mu, sd``."""
    mu, sd = float(x.mean()), float(x.std()) or 1.0
    z = (x - mu) / sd
    design = np.stack([z, np.ones_like(z)], axis=1)
    theta = np.zeros(2)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-design @ theta))
        grad = design.T @ (p - y) + l2 * np.array([theta[0], 0.0])
        hess = design.T @ (design * (p * (1 - p))[:, None]) + np.diag([l2, 1e-9])
        theta = theta - np.linalg.solve(hess, grad)
    return float(theta[0]), float(theta[1]), mu, sd
