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
from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hemascope._version import __version__
from hemascope.config import AnalysisConfig, load_config
from hemascope.errors import ConfigError, InvalidInputError
from hemascope.files import atomic_write_json
from hemascope.progress import (
    CancelToken,
    ProgressCallback,
    ProgressEvent,
    check_cancelled,
    drain,
)
from hemascope.region_checkpoints import RegionCheckpoints, RegionOutput
from hemascope.results import SlideResult, is_complete

RUN_MANIFEST = "run.json"
LABELS_FILE = "labels.ome.zarr"


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


# --- planning ---------------------------------------------------------------------------------------
def _slide_facts(slide: Any) -> dict[str, Any]:
    facts = {
        "path": str(slide.path) if slide.path is not None else None,
        "name": slide.name,
        "shape": list(slide.shape),
        "mpp": None if slide.mpp is None else float(slide.mpp),
        "mpp_source": slide.mpp_source,
        "format": slide.format,
    }
    # an estimated scale (segment.scale.ScaleEstimate) carries how far it can be trusted
    for key in ("confidence", "low_confidence", "reason"):
        if hasattr(slide.mpp, key):
            facts[f"mpp_{key}"] = getattr(slide.mpp, key)
    return facts


def open_input(path_or_slide: Any, config: AnalysisConfig) -> Any:
    """Open ``path_or_slide`` (a path or an already open :class:`~hemascope.io.Slide`) for a run.

    An open slide is never changed: the run works on a shallow copy (same levels, same file
    handles), so setting or estimating its µm/px does not leak into the caller's object.
    """
    import copy

    from hemascope.io import Slide, open_slide

    if isinstance(path_or_slide, Slide):
        slide = copy.copy(path_or_slide)
        if config.mpp is not None and slide.mpp != config.mpp:
            slide.mpp, slide.mpp_source = config.mpp, "user"
        return slide
    if isinstance(path_or_slide, (str, Path)):
        return open_slide(path_or_slide, mpp=config.mpp)
    raise InvalidInputError(f"expected a slide path or a Slide, got {type(path_or_slide).__name__}")


def plan_slide_regions(slide: Any, config: AnalysisConfig) -> tuple[list[Any], Any]:
    """The smear mask and the regions of ``slide`` to analyse under ``config``.

    When the slide's µm/px is unknown it is estimated from its red cells (``mpp_source`` becomes
    ``"estimated"``), as :func:`hemascope.segment.find_cells` does.

    Returns
    -------
    regions, smear
        :func:`hemascope.segment.plan_regions` regions and the
        :class:`~hemascope.segment.smear.SmearMask` (ROI applied).
    """
    from hemascope.classify.cell_scale import picture_scale
    from hemascope.segment import plan_regions
    from hemascope.segment.regions import slide_mpp
    from hemascope.segment.smear import compute_smear_mask

    if slide.mpp is None:
        slide.mpp, slide.mpp_source = slide_mpp(slide, estimate=picture_scale)
    # after the scale is known: close-ups (a few cells filling the image) are told apart by it
    smear = compute_smear_mask(slide, None if config.roi_um is None else np.asarray(config.roi_um))
    regions = plan_regions(slide, _segment_settings(config), region_size=config.region_size, smear=smear)
    return regions, smear


def _segment_settings(config: AnalysisConfig) -> dict[str, Any]:
    return {"segmenter": config.segmenter, **config.segmenter_settings}


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
    checkpoints.directory.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, manifest)


