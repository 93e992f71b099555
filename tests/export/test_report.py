"""Report JSON/PNG, cell tables and OME-Zarr labels from a SlideResult."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hemascope.classes import RESEARCH_USE_ONLY
from hemascope.errors import ResultError
from hemascope.export import export_all, write_cell_table, write_labels_zarr
from hemascope.results import SlideResult
from hemascope.slide.differential import differential_count


def _result():
    classes = ["blast"] * 30 + ["neutrophil"] * 50 + ["lymphocyte"] * 20
    n = len(classes)
    cells = pd.DataFrame({"id": np.arange(n), "row": np.arange(n) * 10.0, "col": np.arange(n) * 5.0, "class": classes})
    subtype = {"probabilities": {"NPM1": 0.7, "control": 0.3}, "label": None, "abstained": True, "reason": "too few blasts", "model": "aml_demo"}
    return SlideResult(
        cells=cells,
        differential=differential_count(cells["class"], min_cells=10).to_dict(),
        subtype=subtype,
        slide={"path": "/x/slide.ome.tif", "mpp": 0.5},
        provenance={"models": {"cell": {"name": "wbc", "version": "1.0", "sha256": "ab"}}, "segmenter": "classical"},
    )


def test_export_all_writes_every_file(tmp_path):
    paths = export_all(_result(), tmp_path / "exp")
    report = json.loads(paths["report_json"].read_text())
    assert report["notice"] == RESEARCH_USE_ONLY
    assert report["differential"]["counts"]["blast"] == 30
    assert report["subtype"]["abstained"] is True
    assert report["models"]["cell"]["name"] == "wbc"
    png = Image.open(paths["report_png"])
    assert png.size[0] > 600 and np.asarray(png).std() > 10
    assert len(pd.read_csv(paths["cells_csv"])) == 100
    pd.testing.assert_frame_equal(pd.read_parquet(paths["cells_parquet"]), _result().cells)


def test_cell_table_rejects_unknown_suffix(tmp_path):
    with pytest.raises(ResultError):
        write_cell_table(tmp_path / "cells.txt", _result().cells)


def test_labels_zarr_round_trip(tmp_path):
    import zarr

    image = np.full((256, 384, 3), 230, np.uint8)
    labels = np.zeros((256, 384), np.int32)
    labels[10:50, 20:60] = 7
    out = write_labels_zarr(tmp_path / "s.ome.zarr", image, labels, mpp=0.5)
    root = zarr.open_group(str(out), mode="r")
    np.testing.assert_array_equal(np.asarray(root["labels/cells/0"]), labels)
    # writing again replaces the store atomically
    write_labels_zarr(out, image, labels * 0, mpp=0.5)
    assert np.asarray(zarr.open_group(str(out), mode="r")["labels/cells/0"]).max() == 0


def test_report_draws_abstentions_with_null_probabilities(tmp_path):
    """Issue #13: a slide model that abstained (probabilities null) crashed plot_subtype."""
    import json as _json

    from hemascope.export import report_dict, write_report_png

    result = _result()
    abstained = {"model": "apl", "version": "1", "demo": False, "classes": ["APL", "AML"],
                 "probabilities": {"APL": None, "AML": None}, "label": None, "abstained": True,
                 "reason": "not applicable", "caption": "apl v1"}
    result.subtype, result.subtypes = abstained, [abstained, {**abstained, "abstained": False, "label": "APL",
                                                              "probabilities": {"APL": 0.8, "AML": 0.2}}]
    write_report_png(tmp_path / "r.png", result)
    assert Image.open(tmp_path / "r.png").size[0] > 600
    answers = _json.loads(_json.dumps(report_dict(result)))["answers"]
    assert answers[0].startswith("apl v1: ABSTAINED") and "APL (p = 0.80)" in answers[1]


def test_report_of_a_class_count_model_and_of_no_slide_model(tmp_path):
    from hemascope.export import write_report_png
    from hemascope.export.report import no_slide_model_text

    cells = pd.DataFrame({"id": [1, 2, 3], "row": [1.0, 2.0, 3.0], "col": [1.0, 2.0, 3.0],
                          "class": ["blast", "nonblast", "nonblast"]})
    result = SlideResult(cells=cells, differential=differential_count(
        cells["class"], min_cells=2, classes=["nonblast", "blast"]).to_dict(),
        provenance={"models": {"cell": {"name": "blast"}}, "slide_models": []})
    assert result.differential["kind"] == "class count"
    assert result.differential["blast_percent"] == pytest.approx(100 / 3)
    write_report_png(tmp_path / "r.png", result)
    assert "no slide-level model applies to cell model 'blast'" in no_slide_model_text(result)
