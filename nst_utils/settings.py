"""Every setting of a run in one frozen object, `Settings`, with the original notebook's values
as defaults (`DEFAULTS`).

Each field says, in its metadata, how it reaches a run: its command-line flag (the argparse
option is built from the field, see `add_flags` and `from_args`), its ``NST_*`` environment
variable (read by `read_environment`, the package's one reader of them, for `Settings.from_env`
and the notebook's CONFIG) and its key in run.json's settings (`Settings.record`). Adding an
option is one field here. Each of the original's values is written once, here: CONFIG
(nst_utils.config) and every other module take them from `DEFAULTS`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import Mapping

import numpy as np

from .errors import ConfigError
from .options import (
    format_style_layers,
    layer_arg,
    non_negative_float_arg,
    non_negative_int_arg,
    positive_float_arg,
    positive_int_arg,
    ratio_arg,
    seed_arg,
    style_layers_arg,
)

PRECISIONS = ("float32", "bfloat16")
OPTIMIZERS = ("adam", "lbfgs")
POOLINGS = ("avg", "max")
INITS = ("noise", "content")

#: The repository root: relative default paths (weights, images, output) are resolved from here,
#: so the package works whatever the current directory is (for instance inside notebooks/).
PROJECT_ROOT = Path(__file__).resolve().parent.parent

WEIGHTS_FILENAME = "imagenet-vgg-verydeep-19.mat"

#: The five style layers of the original, each weighted 0.2.
STYLE_LAYERS = tuple((f"conv{block}_1", 0.2) for block in range(1, 6))


def user_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """nst's own cache folder, used when the weights' folder is not writable.

    ``$XDG_CACHE_HOME/nst`` if XDG_CACHE_HOME is set, otherwise ``~/.cache/nst``.
    """
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "nst"


def _env_path(text):
    """A path from the environment: ~ expanded, and absolute (relative to the current folder)."""
    return Path(os.path.abspath(os.path.expanduser(text)))


def _env_paths(text):
    return tuple(_env_path(p) for p in text.split(os.pathsep) if p.strip())


_FLAGS = dict.fromkeys(("0", "false", "no", "off"), False) | dict.fromkeys(
    ("1", "true", "yes", "on"), True
)


def _env_flag(text):
    return _FLAGS[text.strip().lower()]


_ENV_EXPECTS = {_env_flag: "0 or 1", _env_path: "a path", _env_paths: "paths"}


def _field(
    default, flag=None, help=None, record=None, env=None, env_parse=None, **argparse_options
):
    """A settings field: its default, its command-line flag with argparse's options, its key in
    run.json's settings (None: not recorded), its environment variable and the parser of its
    value (default: the flag's argparse type, so both take the same values)."""
    metadata = {
        "flag": flag,
        "help": help,
        "record": record,
        "env": env,
        "env_parse": env_parse,
        "argparse": argparse_options,
    }
    if isinstance(default, (list, dict, set)):
        raise TypeError("settings defaults must be immutable")
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class Settings:
    """The settings of one run, frozen and validated; the defaults are the original's values.

    image_width/image_height of None follow the content image's aspect (both None: the defaults');
    seed None draws one; run_dir None makes a new folder under output_dir.
    """

    content_image: Path = _field(
        PROJECT_ROOT / "images" / "louvre.jpg",
        "--content",
        "content image (PNG or JPEG)",
        "content",
        "NST_CONTENT_IMAGE",
        _env_path,
        type=Path,
    )
    style_images: tuple = _field(
        (PROJECT_ROOT / "images" / "sandstone.jpg",),
        "--style",
        "style image(s), resized to the model size",
        "style",
        "NST_STYLE_IMAGE",
        _env_paths,
        type=Path,
        nargs="+",
        metavar="PATH",
    )
    style_blend_weights: tuple | None = _field(
        None,
        "--style-blend-weights",
        "one weight per style image, scaled to sum to 1 (default: equal)",
        "style_blend_weights",
        type=non_negative_float_arg,
        nargs="+",
        metavar="W",
    )
    num_iterations: int = _field(
        160,
        "--iterations",
        "optimisation steps",
        "iterations",
        "NST_ITERATIONS",
        type=positive_int_arg,
    )
    learning_rate: float = _field(
        2.0,
        "--learning-rate",
        "Adam's learning rate (not used by L-BFGS)",
        "learning_rate",
        type=positive_float_arg,
    )
    alpha: float = _field(
        10.0, "--alpha", "weight of the content cost", "alpha", type=non_negative_float_arg
    )
    beta: float = _field(
        40.0, "--beta", "weight of the style cost", "beta", type=non_negative_float_arg
    )
    content_layer: str = _field(
        "conv4_2", "--content-layer", "layer of the content cost", "content_layer", type=layer_arg
    )
    style_layers: tuple = _field(
        STYLE_LAYERS,
        "--style-layers",
        "layers of the style cost and their weights",
        "style_layers",
        type=style_layers_arg,
        metavar="LAYER:WEIGHT,...",
    )
    image_width: int | None = _field(
        400,
        "--width",
        "model width in pixels (with --height omitted, the height follows the content's aspect)",
        "width",
        "NST_IMAGE_WIDTH",
        type=positive_int_arg,
    )
    image_height: int | None = _field(
        300,
        "--height",
        "model height in pixels (with --width omitted, the width follows the content's aspect)",
        "height",
        "NST_IMAGE_HEIGHT",
        type=positive_int_arg,
    )
    init: str = _field(
        "noise",
        "--init",
        "starting image: noise blended with the content (the "
        "original), the content, or an image file",
        "init",
        metavar="noise|content|PATH",
    )
    noise_ratio: float = _field(
        0.6,
        "--noise-ratio",
        "share of noise in the starting image for --init noise",
        "noise_ratio",
        type=ratio_arg,
    )
    seed: int | None = _field(
        None,
        "--seed",
        "seed of the noise and the graph: the same seed "
        "repeats a run bit for bit (default: drawn at random and printed)",
        "seed",
        type=seed_arg,
    )
    save_every: int = _field(
        20,
        "--save-every",
        "save <output>/<i>.png every N iterations (0: only the final image)",
        "save_every",
        "NST_SAVE_EVERY",
        type=non_negative_int_arg,
    )
    log_every: int = _field(
        20,
        "--log-every",
        "print the original's cost report every N iterations (0: never)",
        "log_every",
        type=non_negative_int_arg,
    )
    run_dir: Path | None = _field(
        None,
        "--output",
        "the run's folder, new or empty (default: a new folder under "
        "output/, linked as output/latest)",
        "output",
        type=Path,
    )
    overwrite: bool = _field(
        False,
        "--overwrite",
        "reuse a non-empty --output folder, removing the files an earlier run wrote there",
        action="store_true",
    )
    output_dir: Path = _field(PROJECT_ROOT / "output", env="NST_OUTPUT_DIR", env_parse=_env_path)
    vgg_model: Path = _field(
        PROJECT_ROOT / "pretrained-model" / WEIGHTS_FILENAME,
        "--weights",
        "VGG-19 weights file (.mat); the configured file is "
        "downloaded when missing, a path given here is not",
        "weights",
        "NST_WEIGHTS",
        _env_path,
        type=Path,
    )
    weights_cache: bool = _field(True, env="NST_WEIGHTS_CACHE", env_parse=_env_flag)
    weights_cache_dir: Path | None = _field(
        None,
        "--weights-cache-dir",
        "folder of the weights' cache (default: beside the .mat if writable, else ~/.cache/nst)",
        env="NST_WEIGHTS_CACHE_DIR",
        env_parse=_env_path,
        type=Path,
    )
    optimizer: str = _field(
        "adam",
        "--optimizer",
        "adam (the original) or lbfgs (SciPy's L-BFGS-B on the session's loss and gradient)",
        "optimizer",
        choices=OPTIMIZERS,
    )
    tv_weight: float = _field(
        0.0,
        "--tv-weight",
        "weight of a total-variation smoothness cost (0: the original, none)",
        "tv_weight",
        type=non_negative_float_arg,
    )
    preserve_colors: bool = _field(
        False,
        "--preserve-colors",
        "keep the content's colours: transfer the style to luminance only",
        "preserve_colors",
        action="store_true",
    )
    pooling: str = _field(
        "avg",
        "--pooling",
        "pooling between blocks: avg (the original) or VGG's own max",
        "pooling",
        choices=POOLINGS,
    )
    precision: str = _field(
        "float32",
        "--precision",
        "convolutions in float32 (the original) "
        "or bfloat16 (about 3x faster on CPUs with native bfloat16; the image "
        "and costs stay float32)",
        "precision",
        choices=PRECISIONS,
    )
    scales: int = _field(
        1,
        "--scales",
        "paint coarse to fine in this many scales, each twice the "
        "size of the last and from its result, the iterations halving from "
        "scale to scale (1: the original, one scale); for big prints",
        "scales",
        type=positive_int_arg,
    )
    style_scale: float = _field(
        1.0,
        "--style-scale",
        "size of the style images against the painting's (1: the painting's size, the original)",
        "style_scale",
        type=positive_float_arg,
    )
    #: Threads TensorFlow uses inside one op (0: one per core) and ops run at once (1: one after
    #: another, each with every core). See nst_utils.session.
    intra_op_threads: int = _field(
        0,
        "--intra-op-threads",
        "threads inside one op (0: one per core)",
        type=non_negative_int_arg,
    )
    inter_op_threads: int = _field(
        1, "--inter-op-threads", "ops run at once", type=non_negative_int_arg
    )
    progress: bool = _field(True, "--no-progress", "hide the progress bar", action="store_false")
    #: The mean pixel (R, G, B) of the images VGG-19 was trained on, as MatConvNet's file has it.
    means: tuple = _field((123.68, 116.779, 103.939), record="means")
    color_channels: int = _field(3)

    def __post_init__(self):
        for name in ("vgg_model", "output_dir", "content_image"):
            _set(self, name, Path(getattr(self, name)))
        for name in ("weights_cache_dir", "run_dir"):
            if getattr(self, name) is not None:
                _set(self, name, Path(getattr(self, name)))
        styles = self.style_images
        _set(
            self,
            "style_images",
            (Path(styles),) if isinstance(styles, (str, Path)) else tuple(Path(p) for p in styles),
        )
        if not self.style_images:
            raise ConfigError("style_images must name at least one image")
        for name in ("weights_cache", "preserve_colors", "overwrite", "progress"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be True or False, got {getattr(self, name)!r}")
        for name in ("image_width", "image_height", "num_iterations", "scales"):
            value = getattr(self, name)
            if value is None and name != "num_iterations":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ConfigError(f"{name} must be a positive whole number, got {value!r}")
        for name in ("save_every", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ConfigError(f"{name} must be a whole number >= 0, got {value!r}")
        for name in ("intra_op_threads", "inter_op_threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(
                    f"{name} must be a whole number >= 0 (0: let TensorFlow choose), got {value!r}"
                )
        for name, known in (
            ("precision", PRECISIONS),
            ("optimizer", OPTIMIZERS),
            ("pooling", POOLINGS),
        ):
            if getattr(self, name) not in known:
                raise ConfigError(
                    f"{name} must be one of {', '.join(known)}, got {getattr(self, name)!r}"
                )
        if self.color_channels != 3:
            raise ConfigError("color_channels must be 3: VGG-19 takes RGB images")
        if not (isinstance(self.style_scale, (int, float)) and 0 < self.style_scale <= 16):
            raise ConfigError(f"style_scale must lie in (0, 16], got {self.style_scale!r}")
        if not 0.0 <= self.noise_ratio <= 1.0:
            raise ConfigError(f"noise_ratio must lie in [0, 1], got {self.noise_ratio!r}")
        if len(self.means) != 3:
            raise ConfigError(f"means must hold three numbers (R, G, B), got {self.means!r}")
        _set(self, "means", tuple(float(m) for m in self.means))
        _set(self, "style_layers", tuple((str(n), float(w)) for n, w in self.style_layers))
        if self.style_blend_weights is not None:
            _set(self, "style_blend_weights", tuple(float(w) for w in self.style_blend_weights))
        if self.seed is not None and not 0 <= int(self.seed) < 2**32:
            raise ConfigError(f"seed must lie in [0, 2**32), got {self.seed!r}")

    @property
    def style_image(self) -> Path:
        """The first style image (the original has one)."""
        return self.style_images[0]

    @property
    def means_array(self) -> np.ndarray:
        """The mean pixel shaped (1, 1, 1, 3), as the network subtracts it."""
        return np.array(self.means, dtype=np.float64).reshape((1, 1, 1, 3))

    def replace(self, **changes) -> "Settings":
        """A copy with some settings changed, validated like the original."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ConfigError(
                f"unknown setting(s) {', '.join(unknown)}; known: "
                + ", ".join(f.name for f in dataclasses.fields(self))
            )
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, base: "Settings | None" = None
    ) -> "Settings":
        """`base` (default: the defaults) with the ``NST_*`` environment variables applied.

        A ConfigError naming every variable whose value is refused (see `read_environment`).
        """
        changes, problems = read_environment(environ)
        if problems:
            raise ConfigError("; ".join(problems))
        return (base or cls()).replace(**changes)

    def record(self) -> dict:
        """run.json's settings: every recorded field under its key (paths absolute)."""
        out = {}
        for field in dataclasses.fields(self):
            key = field.metadata.get("record")
            if key:
                out[key] = _recorded(getattr(self, field.name))
        if self.init not in INITS:
            out["init"] = str(Path(self.init).resolve())
        return out

    @classmethod
    def from_record(cls, settings: Mapping, base: "Settings | None" = None) -> "Settings":
        """`base` with the fields a run.json's settings hold (the inverse of `record`)."""
        changes = {}
        for field in dataclasses.fields(cls):
            key = field.metadata.get("record")
            if key and key in settings:
                changes[field.name] = settings[key]
        if changes.get("style_layers") is not None:
            changes["style_layers"] = tuple(tuple(x) for x in changes["style_layers"])
        return (base or cls()).replace(**changes)


def read_environment(environ: Mapping[str, str] | None = None) -> tuple:
    """({field name: value}, [problem, ...]) from the ``NST_*`` variables set and not blank.

    The one reader of the environment: NST_WEIGHTS, NST_OUTPUT_DIR, NST_CONTENT_IMAGE,
    NST_STYLE_IMAGE (several joined by os.pathsep), NST_WEIGHTS_CACHE_DIR are paths, made
    absolute from the current folder; NST_IMAGE_WIDTH, NST_IMAGE_HEIGHT, NST_ITERATIONS,
    NST_SAVE_EVERY take what their command-line flags take; NST_WEIGHTS_CACHE is 0 or 1. A
    refused value is left out of the fields and named in a problem.
    """
    environ = os.environ if environ is None else environ
    changes, problems = {}, []
    for field in dataclasses.fields(Settings):
        var = field.metadata.get("env")
        text = environ.get(var, "").strip() if var else ""
        if not text:
            continue
        parse = field.metadata["env_parse"] or field.metadata["argparse"]["type"]
        try:
            changes[field.name] = parse(text)
        except (ValueError, KeyError, argparse.ArgumentTypeError):
            expects = _ENV_EXPECTS.get(parse, parse.__name__)
            problems.append(f"{var} must be {expects}, got {environ[var]!r}")
    return changes, problems


def _set(settings, name, value):
    object.__setattr__(settings, name, value)


def _recorded(value):
    """A value as run.json holds it: paths absolute strings, tuples lists."""
    if isinstance(value, Path):
        return str(value.expanduser().resolve())
    if isinstance(value, tuple):
        return [_recorded(v) for v in value]
    return value


def _flag_default(field) -> str:
    if field.name == "style_layers":
        return format_style_layers(field.default)
    if isinstance(field.default, tuple) and field.name == "style_images":
        return " ".join(str(p) for p in field.default)
    return str(field.default)


def add_flags(parser: argparse.ArgumentParser) -> None:
    """One command-line option per settings field that has a flag; absent unless given."""
    for field in dataclasses.fields(Settings):
        flag = field.metadata.get("flag")
        if not flag:
            continue
        options = dict(field.metadata["argparse"])
        help_text = field.metadata["help"]
        switch = options.get("action") in ("store_true", "store_false")
        if not switch and "choices" not in options:
            options.setdefault("metavar", flag.lstrip("-").upper().replace("-", "_"))
        if "(default" not in help_text and not switch:
            help_text += f" (default: {_flag_default(field)})"
        if field.metadata.get("env"):
            help_text += f"; environment variable {field.metadata['env']}"
        parser.add_argument(
            flag, dest=field.name, default=argparse.SUPPRESS, help=help_text, **options
        )


def from_args(args: argparse.Namespace, base: Settings) -> Settings:
    """`base` with the options given on the command line; a size given alone makes the other
    follow the content's aspect."""
    names = {f.name for f in dataclasses.fields(Settings)}
    given = {k: v for k, v in vars(args).items() if k in names}
    if ("image_width" in given) != ("image_height" in given):
        given.setdefault("image_width", None)
        given.setdefault("image_height", None)
    return base.replace(**given)


#: The original values as a run's settings.
DEFAULTS = Settings()
