"""JSON with numpy arrays: how cases go to the sandbox and outputs come back (never pickle).

The sandbox runs untrusted code, so everything it sends back is plain JSON that the grader
validates; pickle would let a submission run code in the grader. Arrays decode only as numbers
(bool, int, float) of a bounded size, so a message cannot make its reader allocate gigabytes
(a string dtype of 10^8 characters per item would); anything malformed is a ValueError.
"""

from __future__ import annotations

import json

import numpy as np

_ARRAY = "__ndarray__"
#: The most values one decoded array may hold (a message line is bounded in bytes anyway).
MAX_ARRAY_VALUES = 10_000_000


def _encode(value):
    if isinstance(value, np.ndarray):
        return {_ARRAY: value.tolist(), "dtype": str(value.dtype), "shape": list(value.shape)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


def _array(value: dict) -> np.ndarray:
    """The array a message describes, only if it holds numbers: (n,) values and a shape of n."""
    dtype, shape = np.dtype(str(value.get("dtype"))), value.get("shape")
    if dtype.kind not in "biuf" or dtype.itemsize > 8:
        raise ValueError(f"arrays hold numbers only, not {dtype}")
    if (
        not isinstance(shape, list)
        or len(shape) > 32
        or not all(
            isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_ARRAY_VALUES
            for n in shape
        )
    ):
        raise ValueError("an array's shape must be a list of sizes")
    if int(np.prod(shape, dtype=np.float64)) > MAX_ARRAY_VALUES:
        raise ValueError("the array is too large")
    return np.asarray(value[_ARRAY], dtype=dtype).reshape(shape)


def _decode(value):
    if isinstance(value, dict):
        if _ARRAY in value:
            return _array(value)
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def dumps(value) -> str:
    """One line of JSON; numpy arrays keep their dtype and shape."""
    return json.dumps(_encode(value), separators=(",", ":"))


def loads(text: str):
    """The value `dumps` wrote; ValueError for anything else, whatever the text holds."""
    try:
        return _decode(json.loads(text))
    except (TypeError, KeyError, IndexError, RecursionError, OverflowError, MemoryError) as exc:
        raise ValueError(f"malformed message ({type(exc).__name__})") from None
