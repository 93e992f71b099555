"""Bag (slide-level) models: loaded through the one model registry, used on a bag of cells.

A bag model is a ``.safetensors`` file plus a :class:`~hemascope.models.card.ModelCard` of
``kind="bag"``: it records the cell model whose embeddings it reads (name, version, sha256 and
embedding size, and that model's crop ``input_size``/``mpp``), which cells form the bag
(``instances``), the abstention rule (``min_instances``), the calibration temperature and whether
the model is a synthetic demo. Finding, hash-checking, caching, URLs and device placement are the
registry's (:func:`hemascope.models.load_model`); this module adds the prediction on one bag.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hemascope.models.card import ModelCard
from hemascope.models.registry import load_model

__all__ = ["BagModel", "load_bag_model"]


@dataclass
class BagModel:
    """A loaded bag model: the torch module (eval mode) and its card."""

    module: Any
    card: ModelCard

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated class probabilities ``(C,)`` and cell weights ``(N, C)`` of one bag.

        Parameters
        ----------
        features : numpy.ndarray
            Cell embeddings ``(N, embedding_dim)`` of the bag, ``N >= 1``.

        Returns
        -------
        tuple of numpy.ndarray
            Probabilities and per-cell, per-class weights (attention for MIL models).
        """
        import torch

        device = next(iter(self.module.parameters())).device
        x = torch.as_tensor(np.asarray(features, dtype=np.float32), device=device)[None]
        with torch.no_grad():
            logits, weights = self.module(x)
            probs = torch.softmax(logits / self.card.temperature, dim=-1)
        return probs[0].cpu().numpy().astype(np.float64), weights[0].cpu().numpy()


def load_bag_model(name_or_path: str | Path, device: str = "cpu") -> BagModel:
    """Load a bag model from the registry (name, card, weights file, folder or URL).

    Parameters
    ----------
    name_or_path : str or Path
        A registry name (``hemascope.models.list_models(kind="bag")``), a ``.json`` card, a
        ``.safetensors`` file with its card beside it, a folder holding one card, or a URL.
    device : str, optional
        Torch device of the module.

    Returns
    -------
    BagModel
        Module in eval mode and card.

    Raises
    ------
    ModelNotFoundError
        If nothing of that name or path exists.
    ModelIntegrityError
        If the card is invalid or not a bag model's, the hash differs or tensors do not fit
        the architecture.
    """
    loaded = load_model(name_or_path, device=device, kind="bag")
    return BagModel(module=loaded.module, card=loaded.card)
