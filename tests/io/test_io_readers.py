"""open_slide round-trips every supported format from files the tests write."""

import json

import dask
import dask.array as da
import numpy as np
import pytest
import tifffile
from io_samples import smooth_image, write_format

from hemascope.io import open_slide, write_pyramidal_tiff
from hemascope.io.lazy import DirectReadLevel
from hemascope.io.read_openslide import open_with_openslide, rgba_on_white
from hemascope.io.tiles import downsample2

FORMATS = {
    # kind: (Slide.format, levels stored in the file, tile size)
    "ome-tiff": ("ome-tiff", True, [256, 256]),
    "ome-tiff-single": ("ome-tiff", False, [256, 256]),
    "tiff": ("tiff", True, [256, 256]),
    "bigtiff": ("tiff", False, [128, 128]),
    "svs": ("svs", True, [256, 256]),
    "ndpi": ("ndpi", False, None),
    "ome-zarr-0.4": ("ome-zarr", True, [256, 256]),
    "ome-zarr-0.5": ("ome-zarr", True, [256, 256]),
    "png": ("image", False, None),
    "jpeg": ("image", False, None),
    "webp": ("image", False, None),
    "plain-tiff": ("tiff", False, None),
}


@pytest.mark.parametrize("kind", list(FORMATS))
def test_round_trip(tmp_path, image, kind):
    fmt, stored_pyramid, tile = FORMATS[kind]
    path, mpp, lossless = write_format(kind, tmp_path, image)
    with open_slide(path) as slide:
        assert slide.format == fmt
        assert slide.shape == image.shape[:2]
        assert slide.metadata["pyramid"] == ("file" if stored_pyramid else "computed")
        assert slide.metadata["tile_size"] == tile
        if mpp is None:
            assert slide.mpp is None and slide.mpp_source is None
        else:
            assert slide.mpp == pytest.approx(mpp) and slide.mpp_source == "file"
        assert slide.n_levels >= 3
        assert slide.downsamples[:3] == [1.0, 2.0, 4.0]
        for level in slide.levels:
            assert isinstance(level, da.Array) and level.dtype == np.uint8 and level.shape[2] == 3
        if tile is not None:
            assert slide.levels[0].chunksize[:2] == tuple(tile)
        full = slide.read_region(0, 0, 0, *image.shape[:2])
        tol = 0 if lossless else 4
        assert np.abs(full.astype(int) - image).mean() <= tol
        assert np.array_equal(np.asarray(slide.levels[0]), full)
        level1 = np.asarray(slide.levels[1])
        assert level1.shape == downsample2(image).shape
        assert np.abs(level1.astype(int) - downsample2(image)).mean() <= tol + 1
        json.dumps(slide.metadata)  # plain JSON-able values


def test_plain_regions_of_tiled_levels_compute_without_the_scheduler(tmp_path, image):
    path, *_ = write_format("ome-tiff", tmp_path, image)
    with open_slide(path) as slide:
        level = slide.levels[0]
        keys = [
            np.s_[250:350, 300:520],
            np.s_[250:350, 300:520, 1:],
            np.s_[-40:, :70],
            np.s_[5:9],
        ]
        for key in keys:
            region = level[key]
            by_scheduler = dask.compute(region, scheduler="sync")[0]
            assert np.array_equal(by_scheduler, image[key])
            assert np.array_equal(region.compute(), by_scheduler)
            assert np.array_equal(np.asarray(region), by_scheduler)
        for key in (np.s_[10:200:3, 5:50], np.s_[7], np.s_[10:10, 0:5]):  # through dask
            assert type(level[key]) is da.Array
            assert np.array_equal(level[key].compute(), image[key])
        assert np.array_equal((level[0:4, 0:4] + 1).compute(), image[0:4, 0:4] + 1)

        def no_scheduler(*args, **kwargs):
            raise AssertionError("the scheduler ran")

        with dask.config.set(scheduler=no_scheduler):
            assert np.array_equal(level[100:612, 50:562].compute(), image[100:612, 50:562])
            with pytest.raises(AssertionError, match="the scheduler ran"):
                level[100:612:2, 50:562].compute()


def test_svs_and_ndpi_metadata(tmp_path, image):
    with open_slide(write_format("svs", tmp_path, image)[0]) as svs:
        assert svs.objective_power == 40.0
        assert svs.metadata["aperio"]["AppMag"] == 40
    with open_slide(write_format("ndpi", tmp_path, image)[0]) as ndpi:
        assert ndpi.objective_power == 20.0


