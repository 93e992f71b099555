"""Strip and planar layouts: hemascope's direct segment reads vs tifffile on the same files.

Usage::

    nice -n 10 python benchmarks/bench_strip_layouts.py [--reads 200] [--work DIR] [--out FILE]

Writes two replicas (once, then reuses them):

- ``planar-rows.ome.tif``: Bio-Formats' planar OME-TIFF with one row per strip (QuPath's
  ``cells.ome.tif`` layout), 3,000 x 4,000 px, uncompressed, 2 SubIFD levels: 9,000 strips in
  level 0;
- ``jpeg-8row-strips.tif``: full-width JPEG strips of 8 rows (the layout NDPI levels have when
  their restart intervals span the width), 4,096 x 16,384 px, quality 90;
- ``ndpi-replica.tif`` (and the same bytes as ``ndpi-replica.ndpi`` for OpenSlide): a Hamamatsu
  NDPI replica, each level one JPEG with a restart marker every 64 MCUs (8 x 512 px intervals) and
  its McuStarts tag, 4,096 x 16,384 px; tifffile and OpenSlide split it into restart intervals.

For each, in one process, on the same random 256 x 256 positions (interleaved per position):

- ``read_region``: ``Slide.read_region`` (what the pipeline uses) on a freshly opened slide,
  so every read decodes its strips (segment cache cleared before each read: ``cold``) and as a
  session of nearby reads would (cache kept: ``warm``);
- ``tifffile_loop``: the floor for these layouts with tifffile: read + ``TiffPage.decode`` of
  exactly the strips (and planes) the region touches, assembled into the output;
- ``dask_aszarr``: the region through a dask array over tifffile's ``aszarr`` store (what
  hemascope used before for these layouts: one dask chunk per strip and plane);
- ``openslide``: ``OpenSlide.read_region`` (NDPI replica only: OpenSlide does not read strips);

and the whole level (best of 3): ``numpy.asarray(slide.levels[0])`` vs ``tifffile.imread``, and
vs ``tifffile.imread`` turned into the same ``(rows, cols, 3)`` RGB array (planar files: tifffile
returns ``(3, rows, cols)`` planes).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def _smooth(rows: int, cols: int) -> np.ndarray:
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    r = 128 + 100 * np.sin(yy / 37.0)
    g = 128 + 100 * np.cos(xx / 53.0)
    b = 128 + 60 * np.sin((yy + xx) / 71.0)
    img = np.stack([r, g, b], axis=-1)
    rng = np.random.default_rng(0)
    img += rng.normal(0, 6, img.shape).astype(np.float32)  # texture, like tissue/cells
    return np.clip(img, 0, 255).astype(np.uint8)


def write_files(work: Path) -> dict[str, Path]:
    import tifffile

    work.mkdir(parents=True, exist_ok=True)
    planar = work / "planar-rows.ome.tif"
    if not planar.exists():
        image = _smooth(3000, 4000)
        opts = {"photometric": "rgb", "planarconfig": "separate", "rowsperstrip": 1}
        with tifffile.TiffWriter(planar, ome=True) as tw:
            tw.write(np.moveaxis(image, -1, 0), subifds=2,
                     metadata={"axes": "SYX", "PhysicalSizeX": 0.25}, **opts)
            for step in (2, 4):
                tw.write(np.moveaxis(image[::step, ::step], -1, 0).copy(), subfiletype=1,
                         metadata=None, **opts)
    strips = work / "jpeg-8row-strips.tif"
    if not strips.exists():
        tifffile.imwrite(strips, _smooth(4096, 16384), photometric="rgb", compression="jpeg",
                         compressionargs={"level": 90}, rowsperstrip=8)
    ndpi = work / "ndpi-replica.tif"
    if not ndpi.exists():
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "io"))
        from io_samples import write_ndpi_replica

        write_ndpi_replica(ndpi, _smooth(4096, 16384), levels=2)
        (work / "ndpi-replica.ndpi").write_bytes(ndpi.read_bytes())
    return {"planar_rows": planar, "jpeg_8row_strips": strips, "ndpi_intervals": ndpi}


def tifffile_loop(page, fh, row: int, col: int, size: int) -> np.ndarray:
    """Decode exactly the segments (strips or NDPI intervals, all planes) covering the region."""
    if page.is_tiled:
        seg_rows, seg_cols = int(page.tilelength), int(page.tilewidth)
    else:
        seg_rows, seg_cols = int(min(page.rowsperstrip, page.imagelength)), int(page.imagewidth)
    grid_cols = -(-page.imagewidth // seg_cols)
    per_plane = -(-page.imagelength // seg_rows) * grid_cols
    planar = page.planarconfig == 2
    out = np.empty((size, size, 3), np.uint8)
    for sr in range(row // seg_rows, (row + size - 1) // seg_rows + 1):
        for sc in range(col // seg_cols, (col + size - 1) // seg_cols + 1):
            r0, c0 = sr * seg_rows, sc * seg_cols
            rs, re = max(row, r0), min(row + size, r0 + seg_rows)
            cs, ce = max(col, c0), min(col + size, c0 + seg_cols)
            for p in range(3 if planar else 1):
                index = p * per_plane + sr * grid_cols + sc
                fh.seek(page.dataoffsets[index])
                data = fh.read(page.databytecounts[index])
                seg = page.decode(data, index, jpegtables=page.jpegtables,
                                  jpegheader=page.jpegheader)[0]
                seg = np.asarray(seg).reshape(-1, seg_cols, 1 if planar else 3)
                block = seg[rs - r0 : re - r0, cs - c0 : ce - c0]
                if planar:
                    out[rs - row : re - row, cs - col : ce - col, p] = block[..., 0]
                else:
                    out[rs - row : re - row, cs - col : ce - col] = block
    return out


def bench_file(path: Path, reads: int, seed: int = 0) -> dict:
    import dask.array as da
    import tifffile
    import zarr

    from hemascope.io import open_slide

    slide = open_slide(path)
    level = slide.levels[0]
    rows, cols = slide.shape
    tif = tifffile.TiffFile(path)
    page = tif.series[0].levels[0].keyframe
    store = zarr.open(tif.series[0].aszarr(level=0), mode="r")
    aszarr = da.from_zarr(store)
    rng = np.random.default_rng(seed)
    positions = [(int(rng.integers(0, rows - 256)), int(rng.integers(0, cols - 256)))
                 for _ in range(reads)]
    reader = level.region_reader
    times: dict[str, list[float]] = {k: [] for k in
                                     ("read_region_cold", "read_region_warm", "tifffile_loop",
                                      "dask_aszarr")}
    methods = {
        "read_region_cold": lambda r, c: slide.read_region(0, r, c, 256, 256),
        "read_region_warm": lambda r, c: slide.read_region(0, r, c, 256, 256),
        "tifffile_loop": lambda r, c: tifffile_loop(page, tif.filehandle, r, c, 256),
        "dask_aszarr": lambda r, c: np.moveaxis(np.asarray(aszarr[:, r:r + 256, c:c + 256]), 0, -1)
        if aszarr.shape[0] == 3 else np.asarray(aszarr[r:r + 256, c:c + 256]),
    }
    twin = path.with_suffix(".ndpi")
    if twin.exists():
        import openslide

        other = openslide.OpenSlide(str(twin))
        times["openslide"] = []
        methods["openslide"] = lambda r, c: np.asarray(
            other.read_region((c, r), 0, (256, 256)))[..., :3]
    for r, c in positions[:3]:  # warm-up: page cache, imports, decoder set-up
        for fn in methods.values():
            fn(r, c)
    for i, (r, c) in enumerate(positions):
        names = list(methods)
        names = names[i % len(names):] + names[: i % len(names)]
        results = {}
        for name in names:
            if name == "read_region_cold":
                reader.clear_cache()  # outside the clock: freeing cached arrays is not a read
            start = time.perf_counter()
            results[name] = methods[name](r, c)
            times[name].append((time.perf_counter() - start) * 1000)
        ref = results["tifffile_loop"]
        for name, value in results.items():
            assert np.array_equal(value, ref), f"{name} differs from tifffile at {(r, c)}"
    out = {name: {"median_ms": statistics.median(v), "mean_ms": statistics.fmean(v)}
           for name, v in times.items()}
    base = out["tifffile_loop"]["median_ms"]
    for name in out:
        out[name]["vs_tifffile_loop"] = base / out[name]["median_ms"]
        if "openslide" in out:
            out[name]["vs_openslide"] = out["openslide"]["median_ms"] / out[name]["median_ms"]
    def best_of_3(fn):
        times, result = [], None
        for _ in range(3):
            reader.clear_cache()
            start = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - start)
        return min(times), result

    out["whole_level_hemascope_s"], whole = best_of_3(lambda: np.asarray(level))
    out["whole_level_tifffile_imread_s"], ref = best_of_3(lambda: tifffile.imread(path))
    out["whole_level_tifffile_imread_rgb_s"], ref = best_of_3(
        lambda: np.ascontiguousarray(np.moveaxis(tifffile.imread(path), 0, -1))
        if page.planarconfig == 2 else tifffile.imread(path)
    )
    assert np.array_equal(whole, ref)
    out["dask_tasks_level0"] = len(level.__dask_graph__())
    out["aszarr_chunks_level0"] = int(np.prod([len(c) for c in aszarr.chunks]))
    out["shape"] = [rows, cols]
    tif.close()
    slide.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--work", type=Path, default=Path("/tmp/hemascope-bench-strips"))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--files", default="planar_rows,jpeg_8row_strips,ndpi_intervals",
                        help="comma-separated subset of the replicas")
    args = parser.parse_args(argv)
    files = write_files(args.work)
    wanted = args.files.split(",")
    report = {name: bench_file(path, args.reads) for name, path in files.items() if name in wanted}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
