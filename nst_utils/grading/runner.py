"""Run one graded function on its cases and describe what it returned (JSON-ready).

The same code runs a student's function inside the sandbox, the reference implementation in the
grader (for the expected outputs) and a student's function in their notebook (self-check). Each
case gets a fresh graph and session; errors are recorded per case, never raised.
"""

from __future__ import annotations

import types

import numpy as np
import tensorflow as tf

from .. import costs
from ..config import STYLE_LAYERS
from . import fake_model

tf1 = tf.compat.v1

#: Functions a graded function may call: the reference ones, so one mistake is marked once.
DEPENDENCIES = {"gram_matrix": costs.gram_matrix,
                "compute_layer_style_cost": costs.compute_layer_style_cost}


#: The cases are tiny: one thread each keeps the sandbox's address space (and its limit) small.
_ONE_THREAD = tf1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)


def namespace() -> dict:
    """The globals a graded cell runs in: what the notebook has imported by then."""
    return {"__name__": "submission", "__builtins__": __builtins__, "np": np, "tf": tf, "tf1": tf1,
            "STYLE_LAYERS": [list(layer) for layer in STYLE_LAYERS], **DEPENDENCIES}


def with_dependencies(fn, name: str):
    """A copy of `fn` whose globals use the reference functions for every other graded function."""
    if not isinstance(fn, types.FunctionType):
        return fn
    env = dict(fn.__globals__)
    env.update({k: v for k, v in DEPENDENCIES.items() if k != name})
    copy = types.FunctionType(fn.__code__, env, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__kwdefaults__ = fn.__kwdefaults__
    return copy


def _describe(result, sess) -> dict:
    """{'kind': tensor|numpy|float|<type>, 'value': nested list or None, 'shape': list}."""
    if isinstance(result, (tf.Tensor, tf.Variable)):
        kind, value = "tensor", sess.run(result)
    elif isinstance(result, (np.ndarray, np.generic)):
        kind, value = "numpy", result
    elif isinstance(result, (int, float)) and not isinstance(result, bool):
        kind, value = "float", result
    else:
        return {"kind": type(result).__name__, "value": None, "shape": None}
    value = np.asarray(value, dtype=np.float64)
    if value.size > 10_000:
        return {"kind": kind, "value": None, "shape": list(value.shape)}
    return {"kind": kind, "value": value.tolist(), "shape": list(value.shape)}


def error_info(exc: BaseException) -> dict:
    """{type, message}: the exception's class name and the first line of its message."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return {"type": type(exc).__name__, "message": message[:300]}


def _call(name, fn, case, sess):
    """Build the case's inputs in the session's graph and call fn; the result, not yet evaluated."""
    if name in ("compute_content_cost", "compute_layer_style_cost"):
        first, second = ("a_C", "a_G") if name == "compute_content_cost" else ("a_S", "a_G")
        a = case[first] if case["as_numpy"] else tf.constant(case[first])
        return fn(a, tf.constant(case[second]))
    if name == "gram_matrix":
        return fn(tf.constant(case["A"]))
    if name == "total_cost":
        inputs = [case["J_content"], case["J_style"]]
        if case["as"] == "tensor":
            inputs = [tf.constant(v, dtype=tf.float32) for v in inputs]
        extra = {k: case[k] for k in ("alpha", "beta") if k in case}
        return fn(*inputs, **extra)
    if name == "compute_style_cost":
        model = fake_model.build_model(case["model_seed"])
        feed = tf1.placeholder(tf.float32, fake_model.INPUT_SHAPE)
        assign = model["input"].assign(feed)
        sess.run(tf1.global_variables_initializer())
        sess.run(assign, {feed: case["style_image"]})
        layers = [tuple(layer) for layer in case["style_layers"]]
        if isinstance(fn, types.FunctionType) and "sess" in fn.__code__.co_names:
            fn.__globals__["sess"] = sess  # the original read a notebook-global session
        result = fn(model, layers)
        sess.run(assign, {feed: case["generated_image"]})
        return result
    raise ValueError(f"{name!r} is not a graded function")


def run_case(name, fn, case) -> dict:
    """One case: {'kind', 'value', 'shape'} or {'error': {...}} (with 'stage': call or evaluate)."""
    graph = tf.Graph()
    with graph.as_default(), tf1.Session(graph=graph, config=_ONE_THREAD) as sess, sess.as_default():
        try:
            result = _call(name, fn, case, sess)
        except BaseException as exc:  # noqa: BLE001 - SystemExit and the like are findings too
            return {"error": dict(error_info(exc), stage="call")}
        try:
            return _describe(result, sess)
        except BaseException as exc:  # noqa: BLE001
            return {"error": dict(error_info(exc), stage="evaluate")}


def run_cases(name, fn, cases) -> list:
    return [run_case(name, fn, case) for case in cases]
