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
