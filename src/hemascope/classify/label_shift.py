"""Per-slide (per-batch) label-shift adaptation: the class mix re-estimated on the cells at hand.

A classifier's probabilities carry the class mix it was calibrated under (the *source prior*). A
slide has its own mix: a leukaemic film is half blasts, a normal one has none. Saerens, Latinne &
Decaestecker (2002) re-estimate the slide's class priors by expectation-maximisation on the
slide's own (unlabelled) cells and reweight every cell's probabilities by ``target / source``
(Bayes' rule with the new prior). It needs calibrated probabilities (the card's temperature,
fitted on validation cells of the training sources); Alexandari et al. (2020) showed this
calibrated EM is hard to beat for label shift.

Two guards keep a small or one-class batch from collapsing the estimate:

- a Dirichlet prior of ``pseudo_count`` cells at the source prior (MAP-EM): a batch of 20 cells
  moves the prior little, a slide of thousands fully;
- a ``floor``: no class's prior drops below ``floor × source prior``, so a class absent from the
  batch so far is damped, never erased.

The card opts in with ``preprocess["label_shift"]``: ``source_prior`` (the class frequencies of
the validation cells the calibration was fitted on), optionally a bias-corrected calibration
(``temperature`` and per-class ``bias``, Alexandari et al. 2020, fitted on those validation cells
and applied on top of the card's probabilities), ``pseudo_count``, ``floor``, ``balance`` (see
:mod:`hemascope.classify.decision`) and ``default`` (adapt unless told not to).
:func:`adapt_probabilities` is applied by :func:`hemascope.classify.predict_cells` and
:func:`hemascope.classify.classify_images` to all the cells of one call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hemascope.errors import InvalidInputError, ModelError
from hemascope.models.card import ModelCard

#: Card key (in ``preprocess``) holding the label-shift settings.
CARD_KEY = "label_shift"
#: Default strength of the source prior, in cells.
DEFAULT_PSEUDO_COUNT = 100.0
#: Default floor of a class's adapted prior, as a fraction of its source prior.
DEFAULT_FLOOR = 0.05


@dataclass(frozen=True)
class LabelShift:
    """The outcome of :func:`em_priors` on one batch.

    Attributes
    ----------
    probabilities
        ``(n, k)`` adapted probabilities (rows sum to 1).
    prior
        ``(k,)`` the batch's estimated class prior.
    iterations
        EM iterations run.
    """

    probabilities: np.ndarray
    prior: np.ndarray
    iterations: int


def _check(prob: np.ndarray, source_prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    prob = np.asarray(prob, dtype=np.float64)
    source = np.asarray(source_prior, dtype=np.float64)
    if prob.ndim != 2 or source.shape != (prob.shape[1],):
        raise InvalidInputError(
            f"label shift needs (n, k) probabilities and k source priors, got {prob.shape} "
            f"and {source.shape}"
        )
    if not (np.all(np.isfinite(source)) and np.all(source > 0)):
        raise InvalidInputError("source priors must be positive and finite")
    return prob, source / source.sum()


def em_priors(
    prob: np.ndarray,
    source_prior: np.ndarray,
    *,
    pseudo_count: float = DEFAULT_PSEUDO_COUNT,
    floor: float = DEFAULT_FLOOR,
    max_iter: int = 100,
    tol: float = 1e-6,
) -> LabelShift:
    """Re-estimate a batch's class priors by EM and adapt its probabilities (Saerens et al. 2002).

    Parameters
    ----------
    prob
        ``(n, k)`` calibrated probabilities of the batch's cells under ``source_prior``.
    source_prior
        ``(k,)`` the class prior the probabilities were calibrated under (positive).
    pseudo_count
        Weight of ``source_prior`` in cells (MAP-EM with a Dirichlet prior); 0 = plain EM.
    floor
        Lower bound of each adapted prior as a fraction of its source prior (0 = none).
    max_iter, tol
        Stop after ``max_iter`` iterations or when no prior moves by more than ``tol``.

    Returns
    -------
    LabelShift
        Adapted probabilities, the estimated prior and the iterations run. An empty batch returns
        itself with the source prior.

    Raises
    ------
    InvalidInputError
        Shapes that do not match, non-positive priors, or a negative ``pseudo_count``/``floor``.
    """
    prob, source = _check(prob, source_prior)
    if pseudo_count < 0 or not 0 <= floor < 1:
        raise InvalidInputError("pseudo_count must be >= 0 and floor in [0, 1)")
    if len(prob) == 0:
        return LabelShift(prob.astype(np.float32), source, 0)
    prob = np.clip(prob, 1e-12, None)
    prior, iterations = source.copy(), 0
    while iterations < max_iter:
        iterations += 1
        weighted = prob * (prior / source)
        adapted = weighted / weighted.sum(axis=1, keepdims=True)
        new = (adapted.sum(axis=0) + pseudo_count * source) / (len(prob) + pseudo_count)
        new = np.maximum(new, floor * source)
        new /= new.sum()
        moved = float(np.abs(new - prior).max())
        prior = new
        if moved < tol:
            break
    weighted = prob * (prior / source)
    adapted = weighted / weighted.sum(axis=1, keepdims=True)
    return LabelShift(adapted.astype(np.float32), prior, iterations)


def card_settings(card: ModelCard) -> dict[str, Any] | None:
    """The card's label-shift settings (``preprocess["label_shift"]``), or ``None``."""
    settings = (card.preprocess or {}).get(CARD_KEY)
    if settings is None:
        return None
    if not isinstance(settings, dict) or len(settings.get("source_prior", [])) != len(
        card.classes
    ):
        raise ModelError(
            f"card {card.name!r}: preprocess.{CARD_KEY} needs a source_prior per class"
        )
    return settings


