"""The original notebook's CONFIG, and the defaults of nst's runs.

`CONFIG` is the original helper module's class: its upper-case attributes are the original
values, and a notebook changes them by assignment (``CONFIG.IMAGE_WIDTH = 200``); the helpers
that read them (`load_vgg_model`, `load_image`, `generate_noise_image`,
`reshape_and_normalize_image`, `save_image`) read them when called, so an assignment takes
effect on the next call. Its paths are absolute, so they hold wherever the notebook runs from.
At import it takes the ``NST_*`` variables of `CONFIG_ENVIRONMENT`, so a notebook can be run at
another size or on other files without editing a cell.

`Config` is the frozen settings of a run for the package's own code; `DEFAULTS` holds the
original values, and ``Config.from_env()`` reads the ``NST_*`` environment variables.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Mapping

import numpy as np

from .errors import ConfigError

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


#: Numeric precisions of the network: float32 (the original) or bfloat16 convolutions (opt-in).
PRECISIONS = ("float32", "bfloat16")

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


#: Environment variables CONFIG reads once, at import: {variable: attribute}.
CONFIG_ENVIRONMENT = {
    "NST_WEIGHTS": "VGG_MODEL",
    "NST_CONTENT_IMAGE": "CONTENT_IMAGE",
    "NST_STYLE_IMAGE": "STYLE_IMAGE",
    "NST_OUTPUT_DIR": "OUTPUT_DIR",
    "NST_IMAGE_WIDTH": "IMAGE_WIDTH",
    "NST_IMAGE_HEIGHT": "IMAGE_HEIGHT",
}


def apply_environment(config=CONFIG, environ: Mapping[str, str] | None = None) -> None:
    """Assign `config` (CONFIG) the settings given by the CONFIG_ENVIRONMENT variables.

    Paths become absolute (relative ones are taken from the current folder) and OUTPUT_DIR
    ends with a separator. A size that is not a positive whole number is left as it was, and
    a `ConfigError` naming it is raised once the other variables are applied.
    """
    environ = os.environ if environ is None else environ
    bad = []
    for var, attribute in CONFIG_ENVIRONMENT.items():
        value = environ.get(var, "").strip()
        if not value:
            continue
        if attribute in ("IMAGE_WIDTH", "IMAGE_HEIGHT"):
            if value.isdigit() and int(value) > 0:
                setattr(config, attribute, int(value))
            else:
                bad.append(f"{var} must be a positive whole number, got {environ[var]!r}")
        else:
            path = os.path.abspath(os.path.expanduser(value))
            setattr(config, attribute, path + os.sep if attribute == "OUTPUT_DIR" else path)
    if bad:
        raise ConfigError("; ".join(bad))


def check_precision(precision) -> str:
    """`precision` if it names a known precision; a one-line `ConfigError` if not."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings of one run, frozen; the defaults are the original notebook's values."""

    image_width: int = CONFIG.IMAGE_WIDTH
    image_height: int = CONFIG.IMAGE_HEIGHT
    color_channels: int = CONFIG.COLOR_CHANNELS
    noise_ratio: float = CONFIG.NOISE_RATIO
    means: tuple = tuple(float(m) for m in CONFIG.MEANS.ravel())
    vgg_model: Path = Path(CONFIG.VGG_MODEL)
    output_dir: Path = Path(CONFIG.OUTPUT_DIR)
    content_image: Path = Path(CONFIG.CONTENT_IMAGE)
    style_image: Path = Path(CONFIG.STYLE_IMAGE)
    content_layer: str = "conv4_2"
    style_layers: tuple = STYLE_LAYERS
    alpha: float = 10.0
    beta: float = 40.0
    learning_rate: float = 2.0
    num_iterations: int = 160
    save_every: int = 20
    #: Keep a compact cache of the 16 conv layers so later loads skip the 535 MB .mat.
    weights_cache: bool = True
    #: Where that cache goes; None: beside the .mat if that folder is writable, else
    #: `user_cache_dir()`.
    weights_cache_dir: Path | None = None
    #: Convolutions in float32 (the original) or bfloat16; the image and costs stay float32.
    precision: str = "float32"
    #: Threads TensorFlow uses inside one op (0: one per core) and ops run at once (1: one after
    #: another, each with every core; more oversubscribes a small CPU). See nst_utils.session.
    intra_op_threads: int = 0
    inter_op_threads: int = 1

    def __post_init__(self):
        for name in ("vgg_model", "output_dir", "content_image", "style_image"):
            value = getattr(self, name)
            if not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        if self.weights_cache_dir is not None and not isinstance(self.weights_cache_dir, Path):
            object.__setattr__(self, "weights_cache_dir", Path(self.weights_cache_dir))
        if not isinstance(self.weights_cache, bool):
            raise ConfigError(f"weights_cache must be True or False, got {self.weights_cache!r}")
        for name in ("image_width", "image_height", "num_iterations", "save_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name} must be a positive whole number, got {value!r}")
        for name in ("intra_op_threads", "inter_op_threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name} must be a whole number >= 0 (0: let TensorFlow "
                                  f"choose), got {value!r}")
        check_precision(self.precision)
        if self.color_channels != 3:
            raise ConfigError("color_channels must be 3: VGG-19 takes RGB images")
        if not 0.0 <= self.noise_ratio <= 1.0:
            raise ConfigError(f"noise_ratio must lie in [0, 1], got {self.noise_ratio!r}")
        if len(self.means) != 3:
            raise ConfigError(f"means must hold three numbers (R, G, B), got {self.means!r}")
        object.__setattr__(self, "means", tuple(float(m) for m in self.means))
        object.__setattr__(self, "style_layers", tuple((str(n), float(w)) for n, w in self.style_layers))

    @property
    def means_array(self) -> np.ndarray:
        """The mean pixel shaped (1, 1, 1, 3), as the network subtracts it."""
        return np.array(self.means, dtype=np.float64).reshape((1, 1, 1, 3))

    def replace(self, **changes) -> "Config":
        """A copy with some settings changed, validated like the original."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; known: "
                              + ", ".join(f.name for f in dataclasses.fields(self)))
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, base: "Config | None" = None) -> "Config":
        """Settings from ``NST_*`` environment variables on top of `base` (the defaults).

        NST_WEIGHTS, NST_OUTPUT_DIR, NST_CONTENT_IMAGE, NST_STYLE_IMAGE (paths), NST_IMAGE_WIDTH,
        NST_IMAGE_HEIGHT, NST_ITERATIONS, NST_SAVE_EVERY (whole numbers), NST_WEIGHTS_CACHE_DIR
        (the weights cache's folder) and NST_WEIGHTS_CACHE (0 or 1: turn that cache off or on).
        """
        environ = os.environ if environ is None else environ
        base = base or cls()
        changes = {}
        for var, field in _PATH_VARS.items():
            if environ.get(var):
                changes[field] = Path(environ[var]).expanduser()
        for var, field in _INT_VARS.items():
            if environ.get(var):
                try:
                    changes[field] = int(environ[var])
                except ValueError:
                    raise ConfigError(f"{var} must be a whole number, got {environ[var]!r}") from None
        if environ.get("NST_WEIGHTS_CACHE"):
            flag = environ["NST_WEIGHTS_CACHE"].strip().lower()
            if flag not in _FLAGS:
                raise ConfigError(f"NST_WEIGHTS_CACHE must be 0 or 1, got {environ['NST_WEIGHTS_CACHE']!r}")
            changes["weights_cache"] = _FLAGS[flag]
        return base.replace(**changes)


_PATH_VARS = {
    "NST_WEIGHTS": "vgg_model",
    "NST_OUTPUT_DIR": "output_dir",
    "NST_CONTENT_IMAGE": "content_image",
    "NST_STYLE_IMAGE": "style_image",
    "NST_WEIGHTS_CACHE_DIR": "weights_cache_dir",
}
_FLAGS = {"0": False, "false": False, "no": False, "off": False,
          "1": True, "true": True, "yes": True, "on": True}
_INT_VARS = {
    "NST_IMAGE_WIDTH": "image_width",
    "NST_IMAGE_HEIGHT": "image_height",
    "NST_ITERATIONS": "num_iterations",
    "NST_SAVE_EVERY": "save_every",
}

#: The original values as a run's settings.
DEFAULTS = Config()

try:
    apply_environment(CONFIG)
except ConfigError as _error:  # the import goes on with the original value; say which was ignored
    print(f"nst_utils: {_error}; CONFIG keeps its original value", file=sys.stderr)
