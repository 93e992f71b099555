"""``hemascope make-sample``: writes the slide and its truth; bad options exit 2 with one line."""

import pytest

from hemascope.cli.main import main
from hemascope.cli.make_sample import parse_stain_shift
from hemascope.errors import InvalidInputError
from hemascope.synthetic import DomainShift, GroundTruth, read_masks


def test_make_sample_writes_slide_truth_and_masks(tmp_path, capsys):
    out = tmp_path / "m.ome.tif"
    code = main(
        [
            "make-sample",
            str(out),
            "--size",
            "700",
            "--seed",
            "5",
            "--kind",
            "marrow",
            "--subtype",
            "RUNX1::RUNX1T1",
            "--mpp",
            "0.25",
            "--stain-shift",
            "hue=5,noise=2,jpeg=80",
            "--class-mix",
            "blast=3,neutrophil=1",
            "--masks",
            "--quiet",
        ]
    )
    assert code == 0
    truth = GroundTruth.load(out)
    assert truth.label["subtype"] == "RUNX1::RUNX1T1" and truth.label["kind"] == "marrow"
    assert truth.spec.shift == DomainShift(hue_deg=5, noise=2, jpeg_quality=80)
    assert set(truth.white_cells()["class"]) <= {"blast", "neutrophil"}
    cells, _ = read_masks(out)
    assert cells.shape == (700, 700)
    assert "cells.csv" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["--stain-shift", "colour=3"],
        ["--stain-shift", "hue=abc"],
        ["--size", "8"],
        ["--class-mix", "dragon=1"],
        ["--mpp", "9"],
    ],
)
def test_bad_options_exit_2_with_one_line(tmp_path, capsys, argv):
    assert main(["make-sample", str(tmp_path / "x.ome.tif"), "--quiet", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hemascope: error:") and "\n" not in err
    assert not (tmp_path / "x.ome.tif").exists()


def test_unwritable_output_exits_2(tmp_path, capsys):
    (tmp_path / "adir.ome.tif").mkdir()
    assert main(["make-sample", str(tmp_path / "adir.ome.tif"), "--size", "128", "--quiet"]) == 2
    assert "directory" in capsys.readouterr().err


def test_parse_random_stain_shift_is_seeded():
    assert parse_stain_shift("random", 3) == parse_stain_shift("random", 3)
    assert parse_stain_shift("random:0", 3).hue_deg == 0
    assert parse_stain_shift(None, 3) == DomainShift()
    with pytest.raises(InvalidInputError):
        parse_stain_shift("random:x", 3)
