"""Tiled evaluation: the same costs and image gradient as the whole image, to float rounding."""

import numpy as np
import pytest
import tensorflow as tf

from nst_utils import tiles
from nst_utils.errors import ConfigError
from nst_utils.settings import DEFAULTS
from nst_utils.training import assign_image
from nst_utils.transfer import build_transfer_costs
from nst_utils.vgg import build_vgg_graph
from nst_utils.weights import load_weights

tf1 = tf.compat.v1
SHALLOW = DEFAULTS.replace(
    content_layer="conv2_2", style_layers=(("conv1_1", 0.3), ("conv2_1", 0.3), ("conv3_1", 0.4))
)


@pytest.fixture(scope="module")
def weights(vgg_mat):
    return load_weights(vgg_mat)


def images(rng, height, width, n=3):
    return [rng.normal(0, 40, (1, height, width, 3)).astype(np.float32) for _ in range(n)]


def whole_image_reference(
    weights, content, styles, blend, image, content_layer, style_layers, alpha=10.0, beta=40.0
):
    """(J, J_content, J_style) and dJ/dimage from the real pipeline on the whole image."""
    _, height, width, _ = image.shape
    graph = tf.Graph()
    with graph.as_default(), tf1.Session(graph=graph) as sess:
        model = build_vgg_graph(weights, height, width)
        settings = DEFAULTS.replace(
            content_layer=content_layer,
            style_layers=tuple(style_layers),
            style_blend_weights=tuple(blend),
            alpha=alpha,
            beta=beta,
        )
        costs = build_transfer_costs(model, settings, len(styles))
        costs.targets.fill(sess, content, styles)
        gradient = tf.gradients(costs.total, model["input"])[0]
        assign_image(sess, model["input"], image)
        values = sess.run([costs.total, costs.content, costs.style, gradient])
    return values[:3], values[3]


def test_the_receptive_radius_grows_as_vgg_convolves_and_pools():
    # 3x3 convs reach one position further each side; each 2x2 pool one more, then steps double.
    assert [
        tiles.receptive_radius(n)
        for n in ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv4_1", "conv5_1")
    ] == [1, 2, 5, 7, 13, 37, 85]
    assert tiles.halo_for(["conv4_2", "conv5_1"]) == 96
    assert tiles.halo_for(["conv1_1"]) == 16
    assert [tiles.layer_stride(n) for n in ("conv1_2", "conv2_1", "conv4_4", "conv5_1")] == [
        1,
        2,
        8,
        16,
    ]
    with pytest.raises(ConfigError, match="unknown layer 'conv6_1'"):
        tiles.receptive_radius("conv6_1")


@pytest.mark.parametrize(
    "height, width, cell, halo",
    [(72, 80, 16, 16), (50, 37, 32, 16), (300, 400, 128, 96), (16, 16, 16, 0)],
)
def test_cells_cover_every_pixel_once_on_the_grid(height, width, cell, halo):
    plan = tiles.plan_tiles(height, width, cell, halo)
    covered = np.zeros((height, width), dtype=int)
    for t in plan:
        covered[t.top : t.bottom, t.left : t.right] += 1
        assert t.top % 16 == 0 and t.left % 16 == 0 and t.y0 % 16 == 0 and t.x0 % 16 == 0
        assert t.y0 == max(0, t.top - halo) and t.y1 == min(height, t.bottom + halo)
        assert t.x0 == max(0, t.left - halo) and t.x1 == min(width, t.right + halo)
    assert (covered == 1).all()
    assert tiles.plan_tiles(height, width, None, halo) == [
        tiles.Tile(0, 0, height, width, 0, 0, height, width)
    ]
    with pytest.raises(ConfigError, match="multiple of 16"):
        tiles.plan_tiles(height, width, 24, halo)


def test_tiles_give_the_whole_images_costs_and_gradient(weights, rng):
    height, width = 72, 80  # 5 x 5 cells of 16 pixels, halos of 16
    content, style_a, style_b = images(rng, height, width)
    image = content + rng.uniform(-20, 20, content.shape).astype(np.float32)
    layers = SHALLOW.style_layers
    expected, expected_gradient = whole_image_reference(
        weights, content, [style_a, style_b], (0.7, 0.3), image, "conv2_2", layers
    )
    tiled = tiles.TiledCosts(weights, SHALLOW, cell=16)
    try:
        assert tiled.halo == 16 and len(tiled.tiles(height, width)) == 25
        a_C = tiled.content_target(content)
        targets = [(0.7, tiled.style_grams(style_a)), (0.3, tiled.style_grams(style_b))]
        heard = []
        values, gradient = tiled.costs_and_gradient(
            image, a_C, targets, lambda k, n: heard.append((k, n))
        )
    finally:
        tiled.close()
    assert heard == [(k, 50) for k in range(1, 51)]  # 25 tiles, two passes
    np.testing.assert_allclose(values, expected, rtol=2e-5)
    scale = np.abs(expected_gradient).max()
    assert scale > 0
    np.testing.assert_allclose(gradient / scale, expected_gradient / scale, atol=2e-5)


