"""Rendering fields: determinism, tile-border consistency, truth matching pixels, class mix."""

import numpy as np
import pytest

from hemascope.errors import InvalidInputError
from hemascope.synthetic import TRUTH_COLUMNS, DomainShift, SmearSpec, render_field
from hemascope.synthetic.render import SmearRenderer


def test_same_seed_same_pixels_and_truth(small_field):
    image, truth = render_field(small_field.spec)
    assert np.array_equal(image, small_field.image)
    assert truth.cells.equals(small_field.truth.cells)
    assert np.array_equal(truth.cell_labels, small_field.truth.cell_labels)
    other, other_truth = render_field(small_field.spec.replace(seed=12))
    assert np.mean(other != image) > 0.3
    assert not other_truth.cells[["row", "col"]].equals(truth.cells[["row", "col"]])


@pytest.mark.parametrize(
    "shift", [DomainShift(), DomainShift(blur_um=0.8, noise=4.0, hue_deg=-6, intensity=1.2)]
)
def test_tiles_agree_across_borders(shift):
    """Any tiling of a region gives the same pixels and labels as rendering it whole."""
    spec = SmearSpec(size=(1500, 1500), mpp=0.5, seed=3, wbc_density=600.0, shift=shift)
    whole = SmearRenderer(spec).render(100, 150, 700, 650, labels=True)
    pieces = SmearRenderer(spec)  # a fresh renderer: no shared sprite cache
    image = np.zeros_like(whole.image)
    labels = np.zeros_like(whole.cell_labels)
    cuts_r, cuts_c = [0, 213, 450, 700], [0, 97, 333, 650]
    for r0, r1 in zip(cuts_r[:-1], cuts_r[1:], strict=True):
        for c0, c1 in zip(cuts_c[:-1], cuts_c[1:], strict=True):
            part = pieces.render(100 + r0, 150 + c0, r1 - r0, c1 - c0, labels=True)
            image[r0:r1, c0:c1] = part.image
            labels[r0:r1, c0:c1] = part.cell_labels
    assert np.array_equal(image, whole.image)
    assert np.array_equal(labels, whole.cell_labels)
    # some white cell really straddles a cut
    wbc = set(np.unique(whole.cell_labels[212:214])) | set(np.unique(whole.cell_labels[:, 332:334]))
    assert len(wbc - {0}) >= 1


def test_truth_matches_pixels(small_field):
    image, truth = small_field.image, small_field.truth
    cells = truth.cells
    assert list(cells.columns) == list(TRUTH_COLUMNS)
    assert cells["id"].is_unique
    labels = truth.cell_labels
    ids_in_mask = set(np.unique(labels)) - {0}
    assert ids_in_mask == set(cells["id"])
    glass = np.array(small_field.spec.shift.background)
    for cell in cells.itertuples():
        r, c = int(round(cell.row)), int(round(cell.col))
        assert labels[r, c] == cell.id
        rows, cols = np.nonzero(labels == cell.id)
        box = (rows.min(), cols.min(), rows.max() + 1, cols.max() + 1)
        truth_box = (cell.bbox_row0, cell.bbox_col0, cell.bbox_row1, cell.bbox_col1)
        if cell._2 == "platelet":  # platelets may overlap each other: the visible part lies inside
            assert box[0] >= truth_box[0] - 1 and box[1] >= truth_box[1] - 1
            assert box[2] <= truth_box[2] + 1 and box[3] <= truth_box[3] + 1
        else:  # white cells never overlap: the box is tight
            assert np.abs(np.subtract(box, truth_box)).max() <= 1, (cell.id, box, truth_box)
        assert cell.x_um == pytest.approx(cell.col * 0.5) and cell.y_um == pytest.approx(
            cell.row * 0.5
        )
        # stained: much darker than glass where the truth puts it
        assert image[rows, cols].mean() < glass.mean() - 40
        inner = 0 < box[0] and 0 < box[1] and box[2] < labels.shape[0] and box[3] < labels.shape[1]
        if cell._2 != "platelet" and inner:
            assert (truth.nucleus_labels == cell.id).sum() > 0
            area_um2 = rows.size * 0.25
            assert 2 * np.sqrt(area_um2 / np.pi) == pytest.approx(cell.diameter_um, rel=0.2)
    # away from every listed cell, the mask is empty and nuclei only lie inside cells
    assert np.all(
        labels[truth.nucleus_labels > 0] == truth.nucleus_labels[truth.nucleus_labels > 0]
    )


def test_class_mix_density_and_glass_margin():
    only_blasts = SmearSpec(size=1024, seed=2, class_mix={"blast": 1.0}, wbc_density=300.0)
    _, truth = render_field(only_blasts, masks=False)
    wbc = truth.white_cells()
    assert len(wbc) > 20 and set(wbc["class"]) == {"blast"}
    assert truth.cell_labels is None
    sparse = render_field(only_blasts.replace(wbc_density=75.0), masks=False)[1].white_cells()
    assert len(sparse) < 0.5 * len(wbc)
    image, _ = render_field(SmearSpec(size=1024, seed=2, glass_margin=0.1), masks=False)
    background = np.array(DomainShift().background)
    corner = image[:40, :40].astype(int)
    assert np.abs(corner - background).max() <= 1  # bare glass outside the smear
    assert image[400:600, 400:600].mean() < background.mean() - 10


def test_too_large_field_is_refused():
    with pytest.raises(InvalidInputError):
        render_field(SmearSpec(size=(20000, 20000)))
