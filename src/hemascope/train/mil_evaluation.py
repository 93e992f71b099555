"""Evaluation of bag classifiers: the same metrics for every architecture, and accuracy vs bag size.

:func:`evaluate_bags` gives accuracy, macro-F1, per-class scores, the confusion matrix and the
expected calibration error of the slide-level probabilities (through
:func:`hemascope.train.metrics.classification_metrics`) plus one row per bag.
:func:`accuracy_vs_bag_size` re-evaluates the test bags cut down to ``k`` cells, to show how
accuracy falls as the number of blasts per bag shrinks; :func:`plot_accuracy_vs_bag_size` draws it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from hemascope.classes import RESEARCH_USE_ONLY
from hemascope.errors import DataError
from hemascope.train.bags_data import Bag, bag_targets
from hemascope.train.metrics import classification_metrics
from hemascope.train.mil_training import bag_logits


@dataclass
class BagEvaluation:
    """Scores of a bag classifier on labelled bags.

    Attributes
    ----------
    metrics : dict
        ``accuracy``, ``macro_f1``, ``per_class``, ``confusion``, ``ece``, ``n``.
    table : pandas.DataFrame
        One row per bag: ``bag``, ``label``, ``predicted``, ``prob_<class>``, ``n_instances``,
        ``correct``.
    """

    metrics: dict[str, Any]
    table: pd.DataFrame = field(repr=False)


def bag_probabilities(
    module: torch.nn.Module, bags: Sequence[Bag], temperature: float = 1.0
) -> np.ndarray:
    """Calibrated class probabilities ``(n_bags, C)`` of whole bags."""
    logits = torch.as_tensor(bag_logits(module, bags))
    return torch.softmax(logits / float(temperature), dim=-1).numpy()


def evaluate_bags(
    module: torch.nn.Module,
    bags: Sequence[Bag],
    classes: Sequence[str],
    *,
    temperature: float = 1.0,
) -> BagEvaluation:
    """Evaluate a bag classifier on labelled, non-empty bags.

    Parameters
    ----------
    module : torch.nn.Module
        Any bag classifier of :mod:`hemascope.models.mil`.
    bags : sequence of Bag
        Labelled bags.
    classes : sequence of str
        Classes in model output order.
    temperature : float, optional
        Calibration temperature.

    Returns
    -------
    BagEvaluation
        Metrics (including ECE) and the per-bag table.

    Raises
    ------
    DataError
        If there are no bags, a bag is empty, or a label is outside ``classes``.
    """
    if not bags:
        raise DataError("no bags to evaluate")
    if any(len(b.features) == 0 for b in bags):
        raise DataError("cannot evaluate empty bags")
    targets = bag_targets(bags, classes)
    prob = bag_probabilities(module, bags, temperature)
    predicted = prob.argmax(1)
    metrics = classification_metrics(targets, predicted, list(classes), prob=prob)
    table = pd.DataFrame(
        {
            "bag": [b.name for b in bags],
            "label": [b.label for b in bags],
            "predicted": [classes[i] for i in predicted],
            **{f"prob_{c}": prob[:, i] for i, c in enumerate(classes)},
            "n_instances": [len(b.features) for b in bags],
            "correct": predicted == targets,
        }
    )
    return BagEvaluation(metrics=metrics, table=table)


def accuracy_vs_bag_size(
    module: torch.nn.Module,
    bags: Sequence[Bag],
    classes: Sequence[str],
    sizes: Sequence[int],
    *,
    temperature: float = 1.0,
    repeats: int = 5,
    seed: int = 0,
) -> pd.DataFrame:
    """Accuracy and ECE of bags cut down to ``k`` randomly chosen cells, for each ``k``.

    Bags with fewer than ``k`` cells are left out at that size (``n_bags`` says how many remain).

    Returns
    -------
    pandas.DataFrame
        Columns ``size``, ``accuracy``, ``ece``, ``n_bags`` (accuracy averaged over ``repeats``).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for k in sizes:
        eligible = [b for b in bags if len(b.features) >= k]
        if not eligible:
            continue
        accs, eces = [], []
        for _ in range(repeats):
            cut = [
                Bag(b.name, b.features[rng.choice(len(b.features), size=k, replace=False)], b.label)
                for b in eligible
            ]
            result = evaluate_bags(module, cut, classes, temperature=temperature)
            accs.append(result.metrics["accuracy"])
            eces.append(result.metrics["ece"])
        rows.append(
            {
                "size": int(k),
                "accuracy": float(np.mean(accs)),
                "ece": float(np.mean(eces)),
                "n_bags": len(eligible),
            }
        )
    return pd.DataFrame(rows, columns=["size", "accuracy", "ece", "n_bags"])


def plot_accuracy_vs_bag_size(
    curves: Mapping[str, pd.DataFrame],
    path: str | Path,
    *,
    title: str,
    xlabel: str = "cells per bag",
) -> Path:
    """Plot accuracy against bag size, one line per model, captioned with the research-use notice.

    Parameters
    ----------
    curves : mapping of str to pandas.DataFrame
        Model label (name + version) → output of :func:`accuracy_vs_bag_size`.
    path : str or Path
        PNG to write.
    title : str
        Figure title (should name the data set).
    xlabel : str, optional
        Label of the x axis (e.g. "blasts per bag").

    Returns
    -------
    Path
        The written PNG.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 4.0), dpi=110)
    ax = fig.add_subplot()
    sizes: set[int] = set()
    for i, (label, frame) in enumerate(curves.items()):
        ax.plot(frame["size"], frame["accuracy"], marker="o", label=label)
        sizes.update(int(v) for v in frame["size"])
        if i == 0:  # how many bags are left at each size (bags smaller than k drop out)
            for k, acc, n in zip(frame["size"], frame["accuracy"], frame["n_bags"], strict=True):
                ax.annotate(
                    f"n={n}",
                    (k, acc),
                    textcoords="offset points",
                    xytext=(0, -12),
                    ha="center",
                    fontsize=6,
                    color="#555555",
                )
    ax.set_xscale("log")
    ax.set_xticks(sorted(sizes), [str(k) for k in sorted(sizes)])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("bag accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.text(0.5, 0.01, RESEARCH_USE_ONLY, ha="center", fontsize=8, color="#555555")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
