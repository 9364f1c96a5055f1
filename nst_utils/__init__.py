"""nst_utils: the classic TF1 neural style transfer notebook (Gatys et al. 2015, VGG-19), on TF2.

``from nst_utils import *`` gives what the original helper module gave a notebook: `CONFIG`,
`load_vgg_model`, `generate_noise_image`, `reshape_and_normalize_image` and `save_image`. The
graded functions are the student's to write; the package's own reference costs live in
`nst_utils.costs`, imported by name where the package needs them.

The helpers that need TensorFlow are imported on first use, through `nst_utils.quiet` (so its
start-up lines stay off the screen), and `python -m nst_utils ... --help` does not wait for it.
"""

import importlib as _importlib

from .quiet import install_import_hook as _install_import_hook

_install_import_hook()  # the first `import tensorflow` from here on is quiet and Keras-free

from . import settings as _settings  # noqa: F401, E402  (the run defaults keep the original values)
from .config import CONFIG  # noqa: E402  (after the quiet hook, as every import here)
from .config import apply_environment as _apply_environment  # noqa: E402
from .errors import ConfigError as _ConfigError  # noqa: E402

__version__ = "0.1.0"

# CONFIG takes the NST_* variables once, as the notebook's quick-preview knobs.
try:
    _apply_environment(CONFIG)
except _ConfigError as _error:  # the import goes on; say which value was ignored
    import sys as _sys

    print(f"nst_utils: {_error}; CONFIG keeps its original value", file=_sys.stderr)

#: exported helper -> the module that defines it (imported on first use)
_EXPORTS = {
    "load_vgg_model": "vgg",
    "generate_noise_image": "images",
    "reshape_and_normalize_image": "images",
    "save_image": "images",
}

__all__ = [
    "CONFIG",
    "load_vgg_model",
    "generate_noise_image",
    "reshape_and_normalize_image",
    "save_image",
]


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from .quiet import import_tensorflow

    import_tensorflow()
    value = getattr(_importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
