"""--preserve-colors: style transfer on luminance only, keeping the content's colours.

As in Gatys et al. (2016), "Preserving Color in Neural Artistic Style Transfer": the content and
style images are reduced to their luminance (Y of YIQ), the style's luminance is matched to the
content's mean and spread, the transfer runs on these grey images, and each result's luminance
is recombined with the content's chroma (I and Q). Pixels are (H, W, 3) RGB in [0, 255].
"""

from __future__ import annotations

import numpy as np

#: RGB -> YIQ (NTSC); rows give Y, I, Q.
RGB_TO_YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]]
)
YIQ_TO_RGB = np.linalg.inv(RGB_TO_YIQ)


def rgb_to_yiq(pixels) -> np.ndarray:
    """(H, W, 3) RGB -> (H, W, 3) float64 YIQ."""
    return np.asarray(pixels, dtype=np.float64) @ RGB_TO_YIQ.T


def yiq_to_rgb(yiq) -> np.ndarray:
    """(H, W, 3) YIQ -> (H, W, 3) float64 RGB (not clipped)."""
    return np.asarray(yiq, dtype=np.float64) @ YIQ_TO_RGB.T


def luminance_image(pixels, match=None) -> np.ndarray:
    """The luminance of `pixels` as a grey (H, W, 3) float64 RGB image.

    match: another image whose luminance mean and standard deviation the result takes on (used
    for the style image, so its brightness follows the content's).
    """
    y = rgb_to_yiq(pixels)[..., 0]
    if match is not None:
        target = rgb_to_yiq(match)[..., 0]
        spread = y.std()
        y = (y - y.mean()) * (target.std() / spread if spread > 0 else 1.0) + target.mean()
    return np.repeat(y[..., None], 3, axis=2)


def as_pixels(image) -> np.ndarray:
    """A float RGB image as uint8 pixels: rounded and clipped to [0, 255]."""
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def luminance_inputs(content, styles, init=None) -> tuple:
    """(content, styles, init) as luminance images: each style's matched to the content's."""
    styles = [luminance_image(p, match=content) for p in styles]
    init = None if init is None else luminance_image(init)
    return luminance_image(content), styles, init


def recombine(generated, content) -> np.ndarray:
    """(H, W, 3) uint8: the luminance of `generated` with the chroma (I, Q) of `content`."""
    yiq = rgb_to_yiq(content)
    yiq[..., 0] = rgb_to_yiq(generated)[..., 0]
    return as_pixels(yiq_to_rgb(yiq))
