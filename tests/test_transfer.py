"""A run's costs on the model: content, blended styles and total variation, against numpy."""

import numpy as np
import pytest
import tensorflow as tf

from nst_utils.config import PROJECT_ROOT
from nst_utils.errors import ConfigError
from nst_utils.images import load_image, reshape_and_normalize_image
from nst_utils.settings import DEFAULTS
from nst_utils.training import assign_image
from nst_utils.transfer import build_transfer_costs, total_variation_cost
from nst_utils.vgg import load_vgg_model

tf1 = tf.compat.v1
LAYERS = (("conv1_1", 0.5), ("conv3_1", 0.25))


def network_image(name, config):
    return reshape_and_normalize_image(load_image(PROJECT_ROOT / "images" / name, config=config))


def numpy_tv(image):
    image = np.asarray(image, dtype=np.float64)
    return np.square(np.diff(image, axis=1)).sum() + np.square(np.diff(image, axis=2)).sum()


def test_total_variation_matches_numpy(sess, rng):
    image = rng.normal(0, 30, (1, 5, 7, 3)).astype(np.float32)
    value = sess.run(total_variation_cost(tf.constant(image)))
    assert value == pytest.approx(numpy_tv(image), rel=1e-5)


def test_blended_styles_are_the_weighted_sum_and_tv_enters_the_total(sess, small_config, rng):
    model = load_vgg_model(config=small_config)
    content = network_image("louvre.jpg", small_config)
    style_a = network_image("sandstone.jpg", small_config)
    style_b = rng.uniform(-100, 100, content.shape)

    def costs_at(image, styles, blend, **kw):
        settings = DEFAULTS.replace(
            style_blend_weights=blend, content_layer="conv4_2", style_layers=LAYERS, **kw
        )
        c = build_transfer_costs(model, settings, len(styles))
        c.targets.fill(sess, content, styles)
        assign_image(sess, model["input"], image)
        return sess.run([c.total, c.content, c.style, c.tv])

    start = content + rng.uniform(-20, 20, content.shape)
    _, content_cost, s_a, _ = costs_at(start, [style_a], (1.0,))
    _, _, s_b, _ = costs_at(start, [style_b], (1.0,))
    total, c, s_ab, tv = costs_at(
        start, [style_a, style_b], (0.75, 0.25), alpha=3.0, beta=7.0, tv_weight=0.5
    )
    assert c == content_cost > 0
    assert s_ab == pytest.approx(0.75 * s_a + 0.25 * s_b, rel=1e-5) and s_a != pytest.approx(s_b)
    assert tv == pytest.approx(numpy_tv(start), rel=1e-5)
    assert total == pytest.approx(3.0 * c + 7.0 * s_ab + 0.5 * tv, rel=1e-5)
    # Weights 1, 0 are exactly the first style alone; tv_weight 0 leaves the original total.
    total_10, _, s_10, _ = costs_at(start, [style_a, style_b], (1.0, 0.0))
    assert s_10 == s_a and total_10 == pytest.approx(10 * content_cost + 40 * s_a, rel=1e-6)
    # The content image itself has no content cost.
    assert costs_at(content, [style_a], (1.0,))[1] == 0.0


def test_the_targets_match_numpy_and_survive_the_original_initializer(sess, small_config, rng):
    model = load_vgg_model(config=small_config)
    content = network_image("louvre.jpg", small_config)
    style = network_image("sandstone.jpg", small_config)
    settings = DEFAULTS.replace(content_layer="conv4_2", style_layers=LAYERS)
    c = build_transfer_costs(model, settings)
    c.targets.fill(sess, content, [style])
    start = content + rng.uniform(-20, 20, content.shape)

    def activations(image, layer):
        assign_image(sess, model["input"], image)
        return sess.run(model[layer]).astype(np.float64)

    def gram(a):
        unrolled = a.reshape(-1, a.shape[-1])  # (n_H n_W, n_C): G = A^T A
        return unrolled.T @ unrolled

    a_C, a_G = activations(content, "conv4_2"), activations(start, "conv4_2")
    expected_content = np.square(a_C - a_G).sum() / (4 * a_G.size)
    expected_style = 0.0
    for layer, coeff in LAYERS:
        a_S, a_G = activations(style, layer), activations(start, layer)
        _, n_H, n_W, n_C = a_G.shape
        expected_style += (
            coeff * np.square(gram(a_S) - gram(a_G)).sum() / (4 * n_C**2 * (n_H * n_W) ** 2)
        )
    assign_image(sess, model["input"], start)
    values = sess.run([c.content, c.style])
    assert values == pytest.approx([expected_content, expected_style], rel=1e-4)
    # The original's model_nn runs global_variables_initializer: the targets are not reset.
    sess.run(tf1.global_variables_initializer())
    assign_image(sess, model["input"], start)
    assert sess.run([c.content, c.style]) == pytest.approx(values, rel=1e-6)
    # They are variables: the graph holds no copy of a_C or of the Gram matrices.
    largest = max(
        len(op.get_attr("value").tensor_content)
        for op in sess.graph.get_operations()
        if op.type == "Const"
    )
    assert largest < a_C.size * 4


def test_targets_refuse_a_style_list_of_another_length_than_built_for(sess, small_config):
    model = load_vgg_model(config=small_config)
    content = network_image("louvre.jpg", small_config)
    style_a = network_image("sandstone.jpg", small_config)
    settings = DEFAULTS.replace(content_layer="conv4_2", style_layers=LAYERS)
    one = build_transfer_costs(model, settings)  # built for one style image
    # Two images given: the second was silently left out of J_style.
    with pytest.raises(ConfigError):
        one.targets.fill(sess, content, [style_a, content])
    with pytest.raises(ConfigError):
        one.targets.fill(sess, content, [])
    # Nothing was loaded: the targets are still uninitialised, not half filled.
    with pytest.raises(tf.errors.FailedPreconditionError):
        sess.run(one.targets.a_C)
    one.targets.fill(sess, content, [style_a])
    assign_image(sess, model["input"], content)
    assert sess.run(one.content) == 0.0
