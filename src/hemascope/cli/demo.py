"""``hemascope demo``: make the embedded sample smear, analyse it with the bundled models, show what was found.

Writes the saved result and every export (cell table CSV/Parquet, QuPath GeoJSON, report JSON and
PNG) under ``--out`` and prints where they are, the differential count, the blast percentage and the
subtype prediction (or abstention), each beside the generator's truth for the sample. The sample is
synthetic, so it is classified with the SYNTHETIC/DEMO cell model that the demo subtype models
name in their cards (``wbc-demo``). ``--gui`` then opens napari with the result layers and widgets.
Research use only — not for diagnosis.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

COMMAND = ("demo",)
HELP = "analyse the embedded sample smear end to end and print what was found"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command-line arguments."""
    parser.add_argument("--out", default="hemascope-demo", metavar="DIR", help="output folder (default: ./hemascope-demo)")
    parser.add_argument("--config", metavar="FILE", help="TOML run settings (default: the bundled models)")
    parser.add_argument("--gui", action="store_true", help="open the result in napari afterwards")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _pct(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1f}%"


def describe_result(result: Any, truth: Any = None) -> str:
    """A plain-text account of a :class:`~hemascope.results.SlideResult` for the terminal.

    Parameters
    ----------
    result
        An analysed slide.
    truth
        Optional :class:`~hemascope.synthetic.GroundTruth` of a synthetic slide: its differential
        count and subtype are printed beside the prediction.

    Returns
    -------
    str
        Cells found, the differential count (with the truth), blast %, the subtype (or abstention),
        models and the research-use notice.
    """
    from hemascope.classes import CLASS_LABELS, RESEARCH_USE_ONLY
    from hemascope.slide import differential_count

    diff = result.differential
    true = differential_count(truth.cells["class"].astype(str)).to_dict() if truth is not None else {}
    lines = [f"{result.n_cells} cells found on {result.slide.get('name', 'the slide')}"]
    header = f"Differential count ({diff.get('n_counted', 0)} white cells counted)"
    if truth is not None:
        header += f"; truth: {true['n_counted']} white cells drawn by the generator"
    lines.append(header + ":")
    if truth is not None:
        lines.append(f"  {'':<22} {'found':>6} {'%':>7}   {'truth':>6} {'%':>7}")
    percent = diff.get("percent") or {}
    counts = diff.get("counts") or {}
    true_counts, true_percent = true.get("counts") or {}, true.get("percent") or {}
    for name in dict.fromkeys([*counts, *true_counts]):
        count, expected = counts.get(name, 0), true_counts.get(name, 0)
        if not (count or expected):
            continue
        shown = _pct(percent.get(name)) if name in percent else "(not counted)"
        line = f"  {CLASS_LABELS.get(name, name):<22} {count:>6} {shown:>7}"
        if truth is not None:
            line += f"   {expected:>6} {_pct(true_percent.get(name)) if name in true_percent else '':>7}"
        lines.append(line)
    if diff.get("sufficient") is False:
        lines.append(f"  note: {diff.get('reason')}")
    if diff.get("note"):
        lines.append(f"  note: {diff.get('note')}")
    excluded = {k: v for k, v in counts.items() if k in (diff.get("excluded") or []) and v}
    if excluded:
        lines.append("  not counted (not white cells / not classified): "
                     + ", ".join(f"{CLASS_LABELS.get(k, k).lower()} {v}" for k, v in excluded.items()))
    low, high = (diff.get("blast_ci") or [None, None])[:2]
    ci = f" (95% CI {_pct(low)}–{_pct(high)})" if low is not None else ""
    blasts = f"Blasts: {_pct(diff.get('blast_percent'))}{ci}"
    if truth is not None:
        blasts += f"; truth {_pct(true.get('blast_percent'))}"
    lines.append(blasts)
    subs = result.subtypes or ([result.subtype] if result.subtype else [])
    for sub in subs:
        probs = ", ".join(f"{k} {v:.2f}" for k, v in (sub.get("probabilities") or {}).items()
                          if isinstance(v, (int, float)) and not math.isnan(v))
        answer = f"abstained ({sub.get('reason')})" if sub.get("abstained") else f"{sub.get('label')}"
        demo = " [SYNTHETIC/DEMO model]" if sub.get("demo") else ""
        lines.append(f"Subtype ({sub.get('model')} v{sub.get('version')}{demo}): {answer}" + (f" — {probs}" if probs else ""))
    if not subs:
        from hemascope.export.report import no_slide_model_text

        lines.append(f"Subtype: {no_slide_model_text(result)}")
    if truth is not None:
        lines.append(f"Subtype truth (generator): {truth.subtype}")
    cell = (result.provenance.get("models") or {}).get("cell", {})
    if cell:
        lines.append(f"Cell model: {cell.get('name')} v{cell.get('version')} (sha256 {str(cell.get('sha256'))[:12]})")
    lines.append(RESEARCH_USE_ONLY.upper())
    return "\n".join(lines)


