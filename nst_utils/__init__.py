"""nst_utils: the classic TF1 neural style transfer notebook (Gatys et al. 2015, VGG-19), on TF2.

The notebook teaches; this package does the work: configuration, the VGG-19 loader, image
helpers, the reference cost functions and the optimisation loop.

The names below are imported on first use, so `python -m nst_utils ... --help` and the start of
every command do not wait for TensorFlow.
"""

import importlib as _importlib
import os as _os

# TensorFlow's C++ start-up chatter drowns the output people came for; callers may override.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

#: exported name -> the module that defines it
_EXPORTS = {
    "LAYER_NAMES": "architecture", "MODEL_KEYS": "architecture",
    "CONFIG": "config", "PROJECT_ROOT": "config", "STYLE_LAYERS": "config",
    "compute_content_cost": "costs", "compute_layer_style_cost": "costs",
    "compute_style_cost": "costs", "gram_matrix": "costs", "total_cost": "costs",
    "ConfigError": "errors", "ImageError": "errors", "NonFiniteCostError": "errors",
    "NSTError": "errors", "SessionError": "errors", "WeightsError": "errors",
    "generate_noise_image": "images", "load_image": "images", "read_image": "images",
    "reshape_and_normalize_image": "images", "save_image": "images",
    "legacy_random_normal": "reference", "reference_values": "reference",
    "DEFAULTS": "settings", "Settings": "settings",
    "assign_image": "training", "optimize": "training", "print_report": "training",
    "load_vgg_model": "vgg", "load_weights": "weights",
}
#: The notebook's name for Settings.
_ALIASES = {"Config": ("settings", "Settings")}

__all__ = [
    "CONFIG", "DEFAULTS", "Settings", "Config", "PROJECT_ROOT", "STYLE_LAYERS", "LAYER_NAMES", "MODEL_KEYS",
    "compute_content_cost", "gram_matrix", "compute_layer_style_cost", "compute_style_cost",
    "total_cost", "load_vgg_model", "load_weights", "load_image", "read_image",
    "reshape_and_normalize_image", "generate_noise_image", "save_image", "legacy_random_normal",
    "reference_values", "optimize", "assign_image", "print_report",
    "NSTError", "ConfigError", "ImageError", "WeightsError", "SessionError", "NonFiniteCostError",
]


def __getattr__(name):
    module, attribute = _ALIASES.get(name) or (_EXPORTS.get(name), name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(f".{module}", __name__), attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
