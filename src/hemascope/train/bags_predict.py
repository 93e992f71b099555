"""Slide-level predictions for bags on disk: what ``hemascope predict-bags`` computes.

Each source (a patient's folder of single-cell crops, a folder of fields, a field or slide image,
or a saved analysis) becomes one row: the bag model's label and calibrated probabilities, or an
explicit abstention with its reason — too few cells, a scale that could not be estimated, a
domain shift reported by the classifier, an unreadable bag. The run goes on past a failed bag.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hemascope.classes import RESEARCH_USE_ONLY
from hemascope.errors import HemascopeError, InvalidInputError
from hemascope.models.card import ModelCard
from hemascope.models.registry import LoadedModel
from hemascope.progress import CancelToken, ProgressCallback, check_cancelled, report
from hemascope.slide.bag_model import BagModel
from hemascope.train.bags_sources import cells_of_source

#: Prefix of the ``reason`` of a bag that could not be read (the CLI lists those as failed).
ERROR_PREFIX = "error: "

#: Cells named in the ``top_cells`` column (the cells that drove the call, most weighted first).
TOP_CELLS = 5


def check_cell_model(bag_card: ModelCard, cell_model: LoadedModel) -> None:
    """Refuse a cell model other than the one whose embeddings the bag model was trained on.

    Raises
    ------
    InvalidInputError
        If the sha256 (or, without one, the name) differs.
    """
    card = cell_model.card
    same = (
        card.sha256 == bag_card.embedding_sha256
        if bag_card.embedding_sha256 and card.sha256
        else card.name == bag_card.embedding_model
    )
    if not same:
        raise InvalidInputError(
            f"bag model {bag_card.name!r} was trained on embeddings of cell model "
            f"{bag_card.embedding_model!r} v{bag_card.embedding_version or '?'}, not {cell_model.label}"
        )


def _domain_shift_reason(shift: object) -> str:
    """The abstention reason when the classifier's domain-shift guard flags the bag, else ""."""
    if shift is None:
        return ""
    flagged = bool(getattr(shift, "shifted", getattr(shift, "out_of_domain", False)))
    if not flagged:
        return ""
    score = getattr(shift, "score", None)
    detail = getattr(shift, "reason", "") or (f"score {score:.2f}" if score is not None else "")
    return f"out of domain: the cells look unlike the cell model's training data ({detail})"


def _cell_names(table: pd.DataFrame, rows: Sequence[int]) -> str:
    column = next((c for c in ("path", "image", "id") if c in table.columns), None)
    if column is None:
        return ""
    names = table[column].astype(str).to_numpy()
    return ";".join(Path(names[r]).name if column == "path" else names[r] for r in rows)


def predict_bag(
    source: str | Path,
    bag_model: BagModel,
    cell_model: LoadedModel,
    *,
    mpp: float | None = None,
    min_blasts: int | None = None,
    device: str = "auto",
    segmenter: str = "classical",
    input_mode: str = "auto",
    cancel: CancelToken | None = None,
) -> dict:
    """One output row for one bag source (see :func:`predict_bag_sources` for the columns).

    Raises
    ------
    HemascopeError
        When the bag cannot be read (callers turn it into an ``error:`` row).
    """
    from hemascope.slide.subtype import predict_subtype

    card = bag_model.card
    table, emb = cells_of_source(
        source,
        cell_model,
        mpp=mpp,
        device=device,
        segmenter=segmenter,
        input_mode=input_mode,
        cancel=cancel,
    )
    info = table.attrs
    n_blasts = int((table["class"].astype(str) == "blast").sum()) if len(table) else 0
    if len(table) == 0:
        emb = np.zeros((0, card.embedding_dim), np.float32)
    pred = predict_subtype(table, emb, bag_model, min_blasts=min_blasts, top_k=TOP_CELLS)
    row = {
        "predicted": pred.label or "",
        **{f"prob_{c}": p for c, p in pred.probabilities.items()},
        "n_cells": len(table),
        "n_blasts": n_blasts,
        "n_instances": pred.n_instances,
        "abstained": pred.abstained,
        "reason": pred.reason,
        "top_cells": _cell_names(table, pred.top_indices),
    }
    shift = _domain_shift_reason(info.get("domain_shift"))
    if shift and not pred.abstained:
        row.update(predicted="", abstained=True, reason=shift)
        row.update({f"prob_{c}": float("nan") for c in card.classes})
    row.update(
        input=info.get("input", ""),
        mpp=info.get("mpp") if info.get("mpp") is not None else float("nan"),
        mpp_source=info.get("mpp_source", ""),
    )
    return row


def predict_bag_sources(
    sources: Sequence[str | Path],
    bag_model: BagModel,
    cell_model: LoadedModel,
    *,
    mpp: float | None = None,
    min_blasts: int | None = None,
    device: str = "auto",
    segmenter: str = "classical",
    input_mode: str = "auto",
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> pd.DataFrame:
    """Predict the label of each bag source; one row per bag, going on past unreadable bags.

    Parameters
    ----------
    sources : sequence of str or Path
        Folders of single-cell crops (one patient each), folders of fields, field/slide images or
        saved analyses.
    bag_model : BagModel
        The bag model.
    cell_model : LoadedModel
        The cell model it was trained on (checked).
    mpp, device, segmenter, input_mode : optional
        See :func:`~hemascope.train.bags_sources.cells_of_source`.
    min_blasts : int, optional
        Abstention threshold (default: the card's ``min_instances``).
    progress, cancel : optional
        See :mod:`hemascope.progress`.

    Returns
    -------
    pandas.DataFrame
        Columns ``bag``, ``predicted``, ``prob_<class>``..., ``n_cells``, ``n_blasts``,
        ``n_instances``, ``abstained``, ``reason``, ``top_cells`` (the cells that weighed most in
        the call), ``input`` (crops/fields/analysis), ``mpp`` and ``mpp_source``
        (given/estimated/per image/saved), ``model``, ``notice``. A bag that cannot be read
        abstains with ``error: ...`` as its reason.
    """
    check_cell_model(bag_model.card, cell_model)
    card = bag_model.card
    rows = []
    for i, source in enumerate(sources):
        check_cancelled(cancel)
        row: dict = {"bag": str(source)}
        try:
            row.update(
                predict_bag(
                    source,
                    bag_model,
                    cell_model,
                    mpp=mpp,
                    min_blasts=min_blasts,
                    device=device,
                    segmenter=segmenter,
                    input_mode=input_mode,
                    cancel=cancel,
                )
            )
        except HemascopeError as exc:
            row.update(
                predicted="",
                **{f"prob_{c}": float("nan") for c in card.classes},
                n_cells=0,
                n_blasts=0,
                n_instances=0,
                abstained=True,
                reason=f"{ERROR_PREFIX}{exc}",
                top_cells="",
                input="",
                mpp=mpp or float("nan"),
                mpp_source="given" if mpp else "",
            )
        row.update(model=card.display_name, notice=RESEARCH_USE_ONLY)
        rows.append(row)
        report(progress, i + 1, len(sources), Path(source).name)
    return pd.DataFrame(rows)
