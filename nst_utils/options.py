"""Parsing and checking the generate command's option values, each with a one-line error.

The `*_arg` functions are argparse `type=` converters (they raise ArgumentTypeError, which the
command line prints as one line); the others check values that depend on each other and raise
ConfigError.
"""

from __future__ import annotations

import argparse
import math

from .architecture import LAYER_NAMES
from .errors import ConfigError


def _number_arg(kind, what, accept):
    """An argparse type: text -> kind, refused with "expected <what>" unless accept(value)."""

    def parse(text):
        try:
            value = kind(text)
        except (TypeError, ValueError):
            value = None
        if value is None or (kind is float and not math.isfinite(value)) or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


positive_int_arg = _number_arg(int, "a positive whole number", lambda v: v > 0)
non_negative_int_arg = _number_arg(int, "a whole number >= 0", lambda v: v >= 0)
positive_float_arg = _number_arg(float, "a positive number", lambda v: v > 0)
non_negative_float_arg = _number_arg(float, "a number >= 0", lambda v: v >= 0)
ratio_arg = _number_arg(float, "a number between 0 and 1", lambda v: 0.0 <= v <= 1.0)


seed_arg = _number_arg(int, "a whole number between 0 and 2**32 - 1", lambda v: 0 <= v < 2**32)


def layer_arg(text) -> str:
    """A model layer name such as conv4_2 (any conv or avgpool node)."""
    name = str(text).strip()
    if name not in LAYER_NAMES:
        raise argparse.ArgumentTypeError(
            f"unknown layer {text!r}; choose one of {', '.join(LAYER_NAMES)}"
        )
    return name


def style_layers_arg(text) -> tuple:
    """'conv1_1:0.2,conv2_1:0.2' -> (('conv1_1', 0.2), ('conv2_1', 0.2)).

    A name without ':WEIGHT' gets weight 1/n for a list of n layers, so the original's five
    layers can be written 'conv1_1,conv2_1,conv3_1,conv4_1,conv5_1'.
    """
    items = [item.strip() for item in str(text).split(",")]
    if not items or any(not item for item in items):
        raise argparse.ArgumentTypeError(
            f"malformed style layers {text!r}: expected "
            f"LAYER:WEIGHT,... such as conv1_1:0.2,conv2_1:0.2"
        )
    layers = []
    for item in items:
        name, sep, weight_text = item.partition(":")
        name = layer_arg(name)
        if sep:
            try:
                weight = float(weight_text)
            except ValueError:
                weight = float("nan")
            if not math.isfinite(weight) or weight < 0:
                raise argparse.ArgumentTypeError(
                    f"malformed style layers {text!r}: the weight of {name} must be a number "
                    f">= 0, got {weight_text!r}"
                )
        else:
            weight = 1.0 / len(items)
        if name in dict(layers):
            raise argparse.ArgumentTypeError(f"style layer {name} is listed twice in {text!r}")
        layers.append((name, weight))
    if sum(w for _, w in layers) <= 0:
        raise argparse.ArgumentTypeError(f"style layers {text!r}: at least one weight must be > 0")
    return tuple(layers)


def format_style_layers(layers) -> str:
    """The --style-layers text for ((name, weight), ...)."""
    return ",".join(f"{name}:{weight:g}" for name, weight in layers)


def blend_weights(count: int, weights) -> tuple:
    """One weight for each of `count` style images, scaled to sum to 1; equal weights when none
    are given."""
    if not weights:
        return tuple(1.0 / count for _ in range(count))
    if len(weights) != count:
        raise ConfigError(
            f"--style-blend-weights has {len(weights)} value(s) for {count} "
            f"style image(s); give one weight per --style image"
        )
    total = float(sum(weights))
    if total <= 0:
        raise ConfigError("--style-blend-weights must not all be 0")
    return tuple(float(w) / total for w in weights)


def model_size(content_shape, width, height, default) -> tuple:
    """(width, height) of the model: as given; one of them with the content's aspect; else default.

    content_shape is the content image's (H, W, ...) shape.
    """
    content_height, content_width = content_shape[:2]
    if width is None and height is None:
        return tuple(default)
    if height is None:
        height = max(1, round(width * content_height / content_width))
    elif width is None:
        width = max(1, round(height * content_width / content_height))
    return int(width), int(height)
