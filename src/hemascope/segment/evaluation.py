"""Score cell finding against mask folders (Dice/IoU per annotated cell, detection P/R at IoU 0.5).

Mask convention (the CellaVision layout): 0 background, 128 cytoplasm, 255 nucleus; each
connected region of cytoplasm or nucleus is one annotated cell (values are rounded to the nearest
of the three, so stray near-zero pixels left by lossy editing are background). Each annotated cell is compared with the predicted
cell that overlaps it most (IoU), so images whose other cells are not annotated can be scored.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from hemascope.errors import DataError
from hemascope.io.formats import PICTURE_SUFFIXES
from hemascope.segment.metrics import DetectionScore, dice, iou, label_iou, match_labels


def paired_files(images_dir: Path, masks_dir: Path) -> list[tuple[Path, Path]]:
    """Pairs ``(image, mask)`` with the same stem in two folders.

    Raises
    ------
    DataError
        If a folder is missing or no pair is found.
    """
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    for d in (images_dir, masks_dir):
        if not d.is_dir():
            raise DataError(f"{d} is not a folder")
    masks = {p.stem: p for p in masks_dir.iterdir() if p.suffix.lower() in PICTURE_SUFFIXES}
    pairs = [(p, masks[p.stem]) for p in sorted(images_dir.iterdir())
             if p.suffix.lower() in PICTURE_SUFFIXES and p.stem in masks]
    if not pairs:
        raise DataError(f"no image in {images_dir} has a mask of the same name in {masks_dir}")
    return pairs


def score_image(cells: np.ndarray, nuclei: np.ndarray, mask: np.ndarray) -> tuple[list[dict], DetectionScore]:
    """Score predicted labels against one annotation mask (0 / 128 cytoplasm / 255 nucleus).

    Parameters
    ----------
    cells, nuclei
        Predicted whole-cell and nucleus instance labels (nucleus of cell ``k`` labelled ``k``).
    mask
        Annotation, same shape.

    Returns
    -------
    rows, detection
        One dict per annotated cell (``cell_dice``, ``cell_iou``, ``nucleus_dice``,
        ``nucleus_iou``) and the detection counts at mask IoU >= 0.5.
    """
    mask = np.asarray(mask)
    truth, n = ndi.label(mask >= 64)
    rows = []
    ious = label_iou(cells, truth)
    pred_ids = np.unique(cells)
    pred_ids = pred_ids[pred_ids > 0]
    for t in range(1, n + 1):
        true_cell = truth == t
        true_nucleus = true_cell & (mask >= 192)
        if ious.shape[0] and ious[:, t - 1].max() > 0:
            k = pred_ids[int(np.argmax(ious[:, t - 1]))]
            pred_cell, pred_nucleus = cells == k, nuclei == k
        else:
            pred_cell = pred_nucleus = np.zeros(mask.shape, dtype=bool)
        rows.append({
            "cell_dice": dice(pred_cell, true_cell), "cell_iou": iou(pred_cell, true_cell),
            "nucleus_dice": dice(pred_nucleus, true_nucleus), "nucleus_iou": iou(pred_nucleus, true_nucleus),
        })
    return rows, match_labels(cells, truth)


def evaluate_mask_folder(
    images_dir: Path,
    masks_dir: Path,
    segment: Callable[[np.ndarray, Path], tuple[np.ndarray, np.ndarray]],
    names: set[str] | None = None,
) -> tuple[pd.DataFrame, DetectionScore]:
    """Segment every image of a folder and score it against its mask.

    Parameters
    ----------
    images_dir, masks_dir
        Folders of images and same-named masks.
    segment
        ``segment(rgb, image_path) -> (cell_labels, nucleus_labels)``.
    names
        Only these stems (a split); all when ``None``.

    Returns
    -------
    per_cell, detection
        One row per annotated cell (``image`` plus the scores of :func:`score_image`) and the
        summed detection counts.
    """
    from PIL import Image

    rows, total = [], DetectionScore(0, 0, 0)
    for image_path, mask_path in paired_files(images_dir, masks_dir):
        if names is not None and image_path.stem not in names:
            continue
        image = np.asarray(Image.open(image_path).convert("RGB"))
        mask = np.asarray(Image.open(mask_path).convert("L"))
        cells, nuclei = segment(image, image_path)
        image_rows, detection = score_image(cells, nuclei, mask)
        rows += [{"image": image_path.stem, **r} for r in image_rows]
        total = total + detection
    if not rows:
        raise DataError("no annotated cells to score")
    return pd.DataFrame(rows), total
