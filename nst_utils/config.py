"""The original notebook's CONFIG, with its values taken from the run settings' defaults.

`CONFIG` is the original helper module's class: its upper-case attributes are the original
values, and a notebook changes them by assignment (``CONFIG.IMAGE_WIDTH = 200``); the helpers
that read them (`load_vgg_model`, `load_image`, `generate_noise_image`,
`reshape_and_normalize_image`, `save_image`) read them when called, so an assignment takes
effect on the next call. Its paths are absolute, so they hold wherever the notebook runs from.
When the package is imported it takes the ``NST_*`` variables of `CONFIG_ENVIRONMENT`
(`apply_environment`), so a notebook can be run at another size or on other files without
editing a cell.

The values themselves, and the reading of the environment, are nst_utils.settings'.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Mapping

import numpy as np

from .errors import ConfigError
from .settings import (  # noqa: F401  (the original's facts, imported from here by name)
    DEFAULTS,
    PROJECT_ROOT,
    STYLE_LAYERS,
    WEIGHTS_FILENAME,
    Settings,
    read_environment,
    user_cache_dir,
)

#: CONFIG's attributes and the settings field each shows.
ATTRIBUTES = {
    "IMAGE_WIDTH": "image_width",
    "IMAGE_HEIGHT": "image_height",
    "COLOR_CHANNELS": "color_channels",
    "NOISE_RATIO": "noise_ratio",
    "MEANS": "means",
    "VGG_MODEL": "vgg_model",
    "STYLE_IMAGE": "style_images",
    "CONTENT_IMAGE": "content_image",
    "OUTPUT_DIR": "output_dir",
}


def _as_config(attribute: str, value):
    """A settings value as the original's CONFIG holds it: MEANS shaped (1, 1, 1, 3), the first
    style image, paths as strings (OUTPUT_DIR ending with a separator)."""
    if attribute == "MEANS":
        return np.array(value).reshape((1, 1, 1, 3))
    if attribute == "STYLE_IMAGE":
        value = value[0]
    if isinstance(value, Path):
        return str(value) + (os.sep if attribute == "OUTPUT_DIR" else "")
    return value


def _assign(config, settings: Settings, attributes) -> None:
    for attribute in attributes:
        setattr(config, attribute, _as_config(attribute, getattr(settings, ATTRIBUTES[attribute])))


class CONFIG:
    """The original notebook's settings, assignable as in it (``CONFIG.IMAGE_WIDTH = 200``).

    IMAGE_WIDTH, IMAGE_HEIGHT, COLOR_CHANNELS, NOISE_RATIO; MEANS is the mean pixel shaped
    (1, 1, 1, 3); VGG_MODEL, STYLE_IMAGE, CONTENT_IMAGE and OUTPUT_DIR are absolute paths
    (OUTPUT_DIR ends with a separator, so ``CONFIG.OUTPUT_DIR + "0.png"`` names a file inside
    the output folder). Their values are `DEFAULTS`'.
    """


_assign(CONFIG, DEFAULTS, ATTRIBUTES)

#: Environment variables CONFIG reads once, at import: {variable: attribute}.
CONFIG_ENVIRONMENT = {
    field.metadata["env"]: attribute
    for attribute, name in ATTRIBUTES.items()
    for field in dataclasses.fields(Settings)
    if field.name == name and field.metadata.get("env")
}


def apply_environment(config=CONFIG, environ: Mapping[str, str] | None = None) -> None:
    """Assign `config` (CONFIG) the values the CONFIG_ENVIRONMENT variables give, read as
    `Settings.from_env` reads them (nst_utils.settings.read_environment).

    A value that is refused is left as it was, and a `ConfigError` naming it is raised once the
    other variables are applied.
    """
    changes, problems = read_environment(environ)
    changes = {name: value for name, value in changes.items() if name in ATTRIBUTES.values()}
    settings = DEFAULTS.replace(**changes)
    _assign(config, settings, [a for a, name in ATTRIBUTES.items() if name in changes])
    if problems:
        raise ConfigError("; ".join(problems))
