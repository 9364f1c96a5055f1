"""The graph builder's precision option: float32 equals numpy; bfloat16 stays close and opt-in."""

import warnings

import numpy as np
import pytest
import tensorflow as tf

from nst_utils import hardware
from nst_utils.architecture import LAYER_NAMES, MODEL_KEYS
from nst_utils.settings import DEFAULTS
from nst_utils.errors import ConfigError
from nst_utils.vgg import build_vgg_graph, load_vgg_model
from nst_utils.weights import load_weights

from numpy_vgg import numpy_avgpool, numpy_conv_relu

tf1 = tf.compat.v1

#: bfloat16 keeps 8 bits of mantissa (relative rounding 2^-9 per value); over 16 layers the
#: activations measured here stay within 1% of float32 (relative Frobenius norm). Allow 2%.
BFLOAT16_RTOL = 0.02
#: The gradient to the image travels back through every bfloat16 layer (and ReLU masks that
#: flip): measured about 5% from float32 for conv4_2. Adam divides by its running RMS, so the
#: step direction is what matters; the benchmark reports the image's PSNR after 20 steps.
BFLOAT16_GRADIENT_RTOL = 0.10


@pytest.fixture(scope="module")
def fixture_weights(vgg_mat):
    return load_weights(vgg_mat)


def relative_error(got, want):
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))


def run_model(weights, image, precision, keys=LAYER_NAMES):
    height, width = image.shape[1:3]
    with tf.Graph().as_default(), tf1.Session() as sess:
        model = build_vgg_graph(weights, height, width, precision=precision)
        sess.run(tf1.global_variables_initializer())
        sess.run(model["input"].assign(image))
        return sess.run({key: model[key] for key in keys})


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(7).uniform(-120, 140, size=(1, 12, 16, 3)).astype(np.float32)


def test_float32_graph_equals_numpy_at_conv1_1_and_down_to_conv3_1(fixture_weights, image):
    got = run_model(fixture_weights, image, "float32", ("conv1_1", "conv3_1"))
    conv = fixture_weights.conv
    x = numpy_conv_relu(image, *conv["conv1_1"])
    np.testing.assert_allclose(got["conv1_1"], x, rtol=1e-4, atol=1e-3)
    x = numpy_avgpool(numpy_conv_relu(x, *conv["conv1_2"]))
    x = numpy_avgpool(numpy_conv_relu(numpy_conv_relu(x, *conv["conv2_1"]), *conv["conv2_2"]))
    x = numpy_conv_relu(x, *conv["conv3_1"])  # computed from the image alone, all in numpy
    assert got["conv3_1"].shape == (1, 3, 4, 256) and (x > 0).mean() > 0.2
    assert relative_error(got["conv3_1"], x) < 1e-5


def test_bfloat16_outputs_are_float32_and_close_to_float32(fixture_weights):
    image = np.random.default_rng(3).uniform(-120, 140, size=(1, 48, 64, 3)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a CPU without native bfloat16
        low = run_model(fixture_weights, image, "bfloat16")
    full = run_model(fixture_weights, image, "float32")
    for key in LAYER_NAMES:
        assert low[key].dtype == np.float32 and low[key].shape == full[key].shape, key
        error = relative_error(low[key], full[key])
        assert 1e-5 < error < BFLOAT16_RTOL, (key, error)  # really rounded, yet close


def test_bfloat16_runs_the_convolutions_in_bfloat16_and_keeps_the_image_float32(
    sess, fixture_weights
):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model = build_vgg_graph(fixture_weights, 8, 8, precision="bfloat16")
    assert tuple(model) == MODEL_KEYS
    assert model["input"].dtype.base_dtype == tf.float32
    convs = [op for op in sess.graph.get_operations() if op.type == "Conv2D"]
    assert len(convs) == 16 and all(op.get_attr("T") == tf.bfloat16 for op in convs)
    assert all(model[key].dtype == tf.float32 for key in LAYER_NAMES)


def test_bfloat16_gradient_to_the_image_is_close_to_float32(fixture_weights):
    image = np.random.default_rng(5).uniform(-120, 140, size=(1, 24, 32, 3)).astype(np.float32)
    grads = {}
    for precision in ("float32", "bfloat16"):
        with tf.Graph().as_default(), tf1.Session() as sess, warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            model = build_vgg_graph(fixture_weights, 24, 32, precision=precision)
            cost = tf.reduce_sum(tf.square(model["conv4_2"])) + tf.reduce_sum(model["conv1_1"])
            grad = tf.gradients(cost, model["input"])[0]
            sess.run(tf1.global_variables_initializer())
            sess.run(model["input"].assign(image))
            grads[precision] = sess.run(grad)
    assert grads["bfloat16"].dtype == np.float32
    assert relative_error(grads["bfloat16"], grads["float32"]) < BFLOAT16_GRADIENT_RTOL


def test_unknown_precision_is_refused_before_any_file_is_read(sess, fixture_weights, tmp_path):
    with pytest.raises(ConfigError, match="precision must be one of float32, bfloat16, got 'fp16'"):
        build_vgg_graph(fixture_weights, 8, 8, precision="fp16")
    with pytest.raises(ConfigError, match="precision must be one of"):
        load_vgg_model(tmp_path / "missing.mat", precision="float16")
    with pytest.raises(ConfigError, match="precision must be one of"):
        DEFAULTS.replace(precision="half")


def test_precision_defaults_to_the_configuration(sess, small_config):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model = load_vgg_model(config=small_config.replace(precision="bfloat16"))
    assert any(
        op.type == "Conv2D" and op.get_attr("T") == tf.bfloat16
        for op in sess.graph.get_operations()
    )
    assert model["conv5_1"].dtype == tf.float32


def test_a_cpu_without_native_bfloat16_is_told_so(sess, fixture_weights, monkeypatch):
    monkeypatch.setattr(hardware, "bfloat16_support", lambda: None)
    with pytest.warns(RuntimeWarning, match="no native bfloat16"):
        build_vgg_graph(fixture_weights, 8, 8, precision="bfloat16")
    monkeypatch.setattr(hardware, "bfloat16_support", lambda: "amx_bf16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_vgg_graph(fixture_weights, 8, 8, precision="bfloat16")
