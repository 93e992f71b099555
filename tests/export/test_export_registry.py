"""The one table of exports drives export_all, `hemascope export` and the napari manifest writers.

Adding an export = one entry in ``hemascope.export.registry.EXPORTS``; these tests then check that
``export_all`` writes it, the CLI offers it and (for a napari format) the manifest claims it.
"""

import importlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from hemascope.cli.main import main
from hemascope.errors import InvalidInputError
from hemascope.export import EXPORTS, export_all
from hemascope.export.bundle import EXPORTS_COMPLETE, exports_complete
from hemascope.export.registry import bundle_exports, manifest_writers
from hemascope.results import SlideResult
from hemascope.slide.differential import differential_count

MANIFEST = Path(__file__).resolve().parents[2] / "src" / "hemascope" / "napari.yaml"


def _result() -> SlideResult:
    classes = ["blast"] * 12 + ["neutrophil"] * 18
    cells = pd.DataFrame({"id": np.arange(30), "row": np.arange(30) * 10.0,
                          "col": np.arange(30) * 5.0, "class": classes})
    return SlideResult(
        cells=cells, differential=differential_count(cells["class"], min_cells=10).to_dict(),
        slide={"path": "/x/slide.ome.tif", "mpp": 0.5},
        provenance={"models": {"cell": {"name": "wbc", "version": "1", "sha256": "ab"}}},
    )


def test_export_all_writes_every_bundle_export_of_the_table_and_marks_them(tmp_path):
    paths = export_all(_result(), tmp_path)
    assert {name: p.name for name, p in paths.items()} == {e.name: e.file_name for e in bundle_exports()}
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.values())
    assert set(json.loads((tmp_path / EXPORTS_COMPLETE).read_text())) == set(paths)
    assert exports_complete(tmp_path) and exports_complete(tmp_path, list(paths))


def test_a_subset_of_exports_is_written_and_does_not_count_as_all(tmp_path):
    paths = export_all(_result(), tmp_path, "report_json, cells_csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["cells.csv", "report.json", EXPORTS_COMPLETE])
    assert list(paths) == ["cells_csv", "report_json"]  # table order
    assert exports_complete(tmp_path, ["cells_csv"])
    assert not exports_complete(tmp_path, [e.name for e in bundle_exports()])
    with pytest.raises(InvalidInputError, match="choose from cells_csv"):
        export_all(_result(), tmp_path, ["labels_zarr"])  # napari-only: needs the layers


def test_the_napari_manifest_writers_are_the_table():
    import hemascope.napari.writers as writers

    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))["contributions"]
    key = lambda w: w["command"]  # noqa: E731
    assert sorted(manifest["writers"], key=key) == sorted(manifest_writers(), key=key)
    commands = {c["id"]: c["python_name"] for c in manifest["commands"]}
    for export in EXPORTS:
        if export.napari is not None:
            assert commands[export.napari.command] == f"hemascope.napari.writers:{export.napari.function}"
            assert callable(getattr(writers, export.napari.function))
    module = importlib.import_module("hemascope.export.registry")
    assert module.EXPORTS is EXPORTS


def test_cli_export_writes_the_chosen_exports_of_saved_results(tmp_path, capsys):
    saved = _result().save(tmp_path / "slide-a")
    assert main(["export", str(saved), "--out", str(tmp_path / "x"), "--only", "cells_parquet"]) == 0
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["EXPORTED", "cells.parquet"]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "x" / "cells.parquet"), _result().cells)
    # a batch that loses one input exits 1 and names it; nothing usable exits 2
    assert main(["export", str(saved), str(tmp_path / "nothing"), "--out", str(tmp_path / "y")]) == 1
    assert "FAILED" in capsys.readouterr().err and exports_complete(tmp_path / "y" / "slide-a")
    assert main(["export", str(saved), "--out", str(tmp_path / "z"), "--only", "pdf"]) == 2
    assert "unknown export(s) pdf" in capsys.readouterr().err and not (tmp_path / "z").exists()
