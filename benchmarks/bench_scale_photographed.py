"""Zero-configuration µm/px of fields photographed through a microscope, through the user path.

Each synthetic field (seeds, µm/px) is saved three ways: as it is, as a phone photograph at the
eyepiece (35 % fall-off, a round field stop of 0.47 of the shorter side, black surround) and as a
camera field with a 45 % fall-off to the corners, each as a JPEG (quality 85); the scale is
estimated as ``hemascope segment`` does without ``--mpp`` (``segment.regions.slide_mpp`` on the
opened picture). Prints the estimate / truth and the share within ±15 %:

    nice -n 10 python benchmarks/bench_scale_photographed.py --seeds 3 4 5 6 --mpp 0.12 0.25 0.4
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from hemascope.io import open_slide
from hemascope.segment.regions import slide_mpp
from hemascope.synthetic import SmearSpec, photographed, render_field

PICTURES = {
    "as is": lambda image: image,
    "eyepiece": lambda image: photographed(image, fall_off=0.35, field_stop=0.47)[0],
    "vignetted": lambda image: photographed(image, fall_off=0.45, field_stop=None)[0],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 5, 6])
    parser.add_argument("--mpp", type=float, nargs="+", default=[0.12, 0.25, 0.4])
    parser.add_argument("--size", type=int, default=1536)
    args = parser.parse_args()
    ratios: dict[str, list[float]] = {name: [] for name in PICTURES}
    print("| µm/px | seed | " + " | ".join(f"{name} (estimate / truth)" for name in PICTURES) + " |")
    print("|---|---|" + "---|" * len(PICTURES))
    with tempfile.TemporaryDirectory() as tmp:
        for mpp in args.mpp:
            for seed in args.seeds:
                image, _ = render_field(SmearSpec(size=args.size, mpp=mpp, seed=seed), masks=False)
                row = []
                for name, make in PICTURES.items():
                    path = Path(tmp) / "field.jpg"
                    Image.fromarray(make(image)).save(path, quality=85)
                    estimate = slide_mpp(open_slide(path))[0]
                    ratios[name].append(float(estimate) / mpp)
                    row.append(f"{float(estimate) / mpp:.3f}{' (low)' if estimate.low_confidence else ''}")
                print(f"| {mpp} | {seed} | " + " | ".join(row) + " |", flush=True)
    for name, values in ratios.items():
        values_arr = np.asarray(values)
        print(f"{name}: within ±15 % {np.mean(np.abs(values_arr - 1) <= 0.15):.2f}, "
              f"median |error| {np.median(np.abs(values_arr - 1)) * 100:.1f} %")


if __name__ == "__main__":
    main()
