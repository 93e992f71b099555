"""Dice, IoU and one-to-one matching."""

from __future__ import annotations

import numpy as np
import pytest

from hemascope.segment.metrics import dice, iou, match_boxes, match_labels, match_points


def test_dice_and_iou():
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[:, :5] = True
    b[:, 2:7] = True
    assert dice(a, b) == pytest.approx(2 * 30 / 100)
    assert iou(a, b) == pytest.approx(30 / 70)
    assert dice(a, a) == 1.0 and iou(np.zeros(3), np.zeros(3)) == 1.0


def test_matching_is_one_to_one():
    truth = np.zeros((20, 20), int)
    truth[2:8, 2:8] = 1
    truth[12:18, 12:18] = 2
    pred = np.zeros_like(truth)
    pred[2:8, 2:9] = 5  # good match
    pred[0:2, 15:20] = 7  # false positive
    s = match_labels(pred, truth)
    assert (s.true_positives, s.false_positives, s.false_negatives) == (1, 1, 1)
    assert match_boxes([[0, 0, 10, 10]], [[0, 0, 10, 10], [0, 0, 10, 9]]).true_positives == 1
    p = match_points([[0, 0], [0, 1]], [[0, 0]], 5.0)
    assert (p.true_positives, p.false_positives) == (1, 1)
