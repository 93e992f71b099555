"""DICOM-WSI through the optional wsidicom backend (extra ``dicom``)."""

import numpy as np
import pytest
from io_samples import smooth_image, write_dicom_wsi

from hemascope.errors import CorruptSlideError, UnsupportedFormatError
from hemascope.io import open_slide

pytest.importorskip("wsidicom")


@pytest.fixture
def series(tmp_path):
    image = smooth_image(300, 400)
    paths = write_dicom_wsi(tmp_path, image, tile=128, mm_per_px=0.00025)
    return tmp_path, paths, image


def test_dicom_series_opens_with_wsidicom(series):
    from wsidicom import WsiDicom

    folder, paths, image = series
    with open_slide(paths[0]) as slide, WsiDicom.open(folder) as wsi:
        assert slide.format == "dicom" and slide.metadata["backend"] == "wsidicom"
        assert slide.mpp == pytest.approx(0.25)
        assert slide.level_shapes == [(300, 400), (150, 200), (75, 100)]
        expected = np.asarray(wsi.read_region((0, 0), 0, (400, 300)))[..., :3]
        np.testing.assert_array_equal(np.asarray(slide.levels[0]), expected)
        np.testing.assert_array_equal(slide.read_region(1, 20, 30, 100, 120),
                                      np.asarray(wsi.read_region((30, 20), 1, (120, 100)))[..., :3])
        assert np.abs(np.asarray(slide.levels[0]).astype(int) - image).mean() < 3


def test_napari_hook_claims_dicom(series):
    from hemascope.napari.reader import get_slide_reader

    assert get_slide_reader(str(series[1][0])) is not None


def test_damaged_dicom_frame_raises(series):
    folder, paths, _ = series
    import pydicom
    from pydicom.encaps import encapsulate, generate_frames

    ds = pydicom.dcmread(paths[0])
    frames = list(generate_frames(ds.PixelData, number_of_frames=ds.NumberOfFrames))
    bad = bytearray(frames[1])
    bad[len(bad) // 2 : -2] = bytes(len(bad) - 2 - len(bad) // 2)
    frames[1] = bytes(bad)
    ds.PixelData = encapsulate(frames)
    ds.save_as(paths[0])
    with open_slide(paths[0]) as slide:
        slide.read_region(0, 200, 0, 64, 64)
        with pytest.raises(CorruptSlideError, match="[Cc]orrupt JPEG"):
            slide.read_region(0, 0, 128, 64, 64)


def test_not_a_dicom_wsi(tmp_path):
    path = tmp_path / "x.dcm"
    path.write_bytes(b"\x00" * 256)
    with pytest.raises(UnsupportedFormatError):
        open_slide(path)
