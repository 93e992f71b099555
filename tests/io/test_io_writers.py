"""The streamed writers: pyramidal (OME-)TIFF and OME-Zarr, checked with tifffile and zarr directly."""

import numpy as np
import pytest
import tifffile
import zarr

from hemascope.errors import InvalidInputError
from hemascope.io import write_ome_zarr, write_pyramidal_tiff
from hemascope.io.tiles import TileSpool, downsample2, level_downsample, level_shapes_for


def _image(rows=900, cols=1300, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:rows, 0:cols]
    img = np.stack([(yy * 255 // rows), (xx * 255 // cols), ((yy + xx) % 256)], axis=-1)
    img = img.astype(np.uint8)
    patch = img[50:150, 60:200]
    patch[...] = rng.integers(0, 256, patch.shape, dtype=np.uint8)
    return img


class CountingSource:
    """A TileSource that records every region requested."""

    def __init__(self, image):
        self.image = image
        self.calls = []

    @property
    def shape(self):
        return self.image.shape[:2]

    def read(self, row, col, height, width):
        self.calls.append((row, col, height, width))
        return self.image[row : row + height, col : col + width]


def test_downsample2_box_filter_and_odd_edges():
    tile = np.arange(5 * 3 * 3, dtype=np.uint8).reshape(5, 3, 3)
    out = downsample2(tile)
    assert out.shape == (3, 2, 3)
    assert out[0, 0, 0] == round(np.mean(tile[:2, :2, 0]))
    assert out[2, 1, 0] == tile[4, 2, 0]  # replicated corner


def test_level_shapes_default_rule():
    assert level_shapes_for((2048, 2048), 512, None) == [(2048, 2048), (1024, 1024), (512, 512)]
    assert len(level_shapes_for((300, 200), 512, None)) == 3
    shapes = level_shapes_for((100_000, 100_000), 512, None)
    assert max(shapes[-1]) <= 512 and len(shapes) == 9
    assert level_downsample(shapes[0], shapes[-1]) == 256.0


def test_spool_round_trip(tmp_path):
    img = _image(300, 500)
    spool = TileSpool((300, 500), 128, directory=tmp_path)
    for r in range(0, 300, 128):
        for c in range(0, 500, 128):
            spool.put(r, c, img[r : r + 128, c : c + 128])
    assert np.array_equal(spool.read(0, 0, 300, 500), img)
    assert np.array_equal(spool.read(100, 130, 150, 300), img[100:250, 130:430])
    spool.close()
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("ome", [True, False])
def test_pyramidal_tiff_lossless_levels_and_scale(tmp_path, ome):
    img = _image()
    source = CountingSource(img)
    path = write_pyramidal_tiff(
        tmp_path / "a.tif", source, mpp=0.25, tile_size=256, compression="zlib", ome=ome
    )
    # every level-0 tile requested exactly once, nothing bigger than a tile
    assert len(source.calls) == len(set(source.calls)) == 4 * 6
    assert max(h for _, _, h, _ in source.calls) <= 256
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome == ome
        levels = tif.series[0].levels
        assert [lv.shape[:2] for lv in levels] == level_shapes_for((900, 1300), 256, None)
        assert np.array_equal(levels[0].asarray(), img)
        assert np.array_equal(levels[1].asarray(), downsample2(img))
        assert np.array_equal(levels[2].asarray(), downsample2(downsample2(img)))
        page = tif.pages[0]
        assert page.tilewidth == 256
        assert page.get_resolution(tifffile.RESUNIT.MICROMETER)[0] == pytest.approx(4.0)
        if ome:
            assert 'PhysicalSizeX="0.25"' in tif.ome_metadata
    assert [p.name for p in tmp_path.iterdir()] == ["a.tif"]  # spools removed


def test_pyramidal_tiff_jpeg_and_description(tmp_path):
    img = _image(600, 700)
    desc = "Aperio Image Library v12.0.0\r\n700x600 [0,0 700x600] (256x256) JPEG Q=90|AppMag = 40|MPP = 0.25"
    path = write_pyramidal_tiff(
        tmp_path / "b.svs", img, mpp=0.25, tile_size=256, ome=False, description=desc
    )
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].description.startswith("Aperio")
        assert tif.pages[0].compression == tifffile.COMPRESSION.JPEG
        assert np.abs(tif.pages[0].asarray().astype(int) - img).mean() < 6


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mpp": -1},
        {"mpp": float("nan")},
        {"mpp": 0.5, "tile_size": 100},
        {"mpp": 0.5, "compression": "webp2"},
        {"mpp": 0.5, "quality": 0},
        {"mpp": 0.5, "description": "x"},
    ],
)
def test_pyramidal_tiff_rejects_bad_arguments(tmp_path, kwargs):
    with pytest.raises(InvalidInputError):
        write_pyramidal_tiff(tmp_path / "c.tif", _image(64, 64), **kwargs)


@pytest.mark.parametrize(
    "image",
    [np.zeros((64, 64), np.uint8), np.zeros((64, 64, 3), np.uint16), np.zeros((0, 5, 3), np.uint8)],
)
def test_pyramidal_tiff_rejects_non_rgb8(tmp_path, image):
    with pytest.raises(InvalidInputError):
        write_pyramidal_tiff(tmp_path / "d.tif", image, mpp=0.5)


