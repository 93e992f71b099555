"""The plugin manifest is valid and every python_name in it imports."""

import importlib
import subprocess
import sys

import pytest
from npe2 import PluginManifest

MANIFEST = PluginManifest.from_distribution("hemascope")


def test_manifest_validates():
    out = subprocess.run([sys.executable, "-m", "npe2", "validate", "hemascope"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("command", MANIFEST.contributions.commands, ids=lambda c: c.id)
def test_every_python_name_imports(command):
    module, _, name = command.python_name.partition(":")
    assert callable(getattr(importlib.import_module(module), name))


def test_manifest_contributes_readers_writers_sample_and_widgets():
    contrib = MANIFEST.contributions
    assert {r.command for r in contrib.readers} == {"hemascope.read_slide", "hemascope.read_geojson"}
    assert {w.command for w in contrib.writers} >= {"hemascope.write_points_geojson",
                                                    "hemascope.write_labels_zarr"}
    assert [s.key for s in contrib.sample_data] == ["smear"]
    assert len(contrib.widgets) == 3


def test_slide_reader_patterns_are_the_io_suffix_list():
    """The manifest, the napari hook and ``open_slide`` accept the same files (one list in io)."""
    from hemascope.io.formats import SLIDE_SUFFIXES, manifest_patterns

    (reader,) = [r for r in MANIFEST.contributions.readers if r.command == "hemascope.read_slide"]
    assert list(reader.filename_patterns) == manifest_patterns()
    assert ".dcm" in SLIDE_SUFFIXES


def test_packaged_manifest_is_the_repository_manifest():
    from importlib.resources import files
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "napari.yaml"
    packaged = files("hemascope").joinpath("napari.yaml").read_text(encoding="utf-8")
    if root.is_file():  # a source checkout: src/hemascope/napari.yaml is a link to it
        assert packaged == root.read_text(encoding="utf-8")


def test_napari_hook_claims_every_slide_suffix(tmp_path):
    from hemascope.io.formats import SLIDE_SUFFIXES
    from hemascope.napari.reader import get_slide_reader

    for suffix in SLIDE_SUFFIXES:
        assert get_slide_reader(str(tmp_path / f"slide{suffix.upper()}")) is not None, suffix
    assert get_slide_reader(str(tmp_path / "notes.txt")) is None