def label_shift_default(card: ModelCard) -> bool:
    """Whether the card's model adapts to each batch's class mix by default."""
    settings = card_settings(card)
    return bool(settings and settings.get("default", False))


def bias_corrected(
    prob: np.ndarray, card_temperature: float, temperature: float, bias: np.ndarray
) -> np.ndarray:
    """Re-calibrate the card's probabilities as ``softmax(logits / temperature + bias)``.

    ``card_temperature * log(prob)`` recovers the logits up to a per-cell constant, which the
    softmax ignores, so no second forward pass is needed.
    """
    z = np.log(np.clip(np.asarray(prob, dtype=np.float64), 1e-30, None)) * card_temperature
    z = z / temperature + np.asarray(bias, dtype=np.float64)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def adapt_probabilities(
    prob: np.ndarray, card: ModelCard, enabled: bool | None = None
) -> LabelShift | None:
    """Apply the card's label-shift adaptation to one batch of probabilities.

    Parameters
    ----------
    prob
        ``(n, k)`` calibrated probabilities of all the cells of one slide or folder.
    card
        The model's card (``preprocess["label_shift"]``).
    enabled
        ``True``/``False`` forces it on/off; ``None`` follows the card's ``default``.

    Returns
    -------
    LabelShift or None
        The adapted probabilities and the batch's prior, or ``None`` when adaptation is off.

    Raises
    ------
    ModelError
        Adaptation was asked for but the card holds no source prior.
    """
    if enabled is None:
        enabled = label_shift_default(card)
    if not enabled:
        return None
    settings = card_settings(card)
    if settings is None:
        raise ModelError(
            f"model {card.name!r} has no label-shift calibration (preprocess.{CARD_KEY}); "
            "it cannot adapt to the class mix"
        )
    if "bias" in settings:
        prob = bias_corrected(
            prob, card.temperature, float(settings.get("temperature", card.temperature)),
            np.asarray(settings["bias"], dtype=np.float64),
        )
    return em_priors(
        prob,
        np.asarray(settings["source_prior"], dtype=np.float64),
        pseudo_count=float(settings.get("pseudo_count", DEFAULT_PSEUDO_COUNT)),
        floor=float(settings.get("floor", DEFAULT_FLOOR)),
    )
