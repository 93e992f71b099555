"""What a folder on the command line stands for (`io.paths`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hemascope.classify import expand_image_paths
from hemascope.errors import InvalidInputError
from hemascope.io.paths import expand_slide_paths


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_slides_and_pictures_of_a_folder_skip_hidden_files_and_zarr_stores(tmp_path):
    a = _touch(tmp_path / "p1" / "a.jpg")
    b = _touch(tmp_path / "p1" / "sub" / "b.png")
    slide = _touch(tmp_path / "s.svs")
    _touch(tmp_path / "p1" / "._a.jpg")  # macOS resource fork: not an image
    _touch(tmp_path / ".cache" / "c.png")
    _touch(tmp_path / "docs" / "notes.txt")
    store = tmp_path / "img.zarr"
    _touch(store / "zarr.json")
    _touch(store / "0" / "inside.png")  # a chunk folder is not a picture folder
    assert expand_image_paths([tmp_path]) == sorted([a, b])
    assert expand_slide_paths([tmp_path]) == [str(p) for p in sorted([a, store, b, slide])]
    with pytest.raises(InvalidInputError, match="folder holds no images"):
        expand_image_paths([tmp_path / "docs"])
