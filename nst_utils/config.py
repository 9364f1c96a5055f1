"""The original notebook's CONFIG, and the facts of the original that the package shares.

`CONFIG` is the original helper module's class: its upper-case attributes are the original
values, and a notebook changes them by assignment (``CONFIG.IMAGE_WIDTH = 200``); the helpers
that read them (`load_vgg_model`, `load_image`, `generate_noise_image`,
`reshape_and_normalize_image`, `save_image`) read them when called, so an assignment takes
effect on the next call. Its paths are absolute, so they hold wherever the notebook runs from.

A run's settings, with these values as defaults, are `nst_utils.settings.Settings`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np

#: The repository root: relative default paths (weights, images, output) are resolved from here,
#: so the package works whatever the current directory is (for instance inside notebooks/).
PROJECT_ROOT = Path(__file__).resolve().parent.parent

WEIGHTS_FILENAME = "imagenet-vgg-verydeep-19.mat"


def user_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """nst's own cache folder, used when the weights' folder is not writable.

    ``$XDG_CACHE_HOME/nst`` if XDG_CACHE_HOME is set, otherwise ``~/.cache/nst``.
    """
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "nst"


#: The five style layers of the original, each weighted 0.2.
STYLE_LAYERS = (
    ("conv1_1", 0.2),
    ("conv2_1", 0.2),
    ("conv3_1", 0.2),
    ("conv4_1", 0.2),
    ("conv5_1", 0.2),
)


class CONFIG:
    """The original notebook's settings, assignable as in the original (``CONFIG.IMAGE_WIDTH = 200``).

    MEANS is the mean pixel shaped (1, 1, 1, 3); VGG_MODEL, STYLE_IMAGE, CONTENT_IMAGE and
    OUTPUT_DIR are absolute paths (OUTPUT_DIR ends with a separator, so
    ``CONFIG.OUTPUT_DIR + "0.png"`` names a file inside the output folder).
    """

    IMAGE_WIDTH = 400
    IMAGE_HEIGHT = 300
    COLOR_CHANNELS = 3
    NOISE_RATIO = 0.6
    MEANS = np.array([123.68, 116.779, 103.939]).reshape((1, 1, 1, 3))
    VGG_MODEL = str(PROJECT_ROOT / "pretrained-model" / WEIGHTS_FILENAME)
    STYLE_IMAGE = str(PROJECT_ROOT / "images" / "sandstone.jpg")
    CONTENT_IMAGE = str(PROJECT_ROOT / "images" / "louvre.jpg")
    OUTPUT_DIR = str(PROJECT_ROOT / "output") + os.sep
