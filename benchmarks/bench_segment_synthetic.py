"""White-cell detection (recall, precision) on synthetic fields under every domain-shift setting.

    nice -n 10 python benchmarks/bench_segment_synthetic.py --seeds 1 2 --size 2048
    nice -n 10 python benchmarks/bench_segment_synthetic.py --seeds 1 --size 1536 --mpp 0.1 0.25 --wbc-density 1500
    nice -n 10 python benchmarks/bench_segment_synthetic.py --seeds 1 2 --size 2048 --scale-error 0.8 1.25

``--scale-error F [F ...]`` segments each field at its true µm/px times ``F`` (a scale given only
approximately); points are matched within 4 µm of the truth either way. ``--fall-off F`` and
``--field-stop R`` photograph each field through a microscope first
(:func:`hemascope.synthetic.photographed`: the light falls off by ``F`` towards the edge, a round
field stop of ``R`` times the shorter side with a dark surround); only white cells in the field of
view are counted:

    nice -n 10 python benchmarks/bench_segment_synthetic.py --seeds 1 2 --size 2048 --fall-off 0.35 --field-stop 0.47
"""

from __future__ import annotations

import argparse

from hemascope.segment import find_cells
from hemascope.segment.metrics import DetectionScore, match_points
from hemascope.synthetic import DOMAIN_SHIFT_SETTINGS as SHIFTS
from hemascope.synthetic import SmearSpec, photographed, render_field


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--segmenter", default="classical", help="classical, learned, cellpose or auto")
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--mpp", type=float, nargs="+", default=[0.5])
    parser.add_argument("--wbc-density", type=float, default=None, help="white cells per mm² (default: the smear default)")
    parser.add_argument("--scale-error", type=float, nargs="+", default=[1.0], metavar="F",
                        help="segment at the true µm/px times F")
    parser.add_argument("--fall-off", type=float, default=0.0, help="light lost at the edge of the field of view")
    parser.add_argument("--field-stop", type=float, default=None, help="round field stop, fraction of the shorter side")
    args = parser.parse_args()
    print("| setting | µm/px | scale × | white cells | recall | precision |")
    print("|---|---|---|---|---|---|")
    for mpp, factor in [(m, f) for m in args.mpp for f in args.scale_error]:
        for name, shift in SHIFTS.items():
            total = DetectionScore(0, 0, 0)
            for seed in args.seeds:
                image, truth = render_field(SmearSpec(size=args.size, mpp=mpp, seed=seed, shift=shift,
                                                         wbc_density=args.wbc_density), masks=False)
                wbc = truth.cells[truth.cells["class"] != "platelet"]
                if args.fall_off or args.field_stop:
                    image, in_view = photographed(image, fall_off=args.fall_off, field_stop=args.field_stop)
                    wbc = wbc[in_view[wbc["row"].to_numpy(int).clip(0, image.shape[0] - 1),
                                      wbc["col"].to_numpy(int).clip(0, image.shape[1] - 1)]]
                seg = find_cells(image, mpp=mpp * factor, segmenter=args.segmenter)
                total = total + match_points(seg.cells[["row", "col"]].to_numpy(), wbc[["row", "col"]].to_numpy(), 4.0 / mpp)
            n = total.true_positives + total.false_negatives
            print(f"| {name} | {mpp} | {factor:g} | {n} | {total.recall:.3f} | {total.precision:.3f} |", flush=True)


if __name__ == "__main__":
    main()
