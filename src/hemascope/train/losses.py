"""Classification losses for noisy and imbalanced labels, behind one factory.

``ce`` cross-entropy; ``ls`` label smoothing; ``gce`` generalized cross-entropy (Zhang & Sabuncu,
2018); ``sce`` symmetric cross-entropy (Wang et al., 2019); ``focal`` (Lin et al., 2017);
``cb`` class-balanced focal loss with effective-number weights (Cui et al., 2019); ``ldam``
label-distribution-aware margins with deferred re-weighting (Cao et al., 2019).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hemascope.errors import InvalidInputError

LOSSES = ("ce", "ls", "gce", "sce", "focal", "cb", "ldam")


def effective_number_weights(counts: np.ndarray, beta: float = 0.999) -> torch.Tensor:
    """Class weights ``(1 - beta) / (1 - beta**n_c)``, normalised to sum to the class count."""
    counts = np.maximum(np.asarray(counts, dtype=np.float64), 1)
    w = (1 - beta) / (1 - np.power(beta, counts))
    return torch.tensor(w / w.sum() * len(counts), dtype=torch.float32)


class GeneralizedCE(nn.Module):
    """``(1 - p_y^q) / q``: MAE-like robustness for q → 1, CE for q → 0."""

    def __init__(self, q: float = 0.7) -> None:
        super().__init__()
        self.q = q

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p = torch.softmax(logits.float(), 1).gather(1, target[:, None]).squeeze(1).clamp_min(1e-7)
        return ((1 - p**self.q) / self.q).mean()


class SymmetricCE(nn.Module):
    """``alpha * CE + beta * reverse CE`` with ``log 0`` clipped to ``A = -4``."""

    def __init__(self, n_classes: int, alpha: float = 0.1, beta: float = 1.0) -> None:
        super().__init__()
        self.n_classes, self.alpha, self.beta = n_classes, alpha, beta

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        ce = F.cross_entropy(logits, target)
        p = torch.softmax(logits, 1).clamp(1e-7, 1.0)
        onehot = F.one_hot(target, self.n_classes).float().clamp(1e-4, 1.0)
        rce = -(p * torch.log(onehot)).sum(1).mean()
        return self.alpha * ce + self.beta * rce


class FocalLoss(nn.Module):
    """``-w_y (1 - p_y)^gamma log p_y`` with optional class weights ``w``."""

    weight: torch.Tensor | None  # a buffer

    def __init__(self, gamma: float = 2.0, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.gamma = gamma
        self.register_buffer("weight", weight if weight is not None else None)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits.float(), 1).gather(1, target[:, None]).squeeze(1)
        loss = -((1 - logp.exp()) ** self.gamma) * logp
        if self.weight is not None:
            w = self.weight[target]
            return (loss * w).sum() / w.sum()
        return loss.mean()


class LDAMLoss(nn.Module):
    """LDAM: subtract a margin ``C / n_y^(1/4)`` from the true logit; DRW after ``drw_epoch``.

    Call :meth:`set_epoch` every epoch: from ``drw_epoch`` on, the loss is re-weighted with the
    effective-number class weights (deferred re-weighting).
    """

    margins: torch.Tensor  # buffers
    drw_weight: torch.Tensor

    def __init__(
        self,
        counts: np.ndarray,
        max_margin: float = 0.5,
        s: float = 30.0,
        drw_epoch: int | None = None,
    ) -> None:
        super().__init__()
        counts = np.maximum(np.asarray(counts, dtype=np.float64), 1)
        m = 1.0 / np.power(counts, 0.25)
        self.register_buffer(
            "margins", torch.tensor(m * (max_margin / m.max()), dtype=torch.float32)
        )
        self.register_buffer("drw_weight", effective_number_weights(counts))
        self.s, self.drw_epoch, self.epoch = s, drw_epoch, 0

    def set_epoch(self, epoch: int) -> None:
        """Tell the loss which epoch is starting (switches on re-weighting)."""
        self.epoch = epoch

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        margin = F.one_hot(target, logits.shape[1]).float() * self.margins[None]
        w = self.drw_weight if self.drw_epoch is not None and self.epoch >= self.drw_epoch else None
        return F.cross_entropy(self.s * torch.tanh((logits - margin) / self.s), target, weight=w)


def make_loss(name: str, class_counts: np.ndarray, *, epochs: int = 10) -> nn.Module:
    """Build a loss by name (see :data:`LOSSES`).

    Parameters
    ----------
    name
        One of :data:`LOSSES`.
    class_counts
        Training samples per class (for ``cb`` and ``ldam``).
    epochs
        Total epochs (LDAM's deferred re-weighting starts at 2/3 of them).

    Returns
    -------
    torch.nn.Module
        ``loss(logits, target) -> scalar``.
    """
    counts = np.asarray(class_counts)
    k = len(counts)
    if name == "ce":
        return nn.CrossEntropyLoss()
    if name == "ls":
        return nn.CrossEntropyLoss(label_smoothing=0.1)
    if name == "gce":
        return GeneralizedCE(q=0.7)
    if name == "sce":
        return SymmetricCE(k)
    if name == "focal":
        return FocalLoss(gamma=2.0)
    if name == "cb":
        return FocalLoss(gamma=1.0, weight=effective_number_weights(counts))
    if name == "ldam":
        return LDAMLoss(counts, drw_epoch=max(1, (2 * epochs) // 3))
    raise InvalidInputError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")
