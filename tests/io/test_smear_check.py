"""The smear check tells synthetic smears from a synthetic tissue-like section."""

import numpy as np
import pytest
from scipy import ndimage

from hemascope.errors import InvalidInputError
from hemascope.io import slide_from_array
from hemascope.io.smear_check import smear_likeness
from hemascope.synthetic import SmearSpec, render_field


def tissue_like(rows: int = 1200, cols: int = 1200, seed: int = 0) -> np.ndarray:
    """Confluent H&E-like texture: eosin-pink stroma, haematoxylin nuclei, a few white gaps."""
    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.normal(size=(rows, cols)), 6)
    noise = (noise - noise.min()) / np.ptp(noise)
    image = np.array([230, 150, 190]) * (0.75 + 0.25 * noise[..., None])
    nuclei = ndimage.gaussian_filter(rng.random((rows, cols)), 1.5) > 0.53
    image[nuclei] = [90, 60, 150]
    gaps = ndimage.gaussian_filter(rng.normal(size=(rows, cols)), 25) > 0.02
    image[gaps] = [245, 245, 245]
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("kind,mpp", [("blood", 0.25), ("marrow", 0.5)])
def test_synthetic_smears_are_smears(kind, mpp):
    image, _ = render_field(SmearSpec(size=1024, mpp=mpp, seed=5, kind=kind), masks=False)
    check = smear_likeness(slide_from_array(image, mpp=mpp))
    assert check.is_smear and check.score > 0.8, check


@pytest.mark.parametrize("mpp", [0.25, 0.5, 2.0])
def test_confluent_tissue_is_not_a_smear(mpp):
    check = smear_likeness(tissue_like(), mpp=mpp)
    assert not check.is_smear and check.score < 0.2, check
    assert "tissue" in check.reason


def test_blank_glass_and_bad_input():
    assert not smear_likeness(np.full((256, 256, 3), 250, np.uint8)).is_smear
    with pytest.raises(InvalidInputError):
        smear_likeness(np.zeros((10, 10), np.uint8))
