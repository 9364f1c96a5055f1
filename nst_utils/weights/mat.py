"""Reading MatConvNet's `imagenet-vgg-verydeep-19.mat` into numpy arrays, in either format.

Layers are found by their field names (`name`, `type`, `weights`), never by position, so the
old (beta16), intermediate and new (beta23+) files all load. Every way a file can be unusable
raises a `WeightsError` whose one line says what is wrong and what to do.
"""

from __future__ import annotations

import dataclasses
import shlex

import numpy as np

from ..architecture import CONV_LAYERS
from ..errors import TruncatedWeightsError, WeightsError
from .sources import FETCH_COMMAND, check_weights_path, fetch_command_for, unreadable_message

MAT73_MAGIC = b"MATLAB 7.3 MAT-file"


@dataclasses.dataclass
class VGGWeights:
    """The 16 conv layers of VGG-19 as float32 arrays, with what the file says about itself.

    conv maps a layer name to (kernel (3, 3, in, out), bias (out,)); mean_pixel is (R, G, B).
    """

    conv: dict
    format: str
    mean_pixel: tuple | None = None
    #: MD5 of the `.mat` the arrays came from, where known (kept in the cache, so a run's
    #: record gets it without hashing 535 MB again).
    source_md5: str | None = None


def read_mat(path) -> dict:
    """`scipy.io.loadmat` of the parts of the file nst uses, with clear errors for bad files."""
    import scipy.io

    path = check_weights_path(path)
    try:
        with open(path, "rb") as handle:
            header = handle.read(128)
    except OSError as exc:
        raise WeightsError(unreadable_message(path, exc)) from None
    fetch = fetch_command_for(path)
    if header.startswith(MAT73_MAGIC):
        raise WeightsError(
            f"{path} is a MATLAB v7.3 (HDF5) file, which is not MatConvNet's "
            f"VGG-19 file; delete it and run `{fetch}`"
        )
    if not header.startswith(b"MATLAB"):
        raise WeightsError(
            f"{path} is not a MATLAB .mat file (it does not start with a MATLAB "
            f"header); delete it and run `{fetch}`"
        )
    try:
        return scipy.io.loadmat(str(path), variable_names=("layers", "meta", "normalization"))
    except MemoryError:
        raise
    except Exception as exc:  # scipy raises many types for a cut or damaged file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TruncatedWeightsError(
            f"{path} could not be read as a .mat file, probably "
            f"truncated or corrupt ({reason}); delete it and run "
            f"`{fetch}`"
        ) from None


def _text(value) -> str | None:
    """A MATLAB string as loadmat returns it (a one-element array) as `str`, else None."""
    while isinstance(value, np.ndarray):
        if value.size != 1:
            return None
        value = value.reshape(-1)[0]
    return value if isinstance(value, str) else None


def _record(cell):
    """The struct inside one cell of the `layers` array, or None if it is not a struct."""
    while isinstance(cell, np.ndarray) and cell.dtype == object and cell.size == 1:
        cell = cell.reshape(-1)[0]
    if isinstance(cell, np.ndarray) and cell.dtype.names and cell.size == 1:
        return cell.reshape(-1)[0]
    return None


def iter_layers(mat: dict):
    """Yield (index, field_names, record) for each struct in the file's `layers` array."""
    layers = mat.get("layers")
    if not isinstance(layers, np.ndarray) or layers.dtype != object:
        raise WeightsError(
            "the file has no `layers` array, so it is not MatConvNet's VGG-19; "
            f"delete it and run `{FETCH_COMMAND}`"
        )
    for index, cell in enumerate(layers.reshape(-1)):
        record = _record(cell)
        if record is not None:
            yield index, record.dtype.names, record


def detect_format(mat: dict) -> str:
    """'new', 'intermediate', 'old' or 'unknown', from the top-level keys and conv fields."""
    conv_fields = None
    try:
        for _, names, record in iter_layers(mat):
            if _text(record["type"]) == "conv":
                conv_fields = names
                break
    except (WeightsError, ValueError, KeyError):
        return "unknown"
    if conv_fields is None:
        return "unknown"
    if "meta" in mat and "dilate" in conv_fields:
        return "new"
    if "meta" in mat or "precious" in conv_fields:
        return "intermediate"
    if "normalization" in mat and conv_fields[:1] == ("weights",):
        return "old"
    return "unknown"


