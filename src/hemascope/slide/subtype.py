"""Slide-level (genetic subtype) prediction from the bag of a slide's cells, with abstention.

:func:`predict_subtype` selects the bag (blasts, or all cells, as the model's card says), refuses
to guess below the model's minimum number of cells ("too few blasts"), and otherwise returns the
calibrated class probabilities and the most-attended cells, to be reviewed in the gallery.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hemascope.classes import RESEARCH_USE_ONLY
from hemascope.errors import InvalidInputError
from hemascope.models.card import ModelCard
from hemascope.slide.bag import check_embeddings, check_single_scale, select_instances
from hemascope.slide.bag_model import BagModel, load_bag_model

if TYPE_CHECKING:
    import torch

DEFAULT_TOP_K = 8


@dataclass(frozen=True)
class SubtypePrediction:
    """The bag model's answer for one slide (or bag).

    Attributes
    ----------
    model, version : str
        Bag model name and version.
    demo : bool
        True for a synthetic/demo model.
    classes : list of str
        Bag classes in model order.
    probabilities : dict of str to float
        Calibrated class probabilities (NaN when abstained).
    label : str or None
        Predicted class, None when abstained.
    abstained : bool
        True when the model refused to guess.
    reason : str
        Why it abstained ("" otherwise).
    n_cells, n_instances, min_instances : int
        Cells given, cells in the bag, and the abstention threshold.
    instances : str
        Which cells form the bag (``"blast"`` or ``"all"``).
    top_cells : list
        Ids (``id`` column, else index labels) of the most-attended cells for the predicted class,
        most attended first.
    top_indices : list of int
        Their row positions in the cell table.
    top_weights : list of float
        Their attention weights.
    caption : str
        Model name, version, demo flag and the research-use notice, for every figure.
    notice : str
        :data:`hemascope.classes.RESEARCH_USE_ONLY`.
    """

    model: str
    version: str
    demo: bool
    classes: list[str]
    probabilities: dict[str, float]
    label: str | None
    abstained: bool
    reason: str
    n_cells: int
    n_instances: int
    min_instances: int
    instances: str
    top_cells: list = field(default_factory=list)
    top_indices: list[int] = field(default_factory=list)
    top_weights: list[float] = field(default_factory=list)
    caption: str = ""
    question: str = ""
    notice: str = RESEARCH_USE_ONLY

    def to_dict(self) -> dict:
        """A JSON-serialisable dictionary (NaN written as ``None``)."""
        probs = {k: (None if math.isnan(v) else v) for k, v in self.probabilities.items()}
        return {
            "model": self.model,
            "version": self.version,
            "demo": self.demo,
            "classes": list(self.classes),
            "probabilities": probs,
            "label": self.label,
            "abstained": self.abstained,
            "reason": self.reason,
            "n_cells": self.n_cells,
            "n_instances": self.n_instances,
            "min_instances": self.min_instances,
            "instances": self.instances,
            "top_cells": [c.item() if hasattr(c, "item") else c for c in self.top_cells],
            "top_indices": list(self.top_indices),
            "top_weights": list(self.top_weights),
            "caption": self.caption,
            "question": self.question,
            "notice": self.notice,
        }


def fits_cell_model(card: ModelCard, cell_model_sha256: str | None) -> bool:
    """False when both the card and the caller name a cell model (sha256) and they differ."""
    return not (cell_model_sha256 and card.embedding_sha256) or (
        cell_model_sha256 == card.embedding_sha256
    )


def _common(
    card: ModelCard, cells_table: pd.DataFrame, n_instances: int, min_instances: int
) -> dict:
    return {
        "model": card.name,
        "version": card.version,
        "demo": card.demo,
        "classes": list(card.classes),
        "n_cells": len(cells_table),
        "n_instances": int(n_instances),
        "min_instances": int(min_instances),
        "instances": card.instances,
        "caption": card.caption,
        "question": card.question,
    }


def _bag_vector(bag_model: BagModel, features: np.ndarray) -> torch.Tensor | None:
    """The unstandardised bag vector a grouped model reads (``None`` for other models)."""
    module = bag_model.module
    if not all(hasattr(module, a) for a in ("bag_features", "feature_mean", "feature_std")):
        return None
    import torch

    device = next(iter(module.parameters())).device
    with torch.no_grad():
        return module.bag_features(torch.as_tensor(np.asarray(features, dtype=np.float32), device=device)[None])[0]


def _rms_distance(bag_model: BagModel, vector: torch.Tensor) -> float:
    """RMS of ``vector`` standardised with the model's training-bag statistics."""
    module = bag_model.module
    return float(((vector - module.feature_mean) / module.feature_std).pow(2).mean().sqrt())


