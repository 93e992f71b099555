"""Fixtures of the acceptance tests: the user's inputs, made the way a user makes them.

The acceptance tests run hemascope's user paths (the CLI through ``hemascope.cli.main.main``, the
napari docks) with their defaults, on the embedded sample slide, on a small ``make-sample`` slide
and on a plain field image, and check what the user gets: exit codes, the one line printed, every
export, the report. Without a display, Qt runs on its offscreen platform (the docks are tested on a
``ViewerModel``, which needs no OpenGL).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

if (sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
        and shutil.which("Xvfb") is None):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def run_cli(*argv: str) -> int:
    """``hemascope ARGV`` in this process; returns the exit code."""
    from hemascope.cli.main import main

    return main([str(a) for a in argv])


@pytest.fixture(scope="session")
def cli():
    """``cli(*argv)``: run ``hemascope ARGV`` in this process and return the exit code."""
    return run_cli


@pytest.fixture(scope="session")
def sample_path() -> Path:
    """The embedded sample slide (what ``hemascope demo`` and the napari sample open)."""
    from hemascope.synthetic import sample_slide_path

    return sample_slide_path()


@pytest.fixture(scope="session")
def small_slide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1024² blood smear made with ``hemascope make-sample`` (its defaults, a denser smear)."""
    path = tmp_path_factory.mktemp("slides") / "small.ome.tif"
    assert run_cli("make-sample", path, "--size", "1024", "--seed", "5", "--wbc-density", "400",
                   "--quiet") == 0
    return path


@pytest.fixture(scope="session")
def field_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain 768² field image (PNG, no µm/px in the file), as from a camera on a microscope."""
    from PIL import Image

    from hemascope.synthetic import SmearSpec, render_field

    image, _ = render_field(SmearSpec(size=(768, 768), mpp=0.5, seed=21,
                                      glass_margin=0.0), masks=False)
    path = tmp_path_factory.mktemp("fields") / "field.png"
    Image.fromarray(image).save(path)
    return path


@pytest.fixture(scope="session")
def analyzed_sample(tmp_path_factory: pytest.TempPathFactory, sample_path: Path) -> tuple[int, Path]:
    """``hemascope analyze SAMPLE --out DIR`` with every default: (exit code, the slide's folder)."""
    out = tmp_path_factory.mktemp("analyze-sample")
    code = run_cli("analyze", sample_path, "--out", out, "--quiet")
    return code, out / "hemascope_sample"


@pytest.fixture
def blank_png(tmp_path: Path) -> Path:
    """A white image with no cells and no red cells (nothing to measure the pixel size from)."""
    from PIL import Image

    path = tmp_path / "blank.png"
    Image.fromarray(np.full((512, 512, 3), 245, np.uint8)).save(path)
    return path
