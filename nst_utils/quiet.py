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

import logging
import os
import re
import sys
import tempfile

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
    r"|To enable the following instructions: .* rebuild TensorFlow")


def without_startup_noise(text: str) -> str:
    """`text` less the lines of TensorFlow's start-up chatter."""
    return "".join(line for line in text.splitlines(keepends=True) if not STARTUP_NOISE.search(line))


class _NoDeprecationNotices(logging.Filter):
    """Drops TensorFlow's "... is deprecated and will be removed" log records."""

    def filter(self, record) -> bool:
        return "is deprecated and will be removed" not in record.getMessage()


def import_tensorflow():
    """The tensorflow module, imported (once per process) with its start-up lines kept back.

    Also lowers TensorFlow's native log level to warnings and errors unless
    TF_CPP_MIN_LOG_LEVEL is already set, and keeps its deprecation notices off its logger.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tensorflow = sys.modules.get("tensorflow") or _import_held()
    logger = tensorflow.get_logger()
    if not any(isinstance(f, _NoDeprecationNotices) for f in logger.filters):
        logger.addFilter(_NoDeprecationNotices())
    return tensorflow


def _import_held():
    """Import tensorflow and find its devices while file descriptor 2 is held."""
    try:
        stderr_fd = sys.__stderr__.fileno() if sys.__stderr__ is not None else 2
        saved = os.dup(stderr_fd)
    except (AttributeError, OSError, ValueError):  # no real stderr (an embedded interpreter)
        import tensorflow
        return tensorflow
    with tempfile.TemporaryFile() as held:
        _flush()
        os.dup2(held.fileno(), stderr_fd)
        try:
            import tensorflow
            tensorflow.config.list_physical_devices()  # device discovery prints the cuInit line
        finally:
            _flush()
            os.dup2(saved, stderr_fd)
            os.close(saved)
            held.seek(0)
            rest = without_startup_noise(held.read().decode("utf-8", errors="replace"))
            if rest:
                sys.stderr.write(rest)
                _flush()
    return tensorflow


def _flush():
    for stream in (sys.stdout, sys.stderr, sys.__stderr__):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
