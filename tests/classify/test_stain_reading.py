"""A batch's stain, and the second reading of cells whose stain carried a shortcut (the bundled card)."""

import dataclasses

import numpy as np
import pytest
import torch

from hemascope.classify import classify_images
from hemascope.classify.calibration import calibrated_probabilities
from hemascope.classify.crops import crops_to_tensor
from hemascope.classify.decision import decide
from hemascope.classify.engine import run_model
from hemascope.classify.images import load_cell_crops
from hemascope.classify.stain import STAINS, read_stain
from hemascope.errors import ModelError
from hemascope.models import load_model

GLASS = np.array([0.94, 0.93, 0.95])


def _crops(stain: str, n: int = 6, size: int = 48, mpp: float = 0.5, seed: int = 0) -> np.ndarray:
    """White cells of a reference stain: a nucleus in the centre and red cells around it."""
    nucleus, red_cell = (np.asarray(od) for od in STAINS[stain])
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size] - (size - 1) / 2
    crops = []
    for _ in range(n):
        od = np.zeros((size, size, 3))
        cy, cx = rng.uniform(-1, 1, 2)
        od[np.hypot(rows - cy, cols - cx) * mpp < rng.uniform(3.0, 4.0)] = nucleus * rng.uniform(0.9, 1.1)
        for angle in rng.uniform(0, 2 * np.pi, 4):  # red cells 9-10 µm from the centre
            ry, rx = np.array([np.sin(angle), np.cos(angle)]) * 9.5 / mpp
            od[np.hypot(rows - ry, cols - rx) * mpp < 3.5] = red_cell
        rgb = GLASS * np.exp(-od) + rng.normal(0, 0.005, od.shape)
        crops.append(np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8))
    return np.stack(crops)


@pytest.fixture(scope="module")
def wbc():
    return load_model("wbc", device="cpu")


def test_the_bundled_card_reads_cells_of_the_blue_grey_stain_twice_and_no_other(wbc):
    plain, restained = (read_stain(_crops(s), wbc.card) for s in ("cellavision", "taleqani"))
    assert plain[0].nearest == "cellavision" and plain[0].also_read_as is None and plain[1] is None
    assert restained[0].nearest == "taleqani" and restained[0].also_read_as == "cellavision"
    assert restained[1].shape == (3, 3) and "averaged" in restained[0].reason
    # one cell is enough to judge
    assert read_stain(_crops("taleqani", n=1, seed=3), wbc.card)[0].nearest == "taleqani"


def test_a_card_without_the_rule_reads_once_and_a_card_naming_an_unknown_stain_fails(wbc):
    crops = _crops("taleqani")
    bare = dataclasses.replace(wbc.card, preprocess={k: v for k, v in wbc.card.preprocess.items()
                                                     if k != "stain_reading"})
    reading, stain = read_stain(crops, bare)
    assert reading.nearest == "taleqani" and reading.also_read_as is None and stain is None
    odd = dataclasses.replace(wbc.card, preprocess={**wbc.card.preprocess,
                                                    "stain_reading": {"stains": ["giemsa"], "also_as": "cellavision"}})
    with pytest.raises(ModelError, match="unknown stains"):
        read_stain(crops, odd)


def test_classify_averages_the_two_readings_and_keeps_the_plain_embeddings(wbc):
    crops = _crops("taleqani", n=8)
    result = classify_images(list(crops), wbc, mpp=0.5, return_embeddings=True,
                             adapt_priors=False, blast_min=0)
    assert result.stain.also_read_as == "cellavision"
    seen = np.stack(load_cell_crops(list(crops), wbc.card, 0.5)[2])  # the crops as classify cuts them
    _, stain = read_stain(seen, wbc.card)
    plain, emb = run_model(wbc, [seen], len(seen), return_embeddings=True)
    both, _ = run_model(wbc, [seen], len(seen), stain=stain)
    with torch.inference_mode():
        logits = wbc.module(crops_to_tensor(seen, wbc.card, "cpu", stain))
    restained = calibrated_probabilities(logits, wbc.card.temperature).numpy()
    assert not np.allclose(plain, restained, atol=1e-3)
    np.testing.assert_allclose(both, (plain + restained) / 2, atol=1e-5)
    probs = result.table[[f"prob_{c}" for c in wbc.card.classes]].to_numpy()
    np.testing.assert_allclose(probs, decide(both, wbc.card, adapt_priors=False, blast_min=0).probabilities,
                               atol=2e-4)
    np.testing.assert_allclose(result.embeddings, emb, atol=1e-4)
    # cells of the training labs' stain are read once
    assert classify_images(list(_crops("cellavision")), wbc, mpp=0.5).stain.also_read_as is None


def test_the_restained_reading_keeps_the_glass():
    from hemascope.classify.stain import apply_map, reference, stain_map

    x = torch.from_numpy(_crops("taleqani", n=2)).permute(0, 3, 1, 2).float() / 255
    y = apply_map(x, stain_map(reference("taleqani"), reference("cellavision")))
    assert torch.allclose(x[:, :, 0, 0], y[:, :, 0, 0], atol=0.02)  # a corner of glass
    assert not torch.allclose(x, y, atol=0.05)


def test_hemascope_classify_says_when_the_cells_were_read_twice(tmp_path, capsys):
    from PIL import Image

    from hemascope.cli.main import main

    for stain in ("taleqani", "cellavision"):
        folder = tmp_path / stain
        folder.mkdir()
        for i, crop in enumerate(_crops(stain, n=4)):
            Image.fromarray(crop).save(folder / f"{i}.png")
        assert main(["classify", str(folder), "--mpp", "0.5", "--out", str(tmp_path / f"{stain}.csv"), "--quiet"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "also read restained like the CellaVision labs'" in out[0]
    assert "also read" not in out[1]