@pytest.mark.parametrize("version,fmt", [("0.5", 3), ("0.4", 2)])
def test_ome_zarr_image_and_labels(tmp_path, version, fmt):
    img = _image(700, 900)
    labels = np.zeros((700, 900), np.int32)
    labels[100:300, 200:500] = 7
    path = write_ome_zarr(
        tmp_path / "x.ome.zarr", img, mpp=0.5, version=version, labels={"cells": labels}, chunks=256
    )
    root = zarr.open_group(str(path), mode="r")
    assert root.metadata.zarr_format == fmt
    attrs = root.attrs["ome"] if version == "0.5" else root.attrs
    ms = attrs["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["c", "y", "x"]
    scales = [d["coordinateTransformations"][0]["scale"] for d in ms["datasets"]]
    assert scales == [[1.0, 0.5, 0.5], [1.0, 1.0, 1.0], [1.0, 2.0, 2.0]]
    assert np.array_equal(root["0"][:].transpose(1, 2, 0), img)
    assert np.array_equal(root["1"][:].transpose(1, 2, 0), downsample2(img))
    assert root["0"].chunks == (3, 256, 256)
    lab = root["labels/cells"]
    lab_attrs = lab.attrs["ome"] if version == "0.5" else lab.attrs
    assert "image-label" in lab_attrs
    assert np.array_equal(lab["0"][:], labels)
    assert np.array_equal(lab["1"][:], labels[::2, ::2])
    group_attrs = root["labels"].attrs["ome"] if version == "0.5" else root["labels"].attrs
    assert group_attrs["labels"] == ["cells"]


def test_ome_zarr_from_levels_and_overwrite(tmp_path):
    img = _image(300, 400)
    levels = [img, downsample2(img)]
    path = write_ome_zarr(tmp_path / "y.zarr", levels, mpp=None, chunks=128)
    root = zarr.open_group(str(path), mode="r")
    assert sorted(root.array_keys()) == ["0", "1"]
    with pytest.raises(InvalidInputError):
        write_ome_zarr(path, img, mpp=0.5)
    write_ome_zarr(path, img, mpp=0.5, overwrite=True, n_levels=1)
    assert sorted(zarr.open_group(str(path), mode="r").array_keys()) == ["0"]


def test_ome_zarr_rejects_float_labels(tmp_path):
    with pytest.raises(InvalidInputError):
        write_ome_zarr(
            tmp_path / "z.zarr", _image(64, 64), mpp=0.5, labels={"p": np.zeros((64, 64))}
        )


class PatternSource:
    """A 2048 x 3072 TileSource computed on demand (18 MB if it were ever held whole)."""

    shape = (2048, 3072)

    def read(self, row, col, height, width):
        tile = np.empty((height, width, 3), np.uint8)
        tile[..., 0] = (row // 7) % 256
        tile[..., 1] = (col // 5) % 256
        tile[..., 2] = (np.arange(height)[:, None] * 3 + row) % 256
        return tile


def test_pyramidal_tiff_streams_in_bounded_memory(tmp_path):
    import tracemalloc

    tracemalloc.start()
    try:
        write_pyramidal_tiff(
            tmp_path / "m.tif", PatternSource(), mpp=0.5, tile_size=256, compression="zlib"
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # level 0 is 18 MB, level 1 4.5 MB: holding either would exceed this
    assert peak < 4 * 2**20, peak
    with tifffile.TiffFile(tmp_path / "m.tif") as tif:
        levels = tif.series[0].levels
        assert len(levels) == 5  # 2048x3072 ... 128x192
        expected = PatternSource().read(1024, 2048, 256, 256)
        assert np.array_equal(levels[0].asarray()[1024:1280, 2048:2304], expected)


def test_pyramidal_tiff_progress_and_cancel(tmp_path):
    import threading

    from hemascope.errors import Cancelled

    calls = []
    write_pyramidal_tiff(
        tmp_path / "p.tif",
        _image(600, 700),
        mpp=0.5,
        tile_size=256,
        progress=lambda *a: calls.append(a),
    )
    # 3x3 + 2x2 + 1 tiles over three levels
    assert calls[-1][:2] == (14, 14) and [c[0] for c in calls] == list(range(1, 15))

    cancel = threading.Event()

    def progress(done, total, message):
        if done == 5:
            cancel.set()

    with pytest.raises(Cancelled):
        write_pyramidal_tiff(
            tmp_path / "c.tif",
            _image(600, 700),
            mpp=0.5,
            tile_size=256,
            progress=progress,
            cancel=cancel,
        )
    assert not list(tmp_path.glob("c.tif")) and not list(tmp_path.glob(".hemascope-spool-*"))


def test_ome_zarr_progress_and_cancel(tmp_path):
    import threading

    from hemascope.errors import Cancelled

    calls = []
    labels = {"cells": np.zeros((300, 400), np.int32)}
    write_ome_zarr(tmp_path / "p.zarr", _image(300, 400), mpp=0.5, labels=labels, chunks=128,
                   progress=lambda *a: calls.append(a))  # fmt: skip
    # 3 image levels (300x400, 150x200, 75x100) and 3 label levels
    assert calls[-1][:2] == (6, 6) and [c[0] for c in calls] == list(range(7))

    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        write_ome_zarr(tmp_path / "c.zarr", _image(300, 400), mpp=0.5, cancel=cancel)
    assert not (tmp_path / "c.zarr").exists()
