"""Cell-table exports: CSV and Parquet, chosen by the file suffix, written atomically."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hemascope.files import atomic_write_table


def write_cell_table(path: str | Path, cells: pd.DataFrame) -> Path:
    """Write a cell table as ``.csv`` or ``.parquet`` (atomically).

    Parameters
    ----------
    path
        Destination; the suffix (``.csv`` or ``.parquet``) picks the format.
    cells
        The cell table (one row per cell).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ResultError
        For any other suffix.
    """
    return atomic_write_table(path, cells)


__all__ = ["write_cell_table"]
