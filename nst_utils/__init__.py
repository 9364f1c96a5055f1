"""nst_utils: the classic TF1 neural style transfer notebook (Gatys et al. 2015, VGG-19), on TF2.

``from nst_utils import *`` gives what the original helper module gave a notebook: `CONFIG`,
`load_vgg_model`, `generate_noise_image`, `reshape_and_normalize_image` and `save_image`. The
graded functions are the student's to write; the package's own reference costs live in
`nst_utils.costs`, imported by name where the package needs them.
"""

from .quiet import import_tensorflow as _import_tensorflow

# Before any module of the package imports TensorFlow: keep its start-up lines off the screen.
_import_tensorflow()

from .config import CONFIG  # noqa: E402
from .images import generate_noise_image, reshape_and_normalize_image, save_image  # noqa: E402
from .vgg import load_vgg_model  # noqa: E402

__version__ = "0.1.0"

# The run defaults (nst_utils.settings) keep the original values; CONFIG then takes the NST_*
# variables, once, as the original notebook's quick-preview knobs.
from . import settings as _settings  # noqa: E402,F401
from .config import apply_environment as _apply_environment  # noqa: E402
from .errors import ConfigError as _ConfigError  # noqa: E402

try:
    _apply_environment(CONFIG)
except _ConfigError as _error:  # the import goes on; say which value was ignored
    import sys as _sys

    print(f"nst_utils: {_error}; CONFIG keeps its original value", file=_sys.stderr)

__all__ = ["CONFIG", "load_vgg_model", "generate_noise_image", "reshape_and_normalize_image",
           "save_image"]
