"""Seeds and seeded mutations of every file format hemascope reads (used by ``fuzz_cases``).

:func:`write_seeds` writes small valid files; :func:`make_cases` copies and mutates them: byte
flips, truncations, TIFF tag values and counts, next-IFD loops, JSON structure and hostile values
(NaN, 1e400, 2,000-deep nesting, wrong types), zarr metadata, chunks replaced by links to
``/dev/zero``, FIFOs, directories or files outside the store, zstd frames claiming 2**40 bytes,
renamed chunk keys, TOML values of the wrong type.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

SLIDE_KINDS = ("tiff", "bigtiff", "ome-tiff", "svs", "strips", "planar", "zarr-0.4", "zarr-0.5",
               "png", "jpeg")
USER_KINDS = ("geojson", "card", "config")
KINDS = SLIDE_KINDS + USER_KINDS


@dataclass
class Case:
    """One fuzz input."""

    kind: str
    path: str
    mutation: str


# --- seeds ----------------------------------------------------------------------------------
def _image(rows: int = 384, cols: int = 448):
    import numpy as np

    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    img = np.stack([128 + 100 * np.sin(yy / 37), 128 + 100 * np.cos(xx / 53),
                    128 + 60 * np.sin((yy + xx) / 71)], axis=-1)
    return img.astype(np.uint8)


def write_seeds(directory: Path) -> dict[str, Path]:
    """Small valid files of every kind (the fuzz seeds)."""
    import numpy as np
    import tifffile
    from PIL import Image

    from hemascope.io import write_ome_zarr, write_pyramidal_tiff

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    img = _image()
    seeds = {
        "tiff": write_pyramidal_tiff(d / "seed.tif", img, mpp=0.5, tile_size=128,
                                     compression="jpeg", ome=False),
        "ome-tiff": write_pyramidal_tiff(d / "seed.ome.tif", img, mpp=0.25, tile_size=128,
                                         compression="zlib"),
        "zarr-0.4": write_ome_zarr(d / "seed04.ome.zarr", img, mpp=0.3, version="0.4",
                                   chunks=128),
        "zarr-0.5": write_ome_zarr(d / "seed05.ome.zarr", img, mpp=0.3, version="0.5",
                                   chunks=128),
    }
    seeds["bigtiff"] = d / "seed-big.tif"
    tifffile.imwrite(seeds["bigtiff"], img, bigtiff=True, tile=(128, 128), photometric="rgb",
                     compression="zlib")
    seeds["svs"] = d / "seed.svs"
    desc = "Aperio Image Library v12.0.15\r\n448x384 (128x128) JPEG Q=90|AppMag = 40|MPP = 0.25"
    with tifffile.TiffWriter(seeds["svs"]) as tw:
        tw.write(img, tile=(128, 128), description=desc, photometric="rgb", compression="jpeg")
        tw.write(img[::4, ::4].copy(), description=desc, photometric="rgb", compression="jpeg")
    seeds["strips"] = d / "seed-strips.tif"
    tifffile.imwrite(seeds["strips"], img, photometric="rgb", compression="jpeg", rowsperstrip=8)
    seeds["planar"] = d / "seed-planar.ome.tif"
    tifffile.imwrite(seeds["planar"], np.moveaxis(img, -1, 0), photometric="rgb",
                     planarconfig="separate", rowsperstrip=1, compression="zlib")
    seeds["png"] = d / "seed.png"
    Image.fromarray(img).save(seeds["png"])
    seeds["jpeg"] = d / "seed.jpg"
    Image.fromarray(img).save(seeds["jpeg"], quality=90)
    seeds["geojson"] = d / "seed.geojson"
    seeds["geojson"].write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "a", "geometry": {"type": "Polygon", "coordinates": [
            [[0, 0], [10, 0], [10, 10], [0, 0]]]},
         "properties": {"objectType": "detection", "classification": {
             "name": "Blast", "color": [255, 0, 0]}, "measurements": {"Area": 3.5}}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [5, 6]},
         "properties": {"objectType": "annotation"}}]}))
    seeds["card"] = d / "seed-card.json"
    seeds["card"].write_text(json.dumps({
        "name": "m", "version": "1", "classes": ["a", "b", "c"], "input_size": 64, "mpp": 0.5,
        "architecture": "cellnet", "arch_params": {"widths": [16, 32], "dropout": 0.1},
        "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "temperature": 1.5,
        "weights": "m.safetensors", "sha256": "ab" * 32, "metrics": {"acc": 0.9}}))
    seeds["config"] = d / "seed.toml"
    seeds["config"].write_text(
        'segmenter = "classical"\nmpp = 0.25\nmin_confidence = 0.5\n'
        "roi_um = [[0, 0], [0, 500], [500, 500], [500, 0]]\nbatch_size = 64\n"
    )
    return {k: Path(v) for k, v in seeds.items()}


# --- mutations ------------------------------------------------------------------------------
_INTERESTING = [0, 1, 2, 7, 255, 256, 65535, 2**31 - 1, 2**32 - 1, 10**6, 52479, 34712, 8]


def _mutate_bytes(data: bytearray, rng: random.Random) -> str:
    choice = rng.randrange(6)
    n = len(data)
    if choice == 0:
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(n)] = rng.randrange(256)
        return "byte-flips"
    if choice == 1:
        del data[rng.randrange(n // 8, n):]
        return "truncate"
    if choice == 2:
        start = rng.randrange(n)
        length = rng.randint(1, max(1, n // 16))
        data[start : start + length] = bytes(min(length, n - start))
        return "zero-range"
    if choice == 3:
        start = rng.randrange(n)
        data[start:start] = rng.randbytes(rng.randint(1, 64))
        return "insert"
    if choice == 4:
        pos = rng.randrange(max(1, n - 4))
        value = rng.choice(_INTERESTING) & 0xFFFFFFFF
        data[pos : pos + 4] = struct.pack("<I", value)
        return "int32-field"
    start = rng.randrange(n)
    length = rng.randint(1, max(1, n // 4))
    data[start : start + length] = rng.randbytes(min(length, n - start))
    return "random-range"


def _tiff_entries(data: bytes) -> list[tuple[int, int, int]]:
    """(entry offset, tag, type) of every IFD entry in the main chain of a little-endian TIFF."""
    if data[:2] != b"II":
        return []
    big = data[2:4] == b"+\x00"
    entries, seen = [], set()
    offset = struct.unpack_from("<Q" if big else "<I", data, 8 if big else 4)[0]
    while 0 < offset < len(data) - 16 and offset not in seen and len(seen) < 64:
        seen.add(offset)
        count = struct.unpack_from("<Q" if big else "<H", data, offset)[0]
        size, head = (20, 8) if big else (12, 2)
        if count > 1000 or offset + head + count * size + 8 > len(data):
            break
        for i in range(count):
            pos = offset + head + i * size
            tag, typ = struct.unpack_from("<HH", data, pos)
            entries.append((pos, tag, typ))
        nxt = offset + head + count * size
        entries.append((nxt, -1, 16 if big else 4))  # the next-IFD pointer
        offset = struct.unpack_from("<Q" if big else "<I", data, nxt)[0]
    return entries


def _mutate_tiff(data: bytearray, rng: random.Random) -> str:
    entries = _tiff_entries(bytes(data))
    if not entries or rng.random() < 0.35:
        return _mutate_bytes(data, rng)
    big = data[2:4] == b"+\x00"
    pos, tag, typ = rng.choice(entries)
    value = rng.choice(_INTERESTING + [len(data), len(data) - 1, rng.randrange(len(data))])
    if tag == -1:  # next-IFD pointer: loops, self-references, garbage
        ifds = [p for p, t, _ in entries if t == -1]
        value = rng.choice([value, 8 if not big else 16] + [p - 2 for p in ifds])
        data[pos : pos + (8 if big else 4)] = struct.pack("<Q" if big else "<I",
                                                          value & (2**(64 if big else 32) - 1))
        return "next-ifd"
    field = pos + (12 if big else 8)
    width = 8 if big else 4
    if rng.random() < 0.3:  # the entry's count
        cpos = pos + 4
        data[cpos : cpos + width] = struct.pack("<Q" if big else "<I", value & (2**32 - 1))
        return f"tag{tag}-count"
    if typ == 3 and not big:
        data[field : field + 2] = struct.pack("<H", value & 0xFFFF)
    else:
        data[field : field + width] = struct.pack("<Q" if big else "<I", value & (2**32 - 1))
    return f"tag{tag}-value"


def _mutate_json_value(node, rng: random.Random, depth: int = 0):
    hostile = [None, True, -1, 0, 10**12, 1e400, float("nan"), float("-inf"), "x", [], {},
               [1, 2, 3], [[0, 0, 0]] * 3, {"a": 1}, "0" * 64, [0.5] * 1000]
    if isinstance(node, dict) and node and rng.random() < 0.8:
        key = rng.choice(list(node))
        if rng.random() < 0.2:
            del node[key]
        else:
            node[key] = _mutate_json_value(node[key], rng, depth + 1)
        return node
    if isinstance(node, list) and node and rng.random() < 0.8:
        i = rng.randrange(len(node))
        node[i] = _mutate_json_value(node[i], rng, depth + 1)
        return node
    if rng.random() < 0.1:  # deep nesting, spliced in as text by _dump_json
        return f"__DEEP_{rng.choice([50, 500, 2000])}__"
    return rng.choice(hostile)


def _dump_json(value, rng: random.Random) -> str:
    import re

    text = json.dumps(value, allow_nan=True)
    text = re.sub(r'"__DEEP_(\d+)__"', lambda m: "[" * int(m[1]) + "1" + "]" * int(m[1]), text)
    if rng.random() < 0.05:
        text = "[" * 3000 + "]" * 3000
    return text


def _mutate_zarr(store: Path, rng: random.Random) -> str:
    metas = sorted(p for p in store.rglob("*") if p.name in ("zarr.json", ".zattrs", ".zarray",
                                                              ".zgroup"))
    chunks = sorted(p for p in store.rglob("*") if p.is_file() and p not in metas)
    choice = rng.randrange(10)
    if choice <= 4 and metas:
        meta = rng.choice(metas)
        data = json.loads(meta.read_text())
        meta.write_text(_dump_json(_mutate_json_value(data, rng), rng))
        return f"json-{meta.name}"
    if choice == 5 and chunks:
        chunk = rng.choice(chunks)
        chunk.unlink()
        special = rng.choice(["dev-zero", "fifo", "outside", "dangling", "dir"])
        if special == "dev-zero":
            os.symlink("/dev/zero", chunk)
        elif special == "fifo":
            os.mkfifo(chunk)
        elif special == "outside":
            os.symlink(store.parent / "outside.bin", chunk)
        elif special == "dangling":
            os.symlink(store / "nowhere", chunk)
        else:
            chunk.mkdir()
        return f"chunk-{special}"
    if choice == 6:
        level = store / rng.choice(["0", "1"])
        if level.is_dir():
            shutil.rmtree(level)
            os.symlink(store.parent / "outside-level", level)
            return "level-outside"
    if choice == 7 and chunks:
        for chunk in chunks:  # chunk keys that no longer match the metadata
            if chunk.parent != store:
                chunk.rename(chunk.with_name("k" + chunk.name))
        return "keys-renamed"
    if chunks:
        chunk = rng.choice(chunks)
        data = bytearray(chunk.read_bytes() or b"\x00")
        if rng.random() < 0.3:
            data = bytearray(b"\x28\xb5\x2f\xfd\xe0" + (2**40).to_bytes(8, "little") + b"\0" * 8)
            chunk.write_bytes(bytes(data))
            return "zstd-bomb"
        label = _mutate_bytes(data, rng)
        chunk.write_bytes(bytes(data))
        return f"chunk-{label}"
    return "none"


def make_cases(seeds: dict[str, Path], directory: Path, n: int, seed: int = 0) -> list[Case]:
    """``n`` mutated cases, spread evenly over :data:`KINDS` (deterministic for a seed)."""
    rng = random.Random(seed)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "outside.bin").write_bytes(b"\x07" * 4096)
    outside_level = directory / "outside-level"
    if not outside_level.exists():
        shutil.copytree(seeds["zarr-0.4"] / "1", outside_level)
    cases = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        src = seeds[kind]
        target = directory / f"case{i:05d}-{kind}{''.join(src.suffixes)}"
        if src.is_dir():
            shutil.copytree(src, target, symlinks=True)
            mutation = _mutate_zarr(target, rng)
        elif kind in ("geojson", "card") and rng.random() < 0.7:
            data = json.loads(src.read_text())
            target.write_text(_dump_json(_mutate_json_value(data, rng), rng))
            mutation = "json-structure"
        elif kind == "config" and rng.random() < 0.7:
            mutation = "toml-value"
            lines = src.read_text().splitlines()
            j = rng.randrange(len(lines))
            key = lines[j].split("=")[0].strip()
            value = rng.choice(["[{a = 1, b = 2}, {a = 3, b = 4}, {a = 5, b = 6}]", "nan",
                                "inf", "-1", '"x"', "[]", "{a = 1}", "1e400", "true",
                                "[[0, 0], [0, nan], [1, 1]]", "99999999999999999999"])
            lines[j] = f"{key} = {value}"
            target.write_text("\n".join(lines) + "\n")
        else:
            data = bytearray(src.read_bytes())
            if kind in ("tiff", "bigtiff", "ome-tiff", "svs", "strips", "planar"):
                mutation = _mutate_tiff(data, rng)
            else:
                mutation = _mutate_bytes(data, rng)
            target.write_bytes(bytes(data))
        cases.append(Case(kind, str(target), mutation))
    return cases
