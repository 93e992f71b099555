"""Pictures finer than the classical segmenter's working scale (100x camera fields, upsampled crops)."""

import numpy as np
import pytest
from PIL import Image

import hemascope.segment.backends as backends
from hemascope.segment import find_cells
from hemascope.synthetic import SmearSpec, render_field


def test_a_fine_picture_is_segmented_at_the_working_scale_with_the_same_cells(monkeypatch):
    """A field at 0.025 µm/px (a 100x camera, 4x finer than CellaVision) is segmented at
    0.1 µm/px and its labels brought back: the same cell and areas as the 0.1-µm/px original. At
    its own resolution one such field took minutes (morphology cost ~ 1/mpp^4)."""
    image, _ = render_field(SmearSpec(size=500, mpp=0.1, seed=3, wbc_density=5000.0))
    fine = np.asarray(Image.fromarray(image).resize((2000, 2000), Image.Resampling.BICUBIC))
    scales = []
    real = backends.segment_classical

    def spy(crop, mpp, *args, **kwargs):
        scales.append(mpp)
        return real(crop, mpp, *args, **kwargs)

    monkeypatch.setattr(backends, "segment_classical", spy)
    coarse = find_cells(image, mpp=0.1)
    found = find_cells(fine, mpp=0.025)
    assert min(scales) >= backends.CLASSICAL_FINEST_MPP * 0.99
    assert len(coarse.cells) == len(found.cells) >= 1
    assert found.cell_labels.shape == fine.shape[:2]
    for column in ("area_um2", "nucleus_area_um2"):
        assert found.cells[column].to_numpy() == pytest.approx(coarse.cells[column].to_numpy(), rel=0.05)
