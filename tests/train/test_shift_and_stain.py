"""Deterministic domain shifts for evaluation and the LAB stain transfer."""

import numpy as np
import pytest

from hemascope.errors import InvalidInputError
from hemascope.train.evaluate import shift_crops
from hemascope.train.stain_transfer import lab_statistics, transfer_stain


def _bank():
    bank = np.full((2, 24, 24, 3), 240, np.uint8)
    bank[:, 8:16, 8:16] = (150, 60, 170)
    return bank


def test_shift_none_is_the_centre_crop_and_scale_magnifies():
    bank = _bank()
    assert np.array_equal(shift_crops(bank, 16, "none"), bank[:, 4:20, 4:20])
    dark = lambda x: (x[..., 1] < 120).sum()  # noqa: E731
    assert dark(shift_crops(bank, 16, "scale", 1.5)) > 1.8 * dark(shift_crops(bank, 16, "none"))
    blurred = shift_crops(bank, 16, "blur", 2.0)
    assert blurred[0, 4, 4, 1] > 60 and blurred[0, 8, 8, 1] < 120  # edge softened, centre kept
    stained = shift_crops(bank, 16, "stain", 0.5)
    assert stained.shape == (2, 16, 16, 3) and not np.array_equal(stained, bank[:, 4:20, 4:20])
    with pytest.raises(InvalidInputError):
        shift_crops(bank, 16, "fog")


def test_transfer_stain_matches_target_statistics():
    rng = np.random.default_rng(0)
    source = rng.integers(100, 200, (3, 16, 16, 3)).astype(np.uint8)
    tint = np.array([-40, -10, 40])  # a bluer stain
    target = np.clip(rng.integers(90, 190, (3, 16, 16, 3)) + tint, 0, 255).astype(np.uint8)
    mean, std = lab_statistics(target)
    out = transfer_stain(source, mean, std)
    got_mean, _ = lab_statistics(out)
    assert out.shape == source.shape and out.dtype == np.uint8
    assert np.abs(got_mean - mean).max() < 3
    assert transfer_stain(source[0], mean, std).shape == (16, 16, 3)
