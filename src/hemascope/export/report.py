"""The slide report: JSON (plain values) and PNG (thumbnail, counts, slide-level answers, example cells).

Both carry the model names and versions and :data:`hemascope.classes.RESEARCH_USE_ONLY`. A slide
model that abstained (too few cells, not applicable, out of domain) is shown as an abstention with
its reason, never as numbers; when no slide model applies to the cell model, the report says so
and names the models that would. The PNG is drawn with matplotlib's Agg backend (no display, no
GUI toolkit).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from hemascope.classes import CLASS_LABELS, RESEARCH_USE_ONLY, class_color
from hemascope.results import SlideResult, atomic_write_bytes, atomic_write_json, to_jsonable

#: Example cells shown per class in the report PNG.
EXAMPLES_PER_CLASS = 6
#: Side (µm) of an example cell's crop.
EXAMPLE_FIELD_UM = 24.0
_EXAMPLE_PX = 64


def _number(value: Any) -> float | None:
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
    p = _number((subtype.get("probabilities") or {}).get(subtype.get("label")))
    return f"{model}: {subtype.get('label')}" + (f" (p = {p:.2f})" if p is not None else "")


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
            "slide_models": result.provenance.get("slide_models", []),
            "models": result.provenance.get("models", {}),
            "provenance": result.provenance,
            "settings": result.config.to_dict(),
        }
    )


def write_report_json(path: str | Path, result: SlideResult) -> Path:
    """Write :func:`report_dict` to ``path`` atomically; returns ``path``."""
    return atomic_write_json(path, report_dict(result))


# --- drawing ------------------------------------------------------------------------------------
def excluded_text(differential: dict[str, Any]) -> str:
    """Which cells are kept out of the differential's denominator, with their numbers."""
    counts = differential.get("counts") or {}
    excluded = [n for n in (differential.get("excluded") or []) if counts.get(n)]
    if not excluded:
        return ""
    parts = [f"{CLASS_LABELS.get(n, n).lower()} {counts[n]}" for n in excluded]
    return "not in the count (not white cells / not classified): " + ", ".join(parts)


def plot_differential(ax: Any, differential: dict[str, Any]) -> None:
    """Draw a differential count (``DifferentialCount.to_dict()``) as bars with counts and Wilson CIs."""
    percent = {k: _number(v) for k, v in (differential.get("percent") or {}).items()}
    percent = {k: v for k, v in percent.items() if v is not None}
    counts = differential.get("counts") or {}
    if not percent:
        message = "no cells counted"
        if differential.get("reason"):
            message += f"\n{differential['reason']}"
        ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, fontsize=9, wrap=True)
        ax.set_axis_off()
        return
    names = list(percent)
    values = [percent[n] for n in names]
    low = differential.get("ci_low") or {}
    high = differential.get("ci_high") or {}
    err = [
        [max(0.0, percent[n] - (_number(low.get(n)) if _number(low.get(n)) is not None else percent[n])) for n in names],
        [max(0.0, (_number(high.get(n)) if _number(high.get(n)) is not None else percent[n]) - percent[n]) for n in names],
    ]
    ax.barh(range(len(names)), values, xerr=err, color=[class_color(n) for n in names], capsize=2,
            edgecolor="#444444", linewidth=0.5)
    right = max((v + e for v, e in zip(values, err[1], strict=True)), default=0.0)
    for i, n in enumerate(names):
        ax.text(values[i] + err[1][i] + 0.01 * max(right, 1.0), i, f"{int(counts.get(n, 0))}  ({values[i]:.1f}%)",
                va="center", fontsize=7)
    ax.set_xlim(0, max(right * 1.35, 5.0))
    ax.set_yticks(range(len(names)), [CLASS_LABELS.get(n, n) for n in names])
    ax.invert_yaxis()
    kind = differential.get("kind") or "differential"
    ax.set_xlabel("% of counted cells (bars: 95% Wilson CI; labels: cells, %)", fontsize=7)
    blast = _number(differential.get("blast_percent"))
    what = "Differential" if kind == "differential" else "Class count"
    title = f"{what} ({differential.get('n_counted', '?')} cells counted)"
    if blast is not None:
        title += f" — blasts {blast:.1f}%"
    lines = [title]
    if differential.get("sufficient") is False:
        lines.append(str(differential.get("reason", "insufficient")))
    if differential.get("note"):
        lines.append(str(differential["note"]))
    extra = excluded_text(differential)
    if extra:
        lines.append(extra)
    ax.set_title("\n".join(_wrap(line, 70) for line in lines), fontsize=8)


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text