def start_run(slide: Any, regions: list[Any], smear: Any, config: AnalysisConfig, out_dir: Path, resume: bool) -> None:
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
    RegionCheckpoints(out_dir).save_smear(smear)


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
        Cancel token, checked inside the region too: between batches of segmentation candidates
        and of classification crops, so a cancel stops a big region within one batch.

    Returns
    -------
    RegionOutput
        Cells owned by the region, with ``class``, ``confidence``, ``prob_<class>`` columns (the
        model's plain calls; :func:`finish_slide` takes the slide's decision), and their embeddings.
    """
    from hemascope.classify import predict_cells
    from hemascope.segment.regions import segment_region_with_masks

    t0 = time.perf_counter()
    cells, masks = segment_region_with_masks(slide, region, _segment_settings(config), cancel=cancel)
    cells = cells.reset_index(drop=True)
    t1 = time.perf_counter()
    check_cancelled(cancel)
    model = cached_cell_model(config.cell_model, config.device)
    embeddings = None
    if len(cells):
        pred = predict_cells(
            slide, cells, model, device=config.device, batch_size=config.batch_size, tta=config.tta,
            return_embeddings=True, cancel=cancel, adapt_priors=False, blast_min=0.0,
        )  # plain calls here; the slide's decision is taken once, on all its cells (finish_slide)
        cells = pd.concat([cells, pred.table], axis=1)
        embeddings = pred.embeddings
    cells["region"] = index
    t2 = time.perf_counter()
    return RegionOutput(index, cells, embeddings, {"segment": t1 - t0, "classify": t2 - t1}, masks)


def _model_provenance(config: AnalysisConfig) -> dict[str, Any]:
    from hemascope.slide import load_bag_model

    card = cached_cell_model(config.cell_model, config.device).card
    models: dict[str, Any] = {"cell": {"name": card.name, "version": card.version, "sha256": card.sha256,
                                       "classes": list(card.classes)}}
    for i, name in enumerate(_bag_models(config)):
        bag = load_bag_model(name).card
        models["slide" if i == 0 else f"slide_{i}"] = {
            "name": bag.name, "version": bag.version, "sha256": bag.sha256, "demo": bag.demo,
        }
    return models


def assemble_cells(outputs: list[RegionOutput]) -> tuple[pd.DataFrame, np.ndarray | None, list[Any] | None]:
    """Concatenate region outputs into one cell table (``id`` 1..N in (row, col) order).

    Returns
    -------
    cells, embeddings, masks
        The table (as :func:`hemascope.segment.concat_cell_tables` orders it), the embeddings and
        per-cell masks in the same row order (``None`` when absent).
    """
    from hemascope.segment import concat_cell_tables

    outputs = sorted(outputs, key=lambda o: o.index)
    with_cells = [o for o in outputs if len(o.cells)]
    offsets = np.cumsum([0] + [len(o.cells) for o in with_cells])
    tables = [o.cells.assign(_pos=np.arange(a, a + len(o.cells))) for o, a in zip(with_cells, offsets, strict=False)]
    cells = concat_cell_tables(tables)
    order = cells.pop("_pos").to_numpy(dtype=int) if "_pos" in cells else np.zeros(0, dtype=int)
    for name, dtype in (("class", object), ("region", np.int64)):
        if name not in cells:
            cells[name] = pd.Series(dtype=dtype)
    embeddings = masks = None
    if with_cells and all(o.embeddings is not None for o in with_cells):
        embeddings = np.concatenate([o.embeddings for o in with_cells]).astype(np.float32)[order]
    if with_cells and all(o.masks is not None for o in with_cells):
        flat = [m for o in with_cells for m in (o.masks or [])]
        masks = [flat[i] for i in order]
    return cells, embeddings, masks


def slide_model_plan(config: AnalysisConfig) -> tuple[list[str], list[Any]]:
    """The bag models a run with ``config`` uses, and every registry model with why it runs or not.

    The rule is :mod:`hemascope.slide.applicability`'s: a bag model runs only on the embeddings of
    the cell model it was trained on; by default every fitting registry model that is not
    SYNTHETIC/DEMO runs; ``slide_model = "none"`` runs none; named models must fit.

    Returns
    -------
    names, choices
        Bag model names and :class:`~hemascope.slide.applicability.SlideModelChoice` records.

    Raises
    ------
    InvalidInputError
        A named bag model reads another cell model's embeddings.
    """
    from hemascope.slide.applicability import resolve_slide_models

    card = cached_cell_model(config.cell_model, config.device).card
    return resolve_slide_models(config.slide_model, card)


def _bag_models(config: AnalysisConfig) -> tuple[str, ...]:
    return tuple(slide_model_plan(config)[0])


def check_models(config: AnalysisConfig) -> None:
    """Load the cell model and refuse, before any work, a slide model that does not fit it.

    Raises
    ------
    ModelNotFoundError
        The cell or a named slide model does not exist.
    InvalidInputError
        Naming the cell model a named slide model needs.
    """
    slide_model_plan(config)


def finish_slide(
    slide: Any, outputs: list[RegionOutput], config: AnalysisConfig, *, smear: Any = None,
    out_dir: str | Path | None = None, timings: dict[str, float] | None = None,
    progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
) -> SlideResult:
    """Concatenate finished regions, add the slide-level summary and (with ``out_dir``) the label mask.

    Parameters
    ----------
    slide
        The open slide.
    outputs
        Every region's output.
    config
        Run settings.
    smear
        The slide's :class:`~hemascope.segment.smear.SmearMask` (kept in the result).
    out_dir
        When given, the cell label mask is written there as ``labels.ome.zarr`` (OME-Zarr
        ``labels/cells``, label value = cell ``id``, referencing the slide file rather than copying
        it). The result itself is not saved.
    timings
        Extra timings (s) to record.
    progress, cancel
        See :mod:`hemascope.progress`.

    Returns
    -------
    SlideResult
    """
    from hemascope.classify.decision import decide_table
    from hemascope.slide import summarize
    from hemascope.slide.checks import failed_checks, slide_checks, withhold

    t0 = time.perf_counter()
    cells, embeddings, masks = assemble_cells(outputs)
    kwargs = {} if config.min_cells is None else {"min_cells": config.min_cells}
    cell_card = cached_cell_model(config.cell_model, config.device).card
    if len(cells):
        cells = decide_table(cells, cell_card)  # the slide's class mix, the blast rule (card)
        if config.min_confidence > 0:
            cells.loc[cells["confidence"] < config.min_confidence, "class"] = "unclassified"
    bag_models, choices = slide_model_plan(config)
    summary = summarize(cells, embeddings, models=bag_models, min_blasts=config.min_blasts,
                        cell_model_sha256=cell_card.sha256 or None, classes=cell_card.cell_classes,
                        progress=progress, cancel=cancel, **kwargs)
    checks = slide_checks(slide, cells, cached_cell_model(config.cell_model, config.device))
    check_cancelled(cancel)
    differential, subtypes = withhold(summary.differential.to_dict(),
                                      [sub.to_dict() for sub in summary.subtypes], failed_checks(checks))
    labels_path = None
    if out_dir is not None and masks is not None:
        from hemascope.export.labels import lazy_label_image, write_cell_labels

        check_cancelled(cancel)
        ids = cells["id"].to_numpy()
        labels = lazy_label_image(slide.shape, masks, ids)
        nuclei = lazy_label_image(slide.shape, masks, ids, part="nucleus")
        labels_path = write_cell_labels(Path(out_dir) / LABELS_FILE, labels, nuclei=nuclei, mpp=slide.mpp,
                                        source=slide.path, n_levels=len(slide.levels))
    seconds: dict[str, float] = {"segment": 0.0, "classify": 0.0}
    for o in outputs:
        for key, value in o.seconds.items():
            seconds[key] = seconds.get(key, 0.0) + float(value)
    seconds["summarize"] = time.perf_counter() - t0
    seconds.update(timings or {})
    used = {c: cells[c].dropna().unique().tolist() if c in cells else [] for c in ("segmenter", "segmenter_version")}
    provenance = {
        "hemascope_version": __version__,
        "segmenter": used["segmenter"][0] if used["segmenter"] else config.segmenter,  # "auto" resolved
        "segmenter_version": used["segmenter_version"][0] if used["segmenter_version"] else None,
        "models": _model_provenance(config),
        "slide_models": [c.to_dict() for c in choices],
        "n_regions": len(outputs),
        "timings_s": seconds,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return SlideResult(
        cells=cells,
        embeddings=embeddings,
        differential=differential,
        subtype=subtypes[0] if subtypes else None,
        subtypes=subtypes,
        checks=checks,
        smear_mask=None if smear is None else smear.mask,
        smear_mask_downsample=1.0 if smear is None else float(smear.downsample),
        labels_path=labels_path,
        slide=_slide_facts(slide),
        config=config,
        provenance=provenance,
    )


def iter_analysis(
    path_or_slide: Any,
    config: AnalysisConfig | dict[str, Any] | str | Path | None = None,
    *,
    out_dir: str | Path | None = None,
    resume: bool = False,
    cancel: CancelToken | None = None,
) -> Generator[ProgressEvent, None, SlideResult]:
    """Analyse one slide as a generator: yields a :class:`~hemascope.progress.ProgressEvent` per
    finished region (and one when done) and returns the :class:`SlideResult`.

    This is the compute behind :func:`analyze_slide` (which drains it), the napari dock (which
    runs it in one worker thread) and scripts that want to watch or stop a run: closing the
    generator, stops it at the next region; setting ``cancel`` stops it inside a region too
    (between batches of its segmentation candidates and classification crops), and nothing of an
    unfinished region is saved. Parameters as for :func:`analyze_slide`.
    """
    config = load_config(config)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None and resume and is_complete(out):
        done = SlideResult.load(out)
        if done.config.fingerprint() != config.fingerprint():
            raise ConfigError(
                f"{out} holds a finished result made with other settings; resume with the same "
                "settings, or use another output folder"
            )
        return done
    t_start = time.perf_counter()
    check_models(config)
    slide = open_input(path_or_slide, config)
    regions, smear = plan_slide_regions(slide, config)
    checkpoints = None
    if out is not None:
        start_run(slide, regions, smear, config, out, resume)
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
        yield ProgressEvent(i + 1, len(regions) + 1, f"region {i + 1}/{len(regions)}")
    result = finish_slide(slide, outputs, config, smear=smear, out_dir=out,
                          timings={"total": time.perf_counter() - t_start}, cancel=cancel)
    check_cancelled(cancel)  # a cancel while finishing: nothing is saved as complete
    if out is not None:
        result.save(out)
    yield ProgressEvent(len(regions) + 1, len(regions) + 1, "done")
    return result


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

    A thin drain of :func:`iter_analysis`.

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
    return drain(iter_analysis(path_or_slide, config, out_dir=out_dir, resume=resume, cancel=cancel),
                 progress)


__all__ = [
    "analyze_slide",
    "iter_analysis",
    "assemble_cells",
    "cached_cell_model",
    "cached_slide",
    "finish_slide",
    "open_input",
    "plan_slide_regions",
    "run_region",
    "start_run",
]
