"""The costs of neural style transfer (Gatys et al. 2015): reference implementations.

These are the notebook's graded functions with the original signatures; the notebook defines
its own copies (the exercise) and a test keeps the two equal. a_C, a_S, a_G are activations of
one layer, shape (1, n_H, n_W, n_C): a tensor, or for a_C and a_S a numpy array from a session.
"""

from __future__ import annotations

import tensorflow as tf

from .config import STYLE_LAYERS
from .errors import SessionError

tf1 = tf.compat.v1


def content_norm(n_H, n_W, n_C):
    """The content cost's divisor, 4 n_H n_W n_C."""
    return 4 * n_H * n_W * n_C


def style_norm(n_H, n_W, n_C):
    """A layer's style cost divisor, 4 n_C^2 (n_H n_W)^2."""
    return 4 * n_C**2 * (n_H * n_W) ** 2


def compute_content_cost(a_C, a_G):
    """J_content = sum((a_C - a_G)^2) / (4 n_H n_W n_C): a scalar tensor."""
    m, n_H, n_W, n_C = a_G.get_shape().as_list()
    return tf.reduce_sum(tf.square(tf.subtract(a_C, a_G))) / content_norm(n_H, n_W, n_C)


def gram_matrix(A):
    """G_A = A A^T for A of shape (n_C, n_H*n_W): the (n_C, n_C) matrix of channel correlations."""
    return tf.matmul(A, tf.transpose(A))


def compute_layer_style_cost(a_S, a_G):
    """J_style^l = sum((G_S - G_G)^2) / (4 n_C^2 (n_H n_W)^2): a scalar tensor.

    Each activation is unrolled to (n_H*n_W, n_C) and transposed to (n_C, n_H*n_W) so that a
    row holds one channel; reshaping straight to (n_C, n_H*n_W) would mix channels.
    """
    m, n_H, n_W, n_C = a_G.get_shape().as_list()
    a_S = tf.transpose(tf.reshape(a_S, [n_H * n_W, n_C]))
    a_G = tf.transpose(tf.reshape(a_G, [n_H * n_W, n_C]))
    GS = gram_matrix(a_S)
    GG = gram_matrix(a_G)
    return tf.reduce_sum(tf.square(tf.subtract(GS, GG))) / style_norm(n_H, n_W, n_C)


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


def total_cost(J_content, J_style, alpha=10, beta=40):
    """J = alpha J_content + beta J_style."""
    return alpha * J_content + beta * J_style
