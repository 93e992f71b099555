"""Per-slide (per-batch) adaptation: BatchNorm statistics re-estimated on the cells being analysed.

A network trained on some labs normalises each layer with the mean and variance it saw there. On
another lab's slide those statistics are off, and every later layer reads skewed features.
AdaBN (Li et al. 2016; with a source prior as in Schneider et al. 2020) recomputes them,
unsupervised, on the cells of the slide or folder at hand: no label is needed, only the cells.

:func:`adapt_batchnorm` returns an adapted *copy* of the network (the cached model is never
changed). The statistics of ``n`` target cells are mixed with the training statistics with weight
``n / (n + prior)``, so a handful of cells moves the model little and a slide's thousands fully.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn

from hemascope.errors import ModelError

#: Default strength of the training statistics, in cells (see :func:`adapt_batchnorm`).
DEFAULT_PRIOR = 64.0


def batchnorm_layers(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer of a network, in forward order."""
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def running_stats(layer: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """A BatchNorm layer's running mean and variance (``ModelError`` if it keeps none)."""
    if layer.running_mean is None or layer.running_var is None:
        raise ModelError(f"{type(layer).__name__} keeps no running statistics")
    return layer.running_mean, layer.running_var


def adapt_batchnorm(
    module: nn.Module, batches: Iterable[torch.Tensor], prior: float = DEFAULT_PRIOR
) -> nn.Module:
    """A copy of ``module`` whose BatchNorm statistics are re-estimated on ``batches``.

    Parameters
    ----------
    module
        The trained network (not modified).
    batches
        Normalised input batches ``(n, 3, size, size)`` of the cells to adapt to.
    prior
        Weight of the training statistics in cells: the new statistics are
        ``w * target + (1 - w) * training`` with ``w = n / (n + prior)``; 0 = target only.

    Returns
    -------
    torch.nn.Module
        The adapted copy, in eval mode (``module`` itself is returned when there are no cells
        or no BatchNorm layers).
    """
    if not batchnorm_layers(module):
        return module
    adapted = copy.deepcopy(module)
    norms = batchnorm_layers(adapted)
    source = []
    for m in norms:
        mean, var = running_stats(m)
        source.append((mean.clone(), var.clone(), m.momentum))
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all batches
    adapted.train()
    n = 0
    with torch.no_grad():
        for x in batches:
            if len(x):
                adapted(x)
                n += len(x)
    if n == 0:
        return module
    w = n / (n + prior) if prior > 0 else 1.0
    for m, (mean, var, momentum) in zip(norms, source, strict=True):
        running_mean, running_var = running_stats(m)
        running_mean.mul_(w).add_((1 - w) * mean)
        running_var.mul_(w).add_((1 - w) * var)
        m.momentum = momentum
    adapted.eval()
    return adapted
