"""The slide report: JSON (plain values) and PNG (differential bars, subtype probabilities).

Both carry the model names and versions and :data:`hemascope.classes.RESEARCH_USE_ONLY`. The PNG is
drawn with matplotlib's Agg backend (no display, no GUI toolkit).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

from hemascope.classes import CLASS_LABELS, RESEARCH_USE_ONLY, class_color
from hemascope.results import SlideResult, atomic_write_bytes, atomic_write_json, to_jsonable


def models_caption(result: SlideResult) -> str:
    """One line naming the segmenter and every model (name and version) of a result."""
    models = result.provenance.get("models", {})
    parts = []
    for role, info in models.items():
        if isinstance(info, dict):
            version = f" v{info['version']}" if info.get("version") else ""
            parts.append(f"{role}: {info.get('name', '?')}{version}")
    segmenter = result.provenance.get("segmenter")
    if segmenter:
        parts.insert(0, f"segmenter: {segmenter}")
    return "; ".join(parts) or "models: not recorded"


def report_dict(result: SlideResult) -> dict[str, Any]:
    """The slide report as JSON-able values.

    Parameters
    ----------
    result
        An analysed slide.

    Returns
    -------
    dict
        Slide facts, cell count, differential, subtype (or abstention), models, provenance and the
        research-use notice.
    """
    return to_jsonable(
        {
            "notice": RESEARCH_USE_ONLY,
            "slide": result.slide,
            "n_cells": result.n_cells,
            "differential": result.differential,
            "subtype": result.subtype,
            "models": result.provenance.get("models", {}),
            "provenance": result.provenance,
            "settings": result.config.to_dict(),
        }
    )


def write_report_json(path: str | Path, result: SlideResult) -> Path:
    """Write :func:`report_dict` to ``path`` atomically; returns ``path``."""
    return atomic_write_json(path, report_dict(result))


def plot_differential(ax: Any, differential: dict[str, Any]) -> None:
    """Draw a differential count (``DifferentialCount.to_dict()``) as bars with Wilson CIs on ``ax``."""
    percent = {k: v for k, v in (differential.get("percent") or {}).items() if v is not None}
    if not percent:
        ax.text(0.5, 0.5, "no differential count", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    names = list(percent)
    values = [percent[n] for n in names]
    low = differential.get("ci_low") or {}
    high = differential.get("ci_high") or {}
    err = [
        [max(0.0, percent[n] - (low.get(n) if low.get(n) is not None else percent[n])) for n in names],
        [max(0.0, (high.get(n) if high.get(n) is not None else percent[n]) - percent[n]) for n in names],
    ]
    ax.barh(range(len(names)), values, xerr=err, color=[class_color(n) for n in names], capsize=2)
    ax.set_yticks(range(len(names)), [CLASS_LABELS.get(n, n) for n in names])
    ax.invert_yaxis()
    ax.set_xlabel("% of counted white cells (95% Wilson CI)")
    blast = differential.get("blast_percent")
    title = f"Differential ({differential.get('n_counted', '?')} cells)"
    if blast is not None and not (isinstance(blast, float) and math.isnan(blast)):
        title += f" — blasts {blast:.1f}%"
    if differential.get("sufficient") is False:
        title += "\n" + str(differential.get("reason", "insufficient"))
    ax.set_title(title, fontsize=9)


def plot_subtype(ax: Any, subtype: dict[str, Any] | None) -> None:
    """Draw subtype probabilities with the prediction or abstention state on ``ax``."""
    probs = (subtype or {}).get("probabilities") or {}
    if not probs:
        ax.text(0.5, 0.5, "no subtype prediction", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    names = list(probs)
    ax.barh(range(len(names)), [probs[n] for n in names], color="#4c72b0")
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability")
    if subtype.get("abstained"):
        state = f"ABSTAINED: {subtype.get('reason') or 'low evidence'}"
    else:
        state = f"predicted: {subtype.get('label')}"
    caption = subtype.get("caption") or str(subtype.get("model", "?"))
    ax.set_title("\n".join([f"Subtype — {state}", *caption.split(" · ")]), fontsize=8)


def write_report_png(path: str | Path, result: SlideResult, *, dpi: int = 120) -> Path:
    """Draw the slide report (differential bars, subtype probabilities, models, notice) as PNG.

    Parameters
    ----------
    path
        Destination ``.png``.
    result
        An analysed slide.
    dpi
        Resolution.

    Returns
    -------
    Path
        ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.8))
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    plot_differential(left, result.differential)
    plot_subtype(right, result.subtype)
    name = Path(str(result.slide.get("path", "slide"))).name
    fig.suptitle(f"{name}: {result.n_cells} cells — {RESEARCH_USE_ONLY}", fontsize=10)
    fig.text(0.01, 0.01, models_caption(result), fontsize=7)
    fig.tight_layout(rect=(0, 0.04, 1, 0.95))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return atomic_write_bytes(path, buf.getvalue())


def export_all(result: SlideResult, directory: str | Path) -> dict[str, Path]:
    """Write every headless export of ``result`` into ``directory``.

    Parameters
    ----------
    result
        An analysed slide.
    directory
        Output folder (created if needed).

    Returns
    -------
    dict of str to Path
        ``{"cells_csv", "cells_parquet", "geojson", "report_json", "report_png"}`` to paths. Cells
        are outlined by their masks when the result has a label mask, else by circles of their area.
    """
    from hemascope.export.geojson import write_geojson
    from hemascope.export.tables import write_cell_table

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    labels = None
    if result.labels_path is not None and Path(result.labels_path).is_dir():
        import zarr

        labels = zarr.open_group(str(result.labels_path), mode="r")["labels/cells/0"]
    return {
        "cells_csv": write_cell_table(directory / "cells.csv", result.cells),
        "cells_parquet": write_cell_table(directory / "cells.parquet", result.cells),
        "geojson": write_geojson(directory / "cells.geojson", result.cells, labels=labels, mpp=result.slide.get("mpp")),
        "report_json": write_report_json(directory / "report.json", result),
        "report_png": write_report_png(directory / "report.png", result),
    }


# Old private names, still imported by hemascope.napari.report_widget (use the public ones).
_models_line, _plot_differential, _plot_subtype = models_caption, plot_differential, plot_subtype

__all__ = [
    "export_all",
    "models_caption",
    "plot_differential",
    "plot_subtype",
    "report_dict",
    "write_report_json",
    "write_report_png",
]
