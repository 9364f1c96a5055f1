"""Import TensorFlow without its start-up chatter on the terminal or in a notebook's output.

TensorFlow's native libraries print lines when they load and when they first look for devices
(absl's "All log messages before absl::InitializeLog()", oneDNN, "Could not find cuda drivers",
a cuInit error on machines without a GPU). Some come before TF_CPP_MIN_LOG_LEVEL is read, so
the only way to keep them out is to hold file descriptor 2 while TensorFlow loads and finds its
devices. Whatever else was written meanwhile is passed on to stderr, so no real error is lost.
TensorFlow's deprecation notices about its own compat.v1 API (for instance on
``tf.compat.v1.disable_v2_behavior()``, which the original's code needs) are dropped too: a
reader of the notebook can do nothing about them.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import os
import re
import sys
import tempfile
from pathlib import Path

#: Lines TensorFlow prints on every start on a CPU-only machine, and nothing else.
STARTUP_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|oneDNN custom operations are on"
    r"|Could not find cuda drivers"
    r"|failed call to cuInit"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation_placer\.cc"
    r"|TF-TRT Warning"
    r"|This TensorFlow binary is optimized to use available CPU instructions"
    r"|To enable the following instructions: .* rebuild TensorFlow"
)


def without_startup_noise(text: str) -> str:
    """`text` less the lines of TensorFlow's start-up chatter."""
    return "".join(
        line for line in text.splitlines(keepends=True) if not STARTUP_NOISE.search(line)
    )


def _no_deprecation_notice(record) -> bool:
    """A log filter that drops TensorFlow's "... is deprecated and will be removed" records."""
    return "is deprecated and will be removed" not in record.getMessage()


def import_tensorflow():
    """The tensorflow module, imported (once per process) with its start-up lines kept back.

    Also lowers TensorFlow's native log level to warnings and errors unless
    TF_CPP_MIN_LOG_LEVEL is already set, and keeps its deprecation notices off its logger.
    A TensorFlow that is missing or cannot load is an NSTError naming the cause.
    """
    install_import_hook()
    try:
        import tensorflow
    except ImportError as exc:
        raise requirement_error(exc) from None
    _filter_deprecations(tensorflow)  # also when it was imported before nst_utils
    return tensorflow


def interrupted_import(exc: ImportError) -> bool:
    """Whether `exc` is an import that Ctrl-C broke (an extension module's "initialization
    failed", raised from the KeyboardInterrupt), not a requirement missing or broken."""
    return isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt)


def requirement_error(exc: ImportError):
    """The NSTError for a TensorFlow (or another requirement) that failed to import with `exc`:
    the module it names, else TensorFlow if the failure came from inside TensorFlow's files."""
    import traceback

    from .errors import NSTError

    cause = str(exc).strip().splitlines()[0] if str(exc).strip() else "no message"
    top = (exc.name or "").split(".")[0]
    inside = any(
        "tensorflow" in Path(frame.f_code.co_filename).parts
        for frame, _ in traceback.walk_tb(exc.__traceback__)
    )
    what = "TensorFlow" if top == "tensorflow" or (not top and inside) else top or "a requirement"
    return NSTError(
        f"{what} cannot be imported ({type(exc).__name__}: {cause}); install nst's "
        f"requirements into this Python: pip install -r requirements.txt "
        f"(Python 3.11 to 3.13)"
    )


def _filter_deprecations(tensorflow) -> None:
    logger = tensorflow.get_logger()
    if _no_deprecation_notice not in logger.filters:
        logger.addFilter(_no_deprecation_notice)


