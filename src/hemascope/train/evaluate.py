"""Evaluate a cell classifier on a labelled cell table, optionally under a controlled domain shift.

Shifts (applied at the model's scale, before the centre crop): ``stain`` scales the
haematoxylin optical density by ``1 + amount`` and eosin by ``1 - amount``; ``blur`` is a
Gaussian of ``amount`` pixels; ``scale`` magnifies cells by ``amount`` (a wrong µm/px).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from hemascope.classify.engine import run_model
from hemascope.errors import DataError, InvalidInputError
from hemascope.models import LoadedModel
from hemascope.progress import CancelToken, ProgressCallback
from hemascope.train.augment import center_crop, gaussian_blur, hed_shift
from hemascope.train.datasets import load_crop_bank
from hemascope.train.metrics import classification_metrics

SHIFTS = ("none", "stain", "blur", "scale")
DEFAULT_SHIFT_AMOUNT = {"none": 0.0, "stain": 0.3, "blur": 1.5, "scale": 1.2}


def shift_crops(
    bank: np.ndarray, out_size: int, shift: str = "none", amount: float | None = None
) -> np.ndarray:
    """Apply a deterministic shift to stored crops and cut the model input.

    Parameters
    ----------
    bank
        ``(n, S, S, 3)`` uint8 crops at the model's µm/px (``S >= out_size``).
    out_size
        Model input size.
    shift
        One of :data:`SHIFTS`.
    amount
        Strength (default :data:`DEFAULT_SHIFT_AMOUNT`).

    Returns
    -------
    numpy.ndarray
        ``(n, out_size, out_size, 3)`` uint8.
    """
    if shift not in SHIFTS:
        raise InvalidInputError(f"unknown shift {shift!r}; choose from {', '.join(SHIFTS)}")
    amount = DEFAULT_SHIFT_AMOUNT[shift] if amount is None else float(amount)
    out = []
    for s in range(0, len(bank), 512):
        x = torch.from_numpy(bank[s : s + 512]).permute(0, 3, 1, 2).float().div(255)
        if shift == "scale":
            if amount <= 0:
                raise InvalidInputError("scale shift needs a positive factor")
            theta = torch.zeros(len(x), 2, 3)
            theta[:, 0, 0] = theta[:, 1, 1] = out_size / x.shape[-1] / amount
            grid = F.affine_grid(theta, [len(x), 3, out_size, out_size], align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        else:
            if shift == "stain":
                alpha = torch.tensor([amount, -amount, 0.0]).expand(len(x), 3)
                x = hed_shift(x, alpha, torch.zeros(len(x), 3))
            elif shift == "blur":
                x = gaussian_blur(x, amount)
            x = center_crop(x, out_size)
        out.append((x.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy())
    return np.concatenate(out) if out else np.zeros((0, out_size, out_size, 3), np.uint8)


def evaluate_model(
    loaded: LoadedModel,
    table: pd.DataFrame,
    *,
    shift: str = "none",
    amount: float | None = None,
    tta: bool = False,
    batch_size: int = 256,
    cache_dir: str | Path | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> tuple[dict[str, Any], np.ndarray]:
    """Classify every cell of a table and compute :func:`classification_metrics`.

    Returns
    -------
    (metrics, probabilities)
        Metrics (with ``shift``/``amount``/``model`` added) and the ``(n, k)`` probabilities.
    """
    classes = loaded.classes
    unknown = sorted(set(table["class"]) - set(classes))
    if unknown:
        raise DataError(
            f"labels {unknown} are not classes of {loaded.card.name} ({classes}); relabel them"
        )
    bank, failed = load_crop_bank(
        table, loaded.card, cache_dir=cache_dir, progress=progress, cancel=cancel
    )
    if failed:
        raise DataError(f"{len(failed)} unreadable images, first: {failed[0][0]}: {failed[0][1]}")
    crops = shift_crops(bank, loaded.card.input_size, shift, amount)
    batches = (crops[s : s + batch_size] for s in range(0, len(crops), batch_size))
    prob, _ = run_model(loaded, batches, len(crops), tta=tta, progress=progress, cancel=cancel)
    y_true = table["class"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    metrics = classification_metrics(y_true, prob.argmax(1), classes, prob)
    metrics.update(
        shift=shift,
        amount=DEFAULT_SHIFT_AMOUNT[shift] if amount is None else amount,
        model=loaded.label,
        tta=tta,
    )
    return metrics, prob
