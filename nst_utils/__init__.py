"""nst_utils: the classic TF1 neural style transfer notebook (Gatys et al. 2015, VGG-19), on TF2.

``from nst_utils import *`` gives what the original helper module gave a notebook: `CONFIG`,
`load_vgg_model`, `generate_noise_image`, `reshape_and_normalize_image` and `save_image`. The
graded functions are the student's to write; the package's own reference costs live in
`nst_utils.costs`, imported by name where the package needs them.

The helpers that need TensorFlow are imported on first use, through `nst_utils.quiet` (so its
start-up lines stay off the screen), and `python -m nst_utils ... --help` does not wait for it.
"""

import signal as _signal
import sys as _sys


def _interrupted_at_start_up(number, frame):
    """Ctrl-C while `python -m nst_utils` or `nst` starts up (numpy, TensorFlow and the
    command's modules loading): one line and status 130 at once. Nothing is written before a
    command begins, and no exception is raised inside an import, where an extension module
    would turn it into another error or Python would end by the signal with a traceback."""
    _sys.stderr.write("interrupted\n")
    _sys.stderr.flush()
    import os

    os._exit(130)


def end_start_up() -> None:
    """Give Ctrl-C back to Python's handler (KeyboardInterrupt) once the command line runs;
    nothing where the start-up handler is not installed (a library import, a notebook)."""
    if _signal.getsignal(_signal.SIGINT) is _interrupted_at_start_up:
        _signal.signal(_signal.SIGINT, _signal.default_int_handler)


# The command line's start-up, from the package's first line: `python -m nst_utils` (argv[0] is
# "-m" while runpy imports the package) or the `nst` script.
if (_sys.argv[:1] == ["-m"] and "nst_utils" in getattr(_sys, "orig_argv", ["nst_utils"])) or (
    _sys.argv[0].replace("\\", "/").rsplit("/", 1)[-1] == "nst"
):
    _signal.signal(_signal.SIGINT, _interrupted_at_start_up)

import importlib as _importlib  # noqa: E402

from .quiet import install_import_hook as _install_import_hook  # noqa: E402

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
