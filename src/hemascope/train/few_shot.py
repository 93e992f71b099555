"""Few-shot lab adaptation: class centres of the lab's cells, or a head refitted on frozen features.

With ten labelled cells per class, fine-tuning a whole network moves its features before anything
has learnt where the new lab's cells lie. Two steps that leave the features frozen:

:func:`fit_prototypes` (the default of a few-shot run from a model, :func:`is_few_shot`: all of it
when validated on its own cells, else the fine-tune's first candidate) keeps the
pretrained head and adds, per labelled class, the cosine similarity of a cell's features to the
mean features of the lab's cells of that class (:class:`~hemascope.models.architectures.ClassPrototypes`;
a nearest-class-mean classifier on top of the pretrained one). Classes the lab did not label keep
competing a fixed margin behind the nearest labelled one, so a blast is still called blast when
the lab labelled only normal cells. As the pretrained head is kept, so is its card's decision
calibration (per-batch class-mix adaptation and blast rule, :mod:`hemascope.classify.decision`)
when the classes are the pretrained model's. Measured (BENCHMARKS.md, "Few-shot by class
centres" and "Class centres at half weight"): over eleven shifted copies of three labs' cells,
ten cells per class, N/L/M/E 0.740 (refitted head) -> 0.774 (centres, full weight, no decision
calibration) -> 0.79 (now; pretrained model 0.760), normal cells called blast 1.0 % -> 0.9 %.

:func:`probe_head` fits the head first on the frozen embeddings of the labelled cells ("LP-FT",
Kumar et al. 2022), which gives a fine-tune a head that already separates them, and on its own is
a model in seconds (``hemascope train cells --init wbc --probe-head --epochs 0``):

- embeddings of every training crop in its 8 dihedral views (flips and 90° rotations), un-augmented
  otherwise, with the network in eval mode (by default with ``--init`` its BatchNorm statistics
  first recomputed on the new lab's plain crops, :mod:`hemascope.train.batchnorm`);
- the head refitted by L-BFGS on cross-entropy plus an L2 pull towards the pretrained head
  (``l2``), so classes absent from the few-shot set keep their pretrained rows and ten cells
  cannot swing the head arbitrarily far.

When the validation cells are the training cells (:func:`validates_apart` is false) a few-shot run
stops at the frozen features: no epoch choice, and no check that a fine-tune learnt rather than
memorised, is possible on cells it trained on. Measured (BENCHMARKS.md, "Few-shot: BatchNorm of
the new lab and no unvalidated fine-tune"): on another lab's CellaVision crops, validated on the
training cells, N/L/M/E 0.73 (fine-tune) -> 0.79 (refitted head); with separate validation cells
the fine-tune is kept.

:func:`probe_head` changes the network's ``head`` in place; the trainer then keeps this state as
the first candidate of its epoch selection (a fine-tune that does worse on validation is dropped).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from hemascope.errors import DataError, ModelError
from hemascope.models.card import ModelCard
from hemascope.train.augment import plain_batches

#: Default strength of the pull towards the pretrained head (chosen on the leave-PBC-out
#: few-shot validation cells).
DEFAULT_L2 = 0.01
#: ``arch_params["prototypes"]`` of a few-shot network (:class:`~hemascope.models.architectures.ClassPrototypes`):
#: chosen on shifted copies of three labs' cells (BENCHMARKS.md, "Few-shot by class centres", and
#: "Class centres at half weight, with the pretrained model's decision") together with the
#: pretrained model's class-mix adaptation and blast rule, which a class-centre model keeps: the best
#: N/L/M/E macro-F1 with ≤ 1 % of normal cells called blast (scale 7.5-15 alike).
PROTOTYPES = {"scale": 10.0, "absent_margin": 3.0}
#: A training set with fewer cells per class than this (on average) is a few-shot set: the class
#: centres are tried (the setting they were measured in), and ``train cells`` without ``--val``
#: trains on every cell (a 70/15/15 split of ten cells validates on one or two).
FEW_SHOT_MAX_PER_CLASS = 30


def is_few_shot(labels: pd.Series) -> bool:
    """Fewer than :data:`FEW_SHOT_MAX_PER_CLASS` labelled cells per class on average."""
    return len(labels) < FEW_SHOT_MAX_PER_CLASS * max(1, labels.nunique())


def validates_apart(train: pd.DataFrame, val: pd.DataFrame) -> bool:
    """Whether ``val`` holds at least one cell (image path) that is not a training cell.

    When every validation cell is also a training cell, validation cannot tell a fine-tune that
    learnt from one that memorised its ten cells per class, so a few-shot run keeps the head
    fitted on frozen features (:func:`probe_head`) and skips the fine-tuning epochs.
    """
    return bool(set(val["path"].astype(str)) - set(train["path"].astype(str)))


def dihedral_embeddings(
    module: torch.nn.Module,
    bank: torch.Tensor,
    card: ModelCard,
    device: torch.device,
    batch: int = 256,
) -> torch.Tensor:
    """Pooled features of every crop of ``bank`` in its 8 dihedral views, ``(8 n, dim)`` float64.

    Rows are ordered view by view: rows ``v * n + i`` belong to crop ``i``.
    """
    embed = getattr(module, "embed", None)
    if embed is None:
        raise ModelError(f"{type(module).__name__} has no embed(): cannot fit its head alone")
    module.eval()
    views: list[list[torch.Tensor]] = [[] for _ in range(8)]
    with torch.no_grad():
        for x in plain_batches(bank, card, device, batch):
            for flip in (0, 1):
                base = torch.flip(x, dims=(3,)) if flip else x
                for k in range(4):
                    views[flip * 4 + k].append(embed(torch.rot90(base, k, dims=(2, 3))).double())
    return torch.cat([torch.cat(v) for v in views]).cpu()


def fit_prototypes(
    module: torch.nn.Module,
    bank: torch.Tensor,
    labels: np.ndarray,
    card: ModelCard,
    device: torch.device,
) -> list[int]:
    """Set ``module.prototypes`` to the mean features of the labelled crops per class, in place.

    Parameters
    ----------
    module
        A :class:`~hemascope.models.CellNet` built with ``prototypes`` (its ``arch_params``).
    bank
        ``(n, s, s, 3)`` uint8 training crops (the trainer's crop bank).
    labels
        ``(n,)`` class indices.
    card, device
        As in :func:`dihedral_embeddings` (each crop counts in its 8 dihedral views).

    Returns
    -------
    list of int
        The classes given a centre (those with labelled crops).

    Raises
    ------
    DataError
        No labelled crops.
    ModelError
        The network has no prototypes.
    """
    prototypes = getattr(module, "prototypes", None)
    if prototypes is None:
        raise ModelError(f"{type(module).__name__} was built without prototypes")
    if len(bank) == 0:
        raise DataError("no training cells to take class centres from")
    feats = dihedral_embeddings(module, bank, card, device)
    y = np.tile(np.asarray(labels, dtype=np.int64), 8)
    present = sorted(int(c) for c in np.unique(y))
    with torch.no_grad():
        prototypes.centres.zero_()
        prototypes.present.zero_()
        for c in present:
            prototypes.centres[c] = feats[torch.as_tensor(y == c)].mean(0).to(prototypes.centres)
            prototypes.present[c] = True
    return present


def clear_prototypes(module: torch.nn.Module) -> None:
    """Forget ``module``'s class centres: its prototypes add nothing until :func:`fit_prototypes` again."""
    prototypes = getattr(module, "prototypes", None)
    if prototypes is not None:
        with torch.no_grad():
            prototypes.present.zero_()


def probe_head(
    module: torch.nn.Module,
    bank: torch.Tensor,
    labels: np.ndarray,
    card: ModelCard,
    device: torch.device,
    *,
    l2: float = DEFAULT_L2,
    max_iter: int = 300,
) -> float:
    """Refit ``module.head`` (a ``Linear``) on the frozen features of the labelled crops, in place.

    Parameters
    ----------
    module
        The network (a :class:`~hemascope.models.CellNet`: ``embed`` + ``head``).
    bank
        ``(n, s, s, 3)`` uint8 training crops (the trainer's crop bank).
    labels
        ``(n,)`` class indices.
    card
        The model's card (input size, normalisation, preprocessing).
    device
        Where the network runs.
    l2
        Weight of ``||W - W0||² + ||b - b0||²`` (pull towards the current head).
    max_iter
        L-BFGS iterations.

    Returns
    -------
    float
        The final training loss.

    Raises
    ------
    DataError
        No labelled crops.
    ModelError
        The network has no linear ``head``.
    """
    head = getattr(module, "head", None)
    if not isinstance(head, torch.nn.Linear):
        raise ModelError(f"{type(module).__name__} has no linear head to refit")
    if len(bank) == 0:
        raise DataError("no training cells to fit the head on")
    feats = dihedral_embeddings(module, bank, card, device)
    y = torch.as_tensor(np.tile(np.asarray(labels, dtype=np.int64), 8))
    w0 = head.weight.detach().double().cpu()
    b0 = head.bias.detach().double().cpu()
    w = w0.clone().requires_grad_(True)
    b = b0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([w, b], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(feats @ w.T + b, y)
        loss = loss + l2 * (((w - w0) ** 2).sum() + ((b - b0) ** 2).sum())
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        final = float(
            torch.nn.functional.cross_entropy(feats @ w.T + b, y)
            + l2 * (((w - w0) ** 2).sum() + ((b - b0) ** 2).sum())
        )
        head.weight.copy_(w.detach().to(head.weight))
        head.bias.copy_(b.detach().to(head.bias))
    return final
