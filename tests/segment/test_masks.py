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


def test_overlapping_outlines_of_touching_cells_are_painted_to_the_nearest_nucleus():
    """Two cells each outlined in its own crop, the first taking in its neighbour up to the crop's
    edge: the second used to overwrite it in table order (a straight cut), and a first cell painted
    after a second one would have hidden its nucleus."""
    from hemascope.segment import paint_labels
    from hemascope.segment.crop_cells import CellMask

    left = np.zeros((20, 30), bool)
    left[:, :26] = True  # runs into the right cell, cut by its crop at column 26
    left_nucleus = np.zeros_like(left)
    left_nucleus[8:12, 4:8] = True
    right = np.zeros((20, 16), bool)
    right[:, 2:] = True
    right_nucleus = np.zeros_like(right)
    right_nucleus[8:12, 8:12] = True  # columns 22-26 of the picture
    masks = [CellMask((0, 0), left, left_nucleus), CellMask((0, 14), right, right_nucleus)]
    for order in (masks, masks[::-1]):
        cells, nuclei = paint_labels((20, 30), order)
        first = 1 if order[0] is masks[0] else 2
        left_value, right_value = first, 3 - first
        assert (cells[:, :15] == left_value).all() and (cells[:, 16:] == right_value).all()
        assert (nuclei[8:12, 4:8] == left_value).all() and (nuclei[8:12, 22:26] == right_value).all()
        assert set(np.unique(nuclei)) == {0, 1, 2}


def test_label_images_written_chunk_by_chunk_are_the_ones_painted_whole():
    """What `analyze` and `segment --labels` write (a dask image painted chunk by chunk) is what
    `segment` paints for a picture: the left cell's outline running into its neighbour used to
    overwrite it, or be overwritten, in table order, and the nucleus image was painted apart from
    the cell image (a pixel could be one cell's nucleus inside another cell)."""
    from hemascope.export.labels import lazy_label_image
    from hemascope.segment import paint_labels
    from hemascope.segment.crop_cells import CellMask

    left = np.zeros((20, 30), bool)
    left[:, :26] = True
    left_nucleus = np.zeros_like(left)
    left_nucleus[8:12, 4:8] = True
    right = np.zeros((20, 16), bool)
    right[:, 2:] = True
    right_nucleus = np.zeros_like(right)
    right_nucleus[8:12, 8:12] = True
    masks = [CellMask((0, 0), left, left_nucleus), CellMask((0, 14), right, right_nucleus)]
    for order in (masks, masks[::-1]):
        cells, nuclei = paint_labels((20, 30), order)
        ids = np.arange(1, 3)
        for chunks in (7, 1024):
            np.testing.assert_array_equal(lazy_label_image((20, 30), order, ids, chunks=chunks).compute(), cells)
            np.testing.assert_array_equal(
                lazy_label_image((20, 30), order, ids, chunks=chunks, part="nucleus").compute(), nuclei)
