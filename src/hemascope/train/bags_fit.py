"""Fit, evaluate and save one bag model: the shared core of ``hemascope train bags`` and the
benchmark scripts, so every architecture is trained and scored the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from hemascope.classify.calibration import fit_temperature
from hemascope.errors import DataError, InvalidInputError
from hemascope.files import atomic_write_json, atomic_write_table
from hemascope.models.card import ModelCard
from hemascope.models.mil import BagEnsemble
from hemascope.models.registry import save_model
from hemascope.progress import CancelToken, ProgressCallback
from hemascope.slide.bag_model import BagModel
from hemascope.train.bags_data import Bag, bag_targets
from hemascope.train.mil_evaluation import (
    accuracy_vs_bag_size,
    evaluate_bags,
    plot_accuracy_vs_bag_size,
)
from hemascope.train.mil_training import TrainedBagModel, bag_logits, train_bag_model

#: Bag sizes of the accuracy-vs-size curve.
CURVE_SIZES: tuple[int, ...] = (1, 2, 3, 5, 10, 20, 50, 100)


def grouped_arch_params(cell_model: Any, first_group: str) -> dict[str, Any]:
    """``arch_params`` of a ``"grouped"`` bag model on a loaded cell model's embeddings.

    Parameters
    ----------
    cell_model : LoadedModel
        The cell model whose embeddings form the bags (its linear ``head`` assigns the groups).
    first_group : str
        Cell classes of the first group joined with ``+`` (e.g. ``"blast+ig"``); the second group
        is every other class.

    Returns
    -------
    dict
        ``cell_classes``, ``groups``, ``cell_temperature`` (written to the card) and
        ``cell_head`` (the head's weight and bias, kept in the weights file only).

    Raises
    ------
    InvalidInputError
        If a class is not one of the cell model's, or the cell model has no linear head.
    """
    from hemascope.slide.bag import parse_instances

    classes = list(cell_model.card.classes)
    first = list(parse_instances(first_group) or classes)
    unknown = sorted(set(first) - set(classes))
    if unknown:
        raise InvalidInputError(
            f"--groups names {unknown}, not classes of {cell_model.label}: {classes}"
        )
    head = getattr(cell_model.module, "head", None)
    if head is None or not hasattr(head, "weight"):
        raise InvalidInputError(
            f"cell model {cell_model.label} has no linear head to group cells by"
        )
    rest = [c for c in classes if c not in first]
    return {
        "cell_classes": classes,
        "groups": [first, rest] if rest else [first],
        "cell_temperature": float(cell_model.card.temperature),
        "cell_head": (head.weight.detach().cpu().float(), head.bias.detach().cpu().float()),
    }


@dataclass
class BagFitReport:
    """What :func:`fit_bag_model` produced.

    Attributes
    ----------
    card_path : Path
        The saved card (weights beside it).
    card : ModelCard
        The card, with metrics.
    trained : TrainedBagModel
        Module, temperature and history.
    test_table : pandas.DataFrame or None
        Per-bag test predictions.
    curve : pandas.DataFrame or None
        Accuracy vs number of cells per bag on the test bags.
    """

    card_path: Path
    card: ModelCard
    trained: TrainedBagModel
    test_table: pd.DataFrame | None
    curve: pd.DataFrame | None


def fit_bag_model(
    splits: Mapping[str, Sequence[Bag]],
    classes: Sequence[str],
    *,
    name: str,
    version: str,
    cell_card: ModelCard,
    out_dir: str | Path,
    architecture: str = "attention",
    loss: str = "ce",
    instances: str = "blast",
    min_instances: int = 10,
    demo: bool = False,
    training_data: Sequence[str] = (),
    licence: str = "",
    description: str = "",
    train_options: dict[str, Any] | None = None,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> BagFitReport:
    """Train one bag model on ``splits["train"]``, pick/calibrate on ``"val"``, score on ``"test"``.

    Writes into ``out_dir``: ``<name>.safetensors`` + ``<name>.json`` (card with test metrics),
    ``<name>.test.csv`` (per-bag predictions), ``<name>.curve.csv`` and ``<name>.curve.png``
    (accuracy vs cells per bag) and ``<name>.history.json``.

    Parameters
    ----------
    splits : dict
        ``"train"`` (required), ``"val"`` and ``"test"`` (optional) lists of bags.
    classes : sequence of str
        Bag classes in output order.
    name, version : str
        Model name and version.
    cell_card : ModelCard
        Card of the cell model that made the embeddings.
    out_dir : str or Path
        Output folder.
    architecture, loss : str, optional
        See :func:`~hemascope.train.mil_training.train_bag_model`.
    instances : str, optional
        ``"blast"`` or ``"all"``: which cells formed the bags (recorded in the card).
    min_instances : int, optional
        Abstention threshold recorded in the card.
    demo : bool, optional
        Mark the model as synthetic/demo.
    training_data, licence, description : optional
        Card provenance.
    train_options : dict, optional
        Extra keyword arguments of ``train_bag_model`` (epochs, lr, batch_size, ...).
    seed : int, optional
        Training seed.
    progress, cancel : optional
        See :mod:`hemascope.progress`.

    Returns
    -------
    BagFitReport
        Paths, card, model and test results.

    Raises
    ------
    DataError
        If there are no training bags.
    """
    train = list(splits.get("train") or [])
    if not train:
        raise DataError("no training bags")
    val = list(splits.get("val") or [])
    trained = train_bag_model(
        train,
        classes,
        architecture=architecture,
        val_bags=val or None,
        loss=loss,
        seed=seed,
        progress=progress,
        cancel=cancel,
        **(train_options or {}),
    )
    return evaluate_and_save(
        trained,
        splits,
        name=name,
        version=version,
        cell_card=cell_card,
        out_dir=out_dir,
        metrics={"loss": loss, "best_epoch": trained.best_epoch},
        instances=instances,
        min_instances=min_instances,
        demo=demo,
        training_data=training_data,
        licence=licence,
        description=description,
        seed=seed,
    )


def evaluate_and_save(
    trained: TrainedBagModel,
    splits: Mapping[str, Sequence[Bag]],
    *,
    name: str,
    version: str,
    cell_card: ModelCard,
    out_dir: str | Path,
    metrics: dict[str, Any],
    instances: str,
    min_instances: int,
    demo: bool,
    training_data: Sequence[str],
    licence: str,
    description: str,
    seed: int,
) -> BagFitReport:
    """Score ``trained`` on the test bags and write the card, weights, tables and plot."""
    train = list(splits.get("train") or [])
    val = list(splits.get("val") or [])
    test = list(splits.get("test") or [])
    out_dir = Path(out_dir)
    classes = trained.classes
    architecture = trained.architecture
    metrics = {"n_bags": {"train": len(train), "val": len(val), "test": len(test)}, **metrics}
    test_table = curve = None
    if test:
        evaluation = evaluate_bags(trained.module, test, classes, temperature=trained.temperature)
        metrics["test"] = evaluation.metrics
        test_table = evaluation.table
        curve = accuracy_vs_bag_size(
            trained.module, test, classes, CURVE_SIZES, temperature=trained.temperature, seed=seed
        )
        metrics["test_accuracy_vs_cells"] = curve.to_dict(orient="records")
        answered = test_table["n_instances"] >= min_instances
        test_table["abstained"] = ~answered
        metrics["test_coverage"] = float(answered.mean())
        metrics["test_accuracy_answered"] = (
            float(test_table.loc[answered, "correct"].mean()) if answered.any() else float("nan")
        )
    card = ModelCard(
        kind="bag",
        name=name,
        version=version,
        classes=list(classes),
        architecture=architecture,
        arch_params=trained.arch_params,
        embedding_model=cell_card.name,
        embedding_version=cell_card.version,
        embedding_sha256=cell_card.sha256,
        embedding_dim=int(train[0].features.shape[1]),
        input_size=cell_card.input_size,
        mpp=cell_card.mpp,
        instances=instances,
        min_instances=min_instances,
        temperature=trained.temperature,
        demo=demo,
        training_data=list(training_data),
        licence=licence,
        metrics=metrics,
        description=description,
    )
    card_path = save_model(trained.module, card, out_dir)
    atomic_write_json(out_dir / f"{name}.history.json", trained.history)
    if test_table is not None:
        atomic_write_table(out_dir / f"{name}.test.csv", test_table)
        atomic_write_table(out_dir / f"{name}.curve.csv", curve)
        noun = "blasts" if instances == "blast" else "cells"
        plot_accuracy_vs_bag_size(
            {card.display_name: curve},
            out_dir / f"{name}.curve.png",
            title=f"{card.display_name}: held-out bags",
            xlabel=f"{noun} per bag",
        )
    return BagFitReport(card_path, card, trained, test_table, curve)


def combine_bag_models(
    models: Sequence[BagModel],
    splits: Mapping[str, Sequence[Bag]],
    *,
    name: str,
    version: str,
    cell_card: ModelCard,
    out_dir: str | Path,
    training_data: Sequence[str] = (),
    description: str = "",
    seed: int = 0,
) -> BagFitReport:
    """Average trained bag models of several architectures into one ``"combined"`` bag model.

    The parts' logits are averaged; a new temperature is fitted on ``splits["val"]`` (whole bags)
    and the result is scored on ``splits["test"]`` and saved like :func:`fit_bag_model`.

    Parameters
    ----------
    models : sequence of BagModel
        Two or more trained bag models with the same classes, cell model and instances.
    splits : dict
        ``"train"`` (counted only), ``"val"`` and ``"test"`` lists of bags.
    name, version, cell_card, out_dir, training_data, description, seed
        As in :func:`fit_bag_model` (the parts' provenance and licence are kept).

    Returns
    -------
    BagFitReport
        Paths, card, model and test results.

    Raises
    ------
    InvalidInputError
        On fewer than two models, or models that do not fit together or the cell model.
    """
    cards = [m.card for m in models]
    if len(cards) < 2:
        raise InvalidInputError("combining needs at least two bag models")
    first = cards[0]
    for card in cards:
        if (card.classes, card.embedding_sha256, card.instances) != (
            first.classes,
            cell_card.sha256,
            first.instances,
        ):
            raise InvalidInputError(
                f"bag model {card.name!r} does not fit: combined models need the same classes, "
                "instances and cell model"
            )
    module = BagEnsemble([m.module for m in models]).eval()
    val = list(splits.get("val") or [])
    temperature = (
        fit_temperature(bag_logits(module, val), bag_targets(val, first.classes)) if val else 1.0
    )
    parts = [{"architecture": c.architecture, **c.arch_params} for c in cards]
    trained = TrainedBagModel(
        module, "combined", {"parts": parts}, list(first.classes), temperature
    )
    names = [f"{c.name} v{c.version}" for c in cards]
    return evaluate_and_save(
        trained,
        splits,
        name=name,
        version=version,
        cell_card=cell_card,
        out_dir=out_dir,
        metrics={"parts": names},
        instances=first.instances,
        min_instances=first.min_instances,
        demo=any(c.demo for c in cards),
        training_data=[*training_data, f"average of {', '.join(names)}", *first.training_data],
        licence=first.licence,
        description=description or f"average of {', '.join(names)}",
        seed=seed,
    )
