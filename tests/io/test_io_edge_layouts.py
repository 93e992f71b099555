"""Replicas of real files other tools write, at the edges where hemascope used to fail."""

import time

import numpy as np
import pytest
import tifffile
from io_samples import (
    patch_tile_table,
    point_last_ifd_to,
    set_short_tag_value,
    set_tag_code,
    smooth_image,
    tile_table,
    write_format,
    write_philips,
    write_svs,
    zero_half_of_segment,
)

from hemascope.errors import CorruptSlideError, UnsupportedFormatError
from hemascope.io import open_slide


def test_imagej_rgb_tiff_without_compression_tag(tmp_path, image):
    path = tmp_path / "imagej.tif"
    tifffile.imwrite(path, image, imagej=True, photometric="rgb")
    set_tag_code(path, "Compression", 65001)  # hidden: readers must assume "none"
    with tifffile.TiffFile(path) as tif:
        assert "Compression" not in tif.pages[0].tags
    with open_slide(path) as slide:
        assert slide.metadata["compression"] == "none"
        np.testing.assert_array_equal(np.asarray(slide.levels[0]), image)


def test_unknown_compression_is_unsupported_not_damaged(tmp_path, image):
    path, _, _ = write_format("tiff", tmp_path, image)
    with tifffile.TiffFile(path) as tif:
        pages = range(len(tif.pages))
    set_short_tag_value(path, "Compression", 52479, pages=pages)
    with pytest.raises(UnsupportedFormatError, match="unsupported compression"):
        open_slide(path)


@pytest.mark.parametrize("target", [0, -1], ids=["back-to-first", "to-itself"])
def test_ifd_chain_that_loops_fails_fast(tmp_path, image, target):
    path, _, _ = write_format("tiff", tmp_path, image)
    with tifffile.TiffFile(path) as tif:
        n_pages = len(tif.pages)
    point_last_ifd_to(path, target % n_pages)
    start = time.perf_counter()
    with pytest.raises(CorruptSlideError, match="circular"):
        open_slide(path)
    assert time.perf_counter() - start < 2.0


def test_philips_empty_tiles_are_background_and_mpp_from_xml(tmp_path):
    image = smooth_image(700, 900)
    path = write_philips(tmp_path / "philips.tiff", image, mm_per_px=0.00025)
    offsets, _ = tile_table(path)
    for tag in ("TileOffsets", "TileByteCounts"):
        patch_tile_table(path, tag, 1, 0)  # tile (0, 1): outside the scanned area
    with open_slide(path) as slide:
        assert slide.format == "philips-tiff"
        assert slide.mpp == pytest.approx(0.25)
        level0 = np.asarray(slide.levels[0])
        assert (level0[:256, 256:512] == 255).all()
        with tifffile.TiffFile(tmp_path / "philips.tiff") as tif:  # the same file, as tifffile
            page = tif.pages[0]
            data = page.decode(
                _segment(tmp_path / "philips.tiff", offsets[0], page), 0,
                jpegtables=page.jpegtables,
            )[0]
        np.testing.assert_array_equal(level0[:256, :256], data.reshape(256, 256, 3))
        assert slide.n_levels == 3


def _segment(path, offset, page):
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read(page.databytecounts[0])


def test_missing_tiles_outside_philips_files_stay_errors(tmp_path, image):
    path, _, _ = write_format("ome-tiff", tmp_path, image)
    for tag in ("TileOffsets", "TileByteCounts"):
        patch_tile_table(path, tag, 1, 0)
    with pytest.raises(CorruptSlideError, match="no data"):
        open_slide(path)


def _svs_with_damaged_tile(tmp_path):
    image = smooth_image(600, 700)
    path = write_svs(tmp_path / "damaged.svs", image)
    zero_half_of_segment(path, 1)  # tile (0, 1) of level 0; its end marker stays
    return path, image


def test_corrupt_jpeg_data_in_a_tile_raises(tmp_path):
    path, _ = _svs_with_damaged_tile(tmp_path)
    with open_slide(path) as slide:
        good = slide.read_region(0, 300, 0, 256, 256)  # tiles without damage still read
        assert good.shape == (256, 256, 3)
        with pytest.raises(CorruptSlideError, match="[Cc]orrupt JPEG"):
            slide.read_region(0, 0, 256, 64, 64)
        with pytest.raises(CorruptSlideError):
            slide.levels[0][:256, 256:512].compute()
        with pytest.raises(CorruptSlideError):  # through dask's scheduler too
            slide.levels[0][::2, ::2].compute()


