"""OME-Zarr layouts other tools write, and hostile stores: documented errors, bounded work."""

import json
import os
import shutil
import time

import numpy as np
import pytest
import zarr
from io_samples import smooth_image

from hemascope.errors import CorruptSlideError, SlideError, UnsupportedFormatError
from hemascope.io import open_slide, write_ome_zarr


def _v04(tmp_path, name="z.ome.zarr"):
    return write_ome_zarr(tmp_path / name, smooth_image(300, 400), mpp=0.35, version="0.4",
                          chunks=128)


def _attrs_path(store):
    return store / ".zattrs"


def _edit_attrs(store, edit):
    attrs = json.loads(_attrs_path(store).read_text())
    edit(attrs["multiscales"][0])
    _attrs_path(store).write_text(json.dumps(attrs))


def test_bioformats2raw_layout_opens_image_zero(tmp_path):
    root = tmp_path / "b2r.zarr"
    root.mkdir()
    (root / ".zgroup").write_text('{"zarr_format": 2}')
    (root / ".zattrs").write_text('{"bioformats2raw.layout": 3}')
    image = smooth_image(300, 400)
    write_ome_zarr(root / "0", image, mpp=0.5, version="0.4", chunks=128)
    with open_slide(root) as slide:
        assert slide.metadata["layout"] == "bioformats2raw"
        assert slide.mpp == pytest.approx(0.5)
        np.testing.assert_array_equal(np.asarray(slide.levels[0]), image)


def test_ngff_v01_multiscales_without_axes(tmp_path):
    """NGFF v0.1: no axes (always 5-D tczyx), datasets with paths only."""
    image = smooth_image(200, 260)
    root = zarr.open_group(str(tmp_path / "v01.zarr"), mode="w", zarr_format=2)
    data = np.moveaxis(image, 2, 0)[None, :, None]  # t c z y x
    root.create_array("0", shape=data.shape, chunks=(1, 3, 1, 128, 128), dtype="u1",
                      chunk_key_encoding={"name": "v2", "separator": "."})[:] = data
    root.attrs["multiscales"] = [{"version": "0.1", "datasets": [{"path": "0"}]}]
    with open_slide(tmp_path / "v01.zarr") as slide:
        assert slide.metadata["ngff_version"] == "0.1"
        np.testing.assert_array_equal(np.asarray(slide.levels[0]), image)


@pytest.mark.parametrize(
    "edit",
    [
        lambda ms: ms["datasets"][0]["coordinateTransformations"][0].update(scale=[]),
        lambda ms: ms["datasets"][0]["coordinateTransformations"][0].update(scale=[1.0]),
        lambda ms: ms["datasets"][0]["coordinateTransformations"][0].update(scale=["a", "b", "c"]),
        lambda ms: ms["datasets"][0]["coordinateTransformations"][0].update(
            scale=[1.0, float("nan"), 1.0]),
        lambda ms: ms.update(datasets=[{"path": "0"}] * 100_000),
        lambda ms: ms.update(datasets=[]),
        lambda ms: ms.update(datasets=[{"path": "../elsewhere"}]),
        lambda ms: ms.update(datasets=[{"path": 7}]),
        lambda ms: ms.update(axes="not axes"),
        lambda ms: ms.update(axes=[{"name": 1}, {"name": 2}, {"name": 3}]),
    ],
    ids=["empty-scale", "short-scale", "string-scale", "nan-scale", "100k-datasets",
         "no-datasets", "dotdot-path", "int-path", "string-axes", "int-axis-names"],
)
def test_malformed_multiscales_are_documented_errors(tmp_path, edit):
    store = _v04(tmp_path)
    _edit_attrs(store, edit)
    start = time.perf_counter()
    with pytest.raises(SlideError):
        open_slide(store)
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize(
    "edit,error",
    [
        (lambda meta: meta.pop("shape"), CorruptSlideError),
        (lambda meta: meta.update(shape=["3", 300, 400]), CorruptSlideError),
        (lambda meta: meta.update(chunks=[3, 0, 128]), CorruptSlideError),
        (lambda meta: meta.update(shape=[3, 10**12, 10**12]), UnsupportedFormatError),
        (lambda meta: meta.update(chunks=[3, 2**15, 2**15]), UnsupportedFormatError),
    ],
    ids=["no-shape", "string-shape", "zero-chunks", "shape-1e12", "huge-chunks"],
)
def test_malformed_array_metadata_is_refused_fast(tmp_path, edit, error):
    store = _v04(tmp_path)
    meta_path = store / "0" / ".zarray"
    meta = json.loads(meta_path.read_text())
    edit(meta)
    meta_path.write_text(json.dumps(meta))
    start = time.perf_counter()
    with pytest.raises(error):
        open_slide(store)
    assert time.perf_counter() - start < 2.0


def test_level_linked_outside_the_store_is_refused(tmp_path):
    store = _v04(tmp_path)
    outside = _v04(tmp_path, "other.ome.zarr")
    shutil.rmtree(store / "1")
    os.symlink(outside / "1", store / "1")
    with pytest.raises(CorruptSlideError, match="outside"):
        open_slide(store)


