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


def test_a_nucleus_mask_two_touching_cells_share_is_split_between_their_centres():
    """Touching blasts of a packed field whose nuclei meet get one nucleus mask in each crop, each
    running up to its crop's edge: the first cell painted kept all it outlined, so the second's
    nucleus was cut straight at the first crop's edge (pairs of another lab's touching cells as
    fields: recall 0.940, 0.948 with the split)."""
    from hemascope.export.labels import lazy_label_image
    from hemascope.segment import paint_labels
    from hemascope.segment.crop_cells import CellMask

    left = np.zeros((20, 30), bool)
    left[:, :] = True  # columns 0-29: its crop ends at 30
    left_nucleus = np.zeros_like(left)
    left_nucleus[6:14, 8:] = True  # the shared nucleus mask, up to the crop's edge
    right = np.zeros((20, 30), bool)
    right[:, :] = True  # columns 10-39
    right_nucleus = np.zeros_like(right)
    right_nucleus[6:14, :22] = True  # columns 10-31
    masks = [CellMask((0, 0), left, left_nucleus), CellMask((0, 10), right, right_nucleus)]
    for order in (masks, masks[::-1]):
        cells, nuclei = paint_labels((20, 40), order)
        left_value = 1 if order[0] is masks[0] else 2
        right_value = 3 - left_value
        # the centres lie at columns 14.5 and 24.5: the shared nucleus is cut half-way
        assert (nuclei[6:14, 8:20] == left_value).all() and (nuclei[6:14, 20:32] == right_value).all()
        assert (cells[:, :20] == left_value).all() and (cells[:, 20:] == right_value).all()
        written = lazy_label_image((20, 40), order, np.arange(1, 3), chunks=7, part="nucleus").compute()
        np.testing.assert_array_equal(written, nuclei)  # chunk by chunk, the same split
