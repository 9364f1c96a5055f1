"""The classic mistakes, as numpy re-implementations: a wrong answer that matches one is named.

Each mistake maps a case (see cases.py) to the value that mistaken code returns, or None when
it cannot tell on that case; compute_style_cost's mistakes also get the reference per-layer
costs. Wrong normalisation factors are recognised separately (diagnose.normalisation_factor).
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import numpy as np


class Mistake(NamedTuple):
    key: str
    message: str
    value: Callable  # (case, extra) -> numpy value or None


def _dims(a):
    _, n_H, n_W, n_C = np.shape(a)
    return n_H, n_W, n_C


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def _content(case, squared_sum=False, squared_diff=True):
    n_H, n_W, n_C = _dims(case["a_G"])
    diff = _f64(case["a_C"]) - _f64(case["a_G"])
    total = np.sum(diff ** 2) if squared_diff else np.sum(diff)
    return (total ** 2 if squared_sum else total) / (4 * n_H * n_W * n_C)


def _unroll(a, transpose=True):
    n_H, n_W, n_C = _dims(a)
    a = _f64(a)
    return a.reshape(n_H * n_W, n_C).T if transpose else a.reshape(n_C, n_H * n_W)


def _layer_style(case, unroll=_unroll, gram=lambda A: A @ A.T, squared_sum=False, squared_diff=True):
    n_H, n_W, n_C = _dims(case["a_G"])
    diff = gram(unroll(case["a_S"])) - gram(unroll(case["a_G"]))
    total = np.sum(diff ** 2) if squared_diff else np.sum(diff)
    return (total ** 2 if squared_sum else total) / (4 * n_C ** 2 * (n_H * n_W) ** 2)


def _total(case, swap=False, fixed=False, squared=False):
    alpha, beta = (10.0, 40.0) if fixed else (case.get("alpha", 10.0), case.get("beta", 40.0))
    if swap:
        alpha, beta = beta, alpha
    jc, js = case["J_content"], case["J_style"]
    if squared:
        jc, js = jc ** 2, js ** 2
    return alpha * jc + beta * js


NO_TRANSPOSE = ("reshaped straight to (n_C, n_H*n_W) without the transpose: the shapes fit but "
                "each row mixes channels; reshape to (n_H*n_W, n_C), then tf.transpose")

MISTAKES = {
    "compute_content_cost": (
        Mistake("squared", "squared where it should not be: the sum of squared differences is "
                "squared again; square the differences, sum, then divide",
                lambda c, x: _content(c, squared_sum=True)),
        Mistake("not_squared", "the differences are not squared: use "
                "tf.reduce_sum(tf.square(tf.subtract(a_C, a_G)))",
                lambda c, x: _content(c, squared_diff=False)),
    ),
    "gram_matrix": (
        Mistake("transposed", "computes A^T A, of shape (n_H*n_W, n_H*n_W); the Gram matrix is "
                "A A^T, of shape (n_C, n_C): tf.matmul(A, tf.transpose(A))",
                lambda c, x: _f64(c["A"]).T @ _f64(c["A"])),
        Mistake("squared", "squared where it should not be: the Gram matrix is A A^T, with no "
                "square", lambda c, x: (_f64(c["A"]) @ _f64(c["A"]).T) ** 2),
        Mistake("elementwise", "multiplies element by element; the Gram matrix is the matrix "
                "product tf.matmul(A, tf.transpose(A))",
                lambda c, x: _f64(c["A"]) * _f64(c["A"]) if np.shape(c["A"])[0] != np.shape(c["A"])[1]
                else None),
    ),
    "compute_layer_style_cost": (
        Mistake("no_transpose", NO_TRANSPOSE,
                lambda c, x: _layer_style(c, unroll=lambda a: _unroll(a, transpose=False))),
        Mistake("gram_of_rows", "unrolled to (n_H*n_W, n_C) without the transpose, so the Gram "
                "matrices are (n_H*n_W, n_H*n_W); transpose to (n_C, n_H*n_W) first",
                lambda c, x: _layer_style(c, unroll=lambda a: _unroll(a).T)),
        Mistake("squared", "squared where it should not be: the sum of squared differences is "
                "squared again", lambda c, x: _layer_style(c, squared_sum=True)),
        Mistake("not_squared", "the differences of the Gram matrices are not squared",
                lambda c, x: _layer_style(c, squared_diff=False)),
    ),
    "compute_style_cost": (
        Mistake("a_S_not_evaluated", "a_S is the layer's tensor itself, not its value for the style "
                "image, so the cost is always 0: evaluate it with a_S = sess.run(out) while the style "
                "image is the input", lambda c, x: 0.0),
        Mistake("weights_ignored", "the layer weights are ignored: multiply each layer's cost by "
                "its coefficient from STYLE_LAYERS", lambda c, x: float(np.sum(x["layer_costs"]))),
        Mistake("last_layer_only", "only the last layer counts: add each layer's weighted cost "
                "(J_style += coeff * J_style_layer) instead of replacing it",
                lambda c, x: float(x["weights"][-1] * x["layer_costs"][-1])),
        Mistake("unweighted_last", "only the last layer counts, without its weight: add "
                "coeff * J_style_layer for every layer", lambda c, x: float(x["layer_costs"][-1])),
    ),
    "total_cost": (
        Mistake("swapped", "alpha and beta are swapped: J = alpha * J_content + beta * J_style",
                lambda c, x: _total(c, swap=True)),
        Mistake("hard_coded", "alpha and beta are hard-coded as 10 and 40: use the alpha and beta "
                "arguments", lambda c, x: _total(c, fixed=True)),
        Mistake("squared", "squared where it should not be: J = alpha * J_content + beta * J_style, "
                "no squares", lambda c, x: _total(c, squared=True)),
    ),
}


def matching_mistake(name: str, cases: list, values: list, close, extras: Optional[list] = None):
    """The first mistake whose values match the student's on every case it can judge, or None.

    values[i] is the student's value on cases[i] (None when it raised); close(a, b) compares.
    """
    extras = extras or [None] * len(cases)
    for mistake in MISTAKES.get(name, ()):
        judged = 0
        for case, value, extra in zip(cases, values, extras):
            if value is None:
                continue
            expected = mistake.value(case, extra)
            if expected is None:
                continue
            if not close(value, expected):
                break
            judged += 1
        else:
            if judged:
                return mistake
    return None
