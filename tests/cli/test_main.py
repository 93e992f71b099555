"""The CLI contract: every subcommand has --help; bad input is one line and exit code 2."""

import subprocess
import sys

import pytest

from hemascope.cli.main import _command_modules, build_parser, main


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert "hemascope" in capsys.readouterr().out


@pytest.mark.parametrize("module", _command_modules(), ids=lambda m: " ".join(m.COMMAND))
def test_every_subcommand_has_help(module, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*module.COMMAND, "--help"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip()
    assert (module.__doc__ or "").strip(), "every command module has a docstring"


def test_parser_builds():
    assert build_parser().prog == "hemascope"


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "hemascope.cli.main", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "COMMAND" in out.stdout


def test_analyze_line_says_how_many_possible_blasts_and_the_blast_percentage_with_them():
    import pandas as pd

    from hemascope.cli.analyze import slide_line
    from hemascope.distributed import SUMMARY_COLUMNS

    row = dict.fromkeys(SUMMARY_COLUMNS)
    row.update(slide="s.tif", status="done", n_cells=12, blast_percent=10.0, possible_blasts=2,
               blast_percent_with_possible=30.0, out_dir="out/s")
    line = slide_line(next(pd.DataFrame([row]).itertuples()))
    assert "blasts 10.0% (+2 possible: up to 30.0%)" in line
    row.update(possible_blasts=0, blast_percent_with_possible=10.0)
    assert "possible" not in slide_line(next(pd.DataFrame([row]).itertuples()))
    # no cell counted (the one cell flagged was called unclassified): no blast %, the flag still said
    row.update(n_cells=1, blast_percent=None, possible_blasts=1, blast_percent_with_possible=100.0)
    line = slide_line(next(pd.DataFrame([row]).itertuples()))
    assert line == "done    s.tif: 1 cells, 1 possible blast -> out/s"
