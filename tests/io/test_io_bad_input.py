"""Bad input gives one documented exception: never a traceback from a library, never zero-filled pixels."""

import json
import pickle

import numpy as np
import pytest
import tifffile
import zarr
from io_samples import patch_tile_table, smooth_image, tile_table, write_format
from PIL import Image

from hemascope.cli.main import main
from hemascope.errors import (
    CorruptSlideError,
    InvalidInputError,
    SlideNotFoundError,
    UnsupportedFormatError,
)
from hemascope.io import open_slide, write_pyramidal_tiff


def test_missing_file(tmp_path):
    with pytest.raises(SlideNotFoundError):
        open_slide(tmp_path / "nope.svs")


@pytest.mark.parametrize("content", [b"", b"hello world, not a slide\n", b"\x00" * 64])
def test_unsupported_files(tmp_path, content):
    path = tmp_path / "x.bin"
    path.write_bytes(content)
    with pytest.raises(UnsupportedFormatError):
        open_slide(path)


def test_plain_directory_and_zarr_without_multiscales(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(UnsupportedFormatError):
        open_slide(tmp_path / "d")
    zarr.open_group(str(tmp_path / "g.zarr"), mode="w").create_array(
        "0", shape=(3, 8, 8), dtype="u1"
    )
    with pytest.raises(UnsupportedFormatError):
        open_slide(tmp_path / "g.zarr")


@pytest.mark.parametrize(
    "data,kwargs",
    [
        (np.zeros((64, 64), np.uint8), {"photometric": "minisblack"}),
        (np.zeros((64, 64), np.uint16), {"photometric": "minisblack", "tile": (32, 32)}),
        (np.zeros((64, 64, 3), np.float32), {"photometric": "rgb"}),
        (np.zeros((64, 64, 3), np.int8), {"photometric": "rgb", "tile": (32, 32)}),
        (np.zeros((64, 64, 4), np.uint8), {"photometric": "separated", "tile": (32, 32)}),
        (
            np.zeros((64, 64), np.uint8),
            {"photometric": "palette", "colormap": np.zeros((3, 256), np.uint16)},
        ),
    ],
)
def test_non_rgb8_tiff(tmp_path, data, kwargs):
    path = tmp_path / "bad.tif"
    tifffile.imwrite(path, data, **kwargs)
    with pytest.raises(UnsupportedFormatError):
        open_slide(path)


@pytest.mark.parametrize("mode", ["L", "LA", "I;16"])
def test_non_rgb8_png(tmp_path, mode):
    path = tmp_path / "bad.png"
    Image.new(mode, (16, 16)).save(path)
    with pytest.raises(UnsupportedFormatError):
        open_slide(path)


def test_deep_colour_png_is_scaled_over_the_bits_it_uses(tmp_path):
    """A 12-bit camera picture in a 16-bit PNG opens as its 8-bit twin (PIL alone keeps the high
    byte: a black picture, values <= 15)."""
    import imagecodecs

    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 0], rgb[4:12, 4:12] = 230, (90, 40, 150)
    path = tmp_path / "deep.png"
    path.write_bytes(imagecodecs.png_encode(rgb.astype(np.uint16) * 16))
    pixels = np.asarray(open_slide(path).levels[0])
    assert np.abs(pixels.astype(int) - rgb).max() <= 1


@pytest.mark.parametrize("dtype,channels", [("u2", 3), ("u1", 1)])
def test_non_rgb8_ome_zarr(tmp_path, dtype, channels):
    from hemascope.io.write_zarr import _multiscale

    root = zarr.open_group(str(tmp_path / "b.zarr"), mode="w")
    root.create_array("0", shape=(channels, 32, 32), dtype=dtype)
    root.attrs["ome"] = {
        "version": "0.5",
        "multiscales": [_multiscale("b", "cyx", [1.0], "0.5", True)],
    }
    with pytest.raises(UnsupportedFormatError):
        open_slide(tmp_path / "b.zarr")


def test_zero_size_zarr_level(tmp_path):
    from hemascope.io.write_zarr import _multiscale

    root = zarr.open_group(str(tmp_path / "z.zarr"), mode="w")
    root.create_array("0", shape=(3, 0, 32), dtype="u1")
    root.attrs["ome"] = {
        "version": "0.5",
        "multiscales": [_multiscale("z", "cyx", [1.0], "0.5", True)],
    }
    with pytest.raises(CorruptSlideError):
        open_slide(tmp_path / "z.zarr")


