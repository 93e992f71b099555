"""Result layers and the report and gallery widgets in a real viewer (Qt under Xvfb)."""

import numpy as np
import pandas as pd
import pytest
from qtpy.QtCore import Qt

from hemascope.classes import CELL_CLASSES, class_rgba
from hemascope.napari import add_slide, show_results
from hemascope.napari.review import camera_of

pytestmark = pytest.mark.gui


@pytest.fixture
def viewer_with_result(make_napari_viewer, slide, result):
    viewer = make_napari_viewer()
    add_slide(viewer, slide)
    layers = show_results(viewer, result)
    return viewer, layers


def test_show_results_adds_layers_with_features(viewer_with_result, result):
    viewer, layers = viewer_with_result
    names = [lyr.name for lyr in layers]
    assert names == ["smear mask", "blast probability", "cells"]
    cells = viewer.layers["cells"]
    pd.testing.assert_frame_equal(cells.features[result.cells.columns], result.cells)
    attention = cells.features["attention"]  # the subtype model's most-attended cells, by id
    assert attention.notna().sum() == 3 and attention[8] == 0.5 and attention[3] == 0.2
    np.testing.assert_array_equal(cells.data, result.cells[["row", "col"]].to_numpy())
    assert tuple(cells.scale) == (0.5, 0.5)
    np.testing.assert_allclose(cells.border_color[0], class_rgba(result.cells["class"].iloc[0]))
    heat = viewer.layers["blast probability"]
    assert heat.colormap.name == "magma" and heat.opacity < 0.5 and not heat.visible  # off at first
    # a second result replaces the first instead of piling up
    show_results(viewer, result)
    assert sum(lyr.name.startswith("cells") for lyr in viewer.layers) == 1


def test_gallery_click_moves_camera_and_keys_reclassify(viewer_with_result, qtbot):
    from hemascope.napari.gallery_widget import GalleryWidget

    viewer, _ = viewer_with_result
    gallery = GalleryWidget(viewer)
    qtbot.addWidget(gallery)
    cells = viewer.layers["cells"]
    assert gallery.list.count() == len(cells.data)  # 36 cells, < per_class each
    qtbot.waitUntil(lambda: gallery.thumbnails_pending == 0, timeout=20_000)
    assert not gallery.list.item(0).icon().isNull()
    item = gallery.list.item(5)
    pos = item.data(Qt.ItemDataRole.UserRole)
    camera = camera_of(viewer)
    camera.center = (0.0, 0.0)
    camera.zoom = 0.01
    gallery.list.scrollToItem(item)
    rect = gallery.list.visualItemRect(item)
    qtbot.mouseClick(gallery.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    expected = np.asarray(cells.data[pos]) * 0.5
    np.testing.assert_allclose(camera.center[-2:], expected)
    assert camera.zoom > 1.0
    new_class = CELL_CLASSES[8]  # key "9"
    assert cells.features["class"].iloc[pos] != new_class
    qtbot.keyClick(gallery.list, Qt.Key.Key_9)
    assert cells.features["class"].iloc[pos] == new_class
    assert bool(cells.features["reviewed"].iloc[pos])
    np.testing.assert_allclose(cells.face_color[pos][:3], class_rgba(new_class)[:3])
    np.testing.assert_allclose(cells.border_color[pos][:3], class_rgba(new_class)[:3])


def test_report_shows_differential_subtype_and_notice(viewer_with_result, qtbot, result):
    from hemascope.classes import RESEARCH_USE_ONLY
    from hemascope.napari.report_widget import ReportWidget

    viewer, _ = viewer_with_result
    report = ReportWidget(viewer)
    qtbot.addWidget(report)
    assert report.result is result
    assert RESEARCH_USE_ONLY.upper() in report.notice.text()
    assert "ABSTAINED" in report.subtype.text() and "too few blasts" in report.subtype.text()
    counts = {report.table.item(i, 1).text(): int(report.table.item(i, 2).text())
              for i in range(report.table.rowCount())}
    assert counts["Blast"] == int((result.cells["class"] == "blast").sum())
    assert "wbc v1" in report.models.text()
    assert len(report.figure.axes) == 2


def test_report_lists_the_cells_that_drove_the_call_and_jumps_to_them(viewer_with_result, qtbot):
    from hemascope.napari.report_widget import ReportWidget
    from hemascope.napari.review import camera_of

    viewer, _ = viewer_with_result
    report = ReportWidget(viewer)
    qtbot.addWidget(report)
    items = [report.evidence.item(i) for i in range(report.evidence.count())]
    assert [i.text() for i in items] == ["demo-aml: cell 8 (#1)", "demo-aml: cell 17 (#2)",
                                         "demo-aml: cell 3 (#3)"]
    cells = viewer.layers["cells"]
    report._show_evidence_cell(items[1])
    expected = np.asarray(cells.data_to_world(cells.data[17]))[-2:]
    np.testing.assert_allclose(camera_of(viewer).center[-2:], expected)


def test_geojson_export_import_round_trips_through_napari(viewer_with_result, tmp_path):
    from napari import save_layers

    viewer, _ = viewer_with_result
    cells = viewer.layers["cells"]
    cells.data = cells.data + np.random.default_rng(2).random(cells.data.shape) / 7  # awkward floats
    path = tmp_path / "cells.geojson"
    [written] = save_layers(str(path), [cells], plugin="hemascope")
    [back] = viewer.open(written, plugin="hemascope")
    np.testing.assert_array_equal(back.data, cells.data)  # exactly, not approximately
    assert list(back.features["class"]) == list(cells.features["class"])
    np.testing.assert_allclose(back.scale, cells.scale, rtol=1e-12)  # µm/px from the measurements
    [csv] = save_layers(str(tmp_path / "cells.csv"), [cells], plugin="hemascope")
    table = pd.read_csv(csv)
    np.testing.assert_array_equal(table[["row", "col"]].to_numpy(), cells.data)
