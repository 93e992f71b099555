"""Which slide-level (bag) models apply to an analysis: one rule, used by every user path.

**The rule.** A bag model runs only on the embeddings of the cell model it was trained on: its card
names that cell model (``embedding_model``) and the sha256 of its weights (``embedding_sha256``).
A bag model *fits* a cell model when the sha256 matches (or, for a card without a sha256, the name
does). By default an analysis runs every registry bag model that fits the chosen cell model and is
not a SYNTHETIC/DEMO model, so a real-data run never shows a demo model's answer; ``hemascope
demo`` asks for the demo models explicitly (``include_demo=True``). A model named explicitly (the
``slide_model`` setting, ``--slide-model``) must fit, or the run is refused before any work.

New bag models need no code: a card that appears in the registry is picked up for the cell model
it names.

Research use only — not for diagnosis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hemascope.errors import InvalidInputError
from hemascope.models.card import DEMO_LABEL, ModelCard
from hemascope.models.registry import list_models
from hemascope.slide.bag_model import load_bag_model

#: ``slide_model`` values that switch slide-level models off.
NO_SLIDE_MODEL = "none"


@dataclass(frozen=True)
class SlideModelChoice:
    """Whether one bag model runs in an analysis, and why (not).

    Attributes
    ----------
    model : str
        Bag model name (or the card path as given).
    runs : bool
        True when it runs on this analysis.
    reason : str
        Why it does not run ("" when it runs).
    embedding_model : str
        The cell model whose embeddings it reads.
    demo : bool
        True for a SYNTHETIC/DEMO model.
    """

    model: str
    runs: bool
    reason: str
    embedding_model: str
    demo: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dictionary."""
        return {"model": self.model, "runs": self.runs, "reason": self.reason,
                "embedding_model": self.embedding_model, "demo": self.demo}


def _cell_identity(cell: Any) -> tuple[str, str]:
    """``(name, sha256)`` of a cell model given as a card, a loaded model or a plain sha256."""
    if isinstance(cell, str):
        return "", cell
    card = getattr(cell, "card", cell)
    return str(getattr(card, "name", "") or ""), str(getattr(card, "sha256", "") or "")


def bag_model_fits(card: ModelCard, cell: Any) -> bool:
    """Whether the bag model ``card`` reads the embeddings of the cell model ``cell``.

    Parameters
    ----------
    card : ModelCard
        The bag model's card.
    cell : ModelCard, LoadedModel or str
        The cell model (its card, the loaded model, or its weights' sha256).

    Returns
    -------
    bool
        True when the card's ``embedding_sha256`` equals the cell model's sha256; for a card (or a
        cell model) without a sha256, when the names match.
    """
    name, sha = _cell_identity(cell)
    if card.embedding_sha256 and sha:
        return card.embedding_sha256 == sha
    return bool(name) and card.embedding_model == name


def _not_fitting_reason(card: ModelCard, cell: Any) -> str:
    name, _ = _cell_identity(cell)
    return (f"not applicable: {card.name} reads the embeddings of cell model "
            f"{card.embedding_model!r}" + (f", not of {name!r}" if name else ""))


def _registry_cards() -> list[ModelCard]:
    """The cards of the registry's bag models (cards only: no weights are read)."""
    return sorted(list_models(kind="bag"), key=lambda card: card.name.split("-"))


def slide_model_choices(cell: Any, *, include_demo: bool = False) -> list[SlideModelChoice]:
    """Every registry bag model with whether it runs by default on the cell model ``cell``.

    Parameters
    ----------
    cell : ModelCard, LoadedModel or str
        The analysis' cell model.
    include_demo : bool, optional
        Also run SYNTHETIC/DEMO models (``hemascope demo``); off for real data.

    Returns
    -------
    list of SlideModelChoice
        In registry order; those that run first.
    """
    choices = []
    for card in _registry_cards():
        if not bag_model_fits(card, cell):
            choices.append(SlideModelChoice(card.name, False, _not_fitting_reason(card, cell),
                                            card.embedding_model, card.demo))
        elif card.demo and not include_demo:
            choices.append(SlideModelChoice(
                card.name, False, f"{DEMO_LABEL} model: trained on generated cells, not run on real data",
                card.embedding_model, card.demo))
        else:
            choices.append(SlideModelChoice(card.name, True, "", card.embedding_model, card.demo))
    # a model before its variants ("apl" before "apl-mean"), those that run first
    return sorted(choices, key=lambda c: (not c.runs, c.model.split("-")))


