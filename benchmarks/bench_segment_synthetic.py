"""White-cell detection (recall, precision) on synthetic fields under every domain-shift setting.

    nice -n 10 python benchmarks/bench_segment_synthetic.py --seeds 1 2 --size 2048
"""

from __future__ import annotations

import argparse

from hemascope.segment import find_cells
from hemascope.segment.metrics import DetectionScore, match_points
from hemascope.synthetic import DomainShift, SmearSpec, render_field

SHIFTS = {
    "neutral": DomainShift(),
    "bluer (hue +15°)": DomainShift(hue_deg=15),
    "redder (hue -15°)": DomainShift(hue_deg=-15),
    "washed out (x0.7)": DomainShift(intensity=0.7),
    "overstained (x1.6)": DomainShift(intensity=1.6),
    "defocus (blur 0.8 µm)": DomainShift(blur_um=0.8),
    "sensor noise (σ 8)": DomainShift(noise=8),
    "JPEG q40": DomainShift(jpeg_quality=40),
    "blue glass": DomainShift(background=(225, 230, 245)),
    "all at once": DomainShift(hue_deg=-10, intensity=0.85, blur_um=0.4, noise=4, jpeg_quality=60,
                               background=(235, 236, 240)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--mpp", type=float, nargs="+", default=[0.5])
    args = parser.parse_args()
    print("| setting | µm/px | white cells | recall | precision |")
    print("|---|---|---|---|---|")
    for mpp in args.mpp:
        for name, shift in SHIFTS.items():
            total = DetectionScore(0, 0, 0)
            for seed in args.seeds:
                image, truth = render_field(SmearSpec(size=args.size, mpp=mpp, seed=seed, shift=shift), masks=False)
                wbc = truth.cells[truth.cells["class"] != "platelet"]
                seg = find_cells(image, mpp=mpp)
                total = total + match_points(seg.cells[["row", "col"]].to_numpy(), wbc[["row", "col"]].to_numpy(), 4.0 / mpp)
            n = total.true_positives + total.false_negatives
            print(f"| {name} | {mpp} | {n} | {total.recall:.3f} | {total.precision:.3f} |", flush=True)


if __name__ == "__main__":
    main()
