"""Reading the CSV files users bring (cell lists, bag labels) as spreadsheets save them.

A lab's list of labelled cells often comes out of Excel or LibreOffice: separated by semicolons
(the default where the decimal mark is a comma), by tabs, or by commas; encoded as UTF-8 with or
without a byte-order mark, or as Windows-1252. :func:`read_csv_file` reads all of these the same,
so ``hemascope train cells --train labels.csv`` does not stop at "CSV lacks a path column" because
the columns were ``path;class``.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pandas as pd

from hemascope.errors import DataError

#: Separators recognised in a CSV's header line (the one it holds most of is used).
DELIMITERS = (",", ";", "\t", "|")

#: A number written with a decimal comma (``0,105``), as semicolon-separated files write them.
_DECIMAL_COMMA = re.compile(r"^\s*[+-]?\d+,\d+\s*$")

#: Text encodings tried in order (Latin-1 decodes any bytes, so reading never fails on them).
ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")


def decode_text(data: bytes) -> str:
    """``data`` decoded with the first of :data:`ENCODINGS` that fits (a UTF-8 BOM is dropped)."""
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes any bytes")  # pragma: no cover


def sniff_delimiter(text: str) -> str:
    """The separator of a CSV: the one of :data:`DELIMITERS` its first non-empty line holds most of."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    counts = {sep: header.count(sep) for sep in DELIMITERS}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def read_csv_file(path: str | Path, **read_csv: Any) -> pd.DataFrame:
    """Read a user's CSV whatever its separator (``,`` ``;`` tab ``|``) and encoding.

    Parameters
    ----------
    path
        The file.
    **read_csv
        Passed to :func:`pandas.read_csv` (``dtype``, ...).

    Returns
    -------
    pandas.DataFrame
        The table; column names stripped of surrounding spaces; in a file not separated by commas,
        text columns whose every value is a number with a decimal comma read as numbers (unless
        ``dtype`` names the column).

    Raises
    ------
    DataError
        The file cannot be read or parsed as a table.
    """
    path = Path(path)
    try:
        text = decode_text(path.read_bytes())
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    sep = sniff_delimiter(text)
    try:
        table = pd.read_csv(io.StringIO(text), sep=sep, **read_csv)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise DataError(f"{path}: not a readable CSV ({exc})") from None
    table = table.rename(columns=lambda name: name.strip() if isinstance(name, str) else name)
    typed = read_csv.get("dtype")
    if sep != "," and not (typed is not None and not isinstance(typed, dict)):
        for column in (c for c in table.columns if c not in (typed or {})):
            values = table[column].dropna()
            if len(values) and values.map(lambda v: bool(_DECIMAL_COMMA.match(str(v)))).all():
                table[column] = values.str.replace(",", ".").astype(float).reindex(table.index)
    return table