def _a_chunk(store, level="0"):
    chunks = sorted(p for p in (store / level).rglob("*") if p.is_file() and p.name[0] != ".")
    return chunks[0]


def test_chunk_linked_outside_the_store_is_refused(tmp_path):
    store = _v04(tmp_path)
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\x01" * 1000)
    chunk = _a_chunk(store)
    chunk.unlink()
    os.symlink(secret, chunk)
    with open_slide(store) as slide, pytest.raises(CorruptSlideError, match="outside"):
        np.asarray(slide.levels[0][:128, :128])


@pytest.mark.parametrize("kind", ["dev-zero", "fifo"])
def test_chunks_that_are_special_files_are_refused(tmp_path, kind):
    store = _v04(tmp_path)
    chunk = _a_chunk(store)
    chunk.unlink()
    if kind == "fifo":
        os.mkfifo(chunk)
    else:
        os.symlink("/dev/zero", chunk)
    start = time.perf_counter()
    with pytest.raises(CorruptSlideError):
        with open_slide(store) as slide:
            np.asarray(slide.levels[0][:128, :128])
    assert time.perf_counter() - start < 2.0


def test_zstd_frame_claiming_a_terabyte_is_refused(tmp_path):
    import imagecodecs

    image = smooth_image(256, 256)
    root = zarr.open_group(str(tmp_path / "zstd.zarr"), mode="w")
    from numcodecs.zarr3 import Zstd  # noqa: F401 - the store must have a zstd codec

    arr = root.create_array("0", shape=(3, 256, 256), chunks=(3, 128, 128), dtype="u1",
                            compressors=[zarr.codecs.ZstdCodec()], dimension_names=["c", "y", "x"])
    arr[:] = np.moveaxis(image, 2, 0)
    root.attrs["ome"] = {"version": "0.5", "multiscales": [{
        "axes": [{"name": "c", "type": "channel"}, {"name": "y", "type": "space"},
                 {"name": "x", "type": "space"}],
        "datasets": [{"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": [1.0, 1.0, 1.0]}]}]}]}
    chunk = _a_chunk(tmp_path / "zstd.zarr")
    frame = bytearray(imagecodecs.zstd_encode(b"\x00" * 64))
    # a frame header claiming 2**40 bytes (8-byte content size field, single segment)
    bomb = bytes(frame[:4]) + bytes([0xE0]) + (2**40).to_bytes(8, "little") + b"\x00" * 16
    chunk.write_bytes(bomb)
    with open_slide(tmp_path / "zstd.zarr") as slide, pytest.raises(CorruptSlideError,
                                                                     match="claims"):
        np.asarray(slide.levels[0][:128, :128])


@pytest.mark.parametrize("damage", ["separator", "dangling"])
def test_level_with_none_of_its_chunks_is_an_error_not_blank(tmp_path, damage):
    store = _v04(tmp_path)
    level = store / "0"
    chunks = [p for p in level.rglob("*") if p.is_file() and p.name[0] != "."]
    for chunk in chunks:
        key = chunk.relative_to(level).as_posix()
        if damage == "separator":  # keys written with "." while the metadata says "/"
            chunk.rename(level / key.replace("/", "."))
        else:
            chunk.unlink()
            os.symlink(tmp_path / "gone" / key.replace("/", "_"), chunk)
    with pytest.raises(CorruptSlideError, match="none of the level's chunks"):
        open_slide(store)


def test_some_missing_chunks_stay_fill_values(tmp_path):
    store = _v04(tmp_path)
    _a_chunk(store).unlink()
    with open_slide(store) as slide:
        assert np.asarray(slide.levels[0]).shape == (300, 400, 3)


def test_blosc_chunk_claiming_gigabytes_is_refused(tmp_path):
    from numcodecs import Blosc

    image = smooth_image(256, 256)
    root = zarr.open_group(str(tmp_path / "blosc.zarr"), mode="w", zarr_format=2)
    arr = root.create_array("0", shape=(3, 256, 256), chunks=(3, 128, 128), dtype="u1",
                            compressors=Blosc(cname="lz4"),
                            chunk_key_encoding={"name": "v2", "separator": "/"})
    arr[:] = np.moveaxis(image, 2, 0)
    root.attrs["multiscales"] = [{"version": "0.4", "axes": [
        {"name": "c", "type": "channel"}, {"name": "y", "type": "space"},
        {"name": "x", "type": "space"}], "datasets": [{"path": "0"}]}]
    with open_slide(tmp_path / "blosc.zarr") as slide:  # valid blosc chunks read as before
        np.testing.assert_array_equal(np.asarray(slide.levels[0]), image)
    chunk = _a_chunk(tmp_path / "blosc.zarr")
    data = bytearray(chunk.read_bytes())
    data[4:8] = (2**31 - 1).to_bytes(4, "little")  # claimed decompressed size
    chunk.write_bytes(bytes(data))
    with open_slide(tmp_path / "blosc.zarr") as slide, pytest.raises(CorruptSlideError,
                                                                      match="claims"):
        np.asarray(slide.levels[0])
