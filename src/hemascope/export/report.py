"""The slide report: JSON (plain values) and PNG (thumbnail, counts, slide-level answers, example cells).

Both carry the model names and versions and :data:`hemascope.classes.RESEARCH_USE_ONLY`. A slide
model that abstained (too few cells, not applicable, out of domain) is shown as an abstention with
its reason, never as numbers; when no slide model applies to the cell model, the report says so
and names the models that would. This module holds the JSON and the texts; the PNG is drawn by
:mod:`hemascope.export.report_figure` (matplotlib's Agg backend: no display, no GUI toolkit), and
:mod:`hemascope.export.bundle` writes every export of a result.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from hemascope.classes import RESEARCH_USE_ONLY
from hemascope.files import atomic_write_json, to_jsonable
from hemascope.results import SlideResult
from hemascope.slide.checks import warning_lines


def finite_number(value: Any) -> float | None:
    """``value`` as a finite float, else ``None`` (JSON ``null``, NaN, missing)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def models_caption(result: SlideResult) -> str:
    """One line naming the segmenter and every model (name and version) of a result."""
    models = result.provenance.get("models", {})
    parts = []
    for role, info in models.items():
        if isinstance(info, dict):
            version = f" v{info['version']}" if info.get("version") else ""
            demo = " (SYNTHETIC/DEMO)" if info.get("demo") else ""
            parts.append(f"{role}: {info.get('name', '?')}{version}{demo}")
    segmenter = result.provenance.get("segmenter")
    if segmenter:
        parts.insert(0, f"segmenter: {segmenter}")
    return "; ".join(parts) or "models: not recorded"


def subtypes_of(result: SlideResult) -> list[dict[str, Any]]:
    """Every slide-level prediction of a result (``subtypes``, else the single ``subtype``)."""
    return list(result.subtypes or ([result.subtype] if result.subtype else []))


def subtype_line(subtype: dict[str, Any]) -> str:
    """One line for one slide model: its answer with probability, or the abstention and its reason."""
    model = f"{subtype.get('model', '?')}" + (f" v{subtype['version']}" if subtype.get("version") else "")
    if subtype.get("demo"):
        model += " [SYNTHETIC/DEMO]"
    if subtype.get("abstained") or subtype.get("label") is None:
        return f"{model}: ABSTAINED — {subtype.get('reason') or 'no answer'}"
    p = finite_number((subtype.get("probabilities") or {}).get(subtype.get("label")))
    line = f"{model}: {subtype.get('label')}" + (f" (p = {p:.2f})" if p is not None else "")
    return line + (f" — {subtype['question']}" if subtype.get("question") else "")


def cell_model_name(result: SlideResult) -> str:
    """The name of the cell model a result was made with ("?" when not recorded)."""
    return str(((result.provenance.get("models") or {}).get("cell") or {}).get("name") or "?")


def no_slide_model_text(result: SlideResult) -> str:
    """Why a result has no slide-level answer, naming the models that apply to other cell models."""
    choices = result.provenance.get("slide_models") or []
    cell = cell_model_name(result)
    if result.config.slide_model and result.config.slide_model.strip().lower() == "none":
        return "slide-level models switched off (slide_model = none)"
    fits: dict[str, list[str]] = {}
    for choice in choices:
        name = choice.get("model", "?") + (" [demo]" if choice.get("demo") else "")
        fits.setdefault(str(choice.get("embedding_model") or "?"), []).append(name)
    demo_only = [c.get("model") for c in choices if c.get("embedding_model") == cell and c.get("demo")]
    if demo_only and cell in fits and all(c.get("demo") for c in choices if c.get("embedding_model") == cell):
        return (f"only SYNTHETIC/DEMO slide models fit cell model {cell!r} ({', '.join(map(str, demo_only))}): "
                "not run by default (name one explicitly, or run `hemascope demo`)")
    text = f"no slide-level model applies to cell model {cell!r}"
    if fits:
        text += "; slide models exist for: " + "; ".join(
            f"{c} → {', '.join(names)}" for c, names in fits.items())
    return text


def report_dict(result: SlideResult) -> dict[str, Any]:
    """The slide report as JSON-able values.

    Parameters
    ----------
    result
        An analysed slide.

    Returns
    -------
    dict
        Slide facts, cell count, differential (or class count), every slide model's answer or
        abstention (``subtypes``; ``subtype`` is the first), which slide models applied to the
        cell model and why the others did not (``slide_models``), models, provenance and the
        research-use notice.
    """
    subtypes = subtypes_of(result)
    return to_jsonable(
        {
            "notice": RESEARCH_USE_ONLY,
            "slide": result.slide,
            "n_cells": result.n_cells,
            "differential": result.differential,
            "subtype": result.subtype,
            "subtypes": subtypes,
            "answers": [subtype_line(s) for s in subtypes] or [no_slide_model_text(result)],
            "checks": result.checks,
            "warnings": warning_lines(result.checks),
            "slide_models": result.provenance.get("slide_models", []),
            "models": result.provenance.get("models", {}),
            "provenance": result.provenance,
            "settings": result.config.to_dict(),
        }
    )


def write_report_json(path: str | Path, result: SlideResult) -> Path:
    """Write :func:`report_dict` to ``path`` atomically; returns ``path``."""
    return atomic_write_json(path, report_dict(result))


__all__ = [
    "cell_model_name",
    "finite_number",
    "models_caption",
    "no_slide_model_text",
    "report_dict",
    "subtype_line",
    "subtypes_of",
    "write_report_json",
]
