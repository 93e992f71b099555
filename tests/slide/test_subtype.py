import json

import numpy as np
import pandas as pd
import pytest
from slide_helpers import CLASSES, DIM, cell_table, make_bags

from hemascope.classes import RESEARCH_USE_ONLY
from hemascope.errors import InvalidInputError, ModelIntegrityError, ModelNotFoundError
from hemascope.slide import load_bag_model, predict_subtype, summarize


def _slide(label_index: int, n: int, n_blasts: int, seed: int = 0):
    """A cell table whose blasts carry the embeddings of a synthetic bag of one class."""
    bag = [
        b
        for b in make_bags(30, seed=seed, sizes=(n_blasts, n_blasts + 1))
        if b.label == CLASSES[label_index]
    ][0]
    table = cell_table(n, n_blasts)
    emb = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    emb[:n_blasts] = bag.features
    # shuffle rows so blasts are not simply the first rows
    order = np.random.default_rng(1).permutation(n)
    return table.iloc[order].reset_index(drop=True), emb[order]


def test_round_trip_and_prediction(trained_attention):
    path, _ = trained_attention
    model = load_bag_model(path)
    assert model.card.kind == "bag" and model.card.demo
    assert "SYNTHETIC/DEMO" in model.card.caption and RESEARCH_USE_ONLY in model.card.caption
    correct = 0
    for k in range(len(CLASSES)):
        table, emb = _slide(k, 40, 20, seed=k)
        pred = predict_subtype(table, emb, model, top_k=5)
        assert not pred.abstained and pred.label in CLASSES
        assert sum(pred.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        correct += pred.label == CLASSES[k]
        # most-attended cells are blasts, named by the table's ids, in decreasing weight
        assert all(table.loc[i, "class"] == "blast" for i in pred.top_indices)
        assert pred.top_cells == [table.loc[i, "id"] for i in pred.top_indices]
        assert pred.top_weights == sorted(pred.top_weights, reverse=True)
        assert len(pred.top_cells) == 5
        assert json.dumps(pred.to_dict())
    assert correct >= 2


def test_abstains_with_too_few_blasts(trained_attention):
    path, _ = trained_attention
    table, emb = _slide(0, 30, 2)
    pred = predict_subtype(table, emb, path)
    assert pred.abstained and pred.label is None
    assert "too few blasts" in pred.reason and "2 in the bag" in pred.reason
    assert all(np.isnan(v) for v in pred.probabilities.values())
    none = predict_subtype(cell_table(10, 0), np.zeros((10, DIM), np.float32), path)
    assert none.abstained and none.n_instances == 0
    # the threshold is configurable
    assert not predict_subtype(table, emb, path, min_blasts=2).abstained


def test_low_confidence_abstains(trained_attention):
    path, _ = trained_attention
    table, emb = _slide(1, 30, 10)
    assert predict_subtype(table, emb, path, min_confidence=1.01).abstained


def test_bad_input(trained_attention):
    path, _ = trained_attention
    table, emb = _slide(0, 30, 10)
    with pytest.raises(InvalidInputError, match="different cell model"):
        predict_subtype(table, emb[:, :5], path)
    with pytest.raises(InvalidInputError, match="n_cells"):
        predict_subtype(table, emb[:10], path)
    with pytest.raises(InvalidInputError, match="class"):
        predict_subtype(table.drop(columns="class"), emb, path)
    mixed = table.assign(mpp=[0.25] * 15 + [0.5] * 15)
    with pytest.raises(InvalidInputError, match="mixes scales"):
        predict_subtype(mixed, emb, path)
    nan = emb.copy()
    nan[0, 0] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        predict_subtype(table, nan, path)


def test_model_files_are_checked(trained_attention, tmp_path):
    path, _ = trained_attention
    with pytest.raises(ModelNotFoundError):
        load_bag_model("no-such-bag-model")
    card = json.loads(path.read_text())
    weights = path.with_suffix(".safetensors")
    (tmp_path / weights.name).write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    (tmp_path / path.name).write_text(json.dumps(card))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        load_bag_model(tmp_path / path.name)
    card["embedding_dim"] = DIM + 1
    card["sha256"] = ""
    (tmp_path / weights.name).write_bytes(weights.read_bytes())
    (tmp_path / path.name).write_text(json.dumps(card))
    with pytest.raises(ModelIntegrityError, match="do not fit"):
        load_bag_model(tmp_path / path.name)


def test_summarize_runs_models_side_by_side(trained_attention):
    path, _ = trained_attention
    table, emb = _slide(2, 120, 40)
    summary = summarize(table, emb, models=[str(path), str(path)], min_cells=100)
    assert summary.differential.sufficient
    assert summary.differential.blast_percent == pytest.approx(100 * 40 / 120)
    assert len(summary.subtypes) == 2 and summary.subtype is summary.subtypes[0]
    assert summary.to_dict()["notice"] == RESEARCH_USE_ONLY
    calls = []
    only_counts = summarize(table, None, progress=lambda d, t, m: calls.append((d, t)))
    assert only_counts.subtypes == [] and calls == [(1, 1)]
    with pytest.raises(InvalidInputError):
        summarize(pd.DataFrame({"x": [1]}))


def test_default_models_follow_the_applicability_rule(trained_attention, tmp_path, monkeypatch):
    """models=None runs the registry models trained on this cell model (sha256), never demo ones."""
    import shutil

    path, _ = trained_attention
    card = json.loads(path.read_text())
    card.update(name="fits", weights="fits.safetensors", embedding_sha256="a" * 64, demo=False)
    installed = tmp_path / "models" / "fits"  # a model installed in the user's cache
    installed.mkdir(parents=True)
    shutil.copy(path.with_suffix(".safetensors"), installed / card["weights"])
    (installed / "fits.json").write_text(json.dumps(card))
    monkeypatch.setenv("HEMASCOPE_CACHE_DIR", str(tmp_path))
    table, emb = _slide(0, 40, 20)
    summary = summarize(table, emb, cell_model_sha256="a" * 64)
    assert [s.model for s in summary.subtypes] == ["fits"] and not summary.subtype.abstained
    # another cell model (a retrained one: another sha256) runs nothing by default ...
    assert summarize(table, emb, cell_model_sha256="b" * 64).subtypes == []
    # ... and an explicitly named model that does not fit is refused
    with pytest.raises(InvalidInputError, match="trained on embeddings"):
        predict_subtype(table, emb, "fits", cell_model_sha256="b" * 64)
    with pytest.raises(InvalidInputError, match="trained on embeddings"):
        summarize(table, emb, models=["fits"], cell_model_sha256="b" * 64)
    # without knowing the cell model nothing is run by default
    assert summarize(table, emb).subtypes == []
    # a SYNTHETIC/DEMO model never answers on a real-data run by default
    card["demo"] = True
    (installed / "fits.json").write_text(json.dumps(card))
    assert summarize(table, emb, cell_model_sha256="a" * 64).subtypes == []


def test_check_bag_models_refuses_another_cell_model_before_any_work(trained_attention, tmp_path):
    import shutil
    from types import SimpleNamespace

    from hemascope.slide.summary import check_bag_models

    path, _ = trained_attention
    card = json.loads(path.read_text())
    card["embedding_sha256"] = "a" * 64
    for file in path.parent.glob("*.safetensors"):
        shutil.copy2(file, tmp_path / file.name)
    pinned = tmp_path / path.name
    pinned.write_text(json.dumps(card))
    assert check_bag_models([str(pinned)], SimpleNamespace(name="right", sha256="a" * 64)) == [str(pinned)]
    with pytest.raises(InvalidInputError, match="use cell model 'synthetic'"):
        check_bag_models([str(pinned)], SimpleNamespace(name="wrong", sha256="b" * 64))
    assert check_bag_models(None, SimpleNamespace(name="wrong", sha256="b" * 64)) == []
    assert check_bag_models("none", SimpleNamespace(name="right", sha256="a" * 64)) == []
