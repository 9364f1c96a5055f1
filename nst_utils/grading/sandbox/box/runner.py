"""Call a function on its cases and describe what it returned, as JSON-ready data.

The same code runs a submission inside the sandbox and a function in the grader's or the
notebook's own process. It knows nothing of any graded function: a case says how to build each
argument ({'value', 'as': tensor|numpy|float}); each case gets a fresh graph and session, and
errors are recorded per case, never raised. No reference implementation is imported here.
"""

from __future__ import annotations

import functools
import types

import numpy as np

#: Larger results are described by their shape only.
MAX_VALUES = 10_000
#: The longest exception message kept (TensorFlow names the shapes at the end of its own).
MAX_MESSAGE = 600


@functools.lru_cache(maxsize=None)
def _tf():
    """TensorFlow, imported on first use: importing this module (a command's --help, the grader's
    catalog) must not start TensorFlow."""
    import tensorflow as tf

    return tf


def namespace(extra=None) -> dict:
    """The globals a graded cell runs in: the notebook's imports (tf is TensorFlow's v1 API)."""
    tf1 = _tf().compat.v1
    env = {"__name__": "submission", "__builtins__": __builtins__, "np": np, "tf": tf1, "tf1": tf1}
    env.update(extra or {})
    return env


def with_globals(fn, replacements: dict):
    """A copy of plain function `fn` whose globals have `replacements` (e.g. another graded one)."""
    if not isinstance(fn, types.FunctionType) or not replacements:
        return fn
    env = dict(fn.__globals__)
    env.update(replacements)
    copy = types.FunctionType(fn.__code__, env, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__kwdefaults__ = fn.__kwdefaults__
    return copy


def describe(result, sess) -> dict:
    """{'kind': tensor|numpy|float|<type name>, 'value': nested list or None, 'shape': list,
    'dtype': the value's own dtype (float32 results are judged to float32's precision)}."""
    tf = _tf()
    if isinstance(result, (tf.Tensor, tf.Variable)):
        kind, value = "tensor", sess.run(result)
    elif isinstance(result, (np.ndarray, np.generic)):
        kind, value = "numpy", result
    elif isinstance(result, (int, float)) and not isinstance(result, bool):
        kind, value = "float", result
    else:
        return {"kind": type(result).__name__, "value": None, "shape": None}
    dtype = str(np.asarray(value).dtype)
    value = np.asarray(value, dtype=np.float64)
    if value.size > MAX_VALUES:
        return {"kind": kind, "value": None, "shape": list(value.shape), "dtype": dtype}
    return {"kind": kind, "value": value.tolist(), "shape": list(value.shape), "dtype": dtype}


def error_info(exc: BaseException) -> dict:
    """{type, message}: the exception's class name and the first line of its message."""
    text = str(exc).strip()
    message = text.splitlines()[0] if text else ""
    return {"type": type(exc).__name__, "message": message[:MAX_MESSAGE]}


def _argument(arg):
    how, value = arg["as"], arg["value"]
    if how == "tensor":
        return _tf().constant(np.asarray(value, dtype=np.float32))
    if how == "numpy":
        return np.asarray(value, dtype=np.float32)
    return float(value)


def run_case(fn, case) -> dict:
    """One case: {'kind', 'value', 'shape'} or {'error': {..., 'stage': call|evaluate}}."""
    tf = _tf()
    tf1 = tf.compat.v1
    # The cases are tiny: one thread each keeps the sandbox's address space (and its limit) small.
    one_thread = tf1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
    graph = tf.Graph()
    with (
        graph.as_default(),
        tf1.Session(graph=graph, config=one_thread) as sess,
        sess.as_default(),
    ):
        try:
            args = [_argument(a) for a in case["args"]]
            kwargs = {k: _argument(a) for k, a in case.get("kwargs", {}).items()}
            result = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - SystemExit and the like are findings too
            return {"error": dict(error_info(exc), stage="call")}
        try:
            return describe(result, sess)
        except BaseException as exc:  # noqa: BLE001
            return {"error": dict(error_info(exc), stage="evaluate")}


#: Errors after which the remaining cases are not tried (they would fail alike, slowly).
_FINAL = ("MemoryError", "ResourceExhaustedError", "SystemExit", "KeyboardInterrupt")


def run_cases(fn, cases) -> list:
    outputs = []
    for case in cases:
        out = run_case(fn, case) if not outputs or not _final(outputs[-1]) else outputs[-1]
        outputs.append(out)
    return outputs


def _final(output) -> bool:
    return isinstance(output.get("error"), dict) and output["error"].get("type") in _FINAL


def oracle_function(name: str, ask):
    """A stand-in for graded function `name` that another one calls: a TensorFlow op whose value
    `ask(name, matrix)` obtains (from the grader, as data). It takes what the function takes
    written any honest way: a float32 or float64 matrix (n_C, n_H*n_W), or a batch of them
    (..., n_C, n_H*n_W); its result has A's dtype and the static shape (..., n_C, n_C)."""
    tf = _tf()

    def proxy(A):
        A = tf.convert_to_tensor(A)
        dtype = A.dtype if A.dtype in (tf.float16, tf.float32, tf.float64) else tf.float32
        A = tf.cast(A, dtype)
        out = tf.compat.v1.numpy_function(
            lambda a: np.asarray(ask(name, a), dtype=dtype.as_numpy_dtype),
            [A],
            dtype,
            stateful=False,
        )
        if A.shape.rank is not None and A.shape.rank >= 2:
            out.set_shape(A.shape[:-1].concatenate(A.shape[-2:-1]))
        return out

    proxy.__name__ = name
    return proxy
