"""BatchNorm statistics recomputed on the images the model will see at inference ("precise BN")."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hemascope.models.card import ModelCard
from hemascope.train.augment import AugmentConfig, augment_batch


def recalibrate_batchnorm(
    module: nn.Module,
    bank: torch.Tensor,
    card: ModelCard,
    device: torch.device,
    *,
    cells: int = 2048,
    batch: int = 256,
    seed: int = 0,
) -> None:
    """Replace every BatchNorm layer's running mean and variance by their average over plain crops.

    Training batches are augmented (rotations, scale and stain jitter) and class-balanced, so the
    running averages BatchNorm keeps during training describe other images than the un-augmented
    crops of inference. On the PBC noise protocol this mismatch cost 1-6 macro-F1 points at the
    last epoch and made validation scores jump between epochs; recomputing the statistics on
    ``cells`` un-augmented training crops before each validation removes it.

    Parameters
    ----------
    module
        The network (left in eval mode).
    bank
        ``(n, h, w, 3)`` uint8 training crops (the trainer's crop bank).
    card
        Gives the input size and normalisation.
    device
        Where the module lives.
    cells
        How many crops (a fixed random subset, seeded) to average over.
    batch
        Crops per forward pass.
    seed
        Picks the subset.
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms or len(bank) == 0:
        module.eval()
        return
    pick = np.sort(np.random.default_rng(seed).permutation(len(bank))[:cells])
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    module.train()
    off = AugmentConfig.off()
    with torch.no_grad():
        for start in range(0, len(pick), batch):
            idx = torch.as_tensor(pick[start : start + batch])
            module(augment_batch(bank[idx].to(device), card.input_size, card.mean, card.std, off))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    module.eval()
