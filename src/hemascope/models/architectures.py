"""Compact convolutional networks for single-cell crops, in plain torch.

A :class:`CellNet` is a four-stage VGG-like CNN with batch norm and global average pooling. It
is small on purpose (about 0.3 M parameters at the default widths, ~1.2 MB of float32 weights)
so that it trains on a couple of CPU cores and classifies thousands of cells per second. The
pooled feature vector (``embed``) is what slide-level (MIL) models consume.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from hemascope.errors import ModelIntegrityError
from hemascope.models.mil import CARD_ARCHITECTURES


def _conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class CellNet(nn.Module):
    """A compact CNN: stem, three double-conv stages, global average pooling, linear head.

    Parameters
    ----------
    n_classes
        Number of output classes.
    widths
        Channels of the stem and of the three stages; the last one is the embedding size.
    dropout
        Dropout probability before the classification head.
    """

    def __init__(
        self, n_classes: int, widths: Sequence[int] = (16, 32, 64, 128), dropout: float = 0.2
    ) -> None:
        super().__init__()
        if n_classes < 2:
            raise ModelIntegrityError(f"a classifier needs at least 2 classes, got {n_classes}")
        if len(widths) != 4:
            raise ModelIntegrityError(f"CellNet needs 4 widths, got {list(widths)}")
        w0, w1, w2, w3 = (int(w) for w in widths)
        self.features = nn.Sequential(
            _conv_bn(3, w0),
            nn.MaxPool2d(2),
            _conv_bn(w0, w1),
            _conv_bn(w1, w1),
            nn.MaxPool2d(2),
            _conv_bn(w1, w2),
            _conv_bn(w2, w2),
            nn.MaxPool2d(2),
            _conv_bn(w2, w3),
            _conv_bn(w3, w3),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(w3, n_classes)
        self.embed_dim = w3

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``(batch, embed_dim)`` of normalised images ``(batch, 3, H, W)``."""
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(batch, n_classes)``."""
        return self.head(self.dropout(self.embed(x)))

    def forward_with_embedding(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and embeddings in one pass."""
        emb = self.embed(x)
        return self.head(self.dropout(emb)), emb


ARCHITECTURES: dict[str, type[nn.Module]] = {"cellnet": CellNet}

#: The model kinds and the architecture names a card of each kind may hold: the one table the
#: card checks, the registry lists by (``list_models(kind=...)``) and the loader builds from.
#: ``"cell"``: single-cell classifiers (:data:`ARCHITECTURES`); ``"bag"``: slide-level models over
#: a cell model's embeddings (:mod:`hemascope.models.mil`). Segmentation weights are Cellpose's own
#: (:mod:`hemascope.segment.cellpose_backend`), not hemascope cards.
ARCHITECTURES_BY_KIND: dict[str, tuple[str, ...]] = {
    "cell": tuple(ARCHITECTURES),
    "bag": CARD_ARCHITECTURES,
}

#: The model kinds, in listing order.
MODEL_KINDS: tuple[str, ...] = tuple(ARCHITECTURES_BY_KIND)


def build_model(
    architecture: str, n_classes: int, params: dict[str, Any] | None = None
) -> nn.Module:
    """Instantiate an architecture by name.

    Parameters
    ----------
    architecture
        A key of :data:`ARCHITECTURES`.
    n_classes
        Number of output classes.
    params
        Keyword arguments of the architecture (e.g. ``{"widths": [16, 32, 64, 128]}``).

    Returns
    -------
    torch.nn.Module
        The freshly initialised network.
    """
    try:
        cls = ARCHITECTURES[architecture]
    except KeyError:
        raise ModelIntegrityError(
            f"unknown architecture {architecture!r}; known: {sorted(ARCHITECTURES)}"
        ) from None
    try:
        return cls(n_classes, **(params or {}))
    except TypeError as exc:
        raise ModelIntegrityError(f"bad parameters for {architecture!r}: {exc}") from None
