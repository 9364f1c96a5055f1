"""Arithmetic of one optimisation step, counted from the layer shapes: the CPU's floor.

A 3x3 SAME convolution of stride 1 costs 2 * n_H * n_W * 9 * C_in * C_out floating-point
operations (one multiply and one add per weight per output pixel). One Adam step runs the
network forward up to the deepest layer the costs use, then back to the image: the gradient
with respect to each conv's input costs as much as the conv itself (the weights are constants,
so no weight gradients). Pools, ReLUs, bias adds, Gram matrices and Adam are left out: at
400x300 they add under 10% to the count. That is 174.2 GFLOP per Adam step at 400x300.
"""

from __future__ import annotations

from nst_utils.architecture import CONV_LAYERS, LAYER_NAMES, MODEL_KEYS, activation_shape
from nst_utils.errors import ConfigError

#: Multiply-adds per output value of a 3x3 kernel, per input channel.
KERNEL_TAPS = 9


def conv_flops(height: int, width: int) -> dict:
    """{conv layer name: FLOPs of its forward pass} for an input of height x width pixels."""
    flops = {}
    for layer in CONV_LAYERS:
        _, n_h, n_w, c_out = activation_shape(layer.name, height, width)
        c_in = layer.kernel_shape[2]
        flops[layer.name] = 2 * n_h * n_w * KERNEL_TAPS * c_in * c_out
    return flops


def deepest_layer(layer_names) -> str:
    """The model key, of those named, that comes last in the network (e.g. 'conv5_1')."""
    names = list(layer_names)
    unknown = [name for name in names if name not in LAYER_NAMES]
    if unknown or not names:
        raise ConfigError(
            f"unknown layer name(s) {unknown or names}; known: {', '.join(LAYER_NAMES)}"
        )
    return max(names, key=MODEL_KEYS.index)


def forward_flops(height: int, width: int, last_layer: str = "conv5_1") -> int:
    """FLOPs of the convolutions from conv1_1 up to and including `last_layer`'s block."""
    last = MODEL_KEYS.index(deepest_layer([last_layer]))
    return sum(f for name, f in conv_flops(height, width).items() if MODEL_KEYS.index(name) <= last)


def adam_step_flops(height: int, width: int, last_layer: str = "conv5_1") -> int:
    """FLOPs of one training step: forward to `last_layer` plus the gradient back to the image.

    At 400x300 to conv5_1: 174.2e9 (the facts' "about 173 GFLOP").
    """
    return 2 * forward_flops(height, width, last_layer)
