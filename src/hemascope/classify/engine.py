"""Batched cell classification: crops are cut on a background thread while the model runs.

:func:`predict_cells` classifies the cells of a segmentation table on a slide;
:func:`classify_images` classifies single-cell images (arrays or files). Both return calibrated
per-class probabilities (the card's temperature), the top class and its confidence, and
optionally the pooled embeddings that slide-level (MIL) models consume.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
import torch

from hemascope.classify.calibration import calibrated_probabilities
from hemascope.classify.crops import crops_to_tensor, slide_crop
from hemascope.classify.decision import decide
from hemascope.classify.images import load_cell_crops
from hemascope.classify.probe import probe_cells, probe_subset
from hemascope.classify.shift import DomainShift
from hemascope.classify.stain import StainReading, read_stain
from hemascope.devices import resolve_device
from hemascope.errors import InvalidInputError, ModelError
from hemascope.io import Slide
from hemascope.models import LoadedModel, load_model
from hemascope.progress import CancelToken, ProgressCallback, check_cancelled, report

#: Level-0 centroid columns of a cell table (as in :data:`hemascope.segment.CELL_COLUMNS`).
CENTROID_COLUMNS: tuple[str, str] = ("row", "col")


@dataclass
class CellPredictions:
    """Per-cell classification results.

    Attributes
    ----------
    table
        One row per input cell (same index): ``class``, ``confidence``, ``prob_<class>`` and, for
        models with a ``blast`` class, ``possible_blast`` (a blast call the blast rule withheld).
    embeddings
        ``(n_cells, embed_dim)`` float32 pooled features, or ``None`` when not requested.
    model
        ``name@version (sha)`` of the model that produced them.
    domain_shift
        The domain-shift guard's verdict on these cells (:mod:`hemascope.classify.shift`).
    stain
        Their stain and how it was read (:mod:`hemascope.classify.stain`).
    """

    table: pd.DataFrame
    embeddings: np.ndarray | None
    model: str
    domain_shift: DomainShift | None = None
    stain: StainReading | None = None


@dataclass
class ImagePredictions:
    """Results of :func:`classify_images`: one table row per readable image, plus the failures."""

    table: pd.DataFrame
    embeddings: np.ndarray | None
    model: str
    failed: list[tuple[str, str]] = field(default_factory=list)
    domain_shift: DomainShift | None = None
    stain: StainReading | None = None


def _as_loaded(model: str | Path | LoadedModel, device: torch.device) -> LoadedModel:
    if isinstance(model, LoadedModel):
        if model.device != device:
            model.module.to(device)
            model.device = device
        return model
    return load_model(model, device=device)


@runtime_checkable
class EmbeddingNetwork(Protocol):
    """A cell classifier that also returns its pooled features (e.g. :class:`~hemascope.models.CellNet`)."""

    def forward_with_embedding(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and embeddings of a normalised NCHW batch in one pass."""
        ...


def _tta_views(x: torch.Tensor) -> list[torch.Tensor]:
    """The 8 dihedral transforms (4 rotations × optional flip) of an NCHW batch."""
    views: list[torch.Tensor] = []
    for flip in (False, True):
        base = torch.flip(x, dims=(3,)) if flip else x
        views.extend(torch.rot90(base, k, dims=(2, 3)) for k in range(4))
    return views


