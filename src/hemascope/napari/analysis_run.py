"""The GUI-free core of the Analyze dock: settings → config, and the analysis as a generator.

:func:`iter_analysis` runs :func:`hemascope.analyze_slide` and yields :class:`ProgressEvent`\\ s
while it works, returning the :class:`~hemascope.results.SlideResult` as the generator's value. The
dock hands it to ``napari.qt.threading``; scripts and tests iterate it directly.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hemascope.errors import InvalidInputError

#: Seconds between checks of the analysis thread while no progress arrives.
_POLL_S = 0.05


@dataclass(frozen=True)
class ProgressEvent:
    """One progress report: ``done`` of ``total`` steps, with a short message."""

    done: int
    total: int
    message: str = ""

    @property
    def fraction(self) -> float:
        """Completed fraction in [0, 1] (0 while the total is unknown)."""
        return min(max(self.done / self.total, 0.0), 1.0) if self.total > 0 else 0.0


def available_devices() -> list[str]:
    """The compute devices that exist here: ``"cpu"``, then each CUDA GPU, then ``"mps"``.

    Returns
    -------
    list of str
        Device strings :class:`~hemascope.config.AnalysisConfig` accepts.
    """
    import torch

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return devices


def roi_from_polygon_um(vertices: np.ndarray | Sequence[Sequence[float]]) -> tuple[tuple[float, float], ...]:
    """A ROI polygon for :class:`~hemascope.config.AnalysisConfig` from world vertices in µm.

    Parameters
    ----------
    vertices
        ``(n, 2)`` ``(row, col)`` = ``(y, x)`` vertices in µm (napari world coordinates of a
        Shapes layer drawn over a slide layer whose scale is in µm).

    Returns
    -------
    tuple of (float, float)
        The polygon as ``config.roi_um`` expects it.
    """
    arr = np.asarray(vertices, dtype=float)
    if arr.ndim != 2 or arr.shape[1] < 2 or len(arr) < 3:
        raise InvalidInputError(f"a region needs at least 3 (row, col) vertices, got shape {arr.shape}")
    return tuple((float(r), float(c)) for r, c in arr[:, -2:])


def analysis_config(
    *,
    segmenter: str = "classical",
    segmenter_model: str | Path | None = None,
    cell_model: str = "wbc",
    slide_model: str | None = None,
    device: str = "cpu",
    batch_size: int = 64,
    roi_um: tuple[tuple[float, float], ...] | None = None,
    **extra: Any,
) -> Any:
    """Build the :class:`~hemascope.config.AnalysisConfig` the dock's choices describe.

    Parameters
    ----------
    segmenter
        ``"classical"`` or ``"cellpose"``.
    segmenter_model
        Cellpose model name or local file (only for ``segmenter="cellpose"``).
    cell_model, slide_model
        Model names or paths (``slide_model=None``: library default).
    device
        One of :func:`available_devices`.
    batch_size
        Cells per classifier batch.
    roi_um
        Region polygon in µm (``None``: the whole smear).
    **extra
        Any other :class:`~hemascope.config.AnalysisConfig` field.

    Returns
    -------
    AnalysisConfig
        Validated; bad values raise :class:`~hemascope.errors.ConfigError`.
    """
    from hemascope.config import AnalysisConfig

    settings: dict[str, Any] = {}
    if segmenter == "cellpose" and segmenter_model:
        settings["model"] = str(segmenter_model)
    return AnalysisConfig.from_dict(
        {
            "segmenter": segmenter,
            "segmenter_settings": settings,
            "cell_model": cell_model,
            "slide_model": slide_model or None,
            "device": device,
            "batch_size": int(batch_size),
            "roi_um": roi_um,
            **extra,
        }
    )


def iter_analysis(
    slide: Any,
    config: Any = None,
    *,
    cancel: threading.Event | None = None,
    out_dir: str | Path | None = None,
) -> Generator[ProgressEvent, None, Any]:
    """Run :func:`hemascope.analyze_slide` in a thread, yielding its progress as it comes.

    Parameters
    ----------
    slide
        A :class:`~hemascope.io.Slide` or a slide path.
    config
        An :class:`~hemascope.config.AnalysisConfig` (or anything ``analyze_slide`` accepts).
    cancel
        Set it to stop the run; closing the generator sets it too.
    out_dir
        Where ``analyze_slide`` saves the result (``None``: not saved).

    Yields
    ------
    ProgressEvent
        Each progress report of the pipeline.

    Returns
    -------
    SlideResult
        The generator's return value (``StopIteration.value``).

    Raises
    ------
    hemascope.errors.HemascopeError
        Whatever the pipeline raised (:class:`~hemascope.errors.Cancelled` when cancelled).
    """
    from hemascope.pipeline import analyze_slide

    cancel = cancel if cancel is not None else threading.Event()
    events: queue.Queue[ProgressEvent] = queue.Queue()
    outcome: dict[str, Any] = {}

    def _progress(done: int, total: int, message: str = "") -> None:
        events.put(ProgressEvent(int(done), int(total), str(message)))

    def _work() -> None:
        try:
            outcome["result"] = analyze_slide(
                slide, config, out_dir=out_dir, progress=_progress, cancel=cancel
            )
        except BaseException as exc:  # re-raised in the consuming thread
            outcome["error"] = exc

    thread = threading.Thread(target=_work, name="hemascope-analysis", daemon=True)
    thread.start()
    try:
        while thread.is_alive() or not events.empty():
            try:
                yield events.get(timeout=_POLL_S)
            except queue.Empty:
                continue
    finally:
        if thread.is_alive():  # the consumer stopped early: ask the pipeline to stop
            cancel.set()
        thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
