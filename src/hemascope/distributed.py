"""Cohort runs: many slides, one output folder each, in-process or on a dask.distributed cluster.

:func:`analyze_cohort` plans every slide's regions on the client, submits one task per unfinished
region (segment + classify, checkpointed atomically into the slide's folder, exactly as
:func:`hemascope.analyze_slide` does) and one task per slide that assembles the regions, adds the
slide-level summary, saves the :class:`~hemascope.results.SlideResult` and writes the exports.
Workers load each model once per process (:func:`hemascope.pipeline.cached_cell_model`).

The cluster is a :class:`distributed.LocalCluster` of ``workers`` processes, or any running
scheduler given by ``scheduler`` (e.g. one started by dask-jobqueue on SLURM/PBS, or by dask-cuda
for GPU workers; see ``docs/cohorts.md``). With neither, slides run one after the other in this
process. A failing slide is recorded in the summary and the others go on.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from hemascope.classes import RESEARCH_USE_ONLY
from hemascope.config import AnalysisConfig, load_config
from hemascope.errors import Cancelled, InvalidInputError
from hemascope.files import atomic_write_table
from hemascope.io.paths import unique_stems
from hemascope.progress import CancelToken, ProgressCallback, check_cancelled, report
from hemascope.results import SlideResult, is_complete

SUMMARY_FILE = "summary.csv"
SUMMARY_COLUMNS = (
    "slide", "status", "seconds", "n_cells", "n_counted", "blast_percent", "possible_blasts",
    "blast_percent_with_possible", "subtype", "subtype_model",
    "abstained", "answers", "warnings", "error_type", "error", "out_dir", "notice",
)


# --- summary rows -------------------------------------------------------------------------------
def summary_row(slide: str, out_dir: Path, status: str, seconds: float, result: SlideResult | None = None,
                error: str = "") -> dict[str, Any]:
    """One line of the run summary table.

    Parameters
    ----------
    slide
        The slide path as given.
    out_dir
        Its output folder.
    status
        ``"done"``, ``"resumed"`` (already complete, exports included) or ``"failed"``.
    seconds
        Wall time spent on it in this run.
    result
        The result, when there is one.
    error
        What went wrong (failed slides): ``"ErrorType: message"``.

    Returns
    -------
    dict
        ``answers`` holds every slide model's answer or abstention (``"; "``-separated), or why no
        slide model applies; ``error_type`` the exception's class name; ``notice``
        :data:`hemascope.classes.RESEARCH_USE_ONLY` (on every row: the table carries blast
        percentages and slide-level answers).
    """
    from hemascope.export.report import no_slide_model_text, subtype_line, subtypes_of
    from hemascope.slide.checks import thin_differential, warning_lines

    row: dict[str, Any] = dict.fromkeys(SUMMARY_COLUMNS)
    error_type, _, _ = error.partition(":") if error else ("", "", "")
    row.update(slide=str(slide), status=status, seconds=round(seconds, 3), error=error,
               error_type=error_type or None, out_dir=str(out_dir), notice=RESEARCH_USE_ONLY)
    if result is not None:
        diff, sub = result.differential, result.subtype or {}
        subs = subtypes_of(result)
        row.update(
            n_cells=result.n_cells, n_counted=diff.get("n_counted"), blast_percent=diff.get("blast_percent"),
            possible_blasts=diff.get("possible_blasts"),
            blast_percent_with_possible=diff.get("blast_percent_with_possible"),
            subtype=sub.get("label"), subtype_model=sub.get("model"), abstained=sub.get("abstained"),
            answers="; ".join(subtype_line(s) for s in subs) if subs else no_slide_model_text(result),
            warnings="; ".join(warning_lines(result.checks) + thin_differential(diff)) or None,
        )
    return row


def _write_summary(out_root: Path, rows: list[dict[str, Any]]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    atomic_write_table(out_root / SUMMARY_FILE, table)
    return table


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".replace("\n", " ")


def _save_exports(result: SlideResult, out_dir: Path, export: bool) -> None:
    if export:
        from hemascope.export import export_all

        export_all(result, out_dir / "exports")


def is_finished(out_dir: str | Path, export: bool) -> bool:
    """Whether a slide's folder holds its complete result and, when asked for, its complete exports.

    ``--resume`` skips only such slides: a slide whose result was saved but whose exports failed
    (or were interrupted) is not finished, and resuming writes its exports again.
    """
    from hemascope.export.bundle import exports_complete

    out_dir = Path(out_dir)
    return is_complete(out_dir) and (not export or exports_complete(out_dir / "exports"))


def export_task(out_dir: str, export: bool) -> dict[str, Any]:
    """Worker task: write the exports of a slide whose result is saved; returns its summary row."""
    result = SlideResult.load(out_dir)
    _save_exports(result, Path(out_dir), export)
    return summary_row(str(result.slide.get("path")), Path(out_dir), "done", 0.0, result)


# --- worker tasks ----------------------------------------------------------------------------------
def _local_dask() -> Any:
    """Slide reads stay local: never ship lazy slide arrays (open file handles) to the cluster."""
    import dask

    return dask.config.set(scheduler="synchronous")


def _limit_threads() -> None:
    """Give torch as many threads as the dask worker has (not one per core per worker)."""
    try:
        from distributed import get_worker

        nthreads = get_worker().state.nthreads
    except (ImportError, ValueError, AttributeError):
        return
    import torch

    if torch.get_num_threads() != nthreads:
        torch.set_num_threads(nthreads)


def _worker_slide(path: str, mpp: float, mpp_source: str) -> Any:
    """The slide, opened once per worker process, with the scale the client planned it at."""
    from hemascope.pipeline import cached_slide

    slide = cached_slide(path, mpp)
    slide.mpp_source = mpp_source
    return slide


def region_task(path: str, config: AnalysisConfig, region: Any, index: int, out_dir: str) -> int:
    """Worker task: segment + classify one region and checkpoint it; returns its cell count."""
    from hemascope.pipeline import run_region
    from hemascope.region_checkpoints import RegionCheckpoints

    _limit_threads()
    with _local_dask():
        slide = _worker_slide(path, region.mpp, region.mpp_source)
        output = run_region(slide, region, index, config)
        RegionCheckpoints(out_dir).save(output)
    return len(output.cells)


def finish_task(path: str, config: AnalysisConfig, mpp: tuple[float, str], out_dir: str, n_regions: int,
                export: bool, *region_counts: int) -> dict[str, Any]:
    """Worker task: assemble a slide's checkpointed regions, summarise, save and export it.

    Returns the slide's summary row (small, unlike the result itself).
    """
    from hemascope.pipeline import finish_slide
    from hemascope.region_checkpoints import RegionCheckpoints

    _limit_threads()
    store = RegionCheckpoints(out_dir)
    outputs = [store.load(i) for i in range(n_regions)]
    missing = [i for i, o in enumerate(outputs) if o is None]
    if missing:
        raise InvalidInputError(f"regions {missing[:5]} of {path} were not saved")
    with _local_dask():
        slide = _worker_slide(path, *mpp)
        result = finish_slide(slide, outputs, config, smear=store.load_smear(), out_dir=out_dir)  # type: ignore[arg-type]
        result.save(out_dir)
        _save_exports(result, Path(out_dir), export)
    return summary_row(path, Path(out_dir), "done", 0.0, result)


# --- drivers -----------------------------------------------------------------------------------------
def _set_estimated_scale(slide: Any, scale: float | None) -> Any:
    """Give a slide without a pixel size the scale estimated for it before the run (pooled)."""
    if scale is not None and not slide.mpp:
        slide.mpp, slide.mpp_source = scale, "estimated"
    return slide


def _analyze_in_process(path: str, scale: float | None, config: AnalysisConfig, out: Path, resume: bool,
                        cancel: CancelToken | None) -> SlideResult:
    from hemascope.io import open_slide
    from hemascope.pipeline import analyze_slide

    if scale is None:
        return analyze_slide(path, config, out_dir=out, resume=resume, cancel=cancel)
    with open_slide(path) as slide:
        return analyze_slide(_set_estimated_scale(slide, scale), config, out_dir=out, resume=resume, cancel=cancel)


def _run_in_process(items: list[tuple[str, Path]], scales: dict[str, float], config: AnalysisConfig, resume: bool,
                    export: bool, progress: ProgressCallback | None, cancel: CancelToken | None,
                    out_root: Path) -> list[dict]:
    rows = []
    for k, (path, out) in enumerate(items):
        check_cancelled(cancel)
        t0 = time.perf_counter()
        was_done = resume and is_finished(out, export)
        try:
            result = _analyze_in_process(path, scales.get(path), config, out, resume, cancel)
            if not was_done:
                _save_exports(result, out, export)
            rows.append(summary_row(path, out, "resumed" if was_done else "done", time.perf_counter() - t0, result))
        except Cancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - a failing slide is recorded, the others go on
            rows.append(summary_row(path, out, "failed", time.perf_counter() - t0, error=_error_text(exc)))
        _write_summary(out_root, rows)
        report(progress, k + 1, len(items), Path(path).name)
    return rows


def _make_client(workers: int | None, scheduler: str | None) -> tuple[Any, Any]:
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler), None
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")
    return Client(cluster), cluster


def _run_on_cluster(client: Any, items: list[tuple[str, Path]], scales: dict[str, float], config: AnalysisConfig,
                    resume: bool, export: bool, progress: ProgressCallback | None, cancel: CancelToken | None,
                    out_root: Path) -> list[dict]:
    from distributed import as_completed

    from hemascope.pipeline import open_input, plan_slide_regions, start_run
    from hemascope.region_checkpoints import RegionCheckpoints

    rows: dict[int, dict] = {}
    pending: dict[Any, int] = {}  # finish future -> item index
    started: dict[int, float] = {}
    for k, (path, out) in enumerate(items):
        started[k] = time.perf_counter()
        try:
            if resume and is_finished(out, export):
                rows[k] = summary_row(path, out, "resumed", 0.0, SlideResult.load(out))
                continue
            if resume and is_complete(out):  # the result is saved, its exports are not
                pending[client.submit(export_task, str(out), export, pure=False)] = k
                continue
            with _local_dask():
                slide = _set_estimated_scale(open_input(path, config), scales.get(path))
                regions, smear = plan_slide_regions(slide, config)
                slide.close()
            start_run(slide, regions, smear, config, out, resume)
            done = RegionCheckpoints(out).finished() if resume else set()
            futures = [
                client.submit(region_task, str(path), config, region, i, str(out), pure=False)
                for i, region in enumerate(regions) if i not in done
            ]
            scale = (slide.mpp, slide.mpp_source)
            finish = client.submit(finish_task, str(path), config, scale, str(out), len(regions), export, *futures,
                                   pure=False)
            pending[finish] = k
        except Exception as exc:  # noqa: BLE001 - record and go on
            rows[k] = summary_row(path, out, "failed", time.perf_counter() - started[k], error=_error_text(exc))
    total = len(items)
    report(progress, len(rows), total, "planned")
    for future in as_completed(list(pending)):
        if cancel is not None and cancel.is_set():
            client.cancel(list(pending))
            check_cancelled(cancel)
        k = pending.pop(future)
        path, out = items[k]
        seconds = time.perf_counter() - started[k]
        if future.status == "finished":
            rows[k] = {**future.result(), "slide": str(path), "seconds": round(seconds, 3)}
        else:
            error = future.exception()
            rows[k] = summary_row(path, out, "failed", seconds, error=_error_text(error))
        future.release()  # a finished slide is on disk: a worker lost later must not recompute it
        _write_summary(out_root, [rows[i] for i in sorted(rows)])
        report(progress, len(rows), total, Path(path).name)
    return [rows[i] for i in sorted(rows)]


def analyze_cohort(
    slides: Sequence[str | Path],
    out_dir: str | Path,
    config: AnalysisConfig | dict[str, Any] | str | Path | None = None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    client: Any = None,
    resume: bool = False,
    export: bool = True,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> pd.DataFrame:
    """Analyse many slides, one output folder each, and write a run summary CSV.

    Pictures without a pixel size (PNG, JPEG, ...) are scaled before the run: one estimate per
    picture, and the pictures of one pixel size share the median of theirs
    (:func:`hemascope.segment.batch_scale.estimate_field_scales`) unless ``config.mpp`` is set.

    Parameters
    ----------
    slides
        Slide files.
    out_dir
        Output root: ``<out_dir>/<slide name>/`` per slide and ``<out_dir>/summary.csv``.
    config
        Run settings (see :func:`hemascope.config.load_config`).
    workers
        Start a LocalCluster with this many worker processes (one thread each).
    scheduler
        Address of a running dask scheduler (``tcp://host:8786``) to use instead.
    client
        An existing ``distributed.Client`` to use instead of either.
    resume
        Skip complete slides and continue unfinished ones from their last finished region.
    export
        Also write the exports (CSV, Parquet, GeoJSON, report JSON/PNG) into ``<slide>/exports``.
    progress, cancel
        See :mod:`hemascope.progress`; progress counts slides.

    Returns
    -------
    pandas.DataFrame
        The summary table (slide, status, seconds, cell counts, blast %, subtype, error, out_dir).

    Raises
    ------
    InvalidInputError
        If no slides are given, both ``workers`` and ``scheduler`` are, or the slide model reads
        another cell model's embeddings (raised before any slide is started).
    """
    config = load_config(config)
    if not slides:
        raise InvalidInputError("no slides given")
    if workers is not None and scheduler is not None:
        raise InvalidInputError("give --workers or --scheduler, not both")
    if workers is not None and workers < 1:
        raise InvalidInputError(f"workers must be >= 1, got {workers}")
    from hemascope.classify.cell_scale import picture_scale
    from hemascope.pipeline import check_models
    from hemascope.segment.batch_scale import estimate_field_scales

    check_models(config)  # one clear error before any slide, not one failure per slide
    out_root = Path(out_dir)
    out_root.mkdir(parents=True, exist_ok=True)
    items = [(str(p), out_root / name) for p, name in zip(slides, unique_stems(slides), strict=True)]
    # pictures without a pixel size: one scale per image size, not one guess per image
    scales = {} if config.mpp is not None else estimate_field_scales([p for p, _ in items], picture_scale)
    if client is None and workers is None and scheduler is None:
        rows = _run_in_process(items, scales, config, resume, export, progress, cancel, out_root)
        return _write_summary(out_root, rows)
    own_client, cluster = (None, None) if client is not None else _make_client(workers, scheduler)
    try:
        rows = _run_on_cluster(client or own_client, items, scales, config, resume, export, progress, cancel,
                               out_root)
    finally:
        if own_client is not None:
            own_client.close()
        if cluster is not None:
            cluster.close()
    return _write_summary(out_root, rows)


__all__ = [
    "SUMMARY_FILE",
    "analyze_cohort",
    "export_task",
    "finish_task",
    "is_finished",
    "region_task",
    "summary_row",
]
