"""Reading, normalising, initialising and saving images, with imageio (the original used
SciPy's imread/imsave, which SciPy has removed).

Images on disk are (H, W, 3) uint8 RGB; the network sees (1, H, W, 3) float32 with the VGG
mean pixel subtracted.
"""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np

from .config import CONFIG
from .errors import ImageError
from .files import replace_atomically

IMAGE_SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Any decoded image (grey, grey+alpha, RGB, RGBA; 8/16-bit, float, bool) as (H, W, 3) uint8.

    Transparent pixels are composited over white; 16-bit values are scaled down to 8 bits.
    """
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.dtype == np.uint16:
        values = image.astype(np.float64) / 257.0
    elif np.issubdtype(image.dtype, np.floating):
        values = image.astype(np.float64)
        if values.size and np.nanmax(values) <= 1.0:
            values = values * 255.0
    elif np.issubdtype(image.dtype, np.integer):
        values = image.astype(np.float64)
        if image.dtype.itemsize > 1 and values.size and values.max() > 255:
            values = values * (255.0 / values.max())
    else:
        raise ImageError(f"unsupported pixel type {image.dtype}")
    if values.ndim == 2:
        values = values[:, :, None]
    if values.ndim != 3 or values.shape[2] not in (1, 2, 3, 4):
        raise ImageError(f"unsupported image shape {image.shape}: expected (H, W) or (H, W, 1-4)")
    if values.shape[2] in (2, 4):  # an alpha channel: composite over white
        alpha = values[:, :, -1:] / 255.0
        values = values[:, :, :-1] * alpha + 255.0 * (1.0 - alpha)
    if values.shape[2] == 1:
        values = np.repeat(values, 3, axis=2)
    return np.clip(np.rint(np.nan_to_num(values)), 0, 255).astype(np.uint8)


def read_image(path) -> np.ndarray:
    """The image file at `path` as (H, W, 3) uint8 RGB; the first frame of an animation."""
    path = Path(path).expanduser()
    if not path.is_file():
        what = "is a folder, not an image file" if path.is_dir() else "does not exist"
        raise ImageError(f"image {path} {what}; give the path of a PNG or JPEG file")
    try:
        image = iio.imread(path, index=0, plugin="pillow")
    except Exception as exc:
        raise ImageError(f"{path} could not be read as an image ({type(exc).__name__}); "
                         f"give a PNG or JPEG file") from None
    if image.ndim < 2 or 0 in image.shape[:2]:
        raise ImageError(f"{path} holds no pixels; give a PNG or JPEG file")
    return to_rgb_uint8(image)


def resize_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8 resized to (height, width, 3) with a Lanczos filter (as is, if it fits)."""
    from PIL import Image

    if image.shape[:2] == (height, width):
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.LANCZOS))


def load_image(path, size=None, config=None) -> np.ndarray:
    """The image at `path` as (H, W, 3) uint8 RGB at `size` (width, height).

    The size defaults to `config`'s, or without one to CONFIG.IMAGE_WIDTH x CONFIG.IMAGE_HEIGHT.
    """
    if size is not None:
        width, height = size
    elif config is not None:
        width, height = config.image_width, config.image_height
    else:
        width, height = CONFIG.IMAGE_WIDTH, CONFIG.IMAGE_HEIGHT
    return resize_image(read_image(path), int(width), int(height))


def reshape_and_normalize_image(image, means=None):
    """(H, W, 3) image -> (1, H, W, 3) with the mean pixel subtracted: the network's input."""
    means = CONFIG.MEANS if means is None else np.reshape(np.asarray(means, dtype=np.float64), (1, 1, 1, 3))
    image = np.reshape(image, ((1,) + np.shape(image)))
    return image - means


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
    means = CONFIG.MEANS if means is None else np.reshape(np.asarray(means, dtype=np.float64), (1, 1, 1, 3))
    image = np.asarray(image) + means
    return np.clip(image[0], 0, 255).astype("uint8")


def write_image(path, pixels: np.ndarray) -> Path:
    """Write (H, W, 3) uint8 as PNG or JPEG (by the suffix), creating folders as needed.

    The file appears whole or not at all (nst_utils.files.replace_atomically).
    """
    path = Path(path).expanduser()
    kind = IMAGE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ImageError(f"cannot save {path}: use a .png, .jpg or .jpeg file name")
    extra = {"quality": 95} if kind == "JPEG" else {}
    return replace_atomically(
        path, lambda tmp: iio.imwrite(tmp, pixels, extension=path.suffix.lower(), **extra), ImageError)


def save_image(path, image, means=None) -> Path:
    """Save a (1, H, W, 3) network image to `path` (PNG or JPEG), creating folders."""
    return write_image(path, deprocess_image(image, means))
