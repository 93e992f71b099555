"""Reader for flat images (PNG, JPEG): one decoded level plus a lazily computed pyramid."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import dask
import dask.array as da
import numpy as np

from hemascope.errors import CorruptSlideError, UnsupportedFormatError
from hemascope.io.formats import TIFF_MAGIC
from hemascope.io.lazy import lazy_pyramid
from hemascope.io.read_openslide import rgba_on_white
from hemascope.io.slide import Slide

if TYPE_CHECKING:
    from PIL import Image

CHUNK = 512
_PNG_BIT_DEPTH_OFFSET = 24
_PNG_HEADER = _PNG_BIT_DEPTH_OFFSET + 2

#: PIL modes of colour pictures, decoded to 8-bit RGB (alpha composited over white glass).
COLOUR_MODES = ("RGB", "RGBA", "RGBa", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV")


def picture_rgb(img: Image.Image, name: str) -> np.ndarray:
    """Decode a colour picture to ``(rows, cols, 3)`` uint8 RGB.

    Palette, CMYK and other colour modes are converted; transparent pixels are composited over
    white (the colour of glass), so a cell cut out on a transparent background reads as a cell
    on bare glass.

    Raises
    ------
    UnsupportedFormatError
        Greyscale or binary pictures (no stain colour to read), or a picture with no opaque pixel.
    """
    if img.mode not in COLOUR_MODES:
        raise UnsupportedFormatError(
            f"{name}: grayscale or {img.mode} image, expected a colour (RGB) picture"
        )
    if img.mode in ("RGBA", "RGBa", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA"))
        if not rgba[..., 3].any():
            raise UnsupportedFormatError(f"{name}: RGBA image with no opaque pixel")
        return rgba_on_white(rgba)
    return np.asarray(img if img.mode == "RGB" else img.convert("RGB"))


def _png_depth_and_colour(header: bytes) -> tuple[int, int] | None:
    """Bit depth and colour type from a file's first :data:`_PNG_HEADER` bytes (``None``: not a
    whole PNG header)."""
    if not header.startswith(b"\x89PNG") or len(header) < _PNG_HEADER:
        return None
    return header[_PNG_BIT_DEPTH_OFFSET], header[_PNG_BIT_DEPTH_OFFSET + 1]


def _sample_bits(img: Image.Image, header: bytes) -> int:
    """Bits per sample as stored in the file (PIL reads 16-bit RGB as 8-bit, keeping the high byte)."""
    if img.format == "TIFF":
        bits = getattr(img, "tag_v2", {}).get(258, (8,))
        return int(max(bits) if isinstance(bits, tuple) else bits)
    png = _png_depth_and_colour(header)
    return 8 if png is None else int(png[0])


def to_8bit(samples: np.ndarray) -> np.ndarray:
    """Deep unsigned samples to uint8 over the bit depth they use (a 12-bit camera in a 16-bit
    file: 0-4095 -> 0-255), so brightness is kept as recorded.

    Raises
    ------
    UnsupportedFormatError
        Signed or floating-point samples.
    """
    if samples.dtype == np.uint8:
        return samples
    if samples.dtype.kind != "u":
        raise UnsupportedFormatError(f"{samples.dtype} samples; hemascope reads unsigned integers")
    bits = max(8, int(np.ceil(np.log2(float(samples.max()) + 1.0))))
    return np.round(samples * (255.0 / (2**bits - 1))).astype(np.uint8)


def deep_samples_to_rgb(samples: np.ndarray, name: str) -> np.ndarray:
    """Deep colour samples, chunky ``(rows, cols, 3|4)`` or planar ``(3|4, rows, cols)``, as 8-bit
    RGB (:func:`to_8bit` over the colour channels; alpha dropped).

    Raises
    ------
    UnsupportedFormatError
        Not colour samples, or signed / floating-point ones.
    """
    if samples.ndim == 3 and samples.shape[0] in (3, 4) and samples.shape[-1] not in (3, 4):
        samples = np.moveaxis(samples, 0, -1)  # planar
    if samples.ndim != 3 or samples.shape[-1] not in (3, 4):
        raise UnsupportedFormatError(
            f"{name}: {samples.dtype} grayscale or {samples.shape} image, expected RGB"
        )
    try:
        return np.ascontiguousarray(to_8bit(samples[..., :3]))
    except UnsupportedFormatError as exc:
        raise UnsupportedFormatError(f"{name}: {exc}") from None


def _deep_picture(path: Path, fmt: str, name: str) -> np.ndarray:
    """A > 8-bit TIFF or PNG decoded at full depth, as 8-bit RGB."""
    if fmt == "TIFF":
        import tifffile

        return deep_samples_to_rgb(tifffile.imread(path, key=0), name)
    import imagecodecs

    return deep_samples_to_rgb(imagecodecs.png_decode(path.read_bytes()), name)


def read_picture(path: Path, name: str | None = None) -> np.ndarray:
    """Read a whole picture file (PNG, JPEG, BMP, TIFF...) as ``(rows, cols, 3)`` uint8 RGB.

    Pictures of more than 8 bits per sample (scientific cameras, 16-bit PNG/TIFF) are scaled
    by :func:`to_8bit`; colour modes are converted by :func:`picture_rgb`. ``name`` starts the
    error messages (default: the file name).

    Raises
    ------
    UnsupportedFormatError
        Not a colour picture (see :func:`picture_rgb`) or signed/floating-point samples.
    PIL.UnidentifiedImageError, OSError
        The file cannot be decoded.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    name = path.name if name is None else name
    with open(path, "rb") as fh:  # one open: the PNG header's bit depth, then the decoder
        header = fh.read(_PNG_HEADER)
        fh.seek(0)
        try:
            img = Image.open(fh)
        except UnidentifiedImageError:
            if header[:4] in TIFF_MAGIC:  # a TIFF that PIL cannot read (floating point, some codecs)
                return _deep_picture(path, "TIFF", name)
            raise
        with img:
            if img.format in ("TIFF", "PNG") and img.mode in ("RGB", "RGBA") and _sample_bits(img, header) > 8:
                return _deep_picture(path, img.format, name)
            img.load()
            return picture_rgb(img, name)