def bag_distance(bag_model: BagModel, features: np.ndarray) -> float | None:
    """How far a bag lies from the training bags: RMS of its standardised bag vector.

    A grouped model (:class:`hemascope.models.mil.GroupedMeanBagClassifier`) standardises each
    bag's vector (per-group mean embeddings and shares) with the mean and standard deviation of
    its training bags; the root mean square of that standardised vector is about 1 for a bag
    like them and grows with every feature the bag holds outside their range. ``None`` for
    models without bag vectors.
    """
    vector = _bag_vector(bag_model, features)
    return None if vector is None else _rms_distance(bag_model, vector)


def _group_name(groups: list[list[str]], g: int) -> str:
    """How a reason names group ``g``: its classes, or "other than <first group>" for the rest."""
    if g > 0 and len(groups) == 2:
        return "other than " + "/".join(groups[0])
    return "/".join(groups[g])


def unlike_training_bags(bag_model: BagModel, features: np.ndarray) -> str:
    """Why a bag is unlike the model's training bags ("" when it is not).

    Two checks, each on when the card's ``domain_reference`` calibrates it:

    - ``min_group_shares``: a grouped model (:class:`hemascope.models.mil.GroupedMeanBagClassifier`)
      reads the mean embedding and the share of the cells of each group (for ``apl``: the blast-
      and promyelocyte-like cells, and the others). A bag with fewer cells of a group than every
      training bag asks the model to extrapolate: a normal blood smear (almost no blast-like
      cells) or a lymphoblastic leukaemia (almost nothing else) shown to a model trained on AML.
    - ``max_bag_distance``: a bag whose standardised bag vector (:func:`bag_distance`) lies
      further out than any training bag did when left out of the statistics, e.g. the blasts of
      another leukaemia, another stain or another scanner: the model's answer there is an
      extrapolation, however confident.
    """
    reference = bag_model.card.domain_reference or {}
    vector = _bag_vector(bag_model, features)
    if vector is None:
        return ""
    groups = bag_model.card.arch_params.get("groups", [])
    floors = reference.get("min_group_shares")
    if floors is not None:
        n_groups = bag_model.module.group_matrix.shape[0]
        shares = vector[-n_groups:].tolist()  # the bag vector ends with the groups' shares
        for g, (share, floor) in enumerate(zip(shares, floors, strict=False)):
            if share < float(floor):
                name = _group_name(groups, g) if g < len(groups) else f"group {g + 1}"
                return (
                    f"unlike the training patients: {share:.1%} of the cells look {name}, fewer "
                    f"than in any bag the model was trained on (>= {float(floor):.1%})"
                )
    if reference.get("max_bag_distance") is None:
        return ""
    limit = float(reference["max_bag_distance"])
    distance = _rms_distance(bag_model, vector)
    if distance > limit:
        return (
            f"unlike the training patients: the cells' profile lies {distance:.1f} standard "
            f"deviations (RMS) from theirs, further than any of them ({limit:.1f})"
        )
    return ""


def abstention(
    card: ModelCard,
    cells_table: pd.DataFrame,
    reason: str,
    *,
    n_instances: int = 0,
    min_instances: int | None = None,
) -> SubtypePrediction:
    """An explicit abstention of the bag model ``card`` on a slide, with its reason.

    Parameters
    ----------
    card : ModelCard
        The bag model that abstains.
    cells_table : pandas.DataFrame
        The slide's cells (for the counts).
    reason : str
        Why (e.g. "too few blasts: 3 in the bag, at least 10 needed").
    n_instances : int, optional
        Cells in the bag.
    min_instances : int, optional
        Threshold applied (default: the card's).

    Returns
    -------
    SubtypePrediction
        ``abstained=True``, ``label=None``, NaN probabilities.
    """
    threshold = card.min_instances if min_instances is None else min_instances
    return SubtypePrediction(
        probabilities={c: float("nan") for c in card.classes},
        label=None,
        abstained=True,
        reason=reason,
        **_common(card, cells_table, n_instances, threshold),
    )