def test_corrupt_jpeg_data_in_a_strip_raises(tmp_path):
    image = smooth_image(256, 300)
    path = tmp_path / "strips.tif"
    tifffile.imwrite(path, image, photometric="rgb", compression="jpeg", rowsperstrip=64)
    zero_half_of_segment(path, 2)
    with open_slide(path) as slide:
        np.asarray(slide.levels[0][:64])
        with pytest.raises(CorruptSlideError, match="[Cc]orrupt JPEG"):
            np.asarray(slide.levels[0][128:192])


def test_strict_decoding_keeps_pixels_identical_to_tifffile(tmp_path):
    image = smooth_image(600, 700)
    for photometric in ("rgb", "ycbcr"):
        path = tmp_path / f"{photometric}.tif"
        tifffile.imwrite(path, image, photometric=photometric, compression="jpeg",
                         tile=(256, 256))
        with open_slide(path) as slide:
            np.testing.assert_array_equal(np.asarray(slide.levels[0]), tifffile.imread(path))


def test_jpeg_tile_claiming_a_huge_image_is_refused(tmp_path):
    """A tile whose JPEG header claims more pixels than the tile is a decompression bomb."""
    import imagecodecs

    big = imagecodecs.jpeg8_encode(np.zeros((512, 512, 3), np.uint8), level=50)
    path = tmp_path / "bomb.tif"
    tifffile.imwrite(path, smooth_image(256, 256), photometric="rgb", compression="jpeg",
                     tile=(256, 256), metadata=None)
    offsets, counts = tile_table(path)
    with open(path, "ab") as fh:
        start = fh.tell()
        fh.write(big)
    patch_tile_table(path, "TileOffsets", 0, start)
    patch_tile_table(path, "TileByteCounts", 0, len(big))
    with open_slide(path) as slide, pytest.raises(CorruptSlideError, match="claims"):
        slide.read_region(0, 0, 0, 16, 16)


