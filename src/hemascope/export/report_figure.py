"""The report PNG: slide thumbnail, counts on bars, slide-level answers or abstentions, example cells.

Drawn with matplotlib's Agg backend (no display, no GUI toolkit); the Slide report dock draws its
charts with the same :func:`plot_differential` and :func:`plot_subtype`.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from hemascope.classes import CLASS_LABELS, RESEARCH_USE_ONLY, class_color
from hemascope.export.report import finite_number, models_caption, no_slide_model_text, subtypes_of
from hemascope.files import atomic_write_bytes
from hemascope.results import SlideResult
from hemascope.slide.checks import warning_lines

#: Example cells shown per class in the report PNG.
EXAMPLES_PER_CLASS = 6
#: Side (µm) of an example cell's crop.
EXAMPLE_FIELD_UM = 24.0
_EXAMPLE_PX = 64


def excluded_text(differential: dict[str, Any]) -> str:
    """Which cells are kept out of the differential's denominator, with their numbers."""
    counts = differential.get("counts") or {}
    excluded = [n for n in (differential.get("excluded") or []) if counts.get(n)]
    if not excluded:
        return ""
    parts = [f"{CLASS_LABELS.get(n, n).lower()} {counts[n]}" for n in excluded]
    return "not in the count (not white cells / not classified): " + ", ".join(parts)


def possible_blasts_text(differential: dict[str, Any]) -> str:
    """How many cells were most likely blasts but below the blast rule's threshold, and the blast
    percentage were they all blasts ("" when none, or when the blast percentage is withheld)."""
    n = int(differential.get("possible_blasts") or 0)
    upper = finite_number(differential.get("blast_percent_with_possible"))
    if not n or upper is None:
        return ""
    return (f"{n} possible blast{'s' if n > 1 else ''} to review (most likely blast, below the blast "
            f"rule's threshold: counted as the next class); blasts {upper:.1f}% if all are")


def _number_or(value: Any, default: float) -> float:
    """``value`` as a finite float, else ``default``."""
    number = finite_number(value)
    return default if number is None else number


