"""The whole analysis of one slide, headless and resumable: :func:`analyze_slide`.

open_slide → plan regions → per region: segment + classify (saved atomically as each finishes) →
concatenate → slide summary (differential, subtype) → :class:`~hemascope.results.SlideResult`.

A region is the unit of work: its cells (with class probabilities) and embeddings are written to
``<out_dir>/regions/`` as soon as it is done, so a killed run resumes from its last finished region
(``resume=True``), and :mod:`hemascope.distributed` runs the same regions on dask workers. A cell
belongs to exactly one region (the one whose core box holds its centroid), so concatenating the
regions never duplicates a cell. ``<out_dir>/run.json`` pins the slide and settings a run was
started with; resuming with different ones is refused.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hemascope import __version__
from hemascope.config import AnalysisConfig, load_config
from hemascope.errors import ConfigError, InvalidInputError
from hemascope.progress import CancelToken, ProgressCallback, check_cancelled, report
from hemascope.results import (
    SlideResult,
    atomic_write_json,
    atomic_write_npy,
    atomic_write_table,
    is_complete,
)

REGIONS_DIR = "regions"
RUN_MANIFEST = "run.json"


# --- per-process caches (models load once per process / dask worker) ------------------------------
@functools.lru_cache(maxsize=4)
def cached_cell_model(name: str, device: str) -> Any:
    """Load a cell model once per process (dask workers reuse it for every region)."""
    from hemascope.classify import resolve_device
    from hemascope.models import load_model

    return load_model(name, device=resolve_device(device))


@functools.lru_cache(maxsize=8)
def cached_slide(path: str, mpp: float | None) -> Any:
    """Open a slide once per process (for workers that run many regions of it)."""
    from hemascope.io import open_slide

    return open_slide(path, mpp=mpp)


# --- region checkpoints ---------------------------------------------------------------------------
@dataclass
class RegionOutput:
    """Cells found in one region: the table (with class columns) and their embeddings."""

    index: int
    cells: pd.DataFrame
    embeddings: np.ndarray | None
    seconds: dict[str, float]


class RegionCheckpoints:
    """Finished regions of one run, one pair of files per region in ``<out_dir>/regions``.

    The embeddings are written first and the cell table last (both atomically), so a region is
    finished exactly when its table exists and its row count matches the embeddings.
    """

    def __init__(self, out_dir: str | Path) -> None:
        self.directory = Path(out_dir) / REGIONS_DIR

    def _paths(self, index: int) -> tuple[Path, Path]:
        stem = self.directory / f"region_{index:06d}"
        return stem.with_suffix(".parquet"), stem.with_suffix(".npy")

    def save(self, output: RegionOutput) -> None:
        """Write one finished region atomically (embeddings first, table last)."""
        table, emb = self._paths(output.index)
        if output.embeddings is not None:
            atomic_write_npy(emb, output.embeddings)
        cells = output.cells.copy()
        cells.attrs = {"seconds": dict(output.seconds)}  # kept in the Parquet metadata
        atomic_write_table(table, cells)

    def load(self, index: int) -> RegionOutput | None:
        """A finished region, or ``None`` if it is not (completely) saved."""
        table, emb = self._paths(index)
        if not table.is_file():
            return None
        cells = pd.read_parquet(table)
        embeddings = np.load(emb, allow_pickle=False) if emb.is_file() else None
        if embeddings is not None and len(embeddings) != len(cells):
            return None  # a crash between the two writes of a re-run region: redo it
        seconds = dict(cells.attrs.get("seconds", {}))
        cells.attrs = {}
        return RegionOutput(index, cells, embeddings, seconds)

    def finished(self) -> set[int]:
        """Indices of the regions whose table exists."""
        if not self.directory.is_dir():
            return set()
        return {int(p.stem.split("_")[1]) for p in self.directory.glob("region_*.parquet")}


# --- planning ---------------------------------------------------------------------------------------
def _slide_facts(slide: Any) -> dict[str, Any]:
    return {
        "path": str(slide.path) if slide.path is not None else None,
        "name": slide.name,
        "shape": list(slide.shape),
        "mpp": slide.mpp,
        "mpp_source": slide.mpp_source,
        "format": slide.format,
    }


def open_input(path_or_slide: Any, config: AnalysisConfig) -> Any:
    """Open ``path_or_slide`` (a path or an already open :class:`~hemascope.io.Slide`) for a run."""
    from hemascope.io import Slide, open_slide

    if isinstance(path_or_slide, Slide):
        if config.mpp is not None and path_or_slide.mpp != config.mpp:
            path_or_slide.mpp, path_or_slide.mpp_source = config.mpp, "user"
        return path_or_slide
    if isinstance(path_or_slide, (str, Path)):
        return open_slide(path_or_slide, mpp=config.mpp)
    raise InvalidInputError(f"expected a slide path or a Slide, got {type(path_or_slide).__name__}")


def plan_slide_regions(slide: Any, config: AnalysisConfig) -> list[Any]:
    """The regions of ``slide`` to segment under ``config`` (see :func:`hemascope.segment.plan_regions`)."""
    from hemascope.segment import plan_regions

    if slide.mpp is None:
        raise InvalidInputError(f"{slide.name}: µm/px unknown; set 'mpp' in the configuration")
    return list(plan_regions(slide, region_size=config.region_size, roi=config.roi_px(slide.mpp)))


def _check_manifest(out_dir: Path, manifest: dict[str, Any], resume: bool) -> None:
    path = out_dir / RUN_MANIFEST
    if resume and path.is_file():
        old = json.loads(path.read_text(encoding="utf-8"))
        for key in ("slide", "config_fingerprint", "n_regions"):
            if old.get(key) != manifest.get(key):
                raise ConfigError(
                    f"{out_dir} holds a run of a different {key.replace('_', ' ')}; "
                    "resume with the same slide and settings, or use another output folder"
                )
        return
    checkpoints = RegionCheckpoints(out_dir)
    if checkpoints.directory.is_dir():  # a fresh run: forget the old regions
        for old_file in checkpoints.directory.iterdir():
            old_file.unlink()
    atomic_write_json(path, manifest)


def start_run(slide: Any, regions: list[Any], config: AnalysisConfig, out_dir: Path, resume: bool) -> None:
    """Record (or, when resuming, check) what the run in ``out_dir`` is computing."""
    out_dir.mkdir(parents=True, exist_ok=True)
    facts = _slide_facts(slide)
    manifest = {
        "hemascope_version": __version__,
        "slide": {k: facts[k] for k in ("path", "shape", "mpp")},
        "config_fingerprint": config.fingerprint(),
        "n_regions": len(regions),
    }
    _check_manifest(out_dir, manifest, resume)


# --- the work ---------------------------------------------------------------------------------------
def run_region(slide: Any, region: Any, index: int, config: AnalysisConfig, *, cancel: CancelToken | None = None) -> RegionOutput:
    """Segment and classify the cells of one region.

    Parameters
    ----------
    slide
        The open slide.
    region
        One of :func:`plan_slide_regions`.
    index
        The region's position in the plan (its checkpoint name).
    config
        Run settings.
    cancel
        Cancel token.

    Returns
    -------
    RegionOutput
        Cells owned by the region, with ``class``, ``confidence``, ``prob_<class>`` columns, and
        their embeddings.
    """
    from hemascope.classify import predict_cells
    from hemascope.segment import segment_region

    t0 = time.perf_counter()
    settings = {"segmenter": config.segmenter, **config.segmenter_settings}
    cells = segment_region(slide, region, settings).reset_index(drop=True)
    t1 = time.perf_counter()
    check_cancelled(cancel)
    model = cached_cell_model(config.cell_model, config.device)
    embeddings = None
    if len(cells):
        pred = predict_cells(
            slide, cells, model, device=config.device, batch_size=config.batch_size, tta=config.tta,
            return_embeddings=True, cancel=cancel,
        )
        cells = pd.concat([cells, pred.table], axis=1)
        embeddings = pred.embeddings
        if config.min_confidence > 0:
            cells.loc[cells["confidence"] < config.min_confidence, "class"] = "unclassified"
    cells.insert(0, "region", index)
    t2 = time.perf_counter()
    return RegionOutput(index, cells, embeddings, {"segment": t1 - t0, "classify": t2 - t1})


def _model_provenance(config: AnalysisConfig, summary: Any) -> dict[str, Any]:
    card = cached_cell_model(config.cell_model, config.device).card
    models = {"cell": {"name": card.name, "version": card.version, "sha256": card.sha256}}
    for i, pred in enumerate(summary.subtypes):
        key = "slide" if i == 0 else f"slide_{i}"
        models[key] = {"name": pred.model, "version": pred.version, "demo": pred.demo}
    try:
        from hemascope.slide import load_bag_model

        for info in list(models.values())[1:]:
            info["sha256"] = load_bag_model(info["name"]).card.sha256
    except Exception:  # noqa: BLE001 - provenance extras must not fail a finished analysis
        pass
    return models


def finish_slide(
    slide: Any, outputs: list[RegionOutput], config: AnalysisConfig, *, timings: dict[str, float] | None = None,
    progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
) -> SlideResult:
    """Concatenate finished regions and add the slide-level summary.

    Parameters
    ----------
    slide
        The open slide.
    outputs
        Every region's output, in plan order.
    config
        Run settings.
    timings
        Extra timings (s) to record.
    progress, cancel
        See :mod:`hemascope.progress`.

    Returns
    -------
    SlideResult
    """
    from hemascope.slide import summarize
    from hemascope.slide.summary import DEFAULT_BAG_MODELS

    t0 = time.perf_counter()
    outputs = sorted(outputs, key=lambda o: o.index)
    tables = [o.cells for o in outputs if len(o.cells)]
    cells = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame({"region": pd.Series(dtype=int)})
    # One id per cell on the slide (region tables number their cells locally).
    if "id" in cells:
        cells = cells.drop(columns="id")
    cells.insert(0, "id", np.arange(len(cells), dtype=np.int64))
    embs = [o.embeddings for o in outputs if len(o.cells) and o.embeddings is not None]
    embeddings = np.concatenate(embs).astype(np.float32) if embs else None
    if "class" not in cells:
        cells["class"] = pd.Series(dtype=object)
    if config.slide_model is None:
        bag_models = DEFAULT_BAG_MODELS
    else:
        bag_models = () if config.slide_model.lower() == "none" else (config.slide_model,)
    kwargs = {} if config.min_cells is None else {"min_cells": config.min_cells}
    summary = summarize(
        cells, embeddings, models=bag_models, min_blasts=config.min_blasts,
        progress=progress, cancel=cancel, **kwargs,
    )
    seconds: dict[str, float] = {"segment": 0.0, "classify": 0.0}
    for o in outputs:
        for key, value in o.seconds.items():
            seconds[key] = seconds.get(key, 0.0) + float(value)
    seconds["summarize"] = time.perf_counter() - t0
    seconds.update(timings or {})
    provenance = {
        "hemascope_version": __version__,
        "segmenter": config.segmenter,
        "segmenter_version": _segmenter_version(config.segmenter),
        "models": _model_provenance(config, summary),
        "n_regions": len(outputs),
        "timings_s": seconds,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return SlideResult(
        cells=cells,
        embeddings=embeddings,
        differential=summary.differential.to_dict(),
        subtype=summary.subtype.to_dict() if summary.subtype else None,
        subtypes=[s.to_dict() for s in summary.subtypes],
        slide=_slide_facts(slide),
        config=config,
        provenance=provenance,
    )


def _segmenter_version(segmenter: str) -> str:
    if segmenter == "cellpose":
        from importlib.metadata import version

        return f"cellpose {version('cellpose')}"
    return f"hemascope {__version__}"


def analyze_slide(
    path_or_slide: Any,
    config: AnalysisConfig | dict[str, Any] | str | Path | None = None,
    *,
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> SlideResult:
    """Analyse one slide: segment, classify and summarise every white cell.

    Parameters
    ----------
    path_or_slide
        A slide file (anything :func:`hemascope.io.open_slide` reads) or an open ``Slide``.
    config
        An :class:`~hemascope.config.AnalysisConfig`, a dict of settings, a TOML path, or ``None``.
    out_dir
        Where to save the result (and the per-region checkpoints); ``None`` keeps it in memory.
    resume
        Continue the run in ``out_dir`` from its last finished region (a complete result is
        loaded and returned as it is).
    progress, cancel
        See :mod:`hemascope.progress`; progress counts regions.

    Returns
    -------
    SlideResult

    Raises
    ------
    HemascopeError
        On an unreadable slide, invalid settings, a missing model, or ``Cancelled``.
    """
    config = load_config(config)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None and resume and is_complete(out):
        return SlideResult.load(out)
    t_start = time.perf_counter()
    slide = open_input(path_or_slide, config)
    regions = plan_slide_regions(slide, config)
    checkpoints = None
    if out is not None:
        start_run(slide, regions, config, out, resume)
        checkpoints = RegionCheckpoints(out)
    outputs = []
    for i, region in enumerate(regions):
        check_cancelled(cancel)
        output = checkpoints.load(i) if checkpoints is not None and resume else None
        if output is None:
            output = run_region(slide, region, i, config, cancel=cancel)
            if checkpoints is not None:
                checkpoints.save(output)
        outputs.append(output)
        report(progress, i + 1, len(regions) + 1, f"region {i + 1}/{len(regions)}")
    result = finish_slide(slide, outputs, config, timings={"total": time.perf_counter() - t_start}, cancel=cancel)
    if out is not None:
        result.save(out)
    report(progress, len(regions) + 1, len(regions) + 1, "done")
    return result


__all__ = [
    "RegionCheckpoints",
    "RegionOutput",
    "analyze_slide",
    "cached_cell_model",
    "cached_slide",
    "finish_slide",
    "open_input",
    "plan_slide_regions",
    "run_region",
    "start_run",
]
