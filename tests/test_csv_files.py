"""A lab's CSV as a spreadsheet saved it: separators, byte-order mark, Windows encoding."""

from __future__ import annotations

import pandas as pd
import pytest

from hemascope.csv_files import read_csv_file, sniff_delimiter
from hemascope.errors import DataError
from hemascope.train.bags_data import read_bag_labels
from hemascope.train.datasets import read_cell_table

ROWS = {"path": ["cells/a.png", "cells/b.png"], "class": ["Neutrophil", "Lymphocyte"]}


@pytest.mark.parametrize(
    ("sep", "encoding"),
    [(",", "utf-8"), (";", "utf-8-sig"), ("\t", "utf-8"), (";", "cp1252"), ("|", "utf-8")],
)
def test_spreadsheet_csvs_read_as_the_same_table(tmp_path, sep, encoding):
    path = tmp_path / "labels.csv"
    table = pd.DataFrame({**ROWS, "note": ["é", "µm"]})
    table.to_csv(path, sep=sep, index=False, encoding=encoding)
    read = read_csv_file(path)
    assert list(read.columns) == ["path", "class", "note"]
    assert read["class"].tolist() == ROWS["class"] and read["note"].tolist() == ["é", "µm"]


def test_the_separator_is_the_header_s_and_a_one_column_file_is_comma_separated():
    assert sniff_delimiter("\n\npath;class\na,b;c\n") == ";"
    assert sniff_delimiter("path\nx\n") == ","
    assert sniff_delimiter("") == ","


def test_unreadable_and_missing_files_are_one_data_error(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        read_csv_file(tmp_path / "missing.csv")
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(DataError, match="not a readable CSV"):
        read_csv_file(tmp_path / "empty.csv")


def test_cell_lists_and_bag_labels_from_excel_in_a_comma_decimal_locale(tmp_path):
    # Excel where the decimal mark is a comma writes ';'-separated CSV, Windows-1252, header
    # cells sometimes padded: `train cells` used to stop at "CSV needs a path column"
    (tmp_path / "cells").mkdir()
    path = tmp_path / "cells.csv"
    path.write_bytes("Path ; Class;mpp\ncells/a.png;Neutrophil;0,1\n".encode("cp1252"))
    table = read_cell_table(path, mpp=None)
    assert table.loc[0, "class"] == "Neutrophil"
    assert table.loc[0, "path"] == str(tmp_path / "cells" / "a.png")
    (tmp_path / "P1").mkdir()
    (tmp_path / "P2").mkdir()
    labels = tmp_path / "labels.csv"
    labels.write_bytes("\ufeffbag;diagnosis\nP1;APL\nP2;AML\n".encode())
    bags, _ = read_bag_labels(labels, classes=["APL", "AML"])
    assert dict(zip(bags["bag"], bags["label"], strict=True)) == {"P1": "APL", "P2": "AML"}