def plot_differential(ax: Any, differential: dict[str, Any]) -> None:
    """Draw a differential count (``DifferentialCount.to_dict()``) as bars with counts and Wilson CIs."""
    numbers = {k: finite_number(v) for k, v in (differential.get("percent") or {}).items()}
    percent = {k: v for k, v in numbers.items() if v is not None}
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
        [max(0.0, percent[n] - _number_or(low.get(n), percent[n])) for n in names],
        [max(0.0, _number_or(high.get(n), percent[n]) - percent[n]) for n in names],
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
    blast = finite_number(differential.get("blast_percent"))
    what = "Differential" if kind == "differential" else "Class count"
    title = f"{what} ({differential.get('n_counted', '?')} cells counted)"
    if blast is not None:
        title += f" — blasts {blast:.1f}%"
    lines = [title]
    if differential.get("sufficient") is False:
        lines.append(str(differential.get("reason", "insufficient")))
    if differential.get("note"):
        lines.append(str(differential["note"]))
    lines += [text for text in (excluded_text(differential), possible_blasts_text(differential)) if text]
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
    if subtype.get("question"):
        caption = f"{caption} · {subtype['question']}"
    probs = {k: finite_number(v) for k, v in (subtype.get("probabilities") or {}).items()}
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
    ax.barh(range(len(names)), values, height=0.6, color=["#c0392b" if n == label else "#4c72b0" for n in names])
    for i, v in enumerate(values):
        ax.text(min(v + 0.02, 0.85), i, f"{v:.2f}", va="center", fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_ylim(max(len(names), 5) - 0.5, -0.5)  # top to bottom; two classes do not fill the panel
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


#: Fields of a pooled result shown in its overview (a 3 x 3 sheet).
_SHEET_FIELDS = 9


def _most_confident(cells: Any, per_class: int) -> Any:
    """The ``per_class`` most confident cells of each class (all, in order, without confidences)."""
    order = cells.sort_values("confidence", ascending=False) if "confidence" in cells else cells
    return order.groupby("class", sort=False).head(per_class)


def _open_fields(result: SlideResult, per_class: int = EXAMPLES_PER_CLASS) -> dict[str, Any]:
    """The field pictures a pooled result's figure draws (its first :data:`_SHEET_FIELDS` and those
    of its example cells) that can still be read, opened lazily, by field name, in its order."""
    from hemascope.io import open_slide

    listed = result.slide.get("fields") or {}
    cells = result.cells
    wanted = set(list(listed)[:_SHEET_FIELDS])
    if {"field", "class"} <= set(cells.columns):
        wanted |= set(_most_confident(cells, per_class)["field"].astype(str))
    opened = {}
    for name, facts in listed.items():
        if name not in wanted:
            continue
        try:
            opened[name] = open_slide(facts["path"], mpp=facts.get("mpp"))
        except Exception:  # noqa: BLE001 - a field that cannot be read is drawn without its pictures
            continue
    return opened


def pooled_pictures(result: SlideResult, fields: dict[str, Any], *, per_class: int = EXAMPLES_PER_CLASS
                    ) -> tuple[dict[str, list[np.ndarray]], np.ndarray | None]:
    """A pooled result's example cells (the most confident of the pool per class, each cut from its
    field) and a sheet of its first fields' thumbnails with their cells dotted (``None`` without
    readable fields)."""
    from hemascope.classify.crops import resize_rgb

    cells = result.cells
    if not fields or not len(cells) or not {"field", "class", "row", "col"} <= set(cells.columns):
        return {}, None
    readable = _most_confident(cells[cells["field"].isin(list(fields))], per_class)
    examples: dict[str, list[np.ndarray]] = {}
    for cls, group in readable.groupby("class", sort=False):
        examples[str(cls)] = [crop for field, part in group.groupby("field", sort=False)
                              for crop in example_cells(fields[str(field)], part, per_class=per_class)[str(cls)]]
    size, tiles = 213, []
    for name in list(fields)[:_SHEET_FIELDS]:
        image, down = slide_thumbnail(fields[name], max_size=size)
        tile = np.full((size, size, 3), 255, np.uint8)
        scale = size / max(image.shape[:2])
        image = resize_rgb(image, max(1, round(image.shape[0] * scale)), max(1, round(image.shape[1] * scale)))
        tile[: image.shape[0], : image.shape[1]] = image
        mine = cells[cells["field"] == name]
        for (row, col), cls in zip(mine[["row", "col"]].to_numpy(float), mine["class"], strict=True):
            r, c = int(row / down * scale), int(col / down * scale)
            rgb = [int(class_color(str(cls)).lstrip("#")[k : k + 2], 16) for k in (0, 2, 4)]
            tile[max(r - 3, 0) : r + 3, max(c - 3, 0) : c + 3] = rgb
        tiles.append(np.pad(tile, ((2, 2), (2, 2), (0, 0)), constant_values=200))
    tiles += [np.full_like(tiles[0], 255)] * (-len(tiles) % 3)
    rows = [np.concatenate(tiles[i : i + 3], axis=1) for i in range(0, len(tiles), 3)]
    return examples, np.concatenate(rows, axis=0)


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
    slide = _open_source(result) if pictures and not result.pooled else None
    fields = _open_fields(result) if pictures and result.pooled else {}
    sheet = None
    try:
        if result.pooled:
            examples, sheet = pooled_pictures(result, fields)
            thumb = None
        else:
            examples = example_cells(slide, result.cells) if slide is not None else {}
            thumb = slide_thumbnail(slide) if slide is not None else None
    finally:
        for opened in [slide, *fields.values()]:
            if opened is not None:
                opened.close()
    n_sub = max(1, len(subtypes))
    order = _class_order(result)
    n_rows = len([n for n in order if examples.get(n)])
    fig = Figure(figsize=(15, 5.4 + (0.62 * n_rows + 0.6 if n_rows else 0.0)))
    FigureCanvasAgg(fig)
    heights = [5.0] + ([0.62 * n_rows + 0.4] if n_rows else [])
    grid = fig.add_gridspec(len(heights), 3, height_ratios=heights, width_ratios=[1.3, 1.3, 1.0])
    thumb_ax = fig.add_subplot(grid[0, 0])
    if sheet is not None:
        thumb_ax.imshow(sheet)
        shown = min(len(fields), _SHEET_FIELDS)
        thumb_ax.set_title(f"{result.slide.get('n_fields', len(fields))} fields pooled ({shown} shown); "
                           "dots: cells by class", fontsize=8)
    elif thumb is not None:
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
    for i, line in enumerate(warning_lines(result.checks)):
        fig.text(0.5, 0.955 - 0.025 * i, line, fontsize=8, color="#b00000", ha="center", va="top", wrap=True)
    fig.tight_layout(rect=(0, 0.02, 1, 0.97))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return atomic_write_bytes(path, buf.getvalue())




__all__ = [
    "EXAMPLES_PER_CLASS",
    "example_cells",
    "excluded_text",
    "possible_blasts_text",
    "plot_differential",
    "plot_subtype",
    "pooled_pictures",
    "slide_thumbnail",
    "write_report_png",
]
