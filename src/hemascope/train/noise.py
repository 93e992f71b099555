"""Controlled label noise for robustness experiments."""

from __future__ import annotations

import numpy as np

from hemascope.errors import InvalidInputError


def inject_symmetric_noise(
    labels: np.ndarray, rate: float, n_classes: int, seed: int = 0
) -> np.ndarray:
    """Flip a fraction ``rate`` of labels to a different class chosen uniformly.

    Parameters
    ----------
    labels
        Integer labels ``(n,)``.
    rate
        Fraction of labels to corrupt, in [0, 1).
    n_classes
        Number of classes (>= 2).
    seed
        Random seed; the same inputs always give the same noisy labels.

    Returns
    -------
    numpy.ndarray
        A new label array with exactly ``round(rate * n)`` labels changed.
    """
    if not 0 <= rate < 1 or n_classes < 2:
        raise InvalidInputError(
            f"noise rate must be in [0, 1) with >= 2 classes, got {rate}, {n_classes}"
        )
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(seed)
    noisy = labels.copy()
    idx = rng.choice(len(labels), size=int(round(rate * len(labels))), replace=False)
    shift = rng.integers(1, n_classes, size=len(idx))
    noisy[idx] = (labels[idx] + shift) % n_classes
    return noisy
