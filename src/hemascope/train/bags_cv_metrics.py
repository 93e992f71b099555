"""Patient-level metrics of bag (slide-level) predictions, with bootstrap confidence intervals.

Used by the cross-validation of :mod:`hemascope.train.bags_cv` for bag models and for simple
per-patient scores (e.g. the proportion of promyelocytes), so both are judged the same way:
ROC AUC, accuracy, sensitivity/specificity at 0.5, sensitivity at a fixed specificity, Brier score
and expected calibration error. Confidence intervals resample *patients* (stratified bootstrap).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from hemascope.errors import InvalidInputError
from hemascope.train.metrics import expected_calibration_error

#: Specificity at which the sensitivity is reported.
FIXED_SPECIFICITY = 0.9

#: Bootstrap resamples of the patients for confidence intervals.
N_BOOTSTRAP = 1000


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (ties count one half); NaN without both classes.

    Parameters
    ----------
    scores : numpy.ndarray
        Higher = more likely positive.
    positive : numpy.ndarray
        Boolean truth.
    """
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    n1, n0 = int(positive.sum()), int((~positive).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks of ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def sensitivity_at_specificity(
    scores: np.ndarray, positive: np.ndarray, specificity: float = FIXED_SPECIFICITY
) -> float:
    """Sensitivity at the strictest threshold keeping at least ``specificity`` of negatives.

    A case is called positive when its score is above the threshold; the threshold is the
    smallest negative score that leaves at most ``(1 - specificity)`` of negatives above it.
    """
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    negatives = np.sort(scores[~positive])
    if negatives.size == 0 or positive.sum() == 0:
        return float("nan")
    allowed = int(np.floor((1.0 - specificity) * negatives.size + 1e-9))
    threshold = negatives[negatives.size - 1 - allowed]
    return float((scores[positive] > threshold).mean())


def binary_metrics(
    prob_positive: np.ndarray, positive: np.ndarray, *, specificity: float = FIXED_SPECIFICITY
) -> dict[str, float]:
    """Patient-level metrics of probabilities of the positive class.

    Parameters
    ----------
    prob_positive : numpy.ndarray
        Calibrated probability of the positive class per patient.
    positive : numpy.ndarray
        Boolean truth per patient.
    specificity : float, optional
        Specificity of the reported ``sens_at_spec``.

    Returns
    -------
    dict
        ``auc``, ``accuracy`` (threshold 0.5), ``sensitivity``, ``specificity``,
        ``sens_at_spec``, ``brier``, ``ece``, ``n``.
    """
    p = np.clip(np.asarray(prob_positive, dtype=np.float64), 0.0, 1.0)
    y = np.asarray(positive, dtype=bool)
    if p.shape != y.shape or p.ndim != 1 or p.size == 0:
        raise InvalidInputError("prob_positive and positive must be non-empty 1-D of one length")
    called = p >= 0.5
    two = np.stack([1 - p, p], axis=1)
    return {
        "auc": roc_auc(p, y),
        "accuracy": float((called == y).mean()),
        "sensitivity": float(called[y].mean()) if y.any() else float("nan"),
        "specificity": float((~called[~y]).mean()) if (~y).any() else float("nan"),
        "sens_at_spec": sensitivity_at_specificity(p, y, specificity),
        "brier": float(np.mean((p - y) ** 2)),
        "ece": float(expected_calibration_error(two, y.astype(np.int64), n_bins=10)),
        "n": int(y.size),
    }


def repeated_metrics(
    prob_positive: np.ndarray,
    positive: np.ndarray,
    *,
    specificity: float = FIXED_SPECIFICITY,
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Metrics of repeated cross-validation, averaged over repeats, with bootstrap 95 % CIs.

    Parameters
    ----------
    prob_positive : numpy.ndarray
        ``(n_repeats, n_patients)`` out-of-fold probabilities of the positive class.
    positive : numpy.ndarray
        ``(n_patients,)`` boolean truth.
    specificity : float, optional
        See :func:`binary_metrics`.
    n_bootstrap : int, optional
        Patient resamples (stratified by class); 0 = no intervals.
    seed : int, optional
        Seed of the resampling.

    Returns
    -------
    dict
        For each metric name: ``mean`` (over repeats), ``sd`` (over repeats), ``low`` and ``high``
        (2.5 and 97.5 percentiles of the repeat-mean over patient resamples).
    """
    probs = np.atleast_2d(np.asarray(prob_positive, dtype=np.float64))
    y = np.asarray(positive, dtype=bool)
    per_repeat = [binary_metrics(row, y, specificity=specificity) for row in probs]
    names = [k for k in per_repeat[0] if k != "n"]
    out = {
        k: {
            "mean": float(np.mean([m[k] for m in per_repeat])),
            "sd": float(np.std([m[k] for m in per_repeat])),
        }
        for k in names
    }
    if n_bootstrap > 0:
        samples = bootstrap(
            lambda idx: [
                float(np.mean(
                    [binary_metrics(row[idx], y[idx], specificity=specificity)[k] for row in probs]
                ))
                for k in names
            ],
            y,
            n_bootstrap=n_bootstrap,
            seed=seed,
        )
        for j, k in enumerate(names):
            column = samples[:, j]
            column = column[np.isfinite(column)]
            out[k]["low"] = float(np.percentile(column, 2.5)) if column.size else float("nan")
            out[k]["high"] = float(np.percentile(column, 97.5)) if column.size else float("nan")
    out["n"] = {"mean": float(y.size), "sd": 0.0}
    return out


def bootstrap(
    statistic: Callable[[np.ndarray], Sequence[float]],
    positive: np.ndarray,
    *,
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = 0,
) -> np.ndarray:
    """Values of ``statistic(indices)`` over stratified resamples of the patients.

    Each resample draws, with replacement, as many positives from the positives and negatives
    from the negatives as there are, so every resample has both classes.

    Returns
    -------
    numpy.ndarray
        ``(n_bootstrap, n_values)``.
    """
    y = np.asarray(positive, dtype=bool)
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    rows = []
    for _ in range(n_bootstrap):
        idx = np.concatenate(
            [rng.choice(pos, size=pos.size, replace=True), rng.choice(neg, size=neg.size)]
        )
        rows.append(np.asarray(statistic(idx), dtype=np.float64))
    return np.array(rows)


def format_interval(metric: dict[str, float], digits: int = 2) -> str:
    """``"0.91 (0.84-0.96)"`` from a :func:`repeated_metrics` entry."""
    text = f"{metric['mean']:.{digits}f}"
    if "low" in metric:
        text += f" ({metric['low']:.{digits}f}–{metric['high']:.{digits}f})"
    return text
