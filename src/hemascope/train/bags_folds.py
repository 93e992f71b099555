"""Patient (bag) fold lists for repeated stratified k-fold cross-validation, and their CSV.

The lists are saved (e.g. ``benchmarks/slide_splits/deepapl_cv_folds.csv``) so that every variant
of a benchmark, and a later retraining, use exactly the same patients in each fold.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hemascope.csv_files import read_csv_file
from hemascope.errors import DataError, InvalidInputError
from hemascope.train.bags_data import Bag


def parse_cv(text: str) -> tuple[int, int]:
    """``"5x5"`` → ``(repeats, folds)``.

    Raises
    ------
    InvalidInputError
        Unless two integers (repeats >= 1, folds >= 2) joined by ``x``.
    """
    try:
        repeats, folds = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise InvalidInputError(
            f"cross-validation must read REPEATSxFOLDS (e.g. 5x5), got {text!r}"
        ) from None
    if repeats < 1 or folds < 2:
        raise InvalidInputError(f"cross-validation needs >= 1 repeat and >= 2 folds, got {text!r}")
    return repeats, folds


def make_folds(
    names: Sequence[str], labels: Sequence[str], repeats: int, folds: int, *, seed: int = 0
) -> pd.DataFrame:
    """Stratified fold of every bag in each repeat (reproducible from ``seed``).

    Returns
    -------
    pandas.DataFrame
        ``bag``, ``label``, ``repeat``, ``fold``.

    Raises
    ------
    InvalidInputError
        If a class has fewer bags than folds.
    """
    bag_labels = np.asarray([str(v) for v in labels])
    counts = pd.Series(bag_labels).value_counts()
    if counts.min() < folds:
        raise InvalidInputError(
            f"{folds}-fold cross-validation needs >= {folds} bags per class; "
            f"{counts.idxmin()!r} has {int(counts.min())}"
        )
    rows = []
    for repeat in range(repeats):
        rng = np.random.default_rng([seed, repeat])
        fold = np.zeros(len(bag_labels), dtype=np.int64)
        for label in sorted(counts.index):
            members = np.flatnonzero(bag_labels == label)
            fold[rng.permutation(members)] = np.arange(members.size) % folds
        rows.append(
            pd.DataFrame({"bag": list(names), "label": bag_labels, "repeat": repeat, "fold": fold})
        )
    return pd.concat(rows, ignore_index=True)


def read_folds(path: str | Path, bags: Sequence[Bag]) -> pd.DataFrame:
    """Read fold lists saved by :func:`make_folds` and check they cover exactly ``bags``.

    Raises
    ------
    DataError
        Missing columns, or bags missing from / unknown to the file.
    """
    table = read_csv_file(path, dtype={"bag": str})
    if not {"bag", "repeat", "fold"} <= set(table.columns):
        raise DataError(f"folds {path} need the columns bag, repeat, fold")
    names = {b.name for b in bags}
    listed = set(table["bag"])
    if names != listed:
        raise DataError(
            f"folds {path} do not match the bags: missing {sorted(names - listed)[:5]}, "
            f"unknown {sorted(listed - names)[:5]}"
        )
    labels = {b.name: str(b.label) for b in bags}
    table["label"] = table["bag"].map(labels)
    return table[["bag", "label", "repeat", "fold"]]
