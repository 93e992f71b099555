"""The cell-classifier training loop: balanced sampling, stain augmentation, checkpoints, card.

:func:`train_cells` trains a :class:`~hemascope.models.CellNet` on crop banks made from cell
tables, keeps the best epoch by validation macro-F1 (optionally after recomputing the BatchNorm
statistics on un-augmented training crops: :mod:`hemascope.train.batchnorm`), fits the
calibration temperature on the validation set, and writes ``<name>.safetensors`` +
``<name>.json`` (the model card, with the metrics) + ``metrics.json`` into the output directory.
Re-running with ``resume=True`` continues from the last complete epoch.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from hemascope.classify.calibration import fit_temperature
from hemascope.classify.decision import DECISION_PREPROCESS_KEYS
from hemascope.classify.normalize import (
    chroma_subsample_uint8,
    wants_chroma_subsampling,
    wants_white_balance,
)
from hemascope.classify.probe import probe_subset
from hemascope.classify.stain import read_stain
from hemascope.devices import resolve_device
from hemascope.errors import DataError
from hemascope.files import atomic_write_json
from hemascope.models import ModelCard, build_model, save_model
from hemascope.models.architectures import PROTOTYPES_PARAM
from hemascope.progress import CancelToken, ProgressCallback, check_cancelled, report
from hemascope.train.augment import AugmentConfig, augment_batch, plain_batches
from hemascope.train.batchnorm import recalibrate_batchnorm
from hemascope.train.checkpoint import load_checkpoint, save_checkpoint
from hemascope.train.datasets import load_crop_bank
from hemascope.train.few_shot import (
    PROTOTYPES,
    clear_prototypes,
    fit_prototypes,
    is_few_shot,
    probe_head,
    validates_apart,
)
from hemascope.train.losses import LDAMLoss, make_loss
from hemascope.train.metrics import classification_metrics
from hemascope.train.noise import inject_symmetric_noise
from hemascope.train.sampling import balanced_sampler
from hemascope.train.warm_start import init_from_model


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in ``metrics.json``)."""

    name: str = "cells"
    version: str = "0.1.0"
    classes: list[str] | None = None
    input_size: int = 48
    mpp: float = 0.5
    widths: list[int] = field(default_factory=lambda: [16, 32, 64, 128])
    epochs: int = 12
    samples_per_epoch: int | None = None
    val_per_epoch: int | None = 1500
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 5e-4
    loss: str = "ce"
    balance_classes: bool = True
    balance_domains: bool = True
    noise_rate: float = 0.0
    mixup: float = 0.0
    recalibrate_bn: bool = False  # BatchNorm statistics from un-augmented crops (batchnorm.py)
    init: str | None = None  # start from this cell model's weights (head rows by class name)
    probe_head: bool = False  # with init: refit the head on frozen features first (few_shot.py)
    prototypes: bool = True  # init, few-shot set, no probe_head: class centres first, kept unless an epoch beats them
    preprocess: dict[str, Any] | None = (
        None  # input normalisation (None: the init model's, or none)
    )
    seed: int = 0
    amp: bool = False
    device: str = "auto"
    margin: float = 1.5
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    training_data: list[str] = field(default_factory=list)
    licence: str = ""
    description: str = ""
    threads: int | None = None


@dataclass
class TrainResult:
    """Paths and figures of a finished run."""

    card_path: Path
    metrics: dict[str, Any]


def _labels(table: pd.DataFrame, classes: list[str]) -> np.ndarray:
    unknown = sorted(set(table["class"]) - set(classes))
    if unknown:
        raise DataError(f"labels not among the model classes: {unknown}")
    index = {c: i for i, c in enumerate(classes)}
    return table["class"].map(index).to_numpy(np.int64).copy()


def _logits(
    module: torch.nn.Module,
    bank: torch.Tensor,
    card: ModelCard,
    device: torch.device,
    batch: int = 512,
) -> np.ndarray:
    module.eval()
    out = []
    with torch.inference_mode():
        for x in plain_batches(bank, card, device, batch):
            out.append(module(x).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, len(card.classes)), np.float32)


def _val_subset(n: int, size: int | None, seed: int) -> np.ndarray:
    """Epoch-wise model selection runs on a fixed subset of the validation set (the full set is
    used for the temperature and the reported metrics)."""
    if size and n > size:
        return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))
    return np.arange(n)


def _batch_loss(
    module: torch.nn.Module,
    loss_fn: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    mixup: float,
    gen: torch.Generator,
) -> torch.Tensor:
    """The loss of one batch; with ``mixup > 0``, of the batch mixed with a shuffled copy of itself.

    Mixup (Zhang et al. 2018) trains on convex combinations ``lam * x_i + (1 - lam) * x_j`` with
    the loss mixed the same way, ``lam ~ Beta(mixup, mixup)``: a network then cannot fit a wrong
    label to one image without fitting it to blends with other images too, which slows the
    memorisation of label noise.
    """
    if mixup <= 0:
        return loss_fn(module(x), y)
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
    lam = float(np.random.default_rng(seed).beta(mixup, mixup))
    perm = torch.randperm(len(y), generator=gen).to(y.device)
    logits = module(lam * x + (1 - lam) * x[perm])
    return lam * loss_fn(logits, y) + (1 - lam) * loss_fn(logits, y[perm])


