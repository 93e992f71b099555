"""Loaders of user files (GeoJSON, model cards, configs) raise only documented errors."""

import json

import pytest

from hemascope.config import AnalysisConfig
from hemascope.errors import ConfigError, InvalidInputError, ModelIntegrityError
from hemascope.export import read_geojson
from hemascope.models.card_validation import validate_card_dict

POLYGON = {"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 0]]]}


def _feature(**changes):
    feature = {"type": "Feature", "geometry": POLYGON,
               "properties": {"objectType": "annotation",
                              "classification": {"name": "Blast", "color": [255, 0, 0]}}}
    feature.update(changes)
    return feature


def _deep(depth):
    text = "[" * depth + "]" * depth
    return '{"type": "FeatureCollection", "features": ' + text + "}"


@pytest.mark.parametrize(
    "content",
    [
        json.dumps({"type": "FeatureCollection", "features": {"a": 1}}),
        json.dumps([1, 2, 3]),
        json.dumps([_feature(properties=[1, 2])]),
        json.dumps([_feature(geometry={"type": "Polygon", "coordinates": "xy"})]),
        json.dumps([_feature(geometry={"type": "Polygon", "coordinates": [[[0, 0, 0]] * 4]})]),
        json.dumps([_feature(geometry={"type": "Point", "coordinates": ["a", "b"]})]),
        json.dumps([_feature(geometry={"type": 5, "coordinates": [0, 0]})]),
        '[{"type": "Feature", "geometry": {"type": "Point", "coordinates": [NaN, 0]}}]',
        '[{"type": "Feature", "geometry": {"type": "Point", "coordinates": [Infinity, 0]}}]',
        '[{"type": "Feature", "geometry": {"type": "Point", "coordinates": [1e400, 0]}}]',
        json.dumps([_feature()]).replace("[255, 0, 0]", "[1e400, 0, 0]"),
        json.dumps([_feature()]).replace("[255, 0, 0]", "[-5, 0, 300]"),
        _deep(2000),
        json.dumps([_feature(geometry={"type": "GeometryCollection", "geometries": []})])
        .replace('"geometries": []', '"geometries": [' + '{"type": "GeometryCollection", '
                 '"geometries": [' * 50 + "]}" * 50 + "]"),
        "\xff\xfe not text",
    ],
    ids=["features-dict", "list-of-ints", "properties-list", "string-coords", "3d-coords",
         "string-point", "int-type", "nan", "inf", "1e400", "colour-1e400", "colour-range",
         "2000-deep", "50-deep-collections", "not-utf8"],
)
def test_hostile_geojson_gives_invalid_input(tmp_path, content):
    path = tmp_path / "x.geojson"
    path.write_bytes(content.encode("utf-8", "surrogateescape") if isinstance(content, str)
                     else content)
    with pytest.raises(InvalidInputError):
        read_geojson(path)


def test_valid_geojson_still_reads(tmp_path):
    path = tmp_path / "ok.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [_feature()]}))
    (obj,) = read_geojson(path)
    assert obj.color == (255, 0, 0) and obj.coordinates[0].shape == (4, 2)


@pytest.mark.parametrize(
    "roi", ["[{a = 1, b = 2}, {a = 3, b = 4}, {a = 5, b = 6}]", "[[0, 0], [0, inf], [5, 5]]",
            "[[0, 0], [0, nan], [5, 5]]", "{a = 1}"],
    ids=["list-of-tables", "inf", "nan", "table"],
)
def test_config_roi_of_wrong_type_is_a_config_error(tmp_path, roi):
    path = tmp_path / "c.toml"
    path.write_text(f"roi_um = {roi}\nmpp = 0.25\n")
    with pytest.raises(ConfigError):
        AnalysisConfig.from_toml(path)


GOOD_CARD = {"name": "m", "version": "1", "classes": ["a", "b"], "input_size": 64, "mpp": 0.5,
             "arch_params": {"widths": [16, 32]}, "mean": [0.5, 0.5, 0.5],
             "std": [0.2, 0.2, 0.2], "temperature": 1.2, "sha256": "ab" * 32,
             "weights": "m.safetensors"}


@pytest.mark.parametrize(
    "change",
    [
        {"sha256": 12345}, {"weights": 7}, {"sha256": "xyz"},
        {"arch_params": {"widths": [16, -32]}}, {"arch_params": {"widths": [10**9]}},
        {"mpp": float("nan")}, {"mpp": float("inf")}, {"temperature": float("nan")},
        {"temperature": -1.0}, {"mean": [0.5, float("nan"), 0.5]}, {"std": [0.2, 0.0, 0.2]},
        {"input_size": True}, {"input_size": "64"}, {"classes": "ab"},
        {"metrics": json.loads("[" * 100 + "]" * 100)}, {"arch_params": []},
    ],
    ids=lambda c: "-".join(c),
)
def test_hostile_model_cards_are_integrity_errors(change):
    validate_card_dict(GOOD_CARD)
    with pytest.raises(ModelIntegrityError):
        validate_card_dict({**GOOD_CARD, **change})


def test_bundled_cards_validate():
    from importlib.resources import files

    cards = [p for p in files("hemascope.models").joinpath("weights").iterdir()
             if p.name.endswith(".json")]
    assert cards
    for card in cards:
        validate_card_dict(json.loads(card.read_text(encoding="utf-8")))
