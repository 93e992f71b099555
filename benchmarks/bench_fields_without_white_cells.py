"""White cells "found" on fields that hold none: ``wbc_seg_cellavision`` with its cell painted out.

Most fields of a 100x camera hold red cells and no white cell. Each picture's annotated cell
(its mask grown by 0.8 µm) is painted with the picture's glass colour (its 99th-percentile
colour), then the picture is shifted as in ``bench_segment_recoloured.py`` (``mosaic`` for a
90 µm field; ``+`` combines) and segmented at the copy's µm/px. Every object found is a false
white cell. Evaluation only.

Usage::

    python benchmarks/bench_fields_without_white_cells.py --shift mosaic blur+mosaic pale+mosaic magenta+mosaic bluish+mosaic rapid+mosaic
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from bench_segment_recoloured import DATA, MPP, shifted  # noqa: E402

#: How far (µm) beyond its annotated outline a cell is painted out (its blurred edge).
PAINT_MARGIN_UM = 0.8


def painted_out(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``image`` with the annotated cell of ``mask`` (grown by :data:`PAINT_MARGIN_UM`) painted in
    the picture's glass colour."""
    from scipy import ndimage as ndi

    glass = np.percentile(image.reshape(-1, 3), 99, axis=0).astype(np.uint8)
    out = image.copy()
    out[ndi.binary_dilation(mask > 0, iterations=int(round(PAINT_MARGIN_UM / MPP)))] = glass
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shift", nargs="+", default=["mosaic"])
    parser.add_argument("--out", type=Path, default=None, help="per-picture CSV")
    args = parser.parse_args()

    from PIL import Image

    from hemascope.segment import find_cells

    names = sorted(p.stem for p in (DATA / "images").iterdir())
    print("| shift | pictures | objects found | pictures with any |")
    print("|---|---|---|---|")
    rows = []
    start = time.perf_counter()
    for shift in args.shift:
        found = []
        for index, name in enumerate(names):
            image = np.asarray(Image.open(DATA / "images" / f"{name}.png").convert("RGB"))
            mask = np.asarray(Image.open(DATA / "masks" / f"{name}.png").convert("L"))
            copy, _, mpp = shifted(painted_out(image, mask), np.zeros_like(mask), shift,
                                   np.random.default_rng([0, index]))
            n = len(find_cells(copy, mpp=mpp, num_workers=1).cells)
            found.append(n)
            rows.append({"shift": shift, "image": name, "objects": n})
        found = np.asarray(found)
        print(f"| {shift} | {len(found)} | {found.sum()} | {(found > 0).sum()} |", flush=True)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(args.out, index=False)
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
