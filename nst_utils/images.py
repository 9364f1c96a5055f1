"""Reading, normalising, initialising and saving images, with Pillow and imageio (the original
used SciPy's imread/imsave, which SciPy has removed).

Images on disk are (H, W, 3) uint8 RGB, in any mode Pillow reads (CMYK, palette, grey, 16-bit,
float, with or without alpha), turned upright by their EXIF orientation; the network sees
(1, H, W, 3) float32 with the VGG mean pixel subtracted.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from .config import CONFIG
from .errors import ImageError, ImageTooLargeError
from .files import replace_atomically

IMAGE_SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}

# Formats people have that Pillow cannot decode, by the bytes they start with (offset, bytes).
_UNSUPPORTED_SIGNATURES = [
    (
        "HEIC/HEIF (an iPhone photo)",
        4,
        (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftyphevc", b"ftypheim"),
    ),
    ("AVIF", 4, (b"ftypavif", b"ftypavis")),
    ("PDF", 0, (b"%PDF",)),
    ("SVG", 0, (b"<svg", b"<?xml")),
    ("camera RAW (CR2)", 8, (b"CR\x02",)),
]
_OPEN_LOCK = threading.Lock()
_LANCZOS = 1  # PIL.Image.Resampling.LANCZOS, without importing Pillow at import time


def max_decode_pixels() -> int | None:
    """The most pixels nst decodes from one file: Pillow's decompression-bomb error threshold."""
    from PIL import Image

    return None if Image.MAX_IMAGE_PIXELS is None else 2 * int(Image.MAX_IMAGE_PIXELS)


@contextlib.contextmanager
def _own_bomb_check():
    """Let Pillow open any size quietly: nst checks the pixels it will decode itself."""
    from PIL import Image

    with _OPEN_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _sniff_unsupported(path: Path) -> str | None:
    """The name of a known image format Pillow cannot read that the file starts with, or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return None
    for name, offset, signatures in _UNSUPPORTED_SIGNATURES:
        if any(head[offset : offset + len(sig)] == sig for sig in signatures):
            return name
    return None


def _looks_truncated(path: Path) -> bool:
    """True when a JPEG lacks its end marker or a PNG its IEND chunk: the file was cut short."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            f.seek(max(0, os.path.getsize(path) - 16))
            tail = f.read()
    except OSError:
        return False
    if head.startswith(b"\xff\xd8"):
        return b"\xff\xd9" not in tail
    if head.startswith(b"\x89PNG"):
        return b"IEND" not in tail
    return False


def _undecodable(path: Path, kind: str | None, exc: Exception) -> ImageError:
    """The error for a file Pillow recognised but could not decode: truncated, or else damaged."""
    if _looks_truncated(path):
        return ImageError(
            f"{path} is truncated: the file ends before its last pixels; download "
            f"or export it again"
        )
    return ImageError(
        f"{path} is a damaged {kind or 'image'} file ({exc}); download or export it "
        f"again, or save it anew as PNG or JPEG"
    )


def _open(path: Path):
    """The file at `path` opened lazily by Pillow (header only), or an ImageError naming why not."""
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        raise ImageError(f"image {path} does not exist; give the path of a PNG or JPEG file")
    if path.is_dir():
        raise ImageError(
            f"image {path} is a folder, not an image file; give the path of a PNG or JPEG file"
        )
    if not path.is_file():
        raise ImageError(f"image {path} is not a regular file; give the path of a PNG or JPEG file")
    try:
        if path.stat().st_size == 0:
            raise ImageError(
                f"{path} could not be read as an image: the file is empty (0 bytes); "
                f"give a PNG or JPEG file"
            )
        with _own_bomb_check():
            return Image.open(path)
    except PermissionError:
        raise ImageError(
            f"{path} cannot be read: permission denied; make it readable "
            f"(chmod u+r) or copy it somewhere you can read"
        ) from None
    except UnidentifiedImageError:
        kind = _sniff_unsupported(path)
        if kind is not None:
            raise ImageError(
                f"{path} is a {kind} file, which nst cannot read; convert it to PNG or JPEG"
            ) from None
        raise ImageError(
            f"{path} could not be read as an image: its contents are in no image "
            f"format Pillow knows; give a PNG or JPEG file"
        ) from None
    except OSError as exc:
        if exc.errno is not None:  # the file system's refusal, not the content's
            raise ImageError(
                f"{path} cannot be read ({exc.strerror or exc}); give a readable PNG or JPEG file"
            ) from None
        raise _undecodable(path, None, exc) from None
    except (ValueError, SyntaxError, EOFError) as exc:
        raise _undecodable(path, None, exc) from None


_SWAPS_SIDES = {5, 6, 7, 8}  # EXIF orientations that turn the picture a quarter


