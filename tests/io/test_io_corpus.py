"""A corpus of damaged files: opening and reading may only raise documented errors, never hang.

Every mutation is derived from small real files the test writes (pyramidal OME-TIFF with JPEG
tiles, pyramidal TIFF with zlib tiles, Aperio-layout SVS, BigTIFF, PNG, JPEG, OME-Zarr 0.5): byte
flips in the header/IFDs and anywhere, truncations, and tile tables pointing outside the file, at
nothing, or at too few bytes. Mutations of the tile tables must raise CorruptSlideError (tifffile
alone would zero-fill or grey-fill those tiles).
"""

import shutil
import struct
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import numpy as np
import pytest
import tifffile
from io_samples import patch_tile_table, smooth_image, tile_table, write_format, write_svs

from hemascope.errors import CorruptSlideError, HemascopeError
from hemascope.io import open_slide, write_ome_zarr, write_pyramidal_tiff

TIMEOUT_S = 30
MAX_READ = 512


def _bases(directory):
    image = smooth_image(300, 400)
    bases = {
        "ome-jpeg": write_pyramidal_tiff(directory / "b.ome.tif", image, mpp=0.5, tile_size=128),
        "tiff-zlib": write_pyramidal_tiff(
            directory / "b.tif", image, mpp=0.5, tile_size=128, compression="zlib", ome=False
        ),
        "svs": write_svs(directory / "b.svs", image),
        "bigtiff": write_format("bigtiff", directory, image)[0],
        "png": write_format("png", directory, image)[0],
        "jpeg": write_format("jpeg", directory, image)[0],
    }
    return image, bases


def _file_mutations(name, path, rng):
    data = path.read_bytes()
    out = []
    for k in range(4):
        buf = bytearray(data)
        for pos in rng.integers(0, min(len(data), 2048), 3):
            buf[pos] ^= int(rng.integers(1, 256))
        out.append((f"{name}-flip-header-{k}", bytes(buf)))
    for k in range(3):
        buf = bytearray(data)
        for pos in rng.integers(0, len(data), 8):
            buf[pos] ^= int(rng.integers(1, 256))
        out.append((f"{name}-flip-any-{k}", bytes(buf)))
    for frac in (0.02, 0.3, 0.6, 0.95):
        out.append((f"{name}-truncate-{frac}", data[: int(len(data) * frac)]))
    out.append((f"{name}-truncate-last-byte", data[:-1]))
    return out


def _tile_table_mutations(name, path):
    """(name, tag, index, value): each must raise CorruptSlideError."""
    offsets, counts = tile_table(path)
    size = path.stat().st_size
    tags = ("TileOffsets", "TileByteCounts") if len(offsets) > 1 or name != "png" else ()
    if not tags:
        return []
    last = len(offsets) - 1
    muts = [
        (f"{name}-offset-past-eof", tags[0], last, size + 100),
        (f"{name}-offset-zero", tags[0], 1, 0),
        (f"{name}-count-zero", tags[1], 2, 0),
        (f"{name}-count-past-eof", tags[1], 0, size),
    ]
    with tifffile.TiffFile(path) as tif:
        jpeg = tif.pages[0].compression == tifffile.COMPRESSION.JPEG
    if jpeg:
        muts.append((f"{name}-count-truncated-jpeg", tags[1], 1, counts[1] // 2))
    return muts


def _open_and_read(path):
    """Open, then read a bounded region of every level through both paths."""
    with open_slide(path) as slide:
        for level in range(slide.n_levels):
            rows, cols = slide.level_shapes[level]
            h, w = min(rows, MAX_READ), min(cols, MAX_READ)
            region = slide.read_region(level, 0, 0, h, w)
            assert region.shape == (h, w, 3) and region.dtype == np.uint8
            np.asarray(slide.levels[level][:h, :w])
    return "ok"


def _outcome(path):
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(_open_and_read, path)
        try:
            return future.result(timeout=TIMEOUT_S)
        except FutureTimeout:
            return "hang"
        except HemascopeError as exc:
            return type(exc).__name__
        except Exception as exc:  # noqa: BLE001 - recorded and reported as a failure
            return f"UNDOCUMENTED {type(exc).__name__}: {exc}"


def test_corpus_of_mutations_raises_only_documented_errors(tmp_path):
    rng = np.random.default_rng(20261122)
    src = tmp_path / "src"
    src.mkdir()
    _, bases = _bases(src)
    work = tmp_path / "work"
    work.mkdir()
    results, must_be_corrupt = {}, set()
    for name, path in bases.items():
        for mname, data in _file_mutations(name, path, rng):
            target = work / f"{mname}{''.join(path.suffixes)}"
            target.write_bytes(data)
            results[mname] = _outcome(target)
        if path.suffix in (".tif", ".svs"):
            for mname, tag, index, value in _tile_table_mutations(name, path):
                target = work / f"{mname}{''.join(path.suffixes)}"
                shutil.copy(path, target)
                try:
                    patch_tile_table(target, tag, index, value)
                except struct.error:  # value does not fit a SHORT table: not this mutation
                    continue
                results[mname] = _outcome(target)
                must_be_corrupt.add(mname)
    # OME-Zarr: damaged metadata and chunks
    zbase = write_ome_zarr(src / "b.ome.zarr", smooth_image(300, 400), mpp=0.5, chunks=128)
    chunk = zbase / "0" / "c" / "0" / "0" / "0"
    zmuts = {
        "zarr-root-json-truncated": (zbase / "zarr.json", lambda b: b[: len(b) // 2]),
        "zarr-array-json-truncated": (zbase / "0" / "zarr.json", lambda b: b[: len(b) // 3]),
        "zarr-array-json-garbage": (zbase / "0" / "zarr.json", lambda b: b"\xff\xfe" + b[2:]),
        "zarr-chunk-truncated": (chunk, lambda b: b[: len(b) // 2]),
        "zarr-chunk-flipped": (chunk, lambda b: bytes(x ^ 0x5A for x in b[:64]) + b[64:]),
        "zarr-chunk-empty": (chunk, lambda b: b""),
    }
    for mname, (file, mutate) in zmuts.items():
        target = work / f"{mname}.ome.zarr"
        shutil.copytree(zbase, target)
        victim = target / file.relative_to(zbase)
        victim.write_bytes(mutate(victim.read_bytes()))
        results[mname] = _outcome(target)
    must_be_corrupt |= {"zarr-chunk-truncated", "zarr-chunk-flipped", "zarr-chunk-empty"}

    assert len(results) >= 50
    bad = {k: v for k, v in results.items() if v == "hang" or v.startswith("UNDOCUMENTED")}
    assert not bad, bad
    not_caught = {
        k: results[k] for k in must_be_corrupt if results[k] != CorruptSlideError.__name__
    }
    assert not not_caught, not_caught
    # the corpus is not toothless: most mutations are detected
    detected = sum(v != "ok" for v in results.values())
    assert detected >= 0.6 * len(results), results


@pytest.mark.parametrize("size", [1, 7])
def test_tiny_truncations_of_each_format(tmp_path, size):
    _, bases = _bases(tmp_path)
    for name, path in bases.items():
        target = tmp_path / f"t-{name}{''.join(path.suffixes)}"
        target.write_bytes(path.read_bytes()[:size])
        outcome = _outcome(target)
        assert outcome in ("CorruptSlideError", "UnsupportedFormatError"), (name, outcome)
