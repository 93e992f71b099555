"""``hemascope info SLIDE``: format, pyramid levels, µm/px, objective and tile size of a slide."""

from __future__ import annotations

import argparse
import json
from typing import Any

COMMAND = ("info",)
HELP = "show a slide's format, pyramid levels, shapes, µm/px, objective power and tile size"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``info`` arguments."""
    parser.add_argument("slide", help="slide file or OME-Zarr directory")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--mpp", type=float, default=None, help="override the file's µm/px")


def slide_info(slide: Any) -> dict[str, Any]:
    """A JSON-able summary of an open :class:`~hemascope.io.Slide`.

    Parameters
    ----------
    slide
        An open slide.

    Returns
    -------
    dict
        ``path``, ``format``, ``mpp``, ``mpp_source``, ``objective_power``, ``tile_size`` and
        ``levels`` (one ``{"level", "rows", "cols", "downsample", "mpp"}`` per level).
    """
    return {
        "path": str(slide.path) if slide.path is not None else None,
        "format": slide.format,
        "mpp": slide.mpp,
        "mpp_source": slide.mpp_source,
        "objective_power": slide.objective_power,
        "tile_size": slide.metadata.get("tile_size"),
        "pyramid": slide.metadata.get("pyramid"),
        "levels": [
            {
                "level": i,
                "rows": rows,
                "cols": cols,
                "downsample": slide.downsamples[i],
                "mpp": slide.level_mpp(i),
            }
            for i, (rows, cols) in enumerate(slide.level_shapes)
        ],
    }


def _text(info: dict[str, Any]) -> str:
    def fmt(value: float | None, suffix: str = "") -> str:
        return "unknown" if value is None else f"{value:g}{suffix}"

    tile = info["tile_size"]
    lines = [
        f"slide:     {info['path']}",
        f"format:    {info['format']}",
        f"µm/px:     {fmt(info['mpp'])}"
        + (f" ({info['mpp_source']})" if info["mpp_source"] else ""),
        f"objective: {fmt(info['objective_power'], 'x')}",
        f"tile size: {f'{tile[0]} x {tile[1]}' if tile else 'untiled'}",
        f"levels:    {len(info['levels'])}"
        + (" (computed)" if info["pyramid"] == "computed" else ""),
    ]
    for lv in info["levels"]:
        lines.append(
            f"  {lv['level']:>2}: {lv['rows']} x {lv['cols']} px (rows x cols), "
            f"downsample {lv['downsample']:g}, µm/px {fmt(lv['mpp'])}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Open the slide (no pixels are read) and print its summary."""
    from hemascope.io import open_slide

    with open_slide(args.slide, mpp=args.mpp) as slide:
        info = slide_info(slide)
    print(json.dumps(info, indent=2) if args.json else _text(info))
    return 0
