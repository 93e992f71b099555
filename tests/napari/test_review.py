"""Gallery logic without widgets: order, reclassification on a real Points layer, training CSV."""

import numpy as np
import pytest
from napari.layers import Points

from hemascope.classes import class_rgba
from hemascope.errors import HemascopeError
from hemascope.napari.layers import cells_layer_data
from hemascope.napari.review import (
    REVIEWED_COLUMN,
    cell_thumbnail,
    gallery_order,
    reclassify,
    save_reviewed_labels,
    sort_columns,
)


def _layer(cells):
    data, kwargs, _ = cells_layer_data(cells, 0.5)
    return Points(data, **kwargs)


def test_gallery_groups_by_class_and_sorts(cell_table):
    groups = gallery_order(cell_table, sort_by="confidence")
    assert list(groups)[0] == "basophil" and set(groups) == set(cell_table["class"])
    for cls, positions in groups.items():
        assert set(cell_table["class"].iloc[positions]) == {cls}
        conf = cell_table["confidence"].iloc[positions].to_numpy()
        assert np.all(np.diff(conf) <= 0)
    with pytest.raises(HemascopeError):
        gallery_order(cell_table, sort_by="attention")


def test_reclassify_updates_features_and_colour(cell_table):
    layer = _layer(cell_table)
    before = np.array(layer.face_color)
    reclassify(layer, 3, "blast")
    assert layer.features["class"].iloc[3] == "blast"
    assert layer.features[REVIEWED_COLUMN].sum() == 1
    assert layer.features["model_class"].iloc[3] == cell_table["class"].iloc[3]
    np.testing.assert_allclose(layer.face_color[3][:3], class_rgba("blast")[:3])
    np.testing.assert_allclose(np.delete(layer.face_color, 3, 0), np.delete(before, 3, 0))
    with pytest.raises(HemascopeError):
        reclassify(layer, 3, "dragon")


def test_thumbnail_is_centred_on_the_cell(slide, cell_table):
    r, c = cell_table[["row", "col"]].iloc[7]
    thumb = cell_thumbnail(slide, r, c, field_um=24, size=48)
    assert thumb.shape == (48, 48, 3)
    assert thumb[24, 24].tolist() == [120, 60, 150]  # the disc's colour at the centre
    assert thumb[1, 1].tolist() == [235, 235, 235]  # background at the corner


def test_reviewed_labels_csv_is_read_by_training(tmp_path, slide, cell_table):
    from hemascope.train.datasets import read_cell_table

    layer = _layer(cell_table)
    with pytest.raises(HemascopeError):
        save_reviewed_labels(tmp_path / "r.csv", layer.features, slide)  # nothing reviewed yet
    reclassify(layer, 0, "blast")
    reclassify(layer, 5, "monocyte")
    csv = save_reviewed_labels(tmp_path / "r.csv", layer.features, slide)
    table = read_cell_table(csv)
    assert list(table["class"]) == ["blast", "monocyte"]
    assert table["mpp"].tolist() == [0.5, 0.5]
    from PIL import Image

    crop = np.asarray(Image.open(table["path"].iloc[0]))
    assert crop.shape == (72, 72, 3) and crop[36, 36].tolist() == [120, 60, 150]


def test_gallery_sorts_by_attention(cell_table):
    from hemascope.napari.layers import with_attention

    cells = with_attention(cell_table, {"top_cells": [8, 17, 3], "top_weights": [0.5, 0.3, 0.2]})
    groups = gallery_order(cells, sort_by="attention")
    # cell 8 and 17 are blasts (class index 8 of 9): the most attended comes first
    assert groups["blast"][:2] == [8, 17]
    assert sort_columns(cells) == ["confidence", "prob_blast", "attention"]


def test_gallery_shows_only_the_possible_blasts_when_asked(cell_table):
    from hemascope.napari.review import has_possible_blasts

    assert not has_possible_blasts(cell_table)
    assert gallery_order(cell_table, possible_blasts_only=True) == {}
    cells = cell_table.copy()
    cells["possible_blast"] = False
    cells.loc[cells.index[[2, 5]], "possible_blast"] = True
    assert has_possible_blasts(cells)
    groups = gallery_order(cells, possible_blasts_only=True)
    assert sorted(p for positions in groups.values() for p in positions) == [2, 5]
    for cls, positions in groups.items():
        assert set(cells["class"].iloc[positions]) == {cls}
