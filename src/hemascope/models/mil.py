"""Bag classifiers over per-cell embeddings, in plain torch.

Three ways to turn a bag of cell embeddings into a slide (bag) label, sharing one interface so they
are trained, evaluated and shown side by side:

- :class:`MeanPoolBagClassifier` — mean of the (projected) cell embeddings, then a linear layer;
- :class:`GatedAttentionMIL` — gated attention multiple-instance learning (Ilse et al. 2018) with one
  attention head per class, each class scored from its own attention-weighted bag vector, as in
  SCEMILA (Hehr et al. 2023);
- :class:`InstanceBagClassifier` — a cell-level classifier trained on labels inherited from the bag;
  the bag probability is the mean of the cell probabilities;
- :class:`GroupedMeanBagClassifier` — the mean embedding of each *group* of cell types (e.g. the
  cells the cell model calls blast or immature granulocyte, and all the others) and each group's
  share of the bag, standardised, then a linear layer. The cell model's own classification head
  (fixed buffers) assigns every cell softly to the groups, so the bag model still reads nothing
  but the embeddings.

:class:`BagEnsemble` averages several members of one architecture (``arch_params["members"]``),
trained from different seeds.

Every model maps ``(features (B, N, D), mask (B, N) bool)`` to ``(logits (B, C), weights (B, N, C))``
where ``weights`` says how much each cell contributed to each class (attention for MIL, uniform for
mean pooling, per-cell probability share for the instance model).
"""

from __future__ import annotations

import torch
from torch import nn

from hemascope.errors import InvalidInputError


def _full_mask(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    return mask.to(torch.bool)


class _CellEncoder(nn.Sequential):
    """Per-cell projection of an embedding: LayerNorm, Linear, ReLU, Dropout."""

    def __init__(self, in_dim: int, hidden: int, dropout: float) -> None:
        super().__init__(
            nn.LayerNorm(in_dim), nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout)
        )


