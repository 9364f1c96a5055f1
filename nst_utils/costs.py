"""The costs of neural style transfer (Gatys et al. 2015): reference implementations, and the
one home of their formulas.

These are the notebook's graded functions with the original signatures; the notebook defines
its own copies (the exercise) and a test keeps the two equal. a_C, a_S, a_G are activations of
one layer, shape (1, n_H, n_W, n_C): a tensor, or for a_C and a_S a numpy array from a session.
The pieces they are made of serve every other path that computes these costs; as they hold
the solutions, this module is not in the students' download (grading.assignment.STUDENT_MODULES).
"""

from __future__ import annotations

import tensorflow as tf

from .errors import SessionError
from .settings import DEFAULTS, STYLE_LAYERS

tf1 = tf.compat.v1


def sum_of_squares(A, B):
    """sum((A - B)^2): a scalar tensor."""
    return tf.reduce_sum(tf.square(tf.subtract(A, B)))


def content_normalisation(n_H: int, n_W: int, n_C: int) -> int:
    """4 n_H n_W n_C, the content cost's denominator."""
    return 4 * n_H * n_W * n_C


def style_normalisation(n_H: int, n_W: int, n_C: int) -> int:
    """4 n_C^2 (n_H n_W)^2, a style layer's denominator."""
    return 4 * n_C**2 * (n_H * n_W) ** 2


def unrolled(a, n_H: int, n_W: int, n_C: int):
    """(1, n_H, n_W, n_C) -> (n_C, n_H*n_W), a row per channel.

    Unrolled to (n_H*n_W, n_C) and transposed: reshaping straight to (n_C, n_H*n_W) would mix
    channels.
    """
    return tf.transpose(tf.reshape(a, [n_H * n_W, n_C]))


def compute_content_cost(a_C, a_G):
    """J_content = sum((a_C - a_G)^2) / (4 n_H n_W n_C): a scalar tensor."""
    m, n_H, n_W, n_C = a_G.get_shape().as_list()
    return sum_of_squares(a_C, a_G) / content_normalisation(n_H, n_W, n_C)


def gram_matrix(A):
    """G_A = A A^T for A of shape (n_C, n_H*n_W): the (n_C, n_C) matrix of channel correlations."""
    return tf.matmul(A, tf.transpose(A))


def layer_style_cost_from_grams(GS, GG, n_H: int, n_W: int, n_C: int):
    """J_style^l from the two (n_C, n_C) Gram matrices of a layer of n_H x n_W x n_C."""
    return sum_of_squares(GS, GG) / style_normalisation(n_H, n_W, n_C)


def compute_layer_style_cost(a_S, a_G):
    """J_style^l = sum((G_S - G_G)^2) / (4 n_C^2 (n_H n_W)^2): a scalar tensor."""
    m, n_H, n_W, n_C = a_G.get_shape().as_list()
    GS = gram_matrix(unrolled(a_S, n_H, n_W, n_C))
    GG = gram_matrix(unrolled(a_G, n_H, n_W, n_C))
    return layer_style_cost_from_grams(GS, GG, n_H, n_W, n_C)


def compute_style_cost(model, STYLE_LAYERS=STYLE_LAYERS, sess=None):
    """J_style = sum over STYLE_LAYERS of lambda_l J_style^l: a scalar tensor.

    The style image must already be assigned to model['input']: its activations (a_S) are read
    now through `sess`, or the default session (the original took a notebook global).
    """
    sess = sess or tf1.get_default_session()
    if sess is None:
        raise SessionError(
            "compute_style_cost needs a session: pass sess=..., or call it "
            "inside `with sess.as_default():` or after tf.compat.v1.InteractiveSession()"
        )
    # The style image's activations of every layer in one run: the same numbers as one run per
    # layer (the original), without a graph optimisation pass per layer.
    style_activations = sess.run({layer_name: model[layer_name] for layer_name, _ in STYLE_LAYERS})
    J_style = 0
    for layer_name, coeff in STYLE_LAYERS:
        a_S = style_activations[layer_name]
        a_G = model[layer_name]
        J_style += coeff * compute_layer_style_cost(a_S, a_G)
    return J_style


def _shape(tensor) -> tuple:
    """(n_H, n_W, n_C) of a (1, n_H, n_W, n_C) tensor."""
    return tuple(tensor.get_shape().as_list()[1:])


def style_grams(model, style_layers) -> dict:
    """{layer: G (n_C, n_C)}: the Gram matrix of model[layer], unrolled as compute_layer_style_cost
    unrolls it; run with a style image assigned it gives that image's G_S."""
    return {
        name: gram_matrix(unrolled(model[name], *_shape(model[name]))) for name, _ in style_layers
    }


def style_cost_from_grams(model, grams, style_grams_values, style_layers):
    """compute_style_cost's J_style, given the style image's Gram matrices ({layer: G_S}, each
    (n_C, n_C), as variables or arrays), comparing with each G_S instead of the style image's
    activations (n_H n_W n_C floats per layer)."""
    J_style = 0
    for name, coeff in style_layers:
        J_style += coeff * layer_style_cost_from_grams(
            style_grams_values[name], grams[name], *_shape(model[name])
        )
    return J_style


def total_cost(J_content, J_style, alpha=DEFAULTS.alpha, beta=DEFAULTS.beta):
    """J = alpha J_content + beta J_style."""
    return alpha * J_content + beta * J_style
