"""The network's weights live in non-trainable variables, not in graph constants."""

import numpy as np
import tensorflow as tf

from nst_utils.vgg import WEIGHTS_COLLECTION, build_vgg_graph, initialize_weights
from nst_utils.weights import load_weights

tf1 = tf.compat.v1


def test_the_graph_holds_no_copy_of_the_weights_and_only_the_image_trains(vgg_mat):
    weights = load_weights(vgg_mat)
    graph = tf.Graph()
    with graph.as_default():
        model = build_vgg_graph(weights, 16, 16)
    constant_bytes = sum(
        op.get_attr("value").ByteSize() for op in graph.get_operations() if op.type == "Const"
    )
    assert constant_bytes < 100_000  # the kernels alone are 80 MB
    assert graph.get_collection(tf1.GraphKeys.TRAINABLE_VARIABLES) == [model["input"]]
    assert len(graph.get_collection(WEIGHTS_COLLECTION)) == 32
    with tf1.Session(graph=graph) as sess:
        initialize_weights(sess)
        variable = next(
            v for v in graph.get_collection(WEIGHTS_COLLECTION) if v.name == "conv3_2/weights:0"
        )
        kernel = sess.run(variable)
    np.testing.assert_array_equal(kernel, weights.conv["conv3_2"][0])


def test_inside_the_notebooks_session_the_model_runs_before_any_initializer(vgg_mat, rng):
    # The original assigned the content and read a_C before global_variables_initializer.
    weights = load_weights(vgg_mat)
    graph = tf.Graph()
    with graph.as_default(), tf1.Session(graph=graph).as_default() as sess:
        model = build_vgg_graph(weights, 16, 16)
        image = rng.normal(0, 30, (1, 16, 16, 3)).astype(np.float32)
        sess.run(model["input"].assign(image))
        first = sess.run(model["conv1_1"])
    kernel, bias = weights.conv["conv1_1"]
    padded = np.pad(image[0], ((1, 1), (1, 1), (0, 0)))
    windows = np.stack([padded[y : y + 16, x : x + 16] for y in range(3) for x in range(3)], axis=2)
    expected = np.maximum(np.einsum("hwkc,kcd->hwd", windows, kernel.reshape(9, 3, 64)) + bias, 0)
    np.testing.assert_allclose(first[0], expected, rtol=1e-4, atol=1e-3)
