"""The checks `generate` makes before TensorFlow is imported: a typo costs one line, not seconds.

Every image, the weights path, the output folder, the painting's size and the precision are
checked here from the files' headers alone; what is usable but surprising (a distorted aspect,
an animation's extra frames) is told in one `warning:` line each. Nothing here imports
TensorFlow, matplotlib or the painting core.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from .errors import ConfigError
from .settings import DEFAULTS, INITS

#: The smallest side a painting may have: VGG-19's four 2x2 poolings before conv5_1.
MIN_SIDE = 16
#: An aspect ratio changed by more than this factor is told to the user.
MAX_DISTORTION = 2.0
#: A scheme (two letters at least, so that C:/ stays a path) then ':/', as Path leaves a URL.
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")


def check(
    settings, allow_emulated_bfloat16: bool = False, weights_typed: bool = False, stream=None
) -> bool:
    """Refuse in one line (an NSTError) what the run cannot use; warn of what it uses oddly.
    weights_typed: the weights path came from --weights (else NST_WEIGHTS or the default).
    True when the run will emulate bfloat16, as allowed (said here, once)."""
    stream = stream or sys.stderr
    emulated = check_precision(settings.precision, allow_emulated_bfloat16)
    if emulated:
        from .hardware import NO_NATIVE_BFLOAT16

        print(
            f"warning: {NO_NATIVE_BFLOAT16}; bfloat16 is emulated, about 10x slower than "
            "float32, as --allow-emulated-bfloat16 allows",
            file=stream,
            flush=True,
        )
    named = [("--content", settings.content_image)]
    named += [("--style", path) for path in settings.style_images]
    if settings.init not in INITS:
        named.append(("--init", settings.init))
    for flag, path in named:
        _not_a_url(flag, path)
    from . import images

    sizes = {flag: images.image_size(path) for flag, path in named}  # the header alone
    for _, path in named:
        frames = _frames(path)
        if frames > 1:
            print(
                f"warning: {path} has {frames} frames; only its first is painted",
                file=stream,
                flush=True,
            )
    content_width, content_height = sizes["--content"]
    width, height = painting_size(settings, (content_width, content_height))
    if min(width, height) < MIN_SIDE:
        raise ConfigError(
            f"a {width}x{height} painting is too small: VGG-19 needs at least {MIN_SIDE} "
            f"pixels a side; give a larger --width/--height"
        )
    distortion = (width / height) / (content_width / content_height)
    if max(distortion, 1 / distortion) > MAX_DISTORTION:
        print(
            f"warning: the content is {content_width}x{content_height} and the painting "
            f"{width}x{height}, its aspect changed {max(distortion, 1 / distortion):.1f}x; "
            f"for the content's aspect use {_undistorted(width, content_width, content_height)}",
            file=stream,
            flush=True,
        )
    _weights_path(settings, weights_typed)
    _output_folder(settings)
    return emulated


def painting_size(settings, content_size) -> tuple:
    """(width, height) the run paints at from the content's (width, height): the settings' size,
    a missing side following the content's aspect (both missing: the defaults' size)."""
    from .options import model_size

    default = (DEFAULTS.image_width, DEFAULTS.image_height)
    return model_size(content_size[::-1], settings.image_width, settings.image_height, default)


def _undistorted(width, content_width, content_height) -> str:
    """The flags of a size with the content's aspect, as wide as `width` and 16 pixels a side."""
    height = round(width * content_height / content_width)
    if height < MIN_SIDE:
        height = MIN_SIDE
        width = round(MIN_SIDE * content_width / content_height)
    elif width < MIN_SIDE:
        width = MIN_SIDE
        height = round(MIN_SIDE * content_height / content_width)
    return f"--width {width} --height {height}"


def _not_a_url(flag, path) -> None:
    if _URL.match(str(path)):
        raise ConfigError(
            f"{flag} {path}: URLs are not supported; download the image and give "
            f"the path of the file"
        )


def _frames(path) -> int:
    """How many frames the image holds (an animated GIF, PNG or WebP: more than one)."""
    from PIL import Image

    try:
        with Image.open(Path(path).expanduser()) as im:
            return int(getattr(im, "n_frames", 1))
    except Exception:  # image_size read it already; a frame count is only a courtesy
        return 1


def _weights_path(settings, typed) -> None:
    """A missing or unreadable weights file is refused, unless it is the default path (which a
    run downloads to)."""
    from .weights import sources

    path = settings.vgg_model
    if sources.is_default_path(path) and not Path(path).expanduser().exists():
        return
    sources.check_weights_path(Path(path).expanduser(), weights_named_by(settings, typed))


def weights_named_by(settings, typed: bool = False) -> str | None:
    """What chose the weights path, for its messages: '--weights', NST_WEIGHTS or the default."""
    from .weights import sources

    if typed:
        return "--weights"
    return None if sources.is_default_path(settings.vgg_model) else sources.WEIGHTS_ENV


def _output_folder(settings) -> None:
    """The folder the run's folder goes in must be one that can be made and written."""
    target = Path(settings.run_dir or settings.output_dir).expanduser()
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    reason = None
    if not existing.is_dir():
        reason = "Not a directory"
    elif not os.access(existing, os.W_OK | os.X_OK):
        reason = "Permission denied"
    if reason is not None:
        raise ConfigError(
            f"cannot write to the output folder {target} ({reason}); choose another with --output"
        )


def check_precision(precision: str, allow_emulated: bool = False) -> bool:
    """bfloat16 where the CPU only emulates it (about ten times slower than float32) is refused
    unless allowed; nst_utils.hardware reads the CPU's flags. True: emulated, and allowed."""
    from .hardware import NO_NATIVE_BFLOAT16, bfloat16_support

    emulated = precision == "bfloat16" and bfloat16_support() is None
    if emulated and not allow_emulated:
        raise ConfigError(
            f"{NO_NATIVE_BFLOAT16}, so --precision bfloat16 would be emulated, about 10x "
            "slower than float32; use "
            "--precision float32, or add --allow-emulated-bfloat16 to run it anyway"
        )
    return emulated
