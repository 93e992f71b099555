"""QuPath GeoJSON: detections out, features back in with exactly the same coordinates."""

import json

import numpy as np
import pandas as pd
import pytest
import zarr
from skimage.draw import disk
from skimage.measure import points_in_poly

from hemascope.classes import CLASS_COLORS
from hemascope.errors import InvalidInputError
from hemascope.export import cells_to_geojson, read_geojson, write_geojson


def _cells():
    rng = np.random.default_rng(1)
    n = 15
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "row": rng.uniform(0, 5000, n) + 1 / 3,
            "col": rng.uniform(0, 9000, n) + 1 / 7,
            "area_px": rng.uniform(200, 900, n),
            "class": rng.choice(["blast", "lymphocyte", "neutrophil"], n),
            "confidence": rng.uniform(0.3, 1, n),
        }
    )


def test_detections_are_qupath_shaped(tmp_path):
    cells = _cells()
    fc = cells_to_geojson(cells)
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == len(cells)
    f0 = fc["features"][0]
    assert f0["properties"]["objectType"] == "detection"
    name = cells["class"].iloc[0]
    hexcol = CLASS_COLORS[name].lstrip("#")
    assert f0["properties"]["classification"]["color"] == [int(hexcol[i : i + 2], 16) for i in (0, 2, 4)]
    assert f0["properties"]["measurements"]["Classification confidence"] == pytest.approx(cells["confidence"].iloc[0])
    ring = np.asarray(f0["geometry"]["coordinates"][0])
    # (x, y) order: the ring's centre is at x = col, y = row; the circle has the cell's area.
    assert ring[:-1, 0].mean() == pytest.approx(cells["col"].iloc[0])
    assert ring[:-1, 1].mean() == pytest.approx(cells["row"].iloc[0])


def test_write_read_round_trips_coordinates_exactly(tmp_path):
    cells = _cells()
    path = write_geojson(tmp_path / "cells.geojson", cells)
    written = json.loads(path.read_text())
    objects = read_geojson(path)
    assert len(objects) == len(cells)
    for feature, obj in zip(written["features"], objects, strict=True):
        xy = np.asarray(feature["geometry"]["coordinates"][0])
        np.testing.assert_array_equal(obj.coordinates[0], xy[:, ::-1])  # exact, (row, col)
        assert obj.object_type == "detection"
    assert [o.classification for o in objects] == list(cells["class"])


def test_mask_contours_outline_the_cells():
    labels = np.zeros((200, 300), np.int32)
    labels[disk((50, 60), 20)] = 1
    labels[disk((120, 200), 30)] = 2
    cells = pd.DataFrame({"row": [1050.0, 1120.0], "col": [2060.0, 2200.0], "id": [1, 2], "class": ["blast", "ig"]})
    fc = cells_to_geojson(cells, labels=labels, labels_offset=(1000, 2000))
    # with bounding boxes only a window per cell is read (lazy whole-slide labels): same outlines
    boxed = cells.assign(bbox_min_row=[1030, 1090], bbox_min_col=[2040, 2170], bbox_max_row=[1071, 1151],
                         bbox_max_col=[2081, 2231])
    lazy = zarr.create_array(store={}, shape=labels.shape, chunks=(64, 64), dtype=labels.dtype)
    lazy[:] = labels
    assert cells_to_geojson(boxed, labels=lazy, labels_offset=(1000, 2000))["features"][0]["geometry"] == fc["features"][0]["geometry"]
    for feature, (r, c, radius) in zip(fc["features"], [(1050, 2060, 20), (1120, 2200, 30)], strict=True):
        ring = np.asarray(feature["geometry"]["coordinates"][0])
        assert points_in_poly([[c, r]], ring)[0]
        x, y = ring[:, 0], ring[:, 1]
        area = 0.5 * abs(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1]))
        assert area == pytest.approx(np.pi * radius**2, rel=0.1)


def test_reads_qupath_annotations(tmp_path):
    data = [
        {
            "type": "Feature",
            "id": "a1",
            "geometry": {"type": "Polygon", "coordinates": [[[10.5, 20.25], [30, 20.25], [30, 40], [10.5, 20.25]]]},
            "properties": {
                "objectType": "annotation",
                "classification": {"name": "Blast", "colorRGB": -2031616},
                "measurements": [{"name": "Area", "value": 12.5}],
            },
        },
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [5, 7]}, "properties": {}},
    ]
    path = tmp_path / "qupath.json"
    path.write_text(json.dumps(data))
    first, second = read_geojson(path)
    assert first.object_type == "annotation" and first.classification == "blast"
    assert first.color == (0xE1, 0, 0) and first.measurements == {"Area": 12.5}
    np.testing.assert_array_equal(first.coordinates[0][0], [20.25, 10.5])
    np.testing.assert_array_equal(second.coordinates[0], [[7.0, 5.0]])


@pytest.mark.parametrize("text", ["not json", '{"type": "Nope"}', '[{"type": "Feature"}]'])
def test_bad_files_raise(tmp_path, text):
    path = tmp_path / "bad.geojson"
    path.write_text(text)
    with pytest.raises(InvalidInputError):
        read_geojson(path)
