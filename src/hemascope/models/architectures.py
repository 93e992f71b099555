"""Compact convolutional networks for single-cell crops, in plain torch.

A :class:`CellNet` is a four-stage VGG-like CNN with batch norm and global average pooling. It
is small on purpose (about 0.3 M parameters at the default widths, ~1.2 MB of float32 weights)
so that it trains on a couple of CPU cores and classifies thousands of cells per second. The
pooled feature vector (``embed``) is what slide-level (MIL) models consume. A network adapted to
a lab from a few labelled cells also carries their class centres (:class:`ClassPrototypes`).
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


#: ``arch_params`` key of a :class:`CellNet`'s class prototypes (``{"scale": .., "absent_margin": ..}``).
PROTOTYPES_PARAM = "prototypes"


class ClassPrototypes(nn.Module):
    """Logit offsets from the cosine similarity of a cell's features to labelled class centres.

    Few-shot lab adaptation (:func:`hemascope.train.few_shot.fit_prototypes`) stores the mean
    features of a lab's labelled cells per class (``centres``; ``present`` marks the classes it
    labelled). A class with a centre gains ``scale × cos(features, centre)``; a class without one
    competes as if it sat ``absent_margin`` logits below the nearest labelled class
    (``scale × max cos − absent_margin``), so a cell far from every labelled class can still be
    called, e.g., blast when the lab labelled only normal cells. Without centres (``present`` all
    false) it adds nothing.

    Parameters
    ----------
    n_classes, dim
        Output classes and feature size.
    scale
        Logits per unit of cosine similarity.
    absent_margin
        Logits by which a class without a centre trails the nearest labelled class.
    """

    centres: torch.Tensor
    present: torch.Tensor

    def __init__(self, n_classes: int, dim: int, scale: float, absent_margin: float) -> None:
        super().__init__()
        self.scale = float(scale)
        self.absent_margin = float(absent_margin)
        self.register_buffer("centres", torch.zeros(n_classes, dim))
        self.register_buffer("present", torch.zeros(n_classes, dtype=torch.bool))

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        """``(batch, n_classes)`` logit offsets of pooled features ``(batch, dim)``."""
        present = self.present
        if not bool(present.any()):
            return emb.new_zeros(emb.shape[0], present.numel())
        sims = nn.functional.normalize(emb, dim=1) @ nn.functional.normalize(self.centres.to(emb), dim=1).T
        nearest = sims[:, present].max(dim=1, keepdim=True).values
        return torch.where(present, self.scale * sims, self.scale * nearest - self.absent_margin)


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
    prototypes
        ``{"scale": .., "absent_margin": ..}``: add :class:`ClassPrototypes` to the head's logits
        (a few-shot adapted network; its centres are weights like any other).
    """

    def __init__(
        self,
        n_classes: int,
        widths: Sequence[int] = (16, 32, 64, 128),
        dropout: float = 0.2,
        prototypes: dict[str, float] | None = None,
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
        self.prototypes = ClassPrototypes(n_classes, w3, **prototypes) if prototypes is not None else None

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``(batch, embed_dim)`` of normalised images ``(batch, 3, H, W)``."""
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(batch, n_classes)``."""
        return self.forward_with_embedding(x)[0]

    def forward_with_embedding(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and embeddings in one pass."""
        emb = self.embed(x)
        logits = self.head(self.dropout(emb))
        if self.prototypes is not None:
            logits = logits + self.prototypes(emb)
        return logits, emb


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
