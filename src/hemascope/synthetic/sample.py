"""The embedded sample slide: committed under ``sample_data/``, regenerated into a cache otherwise."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hemascope.synthetic.spec import DomainShift, SmearSpec

#: File name of the sample slide.
SAMPLE_NAME = "hemascope_sample.ome.tif"

#: The sample: a 3072 x 3072 peripheral-blood smear at 0.5 µm/px (1.5 x 1.5 mm) of an NPM1-mutated
#: AML, rich in white cells (cup-like blasts among normal leukocytes); JPEG quality 85 keeps the
#: committed file under 4 MB.
SAMPLE_SPEC = SmearSpec(
    size=(3072, 3072),
    mpp=0.5,
    seed=2024,
    kind="blood",
    subtype="NPM1",
    wbc_density=300.0,
    glass_margin=0.03,
    shift=DomainShift(jpeg_quality=85),
)


def _checkout_dir() -> Path:
    return Path(__file__).resolve().parents[3] / "sample_data"


def cache_dir() -> Path:
    """hemascope's cache folder: ``$HEMASCOPE_CACHE_DIR``, else ``~/.cache/hemascope``."""
    return Path(
        os.environ.get("HEMASCOPE_CACHE_DIR") or Path.home() / ".cache" / "hemascope"
    ).expanduser()


def _is_current(path: Path) -> bool:
    """Whether ``path`` and its truth exist and were made from :data:`SAMPLE_SPEC` by this generator."""
    from hemascope.errors import DataError
    from hemascope.synthetic.truth import GENERATOR_VERSION, GroundTruth

    if not path.is_file():
        return False
    try:
        label = GroundTruth.load(path).label
        return (
            label.get("spec") == SAMPLE_SPEC.to_dict()
            and label.get("generator_version") == GENERATOR_VERSION
        )
    except DataError:
        return False


def sample_slide_path() -> Path:
    """Path of the sample slide (pyramidal OME-TIFF with ``.cells.csv`` and ``.truth.json`` beside it).

    The copy committed in the source checkout's ``sample_data/`` is used when present and current;
    otherwise the slide is generated deterministically (a few seconds) into
    ``cache_dir() / "sample"`` once, and reused after.

    Returns
    -------
    pathlib.Path
        The slide file.
    """
    from hemascope.synthetic.smear_file import make_smear
    from hemascope.synthetic.truth import truth_paths

    committed = _checkout_dir() / SAMPLE_NAME
    if _is_current(committed):
        return committed
    target = cache_dir() / "sample" / SAMPLE_NAME
    if _is_current(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        built = Path(tmp) / SAMPLE_NAME
        make_smear(built, SAMPLE_SPEC)
        for key in ("cells", "label"):  # truth first: the slide appearing last marks completion
            os.replace(truth_paths(built)[key], truth_paths(target)[key])
        os.replace(built, target)
        shutil.rmtree(tmp, ignore_errors=True)
    return target
