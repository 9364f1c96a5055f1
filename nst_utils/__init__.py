"""nst_utils: the classic TF1 neural style transfer notebook (Gatys et al. 2015, VGG-19), on TF2.

The notebook teaches; this package does the work: configuration, the VGG-19 loader, image
helpers, the reference cost functions and the optimisation loop.
"""

import os as _os

# TensorFlow's C++ start-up chatter drowns the output people came for; callers may override.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from .architecture import LAYER_NAMES, MODEL_KEYS  # noqa: E402
from .config import CONFIG, PROJECT_ROOT, STYLE_LAYERS  # noqa: E402
from .costs import (compute_content_cost, compute_layer_style_cost, compute_style_cost,  # noqa: E402
                    gram_matrix, total_cost)
from .errors import (ConfigError, ImageError, NonFiniteCostError, NSTError,  # noqa: E402
                     SessionError, WeightsError)
from .images import (generate_noise_image, load_image, read_image,  # noqa: E402
                     reshape_and_normalize_image, save_image)
from .reference import legacy_random_normal, reference_values  # noqa: E402
from .settings import DEFAULTS, Settings  # noqa: E402
from .settings import Settings as Config  # noqa: E402  (the notebook's name)
from .training import assign_image, optimize, print_report  # noqa: E402
from .vgg import load_vgg_model  # noqa: E402
from .weights import load_weights  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "CONFIG", "DEFAULTS", "Settings", "Config", "PROJECT_ROOT", "STYLE_LAYERS", "LAYER_NAMES", "MODEL_KEYS",
    "compute_content_cost", "gram_matrix", "compute_layer_style_cost", "compute_style_cost",
    "total_cost", "load_vgg_model", "load_weights", "load_image", "read_image",
    "reshape_and_normalize_image", "generate_noise_image", "save_image", "legacy_random_normal",
    "reference_values", "optimize", "assign_image", "print_report",
    "NSTError", "ConfigError", "ImageError", "WeightsError", "SessionError", "NonFiniteCostError",
]
