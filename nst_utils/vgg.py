"""VGG-19 as a dict of TensorFlow graph nodes, built from MatConvNet's weights file.

The network's weights become non-trainable variables that a Python function fills when they are
initialised, so the graph itself holds no copy of the 80 MB of weights (TensorFlow copied
constants into every serialised graph, session and optimised graph, about 1 GB in all). Only
the input image, a `tf.Variable`, is trained.
Each `convX_Y` entry is a ReLU output; VGG's max pools are replaced by average pools.

precision='bfloat16' (opt-in) runs the convolutions, bias adds, ReLUs and pools in bfloat16,
which CPUs with AMX or AVX512_BF16 multiply several times faster; the input variable stays
float32 and every entry of the model dict is cast back to float32, so the costs built on it
are computed in float32 as before.
"""

from __future__ import annotations

import warnings

import numpy as np
import tensorflow as tf

from .architecture import CONV_LAYERS
from .config import CONFIG
from .errors import ConfigError, EmulatedBfloat16Warning
from .settings import DEFAULTS, Settings
from .weights import VGGWeights, load_weights

tf1 = tf.compat.v1

#: The graph collection that holds the network's weight variables (see `initialize_weights`).
WEIGHTS_COLLECTION = "nst_vgg_weights"
DTYPES = {"float32": tf.float32, "bfloat16": tf.bfloat16}


def _weight(value: np.ndarray, dtype, name):
    """A non-trainable variable of `dtype` holding `value`, filled by its initializer.

    The initial value comes from a Python function that returns the numpy array, not from a
    constant: the graph stays small however large the weights.
    """
    value = np.asarray(value, dtype=np.float32)
    fill = tf.numpy_function(lambda: value, [], tf.float32, stateful=True, name=f"{name}_value")
    fill.set_shape(value.shape)
    if dtype != tf.float32:
        fill = tf.cast(fill, dtype)
    variable = tf1.Variable(fill, trainable=False, name=name, dtype=dtype)
    tf1.add_to_collection(WEIGHTS_COLLECTION, variable)
    return variable


def initialize_weights(sess) -> None:
    """Fill the weight variables of every network in `sess`'s graph (global_variables_initializer
    does it too, with the input image). build_vgg_graph does it itself inside a default session;
    nst_utils.transfer's Targets.fill needs them filled, and does not fill them."""
    sess.run([v.initializer for v in sess.graph.get_collection(WEIGHTS_COLLECTION)])


def _conv2d_relu(prev_layer, kernel, bias, name, dtype=tf.float32):
    """ReLU(conv2d(prev_layer, kernel) + bias): 3x3, stride 1, SAME padding; keeps n_H, n_W.

    kernel and bias become non-trainable variables of `dtype`, the dtype of prev_layer.
    """
    with tf.name_scope(name):
        conv = tf.nn.conv2d(
            prev_layer, _weight(kernel, dtype, "weights"), strides=[1, 1, 1, 1], padding="SAME"
        )
        return tf.nn.relu(tf.nn.bias_add(conv, _weight(bias, dtype, "bias")), name="relu")


def _pool(prev_layer, pooling, name):
    """2x2 pool of stride 2, SAME padding: halves n_H and n_W, rounding up."""
    op = tf.nn.avg_pool2d if pooling == "avg" else tf.nn.max_pool2d
    return op(prev_layer, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="SAME", name=name)


def _warn_if_bfloat16_is_emulated():
    from .hardware import NO_NATIVE_BFLOAT16, bfloat16_support

    if bfloat16_support() is None:
        warnings.warn(
            f"{NO_NATIVE_BFLOAT16}: precision='bfloat16' will be emulated, about 10x slower "
            "than float32; use float32",
            EmulatedBfloat16Warning,
            stacklevel=3,
        )