def test_region_reads_match_dask_and_pad_white(tmp_path, image):
    path, *_ = write_format("ome-tiff", tmp_path, image)
    with open_slide(path) as slide:
        assert isinstance(slide.levels[0], DirectReadLevel)  # tiled levels: direct tile path
        region = slide.read_region(0, 250, 300, 100, 220)
        assert np.array_equal(region, image[250:350, 300:520])
        assert np.array_equal(region, slide.levels[0][250:350, 300:520].compute())
        edge = slide.read_region(0, -10, 650, 30, 100)
        assert np.array_equal(edge[10:, :50], image[:20, 650:])
        assert (edge[:10] == 255).all() and (edge[:, 50:] == 255).all()
        assert (slide.read_region(1, 5000, 5000, 8, 8) == 255).all()
        lvl2 = slide.read_region(2, 10, 20, 50, 60)
        assert np.array_equal(lvl2, np.asarray(slide.levels[2][10:60, 20:80]))


def test_user_mpp_overrides_file(tmp_path, image):
    path, *_ = write_format("tiff", tmp_path, image)
    with open_slide(path, mpp=0.21) as slide:
        assert slide.mpp == 0.21 and slide.mpp_source == "user"
        assert slide.level_mpp(1) == pytest.approx(0.42)
        assert slide.best_level_for_mpp(0.9) == 2


def test_screen_dpi_is_not_a_physical_scale(tmp_path, image):
    path = tmp_path / "dpi.tif"
    tifffile.imwrite(
        path, image, photometric="rgb", tile=(256, 256), resolution=(72, 72), resolutionunit="INCH"
    )
    with open_slide(path) as slide:
        assert slide.mpp is None


def test_planar_rgb_tiff(tmp_path, image):
    path = tmp_path / "planar.tif"
    tifffile.imwrite(
        path, np.moveaxis(image, -1, 0), photometric="rgb", planarconfig="separate", tile=(128, 128)
    )
    with open_slide(path) as slide:
        assert slide.shape == image.shape[:2]
        assert np.array_equal(slide.read_region(0, 0, 0, *image.shape[:2]), image)


def test_ome_zarr_reports_labels(tmp_path, image):
    from hemascope.io import write_ome_zarr

    labels = np.zeros(image.shape[:2], np.uint16)
    labels[10:50, 10:50] = 3
    path = write_ome_zarr(tmp_path / "l.zarr", image, mpp=0.5, labels={"cells": labels})
    with open_slide(path) as slide:
        assert slide.metadata["labels"] == ["cells"]
        assert slide.metadata["ngff_version"] == "0.5" and slide.metadata["zarr_format"] == 3


def test_openslide_backend_reads_generic_tiff(tmp_path, image):
    path, *_ = write_format("tiff", tmp_path, image)
    with open_with_openslide(path) as slide, open_slide(path) as ours:
        assert slide.format == "openslide"
        assert slide.metadata["vendor"] == "generic-tiff"
        assert slide.level_shapes == ours.level_shapes
        assert slide.mpp == pytest.approx(0.5)
        assert np.array_equal(slide.read_region(0, 100, 120, 300, 400), image[100:400, 120:520])
        assert np.array_equal(np.asarray(slide.levels[1]), np.asarray(ours.levels[1]))
        assert slide.levels[0].chunksize[:2] == (256, 256)


def test_rgba_on_white():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (10, 20, 30, 255)
    rgba[1, 1] = (0, 0, 0, 128)
    out = rgba_on_white(rgba)
    assert tuple(out[0, 0]) == (10, 20, 30)
    assert tuple(out[0, 1]) == (255, 255, 255)
    assert tuple(out[1, 1]) == (127, 127, 127)


def test_streamed_writer_output_opens_with_same_pixels(tmp_path):
    image = smooth_image(1030, 770)
    path = write_pyramidal_tiff(
        tmp_path / "w.ome.tif", image, mpp=0.5, tile_size=256, compression="zlib"
    )
    with open_slide(path) as slide:
        assert slide.level_shapes[-1][0] <= 256 or slide.n_levels == 3
        expected = image
        for level in range(slide.n_levels):
            assert np.array_equal(np.asarray(slide.levels[level]), expected)
            expected = downsample2(expected)