def test_strict_jpeg_without_simplejpeg_uses_the_padding_check(monkeypatch):
    """The fallback (simplejpeg missing) still catches entropy data that ends too early."""
    import sys

    import imagecodecs

    from hemascope.io.strict_jpeg import strict_jpeg

    monkeypatch.setitem(sys.modules, "simplejpeg", None)  # import fails as if not installed
    data = bytearray(imagecodecs.jpeg8_encode(smooth_image(256, 256), level=90))
    assert strict_jpeg(bytes(data), "tile") is None
    n = len(data)
    data[n // 2 : n - 2] = b"\x00" * (n - 2 - n // 2)
    with pytest.raises(CorruptSlideError, match="premature end"):
        strict_jpeg(bytes(data), "tile")


def test_one_failed_openslide_read_does_not_poison_the_slide(tmp_path):
    from hemascope.io.read_openslide import open_with_openslide

    path, _ = _svs_with_damaged_tile(tmp_path)
    with open_with_openslide(path) as slide:
        smallest = slide.n_levels - 1
        with pytest.raises(CorruptSlideError, match="level 0") as info:
            slide.read_region(0, 0, 256, 64, 64)
        assert "Corrupt JPEG" in str(info.value)
        thumb = slide.read_region(smallest, 0, 0, 32, 32)  # later reads still work
        assert thumb.shape == (32, 32, 3)
        np.testing.assert_array_equal(
            slide.read_region(0, 300, 0, 64, 64), tifffile.imread(path)[300:364, :64]
        )


@pytest.mark.parametrize(
    "layout",
    [
        {"planarconfig": "separate", "rowsperstrip": 1, "compression": "zlib"},
        {"planarconfig": "separate", "rowsperstrip": 1},
        {"planarconfig": "contig", "rowsperstrip": 8, "compression": "jpeg"},
        {"planarconfig": "contig", "rowsperstrip": 5, "compression": "zlib"},
        {"planarconfig": "separate", "tile": (64, 64), "compression": "zlib"},
    ],
    ids=["planar-row-strips-zlib", "planar-row-strips-raw", "jpeg-8-row-strips",
         "odd-strips", "planar-tiles"],
)
def test_strip_and_planar_layouts_read_directly_and_exactly(tmp_path, layout):
    from hemascope.io.lazy import DirectReadLevel

    image = smooth_image(700, 900)
    data = np.moveaxis(image, -1, 0) if layout["planarconfig"] == "separate" else image
    path = tmp_path / "strips.tif"
    tifffile.imwrite(path, data, photometric="rgb", **layout)
    expected = tifffile.imread(path)
    expected = np.moveaxis(expected, 0, -1) if expected.shape[0] == 3 else expected
    with open_slide(path) as slide:
        level = slide.levels[0]
        assert isinstance(level, DirectReadLevel)
        if "tile" not in layout:
            assert min(level.chunksize[:2]) >= 256  # strips grouped: few dask tasks
        np.testing.assert_array_equal(np.asarray(level), expected)
        np.testing.assert_array_equal(slide.read_region(0, 333, 101, 200, 300),
                                      expected[333:533, 101:401])
        np.testing.assert_array_equal(level[5:600:3, 7:800:2].compute(),
                                      expected[5:600:3, 7:800:2])


@pytest.mark.parametrize("compression", ["webp", "zlib", "zstd", "lzw"])
def test_damaged_tiles_of_other_codecs_raise(tmp_path, compression):
    image = smooth_image(512, 512)
    path = tmp_path / f"{compression}.tif"
    tifffile.imwrite(path, image, photometric="rgb", compression=compression, tile=(256, 256))
    zero_half_of_segment(path, 1)
    with open_slide(path) as slide:
        np.testing.assert_array_equal(slide.read_region(0, 256, 0, 256, 256), image[256:, :256])
        with pytest.raises(CorruptSlideError, match="segment 1"):
            slide.read_region(0, 0, 256, 256, 256)


@pytest.mark.parametrize("tiled", [True, False], ids=["tiled", "stripped"])
def test_a_level_claiming_a_million_pixels_square_fails_fast(tmp_path, image, tiled):
    path = tmp_path / "claims.tif"
    layout = {"tile": (256, 256)} if tiled else {"rowsperstrip": 600}
    tifffile.imwrite(path, image, photometric="rgb", compression="zlib", **layout)
    for tag in ("ImageWidth", "ImageLength"):
        patch_tile_table(path, tag, 0, 10**6)
    start = time.perf_counter()
    with pytest.raises((CorruptSlideError, UnsupportedFormatError)):
        open_slide(path)
    assert time.perf_counter() - start < 2.0


def test_ndpi_restart_intervals_read_exactly_like_tifffile_and_openslide(tmp_path):
    from io_samples import write_ndpi_replica

    from hemascope.io.lazy import DirectReadLevel

    image = smooth_image(512, 1024)
    path = write_ndpi_replica(tmp_path / "replica-ndpi.tif", image)
    expected = tifffile.imread(path)
    with open_slide(path) as slide:
        assert slide.format == "ndpi" and slide.mpp == pytest.approx(0.23)
        level = slide.levels[0]
        assert isinstance(level, DirectReadLevel) and level.chunksize[0] >= 256
        np.testing.assert_array_equal(np.asarray(level), expected)
        np.testing.assert_array_equal(slide.read_region(0, 100, 300, 200, 333),
                                      expected[100:300, 300:633])
    openslide = pytest.importorskip("openslide")
    named = tmp_path / "replica.ndpi"
    named.write_bytes(path.read_bytes())
    with openslide.OpenSlide(str(named)) as other:
        region = np.asarray(other.read_region((300, 100), 0, (333, 200)))[..., :3]
    np.testing.assert_array_equal(region, expected[100:300, 300:633])


def test_corrupt_ndpi_interval_raises(tmp_path):
    from io_samples import write_ndpi_replica

    path = write_ndpi_replica(tmp_path / "replica-ndpi.tif", smooth_image(512, 1024), levels=1)
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        start, count = page.dataoffsets[20], page.databytecounts[20]
    with open(path, "r+b") as fh:
        fh.seek(start + count // 4)
        fh.write(b"\x00" * (count // 2))
    with open_slide(path) as slide:
        slide.read_region(0, 400, 0, 64, 64)
        with pytest.raises(CorruptSlideError, match="[Cc]orrupt JPEG"):
            np.asarray(slide.levels[0])


def test_unknown_photometric_is_unsupported_not_damaged(tmp_path, image):
    path, _, _ = write_format("tiff", tmp_path, image)
    set_short_tag_value(path, "PhotometricInterpretation", 99)
    with pytest.raises(UnsupportedFormatError, match="photometric 99"):
        open_slide(path)
