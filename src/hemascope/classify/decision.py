"""From per-cell probabilities to the class a cell is called: slide adaptation and the blast rule.

:func:`decide` is the last step of :func:`hemascope.classify.predict_cells` and
:func:`hemascope.classify.classify_images`. It applies, as the model card says:

1. **label-shift adaptation** (:mod:`hemascope.classify.label_shift`): the batch's class mix is
   re-estimated and the probabilities reweighted to it;
2. a **partly balanced decision**: the class is the argmax of ``p / prior ** balance``. With
   ``balance = 0`` it is the Bayes decision for the batch's estimated mix (most cells right); with
   1 every class counts alike (rare classes kept). The card's value was chosen on validation cells;
3. the **blast rule**: a cell is called ``blast`` only when its blast probability reaches
   ``preprocess["blast_rule"]["min_probability"]``; below it, the cell gets its next most likely
   class. A blast call on a normal cell from another lab is the costliest error the tool can make,
   so a weak blast call is not made. The threshold was chosen on validation cells of the training
   sources (never on a test set).

The probabilities returned are the adapted ones (they still sum to one per cell); ``class`` and
``confidence`` follow the decision. A cell whose blast call the rule withheld is flagged in the
``possible_blast`` column (:data:`POSSIBLE_BLAST`) so that it can be reviewed: its most likely
class was ``blast``, its call is its next class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hemascope.classify.label_shift import CARD_KEY, adapt_probabilities, card_settings
from hemascope.errors import InvalidInputError, ModelError
from hemascope.models.card import ModelCard

#: Card key (in ``preprocess``) of the blast rule.
BLAST_RULE_KEY = "blast_rule"
#: ``preprocess`` keys calibrated on one model's outputs (not inherited by a fine-tuned model).
DECISION_PREPROCESS_KEYS = (CARD_KEY, BLAST_RULE_KEY)
#: Cell-table column: True where ``blast`` was the most likely class but the blast rule withheld
#: the call (the cell is called its next class); present for models with a ``blast`` class.
POSSIBLE_BLAST = "possible_blast"


@dataclass(frozen=True)
class Decisions:
    """Probabilities and calls of one batch.

    Attributes
    ----------
    probabilities
        ``(n, k)`` probabilities (adapted to the batch's class mix when adaptation was on).
    top
        ``(n,)`` index of the class each cell is called.
    prior
        The batch's estimated class prior, or ``None`` without adaptation.
    blast_withheld
        ``(n,)`` True where the top class was ``blast`` but the blast rule withheld the call.
    """

    probabilities: np.ndarray
    top: np.ndarray
    prior: np.ndarray | None
    blast_withheld: np.ndarray

    def table(self, card: ModelCard, index: pd.Index | None = None) -> pd.DataFrame:
        """``class``, ``confidence`` and ``prob_<class>`` of each cell (:func:`probabilities_table`),
        and :data:`POSSIBLE_BLAST` when the model has a ``blast`` class."""
        table = probabilities_table(self.probabilities, card.classes, index, card.reject_classes,
                                    top=self.top)
        if "blast" in card.classes:
            table[POSSIBLE_BLAST] = np.asarray(self.blast_withheld, dtype=bool)
        return table


def blast_min_probability(card: ModelCard) -> float:
    """The card's blast threshold (``preprocess["blast_rule"]["min_probability"]``), 0 = none."""
    rule: Any = (card.preprocess or {}).get(BLAST_RULE_KEY)
    if rule is None:
        return 0.0
    if not isinstance(rule, dict) or not 0 <= float(rule.get("min_probability", -1)) < 1:
        raise ModelError(f"card {card.name!r}: preprocess.{BLAST_RULE_KEY} needs min_probability in [0, 1)")
    return float(rule["min_probability"])


def class_calls(
    prob: np.ndarray,
    classes: list[str] | tuple[str, ...],
    *,
    prior: np.ndarray | None = None,
    balance: float = 0.0,
    blast_min: float = 0.0,
    blast_class: str = "blast",
) -> tuple[np.ndarray, np.ndarray]:
    """The class each cell is called: partly balanced argmax, then the blast rule.

    Parameters
    ----------
    prob
        ``(n, k)`` probabilities.
    classes
        The ``k`` class names.
    prior
        ``(k,)`` the batch's class prior (for ``balance``); ``None`` = plain argmax.
    balance
        Exponent of the prior division (0 = Bayes decision, 1 = balanced).
    blast_min
        A cell is called ``blast_class`` only when its probability reaches this; else its next
        most likely class.
    blast_class
        Name of the class the rule guards (absent from ``classes``: no rule).

    Returns
    -------
    (top, withheld)
        ``(n,)`` class indices and ``(n,)`` True where a blast call was withheld.
    """
    prob = np.asarray(prob, dtype=np.float64)
    if prob.ndim != 2 or prob.shape[1] != len(classes):
        raise InvalidInputError(f"class_calls needs (n, {len(classes)}) probabilities")
    score = prob if prior is None or balance == 0 else prob / np.asarray(prior) ** balance
    top = score.argmax(axis=1) if len(prob) else np.zeros(0, dtype=int)
    withheld = np.zeros(len(prob), dtype=bool)
    if blast_min > 0 and blast_class in classes and len(prob):
        b = list(classes).index(blast_class)
        withheld = (top == b) & (prob[:, b] < blast_min)
        if withheld.any():
            others = score.copy()
            others[:, b] = -np.inf
            top = np.where(withheld, others.argmax(axis=1), top)
    return top, withheld


def decide(
    prob: np.ndarray,
    card: ModelCard,
    *,
    adapt_priors: bool | None = None,
    blast_min: float | None = None,
) -> Decisions:
    """Adapt one batch's probabilities to its class mix and call each cell's class.

    Parameters
    ----------
    prob
        ``(n, k)`` calibrated probabilities (the card's temperature) of all cells of one slide
        or folder.
    card
        The model's card (``preprocess["label_shift"]`` and ``preprocess["blast_rule"]``).
    adapt_priors
        Label-shift adaptation on/off; ``None``: the card's default.
    blast_min
        Blast threshold; ``None``: the card's (0 when it has none), 0 = no rule.

    Returns
    -------
    Decisions
    """
    if blast_min is None:
        blast_min = blast_min_probability(card)
    if not 0 <= blast_min < 1:
        raise InvalidInputError(f"the blast threshold must be in [0, 1), got {blast_min}")
    shift = adapt_probabilities(prob, card, adapt_priors)
    if shift is None:
        top, withheld = class_calls(prob, card.classes, blast_min=blast_min)
        return Decisions(np.asarray(prob, dtype=np.float32), top, None, withheld)
    settings = card_settings(card) or {}
    top, withheld = class_calls(
        shift.probabilities,
        card.classes,
        prior=shift.prior,
        balance=float(settings.get("balance", 0.0)),
        blast_min=blast_min,
    )
    return Decisions(shift.probabilities, top, shift.prior, withheld)


def probabilities_table(
    prob: np.ndarray,
    classes: Sequence[str],
    index: pd.Index | None = None,
    reject: Sequence[str] = (),
    top: np.ndarray | None = None,
) -> pd.DataFrame:
    """``class``, ``confidence`` and ``prob_<class>`` columns from a probability matrix.

    A cell whose top class is in ``reject`` (the card's ``reject_classes``, e.g. ``smudge``) gets
    the class ``unclassified``: it is not a white cell of the differential. ``top`` gives the
    class index of each cell (:func:`hemascope.classify.decision.decide`); default the argmax.
    """
    if top is None:
        top = prob.argmax(axis=1) if len(prob) else np.zeros(0, dtype=int)
    table = pd.DataFrame(index=index if index is not None else pd.RangeIndex(len(prob)))
    names = np.asarray(["unclassified" if c in reject else c for c in classes], dtype=object)
    table["class"] = pd.Series(names[top], index=table.index, dtype=object)
    table["confidence"] = (
        prob[np.arange(len(prob)), top] if len(prob) else np.zeros(0, np.float32)
    )
    for j, name in enumerate(classes):
        table[f"prob_{name}"] = prob[:, j]
    return table


def decide_table(
    cells: pd.DataFrame,
    card: ModelCard,
    *,
    adapt_priors: bool | None = None,
    blast_min: float | None = None,
) -> pd.DataFrame:
    """Call the classes of a whole slide's cells at once, from their plain ``prob_<class>`` columns.

    The analysis pipeline classifies region by region with the decision off and calls every
    cell here, once per slide, so the class mix is estimated on the whole slide rather than per
    region.

    Parameters
    ----------
    cells
        Cell table with one ``prob_<class>`` column per class of ``card`` (plain calibrated
        probabilities, as :func:`~hemascope.classify.predict_cells` gives with
        ``adapt_priors=False``).
    card, adapt_priors, blast_min
        As :func:`decide`.

    Returns
    -------
    pandas.DataFrame
        A copy of ``cells`` with ``class``, ``confidence``, ``prob_<class>`` (and
        :data:`POSSIBLE_BLAST`) replaced.
    """
    columns = [f"prob_{c}" for c in card.classes]
    missing = [c for c in columns if c not in cells.columns]
    if missing:
        raise InvalidInputError(f"the cell table lacks the probability columns {missing}")
    calls = decide(cells[columns].to_numpy(dtype=np.float64), card, adapt_priors=adapt_priors,
                   blast_min=blast_min)
    table = calls.table(card, cells.index)
    out = cells.copy()
    for name in table.columns:
        out[name] = table[name]
    return out
