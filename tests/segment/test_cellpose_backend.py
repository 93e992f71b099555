"""The Cellpose backend's real code path on CPU, with a weights file made here (no download)."""

from __future__ import annotations

import numpy as np
import pytest

from hemascope.errors import ModelError
from hemascope.segment import CELL_COLUMNS, find_cells
from hemascope.segment.cellpose_backend import cellpose_weights_available, resolve_cellpose_model


def _cellpose_importable() -> bool:
    try:
        import cellpose.models  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means: not usable here
        return False
    return True


def test_model_lookup_honours_cellpose_local_models_path(tmp_path, monkeypatch):
    monkeypatch.setenv("CELLPOSE_LOCAL_MODELS_PATH", str(tmp_path))
    assert not cellpose_weights_available("mine")
    (tmp_path / "mine").write_bytes(b"x")
    assert cellpose_weights_available("mine")
    assert resolve_cellpose_model("mine") == (tmp_path / "mine").resolve()
    assert resolve_cellpose_model(str(tmp_path / "mine")) == (tmp_path / "mine").resolve()


@pytest.mark.slow
@pytest.mark.skipif(not _cellpose_importable(), reason="cellpose cannot be imported (torchvision/torch mismatch)")
def test_cellpose_backend_runs_on_cpu_with_local_random_weights(tmp_path, monkeypatch, blood_field):
    # The smallest configuration CellposeModel builds is its CPSAM (ViT-L) network; a CP4 weights
    # file only needs the W2 readout tensor (other weights stay at their random initialisation).
    import torch

    ps, nout = 8, 3
    torch.save({"W2": torch.eye(nout * ps**2).reshape(nout * ps**2, nout, ps, ps)}, tmp_path / "random_cp4")
    monkeypatch.setenv("CELLPOSE_LOCAL_MODELS_PATH", str(tmp_path))
    image, _, _ = blood_field
    seg = find_cells(image[:256, :256], mpp=0.5, segmenter="auto", model="random_cp4", device="cpu")
    assert seg.segmenter == "cellpose"
    assert list(seg.cells.columns) == list(CELL_COLUMNS)
    assert (seg.cells["segmenter"] == "cellpose").all()
    assert seg.cell_labels.dtype == np.uint32


@pytest.mark.skipif(_cellpose_importable(), reason="cellpose imports fine here")
def test_unimportable_cellpose_is_a_clear_model_error(tmp_path, monkeypatch):
    (tmp_path / "w").write_bytes(b"x")
    with pytest.raises(ModelError, match="Cellpose cannot be imported"):
        find_cells(np.full((64, 64, 3), 255, np.uint8), mpp=0.5, segmenter="cellpose", model=str(tmp_path / "w"))
