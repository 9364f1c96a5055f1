"""Option values of the generate command: converters and cross-checks, each with a clear error."""

import argparse

import pytest

from nst_utils import options
from nst_utils.config import STYLE_LAYERS
from nst_utils.errors import ConfigError


def test_style_layers_parse_names_and_weights():
    assert options.style_layers_arg("conv1_1:0.2,conv2_1:0.5") == (
        ("conv1_1", 0.2),
        ("conv2_1", 0.5),
    )
    assert options.style_layers_arg(" conv3_1 : 1e-1 ") == (("conv3_1", 0.1),)
    # Bare names share the weight equally: the original's five layers at 0.2 each.
    five = options.style_layers_arg("conv1_1,conv2_1,conv3_1,conv4_1,conv5_1")
    assert five == STYLE_LAYERS
    # The default text round-trips to the original's layers.
    assert options.style_layers_arg(options.format_style_layers(STYLE_LAYERS)) == STYLE_LAYERS


@pytest.mark.parametrize(
    "text, says",
    [
        ("conv1_1=0.2", "unknown layer"),
        ("conv9_1:0.2", "unknown layer 'conv9_1'"),
        ("conv1_1:abc", "the weight of conv1_1 must be a number"),
        ("conv1_1:-1", "must be a number >= 0"),
        ("conv1_1:nan", "must be a number >= 0"),
        ("conv1_1:0.2,,conv2_1:0.2", "malformed style layers"),
        ("", "malformed style layers"),
        ("conv1_1:0.2,conv1_1:0.3", "listed twice"),
        ("conv1_1:0,conv2_1:0", "at least one weight must be > 0"),
    ],
)
def test_malformed_style_layers_are_refused_with_a_reason(text, says):
    with pytest.raises(argparse.ArgumentTypeError, match=says):
        options.style_layers_arg(text)


@pytest.mark.parametrize(
    "convert, good, bad",
    [
        (options.positive_int_arg, {"3": 3}, ["0", "-2", "1.5", "x"]),
        (options.non_negative_int_arg, {"0": 0, "7": 7}, ["-1", "two"]),
        (options.positive_float_arg, {"0.5": 0.5}, ["0", "-1", "inf", "nan", "x"]),
        (options.non_negative_float_arg, {"0": 0.0, "2.5": 2.5}, ["-0.1", "inf"]),
        (options.ratio_arg, {"0": 0.0, "1": 1.0, "0.6": 0.6}, ["1.01", "-0.2"]),
        (options.seed_arg, {"0": 0, "4294967295": 2**32 - 1}, ["-1", "4294967296", "s"]),
        (
            options.layer_arg,
            {"conv4_2": "conv4_2", "avgpool3": "avgpool3"},
            ["input", "conv4_5", "relu1_1"],
        ),
    ],
)
def test_number_and_layer_converters(convert, good, bad):
    for text, value in good.items():
        assert convert(text) == value
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError):
            convert(text)


def test_blend_weights_are_scaled_to_sum_to_one_and_must_match_the_styles():
    assert options.blend_weights(2, None) == (0.5, 0.5)
    assert options.blend_weights(3, [2, 1, 1]) == (0.5, 0.25, 0.25)
    assert options.blend_weights(2, [1, 0]) == (1.0, 0.0)
    with pytest.raises(ConfigError, match="2 value\\(s\\) for 1 style image"):
        options.blend_weights(1, [1, 1])
    with pytest.raises(ConfigError, match="must not all be 0"):
        options.blend_weights(2, [0, 0])


def test_model_size_follows_the_content_aspect_when_one_side_is_given():
    shape = (225, 300, 3)  # the Louvre: 300 wide, 225 high
    default = (400, 300)
    assert options.model_size(shape, None, None, default) == (400, 300)
    assert options.model_size(shape, None, None, (64, 48)) == (64, 48)
    assert options.model_size(shape, 64, None, default) == (64, 48)
    assert options.model_size(shape, None, 30, default) == (40, 30)
    assert options.model_size(shape, 50, 50, default) == (50, 50)
    assert options.model_size((1, 1000), None, 20, default) == (20000, 20)
    assert options.model_size((1000, 1), 10, None, default) == (10, 10000)
    assert options.model_size((1, 1000), 10, None, default) == (10, 1)  # never 0 pixels