def test_a_halo_short_of_the_receptive_field_gives_a_different_gradient(weights, rng):
    height, width = 72, 80
    content, style, _ = images(rng, height, width)
    image = content + rng.uniform(-20, 20, content.shape).astype(np.float32)
    tiled = tiles.TiledCosts(weights, SHALLOW, cell=16)
    try:
        a_C, targets = tiled.content_target(content), [(1.0, tiled.style_grams(style))]
        _, exact = tiled.costs_and_gradient(image, a_C, targets)
        tiled.halo = 0  # cells evaluated alone: their edges go wrong
        _, short = tiled.costs_and_gradient(image, a_C, targets)
    finally:
        tiled.close()
    assert np.abs(short - exact).max() > 1e-2 * np.abs(exact).max()


def test_tiles_match_the_whole_image_to_conv5_1_at_an_odd_size(weights, rng):
    height, width = 104, 136  # not multiples of 16: partial pools at the edges
    content, style, _ = images(rng, height, width)
    image = content + rng.uniform(-20, 20, content.shape).astype(np.float32)
    layers = [
        ("conv1_1", 0.2),
        ("conv2_1", 0.2),
        ("conv3_1", 0.2),
        ("conv4_1", 0.2),
        ("conv5_1", 0.2),
    ]
    expected, expected_gradient = whole_image_reference(
        weights, content, [style], (1.0,), image, "conv4_2", layers
    )
    settings = DEFAULTS.replace(content_layer="conv4_2", style_layers=tuple(layers))
    tiled = tiles.TiledCosts(weights, settings, cell=64)
    try:
        assert tiled.halo == 96 and len(tiled.tiles(height, width)) == 6
        values, gradient = tiled.costs_and_gradient(
            image, tiled.content_target(content), [(1.0, tiled.style_grams(style))]
        )
    finally:
        tiled.close()
    np.testing.assert_allclose(values, expected, rtol=5e-5)
    scale = np.abs(expected_gradient).max()
    np.testing.assert_allclose(gradient / scale, expected_gradient / scale, atol=5e-5)


def test_the_tiles_adam_is_tensorflows_adam_bit_for_bit_and_resumes_exactly(rng):
    start = rng.normal(0, 5, (1, 4, 5, 3)).astype(np.float32)
    target = rng.normal(0, 5, start.shape).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default(), tf1.Session(graph=graph) as sess:
        x = tf1.Variable(start)
        loss = tf.reduce_sum(tf.square(x - target) * tf.abs(x))
        step = tf1.train.AdamOptimizer(2.0).minimize(loss)
        gradient = tf.gradients(loss, x)[0]
        sess.run(tf1.global_variables_initializer())
        adam, image = tiles.Adam(2.0), start.copy()
        for k in range(6):
            image = adam.step(image, sess.run(gradient, {x: image}))
            sess.run(step)
            if k == 2:  # continued from its state, as a resumed big print is
                state = (adam.m.copy(), adam.v.copy(), adam.t)
                adam.close()
                adam = tiles.Adam(2.0)
                adam.m, adam.v, adam.t = state
        np.testing.assert_array_equal(image, sess.run(x))
        adam.close()


def test_an_image_that_is_one_tile_gives_the_whole_images_costs_in_one_pass(weights, rng):
    height, width = 72, 80
    content, style_a, style_b = images(rng, height, width)
    image = content + rng.uniform(-20, 20, content.shape).astype(np.float32)
    layers = SHALLOW.style_layers
    expected, expected_gradient = whole_image_reference(
        weights, content, [style_a, style_b], (0.7, 0.3), image, "conv2_2", layers
    )
    whole = tiles.TiledCosts(weights, SHALLOW, cell=None)
    runs = []
    run = whole.sess.run
    whole.sess.run = lambda *args, **kwargs: runs.append(args[0]) or run(*args, **kwargs)
    try:
        a_C = whole.content_target(content)
        targets = [(0.7, whole.style_grams(style_a)), (0.3, whole.style_grams(style_b))]
        del runs[:]
        values, gradient = whole.costs_and_gradient(image, a_C, targets)
    finally:
        whole.close()
    assert len(runs) == 1  # the forward pass and the gradient together
    np.testing.assert_allclose(values, expected, rtol=2e-5)
    scale = np.abs(expected_gradient).max()
    np.testing.assert_allclose(gradient / scale, expected_gradient / scale, atol=2e-5)


@pytest.mark.parametrize(
    "height, width, cell", [(2250, 3000, 1136), (1125, 1500, 384), (100, 90, 32), (50, 40, None)]
)
def test_the_largest_window_is_the_largest_tile_evaluated(height, width, cell):
    planned = tiles.plan_tiles(height, width, cell, 96)
    widths = [t.x1 - t.x0 for t in planned]
    heights = [t.y1 - t.y0 for t in planned]
    assert tiles.largest_window(height, width, cell, 96) == (max(widths), max(heights))
