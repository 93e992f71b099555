"""The slide summary the pipeline stores: differential count plus the bag models' predictions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hemascope.classes import RESEARCH_USE_ONLY
from hemascope.classify.decision import POSSIBLE_BLAST
from hemascope.errors import InvalidInputError
from hemascope.progress import CancelToken, ProgressCallback, check_cancelled, report
from hemascope.slide.applicability import applicable_bag_models, resolve_slide_models
from hemascope.slide.bag_model import load_bag_model
from hemascope.slide.differential import DEFAULT_MIN_CELLS, DifferentialCount, differential_count
from hemascope.slide.subtype import SubtypePrediction, predict_subtype


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


def check_bag_models(models: Sequence[str] | str | None, cell_card: object) -> list[str]:
    """Refuse, before any work, bag models that read another cell model's embeddings.

    Parameters
    ----------
    models : sequence of str, str or None
        Bag model names or card paths to run; ``None`` applies the rule of
        :mod:`hemascope.slide.applicability` (every fitting non-demo registry model), ``"none"``
        runs none.
    cell_card : ModelCard
        Card of the cell model that will classify and embed the cells.

    Returns
    -------
    list of str
        The bag models that will run.

    Raises
    ------
    InvalidInputError
        Naming the cell model a named bag model needs.
    """
    return resolve_slide_models(models, cell_card)[0]


def summarize(
    cells_table: pd.DataFrame,
    embeddings: np.ndarray | None = None,
    *,
    models: Sequence[str] | None = None,
    min_cells: int = DEFAULT_MIN_CELLS,
    min_blasts: int | None = None,
    cell_model_sha256: str | None = None,
    cell_model: object = None,
    classes: Sequence[str] | None = None,
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
        Bag models to run side by side (names or card paths; each must fit the embeddings);
        empty for none. ``None`` applies the rule of :mod:`hemascope.slide.applicability`: every
        registry bag model trained on the cell model that made the embeddings (``cell_model``, or
        ``cell_model_sha256``) and not SYNTHETIC/DEMO; with neither given, none.
    min_cells : int, optional
        Minimum-cell rule of the differential count.
    min_blasts : int, optional
        Abstention threshold for every bag model (default: each card's own).
    cell_model_sha256 : str, optional
        sha256 of the cell model that made ``embeddings`` (checked against each bag model's card;
        pass it so that a retrained cell model is never mixed with an older bag model).
    cell_model : ModelCard, optional
        Card of the cell model (its sha256 and classes are used when the others are not given).
    classes : sequence of str, optional
        The cell model's classes (see :func:`~hemascope.slide.differential.differential_count`).
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
    if cell_model is not None:
        cell_model_sha256 = cell_model_sha256 or getattr(cell_model, "sha256", None) or None
        classes = classes if classes is not None else getattr(cell_model, "cell_classes", None)
    if models is None:
        identity = cell_model if cell_model is not None else cell_model_sha256
        models = applicable_bag_models(identity) if identity else []
    # no cells, no embeddings: every model still answers (it abstains: too few cells)
    model_list = list(models) if embeddings is not None or cells_table.empty else []
    total = 1 + len(model_list)
    differential = differential_count(cells_table["class"].astype(str), min_cells=min_cells,
                                      classes=classes, possible_blast=cells_table.get(POSSIBLE_BLAST))
    report(progress, 1, total, "differential count")
    subtypes = []
    for i, name in enumerate(model_list, start=2):
        check_cancelled(cancel)
        bag_model = load_bag_model(name)
        features = embeddings if embeddings is not None else np.zeros((0, bag_model.card.embedding_dim), np.float32)
        subtypes.append(
            predict_subtype(
                cells_table,
                features,
                bag_model,
                min_blasts=min_blasts,
                cell_model_sha256=cell_model_sha256,
            )
        )
        report(progress, i, total, f"bag model {name}")
    return SlideSummary(differential=differential, subtypes=subtypes)