#: The SYNTHETIC/DEMO cell model the sample slide is classified with (trained on generated cells).
DEMO_CELL_MODEL = "wbc-demo"


def _demo_config(path: str | None) -> Any:
    """The settings of the demo: ``path``, else the defaults with the demo models.

    The sample slide is synthetic, so the demo classifies it with the SYNTHETIC/DEMO cell model
    ``wbc-demo`` (trained on generated cells) and runs every slide model trained on its embeddings
    — the demo models included, which a real-data run never shows (see
    :mod:`hemascope.slide.applicability`). Without ``wbc-demo`` installed it falls back to the
    defaults (no demo slide model then applies).
    """
    from dataclasses import replace

    from hemascope.config import load_config
    from hemascope.models import list_models
    from hemascope.slide.applicability import applicable_bag_models

    config = load_config(path)
    if path is not None:
        return config
    cards = {c.name: c for c in list_models(kind="cell")}
    if DEMO_CELL_MODEL not in cards:
        print(f"note: the demo cell model {DEMO_CELL_MODEL} is not installed; using {config.cell_model}")
        return config
    names = applicable_bag_models(cards[DEMO_CELL_MODEL], include_demo=True)
    print(f"note: cell model {DEMO_CELL_MODEL} (SYNTHETIC/DEMO, trained on generated cells like "
          "the sample slide; not for real smears)")
    return replace(config, cell_model=DEMO_CELL_MODEL, slide_model=",".join(names) if names else "none")


def _truth(path: Path) -> Any:
    """The generator's ground truth of the sample slide, or None when it cannot be read."""
    from hemascope.errors import DataError
    from hemascope.synthetic import GroundTruth

    try:
        return GroundTruth.load(path)
    except DataError:
        return None


def run(args: argparse.Namespace) -> int:
    """Make the sample slide, analyse it, write all outputs and print the findings."""
    import time

    from hemascope.cli._contract import check_output_dir
    from hemascope.export import export_all
    from hemascope.io import open_slide
    from hemascope.pipeline import analyze_slide
    from hemascope.progress import tqdm_progress
    from hemascope.synthetic import sample_slide_path

    t0 = time.perf_counter()
    out = check_output_dir(args.out)
    config = _demo_config(args.config)
    path = sample_slide_path()
    with open_slide(path) as slide:
        levels = " ".join(f"{r}x{c}" for r, c in slide.level_shapes)
        print(f"Sample slide: {path}\n  format {slide.format}, {slide.mpp} µm/px ({slide.mpp_source}), levels {levels}")
    result = analyze_slide(path, config, out_dir=out / "result",
                           progress=tqdm_progress("analysing", disable=args.quiet))
    exports = export_all(result, out / "exports")
    print(describe_result(result, _truth(path)))
    print(f"Result: {out / 'result'}" + (f" (cell label mask: {result.labels_path})" if result.labels_path else ""))
    for name, file in exports.items():
        print(f"  {name:<14} {file}")
    print(f"Done in {time.perf_counter() - t0:.1f} s.")
    if args.gui:
        from hemascope.napari import launch_viewer

        launch_viewer(result)
    return 0
