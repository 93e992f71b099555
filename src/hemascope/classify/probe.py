"""The per-batch probe run before classifying a slide or folder: shift guard and adaptation.

A subsample of the cells about to be classified goes once through the trained network to measure
the domain shift (:mod:`hemascope.classify.shift`) and, when adaptation is on, to re-estimate the
BatchNorm statistics (:mod:`hemascope.classify.adapt`). Whether a model adapts by default is
written in its card (``preprocess["adabn_prior"]``, set where it measured better on held-out labs).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from hemascope.classify.adapt import DEFAULT_PRIOR, adapt_batchnorm
from hemascope.classify.crops import crops_to_tensor
from hemascope.classify.shift import (
    MIN_CELLS,
    DomainShift,
    domain_shift,
    layer_divergences,
    shift_score,
)
from hemascope.models.card import ModelCard

#: Cells of a folder used for the probe (a seeded random subset).
PROBE_CELLS = 512


def adapt_default(card: ModelCard) -> bool:
    """Whether the card's model adapts to each batch by default."""
    return "adabn_prior" in (card.preprocess or {})


def probe_subset(n: int, size: int = PROBE_CELLS, seed: int = 0) -> np.ndarray:
    """Sorted indices of a seeded random subset of ``n`` cells (all when ``n <= size``)."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


def probe_cells(
    module: nn.Module,
    card: ModelCard,
    crops: np.ndarray,
    device: torch.device,
    *,
    adapt: bool | None = None,
    batch: int = 256,
) -> tuple[nn.Module, DomainShift]:
    """Measure the domain shift of ``crops`` and return the network to classify them with.

    Parameters
    ----------
    module
        The trained network (never modified).
    card
        Its card (normalisation, shift threshold, adaptation default).
    crops
        ``(n, size, size, 3)`` uint8 crops at the card's scale: a sample of the batch.
    device
        Where the network runs.
    adapt
        Re-estimate BatchNorm statistics on ``crops`` (``None``: the card's default).

    Returns
    -------
    (module, shift)
        The adapted copy (or ``module`` itself) and the :class:`DomainShift` verdict.
    """

    def batches() -> Iterator[torch.Tensor]:
        for s in range(0, len(crops), batch):
            yield crops_to_tensor(crops[s : s + batch], card, device)

    divergences, n = layer_divergences(module, batches())
    layers = card.domain_reference.get("layers") if card.domain_reference else None
    shift = domain_shift(shift_score(divergences, layers), n, card)
    if adapt is None:
        adapt = adapt_default(card)
    if not adapt or n < MIN_CELLS:
        return module, shift
    prior = float((card.preprocess or {}).get("adabn_prior", DEFAULT_PRIOR))
    return adapt_batchnorm(module, batches(), prior=prior), shift
