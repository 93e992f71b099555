"""The red-cell radius votes (`segment.arcs.ArcVotes`) on narrow vote sets."""

from __future__ import annotations

import numpy as np
import pytest

from hemascope.segment.arcs import ArcVotes


@pytest.mark.parametrize("radius", [5.0, 20.0, 50.0])
def test_votes_of_one_radius_give_that_radius_and_no_rival(radius):
    # one radius: the histogram may have fewer bins than the smoothing kernel (IndexError before)
    votes = ArcVotes(np.array([radius, radius]), np.ones(2), None)
    found, agreement = votes.mode()
    assert found == pytest.approx(radius, rel=0.01) and agreement == 1.0
    assert votes.rival(found) == 0.0


def test_a_second_peak_is_reported_as_a_rival():
    votes = ArcVotes(np.r_[np.full(10, 20.0), np.full(9, 30.0)], np.ones(19), None)
    radius, _ = votes.mode()
    assert radius == pytest.approx(20.0, rel=0.02)
    assert votes.rival(radius) == pytest.approx(0.9, abs=0.05)
