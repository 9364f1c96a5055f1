"""Errors that nst reports to people: each carries a one-line message that says what to do.

The command line prints ``error: <message>`` and exits with status 2 for any `NSTError`;
library callers catch them like any exception.
"""


class NSTError(Exception):
    """A problem with the user's input or setup, explained in one line."""

    exit_code = 2


class EmulatedBfloat16Warning(RuntimeWarning):
    """bfloat16 asked of a CPU that only emulates it (about ten times slower than float32)."""


class ConfigError(NSTError, ValueError):
    """A setting that cannot be used (a size, a layer name, a weight, ...)."""


class WeightsError(NSTError):
    """The VGG-19 weights file is missing, unreadable, or not the file it should be."""


class TruncatedWeightsError(WeightsError):
    """A weights file that starts as a .mat file but cannot be read to its end: cut or corrupt."""


class ImageError(NSTError):
    """An image that cannot be read or written."""


class SessionError(NSTError):
    """A TensorFlow session is needed and none was given or set as default."""


class NonFiniteCostError(NSTError):
    """The cost became NaN or infinite during optimisation; the last good image was kept."""


class DiskFullError(NSTError):
    """A file could not be written because its disk is full (or the user's quota is spent)."""


class ImageTooLargeError(ImageError):
    """An image with more pixels than nst decodes at once, or than memory holds."""


class NotEnoughMemoryError(NSTError):
    """A run whose estimated peak memory exceeds the memory available; nothing was built."""
