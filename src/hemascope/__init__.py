"""hemascope: whole-slide analysis of blood and bone-marrow smears.

The library is headless: importing :mod:`hemascope` (or running the analysis pipeline) never
imports napari, magicgui or Qt. The napari plugin lives in :mod:`hemascope.napari`.

Research use only — not for diagnosis.
"""

from __future__ import annotations

from hemascope._version import __version__

__all__ = ["__version__", "open_slide", "analyze_slide"]


def __getattr__(name: str):
    # Lazy top-level API: keeps `import hemascope` cheap (no torch, no dask at import time).
    if name == "open_slide":
        from hemascope.io import open_slide

        return open_slide
    if name == "analyze_slide":
        from hemascope.pipeline import analyze_slide

        return analyze_slide
    raise AttributeError(f"module 'hemascope' has no attribute {name!r}")
