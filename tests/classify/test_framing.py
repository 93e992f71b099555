"""A whole field is classified on its white cell; a single-cell crop on its centre."""

from __future__ import annotations

import numpy as np
import pytest

from hemascope.classify.crops import center_square
from hemascope.classify.framing import CENTRED, LOCATED, NOT_FOUND, frame_picture, in_band, is_field
from hemascope.models import load_model
from hemascope.synthetic import render_cell

MPP = 0.25


@pytest.fixture(scope="module")
def card():
    return load_model("wbc", device="cpu").card


@pytest.fixture(scope="module")
def neutrophil_scene():
    """A neutrophil centred at (300, 300) px of a 600-px scene at 0.25 µm/px, red cells around."""
    image, cell, _ = render_cell("neutrophil", mpp=MPP, size=600, rng=np.random.default_rng(7))
    rows, cols = np.nonzero(cell)
    return image, (rows.mean(), cols.mean())


def test_a_single_cell_crop_keeps_its_centre(neutrophil_scene, card):
    image, _ = neutrophil_scene
    crop = image[240:360, 240:360]  # 30 µm
    framing = frame_picture(crop, MPP, card)
    assert not is_field(crop.shape, MPP, card)
    assert framing.how == CENTRED and framing.centre == (59.5, 59.5)


def test_a_field_is_cropped_on_its_white_cell_wherever_it_is(neutrophil_scene, card):
    image, (row, col) = neutrophil_scene
    field = image[:400, 60:460]  # 100 µm; the cell 25 µm below and 15 µm right of the middle
    framing = frame_picture(field, MPP, card)
    assert is_field(field.shape, MPP, card)
    assert framing.how == LOCATED
    assert np.hypot(framing.centre[0] - row, framing.centre[1] - (col - 60)) * MPP < 1.5


def test_a_small_one_cell_field_is_cropped_on_its_cell_and_a_centred_crop_of_that_size_keeps_its_centre(
    neutrophil_scene, card
):
    """42 µm: a 50 µm field given a µm/px 15 % low is that size, and was classified from its
    centre (a third of such normal cells called blast)."""
    image, (row, col) = neutrophil_scene
    field = image[180:348, 244:412]  # 42 µm, the cell 9 µm below and 7 µm left of the middle
    assert in_band(field.shape, MPP, card) and not is_field(field.shape, MPP, card)
    framing = frame_picture(field, MPP, card)
    assert framing.how == LOCATED
    assert np.hypot(framing.centre[0] - (row - 180), framing.centre[1] - (col - 244)) * MPP < 1.5
    assert frame_picture(field, MPP, card, look=False).how == CENTRED  # a source surveyed as centred

    centred = image[216:384, 216:384]  # the same size, the cell in the middle
    assert frame_picture(centred, MPP, card) == frame_picture(centred, MPP, card, look=False)


def test_a_source_of_centred_crops_is_surveyed_once_and_its_crops_not_looked_at(neutrophil_scene, card):
    from hemascope.classify.images import FRAMING_SURVEY, framing_looks

    image, _ = neutrophil_scene
    centred = [image[216:384, 216:384]] * (FRAMING_SURVEY + 4)
    assert framing_looks(centred, [MPP] * len(centred), card) == [False] * len(centred)
    off = [*centred[:-1], image[180:348, 244:412]]  # one picture of the source off-centre...
    assert framing_looks(off, [MPP] * len(off), card) == [True] * len(off)  # ...each is looked at
    assert framing_looks(centred[:FRAMING_SURVEY], [MPP] * FRAMING_SURVEY, card) == [True] * FRAMING_SURVEY


def test_a_field_without_white_cells_keeps_its_centre_and_says_so(card):
    glass = np.full((400, 400, 3), (236, 228, 232), np.uint8)
    framing = frame_picture(glass, MPP, card)
    assert framing.how == NOT_FOUND and framing.centre == (199.5, 199.5)


def test_a_square_centred_off_the_picture_is_padded_with_the_fill():
    image = np.zeros((10, 10, 3), np.uint8)
    out = center_square(image, 6, fill=200, centre=(0.0, 9.0))
    assert out.shape == (6, 6, 3)
    assert (out[:2] == 200).all() and (out[:, 4:] == 200).all()  # rows above, columns right: padding
    assert (out[2:, :4] == 0).all()
