"""Class- and domain-balanced sampling weights."""

from __future__ import annotations

import numpy as np
import torch


def balanced_weights(
    labels: np.ndarray,
    domains: np.ndarray | None = None,
    *,
    by_class: bool = True,
    by_domain: bool = True,
    class_first: bool = False,
) -> np.ndarray:
    """Per-sample weights that give every domain, and every class within it, equal mass.

    With ``by_domain`` each domain gets the same total weight (so no scanner dominates a batch);
    with ``by_class`` each class gets the same total within its domain (rare classes are seen as
    often as common ones). With ``class_first`` (and both flags) the nesting is swapped: every
    class gets the same total, shared equally by the domains that hold it — the right choice when
    a source holds only a few classes (a blast-only source would otherwise fill a third of every
    batch). Weights are normalised to mean 1.

    Parameters
    ----------
    labels
        Integer class labels ``(n,)``.
    domains
        Domain label per sample (any hashable), or ``None`` for one domain.
    by_class, by_domain
        Which balancing to apply.
    class_first
        Balance classes first, then domains within each class.
    """
    labels = np.asarray(labels)
    domains = np.zeros(len(labels), dtype=int) if domains is None else np.asarray(domains)
    if class_first and by_class and by_domain:
        return balanced_weights(domains, labels, by_class=True, by_domain=True)
    keys = [
        (d if by_domain else 0, c if by_class else 0) for d, c in zip(domains, labels, strict=True)
    ]
    cell_count: dict[tuple, int] = {}
    for key in keys:
        cell_count[key] = cell_count.get(key, 0) + 1
    per_domain: dict = {}
    for d, c in cell_count:
        per_domain.setdefault(d, set()).add(c)
    w = np.array([1.0 / (cell_count[k] * len(per_domain[k[0]]) * len(per_domain)) for k in keys])
    return w / w.mean()


def balanced_sampler(
    labels: np.ndarray,
    domains: np.ndarray | None = None,
    *,
    by_class: bool = True,
    by_domain: bool = True,
    class_first: bool = False,
    seed: int = 0,
    num_samples: int | None = None,
) -> torch.utils.data.WeightedRandomSampler:
    """A with-replacement sampler by :func:`balanced_weights` (``num_samples`` default: ``len(labels)``)."""
    w = balanced_weights(
        labels, domains, by_class=by_class, by_domain=by_domain, class_first=class_first
    )
    gen = torch.Generator().manual_seed(seed)
    n = int(num_samples or len(w))
    return torch.utils.data.WeightedRandomSampler(
        w.astype(np.float64).tolist(), n, generator=gen
    )
