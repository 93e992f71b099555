"""Zero-configuration scale: red cells isolated, touching, cut by the border, pale-centred; confidence."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from skimage.draw import disk

from hemascope.errors import InvalidInputError
from hemascope.segment import estimate_mpp
from hemascope.segment.scale import ScaleEstimate
from hemascope.synthetic import SmearSpec, render_field

GLASS = (240, 232, 225)
RED_CELL = (205, 130, 150)
RADIUS = 15  # px: 7.5 µm diameter -> 0.25 µm/px


def _discs(centres, radius=RADIUS, size=(400, 400), pallor=False, nucleus=None) -> np.ndarray:
    """Pink discs on glass; overlaps darker (as stacked cells are); optional pale centres, nucleus."""
    od = np.zeros(size, dtype=float)
    for r, c in centres:
        rr, cc = disk((r, c), radius, shape=size)
        od[rr, cc] += 1.0
        if pallor:
            rr, cc = disk((r, c), radius * 0.4, shape=size)
            od[rr, cc] -= 0.6
    image = np.empty((*size, 3), dtype=np.float64)
    for k in range(3):
        image[..., k] = GLASS[k] * (RED_CELL[k] / GLASS[k]) ** od
    if nucleus is not None:
        (r, c), rad = nucleus
        rr, cc = disk((r, c), rad * 1.6, shape=size)
        image[rr, cc] = (200, 185, 215)  # lilac cytoplasm
        rr, cc = disk((r, c), rad, shape=size)
        image[rr, cc] = (95, 55, 140)  # purple nucleus
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _grid(n, step, start=40):
    return [(start + i * step, start + j * step) for i in range(n) for j in range(n)]


TRUE_MPP = 7.5 / (2 * RADIUS)


def test_isolated_red_cells_give_a_confident_scale():
    est = estimate_mpp(_discs(_grid(5, 70)))
    assert est.mpp == pytest.approx(TRUE_MPP, rel=0.08)
    assert not est.low_confidence and est.confidence > 0.5


def test_touching_and_overlapping_red_cells():
    rng = np.random.default_rng(0)
    centres = [(r + rng.uniform(-3, 3), c + rng.uniform(-3, 3)) for r, c in _grid(9, 24, start=20)]  # overlap
    est = estimate_mpp(_discs(centres))
    assert est.mpp == pytest.approx(TRUE_MPP, rel=0.1)


def test_red_cells_with_pale_centres_and_cut_by_the_border():
    centres = [(r - 25, c - 25) for r, c in _grid(5, 64)]  # the first row and column cut by the border
    est = estimate_mpp(_discs(centres, pallor=True, size=(260, 260)))
    assert est.mpp == pytest.approx(TRUE_MPP, rel=0.1)


def test_crop_with_a_white_cell_and_a_few_partial_red_cells():
    centres = [(5, 20), (10, 140), (130, 5), (140, 150), (75, 150)]
    image = _discs(centres, size=(150, 160), nucleus=((75, 75), 18))
    est = estimate_mpp(image)
    assert est.mpp == pytest.approx(TRUE_MPP, rel=0.15)
    assert "nucleus_diameter_um" in est.cues


def test_one_red_cell_is_too_little_evidence():
    est = estimate_mpp(_discs([(100, 100)], size=(200, 200)))
    assert est.mpp == pytest.approx(TRUE_MPP, rel=0.1)
    assert est.low_confidence and "circumferences" in est.reason


def test_close_up_of_one_white_cell_without_red_cells_is_a_flagged_guess():
    """A lone white cell (10 µm nucleus at 0.25 µm/px): sized from its nucleus, not as a 7.5 µm red cell."""
    nucleus_px = 10.0 / TRUE_MPP / 2
    image = _discs([], size=(120, 120), nucleus=((60, 60), nucleus_px))
    est = estimate_mpp(image)
    assert est.cues["path"] == "white_cell"
    assert est.cues["nucleus_diameter_px"] == pytest.approx(2 * nucleus_px, rel=0.1)
    assert est.mpp == pytest.approx(TRUE_MPP, rel=0.25)
    assert est.low_confidence and "white cell" in est.reason
    from skimage.transform import rescale

    twice = np.round(rescale(image, 2.0, channel_axis=-1, preserve_range=True)).astype(np.uint8)
    assert estimate_mpp(twice).mpp == pytest.approx(est.mpp / 2, rel=0.1)


def test_granules_and_specks_around_a_white_cell_do_not_vote_as_red_cells():
    """Small dark dots beside a lone white cell are no red-cell population: still the white-cell path."""
    image = _discs([], size=(120, 120), nucleus=((60, 60), 20))
    for r, c in [(20, 25), (30, 95), (95, 20), (100, 100), (15, 60), (60, 108)]:
        rr, cc = disk((r, c), 2.5, shape=image.shape[:2])
        image[rr, cc] = (120, 70, 150)
    est = estimate_mpp(image)
    assert est.cues["path"] == "white_cell"
    assert est.mpp == pytest.approx(TRUE_MPP, rel=0.25)


def test_red_cells_beside_a_white_cell_keep_the_red_cell_path():
    centres = [(30, 30), (30, 170), (170, 30), (170, 170), (100, 30), (30, 100)]
    est = estimate_mpp(_discs(centres, size=(200, 200), nucleus=((110, 110), 20)))
    assert est.cues["path"] == "red_cells"
    assert est.mpp == pytest.approx(TRUE_MPP, rel=0.1)


def test_blank_image_is_refused():
    with pytest.raises(InvalidInputError, match="µm/px"):
        estimate_mpp(np.full((200, 200, 3), 250, np.uint8))


@pytest.mark.parametrize("mpp", [0.1, 0.5])
def test_synthetic_fields_at_several_scales(mpp):
    image, _ = render_field(SmearSpec(size=int(160 / mpp), mpp=mpp, seed=4))
    est = estimate_mpp(image)
    assert est.mpp == pytest.approx(mpp, rel=0.1)
    assert not est.low_confidence


def test_rescaled_copy_scales_the_estimate():
    from skimage.transform import rescale

    image = _discs(_grid(5, 70))
    half = np.round(rescale(image, 0.5, channel_axis=-1, anti_aliasing=True, preserve_range=True)).astype(np.uint8)
    assert estimate_mpp(half).mpp == pytest.approx(2 * TRUE_MPP, rel=0.1)


def test_the_estimate_is_a_float_with_its_confidence():
    est = ScaleEstimate(0.25, 0.3, {"red_cell_arcs": 4}, "few red cells")
    assert float(est) == 0.25 and est * 2 == 0.5 and f"{est:.2f}" == "0.25"
    assert float(getattr(est, "mpp", est)) == 0.25 and est.low_confidence
    again = pickle.loads(pickle.dumps(est))
    assert again.confidence == 0.3 and again.cues == {"red_cell_arcs": 4} and again.low_confidence
    assert est.as_dict()["low_confidence"] is True


def test_whole_red_cells_without_usable_arcs_still_vote():
    from hemascope.segment.arcs import ArcVotes

    votes = ArcVotes(np.array([10.0, 10.5]), np.array([0.0, 0.0]) + 1.0, np.array([1.0, 1.0]), 20.0)
    radius, agreement = votes.mode()
    assert radius == pytest.approx(10.25, rel=0.05) and agreement == 1.0
    tiny = _discs([(30, 30), (30, 70)], radius=6, size=(60, 100))  # small discs: few arcs, two discs
    est = estimate_mpp(tiny)
    assert np.isfinite(est.mpp) and est.mpp > 0



def test_a_black_scale_bar_does_not_take_over_from_pale_red_cells():
    """Printed black (scale bar, lettering) is denser than any stain and must neither set the split nor vote."""
    image = _discs(_grid(5, 70))
    od = np.log10(np.array(GLASS, float) / image)  # the same discs, lavender-grey and faint
    lavender = np.log10(np.array((245, 245, 240)) / np.array((205, 200, 220)))
    image = np.round(np.array((245, 245, 240)) * 10 ** (-lavender * od[..., 1:2] / od[..., 1].max())).astype(np.uint8)
    image[372:376, 290:396] = 0  # the bar
    for k in range(6):  # and its lettering
        image[340:366, 295 + 16 * k : 301 + 16 * k] = 0
    est = estimate_mpp(image)
    assert est.mpp == pytest.approx(TRUE_MPP, rel=0.1)
    assert not est.low_confidence


def test_two_equally_voted_radii_are_a_coin_toss_and_flagged():
    # about as much outline of 10 px discs as of 15 px ones: two equal peaks, either answer a guess
    big = [(60 + 80 * (k % 3), 60 + 80 * (k // 3)) for k in range(4)]
    small = [(60 + 55 * (k % 5), 250 + 55 * (k // 5)) for k in range(10)]
    est = estimate_mpp(_discs(big) & _discs(small, radius=10))
    assert est.cues["rival"] > 0.8
    assert est.low_confidence
    assert "second radius" in est.reason
    one_size = estimate_mpp(_discs(big + [(300, 60 + 80 * k) for k in range(4)]))
    assert one_size.cues["rival"] < 0.3
    assert not one_size.low_confidence
