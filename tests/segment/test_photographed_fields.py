"""Fields photographed through a microscope: the dark surround of a round field stop and the
radial fall-off of light towards the edge (an eyepiece photograph, a camera with vignetting)."""

from __future__ import annotations

import numpy as np
import pytest

from hemascope.io import slide_from_array
from hemascope.segment import find_cells
from hemascope.segment.illumination import estimate_illumination
from hemascope.segment.metrics import match_points
from hemascope.segment.smear import blank_outside_field, compute_smear_mask, outside_field
from hemascope.synthetic import SmearSpec, photographed, render_field

MPP = 0.25


@pytest.fixture(scope="module")
def field():
    """A 256 µm field, its true white cells and those found when it is evenly lit."""
    image, truth = render_field(SmearSpec(size=1024, mpp=MPP, seed=3, wbc_density=600), masks=False)
    points = truth.cells.loc[truth.cells["class"] != "platelet", ["row", "col"]].to_numpy()
    return image, points, find_cells(image, mpp=MPP).cells[["row", "col"]].to_numpy()


@pytest.mark.parametrize(("fall_off", "stop"), [(0.0, 0.47), (0.35, 0.47), (0.45, None)])
def test_photographed_field_gives_the_cells_of_the_evenly_lit_one(field, fall_off, stop):
    """Black surround and/or a 35-45 % fall-off: the cells of the evenly lit field are found in the
    field of view, and nothing else (before: none with the surround, hundreds of false ones with
    the fall-off). A cell cut by the field stop may be missed or found off its centre."""
    image, points, even = field
    shot, inside = photographed(image, fall_off=fall_off, field_stop=stop)
    in_view = points[inside[points[:, 0].astype(int), points[:, 1].astype(int)]]
    assert len(in_view) >= 20
    found = find_cells(shot, mpp=MPP).cells[["row", "col"]].to_numpy()
    score = match_points(found, in_view, 4.0 / MPP)
    assert score.recall >= 0.95 and score.precision >= 0.95, score
    well_inside = np.hypot(even[:, 0] - 512, even[:, 1] - 512) < (stop or 9.9) * 1024 - 10 / MPP
    assert match_points(found, even[well_inside], 4.0 / MPP).recall == 1.0


def test_fall_off_is_measured_and_an_even_field_is_left_alone(field):
    image = field[0]
    assert compute_smear_mask(slide_from_array(image, mpp=MPP)).illumination is None
    shot, _ = photographed(image, fall_off=0.3, field_stop=None)
    smear = compute_smear_mask(slide_from_array(shot, mpp=MPP))
    illumination = smear.illumination
    assert illumination is not None and smear.outside_field is None
    centre = illumination.gain(np.array([512.0]), np.array([512.0]))[0, 0]
    edge = illumination.gain(np.array([512.0]), np.array([512.0 + 0.7 * 1024]))[0, 0]
    assert centre == pytest.approx(1.0, abs=0.03)
    assert edge == pytest.approx(0.7, abs=0.05)
    flat = illumination.correct(shot, (0.0, 0.0), 1.0)
    assert np.abs(flat[::64, ::64].astype(int) - image[::64, ::64].astype(int)).mean() < 4


def test_slides_and_close_ups_are_never_corrected():
    """A pyramid is a scanned slide (tiles, not one optical field); a close-up has too few blocks."""
    image, _ = render_field(SmearSpec(size=1024, mpp=MPP, seed=3), masks=False)
    shot, _ = photographed(image, fall_off=0.4, field_stop=None)
    assert estimate_illumination(shot[:64, :64], 1.0) is None
    close_up = slide_from_array(np.ascontiguousarray(shot[:300, :300]), mpp=MPP)  # 75 µm wide
    assert compute_smear_mask(close_up).illumination is None


def test_only_dark_pixels_next_to_the_surround_are_read_as_glass():
    glass = (240.0, 236.0, 238.0)
    image = np.full((200, 200, 3), 230, dtype=np.uint8)
    image[:, :40] = 10  # the surround, at the left border
    image[100:110, 150:160] = (40, 20, 60)  # a dark nucleus far from it
    outside = outside_field(image, np.asarray(glass), mpp=1.0)
    assert outside is not None and outside[:, :40].all() and not outside[:, 45:].any()
    painted = blank_outside_field(image, outside, (0, 0), 1.0, 1.0, glass)
    assert (painted[:, :40] == (240, 236, 238)).all()
    assert (painted[:, 41:] == image[:, 41:]).all()
    assert blank_outside_field(image, None, (0, 0), 1.0, 1.0, glass) is image


def test_a_dark_object_inside_the_field_is_not_a_surround():
    """Dense stain away from the border, or a small dark patch at it, is not the field stop."""
    image = np.full((200, 200, 3), 230, dtype=np.uint8)
    image[80:120, 80:120] = 10
    image[:6, :6] = 10
    assert outside_field(image, np.array([240.0, 240.0, 240.0]), mpp=1.0) is None