def _lr_at(step: int, total: int, base: float) -> float:
    warm = max(1, total // 20)
    if step < warm:
        return base * (step + 1) / warm
    return base * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


def train_cells(
    config: TrainConfig,
    train: pd.DataFrame,
    val: pd.DataFrame,
    test: pd.DataFrame | None = None,
    *,
    out_dir: str | Path,
    cache_dir: str | Path | None = None,
    resume: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> TrainResult:
    """Train a cell classifier and write its weights, card and metrics.

    Parameters
    ----------
    config
        The run definition.
    train, val, test
        Cell tables (:func:`hemascope.train.datasets.read_cell_table`); ``test`` is optional.
    out_dir
        Where the checkpoint, model, card, ``metrics.json`` go.
    cache_dir
        Crop-bank cache (speeds up repeated runs on the same data).
    resume
        Continue from ``out_dir/checkpoint.*`` if present.
    progress, cancel
        See :mod:`hemascope.progress`.

    Returns
    -------
    TrainResult
    """
    if train.empty or val.empty:
        raise DataError("training and validation sets must not be empty")
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    classes = list(config.classes or sorted(set(train["class"])))
    device = resolve_device(config.device)
    # few-shot with the training cells as the only validation cells: an epoch choice (or a
    # fine-tune at all) cannot be validated, so the run keeps the frozen features
    head_only = bool(config.init) and not validates_apart(train, val)
    arch_params: dict[str, Any] = {"widths": list(config.widths)}
    centres = bool(config.init) and config.prototypes and not config.probe_head and is_few_shot(train["class"])
    if centres:
        arch_params[PROTOTYPES_PARAM] = dict(PROTOTYPES)
    preprocess, reject, decision = config.preprocess, [], {}
    if config.init and preprocess is None:
        from hemascope.models.registry import load_model

        source = load_model(config.init, "cpu").card
        # the input pipeline carries over; the source's decision calibration (label shift, blast
        # rule) was fitted on its own outputs: kept only if the pretrained head is (class centres)
        preprocess = {
            k: v for k, v in source.preprocess.items() if k not in DECISION_PREPROCESS_KEYS
        }
        reject = [c for c in source.reject_classes if c in classes]
        if centres and list(source.classes) == classes:
            decision = {k: v for k, v in source.preprocess.items() if k in DECISION_PREPROCESS_KEYS}
    card = ModelCard(
        name=config.name,
        version=config.version,
        classes=classes,
        input_size=config.input_size,
        mpp=config.mpp,
        arch_params=arch_params,
        training_data=list(config.training_data),
        licence=config.licence,
        description=config.description,
        preprocess=dict(preprocess or {}),
        reject_classes=reject,
    )
    out_dir = Path(out_dir)
    banks = {}
    for split, table in (("train", train), ("val", val), ("test", test)):
        if table is None or table.empty:
            continue
        bank, failed = load_crop_bank(
            table, card, margin=config.margin, cache_dir=cache_dir, progress=progress, cancel=cancel
        )
        if failed:
            raise DataError(
                f"{len(failed)} unreadable images in {split}, first: {failed[0][0]}: {failed[0][1]}"
            )
        if wants_chroma_subsampling(card.preprocess):
            bank = chroma_subsample_uint8(bank)  # as the crops the model was trained on
        banks[split] = torch.from_numpy(bank)
    y_train = _labels(train, classes)
    y_val = _labels(val, classes)
    if config.noise_rate > 0:
        y_train = inject_symmetric_noise(y_train, config.noise_rate, len(classes), seed=config.seed)
    counts = np.bincount(y_train, minlength=len(classes))
    module = build_model(card.architecture, len(classes), card.arch_params).to(device)
    if config.init:
        started = init_from_model(module, card, config.init)
        card.training_data.append(f"initialised from {started.source}")
    loss_fn = make_loss(config.loss, counts, epochs=config.epochs).to(device)
    opt = torch.optim.AdamW(module.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    start_epoch, best_f1, history = 0, -1.0, []
    val_pick = _val_subset(len(y_val), config.val_per_epoch, config.seed)
    second_reading = None  # the card's second reading of the training cells' stain, if any
    if config.recalibrate_bn and (card.preprocess or {}).get("stain_reading") and len(banks["train"]):
        second_reading = read_stain(banks["train"][probe_subset(len(banks["train"]))].numpy(), card)[1]
    epochs = 0 if head_only else config.epochs
    if config.init and (config.probe_head or head_only or centres):
        # frozen features first (class centres, or LP-FT's head): kept unless a fine-tuned epoch beats it
        if config.recalibrate_bn:
            # the features of the new lab's own cells: BatchNorm statistics of its plain crops (and
            # of their second reading, where the card reads their stain twice)
            recalibrate_batchnorm(module, banks["train"], card, device, seed=config.seed, stain=second_reading)
        if centres:
            fit_prototypes(module, banks["train"], y_train, card, device)
            note = "class centres of the training cells added to the pretrained head"
        else:
            probe_head(module, banks["train"], y_train, card, device)
            note = "head fitted on frozen features"
        val_pred = _logits(module, banks["val"][val_pick], card, device).argmax(1)
        best_f1 = classification_metrics(y_val[val_pick], val_pred, classes)["macro_f1"]
        if head_only:
            note += "; no fine-tuning: the validation cells are the training cells"
        history.append({"epoch": -1, "step": note, "val_macro_f1": best_f1})
    best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    if centres and epochs:
        clear_prototypes(module)  # the epochs fine-tune the plain network
    if resume:
        restored = load_checkpoint(out_dir, module, opt)
        if restored is not None:
            info, best_state = restored
            start_epoch, best_f1, history = info["epoch"] + 1, info["best_f1"], info["history"]
    steps_per_epoch = max(1, (config.samples_per_epoch or len(y_train)) // config.batch_size)
    total_steps = steps_per_epoch * epochs
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    y_train_t = torch.as_tensor(np.array(y_train))
    for epoch in range(start_epoch, epochs):
        t0 = time.perf_counter()
        module.train()
        if isinstance(loss_fn, LDAMLoss):  # the one loss that re-weights by epoch
            loss_fn.set_epoch(epoch)
        sampler = balanced_sampler(
            y_train,
            train["domain"].to_numpy(),
            by_class=config.balance_classes,
            by_domain=config.balance_domains,
            seed=config.seed * 1000 + epoch,
            num_samples=steps_per_epoch * config.batch_size,
        )
        order = torch.as_tensor(list(sampler))
        gen = torch.Generator().manual_seed(config.seed * 7919 + epoch)
        running = 0.0
        for step in range(steps_per_epoch):
            check_cancelled(cancel)
            idx = order[step * config.batch_size : (step + 1) * config.batch_size]
            for group in opt.param_groups:
                group["lr"] = _lr_at(epoch * steps_per_epoch + step, total_steps, config.lr)
            x = augment_batch(
                banks["train"][idx].to(device),
                card.input_size,
                card.mean,
                card.std,
                config.augment,
                gen,
                balance_white=wants_white_balance(card.preprocess),
            )
            y = y_train_t[idx].to(device)
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                loss = _batch_loss(module, loss_fn, x, y, config.mixup, gen)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            running += loss.item()
            report(
                progress,
                epoch * steps_per_epoch + step + 1,
                total_steps,
                f"epoch {epoch + 1} loss {running / (step + 1):.3f}",
            )
        if config.recalibrate_bn:
            recalibrate_batchnorm(module, banks["train"], card, device, seed=config.seed, stain=second_reading)
        val_pred = _logits(module, banks["val"][val_pick], card, device).argmax(1)
        val_f1 = classification_metrics(y_val[val_pick], val_pred, classes)["macro_f1"]
        history.append(
            {
                "epoch": epoch,
                "loss": running / steps_per_epoch,
                "val_macro_f1": val_f1,
                "seconds": time.perf_counter() - t0,
            }
        )
        if val_f1 > best_f1:
            best_f1 = val_f1
            best_state = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
        save_checkpoint(
            out_dir,
            module,
            best_state,
            opt,
            {"epoch": epoch, "best_f1": best_f1, "history": history},
        )
    module.load_state_dict(best_state)
    if centres and best_f1 == history[0]["val_macro_f1"]:  # no fine-tuned epoch beat the centres
        # the class centres were kept: the pretrained head, whose decision calibration holds
        card.preprocess.update(decision)
        if decision:
            card.training_data.append(f"decision calibration ({', '.join(sorted(decision))}) kept from {config.init}")
    val_logits = _logits(module, banks["val"], card, device)
    card.temperature = fit_temperature(val_logits, y_val)
    metrics: dict[str, Any] = {
        "config": _jsonable(asdict(config)),
        "history": history,
        "train_class_counts": dict(zip(classes, counts.tolist(), strict=True)),
    }
    for split, table in (("val", val), ("test", test)):
        if split not in banks:
            continue
        logits = val_logits if split == "val" else _logits(module, banks[split], card, device)
        prob = torch.softmax(torch.from_numpy(logits) / card.temperature, 1).numpy()
        metrics[split] = classification_metrics(
            _labels(table, classes), prob.argmax(1), classes, prob
        )
    card.metrics = {
        s: {
            "accuracy": round(metrics[s]["accuracy"], 4),
            "macro_f1": round(metrics[s]["macro_f1"], 4),
            "ece": round(metrics[s]["ece"], 4),
            "n": metrics[s]["n"],
        }
        for s in ("val", "test")
        if s in metrics
    }
    card_path = save_model(module.cpu(), card, out_dir)
    atomic_write_json(out_dir / "metrics.json", metrics)
    report(progress, total_steps, total_steps, "done")
    return TrainResult(card_path, metrics)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
