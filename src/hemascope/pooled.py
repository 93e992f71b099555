"""One specimen photographed as many fields: their cells counted together.

A camera on a microscope gives a folder of fields per slide, each holding a handful of white
cells — too few for a differential on its own (at least
:data:`~hemascope.slide.differential.DEFAULT_MIN_CELLS`). :func:`pool_fields` counts the cells of
the fields of one specimen together: one differential, blast percentage and slide-level answer
for the folder, as :func:`hemascope.slide.summarize` gives them for one slide.

Each field keeps the calls its own analysis made (its class-mix adaptation, the blast rule). A
field whose picture failed its checks (not a smear, unlike the training data;
:mod:`hemascope.slide.checks`) is left out of the pooled count and answers, and named with its
reason; when every field failed, the counts of all of them are kept and the blast percentage and
answers are withheld, as for a slide. The scale and the domain shift are judged for the pool: when
a counted field's µm/px was estimated with low confidence (the fields of one size share their
scale), or the pooled cells are unlike the training data (the guard needs more cells than a small
field holds), the pooled blast percentage and answers are withheld too. Research use only — not
for diagnosis.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hemascope._version import __version__
from hemascope.errors import HemascopeError, InvalidInputError
from hemascope.pipeline import cached_cell_model, slide_model_plan
from hemascope.results import POOLED_DIR, POOLED_FORMAT, SlideResult
from hemascope.slide.checks import failed_checks, withhold
from hemascope.slide.differential import DEFAULT_MIN_CELLS
from hemascope.slide.summary import summarize


def _left_out(fields: Mapping[str, SlideResult]) -> dict[str, str]:
    """Field name -> why it is left out of the pool: its failed checks of the picture itself (the
    scale, shared by the pictures of one size, is judged for the pool: :func:`_scale_check`)."""
    out = {}
    for name, result in fields.items():
        reasons = failed_checks({k: v for k, v in result.checks.items() if k != "scale"})
        if reasons:
            out[name] = "; ".join(reasons)
    return out


def _scale_check(fields: Mapping[str, SlideResult]) -> dict[str, Any] | None:
    """Fails when a counted field's µm/px was estimated with low confidence (``None`` when no
    field's scale was estimated)."""
    judged = {n: r.checks["scale"] for n, r in fields.items() if isinstance(r.checks.get("scale"), Mapping)}
    if not judged:
        return None
    unsure = [n for n, c in judged.items() if c.get("ok") is False]
    if not unsure:
        return {"ok": True, "reason": f"µm/px estimated from the images of {len(judged)} fields"}
    return {"ok": False, "reason": f"µm/px estimated with low confidence in {len(unsure)} of {len(fields)} fields; "
                                   f"e.g. {unsure[0]}: {judged[unsure[0]].get('reason')}"}


