"""``hemascope analyze FOLDER --pool``: a camera's fields of one specimen counted together."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image


def _fields(root: Path, name: str, seeds: list[int]) -> Path:
    from hemascope.synthetic import SmearSpec, render_field

    folder = root / name
    folder.mkdir(parents=True)
    for seed in seeds:
        image, _ = render_field(SmearSpec(size=(384, 384), mpp=0.5, seed=seed, glass_margin=0.0), masks=False)
        Image.fromarray(image).save(folder / f"field-{seed}.png")
    return folder


def test_pool_counts_each_folders_fields_together(cli, tmp_path, capsys):
    root = tmp_path / "specimens"
    _fields(root, "patient-a", [3, 4, 5, 6, 7])
    _fields(root, "patient-b", [8])
    (root / "patient-a" / "broken.png").write_bytes(b"not a picture")
    out = tmp_path / "out"
    capsys.readouterr()
    assert cli("analyze", root, "--out", out, "--mpp", "0.5", "--pool", "--quiet") == 1  # the broken field
    printed = capsys.readouterr().out
    fields = pd.read_csv(out / "summary.csv")
    pooled = pd.read_csv(out / "pooled.csv").set_index("slide")
    assert list(pooled.index) == [str(root / "patient-a"), str(root / "patient-b")]
    assert list(pooled["n_fields"]) == [6, 1] and set(pooled["status"]) == {"pooled"}
    for folder, row in pooled.iterrows():
        mine = fields[fields["slide"].str.startswith(folder + "/") & (fields["status"] == "done")]
        assert row["n_cells"] == mine["n_cells"].sum() > 0  # every analysed field's cells, once
        assert row["n_counted"] == mine["n_counted"].sum()
    a = out / "pooled" / "patient-a"
    report = json.loads((a / "exports" / "report.json").read_text())
    assert report["notice"] == "research use only — not for diagnosis"
    # too few cells in any one field for the domain-shift guard; the pool is judged on its cells
    for field in fields[fields["slide"].str.contains("patient-a/field")]["out_dir"]:
        assert json.loads((Path(field) / "result.json").read_text())["checks"]["domain_shift"]["ok"] is None
    shift = report["checks"]["domain_shift"]
    assert shift["ok"] is True and shift["n_cells"] == report["n_cells"] >= 16 and report["checks"]["stain"]["nearest"]
    assert report["checks"]["fields"]["left_out"] == {"broken.png": report["checks"]["fields"]["left_out"]["broken.png"]}
    assert report["checks"]["fields"]["left_out"]["broken.png"].startswith("not analysed")
    assert report["differential"]["n_counted"] == pooled.loc[str(root / "patient-a"), "n_counted"]
    cells = pd.read_csv(a / "exports" / "cells.csv")
    assert set(cells["field"]) == {f"field-{seed}.png" for seed in (3, 4, 5, 6, 7)}
    assert cells["id"].tolist() == list(range(1, len(cells) + 1))
    png = np.asarray(Image.open(a / "exports" / "report.png").convert("RGB"))
    assert png.std() > 10 and png.shape[0] > 700  # the fields' sheet and example cells cut from them
    # its cells lie in three pictures: no GeoJSON (one picture's pixels), here or from `export`
    assert not (a / "exports" / "cells.geojson").exists()
    assert cli("export", a, "--out", tmp_path / "again") == 0
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == [
        "EXPORTED", "cells.csv", "cells.parquet", "report.json", "report.png"]
    capsys.readouterr()
    assert cli("export", a, "--out", tmp_path / "geo", "--only", "geojson") == 2
    assert "export each field's result" in capsys.readouterr().err
    # the run's --out folder stands for all its results: every field's and every pool's
    assert cli("export", out, "--out", tmp_path / "all", "--only", "cells_csv") == 0
    written = sorted(p.parent.relative_to(tmp_path / "all").as_posix() for p in (tmp_path / "all").rglob("cells.csv"))
    fields_done = sorted(Path(d).name for d in fields.loc[fields["status"] == "done", "out_dir"])
    assert written == sorted([*fields_done, "pooled/patient-a", "pooled/patient-b"])
    # `analyze --no-export --pool`: the pools' results only
    from hemascope.pooled import pool_folders

    done = fields[fields["status"] == "done"]
    (_, saved, _), _ = pool_folders(list(zip(done["slide"], done["out_dir"], strict=True)), {}, tmp_path / "bare",
                                    export=False)
    assert (saved / "COMPLETE").is_file() and not (saved / "exports").exists()
    assert f"pooled  {root / 'patient-a'}:" in printed and "1 of 6 fields left out" in printed
    assert re.search(r"field-4\.png: \d+ cells", printed)  # a count, not "9.0 cells" beside a failed row


def test_a_pools_unsure_scale_or_a_field_unlike_training_is_said_and_withheld():
    from hemascope.config import AnalysisConfig
    from hemascope.pooled import pool_fields
    from hemascope.results import SlideResult

    def field(classes: list[str], **checks: dict) -> SlideResult:
        cells = pd.DataFrame({"id": range(1, len(classes) + 1), "class": classes})
        return SlideResult(cells=cells, config=AnalysisConfig(), checks=checks, slide={"mpp": 0.5})

    sure = {"ok": True, "reason": "µm/px estimated (confidence 0.9)"}
    unsure = {"ok": False, "reason": "µm/px estimated (confidence 0.2); low confidence: pass the scale (--mpp)"}
    shifted = {"ok": False, "reason": "the cells are unlike the training data"}
    fields = {"a.png": field(["blast"] * 60 + ["lymphocyte"] * 60, scale=sure),
              "b.png": field(["blast"] * 50, scale=sure, domain_shift=shifted)}
    pooled = pool_fields(fields, path="specimen", models=[])
    assert pooled.n_cells == 120  # b.png is left out, and says why
    assert pooled.checks["fields"]["left_out"] == {"b.png": "the cells are unlike the training data"}
    assert pooled.differential["blast_percent"] == 50.0
    fields["a.png"].checks["scale"] = unsure
    pooled = pool_fields(fields, path="specimen", models=[])
    assert pooled.differential["blast_percent"] is None and "low confidence" in pooled.differential["withheld"]
    fields["a.png"].checks["domain_shift"] = shifted
    pooled = pool_fields(fields, path="specimen", models=[])
    assert pooled.n_cells == 170 and pooled.checks["fields"]["ok"] is False  # nothing passed: all counted, withheld
    assert pooled.differential["blast_percent"] is None


def test_without_pool_a_folder_of_thin_fields_gets_a_hint(cli, tmp_path, capsys):
    folder = _fields(tmp_path, "specimen", [3, 4])
    capsys.readouterr()
    assert cli("analyze", folder, "--out", tmp_path / "out", "--mpp", "0.5") == 0
    err = capsys.readouterr().err
    assert "hint: 2 pictures in 1 folder(s) hold fewer than 100 white cells each" in err and "--pool" in err
    assert not (tmp_path / "out" / "pooled.csv").exists()
