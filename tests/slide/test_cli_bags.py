"""End to end: `hemascope train bags` on cell-image folders, then `hemascope predict-bags`."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hemascope.classes import RESEARCH_USE_ONLY
from hemascope.cli.main import main
from hemascope.models import ModelCard, build_model, save_model
from hemascope.synthetic import render_cell

MPP = 0.5


@pytest.fixture(scope="module")
def cell_model(tmp_path_factory):
    """A tiny, randomly initialised cell model (the real registry and engine run on it)."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    card = ModelCard(
        name="tiny-wbc",
        version="0.0.1",
        classes=["lymphocyte", "blast"],
        input_size=24,
        mpp=1.0,
        arch_params={"widths": [4, 8, 8, 8]},
    )
    module = build_model("cellnet", 2, card.arch_params)
    return save_model(module, card, tmp_path_factory.mktemp("cellmodel"))


@pytest.fixture(scope="module")
def bag_folders(tmp_path_factory):
    """12 patients: 'lymph' bags hold lymphocytes, 'neut' bags neutrophils (SCEMILA layout)."""
    root = tmp_path_factory.mktemp("bags")
    rows = []
    for i in range(12):
        label, cls = ("lymph", "lymphocyte") if i % 2 == 0 else ("neut", "neutrophil")
        folder = root / f"patient{i:02d}"
        folder.mkdir()
        rng = np.random.default_rng(i)
        for j in range(6):
            image, _, _ = render_cell(cls, mpp=MPP, size=40, rng=rng)
            Image.fromarray(image).save(folder / f"cell{j}.png")
        rows.append({"patient_id": folder.name, "bag_label": label})
    pd.DataFrame(rows).to_csv(root / "metadata.csv", index=False)
    return root


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory, cell_model, bag_folders):
    """`hemascope train bags` (mean pooling, all cells) on the cell folders."""
    out = tmp_path_factory.mktemp("trained")
    args = [
        "train",
        "bags",
        "--labels",
        str(bag_folders / "metadata.csv"),
        "--cell-model",
        str(cell_model),
        "--mpp",
        str(MPP),
        "--instances",
        "all",
        "--method",
        "mean",
        "--name",
        "demo-bags",
        "--epochs",
        "3",
        "--batch-size",
        "4",
        "--hidden",
        "16",
        "--min-instances",
        "3",
        "--cache",
        str(out / "bags.npz"),
        "--out",
        str(out),
        "--quiet",
        "--demo",
    ]
    assert main(args) == 0
    return out, args


def test_train_then_predict(tmp_path, cell_model, bag_folders, trained_dir, capsys):
    out, args = trained_dir  # the fixture ran `hemascope train bags` with these args
    cache = out / "bags.npz"
    card = json.loads((out / "demo-bags.json").read_text())
    assert card["kind"] == "bag" and card["demo"] and card["embedding_model"] == "tiny-wbc"
    assert card["embedding_dim"] == 8 and card["classes"] == ["lymph", "neut"]
    assert card["metrics"]["n_bags"]["test"] >= 1 and "ece" in card["metrics"]["test"]
    assert (out / "demo-bags.curve.png").stat().st_size > 1000
    assert cache.exists()
    # a second run reuses the cached embeddings
    assert (
        main([*args[:-4], "--out", str(tmp_path / "again"), "--quiet", "--method", "attention"])
        == 0
    )
    assert "accuracy" in capsys.readouterr().out

    small = tmp_path / "small"
    small.mkdir()
    for j in range(2):
        image, _, _ = render_cell("lymphocyte", mpp=MPP, size=40, rng=np.random.default_rng(50 + j))
        Image.fromarray(image).save(small / f"c{j}.png")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    csv = tmp_path / "bags.csv"
    code = main(
        [
            "predict-bags",
            str(bag_folders / "patient00"),
            str(small),
            str(broken),
            "--model",
            str(out / "demo-bags.json"),
            "--cell-model",
            str(cell_model),
            "--mpp",
            str(MPP),
            "--out",
            str(csv),
            "--quiet",
        ]
    )
    assert code == 1  # one bag failed (listed on stderr), the others kept
    assert "broken.png" in capsys.readouterr().err
    table = pd.read_csv(csv)
    assert list(table.columns[:4]) == ["bag", "predicted", "prob_lymph", "prob_neut"]
    first, tiny, bad = table.to_dict(orient="records")
    assert first["predicted"] in {"lymph", "neut"} and not first["abstained"]
    assert first["n_cells"] == 6 and first["prob_lymph"] + first["prob_neut"] == pytest.approx(1)
    assert tiny["abstained"] and "too few cells" in tiny["reason"] and pd.isna(tiny["predicted"])
    assert np.isnan(tiny["prob_lymph"])
    assert bad["abstained"] and bad["reason"].startswith("error:")
    assert (table["notice"] == RESEARCH_USE_ONLY).all()
    assert (table["model"] == "demo-bags v0.1.0 (SYNTHETIC/DEMO)").all()


