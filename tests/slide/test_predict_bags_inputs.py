"""predict-bags on a patient's crop folder: crops vs fields, one scale per bag, the same answer at
another resolution, and the exit-code contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hemascope.cli.main import main
from hemascope.errors import InvalidInputError
from hemascope.synthetic import render_cell
from hemascope.train.bags_inputs import estimate_bag_mpp, input_kind
from hemascope.train.bags_predict import predict_bag_sources

MPP = 0.25


def _crops(folder, n, *, size=96, scale=1, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for j in range(n):
        image, _, _ = render_cell(
            "lymphocyte" if j % 2 else "neutrophil", mpp=MPP, size=size, rng=rng
        )
        im = Image.fromarray(image)
        if scale != 1:
            im = im.resize((size * scale, size * scale), Image.Resampling.BICUBIC)
        im.save(folder / f"cell{j}.png")
    return folder


def test_input_kind_from_physical_or_pixel_size(tmp_path):
    crops = sorted(_crops(tmp_path / "c", 3).glob("*.png"))  # 96 px
    big = tmp_path / "field.png"
    Image.fromarray(np.full((900, 1200, 3), 230, np.uint8)).save(big)
    assert input_kind(crops, 0.25, "auto") == "crops"  # 24 µm across
    assert input_kind(crops, 2.0, "auto") == "fields"  # 192 µm across
    assert input_kind(crops, None, "auto") == "crops"  # 96 px, scale unknown
    assert input_kind([big], None, "auto") == "fields"
    assert input_kind([big], None, "crops") == "crops"  # an explicit choice wins
    with pytest.raises(InvalidInputError):
        input_kind(crops, None, "tiles")


def test_one_scale_per_bag_is_the_median_estimate(tmp_path):
    paths = sorted(_crops(tmp_path / "c", 5).glob("*.png"))
    answers = iter([0.1, 0.3, 0.2, 99.0, 0.2])

    def estimate(image):
        value = next(answers)
        if value > 10:
            raise InvalidInputError("no red cells")
        return value

    assert estimate_bag_mpp(paths, estimate=estimate) == pytest.approx(0.2)

    def never(image):
        raise InvalidInputError("found 1 isolated red cells")

    with pytest.raises(InvalidInputError, match="pass --mpp"):
        estimate_bag_mpp(paths, estimate=never)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny random cell model and a mean-pooling bag model on its embeddings."""
    import torch

    from hemascope.models import ModelCard, build_model, load_model, save_model
    from hemascope.models.mil import build_bag_model
    from hemascope.slide.bag_model import load_bag_model

    torch.manual_seed(0)
    card = ModelCard(
        name="tiny",
        version="0",
        classes=["lymphocyte", "blast"],
        input_size=24,
        mpp=1.0,
        arch_params={"widths": [4, 8, 8, 8]},
    )
    cell_path = save_model(
        build_model("cellnet", 2, card.arch_params), card, tmp_path_factory.mktemp("c")
    )
    cell = load_model(cell_path)
    bag_card = ModelCard(
        kind="bag",
        name="toy-apl",
        version="0",
        classes=["APL", "AML"],
        architecture="mean",
        embedding_model="tiny",
        embedding_sha256=cell.card.sha256,
        embedding_dim=8,
        input_size=24,
        mpp=1.0,
        instances="all",
        min_instances=3,
        arch_params={"hidden": 8},
    )
    bag_path = save_model(
        build_bag_model("mean", 8, 2, hidden=8).eval(), bag_card, tmp_path_factory.mktemp("b")
    )
    return cell_path, cell, bag_path, load_bag_model(bag_path)


