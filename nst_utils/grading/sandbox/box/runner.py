"""Call a function on its cases and describe what it returned, as JSON-ready data.

The same code runs a submission inside the sandbox and a function in the grader's or the
notebook's own process. It knows nothing of any graded function: a case says how to build each
argument ({'value', 'as': tensor|numpy|float}); each case gets a fresh graph and session, and
errors are recorded per case, never raised. No reference implementation is imported here.
"""

from __future__ import annotations

import types

import numpy as np
import tensorflow as tf

tf1 = tf.compat.v1

#: The cases are tiny: one thread each keeps the sandbox's address space (and its limit) small.
_ONE_THREAD = tf1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
#: Larger results are described by their shape only.
MAX_VALUES = 10_000


def namespace(extra=None) -> dict:
    """The globals a graded cell runs in: the notebook's imports (tf is TensorFlow's v1 API)."""
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
    """{'kind': tensor|numpy|float|<type name>, 'value': nested list or None, 'shape': list}."""
    if isinstance(result, (tf.Tensor, tf.Variable)):
        kind, value = "tensor", sess.run(result)
    elif isinstance(result, (np.ndarray, np.generic)):
        kind, value = "numpy", result
    elif isinstance(result, (int, float)) and not isinstance(result, bool):
        kind, value = "float", result
    else:
        return {"kind": type(result).__name__, "value": None, "shape": None}
    value = np.asarray(value, dtype=np.float64)
    if value.size > MAX_VALUES:
        return {"kind": kind, "value": None, "shape": list(value.shape)}
    return {"kind": kind, "value": value.tolist(), "shape": list(value.shape)}


def error_info(exc: BaseException) -> dict:
    """{type, message}: the exception's class name and the first line of its message."""
    text = str(exc).strip()
    message = text.splitlines()[0] if text else ""
    return {"type": type(exc).__name__, "message": message[:300]}


def _argument(arg):
    how, value = arg["as"], arg["value"]
    if how == "tensor":
        return tf.constant(np.asarray(value, dtype=np.float32))
    if how == "numpy":
        return np.asarray(value, dtype=np.float32)
    return float(value)


def run_case(fn, case) -> dict:
    """One case: {'kind', 'value', 'shape'} or {'error': {..., 'stage': call|evaluate}}."""
    graph = tf.Graph()
    with (
        graph.as_default(),
        tf1.Session(graph=graph, config=_ONE_THREAD) as sess,
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
    `ask(name, matrix)` obtains (from the grader, as data); its static shape is (rows, rows)."""

    def proxy(A):
        A = tf.convert_to_tensor(A, dtype=tf.float32)
        out = tf1.numpy_function(
            lambda a: np.asarray(ask(name, a), dtype=np.float32), [A], tf.float32, stateful=False
        )
        rows = A.shape[0] if A.shape.rank == 2 else None
        out.set_shape([rows, rows])
        return out

    proxy.__name__ = name
    return proxy
