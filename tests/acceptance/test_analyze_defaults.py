"""``hemascope analyze`` with its defaults, as a new user runs it (issue #13's first bug and its kin)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

EXPORTS = ("cells.csv", "cells.parquet", "cells.geojson", "report.json", "report.png", "EXPORTED")


def _slide_rows(out_root: Path) -> pd.DataFrame:
    return pd.read_csv(out_root / "summary.csv")


@pytest.mark.slow  # its fixture analyses the whole sample slide (~20 s on 2 cores), shared by the file
def test_analyze_sample_with_defaults_exits_0_with_every_export(analyzed_sample, sample_path):
    code, folder = analyzed_sample
    assert code == 0
    for name in EXPORTS:
        assert (folder / "exports" / name).is_file(), name
    row = _slide_rows(folder.parent).iloc[0]
    assert row["status"] == "done" and row["n_cells"] > 100
    assert row["notice"] == "research use only — not for diagnosis"  # the table carries blast % and answers
    report = json.loads((folder / "exports" / "report.json").read_text())
    # the default slide models fit the default cell model, and no demo model answers a real-data run
    assert report["models"]["cell"]["name"] == "wbc"
    assert all(not s["demo"] for s in report["subtypes"])
    assert all(c["runs"] is False or c["embedding_model"] == "wbc" for c in report["slide_models"])
    assert report["answers"], "the report says what the slide models answered, or why none applies"
    for sub in report["subtypes"]:  # an answer with probabilities, or an abstention with its reason
        assert sub["abstained"] or sub["label"] in sub["classes"]
        assert not sub["abstained"] or sub["reason"]
    png = np.asarray(Image.open(folder / "exports" / "report.png").convert("RGB"))
    assert png.shape[1] >= 1200 and png.std() > 20


def test_labels_reference_the_slide_instead_of_copying_it(analyzed_sample, sample_path):
    import zarr

    from hemascope.napari.layers import open_label_pyramid

    _, folder = analyzed_sample
    store = folder / "labels.ome.zarr"
    size = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
    assert size < 0.1 * sample_path.stat().st_size  # masks only, never the slide's pixels again
    root = zarr.open_group(str(store), mode="r")
    assert "0" not in root and set(root["labels"]) == {"cells", "nuclei"}
    assert Path(root.attrs["hemascope"]["source_image"]) == sample_path.resolve()
    levels = open_label_pyramid(store)
    cells = pd.read_parquet(folder / "cells.parquet")
    assert levels[0].shape == tuple(json.loads((folder / "result.json").read_text())["slide"]["shape"])
    assert int(levels[0].max().compute()) == int(cells["id"].max())


def test_resume_of_a_finished_slide_says_resumed(analyzed_sample, sample_path, cli, capsys):
    _, folder = analyzed_sample
    capsys.readouterr()
    assert cli("analyze", sample_path, "--out", folder.parent, "--resume", "--quiet") == 0
    assert _slide_rows(folder.parent).iloc[0]["status"] == "resumed"
    assert "resumed" in capsys.readouterr().out


@pytest.mark.slow
def test_analyze_a_make_sample_slide_single_process_and_two_workers(small_slide, cli, tmp_path):
    """A ``make-sample`` slide in one process and on a 2-worker dask cluster: same cells, exit 0."""
    assert cli("analyze", small_slide, "--out", tmp_path / "one", "--quiet") == 0
    assert cli("analyze", small_slide, "--out", tmp_path / "two", "--workers", "2", "--quiet") == 0
    one, two = (pd.read_csv(tmp_path / d / "summary.csv").iloc[0] for d in ("one", "two"))
    assert one["status"] == two["status"] == "done"
    assert one["n_cells"] == two["n_cells"] > 0
    for d in ("one", "two"):
        for name in EXPORTS:
            assert (tmp_path / d / "small" / "exports" / name).is_file(), (d, name)


@pytest.mark.parametrize("with_mpp", [True, False], ids=["--mpp", "estimated"])
def test_analyze_a_plain_field_image(field_png, cli, tmp_path, with_mpp):
    args = ["--mpp", "0.5"] if with_mpp else []
    assert cli("analyze", field_png, "--out", tmp_path, "--quiet", *args) == 0
    result = json.loads((tmp_path / "field" / "result.json").read_text())
    assert result["slide"]["mpp_source"] == ("user" if with_mpp else "estimated")
    assert result["slide"]["mpp"] == pytest.approx(0.5, rel=0.2)
    assert (tmp_path / "field" / "exports" / "EXPORTED").is_file()


def test_slide_model_options_follow_the_rule(small_slide, cli, tmp_path, capsys):
    # switched off
    assert cli("analyze", small_slide, "--out", tmp_path / "off", "--slide-model", "none", "--quiet") == 0
    report = json.loads((tmp_path / "off" / "small" / "exports" / "report.json").read_text())
    assert report["subtypes"] == [] and "switched off" in report["answers"][0]
    # a slide model of another cell model is refused before any work, naming the cell model it needs
    capsys.readouterr()
    assert cli("analyze", small_slide, "--out", tmp_path / "bad", "--slide-model", "aml-subtype-demo",
               "--quiet") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "wbc-demo" in err and not (tmp_path / "bad").exists()
    # named explicitly with its own cell model, a demo model runs (flagged as such)
    assert cli("analyze", small_slide, "--out", tmp_path / "demo", "--cell-model", "wbc-demo",
               "--slide-model", "aml-subtype-demo", "--quiet") == 0
    report = json.loads((tmp_path / "demo" / "small" / "exports" / "report.json").read_text())
    assert [s["model"] for s in report["subtypes"]] == ["aml-subtype-demo"]
    assert report["subtypes"][0]["demo"] is True


def test_every_bundled_cell_model_analyses_the_slide(small_slide, cli, tmp_path):
    """`blast` and `taleqani-cells` classes are not white-cell types: counted, never a crash."""
    from hemascope.models import list_models

    for card in list_models(kind="cell"):
        out = tmp_path / card.name
        assert cli("analyze", small_slide, "--out", out, "--cell-model", card.name, "--quiet") == 0, card.name
        report = json.loads((out / "small" / "exports" / "report.json").read_text())
        counted = set(report["differential"]["counts"])
        assert set(card.cell_classes) <= counted | {"unclassified"}  # reject outputs (smudge) never count
        if not set(card.cell_classes) <= {"basophil", "eosinophil", "erythroblast", "ig", "lymphocyte",
                                     "monocyte", "neutrophil", "platelet", "blast"}:
            assert report["differential"]["kind"] == "class count" and report["differential"]["note"]
