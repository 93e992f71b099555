"""Evaluation metrics for cell classifiers: accuracy, macro-F1, per-class P/R/F1, ECE, confusion."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hemascope.errors import InvalidInputError


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """``(n_classes, n_classes)`` counts; rows are true classes, columns predictions."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return cm


def expected_calibration_error(prob: np.ndarray, y_true: np.ndarray, n_bins: int = 15) -> float:
    """ECE: mean |accuracy - confidence| over equal-width confidence bins, weighted by bin size."""
    prob = np.asarray(prob)
    if len(prob) == 0:
        return float("nan")
    conf = prob.max(1)
    correct = prob.argmax(1) == np.asarray(y_true)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str], prob: np.ndarray | None = None
) -> dict[str, Any]:
    """Accuracy, macro-F1 (over classes present in ``y_true``), per-class P/R/F1, confusion, ECE.

    Parameters
    ----------
    y_true, y_pred
        Integer labels ``(n,)``.
    classes
        Class names (index = label).
    prob
        Optional ``(n, k)`` probabilities for the ECE.

    Returns
    -------
    dict
        ``accuracy``, ``macro_f1``, ``per_class`` ({name: precision, recall, f1, support}),
        ``confusion`` (nested lists), ``ece`` (when ``prob`` is given), ``n``.
    """
    y_true = np.asarray(y_true, int)
    y_pred = np.asarray(y_pred, int)
    if len(y_true) == 0 or len(y_true) != len(y_pred):
        raise InvalidInputError("metrics need equally long, non-empty label arrays")
    k = len(classes)
    cm = confusion_matrix(y_true, y_pred, k)
    tp = np.diag(cm).astype(float)
    support = cm.sum(1)
    predicted = cm.sum(0)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    present = support > 0
    out: dict[str, Any] = {
        "n": int(len(y_true)),
        "accuracy": float((y_true == y_pred).mean()),
        "macro_f1": float(f1[present].mean()),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(classes)
        },
        "confusion": cm.tolist(),
    }
    if prob is not None:
        out["ece"] = expected_calibration_error(prob, y_true)
    return out


def save_confusion_png(
    confusion: np.ndarray, classes: Sequence[str], path: str | Path, title: str = ""
) -> Path:
    """Plot a row-normalised confusion matrix with counts to a PNG (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    cm = np.asarray(confusion)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    k = len(classes)
    fig = Figure(figsize=(1.0 + 0.7 * k, 0.8 + 0.6 * k), dpi=110)
    ax = fig.add_subplot()
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                str(cm[i, j]),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    ax.set_xticks(range(k), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
