"""The GUI-free core of the Analyze dock: settings → config, and the analysis as a generator.

:func:`iter_analysis` is the pipeline's own generator (:func:`hemascope.pipeline.iter_analysis`): it
yields :class:`~hemascope.progress.ProgressEvent`\\ s and returns the
:class:`~hemascope.results.SlideResult`. The dock runs it in one ``napari.qt.threading`` worker;
scripts and tests iterate it directly.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hemascope.errors import InvalidInputError
from hemascope.progress import ProgressEvent


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
    """The Analyze dock's compute: :func:`hemascope.pipeline.iter_analysis`, unchanged.

    Parameters
    ----------
    slide
        A :class:`~hemascope.io.Slide` or a slide path.
    config
        An :class:`~hemascope.config.AnalysisConfig` (or anything ``analyze_slide`` accepts).
    cancel
        Set it to stop the run (checked between regions and inside a region's classification).
    out_dir
        Where the result is saved (``None``: not saved).

    Yields
    ------
    ProgressEvent
        One per finished region, and one when done.

    Returns
    -------
    SlideResult
        The generator's return value (``StopIteration.value``).
    """
    from hemascope.pipeline import iter_analysis as pipeline_steps

    return (yield from pipeline_steps(slide, config, out_dir=out_dir, cancel=cancel))
