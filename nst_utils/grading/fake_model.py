"""A small stand-in for VGG-19 for grading compute_style_cost: the five style layers, no file.

compute_style_cost only reads model[layer] tensors and runs them in a session, so a tiny
network with the same layer names (convolutions and average pools on an 8x10 input) tests it
exactly as the real model would, in milliseconds. Its weights come from a seed, so the grader
and the sandbox build the same network.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

tf1 = tf.compat.v1

INPUT_SHAPE = (1, 8, 10, 3)
#: (layer name, output channels): each layer after the first follows a 2x2 average pool.
LAYERS = (("conv1_1", 4), ("conv2_1", 5), ("conv3_1", 6), ("conv4_1", 3), ("conv5_1", 7))


def model_weights(seed: int) -> dict:
    """{layer: (kernel (3, 3, in, out), bias (out,))} as float32, from `seed`."""
    rng = np.random.default_rng(seed)
    weights, channels = {}, INPUT_SHAPE[3]
    for name, out in LAYERS:
        kernel = rng.normal(0, np.sqrt(2.0 / (9 * channels)), (3, 3, channels, out))
        weights[name] = (kernel.astype(np.float32), rng.normal(0, 0.1, out).astype(np.float32))
        channels = out
    return weights


def build_model(seed: int) -> dict:
    """The model dict in the current default graph: 'input' (a variable) and the five layers."""
    model = {"input": tf1.Variable(np.zeros(INPUT_SHAPE, np.float32), name="input")}
    prev = model["input"]
    for i, (name, _) in enumerate(LAYERS):
        if i:
            prev = tf.nn.avg_pool2d(prev, ksize=2, strides=2, padding="SAME")
        kernel, bias = model_weights(seed)[name]
        conv = tf.nn.conv2d(prev, tf.constant(kernel), strides=1, padding="SAME")
        prev = model[name] = tf.nn.relu(conv + bias, name=name)
    return model


def random_image(seed: int) -> np.ndarray:
    """An input image for the model, (1, 8, 10, 3) float32 (mean-subtracted pixel scale)."""
    return np.random.default_rng(seed).normal(0, 60, INPUT_SHAPE).astype(np.float32)
