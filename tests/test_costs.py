"""Each cost function equals an independent numpy computation on random inputs."""

import numpy as np
import pytest
import tensorflow as tf

from nst_utils import costs
from nst_utils.config import STYLE_LAYERS
from nst_utils.errors import SessionError
from nst_utils.vgg import load_vgg_model

tf1 = tf.compat.v1


def np_content(a_C, a_G):
    _, h, w, c = a_G.shape
    return np.sum((a_C.astype(np.float64) - a_G) ** 2) / (4 * h * w * c)


def np_unroll(a):
    """(1, n_H, n_W, n_C) -> (n_C, n_H*n_W): one channel per row."""
    _, h, w, c = a.shape
    return a.astype(np.float64).reshape(h * w, c).T


def np_layer_style(a_S, a_G):
    _, h, w, c = a_G.shape
    gs, gg = np_unroll(a_S) @ np_unroll(a_S).T, np_unroll(a_G) @ np_unroll(a_G).T
    return np.sum((gs - gg) ** 2) / (4 * c**2 * (h * w) ** 2)


@pytest.mark.parametrize(
    "name, numpy_cost, shape",
    [
        ("compute_content_cost", np_content, (1, 4, 4, 3)),
        ("compute_content_cost", np_content, (1, 5, 7, 16)),
        ("compute_layer_style_cost", np_layer_style, (1, 4, 4, 3)),
        ("compute_layer_style_cost", np_layer_style, (1, 6, 5, 8)),
    ],
)
def test_layer_costs_equal_numpy(sess, rng, name, numpy_cost, shape):
    a, b = rng.normal(1, 4, shape).astype(np.float32), rng.normal(1, 4, shape).astype(np.float32)
    got = sess.run(getattr(costs, name)(tf.constant(a), tf.constant(b)))
    assert got == pytest.approx(numpy_cost(a, b), rel=1e-5)


def test_gram_matrix(sess, rng):
    A = rng.normal(size=(6, 35)).astype(np.float32)
    got = sess.run(costs.gram_matrix(tf.constant(A)))
    assert got.shape == (6, 6)
    np.testing.assert_allclose(got, A.astype(np.float64) @ A.T, rtol=1e-5, atol=1e-4)


def test_layer_style_cost_unrolls_with_the_transpose(sess, rng):
    """Reshaping straight to (n_C, n_H*n_W) gives another number: the classic mistake."""
    a_S, a_G = rng.normal(size=(2, 1, 3, 3, 4)).astype(np.float32)
    wrong_S, wrong_G = a_S.reshape(4, 9).astype(np.float64), a_G.reshape(4, 9).astype(np.float64)
    wrong = np.sum((wrong_S @ wrong_S.T - wrong_G @ wrong_G.T) ** 2) / (4 * 16 * 81)
    got = sess.run(costs.compute_layer_style_cost(tf.constant(a_S), tf.constant(a_G)))
    assert got == pytest.approx(np_layer_style(a_S, a_G), rel=1e-5)
    assert abs(got - wrong) > 1e-3 * abs(wrong)


def test_layer_style_cost_takes_a_numpy_style_activation(sess, rng):
    a_S, a_G = rng.normal(size=(2, 1, 3, 4, 5)).astype(np.float32)
    got = sess.run(costs.compute_layer_style_cost(a_S, tf.constant(a_G)))
    assert got == pytest.approx(np_layer_style(a_S, a_G), rel=1e-5)


@pytest.mark.parametrize("alpha, beta", [(10, 40), (1, 1e3)])
def test_total_cost(alpha, beta):
    assert costs.total_cost(2.5, -0.75, alpha, beta) == pytest.approx(alpha * 2.5 - beta * 0.75)


def test_total_cost_defaults_are_alpha_10_beta_40():
    assert costs.total_cost(1.0, 1.0) == 50.0


def test_style_cost_on_the_model_equals_numpy_over_the_style_layers(sess, small_config, rng):
    model = load_vgg_model(config=small_config)
    sess.run(tf1.global_variables_initializer())
    style = rng.uniform(-100, 100, (1, 48, 64, 3)).astype(np.float32)
    generated = rng.uniform(-100, 100, (1, 48, 64, 3)).astype(np.float32)
    sess.run(model["input"].assign(style))
    a_S = sess.run({name: model[name] for name, _ in STYLE_LAYERS})
    J_style = costs.compute_style_cost(model, STYLE_LAYERS)  # uses the default session
    sess.run(model["input"].assign(generated))
    got, a_G = sess.run([J_style, {name: model[name] for name, _ in STYLE_LAYERS}])
    expected = sum(w * np_layer_style(a_S[n], a_G[n]) for n, w in STYLE_LAYERS)
    assert expected > 0
    assert got == pytest.approx(expected, rel=1e-4)


def test_style_cost_takes_an_explicit_session(small_config, rng):
    graph = tf.Graph()
    with graph.as_default():
        model = load_vgg_model(config=small_config)
        with tf1.Session(graph=graph) as session:  # not the default session
            session.run(tf1.global_variables_initializer())
            J = costs.compute_style_cost(model, [("conv1_1", 1.0)], sess=session)
            assert session.run(J) == pytest.approx(0.0, abs=1e-6)  # style image == generated


def test_style_cost_without_a_session_says_what_to_do(small_config):
    with tf.Graph().as_default():
        model = load_vgg_model(config=small_config)
        with pytest.raises(SessionError, match="needs a session: pass sess="):
            costs.compute_style_cost(model, STYLE_LAYERS)
