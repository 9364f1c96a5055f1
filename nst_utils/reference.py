"""The published test inputs of the graded functions, rebuilt exactly on TF2 (the values they
gave are `grading.catalog.PUBLISHED`).

TF1 gave a random op with no seed of its own the seed
``(graph seed, number of operations already in the graph)``; `tf.random_normal` creates three
constants (shape, mean, stddev) before it asks for its seed. TF2's compat.v1 counts random ops
instead, so the same code draws other numbers there. `legacy_random_normal` passes the TF1 seed
explicitly, which brings back the original inputs and so the published values.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

tf1 = tf.compat.v1

GRAPH_SEED = 1
#: Operations that tf.random_normal creates before it asks for its seed.
_OPS_BEFORE_SEED = 3


def legacy_random_normal(shape, mean=0.0, stddev=1.0, dtype=tf.float32):
    """tf.compat.v1.random_normal with the op seed TF1 would have derived in this graph."""
    op_seed = len(tf1.get_default_graph().get_operations()) + _OPS_BEFORE_SEED
    return tf1.random_normal(shape, mean=mean, stddev=stddev, dtype=dtype, seed=op_seed)


def reference_inputs(kind: str) -> dict:
    """The original test cell's inputs as numpy arrays, drawn as TF1 drew them.

    kind: 'content' -> a_C, a_G; 'layer_style' -> a_S, a_G (each (1, 4, 4, 3), the same draws);
    'gram' -> A of shape (3, 2).
    """
    if kind not in ("content", "layer_style", "gram"):
        raise ValueError(f"kind must be 'content', 'layer_style' or 'gram', got {kind!r}")
    with tf.Graph().as_default() as graph, tf1.Session(graph=graph) as sess:
        tf1.set_random_seed(GRAPH_SEED)
        if kind == "gram":
            return {"A": sess.run(legacy_random_normal([3, 2 * 1], mean=1, stddev=4))}
        first = legacy_random_normal([1, 4, 4, 3], mean=1, stddev=4)
        second = legacy_random_normal([1, 4, 4, 3], mean=1, stddev=4)
        a, b = sess.run([first, second])
    names = {"content": ("a_C", "a_G"), "layer_style": ("a_S", "a_G")}[kind]
    return dict(zip(names, (a, b)))


def total_cost_inputs() -> tuple:
    """(J_content, J_style) of the original total_cost test: np.random.seed(3), two randn()."""
    state = np.random.RandomState(3)
    return state.randn(), state.randn()


def evaluate(fn, inputs: dict):
    """fn(**inputs) with the arrays as float32 tensors, run in a fresh graph: a numpy value."""
    with tf.Graph().as_default() as graph, tf1.Session(graph=graph) as sess:
        tensors = {name: tf.constant(value, dtype=tf.float32) for name, value in inputs.items()}
        return np.asarray(sess.run(fn(**tensors)))


def reference_values(functions=None) -> dict:
    """The four graded functions on the original test inputs, under the installed TensorFlow.

    `functions` maps names to implementations to evaluate (the package's by default).
    """
    from . import costs  # here, so that the students' download imports this module without it

    fns = {
        name: getattr(costs, name)
        for name in (
            "compute_content_cost",
            "gram_matrix",
            "compute_layer_style_cost",
            "total_cost",
        )
    }
    fns.update(functions or {})
    return {
        "compute_content_cost": float(
            evaluate(fns["compute_content_cost"], reference_inputs("content"))
        ),
        "gram_matrix": evaluate(fns["gram_matrix"], reference_inputs("gram"))
        .astype(np.float64)
        .tolist(),
        "compute_layer_style_cost": float(
            evaluate(fns["compute_layer_style_cost"], reference_inputs("layer_style"))
        ),
        "total_cost": float(fns["total_cost"](*total_cost_inputs())),
    }
