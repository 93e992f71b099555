"""Training of bag (slide-level) classifiers on cell embeddings.

Two regimes with one entry point, :func:`train_bag_model`:

- bag-level MIL (``architecture="attention"`` or ``"mean"``): the loss is on the bag prediction;
- cell-level training on inherited labels (``architecture="instance"``): every cell takes its bag's
  label and the loss — typically a noise-robust one from :mod:`hemascope.train.losses` — is on each
  cell; the bag prediction is the mean cell probability.

Bags are randomly sub-sampled every epoch (between ``min_sample`` and ``max_instances`` cells) so
models learn to answer from small bags too. The best epoch on the validation bags is kept, and a
calibration temperature is fitted on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from hemascope.classify.calibration import fit_temperature
from hemascope.errors import DataError, InvalidInputError
from hemascope.models.mil import (
    BAG_ARCHITECTURES,
    BagEnsemble,
    GroupedMeanBagClassifier,
    InstanceBagClassifier,
    build_bag_model,
)
from hemascope.progress import CancelToken, ProgressCallback, check_cancelled, report
from hemascope.train.bags_data import Bag, bag_targets
from hemascope.train.losses import LOSSES, LDAMLoss, make_loss

#: How the calibration temperature is fitted (see :func:`train_bag_model`).
CALIBRATIONS: tuple[str, ...] = ("whole", "subsampled")

#: Random sub-bags per validation bag for ``calibration="subsampled"``.
CALIBRATION_DRAWS = 8


@dataclass
class TrainedBagModel:
    """A trained bag classifier and what is needed to write its card.

    Attributes
    ----------
    module : torch.nn.Module
        The model (eval mode), best validation epoch.
    architecture : str
        ``"attention"``, ``"mean"`` or ``"instance"``.
    arch_params : dict
        Its width/dropout settings.
    classes : list of str
        Bag classes in output order.
    temperature : float
        Calibration temperature fitted on the validation bags (1.0 without them).
    history : list of dict
        Per epoch: ``epoch``, ``loss`` and, with validation bags, ``val_accuracy``, ``val_nll``.
    best_epoch : int
        The epoch kept.
    """

    module: torch.nn.Module
    architecture: str
    arch_params: dict[str, Any]
    classes: list[str]
    temperature: float = 1.0
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0


def pad_bags(features: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack variable-size bags into ``(B, N_max, D)`` features and a ``(B, N_max)`` mask."""
    n_max = max(1, max(len(f) for f in features))
    dim = features[0].shape[1]
    x = torch.zeros(len(features), n_max, dim)
    mask = torch.zeros(len(features), n_max, dtype=torch.bool)
    for i, f in enumerate(features):
        x[i, : len(f)] = torch.as_tensor(f)
        mask[i, : len(f)] = True
    return x, mask


