"""The ``cellpose`` backend: Cellpose ≥ 4 ``CellposeModel`` on batches of candidate crops.

The model is a local file: a path, or a name looked up in ``CELLPOSE_LOCAL_MODELS_PATH`` (else
``~/.cellpose/models``). It is never downloaded: a missing file raises
:class:`~hemascope.errors.ModelNotFoundError` saying where to put it. Weights run in bfloat16 on a
GPU and float32 on the CPU. Cellpose outlines whole cells; nuclei are then found inside each cell
with the classical nuclear-stain threshold.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from hemascope.errors import ModelError, ModelNotFoundError
from hemascope.segment.nuclei import nuclei_inside
from hemascope.segment.settings import SegmentSettings

#: Default Cellpose model name.
DEFAULT_MODEL = "cpsam"
#: Cellpose works best with cells of about this many pixels across.
CELLPOSE_DIAMETER_PX = 30.0

_LOCK = threading.Lock()


def cellpose_models_dir() -> Path:
    """Where named Cellpose models are looked up: ``$CELLPOSE_LOCAL_MODELS_PATH`` or ``~/.cellpose/models``."""
    env = os.environ.get("CELLPOSE_LOCAL_MODELS_PATH")
    return Path(env) if env else Path.home() / ".cellpose" / "models"


def resolve_cellpose_model(model: str | os.PathLike[str] | None) -> Path:
    """The local file of a Cellpose model given by name or path.

    Parameters
    ----------
    model
        A file path, or a model name (default ``"cpsam"``) looked up in :func:`cellpose_models_dir`.

    Returns
    -------
    pathlib.Path
        An existing file.

    Raises
    ------
    ModelNotFoundError
        When no such file exists locally (hemascope never downloads it).
    """
    name = str(model) if model else DEFAULT_MODEL
    path = Path(name).expanduser()
    if path.is_file():
        return path.resolve()
    candidate = cellpose_models_dir() / name
    if candidate.is_file():
        return candidate.resolve()
    raise ModelNotFoundError(
        f"Cellpose model {name!r} not found locally: put the weights file at {candidate} "
        "(or set CELLPOSE_LOCAL_MODELS_PATH to its folder, or pass a file path); "
        "hemascope never downloads models. Use --segmenter classical to run without Cellpose."
    )


def cellpose_weights_available(model: str | None = None) -> bool:
    """Whether :func:`resolve_cellpose_model` would find ``model`` locally."""
    try:
        resolve_cellpose_model(model)
    except ModelNotFoundError:
        return False
    return True


def _cellpose_model_class():
    try:
        from cellpose.models import CellposeModel
    except (ImportError, RuntimeError, OSError) as exc:  # e.g. a torchvision built for another torch
        import torch

        raise ModelError(
            f"Cellpose cannot be imported here ({type(exc).__name__}: {exc}); it needs a torchvision "
            f"build matching torch {torch.__version__}. Use --segmenter classical meanwhile."
        ) from None
    return CellposeModel


@lru_cache(maxsize=4)
def _load(path: str, device: str):
    CellposeModel = _cellpose_model_class()
    from hemascope.devices import resolve_device

    dev = resolve_device(device)
    return CellposeModel(pretrained_model=path, device=dev, use_bfloat16=dev.type != "cpu")


def load_cellpose_model(model: str | None = None, device: str = "cpu"):
    """Load (once per file and device) a local Cellpose model.

    Parameters
    ----------
    model
        Name or file path (see :func:`resolve_cellpose_model`).
    device
        ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or ``"auto"``.

    Returns
    -------
    cellpose.models.CellposeModel
        bfloat16 weights on a GPU, float32 on the CPU.

    Raises
    ------
    ModelNotFoundError
        When the weights are not on this machine.
    ModelError
        When Cellpose itself cannot be imported.
    InvalidInputError
        For an unavailable device.
    """
    path = resolve_cellpose_model(model)
    with _LOCK:
        return _load(str(path), device)


def segment_crops_cellpose(
    crops: list[np.ndarray],
    mpp: float,
    background: np.ndarray | None,
    settings: SegmentSettings,
    red_cell_tint: float = 0.0,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Whole-cell labels by Cellpose (batched), nucleus labels by the nuclear-stain threshold.

    Parameters
    ----------
    crops
        ``(rows, cols, 3)`` uint8 RGB crops.
    mpp
        µm/px of the crops.
    background
        Glass colour of the slide.
    settings
        Run settings (``model``, ``device``, ``batch_size``, diameters).
    red_cell_tint
        Unused by Cellpose; accepted for a uniform backend signature.

    Returns
    -------
    list of (cells, nuclei)
        int32 labels per crop.
    """
    model = load_cellpose_model(settings.model, settings.device)
    diameter_px = (settings.min_diameter_um + settings.max_diameter_um) / 2 / mpp
    out = []
    batch = settings.batch_size
    for start in range(0, len(crops), batch):
        chunk = [np.ascontiguousarray(c) for c in crops[start : start + batch]]
        with _LOCK:  # one model, used by several region threads
            masks, _flows, _styles = model.eval(
                chunk, batch_size=batch, diameter=diameter_px, channel_axis=-1,
                min_size=int((settings.min_diameter_um / mpp) ** 2 / 2),
            )
        for crop, cells in zip(chunk, masks, strict=True):
            cells = np.asarray(cells, dtype=np.int32)
            out.append((cells, nuclei_inside(crop, cells, mpp, background, settings.classical)))
    return out
