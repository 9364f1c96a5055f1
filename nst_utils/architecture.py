"""VGG-19 as MatConvNet's weights file lays it out: the 43 layers, their names and shapes.

One table serves the loader (which layers to read and check), the model builder (what to
stack), the synthetic-weights writer (what to write) and the weights doctor.
"""

from __future__ import annotations

from typing import NamedTuple


class ConvLayer(NamedTuple):
    """One convolution layer: its name, index in the file's `layers` array and kernel shape."""

    name: str
    index: int
    kernel_shape: tuple  # (3, 3, in_channels, out_channels)


CONV_LAYERS = (
    ConvLayer("conv1_1", 0, (3, 3, 3, 64)),
    ConvLayer("conv1_2", 2, (3, 3, 64, 64)),
    ConvLayer("conv2_1", 5, (3, 3, 64, 128)),
    ConvLayer("conv2_2", 7, (3, 3, 128, 128)),
    ConvLayer("conv3_1", 10, (3, 3, 128, 256)),
    ConvLayer("conv3_2", 12, (3, 3, 256, 256)),
    ConvLayer("conv3_3", 14, (3, 3, 256, 256)),
    ConvLayer("conv3_4", 16, (3, 3, 256, 256)),
    ConvLayer("conv4_1", 19, (3, 3, 256, 512)),
    ConvLayer("conv4_2", 21, (3, 3, 512, 512)),
    ConvLayer("conv4_3", 23, (3, 3, 512, 512)),
    ConvLayer("conv4_4", 25, (3, 3, 512, 512)),
    ConvLayer("conv5_1", 28, (3, 3, 512, 512)),
    ConvLayer("conv5_2", 30, (3, 3, 512, 512)),
    ConvLayer("conv5_3", 32, (3, 3, 512, 512)),
    ConvLayer("conv5_4", 34, (3, 3, 512, 512)),
)
CONV_BY_NAME = {layer.name: layer for layer in CONV_LAYERS}

#: Every layer of the file in order, as (name, MatConvNet type): 43 entries.
FILE_LAYERS = (
    ("conv1_1", "conv"),
    ("relu1_1", "relu"),
    ("conv1_2", "conv"),
    ("relu1_2", "relu"),
    ("pool1", "pool"),
    ("conv2_1", "conv"),
    ("relu2_1", "relu"),
    ("conv2_2", "conv"),
    ("relu2_2", "relu"),
    ("pool2", "pool"),
    ("conv3_1", "conv"),
    ("relu3_1", "relu"),
    ("conv3_2", "conv"),
    ("relu3_2", "relu"),
    ("conv3_3", "conv"),
    ("relu3_3", "relu"),
    ("conv3_4", "conv"),
    ("relu3_4", "relu"),
    ("pool3", "pool"),
    ("conv4_1", "conv"),
    ("relu4_1", "relu"),
    ("conv4_2", "conv"),
    ("relu4_2", "relu"),
    ("conv4_3", "conv"),
    ("relu4_3", "relu"),
    ("conv4_4", "conv"),
    ("relu4_4", "relu"),
    ("pool4", "pool"),
    ("conv5_1", "conv"),
    ("relu5_1", "relu"),
    ("conv5_2", "conv"),
    ("relu5_2", "relu"),
    ("conv5_3", "conv"),
    ("relu5_3", "relu"),
    ("conv5_4", "conv"),
    ("relu5_4", "relu"),
    ("pool5", "pool"),
    ("fc6", "conv"),
    ("relu6", "relu"),
    ("fc7", "conv"),
    ("relu7", "relu"),
    ("fc8", "conv"),
    ("prob", "softmax"),
)

#: Kernel shapes of the fully connected layers, which the file stores as convolutions.
FC_SHAPES = {"fc6": (7, 7, 512, 4096), "fc7": (1, 1, 4096, 4096), "fc8": (1, 1, 4096, 1000)}

#: The model dict's keys in build order: the input, each conv's ReLU output, and the
#: average pools that replace VGG's max pools.
MODEL_KEYS = (
    "input",
    "conv1_1",
    "conv1_2",
    "avgpool1",
    "conv2_1",
    "conv2_2",
    "avgpool2",
    "conv3_1",
    "conv3_2",
    "conv3_3",
    "conv3_4",
    "avgpool3",
    "conv4_1",
    "conv4_2",
    "conv4_3",
    "conv4_4",
    "avgpool4",
    "conv5_1",
    "conv5_2",
    "conv5_3",
    "conv5_4",
    "avgpool5",
)

#: Names a caller may pick as content or style layers: every node but the input.
LAYER_NAMES = MODEL_KEYS[1:]


def activation_shape(name: str, height: int, width: int) -> tuple:
    """Shape (1, n_H, n_W, n_C) of a model node for an input of `height` x `width` pixels.

    Each SAME-padded 2x2 pool of stride 2 rounds the size up: 300 -> 150 -> 75 -> 38 -> 19 -> 10.
    """
    if name == "input":
        return (1, height, width, 3)
    if name not in LAYER_NAMES:
        raise KeyError(name)
    block = int(name[-3] if name.startswith("conv") else name[-1])
    pools = block - 1 if name.startswith("conv") else block
    for _ in range(pools):
        height, width = -(-height // 2), -(-width // 2)
    channels = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}[block]
    return (1, height, width, channels)