@contextlib.contextmanager
def _quiet_loading():
    """While TensorFlow loads: its log level lowered, stderr held, Keras kept out and Ctrl-C
    held back to the end."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from .hardware import apply_tensorflow_environment

    apply_tensorflow_environment()  # oneDNN's settings for this CPU; the user's own win
    with _interrupt_after(), _stderr_held(), _without_keras():
        yield


@contextlib.contextmanager
def _interrupt_after():
    """A first Ctrl-C while TensorFlow loads raises KeyboardInterrupt once it has loaded.

    Raised inside TensorFlow's import, the KeyboardInterrupt can come out as another error
    (an extension module's "initialization failed" ImportError turned into a RuntimeError by
    TensorFlow's import fallbacks) or make Python end by the signal instead of the exit status
    its handler returns. The load takes about two seconds; a second Ctrl-C meanwhile raises at
    once. Only Python's own SIGINT handler, in the main thread, is replaced meanwhile.
    """
    import signal
    import threading

    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    pressed = []

    def held(number, frame):
        if pressed:
            raise KeyboardInterrupt
        pressed.append(number)

    signal.signal(signal.SIGINT, held)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGINT) is held:  # a handler the load set stays
            signal.signal(signal.SIGINT, signal.default_int_handler)
    if pressed:
        raise KeyboardInterrupt


@contextlib.contextmanager
def _without_keras():
    """Tell TensorFlow's import that Keras cannot be loaded, so it does not load it.

    TensorFlow imports Keras's optimizers at start-up whether they are used or not: 0.7 s and
    about 50 MB that nst, which uses tf.compat.v1 alone, never needs. TensorFlow still finds
    where Keras lives (it puts those folders on its own __path__, for `from tensorflow.keras
    import ...`); only loading it fails meanwhile. Afterwards `import keras` and `tf.keras` load
    it as usual.
    """
    if "keras" in sys.modules:
        yield
        return
    refusal = _KerasRefused()
    sys.meta_path.insert(0, refusal)
    try:
        yield
    finally:
        sys.meta_path[:] = [f for f in sys.meta_path if f is not refusal]


class _KerasRefused:
    """A meta path finder that finds Keras where it is (on sys.path), and a loader that refuses
    to load it with the ImportError TensorFlow expects."""

    def find_spec(self, name, path=None, target=None):
        spec = (
            importlib.machinery.PathFinder.find_spec(name, path, target)
            if name == "keras"
            else None
        )
        if spec is not None:
            spec.loader = self
        return spec

    def create_module(self, spec):
        raise ImportError(f"{spec.name} is not loaded while TensorFlow loads", name=spec.name)

    exec_module = None  # never reached: create_module refuses first


@contextlib.contextmanager
def _stderr_held():
    """Hold file descriptor 2; on leaving, pass on what was written less the start-up noise."""
    try:
        stderr_fd = sys.__stderr__.fileno() if sys.__stderr__ is not None else 2
        saved = os.dup(stderr_fd)
    except (AttributeError, OSError, ValueError):  # no real stderr (an embedded interpreter)
        yield
        return
    with tempfile.TemporaryFile() as held:
        _flush()
        os.dup2(held.fileno(), stderr_fd)
        try:
            yield
        finally:
            _flush()
            os.dup2(saved, stderr_fd)
            os.close(saved)
            held.seek(0)
            rest = without_startup_noise(held.read().decode("utf-8", errors="replace"))
            if rest:
                sys.stderr.write(rest)
                _flush()


class _QuietTensorFlowImport:
    """A meta path finder for the process's first `import tensorflow`, wherever it is written
    (a notebook cell, a test, a grading record): the import then runs as `import_tensorflow`'s
    does, quiet and without Keras. It removes itself when the module is loaded, not when it is
    only looked up (importlib.util.find_spec, as libraries check what is installed)."""

    nst_hook = "quiet tensorflow import"

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        load = loader.exec_module

        def exec_module(module):
            _uninstall_hook()
            try:
                with _quiet_loading():
                    load(module)
                    module.config.list_physical_devices()  # device discovery prints cuInit's line
            except KeyboardInterrupt:  # not imported: the next try is quiet and Keras-free too
                _install_hook()  # (tensorflow leaves sys.modules only after this)
                raise
            _filter_deprecations(module)

        loader.exec_module = exec_module  # this loader serves this one module
        return spec


def install_import_hook() -> None:
    """Make the first `import tensorflow` of this process quiet and Keras-free (see
    _QuietTensorFlowImport); nothing if TensorFlow is imported already."""
    if "tensorflow" not in sys.modules:
        _install_hook()


def _install_hook() -> None:
    if not any(_is_hook(finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())


def _uninstall_hook() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not _is_hook(f)]


def _is_hook(finder) -> bool:
    """By a mark, not a class: a reloaded module's hooks must still know the old ones."""
    return getattr(finder, "nst_hook", None) == _QuietTensorFlowImport.nst_hook


def _flush():
    for stream in (sys.stdout, sys.stderr, sys.__stderr__):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
