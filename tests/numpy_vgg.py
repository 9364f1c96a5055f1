"""Independent numpy versions of VGG's layers, for checking the TensorFlow graph against."""

import numpy as np


def numpy_conv_relu(x, kernel, bias):
    """3x3 cross-correlation, stride 1, zero SAME padding, plus bias, then ReLU, in float64."""
    _, h, w, _ = x.shape
    padded = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros((1, h, w, kernel.shape[3]))
    for dy in range(3):
        for dx in range(3):
            out += padded[:, dy : dy + h, dx : dx + w, :] @ kernel[dy, dx].astype(np.float64)
    return np.maximum(out + bias, 0.0)


def numpy_avgpool(x):
    """2x2 average pool of stride 2, for even sizes."""
    _, h, w, c = x.shape
    return x.reshape(1, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))