def applicable_bag_models(cell: Any, *, include_demo: bool = False) -> list[str]:
    """Names of the registry bag models that run by default on the cell model ``cell``.

    See :func:`slide_model_choices` (the rule is in the module docstring).
    """
    return [c.model for c in slide_model_choices(cell, include_demo=include_demo) if c.runs]


def models_by_cell_model(*, include_demo: bool = True) -> dict[str, list[str]]:
    """``{cell model name: [bag models that read its embeddings]}`` over the registry.

    Demo models are included (flagged in their names by the caller) unless ``include_demo`` is
    False; what the report and ``hemascope models`` show so a user sees which models go together.
    """
    table: dict[str, list[str]] = {}
    for card in _registry_cards():
        if card.demo and not include_demo:
            continue
        table.setdefault(card.embedding_model, []).append(card.name)
    return table


def split_slide_model(value: str | None) -> list[str] | None:
    """The ``slide_model`` setting as a list: ``None`` (the rule's default), ``[]`` (none) or names.

    Several models may be named, separated by commas (``"apl,apl-mean"``).
    """
    if value is None or not value.strip():
        return None
    if value.strip().lower() == NO_SLIDE_MODEL:
        return []
    return [part.strip() for part in value.split(",") if part.strip()]


def resolve_slide_models(
    slide_model: str | Sequence[str] | None, cell: Any, *, include_demo: bool = False
) -> tuple[list[str], list[SlideModelChoice]]:
    """The bag models an analysis runs, and the registry's models with why each runs or not.

    Parameters
    ----------
    slide_model : str, sequence of str or None
        The setting: ``None`` for the rule's default, ``"none"`` for no slide model, or names
        (comma-separated in a string) that must fit ``cell``.
    cell : ModelCard, LoadedModel or str
        The analysis' cell model.
    include_demo : bool, optional
        Let the default include SYNTHETIC/DEMO models.

    Returns
    -------
    names, choices
        Models to run (in order) and one :class:`SlideModelChoice` per registry model (and per
        explicitly named model).

    Raises
    ------
    InvalidInputError
        When an explicitly named bag model reads another cell model's embeddings (the message
        names the cell model it needs).
    ModelNotFoundError
        When an explicitly named bag model does not exist.
    """
    names = split_slide_model(slide_model) if (slide_model is None or isinstance(slide_model, str)) \
        else [str(s) for s in slide_model]
    choices = slide_model_choices(cell, include_demo=include_demo)
    if names is None:
        return [c.model for c in choices if c.runs], choices
    run: list[str] = []
    explicit: list[SlideModelChoice] = []
    for name in names:
        card = load_bag_model(name).card
        if not bag_model_fits(card, cell):
            cell_name, _ = _cell_identity(cell)
            raise InvalidInputError(
                f"slide model {card.name!r} reads the embeddings of cell model "
                f"{card.embedding_model!r}, not of {cell_name or 'the chosen cell model'!r}: use cell "
                f"model {card.embedding_model!r}, or another slide model "
                f"(for {cell_name or 'this cell model'}: {', '.join(applicable_bag_models(cell)) or 'none'})"
            )
        run.append(name)
        explicit.append(SlideModelChoice(card.name, True, "", card.embedding_model, card.demo))
    ran = {c.model for c in explicit}
    rest = [SlideModelChoice(c.model, False, c.reason or "not selected", c.embedding_model, c.demo)
            for c in choices if c.model not in ran]
    return run, explicit + rest


__all__ = [
    "NO_SLIDE_MODEL",
    "SlideModelChoice",
    "applicable_bag_models",
    "bag_model_fits",
    "models_by_cell_model",
    "resolve_slide_models",
    "slide_model_choices",
    "split_slide_model",
]
