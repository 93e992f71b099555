import numpy as np
from scipy import ndimage as ndi
from skimage import morphology

from hemascope.segment.masks import binary_closing, fill_holes


def test_fill_holes_matches_scipy():
    rng = np.random.default_rng(0)
    for i in range(200):
        mask = rng.random(rng.integers(1, 50, 2)) < rng.random()
        if i % 2:
            mask = ndi.binary_opening(mask)
        np.testing.assert_array_equal(fill_holes(mask), ndi.binary_fill_holes(mask))


def test_fill_holes_fills_a_ring_but_not_a_notch():
    ring = np.zeros((20, 20), bool)
    ring[4:16, 4:16] = True
    ring[8:12, 8:12] = False
    assert fill_holes(ring)[10, 10]
    notch = ring.copy()
    notch[8:12, 8:16] = False  # opened to the outside
    assert not fill_holes(notch)[10, 10]


def test_binary_closing_matches_skimage_at_every_radius_and_border():
    rng = np.random.default_rng(1)
    for i in range(120):
        mask = rng.random(rng.integers(1, 40, 2)) < rng.random()
        radius = 1 + i % 3  # 1: the fast shift path; 2, 3: the general filter
        np.testing.assert_array_equal(
            binary_closing(mask, radius), morphology.closing(mask, morphology.disk(radius))
        )