def plot_subtype(ax: Any, subtype: dict[str, Any] | None, *, empty: str = "no slide-level prediction") -> None:
    """Draw one slide model's probabilities, or its abstention with the reason, on ``ax``."""
    if not subtype:
        ax.text(0.5, 0.5, _wrap(empty, 46), ha="center", va="center", transform=ax.transAxes, fontsize=8,
                bbox={"boxstyle": "round,pad=0.6", "facecolor": "#f2f2f2", "edgecolor": "#bbbbbb"})
        ax.set_title("Slide-level models", fontsize=8)
        ax.set_axis_off()
        return
    caption = subtype.get("caption") or str(subtype.get("model", "?"))
    probs = {k: _number(v) for k, v in (subtype.get("probabilities") or {}).items()}
    if subtype.get("abstained") or not any(v is not None for v in probs.values()):
        reason = subtype.get("reason") or "no answer"
        ax.text(0.5, 0.55, "ABSTAINED", ha="center", va="center", transform=ax.transAxes,
                fontsize=11, fontweight="bold", color="#7f7f7f")
        ax.text(0.5, 0.3, _wrap(reason, 50), ha="center", va="center", transform=ax.transAxes, fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_color("#bbbbbb")
        ax.set_title("\n".join(_wrap(p, 60) for p in caption.split(" · ")), fontsize=7)
        return
    names = list(probs)
    values = [probs[n] or 0.0 for n in names]
    label = subtype.get("label")
    ax.barh(range(len(names)), values, color=["#c0392b" if n == label else "#4c72b0" for n in names])
    for i, v in enumerate(values):
        ax.text(min(v + 0.02, 0.85), i, f"{v:.2f}", va="center", fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability", fontsize=7)
    ax.set_title("\n".join([f"answer: {label}", *(_wrap(p, 60) for p in caption.split(" · "))]), fontsize=7)


def _open_source(result: SlideResult) -> Any:
    """The result's slide, opened lazily, or ``None`` when it cannot be read any more."""
    path = result.slide.get("path")
    if not path or not Path(str(path)).exists():
        return None
    try:
        from hemascope.io import open_slide

        return open_slide(path, mpp=result.slide.get("mpp"))
    except Exception:  # noqa: BLE001 - the report is drawn without pictures then
        return None


def slide_thumbnail(slide: Any, max_size: int = 640) -> tuple[np.ndarray, float]:
    """A small RGB overview of ``slide`` and its level-0 pixels per thumbnail pixel."""
    level = slide.n_levels - 1
    for i in range(slide.n_levels):
        if max(slide.level_shapes[i]) >= max_size:
            level = i
    image = np.asarray(slide.levels[level])[..., :3]
    step = max(1, int(math.ceil(max(image.shape[:2]) / max_size)))
    return image[::step, ::step], float(slide.downsamples[level]) * step


def example_cells(slide: Any, cells: Any, *, per_class: int = EXAMPLES_PER_CLASS,
                  field_um: float = EXAMPLE_FIELD_UM, size: int = _EXAMPLE_PX) -> dict[str, list[np.ndarray]]:
    """A few crops per class (the most confident cells first), as ``(size, size, 3)`` uint8 arrays."""
    from hemascope.classify.crops import resize_rgb

    if cells is None or not len(cells) or "class" not in cells:
        return {}
    mpp = slide.mpp or 0.5
    side = max(8, int(round(field_um / mpp)))
    out: dict[str, list[np.ndarray]] = {}
    order = cells.sort_values("confidence", ascending=False) if "confidence" in cells else cells
    for cls, group in order.groupby("class", sort=False):
        crops = []
        for row, col in group[["row", "col"]].to_numpy(float)[:per_class]:
            region = slide.read_region(0, int(round(row - side / 2)), int(round(col - side / 2)), side, side)
            crops.append(resize_rgb(region, size, size))
        out[str(cls)] = crops
    return out


def _mosaic(examples: dict[str, list[np.ndarray]], order: list[str], per_class: int) -> tuple[np.ndarray, list[str]]:
    pad, size = 4, _EXAMPLE_PX
    names = [n for n in order if examples.get(n)]
    mosaic = np.full((len(names) * (size + pad) + pad, per_class * (size + pad) + pad, 3), 255, np.uint8)
    for i, name in enumerate(names):
        rgb = np.array([int(class_color(name).lstrip("#")[k : k + 2], 16) for k in (0, 2, 4)], np.uint8)
        for j, crop in enumerate(examples[name][:per_class]):
            r, c = pad + i * (size + pad), pad + j * (size + pad)
            mosaic[r - 2 : r + size + 2, c - 2 : c + size + 2] = rgb
            mosaic[r : r + size, c : c + size] = crop
    return mosaic, names


def _class_order(result: SlideResult) -> list[str]:
    counts = (result.differential or {}).get("counts") or {}
    present = list(counts) + [c for c in result.cells.get("class", []) if c not in counts]
    return list(dict.fromkeys(str(c) for c in present))


def write_report_png(path: str | Path, result: SlideResult, *, dpi: int = 110, pictures: bool = True) -> Path:
    """Draw the slide report as a PNG.

    Top: a slide thumbnail with the cells marked by class, the differential (or class count) with
    counts on the bars and the cells left out of it, and one panel per slide model (answer with
    probabilities, or the abstention and why; or why no slide model applies). Bottom: a few example
    cells per class. Models, versions and the research-use notice on every page.

    Parameters
    ----------
    path
        Destination ``.png``.
    result
        An analysed slide.
    dpi
        Resolution.
    pictures
        Draw the thumbnail and example cells when the slide file can still be read.

    Returns
    -------
    Path
        ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    subtypes = subtypes_of(result)
    slide = _open_source(result) if pictures else None
    try:
        examples = example_cells(slide, result.cells) if slide is not None else {}
        thumb = slide_thumbnail(slide) if slide is not None else None
    finally:
        if slide is not None:
            slide.close()
    n_sub = max(1, len(subtypes))
    order = _class_order(result)
    n_rows = len([n for n in order if examples.get(n)])
    fig = Figure(figsize=(15, 5.4 + (0.62 * n_rows + 0.6 if n_rows else 0.0)))
    FigureCanvasAgg(fig)
    heights = [5.0] + ([0.62 * n_rows + 0.4] if n_rows else [])
    grid = fig.add_gridspec(len(heights), 3, height_ratios=heights, width_ratios=[1.3, 1.3, 1.0])
    thumb_ax = fig.add_subplot(grid[0, 0])
    if thumb is not None:
        image, down = thumb
        thumb_ax.imshow(image)
        cells = result.cells
        if len(cells) and {"row", "col"} <= set(cells.columns):
            colors = [class_color(str(c)) for c in cells.get("class", ["unclassified"] * len(cells))]
            thumb_ax.scatter(cells["col"] / down, cells["row"] / down, s=6, c=colors, linewidths=0)
        mpp = result.slide.get("mpp")
        size = " × ".join(f"{v * mpp / 1000:.1f}" for v in result.slide.get("shape", [])[:2]) if mpp else ""
        thumb_ax.set_title(f"slide overview{f' ({size} mm)' if size else ''}; dots: cells by class", fontsize=8)
    else:
        thumb_ax.text(0.5, 0.5, "slide file not available:\nno thumbnail", ha="center", va="center",
                      transform=thumb_ax.transAxes, fontsize=8)
    thumb_ax.set_xticks([])
    thumb_ax.set_yticks([])
    plot_differential(fig.add_subplot(grid[0, 1]), result.differential)
    sub_grid = grid[0, 2].subgridspec(n_sub, 1, hspace=0.9)
    if subtypes:
        for i, sub in enumerate(subtypes):
            plot_subtype(fig.add_subplot(sub_grid[i, 0]), sub)
    else:
        plot_subtype(fig.add_subplot(sub_grid[0, 0]), None, empty=no_slide_model_text(result))
    if n_rows:
        ax = fig.add_subplot(grid[1, :])
        mosaic, names = _mosaic(examples, order, EXAMPLES_PER_CLASS)
        ax.imshow(mosaic)
        step = _EXAMPLE_PX + 4
        ax.set_yticks([4 + step * i + _EXAMPLE_PX / 2 for i in range(len(names))],
                      [CLASS_LABELS.get(n, n) for n in names], fontsize=8)
        ax.set_xticks([])
        ax.set_title(f"example cells per class (most confident first; {EXAMPLE_FIELD_UM:g} µm fields)", fontsize=8)
        for spine in ax.spines.values():
            spine.set_visible(False)
    name = Path(str(result.slide.get("path") or "slide")).name
    fig.suptitle(f"{name}: {result.n_cells} cells — {RESEARCH_USE_ONLY.upper()}", fontsize=10, color="#b00000")
    fig.text(0.01, 0.005, models_caption(result), fontsize=7)
    fig.tight_layout(rect=(0, 0.02, 1, 0.97))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return atomic_write_bytes(path, buf.getvalue())


#: Marker file written last into an exports folder: the exports are complete.
EXPORTS_COMPLETE = "EXPORTED"


def exports_complete(directory: str | Path) -> bool:
    """Whether :func:`export_all` finished writing into ``directory``."""
    return (Path(directory) / EXPORTS_COMPLETE).is_file()


def export_all(result: SlideResult, directory: str | Path) -> dict[str, Path]:
    """Write every headless export of ``result`` into ``directory``.

    Parameters
    ----------
    result
        An analysed slide.
    directory
        Output folder (created if needed). The marker :data:`EXPORTS_COMPLETE` is removed first
        and written last, so an interrupted or failed export never looks complete.

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
    marker = directory / EXPORTS_COMPLETE
    marker.unlink(missing_ok=True)
    labels = nuclei = None
    if result.labels_path is not None and Path(result.labels_path).is_dir():
        import zarr

        store = zarr.open_group(str(result.labels_path), mode="r")
        labels = store["labels/cells/0"]
        nuclei = store["labels/nuclei/0"] if "nuclei" in store["labels"] else None
    paths = {
        "cells_csv": write_cell_table(directory / "cells.csv", result.cells),
        "cells_parquet": write_cell_table(directory / "cells.parquet", result.cells),
        "geojson": write_geojson(directory / "cells.geojson", result.cells, labels=labels, nuclei=nuclei,
                                 mpp=result.slide.get("mpp")),
        "report_json": write_report_json(directory / "report.json", result),
        "report_png": write_report_png(directory / "report.png", result),
    }
    atomic_write_json(marker, {name: p.name for name, p in paths.items()})
    return paths


# Old private names, still imported by hemascope.napari.report_widget (use the public ones).
_models_line, _plot_differential, _plot_subtype = models_caption, plot_differential, plot_subtype

__all__ = [
    "EXPORTS_COMPLETE",
    "export_all",
    "exports_complete",
    "models_caption",
    "no_slide_model_text",
    "plot_differential",
    "plot_subtype",
    "report_dict",
    "subtype_line",
    "subtypes_of",
    "write_report_json",
    "write_report_png",
]
