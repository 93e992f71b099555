"""A whole field is classified on its white cell; a single-cell crop on its centre."""

from __future__ import annotations

import numpy as np
import pytest

from hemascope.classify.crops import center_square
from hemascope.classify.framing import CENTRED, LOCATED, NOT_FOUND, frame_picture, is_field
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