class FlatImage:
    """Decodes a whole picture once, on first use (flat formats cannot be read by region).

    Parameters
    ----------
    path
        The file.
    decode
        ``path -> (rows, cols, 3) uint8`` (default :func:`read_picture`).
    """

    def __init__(self, path: Path, decode: Callable[[Path], np.ndarray] = read_picture) -> None:
        self._path = path
        self._decode = decode
        self._array: np.ndarray | None = None
        self._lock = threading.Lock()

    def level(self, rows: int, cols: int) -> da.Array:
        """The picture as a lazy ``(rows, cols, 3)`` uint8 level in :data:`CHUNK`-pixel blocks
        over the one decode."""
        whole = da.from_delayed(dask.delayed(self.load, pure=True)(), shape=(rows, cols, 3), dtype=np.uint8)
        return whole.rechunk((CHUNK, CHUNK, 3))

    def load(self) -> np.ndarray:
        with self._lock:
            if self._array is None:
                try:
                    self._array = np.ascontiguousarray(self._decode(self._path))
                except UnsupportedFormatError:
                    raise
                except Exception as exc:  # noqa: BLE001 - any decoder failure means a damaged file
                    raise CorruptSlideError(
                        f"{self._path.name}: cannot decode ({exc!s:.200})"
                    ) from exc
            return self._array

    def close(self) -> None:
        self._array = None

    def __dask_tokenize__(self) -> tuple:
        stat = self._path.stat()
        return ("hemascope-flat-image", str(self._path), stat.st_mtime_ns, stat.st_size)


def _check_png_depth(name: str, header: bytes) -> None:
    png = _png_depth_and_colour(header)
    if png is None:
        raise CorruptSlideError(f"{name}: truncated PNG header")
    depth, colour = png
    if not ((depth in (8, 16) and colour in (2, 6)) or (depth <= 8 and colour == 3)):
        raise UnsupportedFormatError(
            f"{name}: PNG with {depth}-bit samples, colour type {colour}; "
            "hemascope reads 8- or 16-bit colour only"
        )


def open_image(path: Path) -> Slide:
    """Open a PNG, JPEG or BMP picture as a :class:`Slide` (decoded on first pixel access, by
    :func:`read_picture`).

    Parameters
    ----------
    path
        An existing PNG, JPEG or BMP file.

    Returns
    -------
    Slide
        ``format="image"``, level 0 chunked in 512-pixel blocks over one decode, with a lazy 2x
        pyramid; ``mpp`` from the file's DPI is not trusted (``None``) — pass ``mpp=`` instead.

    Raises
    ------
    UnsupportedFormatError
        Not a colour picture (greyscale, binary), or too large for a flat image.
    CorruptSlideError
        The header cannot be parsed (the pixels are checked when first read).
    """
    from PIL import Image

    with open(path, "rb") as fh:
        header = fh.read(_PNG_HEADER)
    if header.startswith(b"\x89PNG"):
        _check_png_depth(path.name, header)
    try:
        with Image.open(path) as img:
            mode, (width, height), fmt = img.mode, img.size, img.format
    except Image.DecompressionBombError as exc:
        raise UnsupportedFormatError(
            f"{path.name}: too large for a flat image; convert it to a pyramidal TIFF"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - unreadable header
        raise CorruptSlideError(
            f"{path.name}: cannot read the image header ({exc!s:.200})"
        ) from exc
    if mode not in COLOUR_MODES:
        raise UnsupportedFormatError(f"{path.name}: {mode} image; hemascope reads 8-bit colour only")
    if width == 0 or height == 0:
        raise CorruptSlideError(f"{path.name}: zero-size image")
    flat = FlatImage(path)
    slide = Slide(
        levels=lazy_pyramid(flat.level(height, width), CHUNK),
        mpp=None,
        path=path,
        format="image",
        metadata={"image_format": fmt, "mode": mode, "tile_size": None, "pyramid": "computed"},
    )
    slide._closers.append(flat)
    return slide
