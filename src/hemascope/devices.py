"""Where torch runs: one resolver of device names for every room (cell models, Cellpose, training)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hemascope.errors import InvalidInputError

if TYPE_CHECKING:
    import torch

#: The device names the CLI documents (``cuda:N`` is accepted too).
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → CUDA if available, else Apple MPS, else CPU; other names are checked.

    Raises
    ------
    InvalidInputError
        An unknown device name, or CUDA/MPS asked for where it is not available.
    """
    import torch

    if str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InvalidInputError(f"unknown device {device!r} (use {', '.join(DEVICE_CHOICES)} or cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError(f"device {str(device)!r} requested but CUDA is not available")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise InvalidInputError("device 'mps' requested but MPS is not available")
    return dev
