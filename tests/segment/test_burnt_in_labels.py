"""Scale bars and text burnt into a camera's picture are no white cells (issue #15 item 2)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from segment_fields import MPP, field

from hemascope.segment import find_cells
from hemascope.segment.stain import coloured_stain, ink_like

#: Height (px) of the glass strip the label is burnt into, below the field.
STRIP = 110


def _with_strip(image: np.ndarray) -> np.ndarray:
    """The field with a strip of its own glass below it (where the camera writes its label)."""
    glass = np.percentile(image.reshape(-1, 3), 99, axis=0).astype(np.uint8)
    return np.concatenate([image, np.broadcast_to(glass, (STRIP, image.shape[1], 3))], axis=0)


def _stamped(image: np.ndarray, style: str) -> np.ndarray:
    """``image`` with a 10 µm scale bar and its text in the strip's right half."""
    out = Image.fromarray(image.copy())
    draw = ImageDraw.Draw(out)
    top, left, bottom, right = image.shape[0] - STRIP + 10, image.shape[1] - 260, image.shape[0] - 10, image.shape[1] - 10
    ink = {"black": (0, 0, 0), "red": (220, 20, 20), "label": (0, 0, 0)}[style]
    if style == "label":  # black on a white label
        draw.rectangle((left, top, right, bottom), fill=(255, 255, 255))
    draw.rectangle((left + 20, bottom - 20, left + 20 + int(10 / MPP) * 4, bottom - 8), fill=ink)
    draw.text((left + 20, top + 5), "10 µm", fill=ink, font=ImageFont.load_default(size=40))
    return np.asarray(out)


@pytest.mark.parametrize("style", ["black", "red", "label"])
def test_a_burnt_in_scale_bar_is_not_a_white_cell(style):
    image, _, _ = field()
    plain = find_cells(_with_strip(image), mpp=MPP, num_workers=1).cells
    stamped = find_cells(_stamped(_with_strip(image), style), mpp=MPP, num_workers=1).cells
    assert len(plain) > 0 and (plain["row"] < image.shape[0]).all()
    assert (stamped["row"] < image.shape[0]).all()  # nothing in the strip
    assert len(stamped) == len(plain)


def test_a_monochrome_picture_has_no_ink_to_tell_from_stain():
    """Without colour every nucleus is grey: the ink test is not made there."""
    image, _, _ = field()
    grey = np.repeat(np.asarray(Image.fromarray(image).convert("L"))[..., None], 3, axis=2)
    glass = np.percentile(image.reshape(-1, 3), 99, axis=0)
    assert coloured_stain(image, glass) and not coloured_stain(grey, np.percentile(grey.reshape(-1, 3), 99, axis=0))


def _rgb(od: tuple[float, float, float], glass: tuple[int, int, int]) -> tuple[float, ...]:
    """The colour of a natural-log optical density ``od`` on ``glass``."""
    return tuple(g * np.exp(-d) for g, d in zip(glass, od, strict=True))


def test_ink_is_told_from_stained_nuclei():
    glass, yellow = (250, 245, 240), (255, 212, 142)
    nuclei = [
        _rgb((0.850, 1.506, 0.356), glass),  # CellaVision MGG (classify.stain.STAINS)
        _rgb((0.479, 0.636, 0.012), glass),  # the Taleqani fields' blue-grey stain
        _rgb((0.50, 1.40, 0.60), glass),  # a magenta (Wright, Leishman) nucleus
        _rgb((0.60, 1.00, 0.73), yellow),  # a rapid stain on yellow glass, as blue as nuclei were measured
    ]
    for nucleus in nuclei:
        assert not ink_like(nucleus, glass if nucleus is not nuclei[-1] else yellow), nucleus
    assert ink_like((30, 28, 27), glass)  # black text
    assert ink_like((220, 80, 80), glass)  # red text
    assert ink_like((70, 70, 70), yellow)  # grey text on a white label over yellow glass