def test_openslide_backend_reads_aperio(tmp_path, image):
    path, *_ = write_format("svs", tmp_path, image)
    with open_with_openslide(path) as slide, open_slide(path) as ours:
        assert slide.metadata["vendor"] == "aperio"
        assert slide.objective_power == ours.objective_power == 40.0
        assert slide.mpp == pytest.approx(ours.mpp)
        assert slide.level_shapes == ours.level_shapes
        diff = slide.read_region(0, 0, 0, *image.shape[:2]).astype(int) - ours.read_region(
            0, 0, 0, *image.shape[:2]
        )
        assert np.abs(diff).mean() < 2  # same JPEG tiles, possibly different IDCT


def test_aszarr_layouts_group_and_array(tmp_path, image):
    """tifffile's zarr store layouts (group, array) open; planar RGB levels are direct reads."""
    from hemascope.io.read_tiff import _zarr_levels

    planar = np.moveaxis(image, -1, 0)
    path = tmp_path / "planar-pyramid.ome.tif"
    opts = {
        "photometric": "rgb",
        "planarconfig": "separate",
        "tile": (128, 128),
        "compression": "zlib",
    }
    with tifffile.TiffWriter(path, ome=True) as tw:
        tw.write(
            planar,
            subifds=2,
            metadata={"axes": "SYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5},
            **opts,
        )
        level = image
        for _ in range(2):
            level = downsample2(level)
            tw.write(np.moveaxis(level, -1, 0), subfiletype=1, metadata=None, **opts)
    with tifffile.TiffFile(path) as tif:
        assert len(_zarr_levels(tif.series[0])) == 3  # multiscales group
    with open_slide(path) as slide:
        assert slide.metadata["pyramid"] == "file" and slide.n_levels == 3 and slide.mpp == 0.5
        assert isinstance(slide.levels[0], DirectReadLevel)  # planes read by SegmentReader
        assert np.array_equal(slide.read_region(0, 0, 0, *image.shape[:2]), image)
        assert np.array_equal(np.asarray(slide.levels[2]), downsample2(downsample2(image)))
    single = tmp_path / "planar.tif"
    tifffile.imwrite(single, planar, **opts)
    with tifffile.TiffFile(single) as tif:
        assert len(_zarr_levels(tif.series[0])) == 1  # a single array


def test_vendor_suffix_goes_to_openslide(tmp_path, image):
    path, *_ = write_format("tiff", tmp_path, image)
    renamed = path.rename(tmp_path / "scan.scn")  # OpenSlide recognises files by content
    with open_slide(renamed) as slide:
        assert slide.format == "openslide" and slide.shape == image.shape[:2]


OME_WITH_OBJECTIVE = (
    '<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
    '<Instrument ID="Instrument:0"><Objective ID="Objective:0" NominalMagnification="40.0"/></Instrument>'
    '<Image ID="Image:0" Name="x"><InstrumentRef ID="Instrument:0"/><ObjectiveSettings ID="Objective:0"/>'
    '<Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint8" SizeX="700" SizeY="600" SizeC="3" SizeZ="1" '
    'SizeT="1" Interleaved="true" PhysicalSizeX="250" PhysicalSizeXUnit="nm" PhysicalSizeY="250" '
    'PhysicalSizeYUnit="nm"><Channel ID="Channel:0:0" SamplesPerPixel="3"/><TiffData IFD="0" PlaneCount="1"/>'
    "</Pixels></Image></OME>"
)


def test_ome_objective_and_units(tmp_path, image):
    path = tmp_path / "obj.ome.tif"
    tifffile.imwrite(
        path,
        image,
        photometric="rgb",
        tile=(128, 128),
        description=OME_WITH_OBJECTIVE,
        metadata=None,
    )
    with open_slide(path) as slide:
        assert slide.format == "ome-tiff"
        assert slide.mpp == pytest.approx(0.25)  # 250 nm
        assert slide.objective_power == 40.0


def test_a_folder_of_webp_pictures_is_classified_like_png(tmp_path):
    """WebP pictures (phone and web exports) are read by the CLI as any flat image."""
    from PIL import Image

    from hemascope.cli.main import main as cli

    image = smooth_image(96, 96)
    Image.fromarray(image).save(tmp_path / "cell.webp", lossless=True)
    out = tmp_path / "calls.csv"
    assert cli(["classify", str(tmp_path), "--mpp", "0.25", "--out", str(out), "--model", "wbc-demo"]) == 0
    import pandas as pd

    assert pd.read_csv(out)["path"].str.endswith("cell.webp").tolist() == [True]
