"""The model dict: keys, shapes from the facts' table, and layers equal to a numpy computation."""

import numpy as np
import pytest
import tensorflow as tf

from nst_utils import architecture
from nst_utils.errors import ConfigError
from nst_utils.vgg import build_vgg_graph, load_vgg_model
from nst_utils.weights import load_weights

from numpy_vgg import numpy_avgpool, numpy_conv_relu

# Shapes at 400x300 as the facts' section 2 lists them.
FACTS_SHAPES_400x300 = {
    "conv1": (1, 300, 400, 64),
    "avgpool1": (1, 150, 200, 64),
    "conv2": (1, 150, 200, 128),
    "avgpool2": (1, 75, 100, 128),
    "conv3": (1, 75, 100, 256),
    "avgpool3": (1, 38, 50, 256),
    "conv4": (1, 38, 50, 512),
    "avgpool4": (1, 19, 25, 512),
    "conv5": (1, 19, 25, 512),
    "avgpool5": (1, 10, 13, 512),
}


def facts_shape(key):
    return FACTS_SHAPES_400x300[key if key.startswith("avgpool") else key[:5]]


@pytest.fixture(scope="module")
def fixture_weights(vgg_mat):
    return load_weights(vgg_mat)


def test_model_at_the_original_size_matches_the_facts_table(sess, vgg_mat):
    model = load_vgg_model(vgg_mat)
    assert tuple(model) == architecture.MODEL_KEYS
    assert isinstance(model["input"], tf.Variable)
    assert model["input"].dtype.base_dtype == tf.float32
    assert tuple(model["input"].shape) == (1, 300, 400, 3)
    for key in architecture.LAYER_NAMES:
        assert tuple(model[key].shape) == facts_shape(key), key
        assert architecture.activation_shape(key, 300, 400) == facts_shape(key)


def test_model_at_the_configured_size(sess, small_config):
    model = load_vgg_model(config=small_config)
    for key in architecture.MODEL_KEYS:
        assert tuple(model[key].shape) == architecture.activation_shape(key, 48, 64), key
    sess.run(tf.compat.v1.global_variables_initializer())
    assert np.all(sess.run(model["input"]) == 0)  # initialised to zeros, as the original


def test_first_layers_equal_an_independent_numpy_computation(sess, fixture_weights, rng):
    model = build_vgg_graph(fixture_weights, 10, 14)
    image = rng.uniform(-120, 140, size=(1, 10, 14, 3)).astype(np.float32)
    sess.run(tf.compat.v1.global_variables_initializer())
    sess.run(model["input"].assign(image))
    got = sess.run({k: model[k] for k in ("conv1_1", "conv1_2", "avgpool1", "conv2_1")})
    c11 = numpy_conv_relu(image, *fixture_weights.conv["conv1_1"])
    np.testing.assert_allclose(got["conv1_1"], c11, rtol=1e-4, atol=1e-3)
    c12 = numpy_conv_relu(got["conv1_1"], *fixture_weights.conv["conv1_2"])
    np.testing.assert_allclose(got["conv1_2"], c12, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(got["avgpool1"], numpy_avgpool(got["conv1_2"]), rtol=1e-5, atol=1e-4)
    c21 = numpy_conv_relu(got["avgpool1"], *fixture_weights.conv["conv2_1"])
    np.testing.assert_allclose(got["conv2_1"], c21, rtol=1e-4, atol=1e-3)
    assert (c11 > 0).mean() > 0.2  # the check compares real activations, not zeros


def test_same_padding_average_pool_rounds_up_and_averages_the_valid_cells(sess, fixture_weights):
    model = build_vgg_graph(fixture_weights, 3, 5)
    assert tuple(model["avgpool1"].shape) == (1, 2, 3, 64)
    sess.run(tf.compat.v1.global_variables_initializer())
    c12, pool = sess.run([model["conv1_2"], model["avgpool1"]])
    np.testing.assert_allclose(pool[0, 1, 2], c12[0, 2, 4], rtol=1e-6)  # a lone corner cell
    np.testing.assert_allclose(pool[0, 0, 0], c12[0, :2, :2].mean(axis=(0, 1)), rtol=1e-5)


def test_max_pooling_is_available(sess, fixture_weights):
    model = build_vgg_graph(fixture_weights, 4, 4, pooling="max")
    sess.run(tf.compat.v1.global_variables_initializer())
    c12, pool = sess.run([model["conv1_2"], model["avgpool1"]])
    np.testing.assert_allclose(pool, c12.reshape(1, 2, 2, 2, 2, 64).max(axis=(2, 4)), rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"pooling": "median"}, "pooling must be one of"),
        ({"image_height": 0}, "image_height must be a positive whole number"),
        ({"image_width": 12.5}, "image_width must be a positive whole number"),
    ],
)
def test_bad_model_settings_are_refused(sess, fixture_weights, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        load_vgg_model(weights=fixture_weights, **kwargs)


def test_the_layer_table_is_the_files_layout_of_the_facts():
    """The table derived from VGG-19's blocks puts each layer where the weights file has it."""
    names = [name for name, _ in architecture.FILE_LAYERS]
    assert len(names) == 43
    conv_indices = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
    assert [layer.index for layer in architecture.CONV_LAYERS] == conv_indices
    assert [names[i] for i in conv_indices] == [layer.name for layer in architecture.CONV_LAYERS]
    assert [names.index(f"pool{b}") for b in range(1, 6)] == [4, 9, 18, 27, 36]
    assert names[37:] == ["fc6", "relu6", "fc7", "relu7", "fc8", "prob"]
    assert dict(architecture.FILE_LAYERS)["fc6"] == "conv"
    assert all(dict(architecture.FILE_LAYERS)[n] == "relu" for n in names if n.startswith("relu"))
    shapes = {layer.name: layer.kernel_shape for layer in architecture.CONV_LAYERS}
    assert shapes["conv1_1"] == (3, 3, 3, 64) and shapes["conv2_1"] == (3, 3, 64, 128)
    assert shapes["conv3_4"] == (3, 3, 256, 256) and shapes["conv4_1"] == (3, 3, 256, 512)
    assert shapes["conv5_4"] == (3, 3, 512, 512)
