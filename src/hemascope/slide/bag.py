"""Which cells of a slide form the bag, and checks that a bag is usable.

Shared by prediction (:mod:`hemascope.slide.subtype`) and training (:mod:`hemascope.train.bags_data`)
so both build bags the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from hemascope.errors import InvalidInputError
from hemascope.models.card import (
    parse_instances as parse_instances,  # the selection syntax of a card
)

#: Relative spread of µm/px values above which a bag counts as mixing scales.
SCALE_TOLERANCE = 0.05


def check_embeddings(embeddings: np.ndarray, n_cells: int, dim: int | None = None) -> np.ndarray:
    """Validate cell embeddings and return them as ``float32`` ``(n_cells, D)``.

    Parameters
    ----------
    embeddings : array_like
        One embedding per cell.
    n_cells : int
        Number of cells (rows of the cell table).
    dim : int, optional
        Required embedding size (the bag model's ``embedding_dim``).

    Returns
    -------
    numpy.ndarray
        The embeddings as ``float32``.

    Raises
    ------
    InvalidInputError
        On a wrong shape, a wrong size or non-finite values.
    """
    array = np.asarray(embeddings, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] != n_cells:
        raise InvalidInputError(
            f"embeddings must be (n_cells, dim) = ({n_cells}, D), got shape {array.shape}"
        )
    if dim is not None and array.shape[1] != dim:
        raise InvalidInputError(
            f"embeddings have {array.shape[1]} features but the bag model expects {dim}: "
            "they come from a different cell model than the one it was trained on"
        )
    if not np.isfinite(array).all():
        raise InvalidInputError("embeddings contain NaN or infinite values")
    return array


def check_single_scale(mpps: Sequence[float] | np.ndarray, *, bag: str = "bag") -> float | None:
    """Refuse a bag whose cells were imaged at different scales.

    Parameters
    ----------
    mpps : sequence of float
        µm/px of each cell's source image (NaN = unknown).
    bag : str, optional
        Name of the bag, for the message.

    Returns
    -------
    float or None
        The common µm/px, or None when unknown.

    Raises
    ------
    InvalidInputError
        If the known values differ by more than :data:`SCALE_TOLERANCE` (relative).
    """
    values = np.asarray(mpps, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    low, high = float(values.min()), float(values.max())
    if low <= 0:
        raise InvalidInputError(f"{bag}: µm/px must be positive, got {low}")
    if (high - low) / low > SCALE_TOLERANCE:
        raise InvalidInputError(
            f"{bag} mixes scales: cells imaged at {low:.3g} to {high:.3g} µm/px; "
            "a bag must come from one magnification"
        )
    return float(np.median(values))


def instances_noun(instances: str) -> str:
    """How messages name the cells of a bag: ``"cells"``, ``"blasts"`` or ``"blast+ig cells"``."""
    if instances == "all":
        return "cells"
    return "blasts" if instances == "blast" else f"{instances} cells"


def select_instances(cells: pd.DataFrame, instances: str) -> np.ndarray:
    """Row positions of the cells that form the bag.

    Parameters
    ----------
    cells : pandas.DataFrame
        Cell table; needs a ``class`` column unless ``instances == "all"``.
    instances : str
        ``"all"``, ``"blast"`` (cells classified as blasts) or classes joined with ``+``
        (see :func:`parse_instances`).

    Returns
    -------
    numpy.ndarray
        Integer positions (``iloc``) of the selected cells.

    Raises
    ------
    InvalidInputError
        If the table lacks the ``class`` column needed to select cells, or ``instances`` is
        malformed.
    """
    classes = parse_instances(instances)
    if classes is None:
        return np.arange(len(cells))
    if "class" not in cells.columns:
        raise InvalidInputError(
            "the cell table has no 'class' column: classify the cells before building a bag of "
            f"{instances_noun(instances)}"
        )
    return np.flatnonzero(np.isin(cells["class"].astype(str).to_numpy(), classes))
