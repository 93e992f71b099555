"""The one rule for slide models (hemascope.slide.applicability), on the bundled registry and a new card."""

from __future__ import annotations

import json
import shutil

import pytest

from hemascope.models import list_models
from hemascope.models.registry import BUNDLED_DIR
from hemascope.slide.applicability import (
    applicable_bag_models,
    bag_model_fits,
    models_by_cell_model,
    resolve_slide_models,
    slide_model_choices,
)
from hemascope.slide.bag_model import load_bag_model


def _cells():
    return {c.name: c for c in list_models(kind="cell")}


def test_every_bundled_slide_model_names_a_bundled_cell_model_it_fits():
    """The bundled models checked against each other: each bag card's cell model exists and fits."""
    cells = _cells()
    for name in [c.name for c in list_models(kind="bag")]:
        card = load_bag_model(name).card
        assert card.embedding_model in cells, name
        assert bag_model_fits(card, cells[card.embedding_model]), name
        assert card.embedding_sha256 == cells[card.embedding_model].sha256, name


def test_defaults_never_run_a_demo_model_or_another_cell_models_model():
    cells = _cells()
    for cell in cells.values():
        for name in applicable_bag_models(cell):
            card = load_bag_model(name).card
            assert not card.demo and card.embedding_model == cell.name
    assert applicable_bag_models(cells["wbc-demo"]) == []
    assert set(applicable_bag_models(cells["wbc-demo"], include_demo=True)) == {
        "aml-subtype-demo", "aml-subtype-demo-mean"}
    assert applicable_bag_models(cells["blast"]) == []
    assert "aml-subtype-demo" in models_by_cell_model()["wbc-demo"]
    reasons = {c.model: c.reason for c in slide_model_choices(cells["wbc"])}
    assert "not applicable" in reasons["aml-subtype-demo"] and "taleqani-cells" in reasons["taleqani-all"]


def test_resolve_named_none_and_comma_lists():
    cells = _cells()
    assert resolve_slide_models("none", cells["wbc"])[0] == []
    names, choices = resolve_slide_models("aml-subtype-demo,aml-subtype-demo-mean", cells["wbc-demo"])
    assert names == ["aml-subtype-demo", "aml-subtype-demo-mean"] and choices[0].runs
    from hemascope.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="use cell model 'wbc-demo'"):
        resolve_slide_models("aml-subtype-demo", cells["wbc"])


def test_a_new_card_in_the_registry_is_picked_up_for_its_cell_model(tmp_path, monkeypatch):
    """E.g. the real `apl` model (APL vs AML on `wbc` embeddings): no code change needed."""
    from hemascope.config import AnalysisConfig
    from hemascope.pipeline import slide_model_plan

    wbc = _cells()["wbc"]
    card = json.loads((BUNDLED_DIR / "taleqani-all.json").read_text())
    card.update(name="apl-test", classes=["APL", "AML"], embedding_model="wbc", embedding_version=wbc.version,
                embedding_sha256=wbc.sha256, demo=False, weights="taleqani-all.safetensors")
    installed = tmp_path / "models" / "apl-test"  # installed in the user's model cache
    installed.mkdir(parents=True)
    shutil.copy2(BUNDLED_DIR / "taleqani-all.safetensors", installed / "taleqani-all.safetensors")
    (installed / "apl-test.json").write_text(json.dumps(card))
    monkeypatch.setenv("HEMASCOPE_CACHE_DIR", str(tmp_path))
    assert "apl-test" in applicable_bag_models(wbc)
    names, choices = slide_model_plan(AnalysisConfig())
    assert "apl-test" in names and {c.model for c in choices if c.runs} == set(names)


def test_a_finished_slide_needs_its_exports(tmp_path):
    from hemascope.distributed import is_finished
    from hemascope.results import COMPLETE_MARKER

    (tmp_path / COMPLETE_MARKER).write_text("{}")
    assert is_finished(tmp_path, export=False) and not is_finished(tmp_path, export=True)
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "EXPORTED").write_text("{}")
    assert is_finished(tmp_path, export=True)