def bag_logits(module: torch.nn.Module, bags: Sequence[Bag], batch_size: int = 64) -> np.ndarray:
    """Uncalibrated bag logits ``(n_bags, C)`` of whole bags (eval mode, padded batches)."""
    module.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(bags), batch_size):
            x, mask = pad_bags([b.features for b in bags[start : start + batch_size]])
            logits, _ = module(x, mask)
            out.append(logits.numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def _subsample(
    bag: Bag, rng: np.random.Generator, min_sample: int, max_instances: int
) -> np.ndarray:
    n = len(bag.features)
    high = min(n, max_instances)
    low = min(high, max(1, min_sample))
    k = int(rng.integers(low, high + 1))
    return bag.features[rng.choice(n, size=k, replace=False)]


def _fit_bag_temperature(
    module: torch.nn.Module,
    val_bags: Sequence[Bag] | None,
    classes: Sequence[str],
    calibration: str,
    seed: int,
) -> float:
    """The calibration temperature on the validation bags (1.0 without them)."""
    if not val_bags:
        return 1.0
    bags = list(val_bags)
    if calibration == "subsampled":
        rng = np.random.default_rng(seed)
        bags = [
            Bag(
                b.name,
                b.features[
                    rng.permutation(len(b.features))[: rng.integers(1, len(b.features) + 1)]
                ],
                b.label,
            )
            for b in val_bags
            for _ in range(CALIBRATION_DRAWS)
        ]
    return fit_temperature(bag_logits(module, bags), bag_targets(bags, classes))


def _prepare_grouped(
    module: GroupedMeanBagClassifier, cell_head: Any, bags: Sequence[Bag]
) -> None:
    """Give a grouped model the cell model's head and the training bags' standardisation."""
    if cell_head is None:
        raise InvalidInputError(
            "a grouped bag model needs arch_params['cell_head'] = (weight, bias) of the cell model"
        )
    module.set_cell_head(*cell_head)
    with torch.no_grad():
        module.fit_normalisation(
            torch.cat([module.bag_features(torch.as_tensor(b.features)[None]) for b in bags])
        )


def _fit_grouped(
    module: GroupedMeanBagClassifier, bags: Sequence[Bag], targets: np.ndarray, *, l2: float, balanced: bool
) -> None:
    """Fit a grouped model's linear head on whole bags: L2-penalised logistic regression (L-BFGS).

    The bag vectors are few (one per patient) and wide, so the head is fitted exactly, with a
    strong ridge penalty, instead of by stochastic epochs.
    """
    module.eval()  # no dropout: a deterministic, exact fit
    with torch.no_grad():
        x = torch.cat([module.bag_features(torch.as_tensor(b.features)[None]) for b in bags])
        z = (x - module.feature_mean) / module.feature_std
    y = torch.as_tensor(targets, dtype=torch.long)
    counts = torch.bincount(y, minlength=module.head.out_features).float()
    weight = (len(y) / (len(counts) * counts.clamp(min=1))) if balanced else None
    head = module.head
    optimiser = torch.optim.LBFGS(head.parameters(), max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(z), y, weight=weight)
        loss = loss + l2 * (head.weight**2).sum() / len(y)
        loss.backward()
        return loss

    optimiser.step(closure)


def _check_bags(bags: Sequence[Bag], classes: Sequence[str], what: str) -> None:
    if not bags:
        raise DataError(f"no {what} bags")
    empty = [b.name for b in bags if len(b.features) == 0]
    if empty:
        raise DataError(f"{len(empty)} empty {what} bag(s) (no cells), e.g. {empty[:3]}")
    dims = {b.features.shape[1] for b in bags}
    if len(dims) != 1:
        raise DataError(f"{what} bags have embeddings of different sizes {sorted(dims)}")


def train_bag_model(
    bags: Sequence[Bag],
    classes: Sequence[str],
    *,
    architecture: str = "attention",
    val_bags: Sequence[Bag] | None = None,
    loss: str = "ce",
    epochs: int = 40,
    batch_size: int = 16,
    lr: float = 1e-3,
    weight_decay: float = 1e-3,
    min_sample: int = 1,
    max_instances: int = 256,
    arch_params: dict[str, Any] | None = None,
    calibration: str = "whole",
    balanced: bool = False,
    l2: float = 20.0,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> TrainedBagModel:
    """Train a bag classifier on labelled bags of cell embeddings.

    Parameters
    ----------
    bags : sequence of Bag
        Training bags (embeddings of the bag's cells and a label from ``classes``).
    classes : sequence of str
        Bag classes in output order.
    architecture : str, optional
        ``"attention"`` (gated attention MIL), ``"mean"`` (mean pooling) or ``"instance"``
        (cell-level training on inherited labels).
    val_bags : sequence of Bag, optional
        Validation bags: pick the best epoch and fit the calibration temperature.
    loss : str, optional
        A loss of :data:`hemascope.train.losses.LOSSES` (e.g. ``"gce"`` or ``"sce"`` for
        noisy inherited labels).
    epochs, batch_size, lr, weight_decay : optional
        Optimisation settings (AdamW, cosine schedule).
    min_sample, max_instances : int, optional
        Each epoch a bag is cut to a random size between these (bounded by its size).
    arch_params : dict, optional
        Width/dropout settings of the architecture; ``members=K`` (K > 1) trains K models from
        seeds ``seed .. seed+K-1`` and keeps their :class:`~hemascope.models.mil.BagEnsemble`.
    calibration : str, optional
        ``"whole"``: fit the temperature on the whole validation bags; ``"subsampled"``: on
        :data:`CALIBRATION_DRAWS` random sub-bags of each (1 to all cells), so that a validation
        set the model never gets wrong still yields a temperature (instead of one that makes
        every answer p = 1.00).
    balanced : bool, optional
        Draw the bags of each epoch with replacement, every class equally often (for cohorts with
        few bags of one class, e.g. 22 APL beside 60 other AML), instead of each bag once; for
        ``"grouped"``, weight the classes equally in the loss.
    l2 : float, optional
        ``"grouped"`` only: ridge penalty of its head (× squared weights / number of bags). The
        grouped head is fitted on whole bags by L-BFGS; ``epochs``, ``lr``, ``batch_size``,
        ``loss`` and the sub-sampling settings do not apply to it.
    seed : int, optional
        Seed of sampling and initialisation.
    progress, cancel : optional
        See :mod:`hemascope.progress`.

    Returns
    -------
    TrainedBagModel
        The best-epoch model with its temperature and history.

    Raises
    ------
    DataError
        On empty bag lists or bags, mixed embedding sizes, or labels outside ``classes``.
    InvalidInputError
        On an unknown architecture or loss, or bad settings.
    """
    if architecture not in BAG_ARCHITECTURES:
        raise InvalidInputError(
            f"unknown architecture {architecture!r}; choose from {BAG_ARCHITECTURES}"
        )
    if loss not in LOSSES:
        raise InvalidInputError(f"unknown loss {loss!r}; choose from {', '.join(LOSSES)}")
    if epochs < 1 or batch_size < 1 or max_instances < 1:
        raise InvalidInputError("epochs, batch_size and max_instances must be >= 1")
    if calibration not in CALIBRATIONS:
        raise InvalidInputError(f"calibration must be one of {CALIBRATIONS}, got {calibration!r}")
    defaults = {} if architecture == "grouped" else {"hidden": 128}
    params = {**defaults, "dropout": 0.1, **(arch_params or {})}
    members = int(params.pop("members", 1))
    if members > 1:
        options: dict[str, Any] = dict(
            architecture=architecture,
            val_bags=val_bags,
            loss=loss,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            min_sample=min_sample,
            max_instances=max_instances,
            arch_params=params,
            calibration=calibration,
            balanced=balanced,
            l2=l2,
            progress=progress,
            cancel=cancel,
        )
        runs = [train_bag_model(bags, classes, seed=seed + i, **options) for i in range(members)]
        ensemble = BagEnsemble([run.module for run in runs]).eval()
        return TrainedBagModel(
            module=ensemble,
            architecture=architecture,
            arch_params={**runs[0].arch_params, "members": members},
            classes=list(classes),
            temperature=_fit_bag_temperature(ensemble, val_bags, classes, calibration, seed),
            history=[{"member": i, **r} for i, run in enumerate(runs) for r in run.history],
            best_epoch=int(np.median([run.best_epoch for run in runs])),
        )
    classes = list(classes)
    _check_bags(bags, classes, "training")
    targets = bag_targets(bags, classes)
    val_targets = None
    if val_bags:
        _check_bags(val_bags, classes, "validation")
        val_targets = bag_targets(val_bags, classes)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    dim = bags[0].features.shape[1]
    cell_head = params.pop("cell_head", None)  # grouped: the cell model's head (not in the card)
    module = build_bag_model(architecture, dim, len(classes), **params)
    if architecture == "grouped":
        assert isinstance(module, GroupedMeanBagClassifier)  # members were popped above
        _prepare_grouped(module, cell_head, bags)
        _fit_grouped(module, bags, targets, l2=l2, balanced=balanced)
        module.eval()
        return TrainedBagModel(
            module=module,
            architecture=architecture,
            arch_params=params,
            classes=classes,
            temperature=_fit_bag_temperature(module, val_bags, classes, calibration, seed),
            history=[{"epoch": 0, "loss": float("nan")}],
            best_epoch=0,
        )
    if architecture == "instance":
        counts = np.bincount(
            np.repeat(targets, [len(b.features) for b in bags]), minlength=len(classes)
        )
    else:
        counts = np.bincount(targets, minlength=len(classes))
    criterion = make_loss(loss, counts, epochs=epochs)
    per_class = np.bincount(targets, minlength=len(classes)).astype(np.float64)
    draw_weights = 1.0 / per_class[targets]
    draw_weights /= draw_weights.sum()
    optimiser = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * int(np.ceil(len(bags) / batch_size))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(1, steps))
    history: list[dict[str, float]] = []
    best: tuple[float, float] | None = None
    best_state, best_epoch = None, 0
    for epoch in range(epochs):
        check_cancelled(cancel)
        if isinstance(criterion, LDAMLoss):  # the one loss that re-weights by epoch
            criterion.set_epoch(epoch)
        module.train()
        order = (
            rng.choice(len(bags), size=len(bags), p=draw_weights)
            if balanced
            else rng.permutation(len(bags))
        )
        total = 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            x, mask = pad_bags([_subsample(bags[i], rng, min_sample, max_instances) for i in idx])
            y = torch.as_tensor(targets[idx], dtype=torch.long)
            if isinstance(module, InstanceBagClassifier):  # architecture == "instance"
                cell_logits = module.cell_logits(x)[mask]
                cell_y = y[:, None].expand(-1, x.shape[1])[mask]
                batch_loss = criterion(cell_logits, cell_y)
            else:
                logits, _ = module(x, mask)
                batch_loss = criterion(logits, y)
            optimiser.zero_grad()
            batch_loss.backward()
            optimiser.step()
            schedule.step()
            total += float(batch_loss.detach()) * len(idx)
        record = {"epoch": epoch, "loss": total / len(bags)}
        if val_bags:
            logits = torch.as_tensor(bag_logits(module, val_bags))
            yv = torch.as_tensor(val_targets, dtype=torch.long)
            record["val_accuracy"] = float((logits.argmax(1) == yv).float().mean())
            record["val_nll"] = float(torch.nn.functional.cross_entropy(logits, yv))
            key = (record["val_accuracy"], -record["val_nll"])
            if best is None or key >= best:
                best = key
                best_state = {k: v.clone() for k, v in module.state_dict().items()}
                best_epoch = epoch
        history.append(record)
        report(
            progress,
            epoch + 1,
            epochs,
            f"{architecture} epoch {epoch + 1}: loss {record['loss']:.3f}",
        )
    if best_state is not None:
        module.load_state_dict(best_state)
    else:
        best_epoch = epochs - 1
    module.eval()
    temperature = _fit_bag_temperature(module, val_bags, classes, calibration, seed)
    return TrainedBagModel(
        module=module,
        architecture=architecture,
        arch_params=params,
        classes=classes,
        temperature=temperature,
        history=history,
        best_epoch=best_epoch,
    )
