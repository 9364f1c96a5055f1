"""JSON with numpy arrays: how cases go to the sandbox and outputs come back (never pickle).

The sandbox runs untrusted code, so everything it sends back is plain JSON that the grader
validates; pickle would let a submission run code in the grader.
"""

from __future__ import annotations

import json

import numpy as np

_ARRAY = "__ndarray__"


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


def _decode(value):
    if isinstance(value, dict):
        if _ARRAY in value:
            return np.asarray(value[_ARRAY], dtype=value["dtype"]).reshape(value["shape"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def dumps(value) -> str:
    """One line of JSON; numpy arrays keep their dtype and shape."""
    return json.dumps(_encode(value), separators=(",", ":"))


def loads(text: str):
    return _decode(json.loads(text))