def mean_pixel(mat: dict):
    """The (R, G, B) mean that the file records, or None where it records none."""
    try:
        if "meta" in mat:
            norm = _record(mat["meta"])["normalization"]
        else:
            norm = mat["normalization"]
        image = np.asarray(_record(norm)["averageImage"], dtype=np.float64)
        return tuple(float(v) for v in image.reshape(-1, 3).mean(axis=0))
    except Exception:
        return None


@dataclasses.dataclass
class LayerCheck:
    """What the file holds for one conv layer, and the problem with it (None when sound).

    kernel_shape, bias_shape and dtype describe the arrays as stored (None where absent);
    arrays is (kernel float32 (3, 3, in, out), bias float32 (out,)) when the layer is sound.
    """

    name: str
    expected_shape: tuple
    kernel_shape: tuple | None = None
    bias_shape: tuple | None = None
    dtype: str | None = None
    problem: str | None = None
    arrays: tuple | None = dataclasses.field(default=None, repr=False)


def _check_layer(layer, entry) -> LayerCheck:
    check = LayerCheck(layer.name, layer.kernel_shape)
    if entry is None:
        check.problem = f"layer {layer.name} is missing"
        return check
    names, record = entry
    if "weights" not in names:
        check.problem = f"layer {layer.name} has no `weights` field"
        return check
    cell = np.asarray(record["weights"], dtype=object).reshape(-1)
    if cell.size != 2:
        check.problem = f"layer {layer.name} holds {cell.size} weight arrays, expected 2"
        return check
    kernel, bias = np.asarray(cell[0]), np.asarray(cell[1])
    check.kernel_shape, check.bias_shape = kernel.shape, bias.shape
    check.dtype = (
        str(kernel.dtype) if kernel.dtype == bias.dtype else f"{kernel.dtype}/{bias.dtype}"
    )
    out = layer.kernel_shape[-1]
    if kernel.shape != layer.kernel_shape:
        check.problem = (
            f"layer {layer.name} kernel has shape {kernel.shape}, expected {layer.kernel_shape}"
        )
    elif bias.size != out:
        check.problem = f"layer {layer.name} bias has {bias.size} values, expected {out}"
    elif not (np.issubdtype(kernel.dtype, np.floating) and np.issubdtype(bias.dtype, np.floating)):
        check.problem = (
            f"layer {layer.name} weights are {kernel.dtype}/{bias.dtype}, expected floating point"
        )
    else:
        check.arrays = (
            np.ascontiguousarray(kernel, dtype=np.float32),
            np.ascontiguousarray(bias.reshape(-1), dtype=np.float32),
        )
    return check


def conv_layer_checks(mat: dict) -> list:
    """One `LayerCheck` per conv layer of VGG-19, in order, each layer found by its name."""
    found = {}
    for _, names, record in iter_layers(mat):
        if "name" in names:
            name = _text(record["name"])
            if name is not None and name not in found:
                found[name] = (names, record)
    return [_check_layer(layer, found.get(layer.name)) for layer in CONV_LAYERS]


def conv_layer_problems(mat: dict):
    """Read the 16 conv layers by name: returns (arrays, problems).

    arrays maps name -> (kernel float32 (3, 3, in, out), bias float32 (out,)) for each layer
    that is sound; problems lists one sentence per missing or mis-shaped layer.
    """
    checks = conv_layer_checks(mat)
    arrays = {check.name: check.arrays for check in checks if check.problem is None}
    return arrays, [check.problem for check in checks if check.problem is not None]


def load_weights_from_mat(path) -> VGGWeights:
    """The 16 conv layers of a VGG-19 `.mat` file (any format), checked layer by layer."""
    mat = read_mat(path)
    arrays, problems = conv_layer_problems(mat)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise WeightsError(
            f"{path} is not a usable VGG-19 file: {problems[0]}{more}; run "
            f"`python -m nst_utils check-weights {shlex.quote(str(path))}` for "
            f"details, or delete it and run `{fetch_command_for(path)}`"
        )
    return VGGWeights(conv=arrays, format=detect_format(mat), mean_pixel=mean_pixel(mat))
