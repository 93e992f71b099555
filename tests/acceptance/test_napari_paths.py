"""The napari dock with its defaults and with every bundled cell model; GeoJSON export re-opened."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("qtpy")


@pytest.fixture
def viewer_with_slide(small_slide, qtbot):
    """A viewer model holding the small slide as a hemascope layer, and the three docks."""
    from napari.components import ViewerModel

    from hemascope.io import open_slide
    from hemascope.napari.analyze_widget import AnalyzeWidget
    from hemascope.napari.gallery_widget import GalleryWidget
    from hemascope.napari.layers import slide_layer_data
    from hemascope.napari.report_widget import ReportWidget

    viewer = ViewerModel()
    data, kwargs, _ = slide_layer_data(open_slide(small_slide))
    viewer.add_image(data, **kwargs)
    docks = AnalyzeWidget(viewer), ReportWidget(viewer), GalleryWidget(viewer)
    for dock in docks:
        qtbot.addWidget(dock)
    return viewer, docks


def test_dock_pickers_list_models_that_fit_together(viewer_with_slide):
    from hemascope.models import list_models
    from hemascope.slide.applicability import bag_model_fits
    from hemascope.slide.bag_model import load_bag_model

    _, (analyze, _, _) = viewer_with_slide
    cells = [analyze.cell_model_combo.itemText(i) for i in range(analyze.cell_model_combo.count())]
    cards = {c.name: c for c in list_models()}
    assert analyze.cell_model_combo.currentText() == "wbc"
    assert cells and all(cards[name].kind == "cell" for name in cells)
    for name in cells:
        analyze.cell_model_combo.setCurrentText(name)
        slide_models = [analyze.slide_model_combo.itemText(i) for i in range(analyze.slide_model_combo.count())]
        assert slide_models[:2] == ["(default)", "none"]
        for bag in slide_models[2:]:
            assert bag_model_fits(load_bag_model(bag).card, cards[name]), (name, bag)


@pytest.mark.parametrize("cell_model", [None, "wbc", "blast", "taleqani-cells", "wbc-demo"])
def test_dock_run_fills_report_and_gallery(viewer_with_slide, qtbot, cell_model):
    viewer, (analyze, report, gallery) = viewer_with_slide
    if cell_model is not None:  # None: every default of the dock as it opens
        analyze.cell_model_combo.setCurrentText(cell_model)
    analyze.run()
    qtbot.waitUntil(lambda: analyze.run_button.isEnabled(), timeout=180_000)
    assert analyze.status.text().startswith("done"), analyze.status.text()
    assert "cells" in viewer.layers and report.result is analyze.result
    assert report.table.rowCount() > 0 and "cells" in report.summary.text()
    assert report.subtype.text().startswith("slide level:")
    qtbot.waitUntil(lambda: gallery.thumbnails_pending == 0, timeout=60_000)
    assert gallery.list.count() > 0
    from hemascope.napari.gallery_widget import POSSIBLE_BLASTS
    from hemascope.napari.review import has_possible_blasts

    entries = [gallery.class_combo.itemText(i) for i in range(gallery.class_combo.count())][1:]
    features = viewer.layers["cells"].features
    assert (POSSIBLE_BLASTS in entries) == has_possible_blasts(features)
    assert set(entries) - {POSSIBLE_BLASTS} == set(features["class"])
    assert not viewer.layers["blast probability"].visible if "blast probability" in viewer.layers else True


def test_report_widget_shows_abstentions_with_null_probabilities(qtbot, analyzed_sample):
    """The report of a slide model that abstained (probabilities null in JSON) is drawn, not crashed."""
    from napari.components import ViewerModel

    from hemascope.napari.report_widget import ReportWidget
    from hemascope.results import SlideResult

    _, folder = analyzed_sample
    result = SlideResult.load(folder)
    abstained = {"model": "m", "version": "1", "demo": False, "classes": ["APL", "AML"],
                 "probabilities": {"APL": None, "AML": None}, "label": None, "abstained": True,
                 "reason": "too few blasts: 2 in the bag, at least 10 needed", "caption": "m v1"}
    result.subtype, result.subtypes = abstained, [abstained]
    widget = ReportWidget(ViewerModel())
    qtbot.addWidget(widget)
    widget.set_result(result)
    assert "ABSTAINED" in widget.subtype.text() and "too few blasts" in widget.subtype.text()


def test_report_widget_names_the_possible_blasts(qtbot, analyzed_sample):
    """Cells whose blast call the rule withheld are named in the report with the blast % they allow."""
    from napari.components import ViewerModel

    from hemascope.napari.report_widget import ReportWidget
    from hemascope.results import SlideResult

    _, folder = analyzed_sample
    result = SlideResult.load(folder)
    result.differential = {**result.differential, "possible_blasts": 3, "blast_percent_with_possible": 12.5}
    widget = ReportWidget(ViewerModel())
    qtbot.addWidget(widget)
    widget.set_result(result)
    assert "3 possible blasts to review" in widget.blast.text() and "12.5% if all are" in widget.blast.text()


def test_geojson_export_reopens_aligned_with_the_slide(analyzed_sample, sample_path):
    """Cells exported by analyze, opened through hemascope's napari reader, sit on their cells (µm)."""
    from hemascope.io import open_slide
    from hemascope.napari.layers import slide_layer_data
    from hemascope.napari.reader import get_geojson_reader

    _, folder = analyzed_sample
    path = folder / "exports" / "cells.geojson"
    reader = get_geojson_reader(str(path))
    assert reader is not None
    layers = reader(str(path))
    (coords, kwargs, kind), = [t for t in layers if t[2] == "points"]
    _, slide_kwargs, _ = slide_layer_data(open_slide(sample_path))
    assert tuple(kwargs["scale"]) == pytest.approx(tuple(slide_kwargs["scale"]))
    cells = pd.read_parquet(folder / "cells.parquet")
    np.testing.assert_allclose(np.asarray(coords) * kwargs["scale"][0],
                               cells[["row", "col"]].to_numpy() * slide_kwargs["scale"][0], atol=1e-6)
    # QuPath cell objects: cell outline, nucleus outline, QuPath-style measurement names
    feature = json.loads(path.read_text())["features"][0]
    assert feature["properties"]["objectType"] == "cell" and feature["nucleusGeometry"]["type"] == "Polygon"
    names = set(feature["properties"]["measurements"])
    assert {"Centroid X µm", "Centroid Y µm", "Cell: Area µm^2", "Nucleus: Area µm^2"} <= names
