"""The domain-shift guard: how unlike the training data a slide's (or folder's) cells are.

Every BatchNorm layer of a trained network remembers the mean and variance of its inputs over
the training data. On cells like those, a batch's own per-channel statistics match them; on
another lab's (stain, camera, scale, framing) they drift. The score is the mean, over the
layers, of the channel-averaged Kullback-Leibler divergence between the batch's Gaussian and
the training one, measured with the *unadapted* network. It needs no labels and costs one extra
forward pass over a subsample of the cells.

The model card's ``domain_reference`` holds the threshold, calibrated on leave-one-domain-out
runs (BENCHMARKS.md): above it :func:`domain_shift` says ``shifted`` and why, and callers should
warn and abstain from blast percentages and slide-level predictions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hemascope.classify.adapt import batchnorm_layers, running_stats
from hemascope.errors import ModelError
from hemascope.models.card import ModelCard

#: Fewer cells than this give no score (the statistics would be noise).
MIN_CELLS = 16


@dataclass
class DomainShift:
    """The verdict of the domain-shift guard for one slide or batch of cells.

    Attributes
    ----------
    score
        Mean BatchNorm-statistics divergence from the training data (``nan`` if not measured).
    threshold
        The model's calibrated threshold (``nan`` when the card has none).
    shifted
        ``score > threshold``: the cells look unlike anything the model was trained on.
    reason
        One line for reports and the CLI.
    n_cells
        Cells the score was measured on.
    """

    score: float
    threshold: float
    shifted: bool
    reason: str
    n_cells: int


def layer_divergences(module: nn.Module, batches: Iterable[torch.Tensor]) -> tuple[np.ndarray, int]:
    """Per-layer KL divergence of the batches' BatchNorm-input statistics from the training ones.

    Parameters
    ----------
    module
        The trained network (run in eval mode; not modified).
    batches
        Normalised input batches.

    Returns
    -------
    (divergences, n_cells)
        ``(n_layers,)`` float64 and the number of cells seen.
    """
    norms = batchnorm_layers(module)
    sums: list[torch.Tensor | None] = [None] * len(norms)  # per layer: (sum, sum of squares)
    counts = [0] * len(norms)

    def hook(i: int):
        def record(_m: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            x = inputs[0].detach().float()
            flat = x.transpose(0, 1).reshape(x.shape[1], -1)
            s = torch.stack([flat.sum(1), (flat * flat).sum(1)]).double().cpu()
            previous = sums[i]
            sums[i] = s if previous is None else previous + s
            counts[i] += flat.shape[1]

        return record

    handles = [m.register_forward_pre_hook(hook(i)) for i, m in enumerate(norms)]
    was_training = module.training
    module.eval()
    n = 0
    try:
        with torch.no_grad():
            for x in batches:
                if len(x):
                    module(x)
                    n += len(x)
    finally:
        for h in handles:
            h.remove()
        module.train(was_training)
    if n == 0:
        return np.zeros(0), 0
    out = []
    for m, s, c in zip(norms, sums, counts, strict=True):
        if s is None:  # cells went through the network but not through this layer
            raise ModelError(f"{type(m).__name__} layer not reached by the forward pass")
        mean = s[0] / c
        var = (s[1] / c - mean**2).clamp_min(1e-8)
        running_mean, running_var = running_stats(m)
        mu = running_mean.double().cpu()
        sv = running_var.double().cpu().clamp_min(1e-8)
        ratio = var / sv
        kl = 0.5 * (ratio + (mean - mu) ** 2 / sv - 1 - torch.log(ratio))
        out.append(float(kl.mean()))
    return np.asarray(out), n


def shift_score(divergences: np.ndarray, layers: int | None = None) -> float:
    """The guard's score: the mean of the first ``layers`` per-layer divergences (all if None)."""
    if len(divergences) == 0:
        return float("nan")
    return float(np.mean(divergences[: layers or len(divergences)]))


def domain_shift(score: float, n_cells: int, card: ModelCard) -> DomainShift:
    """Judge a measured score against the card's calibrated threshold.

    Parameters
    ----------
    score
        From :func:`shift_score` (``predictions.domain_shift`` already holds the verdict for
        :func:`~hemascope.classify.predict_cells` and :func:`~hemascope.classify.classify_images`).
    n_cells
        Cells it was measured on.
    card
        The model card (``domain_reference["threshold"]``).
    """
    threshold = float(card.domain_reference.get("threshold", float("nan")))
    if n_cells < MIN_CELLS or not np.isfinite(score):
        return DomainShift(
            float("nan"), threshold, False, f"too few cells ({n_cells}) to judge", n_cells
        )
    if not np.isfinite(threshold):
        return DomainShift(
            score, threshold, False, "no calibrated threshold in the model card", n_cells
        )
    shifted = score > threshold
    reason = (
        f"cells unlike the training data (shift score {score:.2f} > {threshold:.2f}): "
        "class calls, blast % and slide-level predictions are unreliable"
        if shifted
        else f"cells like the training data (shift score {score:.2f} <= {threshold:.2f})"
    )
    return DomainShift(score, threshold, shifted, reason, n_cells)
