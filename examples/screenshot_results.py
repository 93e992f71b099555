"""Save a screenshot of napari showing an analysed slide with its layers and the hemascope docks.

Usage::

    python examples/screenshot_results.py RESULT_DIR OUT.png [--center-um Y X] [--field-um F]

RESULT_DIR is a saved :class:`~hemascope.results.SlideResult` (``hemascope analyze`` or
``hemascope demo`` output, or ``analyze_slide(..., out_dir=...)``). Run it under a display (Xvfb is
fine). docs/screenshots/napari_sample_results.png was made this way from the sample slide.
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result_dir")
    parser.add_argument("out")
    parser.add_argument("--center-um", type=float, nargs=2, metavar=("Y", "X"))
    parser.add_argument("--field-um", type=float, default=400.0, help="width of the view in µm")
    args = parser.parse_args()

    from PIL import Image
    from qtpy.QtWidgets import QApplication

    from hemascope.napari import launch_viewer
    from hemascope.napari.review import camera_of
    from hemascope.results import SlideResult

    result = SlideResult.load(args.result_dir)
    viewer = launch_viewer(result, block=False)
    viewer.window._qt_window.resize(1500, 950)
    gallery = viewer.window.dock_widgets["Cell gallery"]
    while gallery.thumbnails_pending:
        QApplication.processEvents()
    if args.center_um:
        camera = camera_of(viewer)
        camera.center = tuple(args.center_um)
        camera.zoom = 900 / args.field_um
    for _ in range(20):  # let docks lay out and tiles load
        QApplication.processEvents()
        time.sleep(0.05)
    Image.fromarray(viewer.screenshot(canvas_only=False, flash=False)).save(args.out)
    viewer.close()
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
