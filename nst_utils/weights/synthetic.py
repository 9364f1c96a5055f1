"""Write a VGG-19 `.mat` file with random weights and the real file's exact structure.

The real weights (about 535 MB) cannot be downloaded everywhere; tests and the benchmark use
these files instead. Fields, field order, types, cell shapes and the mean pixel follow
MatConvNet's files in each format ('new', 'intermediate', 'old'). Conv kernels have their real
shapes; fc layers are shrunk unless full_size=True. Kernels are He-initialised so activations
keep a sensible scale through all 16 layers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..architecture import CONV_BY_NAME, FC_SHAPES, FILE_LAYERS
from ..settings import DEFAULTS

MEAN_PIXEL = DEFAULTS.means
SMALL_FC_SHAPES = {"fc6": (1, 1, 512, 8), "fc7": (1, 1, 8, 8), "fc8": (1, 1, 8, 1000)}

#: Field order of each layer type, by format (the intermediate format lacks `dilate`).
NEW_FIELDS = {
    "conv": ("name", "type", "weights", "size", "pad", "stride", "precious", "dilate", "opts"),
    "relu": ("name", "type", "leak", "weights", "precious"),
    "pool": ("name", "type", "method", "pool", "stride", "pad", "weights", "precious", "opts"),
    "softmax": ("name", "type", "weights", "precious"),
}
OLD_FIELDS = {
    "conv": ("weights", "pad", "type", "name", "stride"),
    "relu": ("type", "name"),
    "pool": ("name", "stride", "pad", "type", "method", "pool"),
    "softmax": ("type", "name"),
}
FORMATS = ("new", "intermediate", "old")


def _struct(fields, values: dict) -> np.ndarray:
    """A (1, 1) MATLAB struct with `fields` in that order, as savemat expects it."""
    record = np.empty((1, 1), dtype=[(name, object) for name in fields])
    for name in fields:
        record[0, 0][name] = values[name]
    return record


def _cell(items) -> np.ndarray:
    """A (1, n) MATLAB cell array."""
    cell = np.empty((1, len(items)), dtype=object)
    for i, item in enumerate(items):
        cell[0, i] = item
    return cell


def _layer(name, kind, fmt, rng, kernel_shapes, integer):
    values = {
        "name": name,
        "type": kind,
        "precious": np.array([[0]], dtype=np.uint8),
        "weights": np.empty((0, 0), dtype=object),
        "opts": np.empty((0, 0), dtype=object),
        "leak": np.array([[0]], dtype=np.uint8),
    }
    if kind == "conv":
        shape = kernel_shapes[name]
        fan_in = shape[0] * shape[1] * shape[2]
        kernel = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
        bias = rng.standard_normal(shape[3], dtype=np.float32) * np.float32(0.01)
        bias = bias.reshape((1, -1)) if fmt == "old" else bias.reshape((-1, 1))
        pad = 1 if name.startswith("conv") else 0
        values.update(
            weights=_cell([kernel, bias]),
            size=np.array([shape], dtype=np.float64),
            pad=np.array([[pad] * 4], dtype=integer),
            stride=np.array([[1, 1]], dtype=integer),
            dilate=np.array([[1]], dtype=integer),
        )
    elif kind == "pool":
        values.update(
            method="max",
            pool=np.array([[2, 2]], dtype=integer),
            stride=np.array([[2, 2]], dtype=integer),
            pad=np.array([[0, 1, 0, 1]] if name == "pool5" else [[0, 0, 0, 0]], dtype=integer),
        )
    fields = OLD_FIELDS[kind] if fmt == "old" else NEW_FIELDS[kind]
    if fmt == "intermediate":
        fields = tuple(f for f in fields if f != "dilate")
    return _struct(fields, values)


def vgg19_mat_dict(fmt: str = "new", seed: int = 0, full_size: bool = False) -> dict:
    """The variables of a VGG-19 `.mat` file in format `fmt`, with random weights."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    rng = np.random.default_rng(seed)
    kernel_shapes = {name: layer.kernel_shape for name, layer in CONV_BY_NAME.items()}
    kernel_shapes.update(FC_SHAPES if full_size else SMALL_FC_SHAPES)
    integer = np.float64 if fmt == "old" else np.uint8
    layers = _cell(
        [_layer(name, kind, fmt, rng, kernel_shapes, integer) for name, kind in FILE_LAYERS]
    )
    class_names = _cell([f"n{i:08d}" for i in range(1000)])
    descriptions = _cell([f"class {i}" for i in range(1000)])
    if fmt == "old":
        normalization = _struct(
            ("averageImage", "keepAspect", "border", "imageSize", "interpolation"),
            {
                "averageImage": np.broadcast_to(
                    np.array(MEAN_PIXEL, dtype=np.float32), (224, 224, 3)
                ).copy(),
                "keepAspect": np.array([[1]], dtype=np.float64),
                "border": np.array([[32, 32]], dtype=np.float64),
                "imageSize": np.array([[224, 224, 3]], dtype=np.float64),
                "interpolation": "bilinear",
            },
        )
        classes = _struct(
            ("name", "description"), {"name": class_names, "description": descriptions}
        )
        return {"layers": layers, "classes": classes, "normalization": normalization}
    normalization = _struct(
        ("imageSize", "keepAspect", "averageImage", "border", "cropSize", "interpolation"),
        {
            "imageSize": np.array([[224, 224, 3, 10]], dtype=np.float64),
            "keepAspect": np.array([[1]], dtype=np.uint8),
            "averageImage": np.array(MEAN_PIXEL, dtype=np.float32).reshape((1, 1, 3)),
            "border": np.array([[32, 32]], dtype=np.float64),
            "cropSize": np.array([[0.875, 0.875]], dtype=np.float64),
            "interpolation": "bilinear",
        },
    )
    meta = _struct(
        ("inputs", "classes", "normalization"),
        {
            "inputs": _struct(
                ("name", "size"),
                {"name": "data", "size": np.array([[224, 224, 3, 10]], dtype=np.float64)},
            ),
            "classes": _struct(
                ("name", "description"), {"name": class_names, "description": descriptions}
            ),
            "normalization": normalization,
        },
    )
    return {"layers": layers, "meta": meta}


def write_vgg19_mat(path, fmt: str = "new", seed: int = 0, full_size: bool = False) -> Path:
    """Write a random-weights VGG-19 `.mat` file at `path` in format `fmt`; returns the path."""
    import scipy.io

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(
        str(path),
        vgg19_mat_dict(fmt, seed, full_size),
        format="5",
        do_compression=False,
        oned_as="row",
    )
    return path


def benchmark_weights(full_size: bool = True) -> Path:
    """A random-weights new-format file kept under the temporary folder for the benchmarks.

    Written once (through a partial file renamed when complete, so an interrupted write is
    never taken for a file) and reused by later runs; full_size=True is VGG-19's real size.
    """
    import os
    import tempfile

    folder = Path(tempfile.gettempdir()) / "nst-bench"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"vgg19-random-{'full' if full_size else 'small'}-new.mat"
    if not path.exists():
        print(f"writing {path} (random weights, once) ...", flush=True)
        partial = folder / f".{path.name}.{os.getpid()}.partial"
        write_vgg19_mat(partial, "new", seed=0, full_size=full_size)
        partial.replace(path)
    return path
