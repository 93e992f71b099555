"""AnalysisConfig: TOML round trip and clear errors for bad settings."""

import pytest

from hemascope.config import AnalysisConfig, load_config
from hemascope.errors import ConfigError


def test_defaults_round_trip_through_toml(tmp_path):
    cfg = AnalysisConfig(mpp=0.5, roi_um=[[0, 0], [0, 100], [100, 100]], segmenter_settings={"a": 1})
    path = cfg.save(tmp_path / "run.toml")
    back = AnalysisConfig.from_toml(path)
    assert back == cfg
    assert back.fingerprint() == cfg.fingerprint()
    assert back.roi_px(0.5) == [(0.0, 0.0), (0.0, 200.0), (200.0, 200.0)]


def test_default_config_leaves_out_none_values():
    text = AnalysisConfig().to_toml()
    assert "mpp" not in text and "segmenter = \"classical\"" in text
    assert AnalysisConfig.from_dict({}) == AnalysisConfig()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"segmentr": "classical"}, "did you mean 'segmenter'"),
        ({"segmenter": "magic"}, "'segmenter' must be one of"),
        ({"batch_size": 0}, "'batch_size' must be in"),
        ({"batch_size": True}, "'batch_size' must be int"),
        ({"mpp": -1.0}, "'mpp'"),
        ({"device": "gpu"}, "'device'"),
        ({"roi_um": [[0, 0], [1]]}, "'roi_um'"),
        ({"roi_um": [[0, 0], [1, 1]]}, "at least 3"),
        ({"min_confidence": 2}, "'min_confidence'"),
        ({"region_size": 10}, "'region_size'"),
    ],
)
def test_bad_values_raise_config_error(values, message):
    with pytest.raises(ConfigError, match=message):
        AnalysisConfig.from_dict(values)


def test_bad_toml_file_names_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("segmenter = \n")
    with pytest.raises(ConfigError, match="bad.toml"):
        AnalysisConfig.from_toml(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")


def test_roi_needs_mpp():
    cfg = AnalysisConfig(roi_um=[[0, 0], [0, 1], [1, 1]])
    with pytest.raises(ConfigError, match="mpp"):
        cfg.roi_px(None)