def predict_subtype(
    cells_table: pd.DataFrame,
    embeddings: np.ndarray,
    model: str | BagModel = "aml-subtype-demo",
    *,
    min_blasts: int | None = None,
    min_confidence: float = 0.0,
    top_k: int = DEFAULT_TOP_K,
    cell_model_sha256: str | None = None,
) -> SubtypePrediction:
    """Predict the slide label from the bag of its cells, or abstain.

    Parameters
    ----------
    cells_table : pandas.DataFrame
        One row per cell (needs ``class`` when the model bags blasts; an ``mpp`` column, when
        present, must hold one scale; an ``id`` column, when present, names the top cells).
    embeddings : numpy.ndarray
        ``(n_cells, D)`` embeddings from the cell model named in the bag model's card.
    model : str or BagModel, optional
        Bundled bag-model name, card path, or a loaded :class:`BagModel`.
    min_blasts : int, optional
        Abstain below this many cells in the bag (default: the card's ``min_instances``).
    min_confidence : float, optional
        Also abstain when the top probability is below this (default 0: off).
    top_k : int, optional
        How many most-attended cells to return.
    cell_model_sha256 : str, optional
        sha256 of the cell model that made ``embeddings``; refused when the card names another.

    Returns
    -------
    SubtypePrediction
        Probabilities and label, or an explicit abstention with its reason.

    Raises
    ------
    InvalidInputError
        On embeddings that do not match the table or the model (size, or ``cell_model_sha256``),
        a table without classes, or a bag mixing scales.
    """
    bag_model = model if isinstance(model, BagModel) else load_bag_model(model)
    card = bag_model.card
    if cell_model_sha256 is not None and not fits_cell_model(card, cell_model_sha256):
        raise InvalidInputError(
            f"bag model {card.name!r} was trained on embeddings of cell model "
            f"{card.embedding_model!r} v{card.embedding_version} ({card.embedding_sha256[:12]}), "
            f"not of the cell model {cell_model_sha256[:12]}"
        )
    if not isinstance(cells_table, pd.DataFrame):
        raise InvalidInputError("cells_table must be a pandas DataFrame (one row per cell)")
    features = check_embeddings(embeddings, len(cells_table), card.embedding_dim)
    if "mpp" in cells_table.columns:
        check_single_scale(cells_table["mpp"].to_numpy(dtype=float), bag="the slide")
    threshold = card.min_instances if min_blasts is None else int(min_blasts)
    if threshold < 1:
        raise InvalidInputError(f"min_blasts must be >= 1, got {threshold}")
    positions = select_instances(cells_table, card.instances)
    noun = "blasts" if card.instances == "blast" else "cells"
    if positions.size < threshold:
        reason = f"too few {noun}: {positions.size} in the bag, at least {threshold} needed"
        return abstention(
            card, cells_table, reason, n_instances=positions.size, min_instances=threshold
        )
    unlike = unlike_training_bags(bag_model, features[positions])
    if unlike:
        return abstention(
            card, cells_table, unlike, n_instances=positions.size, min_instances=threshold
        )
    probs, weights = bag_model.predict(features[positions])
    best = int(np.argmax(probs))
    if probs[best] < min_confidence:
        reason = f"low confidence: top probability {probs[best]:.2f} < {min_confidence:.2f}"
        return abstention(
            card, cells_table, reason, n_instances=positions.size, min_instances=threshold
        )
    common = _common(card, cells_table, positions.size, threshold)
    order = np.argsort(-weights[:, best], kind="stable")[: max(0, top_k)]
    rows = positions[order]
    ids = (
        cells_table["id"].to_numpy()
        if "id" in cells_table.columns
        else cells_table.index.to_numpy()
    )
    return SubtypePrediction(
        probabilities={c: float(p) for c, p in zip(card.classes, probs, strict=True)},
        label=card.classes[best],
        abstained=False,
        reason="",
        top_cells=[ids[r] for r in rows],
        top_indices=[int(r) for r in rows],
        top_weights=[float(weights[o, best]) for o in order],
        **common,
    )