def test_same_answer_for_a_patient_upsampled_2x(tmp_path, models):
    _, cell, _, bag = models
    original = _crops(tmp_path / "p", 8, size=96)
    upsampled = _crops(tmp_path / "p2x", 8, size=96, scale=2)
    a = predict_bag_sources([original], bag, cell, mpp=MPP, device="cpu")
    b = predict_bag_sources([upsampled], bag, cell, mpp=MPP / 2, device="cpu")
    assert a["input"][0] == b["input"][0] == "crops"
    assert a["n_cells"][0] == b["n_cells"][0] == 8 and a["mpp_source"][0] == "given"
    assert abs(a["prob_APL"][0] - b["prob_APL"][0]) < 0.02


def test_cli_contract(tmp_path, models, capsys):
    cell_path, _, bag_path, _ = models
    good = _crops(tmp_path / "good", 5)
    small = _crops(tmp_path / "small", 2)
    base = ["predict-bags", "--model", str(bag_path), "--cell-model", str(cell_path), "--quiet"]
    out = tmp_path / "bags.csv"
    assert main([*base, str(good), str(small), "--mpp", str(MPP), "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert table["abstained"].tolist() == [False, True] and "too few cells" in table["reason"][1]
    assert {"predicted", "prob_APL", "prob_AML", "n_cells", "n_blasts", "top_cells"} <= set(table)
    assert "research use only" in capsys.readouterr().out
    # a bag that fails (missing) beside a good one: exit 1, listed on stderr, row kept
    assert (
        main([*base, str(good), str(tmp_path / "ghost"), "--mpp", str(MPP), "--out", str(out)]) == 1
    )
    assert "ghost" in capsys.readouterr().err and len(pd.read_csv(out)) == 2
    # every bag fails: exit 2; blank crops give no scale estimate: the row says to pass --mpp
    blank = tmp_path / "blank"
    blank.mkdir()
    for j in range(3):
        Image.fromarray(np.full((96, 96, 3), 235, np.uint8)).save(blank / f"b{j}.png")
    assert main([*base, str(blank), "--out", str(out)]) == 2
    row = pd.read_csv(out).iloc[0]
    assert row["reason"].startswith("error:") and "--mpp" in row["reason"]
    assert "--mpp" in capsys.readouterr().err
    # an unwritable --out is refused before any work
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main([*base, str(good), "--mpp", "0.25", "--out", str(blocker / "x.csv")]) == 2
    assert "--out" in capsys.readouterr().err


def test_a_folder_of_fields_without_mpp_gets_one_scale(tmp_path, models):
    from hemascope.synthetic import SmearSpec, render_field

    _, cell, _, bag = models
    image, _ = render_field(SmearSpec(size=(720, 720), mpp=0.5, seed=2, wbc_density=600), masks=False)
    folder = tmp_path / "patient"
    folder.mkdir()
    Image.fromarray(image).save(folder / "field1.png")
    # the same smear a little closer: estimated alone, the two fields would not agree within 5 %
    Image.fromarray(image).resize((806, 806), Image.Resampling.BICUBIC).save(folder / "field2.png")
    table = predict_bag_sources([folder], bag, cell, device="cpu")
    assert table["input"][0] == "fields" and table["mpp_source"][0] == "estimated"
    assert table["mpp"][0] == pytest.approx(0.47, rel=0.15) and table["n_cells"][0] > 0


def test_small_fields_are_told_from_crops_by_their_estimated_scale(tmp_path, models):
    """A public data set's 224-256 px fields (Taleqani: several cells at ~0.5 µm/px) were read as
    one-cell crops without --mpp (under 640 px); at the estimated scale they are 128 µm across."""
    from hemascope.synthetic import SmearSpec, render_field

    _, cell, _, bag = models
    folder = tmp_path / "patient"
    folder.mkdir()
    for seed in (3, 4, 5):
        image, _ = render_field(SmearSpec(size=(256, 256), mpp=0.5, seed=seed, wbc_density=2000), masks=False)
        Image.fromarray(image).save(folder / f"field{seed}.png")
    table = predict_bag_sources([folder], bag, cell, device="cpu")
    assert table["mpp"][0] == pytest.approx(0.5, rel=0.25)
    assert table["input"][0] == "fields" and table["n_cells"][0] > 3
