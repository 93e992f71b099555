"""napari figures: adding 100k cells to a viewer, and panning over them (Points vs Shapes).

Run under a display (Xvfb is fine; rendering is then software OpenGL)::

    xvfb-run -a -s "-screen 0 1280x1024x24" nice -n 10 python benchmarks/bench_napari.py

1. ``show_results`` of a result with N cells (a cell table of the real columns, probabilities,
   classes) on top of a lazy 100k x 100k slide pyramid: wall time to add the layers, and the time
   to the first drawn frame.
2. Panning: frames drawn per second while the camera moves across the cells, for the cells as
   one Points layer versus one Shapes polygon per cell (what the plugin avoids), measured side by
   side in the same run.
"""

from __future__ import annotations

import argparse
import time

import dask.array as da
import numpy as np
import pandas as pd


def synthetic_result(n_cells: int, side: int = 100_000, mpp: float = 0.25, seed: int = 0):
    """A :class:`SlideResult` with ``n_cells`` cells spread over a ``side``² slide."""
    from hemascope.classes import CELL_CLASSES
    from hemascope.results import SlideResult

    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(len(CELL_CLASSES), 0.3), size=n_cells).astype(np.float32)
    rows, cols = rng.uniform(0, side, n_cells), rng.uniform(0, side, n_cells)
    cells = pd.DataFrame({
        "id": np.arange(n_cells), "row": rows, "col": cols, "y_um": rows * mpp, "x_um": cols * mpp,
        "area_um2": rng.uniform(40, 200, n_cells), "perimeter_um": rng.uniform(20, 60, n_cells),
        "circularity": rng.uniform(0.6, 1, n_cells), "nucleus_area_um2": rng.uniform(10, 90, n_cells),
        "nc_ratio": rng.uniform(0.2, 0.9, n_cells),
        "class": np.asarray(CELL_CLASSES)[probs.argmax(1)], "confidence": probs.max(1),
    })
    for j, cls in enumerate(CELL_CLASSES):
        cells[f"prob_{cls}"] = probs[:, j]
    mask = np.ones((side // 256, side // 256), dtype=bool)
    return SlideResult(cells=cells, smear_mask=mask, smear_mask_downsample=256.0,
                       slide={"path": None, "shape": (side, side), "mpp": mpp})


def lazy_slide(side: int = 100_000, mpp: float = 0.25):
    """A 100k x 100k RGB pyramid of dask arrays (pale pink, computed per tile on demand)."""
    from hemascope.io import Slide

    levels, size = [], side
    while size >= 256:
        levels.append(da.full((size, size, 3), 230, dtype=np.uint8, chunks=(512, 512, 3)))
        size //= 2
    return Slide(levels=levels, mpp=mpp, format="memory")


def _frame(viewer) -> float:
    start = time.perf_counter()
    viewer.screenshot(canvas_only=True, flash=False)
    return time.perf_counter() - start


def pan_fps(viewer, field_um: float, n_frames: int = 20) -> tuple[float, float]:
    """Frames per second while panning at a zoom showing ``field_um``, and CPU s per frame.

    The CPU time of this process (OpenGL is software-rendered in-process under Xvfb) is the
    frame's cost independent of how busy the shared machine is; the frame rate is what was seen.
    """
    from hemascope.napari.review import camera_of

    camera = camera_of(viewer)
    camera.zoom = 800 / field_um
    centres = np.linspace(0.1, 0.9, n_frames) * 25_000.0
    _frame(viewer)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for c in centres:
        camera.center = (c, c)
        _frame(viewer)
    return n_frames / (time.perf_counter() - wall0), (time.process_time() - cpu0) / n_frames


def main() -> None:
    import napari
    from hemascope.napari import add_slide, show_results
    from hemascope.napari.layers import cells_layer_data, class_colors

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=100_000)
    parser.add_argument("--shapes", type=int, default=5_000, help="cells drawn as Shapes polygons")
    parser.add_argument("--repeats", type=int, default=3, help="times the result is added")
    args = parser.parse_args()

    result = synthetic_result(args.cells)
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1280, 900)
    slide_layer = add_slide(viewer, lazy_slide())
    _frame(viewer)
    walls, cpus, layers = [], [], []
    for _ in range(args.repeats):
        for layer in layers:
            viewer.layers.remove(layer)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        layers = show_results(viewer, result, replace=False)
        walls.append(time.perf_counter() - wall0)
        cpus.append(time.process_time() - cpu0)
        first = _frame(viewer)
    print(f"show_results with {args.cells} cells ({len(layers)} layers), wall s per repeat: "
          + ", ".join(f"{w:.2f}" for w in walls)
          + "; CPU s of this process: " + ", ".join(f"{c:.2f}" for c in cpus)
          + f" (first = first result of the session); a frame after it {first:.2f} s")
    data, kwargs, _ = cells_layer_data(result.cells, 0.25)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    extra = viewer.add_points(data, **kwargs)
    print(f"the cells Points layer alone ({args.cells} cells, features = cell table): "
          f"{time.perf_counter() - wall0:.2f} s wall, {time.process_time() - cpu0:.2f} s CPU")
    viewer.layers.remove(extra)

    for field in (500.0, 25_000.0):
        fps, cpu = pan_fps(viewer, field)
        print(f"pan, slide + all result layers, {field:.0f} µm field: {fps:.1f} fps, {cpu:.3f} CPU s/frame")

    slide_layer.visible = False
    for layer in layers[:-1]:
        layer.visible = False
    fps_points, cpu_points = pan_fps(viewer, field_um=25_000.0, n_frames=5)
    print(f"pan, cells Points layer alone ({args.cells} cells, all in view): {fps_points:.2f} fps, "
          f"{cpu_points:.3f} CPU s/frame")

    cells = result.cells.iloc[: args.shapes]
    radius = np.sqrt(cells["area_um2"].to_numpy() / np.pi) / 0.25
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    polygons = [np.c_[r + rad * np.sin(angles), c + rad * np.cos(angles)]
                for r, c, rad in zip(cells["row"], cells["col"], radius, strict=True)]
    layers[-1].visible = False
    start = time.perf_counter()
    viewer.add_shapes(polygons, shape_type="polygon", scale=(0.25, 0.25), units=("micrometer",) * 2,
                      face_color=class_colors(cells["class"]), edge_width=0)
    shapes_added = time.perf_counter() - start
    fps_shapes, cpu_shapes = pan_fps(viewer, field_um=25_000.0, n_frames=5)
    print(f"Shapes layer, one polygon per cell, {args.shapes} cells: {shapes_added:.2f} s to add, "
          f"pan {fps_shapes:.2f} fps, {cpu_shapes:.3f} CPU s/frame")
    per_cell = (args.cells / cpu_points) / (args.shapes / cpu_shapes)
    print(f"cells drawn per CPU second, Points / Shapes: {per_cell:.1f}x; "
          f"time to add per cell, Shapes / Points: {(shapes_added / args.shapes) / (min(walls) / args.cells):.0f}x")
    viewer.close()


if __name__ == "__main__":
    main()