@pytest.mark.parametrize("page", [0, 1])
def test_zero_size_tiff_level(tmp_path, image, page):
    path = write_pyramidal_tiff(tmp_path / "z.tif", image, mpp=0.5, tile_size=256, ome=False)
    patch_tile_table(path, "ImageWidth", 0, 0, page=page)
    with pytest.raises(CorruptSlideError):
        open_slide(path)


@pytest.fixture
def jpeg_tiff(tmp_path, image):
    return write_pyramidal_tiff(tmp_path / "j.tif", image, mpp=0.5, tile_size=256, ome=False)


@pytest.mark.parametrize(
    "tag,index,value",
    [
        ("TileOffsets", 2, 10**9),
        ("TileOffsets", 1, 0),
        ("TileByteCounts", 3, 0),
        ("TileByteCounts", 0, 10**8),
    ],
)
def test_bad_tile_table_fails_at_open(jpeg_tiff, tag, index, value):
    patch_tile_table(jpeg_tiff, tag, index, value)
    with pytest.raises(CorruptSlideError):
        open_slide(jpeg_tiff)


def test_truncated_jpeg_tile_fails_at_read_not_grey(jpeg_tiff):
    _, counts = tile_table(jpeg_tiff)
    patch_tile_table(jpeg_tiff, "TileByteCounts", 1, counts[1] // 2)
    with open_slide(jpeg_tiff) as slide:  # the table is consistent: opening works
        assert slide.read_region(0, 0, 0, 64, 64).shape == (64, 64, 3)  # tile 0 is intact
        with pytest.raises(CorruptSlideError):
            slide.read_region(0, 0, 256, 64, 64)
        with pytest.raises(CorruptSlideError):
            slide.levels[0][:64, 256:320].compute()


def test_truncated_file_fails_at_open(jpeg_tiff):
    data = jpeg_tiff.read_bytes()
    jpeg_tiff.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptSlideError):
        open_slide(jpeg_tiff)


def test_truncated_png_fails_at_read(tmp_path, image):
    path, *_ = write_format("png", tmp_path, image)
    path.write_bytes(path.read_bytes()[:-3000])
    slide = open_slide(path)
    with pytest.raises(CorruptSlideError):
        slide.read_region(0, 0, 0, 10, 10)