class GatedAttentionMIL(nn.Module):
    """Gated attention MIL with one attention head per class (SCEMILA-style).

    Parameters
    ----------
    in_dim : int
        Dimension of a cell embedding.
    n_classes : int
        Number of bag classes.
    hidden : int, optional
        Width of the per-cell projection.
    attention_dim : int, optional
        Width of the gated attention layers.
    dropout : float, optional
        Dropout after the per-cell projection.
    """

    def __init__(
        self,
        in_dim: int,
        n_classes: int,
        hidden: int = 128,
        attention_dim: int = 64,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.encoder = _CellEncoder(in_dim, hidden, dropout)
        self.attention_v = nn.Linear(hidden, attention_dim)
        self.attention_u = nn.Linear(hidden, attention_dim)
        self.attention_w = nn.Linear(attention_dim, n_classes)
        self.class_weight = nn.Parameter(torch.empty(n_classes, hidden))
        self.class_bias = nn.Parameter(torch.zeros(n_classes))
        nn.init.xavier_uniform_(self.class_weight)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Bag logits ``(B, C)`` and per-class attention ``(B, N, C)`` (sums to 1 over cells)."""
        mask = _full_mask(x, mask)
        h = self.encoder(x)
        scores = self.attention_w(
            torch.tanh(self.attention_v(h)) * torch.sigmoid(self.attention_u(h))
        )
        scores = scores.masked_fill(~mask[..., None], float("-inf"))
        attention = torch.softmax(scores, dim=1)
        attention = torch.nan_to_num(attention, nan=0.0)  # a fully masked (empty) bag
        pooled = torch.einsum("bnc,bnh->bch", attention, h)
        logits = (pooled * self.class_weight).sum(-1) + self.class_bias
        return logits, attention


class MeanPoolBagClassifier(nn.Module):
    """Mean of the projected cell embeddings followed by a linear classifier.

    Parameters
    ----------
    in_dim : int
        Dimension of a cell embedding.
    n_classes : int
        Number of bag classes.
    hidden : int, optional
        Width of the per-cell projection.
    dropout : float, optional
        Dropout after the per-cell projection.
    """

    def __init__(
        self, in_dim: int, n_classes: int, hidden: int = 128, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.encoder = _CellEncoder(in_dim, hidden, dropout)
        self.head = nn.Linear(hidden, n_classes)
        self.n_classes = n_classes

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Bag logits ``(B, C)`` and uniform cell weights ``(B, N, C)``."""
        mask = _full_mask(x, mask)
        weights = mask.to(x.dtype) / mask.sum(1, keepdim=True).clamp(min=1).to(x.dtype)
        pooled = torch.einsum("bn,bnh->bh", weights, self.encoder(x))
        weights = weights[..., None].expand(-1, -1, self.n_classes)
        return self.head(pooled), weights


class InstanceBagClassifier(nn.Module):
    """A cell classifier trained on inherited bag labels; bag probability = mean cell probability.

    Parameters
    ----------
    in_dim : int
        Dimension of a cell embedding.
    n_classes : int
        Number of bag classes.
    hidden : int, optional
        Width of the hidden layer.
    dropout : float, optional
        Dropout after the hidden layer.
    """

    def __init__(
        self, in_dim: int, n_classes: int, hidden: int = 128, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.encoder = _CellEncoder(in_dim, hidden, dropout)
        self.head = nn.Linear(hidden, n_classes)

    def cell_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Per-cell logits ``(B, N, C)`` (trained against the inherited bag label)."""
        return self.head(self.encoder(x))

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Bag log-probabilities ``(B, C)`` (mean cell probability) and each cell's share ``(B, N, C)``."""
        mask = _full_mask(x, mask)
        probs = torch.softmax(self.cell_logits(x), dim=-1) * mask[..., None].to(x.dtype)
        total = probs.sum(1, keepdim=True)
        n = mask.sum(1).clamp(min=1).to(x.dtype)[:, None]
        bag_probs = total[:, 0, :] / n
        share = probs / total.clamp(min=1e-12)
        return torch.log(bag_probs.clamp(min=1e-12)), share


class GroupedMeanBagClassifier(nn.Module):
    """Per-group mean embeddings and group shares, standardised, then a linear classifier.

    Every cell is assigned to the groups by the cell model's calibrated class probabilities
    (``softmax((W e + b) / T)`` with the cell model's head ``W, b`` and temperature ``T``, kept as
    buffers and set by :meth:`set_cell_head`), summed over each group's classes. The bag vector is,
    for each group, the membership-weighted mean embedding and the group's share of the bag; it is
    standardised with statistics of the training bags (:meth:`fit_normalisation`).

    Parameters
    ----------
    in_dim : int
        Dimension of a cell embedding.
    n_classes : int
        Number of bag classes.
    cell_classes : sequence of str
        The cell model's classes, in its output order.
    groups : sequence of sequence of str
        Cell classes of each group (e.g. ``[["blast", "ig"], [...the rest]]``).
    cell_temperature : float, optional
        The cell model's calibration temperature.
    dropout : float, optional
        Dropout on the standardised bag vector.
    """

    # buffers (register_buffer in __init__), declared so that they are typed as tensors
    group_matrix: torch.Tensor
    cell_weight: torch.Tensor
    cell_bias: torch.Tensor
    feature_mean: torch.Tensor
    feature_std: torch.Tensor

    def __init__(
        self,
        in_dim: int,
        n_classes: int,
        cell_classes: list[str] | None = None,
        groups: list[list[str]] | None = None,
        cell_temperature: float = 1.0,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        cell_classes = list(cell_classes or [])
        groups = [list(g) for g in groups or []]
        unknown = sorted({c for g in groups for c in g} - set(cell_classes))
        if not cell_classes or not groups or unknown:
            raise InvalidInputError(
                f"a grouped bag model needs the cell classes and groups of them; unknown {unknown}"
            )
        matrix = torch.zeros(len(groups), len(cell_classes))
        for g, members in enumerate(groups):
            for name in members:
                matrix[g, cell_classes.index(name)] = 1.0
        n_features = len(groups) * (in_dim + 1)
        self.cell_temperature = float(cell_temperature)
        self.register_buffer("group_matrix", matrix)
        self.register_buffer("cell_weight", torch.zeros(len(cell_classes), in_dim))
        self.register_buffer("cell_bias", torch.zeros(len(cell_classes)))
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_std", torch.ones(n_features))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(n_features, n_classes)

    def set_cell_head(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        """Copy the cell model's classification head (``(K, D)`` weight, ``(K,)`` bias)."""
        self.cell_weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
        self.cell_bias.copy_(torch.as_tensor(bias, dtype=torch.float32))

    def membership(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Soft group membership of every cell ``(B, N, G)`` (0 for padding)."""
        mask = _full_mask(x, mask)
        logits = x @ self.cell_weight.T + self.cell_bias
        probs = torch.softmax(logits / self.cell_temperature, dim=-1)
        return (probs @ self.group_matrix.T) * mask[..., None].to(x.dtype)

    def _raw(self, x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        member = self.membership(x, mask)
        n = _full_mask(x, mask).sum(1).clamp(min=1).to(x.dtype)[:, None]
        mass = member.sum(1)  # (B, G)
        means = torch.einsum("bng,bnd->bgd", member, x) / mass.clamp(min=1e-6)[..., None]
        features = torch.cat([means.flatten(1), mass / n], dim=1)
        return features, member, mass

    def bag_features(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Unstandardised bag vectors ``(B, G * (D + 1))``."""
        return self._raw(x, mask)[0]

    def fit_normalisation(self, features: torch.Tensor) -> None:
        """Set the standardisation from training bag vectors (:meth:`bag_features`)."""
        self.feature_mean.copy_(features.mean(0))
        self.feature_std.copy_(features.std(0).clamp(min=1e-4))

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Bag logits ``(B, C)`` and each cell's evidence for each class ``(B, N, C)``.

        The standardised bag vector is linear in the cells, so the logits split exactly into a
        bias plus one term per cell, measured from the average training bag: a cell's term for
        class ``c`` minus the mean of its terms over classes is its evidence for ``c`` (> 0: it
        pushes the bag towards ``c``). A bag's evidence sums to its logit margin over the bias.
        """
        features, member, mass = self._raw(x, mask)
        z = (features - self.feature_mean) / self.feature_std
        logits = self.head(self.dropout(z))
        groups, dim = member.shape[-1], x.shape[-1]
        w = self.head.weight / self.feature_std  # (C, F)
        w_means = w[:, : groups * dim].reshape(-1, groups, dim)  # (C, G, D)
        w_share = w[:, groups * dim :]  # (C, G)
        mu_means = self.feature_mean[: groups * dim].reshape(groups, dim)
        mu_share = self.feature_mean[groups * dim :]
        valid = _full_mask(x, mask).to(x.dtype)[..., None]
        n = valid.sum(1, keepdim=True).clamp(min=1)  # (B, 1, 1)
        share = member / mass.clamp(min=1e-6)[:, None, :]  # (B, N, G), sums to 1 over cells
        centred = x[:, :, None, :] - mu_means  # (B, N, G, D)
        terms = torch.einsum("bng,cgd,bngd->bnc", share, w_means, centred)
        terms = terms + torch.einsum("bng,cg->bnc", (member - mu_share * valid) / n, w_share)
        terms = terms * valid
        return logits, terms - terms.mean(-1, keepdim=True)


class BagEnsemble(nn.Module):
    """Several bag classifiers; logits and cell weights are their means.

    Parameters
    ----------
    members : sequence of torch.nn.Module
        The trained members (same classes; one architecture, or several for ``"combined"``).
    """

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise InvalidInputError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean bag logits ``(B, C)`` and mean cell weights ``(B, N, C)`` of the members."""
        outputs = [member(x, mask) for member in self.members]
        logits = torch.stack([o[0] for o in outputs]).mean(0)
        weights = torch.stack([o[1] for o in outputs]).mean(0)
        return logits, weights


def build_bag_model(architecture: str, in_dim: int, n_classes: int, **kwargs) -> nn.Module:
    """Build an untrained bag classifier by its card name.

    Parameters
    ----------
    architecture : str
        One of :data:`BAG_ARCHITECTURES`.
    in_dim : int
        Dimension of a cell embedding.
    n_classes : int
        Number of bag classes.
    **kwargs
        Width/dropout settings passed to the model class; ``members=K`` (K > 1) builds a
        :class:`BagEnsemble` of K such models; for ``"combined"``, ``parts`` lists each part's
        ``{"architecture": ..., **settings}``.

    Returns
    -------
    torch.nn.Module
        The model (in training mode).

    Raises
    ------
    InvalidInputError
        For an unknown architecture or non-positive sizes.
    """
    if in_dim <= 0 or n_classes < 2:
        raise InvalidInputError(
            f"a bag model needs in_dim > 0 and >= 2 classes, got {in_dim}, {n_classes}"
        )
    classes = _BAG_CLASSES
    if architecture == "combined":
        parts = [dict(part) for part in kwargs.get("parts") or []]
        if not parts or any(p.get("architecture") not in classes for p in parts):
            raise InvalidInputError("a combined bag model needs parts of known architectures")
        return BagEnsemble(
            [build_bag_model(p.pop("architecture"), in_dim, n_classes, **p) for p in parts]
        )
    if architecture not in classes:
        raise InvalidInputError(
            f"unknown bag architecture {architecture!r}; expected one of {list(CARD_ARCHITECTURES)}"
        )
    members = int(kwargs.pop("members", 1))
    if members < 1:
        raise InvalidInputError(f"members must be >= 1, got {members}")
    if members > 1:
        return BagEnsemble(
            [classes[architecture](in_dim, n_classes, **kwargs) for _ in range(members)]
        )
    return classes[architecture](in_dim, n_classes, **kwargs)


#: The trainable bag-model architectures by the name written in model cards: the one list.
_BAG_CLASSES: dict[str, type[nn.Module]] = {
    "attention": GatedAttentionMIL,
    "mean": MeanPoolBagClassifier,
    "instance": InstanceBagClassifier,
    "grouped": GroupedMeanBagClassifier,
}

#: Names of the trainable bag-model architectures, as written in model cards.
BAG_ARCHITECTURES: tuple[str, ...] = tuple(_BAG_CLASSES)

#: A card may also hold ``"combined"``: the average of trained models of several architectures
#: (``arch_params["parts"]``: one ``{"architecture": ..., **params}`` per part).
CARD_ARCHITECTURES: tuple[str, ...] = (*BAG_ARCHITECTURES, "combined")
