"""Cross-validate a bag-model recipe, then train it on every bag: what ``hemascope train bags
--cv`` runs.

The model that is shipped is trained on all patients with the recipe whose patient-level
cross-validation is reported in its card (``metrics["cross_validation"]``); its calibration
temperature is fitted on the out-of-fold logits, and its abstention threshold can be chosen where
the cross-validated accuracy collapses as bags shrink (:func:`choose_min_instances`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from hemascope.classes import RESEARCH_USE_ONLY
from hemascope.errors import DataError, InvalidInputError
from hemascope.files import atomic_write_json, atomic_write_table
from hemascope.models.card import ModelCard
from hemascope.progress import CancelToken, ProgressCallback
from hemascope.slide.bag import instances_noun
from hemascope.train.bags_cv import CrossValidation, cross_validate
from hemascope.train.bags_data import Bag
from hemascope.train.bags_fit import BagFitReport, evaluate_and_save
from hemascope.train.mil_training import train_bag_model


def choose_min_instances(curve: pd.DataFrame, tolerance: float = 0.05) -> int:
    """Fewest cells per bag whose cross-validated accuracy is within ``tolerance`` of whole bags.

    Below it accuracy collapses, so a bag model should abstain there.

    Parameters
    ----------
    curve : pandas.DataFrame
        :attr:`CrossValidation.curve` (``cells = 0`` = whole bags).
    tolerance : float, optional
        Accuracy lost that is still accepted.

    Returns
    -------
    int
        The smallest size in the curve meeting the rule, or the largest size when none does.
    """
    if curve.empty or not (curve["cells"] == 0).any():
        raise InvalidInputError("the curve has no whole-bag row")
    whole = float(curve.loc[curve["cells"] == 0, "accuracy"].iloc[0])
    sized = curve[curve["cells"] > 0].sort_values("cells")
    if sized.empty:
        return 1
    good = sized[sized["accuracy"] >= whole - tolerance]
    # the smallest size from which every larger size is also good
    for cells in sized["cells"]:
        if set(sized.loc[sized["cells"] >= cells, "cells"]) <= set(good["cells"]):
            return int(cells)
    return int(sized["cells"].max())


def fit_with_cross_validation(
    bags: Sequence[Bag],
    classes: Sequence[str],
    folds: pd.DataFrame,
    *,
    name: str,
    version: str,
    cell_card: ModelCard,
    out_dir: str | Path,
    architecture: str = "attention",
    loss: str = "ce",
    instances: str = "all",
    min_instances: int | str = "auto",
    positive: str | None = None,
    train_options: Mapping[str, Any] | None = None,
    demo: bool = False,
    training_data: Sequence[str] = (),
    licence: str = "",
    description: str = "",
    n_bootstrap: int = 1000,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> tuple[BagFitReport, CrossValidation]:
    """Cross-validate a recipe over patients, then train and save it on every bag.

    Writes into ``out_dir``, beside the model (``<name>.safetensors`` + card): ``<name>.cv.csv``
    (out-of-fold probabilities per bag and repeat), ``<name>.folds.csv`` (the patient split
    lists), ``<name>.cv.json`` (metrics with 95 % intervals and the curve) and
    ``<name>.cv_curve.png`` (accuracy against cells per bag).

    Parameters
    ----------
    bags : sequence of Bag
        Every labelled bag.
    classes : sequence of str
        Bag classes in output order.
    folds : pandas.DataFrame
        Fold lists (:func:`~hemascope.train.bags_cv.make_folds`).
    name, version, cell_card, out_dir, architecture, loss, instances, demo, training_data,
    licence, description, seed, progress, cancel
        As :func:`hemascope.train.bags_fit.fit_bag_model`.
    min_instances : int or "auto", optional
        Abstention threshold; ``"auto"`` takes :func:`choose_min_instances` of the CV curve.
    positive : str, optional
        Class whose probability the binary metrics read (default: the first class).
    train_options : dict, optional
        Keyword arguments of :func:`~hemascope.train.mil_training.train_bag_model` (fixed epochs:
        no validation bags are used, in the folds or in the final fit).
    n_bootstrap : int, optional
        Patient resamples of the confidence intervals.

    Returns
    -------
    tuple
        ``(report of the saved model, cross-validation)``.
    """
    usable = [b for b in bags if len(b.features)]
    if not usable:
        raise DataError("no bag has cells to train on")
    options = dict(train_options or {})
    options.pop("calibration", None)
    cv = cross_validate(
        bags,
        classes,
        folds,
        architecture=architecture,
        loss=loss,
        positive=positive,
        train_options=options,
        n_bootstrap=n_bootstrap,
        seed=seed,
        progress=progress,
        cancel=cancel,
    )
    if min_instances == "auto":
        min_instances = choose_min_instances(cv.curve)
    elif not isinstance(min_instances, int) or min_instances < 1:
        raise InvalidInputError(f"min_instances must be >= 1 or 'auto', got {min_instances!r}")
    trained = train_bag_model(
        usable,
        classes,
        architecture=architecture,
        loss=loss,
        seed=seed,
        cancel=cancel,
        **options,
    )
    trained.temperature = cv.temperature
    out_dir = Path(out_dir)
    report = evaluate_and_save(
        trained,
        {"train": usable},
        name=name,
        version=version,
        cell_card=cell_card,
        out_dir=out_dir,
        metrics={"loss": loss, "epochs": options.get("epochs"), "cross_validation": cv.summary()},
        instances=instances,
        min_instances=int(min_instances),
        demo=demo,
        training_data=training_data,
        licence=licence,
        description=description,
        seed=seed,
    )
    atomic_write_table(out_dir / f"{name}.cv.csv", cv.predictions)
    atomic_write_table(out_dir / f"{name}.folds.csv", cv.folds)
    atomic_write_json(out_dir / f"{name}.cv.json", cv.summary())
    plot_cv_curves(
        {report.card.display_name: cv},
        out_dir / f"{name}.cv_curve.png",
        title=f"{report.card.display_name}: patient-level cross-validation",
        xlabel=f"{instances_noun(instances)} per bag",
    )
    return report, cv


def plot_cv_curves(
    curves: Mapping[str, CrossValidation],
    path: str | Path,
    *,
    title: str,
    xlabel: str = "cells per bag",
    baselines: Mapping[str, float] | None = None,
) -> Path:
    """Cross-validated accuracy against cells per bag, one line per recipe (whole bags dashed).

    Parameters
    ----------
    curves : mapping of str to CrossValidation
        Label → cross-validation with a curve.
    path : str or Path
        PNG to write.
    title, xlabel : str
        Figure title (name the data) and x-axis label.
    baselines : mapping of str to float, optional
        Horizontal reference lines (e.g. the promyelocyte-proportion baseline's accuracy).

    Returns
    -------
    Path
        The PNG.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    ax = fig.add_subplot()
    for i, (label, cv) in enumerate(curves.items()):
        colour = f"C{i}"
        sized = cv.curve[cv.curve["cells"] > 0]
        ax.plot(sized["cells"], sized["accuracy"], marker="o", ms=3, color=colour, label=label)
        whole = cv.curve.loc[cv.curve["cells"] == 0, "accuracy"]
        if len(whole):
            ax.axhline(float(whole.iloc[0]), color=colour, ls="--", lw=0.8, alpha=0.7)
    for j, (label, value) in enumerate((baselines or {}).items()):
        ax.axhline(value, color="0.3", ls=":", lw=1.0)
        ax.annotate(
            label, (1, value), xytext=(2, 2 + 9 * j), textcoords="offset points", fontsize=7
        )
    ax.set_xscale("log")
    ax.set_xlabel(xlabel + " (dashed: whole bags)")
    ax.set_ylabel("patient-level accuracy (out of fold)")
    ax.set_ylim(0.4, 1.0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title, fontsize=9)
    fig.text(0.5, 0.01, RESEARCH_USE_ONLY, ha="center", fontsize=7, color="#555555")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
