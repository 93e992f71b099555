"""Segmentation and detection metrics: Dice, IoU and instance matching at an IoU threshold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from hemascope.errors import InvalidInputError


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice coefficient of two boolean masks (1.0 when both are empty).

    Parameters
    ----------
    pred, truth
        Masks of the same shape (non-zero = foreground).

    Returns
    -------
    float
        ``2 |A ∩ B| / (|A| + |B|)``.
    """
    pred, truth = _pair(pred, truth)
    total = int(pred.sum()) + int(truth.sum())
    if total == 0:
        return 1.0
    return 2.0 * int((pred & truth).sum()) / total


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty).

    Parameters
    ----------
    pred, truth
        Masks of the same shape (non-zero = foreground).

    Returns
    -------
    float
        ``|A ∩ B| / |A ∪ B|``.
    """
    pred, truth = _pair(pred, truth)
    union = int((pred | truth).sum())
    if union == 0:
        return 1.0
    return int((pred & truth).sum()) / union


def _pair(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, truth = np.asarray(pred) != 0, np.asarray(truth) != 0
    if pred.shape != truth.shape:
        raise InvalidInputError(f"mask shapes differ: {pred.shape} vs {truth.shape}")
    return pred, truth


@dataclass(frozen=True)
class DetectionScore:
    """Counts of a one-to-one matching between predicted and true objects."""

    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        """TP / (TP + FP); 1.0 when nothing was predicted."""
        n = self.true_positives + self.false_positives
        return self.true_positives / n if n else 1.0

    @property
    def recall(self) -> float:
        """TP / (TP + FN); 1.0 when there was nothing to find."""
        n = self.true_positives + self.false_negatives
        return self.true_positives / n if n else 1.0

    def __add__(self, other: DetectionScore) -> DetectionScore:
        return DetectionScore(
            self.true_positives + other.true_positives,
            self.false_positives + other.false_positives,
            self.false_negatives + other.false_negatives,
        )


def _match(scores: np.ndarray, threshold: float, n_pred: int, n_true: int) -> DetectionScore:
    if n_pred == 0 or n_true == 0:
        return DetectionScore(0, n_pred, n_true)
    rows, cols = linear_sum_assignment(-scores)
    tp = int((scores[rows, cols] >= threshold).sum())
    return DetectionScore(tp, n_pred - tp, n_true - tp)


def box_iou(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes ``(min_row, min_col, max_row, max_col)``.

    Parameters
    ----------
    pred
        ``(n, 4)`` boxes.
    truth
        ``(m, 4)`` boxes.

    Returns
    -------
    numpy.ndarray
        ``(n, m)`` IoU matrix.
    """
    a = np.asarray(pred, dtype=float).reshape(-1, 4)
    b = np.asarray(truth, dtype=float).reshape(-1, 4)
    r0 = np.maximum(a[:, None, 0], b[None, :, 0])
    c0 = np.maximum(a[:, None, 1], b[None, :, 1])
    r1 = np.minimum(a[:, None, 2], b[None, :, 2])
    c1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(r1 - r0, 0, None) * np.clip(c1 - c0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def match_boxes(pred: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> DetectionScore:
    """One-to-one matching of predicted and true boxes at ``IoU >= threshold``.

    Parameters
    ----------
    pred, truth
        ``(n, 4)`` and ``(m, 4)`` boxes ``(min_row, min_col, max_row, max_col)``.
    threshold
        Minimum IoU of a true positive.

    Returns
    -------
    DetectionScore
        True positives, false positives and false negatives.
    """
    ious = box_iou(pred, truth)
    return _match(ious, threshold, ious.shape[0], ious.shape[1])


def label_iou(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Pairwise IoU of the instances of two label images (labels need not be consecutive).

    Parameters
    ----------
    pred, truth
        Integer label images of the same shape, 0 = background.

    Returns
    -------
    numpy.ndarray
        ``(n_pred, n_true)`` IoU matrix, instances in increasing label order.
    """
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise InvalidInputError(f"label shapes differ: {pred.shape} vs {truth.shape}")
    p_ids, p_inv = np.unique(pred, return_inverse=True)
    t_ids, t_inv = np.unique(truth, return_inverse=True)
    joint = np.zeros((p_ids.size, t_ids.size), dtype=np.int64)
    np.add.at(joint, (p_inv.ravel(), t_inv.ravel()), 1)
    p_area = joint.sum(axis=1)
    t_area = joint.sum(axis=0)
    union = p_area[:, None] + t_area[None, :] - joint
    ious = joint / np.maximum(union, 1)
    return ious[p_ids != 0][:, t_ids != 0]


def match_labels(pred: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> DetectionScore:
    """One-to-one matching of predicted and true instances at mask ``IoU >= threshold``.

    Parameters
    ----------
    pred, truth
        Integer label images, 0 = background.
    threshold
        Minimum IoU of a true positive.

    Returns
    -------
    DetectionScore
        True positives, false positives and false negatives.
    """
    ious = label_iou(pred, truth)
    return _match(ious, threshold, ious.shape[0], ious.shape[1])


def match_points(pred: np.ndarray, truth: np.ndarray, max_distance: float) -> DetectionScore:
    """One-to-one matching of predicted and true centres closer than ``max_distance``.

    Parameters
    ----------
    pred, truth
        ``(n, 2)`` and ``(m, 2)`` ``(row, col)`` points (any unit, the same for both).
    max_distance
        Largest centre distance of a true positive.

    Returns
    -------
    DetectionScore
        True positives, false positives and false negatives.
    """
    a = np.asarray(pred, dtype=float).reshape(-1, 2)
    b = np.asarray(truth, dtype=float).reshape(-1, 2)
    if len(a) == 0 or len(b) == 0:
        return DetectionScore(0, len(a), len(b))
    dist = np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1])
    close = (dist <= max_distance).astype(float) * (1.0 + 1.0 / (1.0 + dist))
    return _match(close, 1.0, len(a), len(b))