def test_bad_labels_exit_2(tmp_path, cell_model, bag_folders, capsys):
    csv = tmp_path / "labels.csv"
    pd.DataFrame({"patient_id": ["patient00", "ghost"], "bag_label": ["lymph", "neut"]}).to_csv(
        csv, index=False
    )
    base = [
        "train",
        "bags",
        "--root",
        str(bag_folders),
        "--cell-model",
        str(cell_model),
        "--name",
        "x",
        "--out",
        str(tmp_path / "o"),
        "--quiet",
    ]
    assert main([*base, "--labels", str(csv)]) == 2
    assert "ghost" in capsys.readouterr().err
    pd.DataFrame({"patient_id": ["patient00"], "bag_label": ["dragon"]}).to_csv(csv, index=False)
    assert main([*base, "--labels", str(csv), "--classes", "aml"]) == 2
    assert "dragon" in capsys.readouterr().err


def test_wrong_cell_model_is_refused(tmp_path, cell_model, trained_attention, capsys):
    card_path, _ = trained_attention
    code = main(
        [
            "predict-bags",
            str(tmp_path),
            "--model",
            str(card_path),
            "--cell-model",
            str(cell_model),
            "--out",
            str(tmp_path / "x.csv"),
            "--quiet",
        ]
    )
    assert code == 2 and "trained on embeddings of cell model" in capsys.readouterr().err


def test_predict_field_image_and_saved_analysis(tmp_path, cell_model, trained_dir):
    """Layouts (b) a field image (cells found first) and (c) a saved analysis."""
    from hemascope.classify import predict_cells
    from hemascope.io import slide_from_array
    from hemascope.results import SlideResult
    from hemascope.synthetic import SmearSpec, render_field

    out, _ = trained_dir
    image, _ = render_field(SmearSpec(size=(384, 384), seed=3, kind="marrow", subtype="NPM1"))
    field = tmp_path / "field.png"
    Image.fromarray(image).save(field)
    slide = slide_from_array(image, mpp=MPP)
    cells = pd.DataFrame({"row": [100.0, 200.0, 300.0], "col": [120.0, 220.0, 320.0]})
    pred = predict_cells(slide, cells, str(cell_model), return_embeddings=True, device="cpu")
    analysis = tmp_path / "analysis"
    SlideResult(
        cells=pd.concat([cells, pred.table], axis=1), embeddings=pred.embeddings, slide={"mpp": MPP}
    ).save(analysis)
    csv = tmp_path / "out.csv"
    code = main(
        [
            "predict-bags",
            str(field),
            str(analysis),
            "--model",
            str(out / "demo-bags.json"),
            "--cell-model",
            str(cell_model),
            "--mpp",
            str(MPP),
            "--out",
            str(csv),
            "--quiet",
        ]
    )
    assert code == 0
    image_row, analysis_row = pd.read_csv(csv).to_dict(orient="records")
    assert image_row["n_cells"] >= 3, image_row["reason"]
    assert not image_row["abstained"] and image_row["predicted"] in {"lymph", "neut"}
    assert analysis_row["n_cells"] == 3 and not analysis_row["abstained"]


def test_train_bags_cross_validation_grouped(
    tmp_path, cell_model, bag_folders, trained_dir, capsys
):
    """`--cv` with the grouped method: CV files beside the model, CV metrics in its card."""
    out, args = trained_dir
    base = [a for a in args[: args.index("--method")]]  # labels, cell model, mpp, instances
    code = main(
        [
            *base,
            "--method",
            "grouped",
            "--groups",
            "blast",
            "--name",
            "cv-bags",
            "--cv",
            "2x3",
            "--positive",
            "lymph",
            "--min-instances",
            "auto",
            "--cache",
            str(out / "bags.npz"),
            "--out",
            str(tmp_path / "cv"),
            "--quiet",
        ]
    )
    assert code == 0
    card = json.loads((tmp_path / "cv" / "cv-bags.json").read_text())
    cv = card["metrics"]["cross_validation"]
    assert cv["repeats"] == 2 and cv["folds"] == 3 and cv["n_bags"] == 12
    assert 0 <= cv["metrics"]["auc"]["mean"] <= 1 and card["architecture"] == "grouped"
    assert card["arch_params"]["groups"][0] == ["blast"] and "cell_head" not in card["arch_params"]
    assert card["min_instances"] >= 1
    folds = pd.read_csv(tmp_path / "cv" / "cv-bags.folds.csv")
    assert len(folds) == 24 and (tmp_path / "cv" / "cv-bags.cv_curve.png").exists()
    assert "AUC" in capsys.readouterr().out
    assert main([*base, "--name", "x", "--cv", "2", "--out", str(tmp_path / "y"), "--quiet"]) == 2