def _orientation(im) -> int:
    """The EXIF orientation (1-8) of an open image; 1 (as stored) when it has none or a damaged
    one. The turn itself is PIL.ImageOps.exif_transpose's."""
    try:
        value = int(im.getexif().get(0x0112, 1))
    except Exception:  # a damaged EXIF block: show the pixels as stored
        return 1
    return value if 1 <= value <= 8 else 1


def image_size(path) -> tuple[int, int]:
    """(width, height) of the image at `path` as shown (EXIF orientation applied), from its
    header."""
    path = Path(path).expanduser()
    with _open(path) as im:
        width, height = im.size
        return (height, width) if _orientation(im) in _SWAPS_SIDES else (width, height)


def read_image(path, at_least=None) -> np.ndarray:
    """The image file at `path` as (H, W, 3) uint8 RGB, upright; the first frame of an animation.

    at_least: (width, height) the caller will resize to; a large JPEG is then decoded at a reduced
    scale (1/2 to 1/8) still at least that size, so its full size never sits in memory.
    """
    return np.asarray(_decode(Path(path).expanduser(), at_least))


def _decode(path: Path, at_least=None):
    """The file at `path` as an upright Pillow RGB image (see `read_image`)."""
    from PIL import ImageOps

    with _open(path) as im:
        kind = im.format
        orientation = _orientation(im)
        if at_least is not None and kind == "JPEG":
            want = (int(at_least[0]), int(at_least[1]))
            if orientation in _SWAPS_SIDES:
                want = want[::-1]
            im.draft(None, want)
        width, height = im.size
        limit = max_decode_pixels()
        if limit is not None and width * height > limit:
            raise ImageTooLargeError(
                f"{path} is {width}x{height}, {width * height / 1e6:.0f} million pixels, more than "
                f"the {limit / 1e6:.0f} million nst decodes at once; reduce the photo (for "
                f"example to {_fitting_width(width, height, limit)} pixels wide) and try again"
            )
        if width == 0 or height == 0:
            raise ImageError(f"{path} holds no pixels; give a PNG or JPEG file")
        try:
            with _own_bomb_check():
                im.load()
            rgb = _pil_to_rgb(im if orientation == 1 else ImageOps.exif_transpose(im))
        except ImageError:
            raise
        except MemoryError:
            raise ImageTooLargeError(
                f"not enough memory to decode {path} ({width}x{height}); reduce the photo (for "
                f"example to {min(width, 4000)} pixels wide) and try again"
            ) from None
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise _undecodable(path, kind, exc) from None
    return rgb


def _fitting_width(width: int, height: int, limit: int) -> int:
    return max(1, int((limit * width / height) ** 0.5) // 100 * 100)


def pil_to_rgb_uint8(im) -> np.ndarray:
    """A loaded Pillow image of any mode as (H, W, 3) uint8 RGB.

    8-bit modes are converted by Pillow (CMYK, YCbCr, LAB, HSV, palette, 1-bit); transparency
    (alpha, a palette's transparent index) is composited over white; 16-bit, 32-bit and float
    modes go through `to_rgb_uint8`.
    """
    return np.asarray(_pil_to_rgb(im))


def _pil_to_rgb(im):
    """`pil_to_rgb_uint8` as a Pillow RGB image (no copy into numpy for 8-bit modes)."""
    from PIL import Image

    mode = im.mode
    if mode == "RGB":
        return im
    if mode.startswith("I") or mode.startswith("F"):
        return Image.fromarray(to_rgb_uint8(np.asarray(im)))
    if mode == "La":
        im, mode = im.convert("LA"), "LA"
    if mode in ("RGBA", "LA", "PA", "RGBa") or (
        mode in ("P", "L", "RGB") and "transparency" in im.info
    ):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    try:
        return im.convert("RGB")
    except (ValueError, OSError):
        raise ImageError(
            f"images in Pillow's {mode} colour mode cannot be converted to RGB; "
            f"save it as an RGB PNG or JPEG"
        ) from None


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Any decoded array (grey, grey+alpha, RGB, RGBA; 8/16/32-bit, float, bool) as (H, W, 3) uint8.

    Transparent pixels are composited over white; 16-bit values are scaled down to 8 bits.
    """
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.dtype == np.uint8:
        values = image
    elif image.dtype == np.uint16 or image.dtype == np.dtype(">u2"):
        values = image.astype(np.float32) / np.float32(257.0)
    elif np.issubdtype(image.dtype, np.floating):
        values = image.astype(np.float32)
        if values.size and np.nanmax(values) <= 1.0:
            values = values * np.float32(255.0)
    elif np.issubdtype(image.dtype, np.integer):
        values = image.astype(np.float32)
        if image.dtype.itemsize > 1 and values.size and values.max() > 255:
            values = values * np.float32(255.0 / values.max())
    else:
        raise ImageError(f"unsupported pixel type {image.dtype}")
    if values.ndim == 2:
        values = values[:, :, None]
    if values.ndim != 3 or values.shape[2] not in (1, 2, 3, 4):
        raise ImageError(f"unsupported image shape {image.shape}: expected (H, W) or (H, W, 1-4)")
    if values.shape[2] in (2, 4):  # an alpha channel: composite over white
        alpha = values[:, :, -1:].astype(np.float32) / np.float32(255.0)
        values = values[:, :, :-1] * alpha + np.float32(255.0) * (1 - alpha)
    if values.shape[2] == 1:
        values = np.repeat(values, 3, axis=2)
    if values.dtype == np.uint8:
        return values
    return np.clip(np.rint(np.nan_to_num(values)), 0, 255).astype(np.uint8)


def resize_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8 resized to (height, width, 3) with a Lanczos filter (as is, if it fits).

    A large reduction first averages whole blocks of pixels (Pillow's reducing_gap), which
    costs less time and memory and looks the same.
    """
    from PIL import Image

    if image.shape[:2] == (height, width):
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), _LANCZOS, reducing_gap=3.0))


