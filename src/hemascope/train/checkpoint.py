"""Training checkpoints as safetensors (model, best model, optimizer moments) + a JSON sidecar.

Nothing is pickled: tensors go to ``checkpoint.safetensors`` under prefixed names, everything else
(epoch, best score, optimizer hyper-parameters) to ``checkpoint.json``. Both are replaced
atomically, the JSON last, so a checkpoint is either complete or the previous one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from hemascope.errors import ModelIntegrityError
from hemascope.files import atomic_path, atomic_write_json


def save_checkpoint(
    directory: str | Path,
    model: torch.nn.Module,
    best_state: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    info: dict[str, Any],
) -> Path:
    """Write the training state of an epoch; returns the JSON sidecar path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"best.{k}": v.detach().cpu().contiguous() for k, v in best_state.items()})
    opt = optimizer.state_dict()
    for idx, state in opt["state"].items():
        for key, value in state.items():
            t = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"opt.{idx}.{key}"] = t.detach().cpu().contiguous()
    with atomic_path(directory / "checkpoint.safetensors") as tmp:
        save_file(tensors, str(tmp))
    payload = dict(
        info,
        param_groups=[{k: v for k, v in g.items() if k != "params"} for g in opt["param_groups"]],
    )
    return atomic_write_json(directory / "checkpoint.json", payload)


def load_checkpoint(
    directory: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, Any], dict[str, torch.Tensor]] | None:
    """Restore model and optimizer from a directory; ``None`` when it holds no checkpoint.

    Returns
    -------
    (info, best_state) or None
        The JSON info (epoch, best score, ...) and the best model's state dict.
    """
    directory = Path(directory)
    sidecar, weights = directory / "checkpoint.json", directory / "checkpoint.safetensors"
    if not (sidecar.is_file() and weights.is_file()):
        return None
    try:
        tensors = load_file(str(weights))
        info = json.loads(sidecar.read_text(encoding="utf-8"))
    except (SafetensorError, OSError, json.JSONDecodeError) as exc:
        raise ModelIntegrityError(f"cannot read checkpoint in {directory}: {exc}") from None
    model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    best_state = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
    try:
        model.load_state_dict(model_state)
    except RuntimeError as exc:
        raise ModelIntegrityError(
            f"checkpoint in {directory} does not fit the model: {exc}"
        ) from None
    opt_state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, idx, key = k.split(".", 2)
            opt_state.setdefault(int(idx), {})[key] = v
    groups = optimizer.state_dict()["param_groups"]
    for g, saved in zip(groups, info.get("param_groups", []), strict=False):
        g.update(saved)
    optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
    return info, best_state