def _pooled_cells(fields: Mapping[str, SlideResult]) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The fields' cells in one table (``field``, ``field_id``, a new ``id``) and their embeddings
    (``None`` when a field with cells has none)."""
    cells = pd.concat([result.cells.assign(field=name) for name, result in fields.items()], ignore_index=True)
    cells = cells[["field", *[c for c in cells.columns if c != "field"]]].rename(columns={"id": "field_id"})
    cells.insert(0, "id", np.arange(1, len(cells) + 1))
    arrays = [r.embeddings for r in fields.values() if r.n_cells]
    if not arrays or any(a is None for a in arrays):
        return cells, None
    return cells, np.concatenate([a for a in arrays if a is not None], axis=0)


def _fields_check(fields: Mapping[str, SlideResult], left_out: Mapping[str, str]) -> dict[str, Any]:
    total = len(fields) + len(set(left_out) - set(fields))
    used = total - len(left_out)
    named = "; ".join(f"{name} ({why})" for name, why in left_out.items())
    check: dict[str, Any] = {"ok": used > 0, "score": used / total, "n_fields": total, "n_used": used,
                             "left_out": dict(left_out)}
    if used == 0:
        check["reason"] = f"no field passed its checks: {named}"
    elif left_out:
        check["reason"] = check["note"] = f"{len(left_out)} of {total} fields left out of the pooled count: {named}"
    else:
        check["reason"] = f"{total} fields counted together"
    return check


def _pooled_cell_checks(fields: Mapping[str, SlideResult], cells: pd.DataFrame, config: Any) -> dict[str, Any]:
    """The domain shift and stain judged on the pooled cells (a seeded sample of up to
    :data:`~hemascope.classify.probe.PROBE_CELLS`, cropped again from each field's picture), as
    :func:`~hemascope.slide.checks.slide_checks` judges a slide's: small fields hold too few cells
    each for the guard (:data:`~hemascope.classify.shift.MIN_CELLS`)."""
    from hemascope.classify.crops import slide_crop
    from hemascope.classify.probe import probe_subset
    from hemascope.io import open_slide
    from hemascope.slide.checks import cell_checks, unjudged_shift

    model = cached_cell_model(config.cell_model, config.device)
    picked = cells.iloc[probe_subset(len(cells))]
    crops = []
    try:
        for name, part in picked.groupby("field", sort=False):
            facts = fields[str(name)].slide
            with open_slide(facts["path"], mpp=facts.get("mpp")) as slide:
                level = slide.best_level_for_mpp(model.card.mpp)
                crops += [slide_crop(slide, r, c, model.card, level) for r, c in zip(part["row"], part["col"], strict=True)]
    except (OSError, HemascopeError, KeyError) as exc:
        return {"domain_shift": unjudged_shift(f"the fields' pictures could not be read again to judge the "
                                               f"pooled cells ({exc})")}
    if not crops:
        return {"domain_shift": unjudged_shift("no cells to judge")}
    return cell_checks(np.stack(crops), model)


def pool_fields(
    fields: Mapping[str, SlideResult],
    *,
    path: str | Path,
    models: Sequence[str] | None = None,
    failed: Mapping[str, str] | None = None,
) -> SlideResult:
    """Count the cells of several analysed fields of one specimen together.

    Parameters
    ----------
    fields
        Field name -> its analysed result (as :func:`hemascope.analyze_slide` or ``hemascope
        analyze`` saved it), all from one cell model.
    path
        The specimen's folder (recorded as the result's ``slide["path"]``).
    models
        Bag models to answer on the pooled cells (default: those that apply to the cell model,
        as for a slide; ``[]`` for none).
    failed
        Fields of the specimen that could not be analysed -> why (named in the ``fields`` check).

    Returns
    -------
    SlideResult
        The pooled cells (a ``field`` column names each cell's field, ``field_id`` its id there,
        ``id`` is new), their embeddings, the differential and slide-level answers of the fields
        that passed their checks, and a ``fields`` check naming the fields left out and why.

    Raises
    ------
    InvalidInputError
        No fields, or fields classified by different cell models.
    """
    if not fields:
        raise InvalidInputError("no analysed fields to pool")
    sha = {str(r.provenance.get("models", {}).get("cell", {}).get("sha256")) for r in fields.values()}
    if len(sha) > 1:
        raise InvalidInputError("the fields were classified by different cell models; pool one model's fields")
    first = next(iter(fields.values()))
    config = first.config
    left_out = _left_out(fields)
    counted = {n: r for n, r in fields.items() if n not in left_out} or dict(fields)
    cells, embeddings = _pooled_cells(counted)
    card = cached_cell_model(config.cell_model, config.device).card
    summary = summarize(
        cells, embeddings, models=slide_model_plan(config)[0] if models is None else list(models),
        min_blasts=config.min_blasts,
        min_cells=config.min_cells if config.min_cells is not None else DEFAULT_MIN_CELLS,
        cell_model_sha256=card.sha256 or None, classes=card.cell_classes,
    )
    checks: dict[str, Any] = {"fields": _fields_check(fields, {**left_out, **(failed or {})})}
    scale = _scale_check(counted)
    if scale is not None:
        checks["scale"] = scale
    if {"row", "col"} <= set(cells.columns):
        checks.update(_pooled_cell_checks(counted, cells, config))
    differential, subtypes = withhold(summary.differential.to_dict(), [s.to_dict() for s in summary.subtypes],
                                      failed_checks(checks))
    mpps = [float(r.slide["mpp"]) for r in counted.values() if r.slide.get("mpp") is not None]
    provenance = {
        "hemascope_version": __version__,
        "models": first.provenance.get("models", {}),
        "slide_models": first.provenance.get("slide_models", []),
        "fields": list(fields),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return SlideResult(
        cells=cells,
        embeddings=embeddings,
        differential=differential,
        subtype=subtypes[0] if subtypes else None,
        subtypes=subtypes,
        slide={"path": str(path), "format": POOLED_FORMAT, "n_fields": checks["fields"]["n_fields"],
               "mpp": float(np.median(mpps)) if mpps else None, "mpp_source": "fields",
               "fields": {n: {"path": r.slide.get("path"), "mpp": r.slide.get("mpp")} for n, r in counted.items()}},
        config=config,
        provenance=provenance,
        checks=checks,
    )


def pool_folders(
    analysed: Sequence[tuple[str, Path]], failed: Mapping[str, str], out_root: str | Path, *, export: bool = True,
) -> list[tuple[str, Path, SlideResult]]:
    """Pool the analysed pictures of each folder (one specimen per folder) and save each pool.

    Parameters
    ----------
    analysed
        ``(picture path, its saved result folder)`` of every picture analysed.
    failed
        Picture path -> why it could not be analysed (named in its folder's pool).
    out_root
        The run's output root: each folder's pool is saved to ``<out_root>/pooled/<folder name>/``
        (:meth:`SlideResult.save`), its exports in ``exports/`` (no GeoJSON: the cells lie in
        several pictures).
    export
        Write the exports (else the saved results only, as ``analyze --no-export``).

    Returns
    -------
    list of (folder, pool folder, pooled result)
        In folder order; a folder none of whose pictures was analysed has none.
    """
    from hemascope.export.bundle import export_all
    from hemascope.io.paths import unique_stems

    groups: dict[str, dict[str, Path]] = {}
    for picture, result_dir in analysed:
        groups.setdefault(str(Path(picture).parent), {})[Path(picture).name] = Path(result_dir)
    lost: dict[str, dict[str, str]] = {}
    for picture, why in failed.items():
        lost.setdefault(str(Path(picture).parent), {})[Path(picture).name] = f"not analysed: {why}"
    folders = sorted(groups)
    out = []
    for folder, name in zip(folders, unique_stems(folders), strict=True):
        fields = {field: SlideResult.load(path) for field, path in sorted(groups[folder].items())}
        pooled = pool_fields(fields, path=folder, failed=lost.get(folder))
        directory = Path(out_root) / POOLED_DIR / name
        pooled.save(directory)
        if export:
            export_all(pooled, directory / "exports")
        out.append((folder, directory, pooled))
    return out


__all__ = ["POOLED_DIR", "pool_fields", "pool_folders"]
