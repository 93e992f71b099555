"""Start a training run from a registry model's weights (``hemascope train cells --init MODEL``).

:func:`init_from_model` copies every tensor of a trained cell model into a freshly built network
of the same architecture and widths (a few-shot source's class centres aside). The classification head is copied row by row for the classes
the two models share by name (all of it when the classes are the same; e.g. the 10-output ``wbc``
into a ``--classes wbc`` model keeps the 9 white-cell rows), so a few-shot fine-tune starts from
the pretrained decision, not from a random one; classes the source lacks keep their random rows. The input crop (size, µm/px) and the normalisation must match: features learnt on other
pixels would be meaningless.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from hemascope.errors import ModelIntegrityError
from hemascope.models import ModelCard
from hemascope.models.architectures import PROTOTYPES_PARAM
from hemascope.models.registry import load_model

#: Parameter names of the classification head (left out when the classes differ).
HEAD_PREFIX = "head."
#: Tensor names of a few-shot network's class centres (a lab's own: never carried over).
PROTOTYPES_PREFIX = f"{PROTOTYPES_PARAM}."


def _shape(arch_params: dict) -> dict:
    """The parameters that shape the network (its class centres aside)."""
    return {k: v for k, v in arch_params.items() if k != PROTOTYPES_PARAM}


@dataclass
class WarmStart:
    """What :func:`init_from_model` did.

    Attributes
    ----------
    source
        ``name@version (sha256[:12])`` of the model the weights came from.
    copied, skipped
        Names of the tensors copied and of those left at their initialisation.
    head_classes
        Classes whose head rows were copied.
    source_card
        The source model's card (its input ``preprocess`` must be kept by the new model).
    """

    source: str
    copied: list[str]
    skipped: list[str]
    head_classes: list[str] = field(default_factory=list)
    source_card: ModelCard | None = None


def init_from_model(module: torch.nn.Module, card: ModelCard, name_or_path: str) -> WarmStart:
    """Load a registry model's weights into ``module`` (built from ``card``), head aside.

    Parameters
    ----------
    module
        The freshly built network that will be trained.
    card
        Its card (architecture, widths, classes, input size, µm/px, normalisation).
    name_or_path
        A registry name (``"wbc"``), a card/weights path or a URL (see
        :func:`hemascope.models.load_model`).

    Returns
    -------
    WarmStart

    Raises
    ------
    ModelIntegrityError
        If the source model has another architecture, widths, input crop or normalisation.
    ModelNotFoundError
        If the model cannot be found.
    """
    source = load_model(name_or_path, "cpu")
    src = source.card
    mismatches = [
        f"{what} {a!r} vs {b!r}"
        for what, a, b in (
            ("architecture", src.architecture, card.architecture),
            ("arch_params", _shape(src.arch_params), _shape(card.arch_params)),
            ("input_size", src.input_size, card.input_size),
            ("mpp", src.mpp, card.mpp),
            ("mean", list(src.mean), list(card.mean)),
            ("std", list(src.std), list(card.std)),
        )
        if a != b
    ]
    if mismatches:
        raise ModelIntegrityError(
            f"cannot start from {source.label}: it differs from the model being trained in "
            + "; ".join(mismatches)
        )
    same_head = list(src.classes) == list(card.classes)
    shared = [(i, src.classes.index(c)) for i, c in enumerate(card.classes) if c in src.classes]
    target = module.state_dict()
    copied, skipped = [], []
    for key, value in source.module.state_dict().items():
        if key.startswith(PROTOTYPES_PREFIX):
            continue
        if key.startswith(HEAD_PREFIX) and not same_head:
            if not shared:
                continue
            rows = target[key].clone()
            for i, j in shared:
                rows[i] = value[j].detach().to(rows.device)
            target[key] = rows
        else:
            target[key] = value.detach().clone().to(target[key].device)
        copied.append(key)
    skipped = [key for key in target if key not in copied]
    module.load_state_dict(target)
    return WarmStart(
        source=source.label,
        copied=copied,
        skipped=skipped,
        head_classes=[card.classes[i] for i, _ in shared],
        source_card=src,
    )
