"""Synthetic bags of cell embeddings and cell tables for the slide-room tests (no real data)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hemascope.train.bags_data import Bag

CLASSES = ["alpha", "beta", "gamma"]
DIM = 16


def make_bags(n_bags: int, *, seed: int = 0, witness: float = 0.3, sizes=(8, 30)) -> list[Bag]:
    """Bags whose label shows only in a fraction ``witness`` of their cells (a MIL problem)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(123).normal(size=(len(CLASSES), DIM)) * 2.0
    bags = []
    for i in range(n_bags):
        c = i % len(CLASSES)
        n = int(rng.integers(*sizes))
        feats = rng.normal(size=(n, DIM)).astype(np.float32)
        k = max(1, int(witness * n))
        feats[:k] += centres[c].astype(np.float32)
        bags.append(
            Bag(name=f"bag{i:03d}", features=feats, label=CLASSES[c], n_cells=n, n_blasts=n)
        )
    return bags


def cell_table(n: int, n_blasts: int, *, seed: int = 0) -> pd.DataFrame:
    """A classified cell table: the first ``n_blasts`` rows are blasts, the rest lymphocytes."""
    classes = ["blast"] * n_blasts + ["lymphocyte"] * (n - n_blasts)
    return pd.DataFrame({"id": np.arange(100, 100 + n), "class": classes})
