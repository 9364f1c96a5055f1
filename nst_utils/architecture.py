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


#: VGG-19's five blocks: (number of 3x3 convolutions, channels out), each closed by a pool.
BLOCKS = ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))


def _layers():
    """(FILE_LAYERS, CONV_LAYERS) from BLOCKS: each conv followed by its ReLU, each block by a
    pool, then the classifier the file also holds."""
    file_layers, conv_layers, channels = [], [], 3
    for block, (convs, out_channels) in enumerate(BLOCKS, 1):
        for i in range(1, convs + 1):
            name = f"conv{block}_{i}"
            conv_layers.append(ConvLayer(name, len(file_layers), (3, 3, channels, out_channels)))
            file_layers += [(name, "conv"), (f"relu{block}_{i}", "relu")]
            channels = out_channels
        file_layers.append((f"pool{block}", "pool"))
    for n in (6, 7):
        file_layers += [(f"fc{n}", "conv"), (f"relu{n}", "relu")]
    file_layers += [("fc8", "conv"), ("prob", "softmax")]
    return tuple(file_layers), tuple(conv_layers)


#: Every layer of the file in order, as (name, MatConvNet type): 43 entries; and the 16
#: convolutions of the five blocks.
FILE_LAYERS, CONV_LAYERS = _layers()
CONV_BY_NAME = {layer.name: layer for layer in CONV_LAYERS}

#: Kernel shapes of the fully connected layers, which the file stores as convolutions.
FC_SHAPES = {"fc6": (7, 7, 512, 4096), "fc7": (1, 1, 4096, 4096), "fc8": (1, 1, 4096, 1000)}

#: The model dict's keys in build order: the input, each conv's ReLU output, and the
#: average pools that replace VGG's max pools.
MODEL_KEYS = ("input",) + tuple(
    name.replace("pool", "avgpool")
    for name, kind in FILE_LAYERS
    if kind == "pool" or name.startswith("conv")
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
    return (1, height, width, BLOCKS[block - 1][1])
