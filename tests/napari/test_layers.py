"""Layer builders, readers and writers without a viewer (plain data in, LayerDataTuples out)."""

import dask.array as da
import numpy as np
import pandas as pd
import pytest

from hemascope.classes import class_rgba
from hemascope.errors import HemascopeError
from hemascope.napari.layers import (
    blast_heatmap,
    cells_layer_data,
    class_colors,
    labels_layer_data,
    open_label_pyramid,
    slide_layer_data,
)
from hemascope.napari.reader import get_geojson_reader, get_slide_reader, read_geojson_layers
from hemascope.napari.writers import write_points_csv, write_points_geojson


def test_slide_layer_is_multiscale_rgb_in_um_and_reads_nothing():
    from hemascope.io import Slide

    reads = []

    def _never(block):  # any compute of a level would land here (dask probes with empty blocks)
        if block.size:
            reads.append(block.shape)
        return block

    levels = [da.zeros((s, s, 3), dtype=np.uint8, chunks=256).map_blocks(_never, meta=np.array((), np.uint8))
              for s in (2048, 1024, 512)]
    slide = Slide(levels=levels, mpp=0.25, path=None)
    data, kwargs, kind = slide_layer_data(slide, name="a.svs")
    assert kind == "image" and kwargs["multiscale"] and kwargs["rgb"]
    assert [lv.shape for lv in data] == [lv.shape for lv in levels]
    assert kwargs["scale"] == (0.25, 0.25) and kwargs["contrast_limits"] == (0, 255)
    assert kwargs["name"] == "a.svs" and kwargs["metadata"]["hemascope_slide"] is slide
    assert reads == []


def test_cells_layer_colours_sizes_and_features(cell_table):
    coords, kwargs, kind = cells_layer_data(cell_table, 0.5)
    assert kind == "points"
    np.testing.assert_array_equal(coords, cell_table[["row", "col"]].to_numpy())
    pd.testing.assert_frame_equal(kwargs["features"], cell_table)
    expected = np.array([class_rgba(c) for c in cell_table["class"]], dtype=np.float32)
    np.testing.assert_allclose(kwargs["border_color"], expected)  # outlines in the class colour
    np.testing.assert_allclose(kwargs["face_color"][:, :3], expected[:, :3])
    assert (kwargs["face_color"][:, 3] == 0).all()  # ... around cells left visible
    diameter_um = 2 * np.sqrt(80.0 / np.pi)
    # the ring lies around the cell (wider than it), so the cell itself stays visible
    from hemascope.napari.layers import OUTLINE_MARGIN

    assert OUTLINE_MARGIN > 1.2
    np.testing.assert_allclose(kwargs["size"] * kwargs["scale"][0], OUTLINE_MARGIN * diameter_um)
    assert kwargs["symbol"] == "disc" and kwargs["border_width"] < 0.15
    assert set(kwargs["metadata"]["legend"]) == set(cell_table["class"])


def test_cells_layer_needs_centroids():
    with pytest.raises(HemascopeError):
        cells_layer_data(pd.DataFrame({"x": [1.0]}), 0.5)


def test_class_colors_unknown_is_grey():
    np.testing.assert_allclose(class_colors(["blast", "nonsense"])[1], class_rgba("unclassified"))


def test_blast_heatmap_bins_and_alignment():
    cells = pd.DataFrame({"row": [10.0, 15.0, 250.0], "col": [10.0, 12.0, 390.0],
                          "prob_blast": [1.0, 0.0, 0.8]})
    heat, size, offset = blast_heatmap(cells, (300, 400), mpp=0.5, bin_um=50.0)  # 100 px bins
    assert heat.shape == (3, 4) and size == 50.0
    assert heat[0, 0] == pytest.approx(0.5) and heat[2, 3] == pytest.approx(0.8)
    assert heat.sum() == pytest.approx(1.3)
    # the centre of bin (0, 0) in world µm is the centre of level-0 pixels 0..99
    assert offset == pytest.approx(49.5 * 0.5)


