"""Slide-level checks: a failed smear or domain-shift check withholds the blast % and predictions."""

import math

import numpy as np

from hemascope.io import slide_from_array
from hemascope.io.smear_check import smear_likeness
from hemascope.slide.checks import failed_checks, thin_differential, warning_lines, withhold


def _differential():
    return {"counts": {"blast": 3, "lymphocyte": 7}, "n_counted": 10, "blast_percent": 30.0,
            "blast_ci": [10.0, 60.0]}


def _prediction():
    return {"model": "apl", "label": "APL", "abstained": False, "reason": "",
            "probabilities": {"APL": 0.9, "AML": 0.1}}


def test_passed_checks_change_nothing():
    checks = {"smear": {"ok": True, "reason": "a smear"}, "domain_shift": {"ok": None, "reason": "few"}}
    assert failed_checks(checks) == [] and warning_lines(checks) == []
    diff, subs = withhold(_differential(), [_prediction()], failed_checks(checks))
    assert diff["blast_percent"] == 30.0 and subs[0]["label"] == "APL"


def test_a_failed_check_withholds_blast_percent_and_predictions_but_keeps_counts():
    checks = {"domain_shift": {"ok": False, "reason": "cells unlike the training data"},
              "smear": {"ok": True, "reason": "a smear"}}
    original = _differential()
    diff, subs = withhold(original, [_prediction()], failed_checks(checks))
    assert diff["counts"] == original["counts"] and original["blast_percent"] == 30.0  # copies
    assert diff["blast_percent"] is None and diff["blast_ci"] == [None, None]
    assert "cells unlike the training data" in diff["withheld"]
    assert subs[0]["abstained"] and subs[0]["label"] is None
    assert subs[0]["probabilities"] == {"APL": None, "AML": None}
    assert subs[0]["reason"].startswith("withheld: cells unlike")
    assert warning_lines(checks) == [
        "WARNING: cells unlike the training data (blast % and slide-level predictions withheld)"]


def test_a_stain_read_twice_is_a_note_not_a_warning():
    note = "stain nearest the blue-grey one; also read as CellaVision-stained"
    checks = {"smear": {"ok": True, "reason": "a smear"},
              "stain": {"ok": True, "reason": note, "note": note},
              "domain_shift": {"ok": False, "reason": "cells unlike the training data"}}
    assert failed_checks(checks) == ["cells unlike the training data"]
    assert warning_lines(checks) == [
        "WARNING: cells unlike the training data (blast % and slide-level predictions withheld)",
        f"NOTE: {note}"]


def test_a_differential_on_too_few_cells_says_so_beside_its_blast_percent():
    # the analyze line printed "blasts 80.0%" for a one-field slide with 10 counted cells
    thin = {**_differential(), "sufficient": False,
            "reason": "too few white cells for a reliable differential: 10 counted, at least 100 needed"}
    assert thin_differential(thin) == [
        "NOTE: too few white cells for a reliable differential: 10 counted, at least 100 needed "
        "(blast % 30, 95 % CI 10-60)"]
    withheld, _ = withhold(thin, [], ["not a smear"])
    assert thin_differential(withheld) == [f"NOTE: {thin['reason']}"]  # no blast % to qualify
    assert thin_differential({**_differential(), "sufficient": True, "reason": ""}) == []


def test_close_ups_are_too_small_to_judge():
    image = np.full((300, 300, 3), 235, np.uint8)
    image[100:200, 100:200] = [120, 80, 160]  # one stained cell filling a 30 µm close-up
    check = smear_likeness(slide_from_array(image, mpp=0.1))
    assert check.is_smear and math.isnan(check.score) and "too small to judge" in check.reason