def load_image(path, size=None, config=None) -> np.ndarray:
    """The image at `path` as (H, W, 3) uint8 RGB at `size` (width, height).

    The size defaults to `config`'s, or without one to CONFIG.IMAGE_WIDTH x CONFIG.IMAGE_HEIGHT.
    A large JPEG is decoded at reduced scale first (see `read_image`).
    """
    if size is not None:
        width, height = size
    elif config is not None:
        width, height = config.image_width, config.image_height
    else:
        width, height = CONFIG.IMAGE_WIDTH, CONFIG.IMAGE_HEIGHT
    width, height = int(width), int(height)
    image = _decode(Path(path).expanduser(), at_least=(width, height))
    if image.size != (width, height):
        image = image.resize((width, height), _LANCZOS, reducing_gap=3.0)
    return np.asarray(image)


def _means(means) -> np.ndarray:
    """The mean pixel as (1, 1, 1, 3) float64: `means` (R, G, B), or CONFIG's when None."""
    return (
        CONFIG.MEANS if means is None else np.reshape(np.asarray(means, np.float64), (1, 1, 1, 3))
    )


def reshape_and_normalize_image(image, means=None):
    """(H, W, 3) image -> (1, H, W, 3) with the mean pixel subtracted: the network's input."""
    return np.reshape(image, ((1,) + np.shape(image))) - _means(means)


def generate_noise_image(content_image, noise_ratio=None, seed=None):
    """Initial image: uniform(-20, 20) noise blended with the content, (1, H, W, 3) float32.

    seed: None draws from numpy's global state as the original did; an int or a
    `numpy.random.Generator` makes the draw repeatable.
    """
    noise_ratio = CONFIG.NOISE_RATIO if noise_ratio is None else noise_ratio
    shape = np.shape(content_image)
    if len(shape) != 4 or shape[0] != 1 or shape[3] != 3:
        raise ImageError(f"content_image must have shape (1, H, W, 3), got {shape}")
    if seed is None:
        noise = np.random.uniform(-20, 20, shape).astype("float32")
    else:
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        noise = rng.uniform(-20, 20, shape).astype("float32")
    return noise * noise_ratio + content_image * (1 - noise_ratio)


def deprocess_image(image, means=None) -> np.ndarray:
    """(1, H, W, 3) network image -> (H, W, 3) uint8: add the means back and clip to [0, 255]."""
    return np.clip((np.asarray(image) + _means(means))[0], 0, 255).astype("uint8")


def write_image(path, pixels: np.ndarray) -> Path:
    """Write (H, W, 3) uint8 as PNG or JPEG (by the suffix), creating folders as needed.

    The file appears whole or not at all (nst_utils.files.replace_atomically).
    """
    path = Path(path).expanduser()
    kind = IMAGE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ImageError(f"cannot save {path}: use a .png, .jpg or .jpeg file name")
    extra = {"quality": 95} if kind == "JPEG" else {}
    # Encoded in memory, then written: imageio writing to a file that fails to close (a full
    # disk) closed it again when collected and printed a traceback ("Exception ignored").
    return replace_atomically(
        path,
        lambda tmp: tmp.write_bytes(
            iio.imwrite("<bytes>", pixels, extension=path.suffix.lower(), **extra)
        ),
        ImageError,
    )


def save_image(path, image, means=None) -> Path:
    """Save a (1, H, W, 3) network image to `path` (PNG or JPEG), creating folders."""
    return write_image(path, deprocess_image(image, means))
