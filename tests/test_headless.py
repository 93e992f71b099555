"""The compute library must never import a GUI toolkit (the napari room is the only exception)."""

import subprocess
import sys

GUI_MODULES = ("napari", "magicgui", "qtpy", "PyQt5", "PyQt6", "PySide6", "superqt", "vispy")


def _imported_after(code: str) -> set[str]:
    probe = (
        f"{code}\n"
        "import sys, json\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    import json

    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_import_hemascope_is_headless():
    mods = _imported_after("import hemascope, hemascope.io, hemascope.errors, hemascope.classes")
    assert not mods & set(GUI_MODULES)


def test_cli_parser_is_headless():
    mods = _imported_after("from hemascope.cli.main import build_parser; build_parser()")
    assert not mods & set(GUI_MODULES)
