"""The slide summary the pipeline stores: differential count plus the bag models' predictions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hemascope.classes import RESEARCH_USE_ONLY
from hemascope.errors import HemascopeError, InvalidInputError
from hemascope.progress import CancelToken, ProgressCallback, check_cancelled, report
from hemascope.slide.bag_model import list_bag_models, load_bag_model
from hemascope.slide.differential import DEFAULT_MIN_CELLS, DifferentialCount, differential_count
from hemascope.slide.subtype import (
    SubtypePrediction,
    abstention,
    fits_cell_model,
    predict_subtype,
)

#: Bag models run by default, side by side: gated attention MIL first, mean pooling beside it.
DEFAULT_BAG_MODELS: tuple[str, ...] = ("aml-subtype-demo", "aml-subtype-demo-mean")


@dataclass(frozen=True)
class SlideSummary:
    """Slide-level results.

    Attributes
    ----------
    differential : DifferentialCount
        Counts, percentages, Wilson intervals, blast %, minimum-cell rule.
    subtypes : list of SubtypePrediction
        One prediction (or abstention) per bag model, side by side; empty without embeddings.
    notice : str
        :data:`hemascope.classes.RESEARCH_USE_ONLY`.
    """

    differential: DifferentialCount
    subtypes: list[SubtypePrediction] = field(default_factory=list)
    notice: str = RESEARCH_USE_ONLY

    @property
    def subtype(self) -> SubtypePrediction | None:
        """The primary (first) bag model's prediction, if any."""
        return self.subtypes[0] if self.subtypes else None

    def to_dict(self) -> dict:
        """A JSON-serialisable dictionary."""
        return {
            "differential": self.differential.to_dict(),
            "subtypes": [s.to_dict() for s in self.subtypes],
            "notice": self.notice,
        }


def check_bag_models(models: Sequence[str], cell_card: object) -> None:
    """Refuse, before any work, bag models that read another cell model's embeddings.

    The default models (:data:`DEFAULT_BAG_MODELS`) are exempt: :func:`summarize` makes them
    abstain instead. Models that are not installed are left to fail where they are loaded.

    Parameters
    ----------
    models : sequence of str
        Bag model names or card paths that will run.
    cell_card : ModelCard
        Card of the cell model that will classify and embed the cells.

    Raises
    ------
    InvalidInputError
        Naming the cell model the bag model needs.
    """
    if tuple(models) == DEFAULT_BAG_MODELS:
        return
    for name in models:
        try:
            card = load_bag_model(name).card
        except HemascopeError:
            continue
        if not fits_cell_model(card, getattr(cell_card, "sha256", None)):
            raise InvalidInputError(
                f"bag model {card.name!r} reads the embeddings of cell model "
                f"{card.embedding_model!r} v{card.embedding_version}, not of "
                f"{getattr(cell_card, 'name', '?')!r}; set cell_model = {card.embedding_model!r}"
            )


def summarize(
    cells_table: pd.DataFrame,
    embeddings: np.ndarray | None = None,
    *,
    models: Sequence[str] | None = None,
    min_cells: int = DEFAULT_MIN_CELLS,
    min_blasts: int | None = None,
    cell_model_sha256: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> SlideSummary:
    """Differential count and bag-model predictions of one slide.

    Parameters
    ----------
    cells_table : pandas.DataFrame
        Classified cells (``class`` column, as from ``classify.predict_cells``).
    embeddings : numpy.ndarray, optional
        ``(n_cells, D)`` cell embeddings; without them no subtype is predicted.
    models : sequence of str, optional
        Bag models to run side by side (names or card paths); empty for none. ``None`` (or
        exactly :data:`DEFAULT_BAG_MODELS`) runs the default models that are installed, and a
        default model trained on another cell model's embeddings abstains (with the reason)
        instead of raising; other names must exist and fit the embeddings.
    min_cells : int, optional
        Minimum-cell rule of the differential count.
    min_blasts : int, optional
        Abstention threshold for every bag model (default: each card's own).
    cell_model_sha256 : str, optional
        sha256 of the cell model that made ``embeddings`` (checked against each bag model's card;
        pass it so that a retrained cell model is never mixed with an older bag model).
    progress, cancel : optional
        Progress callback and cancel token (see :mod:`hemascope.progress`).

    Returns
    -------
    SlideSummary
        The differential and one :class:`SubtypePrediction` per model.

    Raises
    ------
    InvalidInputError
        If the table has no ``class`` column, or the embeddings do not fit (see
        :func:`~hemascope.slide.subtype.predict_subtype`).
    """
    if not isinstance(cells_table, pd.DataFrame) or "class" not in cells_table.columns:
        raise InvalidInputError("summarize needs a cell table with a 'class' column")
    lenient = models is None or tuple(models) == DEFAULT_BAG_MODELS
    if lenient:
        installed = set(list_bag_models())
        models = [name for name in DEFAULT_BAG_MODELS if name in installed]
    model_list = list(models) if embeddings is not None else []
    total = 1 + len(model_list)
    differential = differential_count(cells_table["class"].astype(str), min_cells=min_cells)
    report(progress, 1, total, "differential count")
    subtypes = []
    for i, name in enumerate(model_list, start=2):
        check_cancelled(cancel)
        bag_model = load_bag_model(name)
        width = np.shape(embeddings)[1] if np.ndim(embeddings) == 2 else None
        fits = fits_cell_model(bag_model.card, cell_model_sha256)
        if lenient and (width != bag_model.card.embedding_dim or not fits):
            reason = (
                f"not applicable: {name} needs embeddings of cell model "
                f"{bag_model.card.embedding_model!r} ({bag_model.card.embedding_dim} features)"
            )
            subtypes.append(abstention(bag_model.card, cells_table, reason))
        else:
            subtypes.append(
                predict_subtype(
                    cells_table,
                    embeddings,
                    bag_model,
                    min_blasts=min_blasts,
                    cell_model_sha256=cell_model_sha256,
                )
            )
        report(progress, i, total, f"bag model {name}")
    return SlideSummary(differential=differential, subtypes=subtypes)
