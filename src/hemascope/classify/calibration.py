"""Confidence calibration by temperature scaling (Guo et al., 2017).

One scalar ``T`` is fitted on held-out validation logits by minimising the negative log
likelihood of ``softmax(logits / T)``; it is stored in the model card and applied at inference.
"""

from __future__ import annotations

import numpy as np
import torch

from hemascope.errors import InvalidInputError


def fit_temperature(logits: np.ndarray, labels: np.ndarray, max_iter: int = 200) -> float:
    """Fit the temperature that minimises validation NLL.

    Parameters
    ----------
    logits
        ``(n, n_classes)`` uncalibrated logits on validation data.
    labels
        ``(n,)`` integer true labels.
    max_iter
        L-BFGS iterations.

    Returns
    -------
    float
        The temperature (> 0), clipped to [0.05, 20].
    """
    logits_t = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    labels_t = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if logits_t.ndim != 2 or len(logits_t) != len(labels_t) or len(labels_t) == 0:
        raise InvalidInputError("fit_temperature needs (n, k) logits and n labels, n > 0")
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")
    nll = torch.nn.CrossEntropyLoss()

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nll(logits_t / log_t.exp(), labels_t)
        loss.backward()
        return loss

    opt.step(closure)
    return float(np.clip(log_t.exp().item(), 0.05, 20.0))


def calibrated_probabilities(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Softmax of ``logits / temperature`` along the last axis."""
    return torch.softmax(logits.float() / float(temperature), dim=-1)