class _Payload:
    """Unpickling this creates a marker file: proof that nothing was unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_pickle_codec_is_refused_never_unpickled(tmp_path, version):
    from hemascope.io.write_zarr import _multiscale

    path = tmp_path / "evil.zarr"
    marker = tmp_path / "unpickled"
    (path / "0").mkdir(parents=True)
    ms = _multiscale("evil", "cyx", [1.0], version, True)
    chunk = pickle.dumps(np.array([_Payload(marker)], dtype=object))
    if version == "0.4":
        (path / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
        (path / ".zattrs").write_text(json.dumps({"multiscales": [ms]}))
        meta = {
            "zarr_format": 2, "shape": [3, 8, 8], "chunks": [3, 8, 8], "dtype": "|O",
            "compressor": None, "fill_value": None, "order": "C", "filters": [{"id": "pickle"}],
        }  # fmt: skip
        (path / "0" / ".zarray").write_text(json.dumps(meta))
        (path / "0" / "0.0.0").write_bytes(chunk)
    else:
        (path / "zarr.json").write_text(
            json.dumps(
                {
                    "zarr_format": 3,
                    "node_type": "group",
                    "attributes": {"ome": {"version": "0.5", "multiscales": [ms]}},
                }
            )
        )
        meta = {
            "zarr_format": 3, "node_type": "array", "shape": [3, 8, 8], "data_type": "uint8",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [3, 8, 8]}},
            "chunk_key_encoding": {"name": "default"}, "fill_value": 0,
            "codecs": [{"name": "numcodecs.pickle"}, {"name": "bytes"}],
        }  # fmt: skip
        (path / "0" / "zarr.json").write_text(json.dumps(meta))
        (path / "0" / "c").mkdir()
        (path / "0" / "c" / "0").write_bytes(chunk)
    with pytest.raises(UnsupportedFormatError, match="pickle"):
        open_slide(path)
    assert not marker.exists()


def test_bad_mpp_override(tmp_path, image):
    path, *_ = write_format("png", tmp_path, image)
    for bad in (0, -1, float("inf"), "abc"):
        with pytest.raises(InvalidInputError):
            open_slide(path, mpp=bad)


def test_read_region_arguments(tmp_path, image):
    path, *_ = write_format("ome-tiff", tmp_path, image)
    with open_slide(path) as slide:
        with pytest.raises(InvalidInputError):
            slide.read_region(9, 0, 0, 4, 4)
        with pytest.raises(InvalidInputError):
            slide.read_region(0, 0, 0, 0, 4)


def test_cli_info_bad_input_is_one_line_exit_2(tmp_path, capsys, jpeg_tiff):
    patch_tile_table(jpeg_tiff, "TileOffsets", 0, 10**9)
    for target in (tmp_path / "missing.tif", jpeg_tiff):
        assert main(["info", str(target)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("hemascope: error:") and "\n" not in err


def test_cli_info_text_and_json(tmp_path, capsys):
    path = write_pyramidal_tiff(
        tmp_path / "i.ome.tif", smooth_image(300, 600), mpp=0.25, tile_size=128
    )
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "ome-tiff" in out and "0.25" in out and "128 x 128" in out and "300 x 600" in out
    assert main(["info", str(path), "--json", "--mpp", "0.5"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "ome-tiff" and info["mpp"] == 0.5 and info["mpp_source"] == "user"
    assert [lv["rows"] for lv in info["levels"]] == [300, 150, 75, 38]
    assert info["levels"][2]["mpp"] == 2.0 and info["tile_size"] == [128, 128]


def test_bare_zarr_array_is_unsupported(tmp_path):
    zarr.create_array(str(tmp_path / "a.zarr"), shape=(3, 8, 8), dtype="u1")
    with pytest.raises(UnsupportedFormatError):
        open_slide(tmp_path / "a.zarr")


def test_reading_a_closed_slide_is_a_clear_error(tmp_path, image):
    from hemascope.errors import SlideError

    path, *_ = write_format("ome-tiff", tmp_path, image)
    slide = open_slide(path)
    slide.close()
    with pytest.raises(SlideError, match="closed"):
        slide.read_region(0, 0, 0, 8, 8)
    with pytest.raises(SlideError, match="closed"):
        slide.levels[0][:8, :8].compute()


def test_colour_pictures_of_other_modes_open_as_rgb(tmp_path):
    """Palette and partly transparent PNGs and CMYK JPEGs are colour pictures: they open as RGB,
    transparent pixels on white glass (they were refused or read with black there)."""
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[..., 0] = 200
    rgb[8:24, 8:24] = (90, 40, 150)
    Image.fromarray(rgb).convert("P").save(tmp_path / "palette.png")
    rgba = np.dstack([rgb, np.full((32, 32), 255, np.uint8)])
    rgba[:4] = (0, 0, 0, 0)  # transparent rows, black underneath
    Image.fromarray(rgba).save(tmp_path / "cut_out.png")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg")
    for name in ("palette.png", "cut_out.png", "cmyk.jpg"):
        pixels = np.asarray(open_slide(tmp_path / name).levels[0])
        assert pixels.shape == (32, 32, 3), name
        assert np.abs(pixels[16, 16].astype(int) - (90, 40, 150)).max() <= 12, name
    assert (np.asarray(open_slide(tmp_path / "cut_out.png").levels[0])[:4] == 255).all()


@pytest.mark.parametrize("planar", [False, True])
def test_deep_rgb_tiff_picture_opens_as_its_8bit_twin(tmp_path, planar):
    """A 12-bit camera picture in a 16-bit RGB TIFF (chunky or planar) is read whole and scaled
    over the bits it uses, keeping the file's pixel size; it was refused as 'uint16 pixels'."""
    rgb = np.zeros((64, 96, 3), np.uint8)
    rgb[..., 0], rgb[16:48, 24:72] = 230, (90, 40, 150)
    deep = rgb.astype(np.uint16) * 16
    data = np.moveaxis(deep, -1, 0) if planar else deep
    kwargs = {"planarconfig": "separate"} if planar else {}
    tifffile.imwrite(tmp_path / "cam.tif", data, photometric="rgb", resolution=(1e4 / 0.08, 1e4 / 0.08),
                     resolutionunit="CENTIMETER", **kwargs)
    slide = open_slide(tmp_path / "cam.tif")
    assert np.abs(np.asarray(slide.levels[0]).astype(int) - rgb).max() <= 1
    assert slide.mpp == pytest.approx(0.08, rel=1e-3)