def _prefetch(batches: Iterator[np.ndarray], depth: int) -> Iterator[np.ndarray]:
    """Run ``batches`` on a daemon thread, ``depth`` batches ahead; re-raises its errors here."""
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    done = object()
    stop = threading.Event()

    def worker() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        q.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put(exc)

    thread = threading.Thread(target=worker, name="hemascope-crop-loader", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def run_model(
    loaded: LoadedModel,
    batches: Iterable[np.ndarray],
    total: int,
    *,
    tta: bool = False,
    return_embeddings: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    module: torch.nn.Module | None = None,
    stain: torch.Tensor | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Run a model over uint8 crop batches; the engine shared by every entry point.

    Parameters
    ----------
    loaded
        The verified model.
    batches
        Iterable of ``(n, size, size, 3)`` uint8 crops at the card's scale.
    total
        Total number of crops (for progress).
    tta
        Average calibrated probabilities (and embeddings) over the 8 dihedral transforms.
    return_embeddings
        Also return pooled features.
    progress, cancel
        See :mod:`hemascope.progress`.
    module
        Run this network instead of ``loaded.module`` (e.g. a copy adapted to the batch).
    stain
        A ``(3, 3)`` OD map: every crop is also read restained by it and the two readings'
        probabilities averaged (:func:`hemascope.classify.stain.read_stain`); the embeddings
        stay those of the crops as they are (the bag models were trained on them).

    Returns
    -------
    (probabilities, embeddings)
        ``(total, n_classes)`` float32 and ``(total, embed_dim)`` float32 or ``None``.
    """
    device, card = loaded.device, loaded.card
    module = module if module is not None else loaded.module
    if not isinstance(module, EmbeddingNetwork):
        raise ModelError(f"{type(module).__name__} has no forward_with_embedding")
    autocast = (
        torch.autocast(device.type, dtype=torch.float16)
        if device.type in ("cuda", "mps")
        else nullcontext()
    )
    probs: list[np.ndarray] = []
    embs: list[np.ndarray] = []
    done = 0
    report(progress, 0, total, "classifying")
    with torch.inference_mode():
        for crops in batches:
            check_cancelled(cancel)
            readings = [crops_to_tensor(crops, card, device)]
            if stain is not None:
                readings.append(crops_to_tensor(crops, card, device, stain))
            views = [v for x in readings for v in (_tta_views(x) if tta else [x])]
            plain = len(views) // len(readings)  # the first reading's views give the embeddings
            p_sum: torch.Tensor | None = None
            e_sum: torch.Tensor | None = None
            for i, view in enumerate(views):
                with autocast:
                    logits, emb = module.forward_with_embedding(view)
                p = calibrated_probabilities(logits, card.temperature)
                p_sum = p if p_sum is None else p_sum + p
                if return_embeddings and i < plain:
                    e_sum = emb.float() if e_sum is None else e_sum + emb.float()
            assert p_sum is not None  # views holds 1 to 16 batches
            probs.append((p_sum / len(views)).cpu().numpy().astype(np.float32))
            if e_sum is not None:  # return_embeddings
                embs.append((e_sum / plain).cpu().numpy().astype(np.float32))
            done += len(crops)
            report(progress, done, total, "classifying")
    k = len(card.classes)
    prob = np.concatenate(probs) if probs else np.zeros((0, k), np.float32)
    emb_out = None
    if return_embeddings:
        dim = getattr(module, "embed_dim", 0)
        emb_out = np.concatenate(embs) if embs else np.zeros((0, dim), np.float32)
    return prob, emb_out


def _centroids(cells: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    rcol, ccol = CENTROID_COLUMNS
    if rcol not in cells.columns or ccol not in cells.columns:
        raise InvalidInputError(
            f"cell table needs centroid columns {rcol!r} and {ccol!r} (level-0 px)"
        )
    return cells[rcol].to_numpy(float), cells[ccol].to_numpy(float)


def predict_cells(
    slide: Slide,
    cells: pd.DataFrame,
    model: str | Path | LoadedModel = "wbc",
    *,
    device: str | torch.device = "auto",
    batch_size: int = 256,
    tta: bool = False,
    return_embeddings: bool = False,
    prefetch: int = 3,
    adapt: bool | None = None,
    adapt_priors: bool | None = None,
    blast_min: float | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> CellPredictions:
    """Classify the cells of a segmentation table on a slide.

    Crops of ``card.input_size`` px at ``card.mpp`` µm/px are cut around each centroid from the
    best pyramid level by a background thread (``prefetch`` batches ahead) while the model runs.

    Parameters
    ----------
    slide
        The slide (with known µm/px).
    cells
        The cell table; needs level-0 centroid columns ``row``/``col`` (the segmentation table).
    model
        Registry name, path/URL, or an already loaded model.
    device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"``; autocast (float16) is used on GPUs.
    batch_size
        Crops per forward pass.
    tta
        Average over flips and 90° rotations (8× slower).
    return_embeddings
        Also return the pooled features per cell.
    prefetch
        Batches cut ahead by the loader thread.
    adapt
        Re-estimate BatchNorm statistics on the slide's first batch of cells before classifying
        (per-slide adaptation, :mod:`hemascope.classify.adapt`); ``None``: the card's default.
        The first batch also gives the domain-shift verdict (``domain_shift``).
    adapt_priors
        Re-estimate the class mix of these cells and adapt the probabilities to it (label-shift
        adaptation, :mod:`hemascope.classify.label_shift`); ``None``: the card's default.
    blast_min
        Call ``blast`` only at this blast probability or above (else the next class,
        :mod:`hemascope.classify.decision`); ``None``: the card's threshold, 0 = no rule.
    progress, cancel
        See :mod:`hemascope.progress`.

    Returns
    -------
    CellPredictions
        Table aligned to ``cells.index``, optional embeddings and the domain-shift verdict.
    """
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
    rows, cols = _centroids(cells)
    loaded = _as_loaded(model, resolve_device(device))
    card = loaded.card
    if slide.mpp is None:
        raise InvalidInputError("the slide's µm/px is unknown; pass mpp= when opening it")
    level = slide.best_level_for_mpp(card.mpp)

    def batches() -> Iterator[np.ndarray]:
        for start in range(0, len(rows), batch_size):
            stop = min(start + batch_size, len(rows))
            yield np.stack(
                [slide_crop(slide, rows[i], cols[i], card, level) for i in range(start, stop)]
            )

    stream = _prefetch(batches(), prefetch)
    first = next(stream, None)
    module, shift, reading, stain = loaded.module, None, None, None
    if first is not None:
        module, shift = probe_cells(loaded.module, card, first, loaded.device, adapt=adapt)
        reading, stain = read_stain(first, card)
    prob, emb = run_model(
        loaded,
        itertools.chain([] if first is None else [first], stream),
        len(rows),
        tta=tta,
        return_embeddings=return_embeddings,
        progress=progress,
        cancel=cancel,
        module=module,
        stain=stain,
    )
    table = decide(prob, card, adapt_priors=adapt_priors, blast_min=blast_min).table(card, cells.index)
    return CellPredictions(table, emb, loaded.label, shift, reading)


def classify_images(
    images_or_paths: Sequence[np.ndarray | str | Path],
    model: str | Path | LoadedModel = "wbc",
    mpp: float | None = None,
    *,
    device: str | torch.device = "auto",
    batch_size: int = 128,
    tta: bool = False,
    return_embeddings: bool = False,
    estimate: Callable[[np.ndarray], float] | None = None,
    adapt: bool | None = None,
    adapt_priors: bool | None = None,
    blast_min: float | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> ImagePredictions:
    """Classify single-cell images (arrays or files) of any size, one row per image.

    Each image is resampled from ``mpp`` to the card's µm/px and cropped around its cell: the
    centre of a single-cell crop, the white cell nearest the centre of a whole field
    (:mod:`hemascope.classify.framing`; column ``framing``). Files that
    cannot be read (corrupt, grayscale, fully transparent, smaller than a cell) are skipped and listed in
    ``failed`` with the reason; the batch goes on.

    Parameters
    ----------
    images_or_paths
        RGB uint8 arrays and/or image file paths.
    model
        Registry name, path/URL, or a loaded model.
    mpp
        µm/px of the images; ``None`` estimates it per image with ``estimate``, and the images of
        one pixel size share the median of their estimates
        (:func:`hemascope.segment.batch_scale.pool_estimates`).
    device, batch_size, tta, return_embeddings, progress, cancel
        As in :func:`predict_cells`.
    estimate
        ``image -> µm/px`` used when ``mpp`` is None (default
        :func:`hemascope.classify.cell_scale.picture_scale`).
    adapt
        Re-estimate BatchNorm statistics on (a sample of) these images before classifying them
        (per-batch adaptation); ``None``: the card's default. The same sample gives the
        domain-shift verdict (``domain_shift``).
    adapt_priors
        Re-estimate the class mix of these images and adapt the probabilities to it (label-shift
        adaptation, :mod:`hemascope.classify.label_shift`); ``None``: the card's default.
    blast_min
        Call ``blast`` only at this blast probability or above (else the next class,
        :mod:`hemascope.classify.decision`); ``None``: the card's threshold, 0 = no rule.

    Returns
    -------
    ImagePredictions
        ``table`` with columns ``path`` (``"<array i>"`` for arrays), ``mpp``, ``mpp_low_confidence``,
        ``framing``, ``class``, ``confidence``, ``prob_<class>`` and ``possible_blast`` (models
        with a ``blast`` class); ``failed`` as ``(path, reason)`` pairs.
    """
    if len(images_or_paths) == 0:
        raise InvalidInputError("no images to classify")
    loaded = _as_loaded(model, resolve_device(device))
    names, mpps, crops, failed, framings = load_cell_crops(
        images_or_paths, loaded.card, mpp, estimate=estimate, cancel=cancel
    )

    def batches() -> Iterator[np.ndarray]:
        for start in range(0, len(crops), batch_size):
            yield np.stack(crops[start : start + batch_size])

    module, shift, reading, stain = loaded.module, None, None, None
    if crops:
        sample = np.stack([crops[i] for i in probe_subset(len(crops))])
        module, shift = probe_cells(loaded.module, loaded.card, sample, loaded.device, adapt=adapt)
        reading, stain = read_stain(sample, loaded.card)
    prob, emb = run_model(
        loaded,
        batches(),
        len(crops),
        tta=tta,
        return_embeddings=return_embeddings,
        progress=progress,
        cancel=cancel,
        module=module,
        stain=stain,
    )
    table = decide(prob, loaded.card, adapt_priors=adapt_priors, blast_min=blast_min).table(loaded.card)
    table.insert(0, "mpp", np.asarray(mpps, dtype=float))
    # estimated scales (segment.scale.ScaleEstimate) say when they are not to be trusted
    table.insert(1, "mpp_low_confidence", [bool(getattr(m, "low_confidence", False)) for m in mpps])
    table.insert(2, "framing", [f.how for f in framings])
    table.insert(0, "path", names)
    return ImagePredictions(table, emb, loaded.label, failed, shift, reading)