def vgg_layers(
    image, weights: VGGWeights, pooling="avg", precision="float32", until=None, final_pool=False
) -> dict:
    """VGG-19's layers on `image` (a float32 (1, H, W, 3) tensor of any H, W): {'conv1_1': ...,
    'avgpool1': ..., ...} as float32 tensors, up to the conv layer `until` (None: every one, and
    'avgpool5' with final_pool). precision: the dtype the layers compute in."""
    dtype = DTYPES[precision]

    def as_float32(tensor, name):
        return (
            tensor if dtype == tf.float32 else tf.cast(tensor, tf.float32, name=f"{name}_float32")
        )

    layers = {}
    prev = image if dtype == tf.float32 else tf.cast(image, dtype, name="input_cast")
    for layer in CONV_LAYERS:
        block, position = layer.name[4], layer.name[6]
        if position == "1" and block != "1":
            pool_name = f"avgpool{int(block) - 1}"
            prev = _pool(prev, pooling, pool_name)
            layers[pool_name] = as_float32(prev, pool_name)
        kernel, bias = weights.conv[layer.name]
        prev = _conv2d_relu(prev, kernel, bias, layer.name, dtype)
        layers[layer.name] = as_float32(prev, layer.name)
        if layer.name == until:
            return layers
    if final_pool:
        layers["avgpool5"] = as_float32(_pool(prev, pooling, "avgpool5"), "avgpool5")
    return layers


def build_vgg_graph(
    weights: VGGWeights, height: int, width: int, pooling: str = "avg", precision: str = "float32"
) -> dict:
    """The model dict, in the current default graph, for an input of shape (1, height, width, 3).

    precision: 'float32' (the original) or 'bfloat16' convolutions; the input and every entry
    of the dict are float32 either way.
    """
    if height is None or width is None:
        raise ConfigError(f"the model needs its size, got width {width!r} and height {height!r}")
    # Checked as a run's settings are, with the same one-line errors.
    DEFAULTS.replace(image_height=height, image_width=width, pooling=pooling, precision=precision)
    dtype = DTYPES[precision]
    if dtype != tf.float32:
        _warn_if_bfloat16_is_emulated()

    # Zeros made by an op, not a (1, H, W, 3) constant that every graph optimisation would copy.
    graph = {"input": tf1.Variable(tf.zeros((1, height, width, 3)), dtype="float32", name="input")}
    graph.update(vgg_layers(graph["input"], weights, pooling, precision, final_pool=True))
    # The original ran the model (a_C, a_S) before any initializer: with a session on this graph
    # already open (the notebook's InteractiveSession), the weights are filled now.
    sess = tf1.get_default_session()
    if sess is not None and sess.graph is tf1.get_default_graph():
        initialize_weights(sess)
    return graph


def load_vgg_model(
    path=None,
    config: Settings | None = None,
    *,
    image_height=None,
    image_width=None,
    pooling: str = "avg",
    weights: VGGWeights | None = None,
    precision: str | None = None,
) -> dict:
    """Read the weights file at `path` and build the model dict at the configured image size.

    Without `config`, the path and size are the original CONFIG's as they are when called
    (CONFIG.VGG_MODEL, CONFIG.IMAGE_HEIGHT x CONFIG.IMAGE_WIDTH); with one, `config`'s.
    image_height and image_width override either. Pass `weights` (from `load_weights`) to build
    without reading a file. precision ('float32' or 'bfloat16') defaults to `config.precision`.
    """
    if config is None:
        config = DEFAULTS.replace(
            vgg_model=CONFIG.VGG_MODEL,
            image_width=CONFIG.IMAGE_WIDTH,
            image_height=CONFIG.IMAGE_HEIGHT,
        )
    config = config if precision is None else config.replace(precision=precision)
    if weights is None:
        weights = load_weights(
            config.vgg_model if path is None else path,
            cache=config.weights_cache,
            cache_dir=config.weights_cache_dir,
        )
    return build_vgg_graph(
        weights,
        config.image_height if image_height is None else image_height,
        config.image_width if image_width is None else image_width,
        pooling,
        config.precision,
    )
