"""VGG-19 as a dict of TensorFlow graph nodes, built from MatConvNet's weights file.

The network's weights become constants; only the input image, a `tf.Variable`, is trained.
Each `convX_Y` entry is a ReLU output; VGG's max pools are replaced by average pools.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from .architecture import CONV_LAYERS
from .config import CONFIG, Config
from .errors import ConfigError
from .weights import VGGWeights, load_weights

tf1 = tf.compat.v1

POOLING = ("avg", "max")


def _conv2d_relu(prev_layer, kernel, bias, name):
    """ReLU(conv2d(prev_layer, kernel) + bias): 3x3, stride 1, SAME padding; keeps n_H, n_W."""
    with tf.name_scope(name):
        conv = tf.nn.conv2d(prev_layer, tf.constant(kernel, name="weights"),
                            strides=[1, 1, 1, 1], padding="SAME")
        return tf.nn.relu(tf.nn.bias_add(conv, tf.constant(bias, name="bias")), name="relu")


def _pool(prev_layer, pooling, name):
    """2x2 pool of stride 2, SAME padding: halves n_H and n_W, rounding up."""
    op = tf.nn.avg_pool2d if pooling == "avg" else tf.nn.max_pool2d
    return op(prev_layer, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="SAME", name=name)


def build_vgg_graph(weights: VGGWeights, height: int, width: int, pooling: str = "avg") -> dict:
    """The model dict, in the current default graph, for an input of shape (1, height, width, 3)."""
    if pooling not in POOLING:
        raise ConfigError(f"pooling must be one of {', '.join(POOLING)}, got {pooling!r}")
    for name, value in (("image height", height), ("image width", width)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ConfigError(f"{name} must be a positive whole number, got {value!r}")
    graph = {"input": tf1.Variable(np.zeros((1, height, width, 3)), dtype="float32", name="input")}
    prev = graph["input"]
    for layer in CONV_LAYERS:
        block, position = layer.name[4], layer.name[6]
        if position == "1" and block != "1":
            pool_name = f"avgpool{int(block) - 1}"
            prev = graph[pool_name] = _pool(prev, pooling, pool_name)
        kernel, bias = weights.conv[layer.name]
        prev = graph[layer.name] = _conv2d_relu(prev, kernel, bias, layer.name)
    graph["avgpool5"] = _pool(prev, pooling, "avgpool5")
    return graph


def load_vgg_model(path=None, config: Config | None = None, *, image_height=None,
                   image_width=None, pooling: str = "avg", weights: VGGWeights | None = None) -> dict:
    """Read the weights file at `path` and build the model dict at the configured image size.

    `path` defaults to `config.vgg_model`; the size to `config`'s, unless image_height or
    image_width is given. Pass `weights` (from `load_weights`) to build without reading a file.
    """
    config = config or CONFIG
    if weights is None:
        weights = load_weights(config.vgg_model if path is None else path,
                               cache=config.weights_cache, cache_dir=config.weights_cache_dir)
    return build_vgg_graph(weights,
                           config.image_height if image_height is None else image_height,
                           config.image_width if image_width is None else image_width,
                           pooling)