def test_label_pyramid_from_ome_zarr(tmp_path):
    from hemascope.io import write_ome_zarr

    labels = np.zeros((1024, 1024), dtype=np.uint32)
    labels[100:200, 300:420] = 7
    image = np.full((1024, 1024, 3), 200, dtype=np.uint8)
    path = write_ome_zarr(tmp_path / "m.ome.zarr", image, mpp=0.5, labels={"cells": labels}, chunks=256)
    levels = open_label_pyramid(path)
    assert levels[0].shape == (1024, 1024) and len(levels) >= 2
    np.testing.assert_array_equal(np.asarray(levels[0]), labels)
    data, kwargs, kind = labels_layer_data(levels, 0.5)
    assert kind == "labels" and kwargs["multiscale"] and kwargs["scale"] == (0.5, 0.5)


def test_reader_hooks_claim_only_their_files(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    assert get_slide_reader(str(tmp_path / "notes.txt")) is None
    assert get_slide_reader(str(tmp_path / "a.svs")) is not None
    other = tmp_path / "other.json"
    other.write_text('{"a": 1}')
    assert get_geojson_reader(str(other)) is None


def test_geojson_writer_reader_round_trip_is_exact(tmp_path, cell_table):
    cells = cell_table.copy()
    cells["row"] += np.random.default_rng(1).random(len(cells)) / 3  # non-round floats
    cells["y_um"] = cells["row"] * 0.5
    coords, kwargs, _ = cells_layer_data(cells, 0.5)
    path = tmp_path / "cells.geojson"
    write_points_geojson(str(path), coords, kwargs)
    reader = get_geojson_reader(str(path))
    assert reader is not None
    [(data, back, kind)] = reader(str(path))
    assert kind == "points"
    np.testing.assert_array_equal(data, coords)  # bit-exact
    assert list(back["features"]["class"]) == list(cells["class"])
    assert back["scale"] == pytest.approx((0.5, 0.5))  # µm/px recovered from the measurements


def test_geojson_annotations_become_shapes(tmp_path):
    import json

    ring = [[10.5, 20.25], [110.5, 20.25], [110.5, 80.0], [10.5, 20.25]]
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
         "properties": {"objectType": "annotation", "classification": {"name": "Blast"}}}]}
    path = tmp_path / "a.geojson"
    path.write_text(json.dumps(fc))
    [(shapes, kwargs, kind)] = read_geojson_layers(str(path))
    assert kind == "shapes" and kwargs["shape_type"] == ["polygon"]
    np.testing.assert_array_equal(shapes[0], np.asarray(ring)[:, ::-1])  # (x, y) -> (row, col)


def test_points_csv_writer(tmp_path, cell_table):
    coords, kwargs, _ = cells_layer_data(cell_table, 0.5)
    coords = coords + 1.0  # moved points are saved where they are now
    [out] = write_points_csv(str(tmp_path / "c.csv"), coords, kwargs)
    back = pd.read_csv(out)
    np.testing.assert_array_equal(back[["row", "col"]].to_numpy(), coords)
    assert list(back["class"]) == list(cell_table["class"])


def test_any_rgb_layer_can_be_analysed_and_bad_ones_are_refused():
    from napari.layers import Image

    from hemascope.napari.analyze_widget import slide_of_layer

    rgb = np.zeros((64, 80, 3), dtype=np.uint8)
    slide = slide_of_layer(Image(rgb, rgb=True, scale=(0.4, 0.4), name="user"))
    assert slide.shape == (64, 80) and slide.mpp == 0.4 and slide.n_levels == 1
    assert slide_of_layer(Image(rgb, rgb=True)).mpp is None  # pixel scale: µm/px unknown
    assert slide_of_layer(Image(rgb, rgb=True, scale=(250, 250))).mpp is None  # nm/px: estimated instead
    with pytest.raises(HemascopeError):
        slide_of_layer(Image(rgb.astype(np.float32) / 255, rgb=True))
    with pytest.raises(HemascopeError):
        slide_of_layer(Image(rgb[..., 0]))
