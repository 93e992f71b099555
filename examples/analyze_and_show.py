"""Open a slide, analyse it headless, and show the result layers and widgets in napari.

Usage::

    python examples/analyze_and_show.py [SLIDE] [--out DIR] [--no-gui]

Without SLIDE the embedded synthetic sample smear is used. ``--no-gui`` builds the layers without
opening a window (prints what they are), which is how this script is checked on headless machines.
Research use only — not for diagnosis.
"""

from __future__ import annotations

import argparse

import hemascope
from hemascope.classes import RESEARCH_USE_ONLY
from hemascope.io import open_slide
from hemascope.progress import tqdm_progress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("slide", nargs="?", help="slide file (default: the sample smear)")
    parser.add_argument("--out", help="also save the result to this folder")
    parser.add_argument("--no-gui", action="store_true", help="do not open a napari window")
    args = parser.parse_args()

    if args.slide is None:
        from hemascope.synthetic import sample_slide_path

        args.slide = sample_slide_path()
    slide = open_slide(args.slide)
    result = hemascope.analyze_slide(slide, out_dir=args.out, progress=tqdm_progress("analysing"))
    blasts = result.differential.get("blast_percent")
    print(f"{slide.name}: {result.n_cells} cells; blasts {blasts}% ({RESEARCH_USE_ONLY})")

    if args.no_gui:
        from hemascope.napari.viewer import result_layer_tuples

        for data, kwargs, kind in result_layer_tuples(result):
            print(f"  {kind:7s} {kwargs['name']!r}: {len(data)} items, scale {kwargs['scale']}")
        return

    from hemascope.napari import launch_viewer

    launch_viewer(result, slide=slide)  # slide + result layers + the three docks; blocks until closed


if __name__ == "__main__":
    main()
