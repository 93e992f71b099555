"""Repeated, stratified, patient-level cross-validation of bag models and of per-patient scores.

With a few dozen patients a single train/validation/test split says little; the seed papers'
cohorts (DeepAPL: 82 patients) are judged by repeated k-fold cross-validation over *bags*
(patients), never over cells. :func:`cross_validate` trains one bag model per fold (fixed epochs, no
peeking at the held-out fold), keeps every patient's out-of-fold probabilities, calibrates them by a
*cross-fitted* temperature (fold ``f``'s temperature is fitted on the out-of-fold logits of the
other folds of the same repeat) and measures accuracy against the number of cells per bag by
sub-sampling the held-out bags. :func:`cross_validate_scores` does the same for one number per
patient (e.g. the proportion of promyelocytes) through a one-feature logistic regression, so the
clinicians' baseline sits beside the models with the same folds and metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from hemascope.classify.calibration import fit_temperature
from hemascope.errors import InvalidInputError
from hemascope.progress import CancelToken, ProgressCallback, check_cancelled, report
from hemascope.train.bags_cv_metrics import repeated_metrics
from hemascope.train.bags_data import Bag, bag_targets
from hemascope.train.bags_folds import make_folds, parse_cv, read_folds

__all__ = ["CrossValidation", "cross_validate", "make_folds", "parse_cv", "read_folds"]
from hemascope.train.mil_training import bag_logits, train_bag_model

#: Cells per bag of the accuracy-vs-size curve (bags smaller than a size are used whole).
CV_CURVE_SIZES: tuple[int, ...] = (1, 2, 5, 10, 20, 30, 50, 75, 100, 150)

#: Random sub-bags per held-out bag and size.
CV_CURVE_DRAWS = 3


@dataclass
class CrossValidation:
    """Out-of-fold results of a repeated k-fold cross-validation.

    Attributes
    ----------
    classes : list of str
        Bag classes; ``positive`` is the one whose probability the binary metrics read.
    positive : str
        The positive class (e.g. ``"APL"``).
    folds : pandas.DataFrame
        ``bag``, ``label``, ``repeat``, ``fold``: the patient split lists.
    predictions : pandas.DataFrame
        One row per bag and repeat: ``bag``, ``label``, ``repeat``, ``fold``, ``n_instances``,
        ``prob_<class>`` (cross-fitted calibration), ``logit_<class>``.
    metrics : dict
        :func:`~hemascope.train.bags_cv_metrics.repeated_metrics` of the positive class.
    curve : pandas.DataFrame
        ``cells``, ``accuracy``, ``auc`` (means over repeats and draws), ``accuracy_sd``;
        ``cells = 0`` is the whole bag.
    temperature : float
        Calibration temperature fitted on all out-of-fold logits (for a model trained on every bag).
    cells : pandas.DataFrame
        Held-out cells of the first repeat (:func:`cell_scores`): ``bag``, ``cell``, ``class``
        (the cell model's), ``weight``, ``alone``.
    """

    classes: list[str]
    positive: str
    folds: pd.DataFrame
    predictions: pd.DataFrame
    metrics: dict[str, dict[str, float]]
    curve: pd.DataFrame = field(default_factory=pd.DataFrame)
    temperature: float = 1.0
    cells: pd.DataFrame = field(default_factory=pd.DataFrame)

    def summary(self) -> dict[str, Any]:
        """Metrics, curve and settings as JSON-able data (for cards and reports)."""
        return {
            "positive": self.positive,
            "repeats": int(self.folds["repeat"].nunique()),
            "folds": int(self.folds["fold"].nunique()),
            "n_bags": int(self.folds["bag"].nunique()),
            "metrics": self.metrics,
            "accuracy_vs_cells": self.curve.to_dict(orient="records"),
            "temperature": self.temperature,
        }


def _probabilities(logits: np.ndarray, temperature: float) -> np.ndarray:
    return torch.softmax(torch.as_tensor(logits, dtype=torch.float64) / temperature, -1).numpy()


def _cross_fitted(
    logits: np.ndarray, targets: np.ndarray, folds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row temperature fitted on the rows of the other folds (one repeat)."""
    temps = np.ones(len(logits))
    for f in np.unique(folds):
        other = folds != f
        temps[folds == f] = fit_temperature(logits[other], targets[other])
    probs = np.stack([_probabilities(row, t) for row, t in zip(logits, temps, strict=True)])
    return probs, temps


def positive_index(classes: Sequence[str], positive: str | None) -> tuple[str, int]:
    positive = positive or classes[0]
    if positive not in classes:
        raise InvalidInputError(f"positive class {positive!r} is not among {list(classes)}")
    return positive, list(classes).index(positive)


def _curve_rows(
    module: torch.nn.Module,
    test: Sequence[Bag],
    sizes: Sequence[int],
    draws: int,
    rng: np.random.Generator,
) -> list[tuple[int, int, str, np.ndarray]]:
    """Logits of random sub-bags of the held-out bags: ``(cells, draw, bag, logits)``."""
    rows = []
    for k in sizes:
        for d in range(draws):
            subs = [
                Bag(b.name, b.features[rng.permutation(len(b.features))[:k]], b.label) for b in test
            ]
            for bag, logit in zip(test, bag_logits(module, subs), strict=True):
                rows.append((k, d, bag.name, logit))
    return rows


def cross_validate(
    bags: Sequence[Bag],
    classes: Sequence[str],
    folds: pd.DataFrame,
    *,
    architecture: str = "attention",
    loss: str = "ce",
    positive: str | None = None,
    train_options: Mapping[str, Any] | None = None,
    curve_sizes: Sequence[int] = CV_CURVE_SIZES,
    curve_draws: int = CV_CURVE_DRAWS,
    n_bootstrap: int = 1000,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> CrossValidation:
    """Repeated k-fold cross-validation of one bag-model recipe over patients.

    Parameters
    ----------
    bags : sequence of Bag
        Every labelled bag (one per patient). A bag with no cells is predicted with the training
        folds' class frequencies (it is counted, not dropped).
    classes : sequence of str
        Bag classes in output order.
    folds : pandas.DataFrame
        From :func:`make_folds` or :func:`read_folds`.
    architecture, loss : str, optional
        As :func:`~hemascope.train.mil_training.train_bag_model`.
    positive : str, optional
        Class whose probability the binary metrics read (default: the first class).
    train_options : dict, optional
        Further keyword arguments of ``train_bag_model`` (epochs, lr, arch_params, ...). No
        validation bags are used: the fixed number of epochs is part of the recipe.
    curve_sizes, curve_draws : optional
        Cells per sub-bag and random sub-bags per held-out bag for the accuracy-vs-size curve
        (empty ``curve_sizes``: no curve).
    n_bootstrap : int, optional
        Patient resamples of the confidence intervals.
    seed : int, optional
        Training seed of the first fold (fold ``i`` uses ``seed + i``).
    progress, cancel : optional
        See :mod:`hemascope.progress`.

    Returns
    -------
    CrossValidation
        Out-of-fold predictions, metrics with 95 % intervals, the curve and a temperature.
    """
    classes = list(classes)
    positive, pos = positive_index(classes, positive)
    by_name = {b.name: b for b in bags}
    targets = dict(zip(by_name, bag_targets(list(by_name.values()), classes), strict=True))
    rng = np.random.default_rng(seed)
    splits = sorted(folds.groupby(["repeat", "fold"]).groups)
    rows, curve, cells = [], [], []
    for step, (repeat, fold) in enumerate(splits):
        check_cancelled(cancel)
        part = folds[folds["repeat"] == repeat]
        held = part.loc[part["fold"] == fold, "bag"].tolist()
        train = [
            by_name[n] for n in part.loc[part["fold"] != fold, "bag"] if len(by_name[n].features)
        ]
        trained = train_bag_model(
            train,
            classes,
            architecture=architecture,
            loss=loss,
            seed=seed + step,
            **dict(train_options or {}),
        )
        test = [by_name[n] for n in held if len(by_name[n].features)]
        prior = np.log(np.bincount([targets[b.name] for b in train], minlength=len(classes)) + 1.0)
        logits = (
            dict(zip([b.name for b in test], bag_logits(trained.module, test), strict=True))
            if test
            else {}
        )
        for name in held:
            rows.append((repeat, fold, name, len(by_name[name].features), logits.get(name, prior)))
        for k, d, name, logit in _curve_rows(trained.module, test, curve_sizes, curve_draws, rng):
            curve.append((repeat, fold, k, d, name, logit))
        if repeat == 0:
            cells.extend(cell_scores(trained.module, test, pos))
        report(progress, step + 1, len(splits), f"{architecture} repeat {repeat} fold {fold}")
    table = pd.DataFrame(rows, columns=["repeat", "fold", "bag", "n_instances", "logit"])
    result = assemble_cross_validation(
        table, curve, classes, positive, pos, targets, folds, n_bootstrap, seed
    )
    result.cells = pd.DataFrame(cells)
    return result


def cell_scores(module: torch.nn.Module, bags: Sequence[Bag], positive: int) -> list[dict]:
    """Per held-out cell: its weight in its bag's call and the model's answer on it alone.

    ``weight`` is the cell's attention (or share) for the positive class times the bag size, so
    1.0 is an average cell (for a ``grouped`` model: its evidence for the positive class times the
    bag size — the bag's logit margin over the average bag if all its cells were like this one;
    > 0 towards the positive class); ``alone`` is the positive-class probability of a one-cell bag
    (uncalibrated), the model's per-cell score whatever its architecture.
    """
    module.eval()
    out = []
    with torch.no_grad():
        for bag in bags:
            _, weights = module(torch.as_tensor(bag.features)[None])
            single = torch.as_tensor(bag.features)[:, None, :]
            alone = torch.softmax(module(single)[0], -1)[:, positive].numpy()
            relative = weights[0, :, positive].numpy() * len(bag.features)
            names = bag.cell_names if bag.cell_names is not None else np.arange(len(bag.features))
            classes = bag.cell_classes if bag.cell_classes is not None else [""] * len(bag.features)
            for name, cls, w, a in zip(names, classes, relative, alone, strict=True):
                out.append(
                    {
                        "bag": bag.name,
                        "cell": str(name),
                        "class": str(cls),
                        "weight": float(w),
                        "alone": float(a),
                    }
                )
    return out


def assemble_cross_validation(
    table: pd.DataFrame,
    curve: list,
    classes: list[str],
    positive: str,
    pos: int,
    targets: dict[str, int],
    folds: pd.DataFrame,
    n_bootstrap: int,
    seed: int,
) -> CrossValidation:
    """Calibrate out-of-fold logits, score them and build the curve (shared with the baselines).

    ``table`` has ``repeat``, ``fold``, ``bag``, ``n_instances`` and ``logit`` (one array per row);
    ``curve`` holds ``(repeat, fold, cells, draw, bag, logit)`` tuples of sub-bags.
    """
    table["label"] = [classes[targets[n]] for n in table["bag"]]
    y = np.array([targets[n] for n in table["bag"]])
    logits = np.stack(table.pop("logit").to_numpy())
    probs = np.zeros_like(logits, dtype=np.float64)
    temps = np.ones(len(table))
    for repeat in table["repeat"].unique():
        rows = (table["repeat"] == repeat).to_numpy()
        probs[rows], temps[rows] = _cross_fitted(
            logits[rows], y[rows], table["fold"].to_numpy()[rows]
        )
    for j, c in enumerate(classes):
        table[f"prob_{c}"] = probs[:, j]
    for j, c in enumerate(classes):
        table[f"logit_{c}"] = logits[:, j]
    table = table.sort_values(["repeat", "bag"]).reset_index(drop=True)
    wide = table.pivot(index="repeat", columns="bag", values=f"prob_{positive}")
    truth = np.array([targets[n] == pos for n in wide.columns])
    metrics = repeated_metrics(wide.to_numpy(), truth, n_bootstrap=n_bootstrap, seed=seed)
    temperature = fit_temperature(logits, y)
    curve_table = _curve_table(curve, table, temps, classes, pos, targets)
    return CrossValidation(classes, positive, folds, table, metrics, curve_table, temperature)


def _curve_table(
    curve: list,
    table: pd.DataFrame,
    temps: np.ndarray,
    classes: list[str],
    pos: int,
    targets: dict[str, int],
) -> pd.DataFrame:
    """Accuracy and AUC of sub-bags per size (``cells = 0``: the whole bags)."""
    from hemascope.train.bags_cv_metrics import roc_auc

    temp_of = {(r, n): t for r, n, t in zip(table["repeat"], table["bag"], temps, strict=True)}
    records = []
    whole = table.assign(cells=0, draw=0)
    whole["p"] = whole[f"prob_{classes[pos]}"]
    whole["correct"] = whole[[f"prob_{c}" for c in classes]].to_numpy().argmax(1) == [
        targets[n] for n in whole["bag"]
    ]
    parts = [whole[["repeat", "cells", "draw", "bag", "p", "correct"]]]
    if curve:
        sub = pd.DataFrame(curve, columns=["repeat", "fold", "cells", "draw", "bag", "logit"])
        t = np.array([temp_of[(r, n)] for r, n in zip(sub["repeat"], sub["bag"], strict=True)])
        probs = np.stack([_probabilities(lg, ti) for lg, ti in zip(sub["logit"], t, strict=True)])
        sub["p"] = probs[:, pos]
        sub["correct"] = probs.argmax(1) == np.array([targets[n] for n in sub["bag"]])
        parts.append(sub[["repeat", "cells", "draw", "bag", "p", "correct"]])
    data = pd.concat(parts, ignore_index=True)
    for (cells, repeat, draw), group in data.groupby(["cells", "repeat", "draw"]):
        truth = np.array([targets[n] == pos for n in group["bag"]])
        records.append(
            (
                cells,
                repeat,
                draw,
                float(group["correct"].mean()),
                roc_auc(group["p"].to_numpy(), truth),
            )
        )
    per = pd.DataFrame(records, columns=["cells", "repeat", "draw", "accuracy", "auc"])
    out = per.groupby("cells").agg(
        accuracy=("accuracy", "mean"), accuracy_sd=("accuracy", "std"), auc=("auc", "mean")
    )
    return out.reset_index()
