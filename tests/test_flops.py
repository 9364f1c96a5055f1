"""The benchmark's FLOP counter (benchmarks/flops.py) against the facts' layer shapes and their
'about 173 GFLOP' per Adam step."""

import sys

import pytest

from nst_utils.config import PROJECT_ROOT

if str(PROJECT_ROOT / "benchmarks") not in sys.path:  # the benchmarks import each other by name
    sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
import flops  # noqa: E402
from nst_utils.settings import DEFAULTS
from nst_utils.errors import ConfigError

# (n_H, n_W) of each block at 400x300 and (C_in, C_out) of each conv, from the facts' section 2.
FACTS_SPATIAL = {1: (300, 400), 2: (150, 200), 3: (75, 100), 4: (38, 50), 5: (19, 25)}
FACTS_CHANNELS = {
    "conv1_1": (3, 64),
    "conv1_2": (64, 64),
    "conv2_1": (64, 128),
    "conv2_2": (128, 128),
    "conv3_1": (128, 256),
    "conv3_2": (256, 256),
    "conv3_3": (256, 256),
    "conv3_4": (256, 256),
    "conv4_1": (256, 512),
    "conv4_2": (512, 512),
    "conv4_3": (512, 512),
    "conv4_4": (512, 512),
    "conv5_1": (512, 512),
    "conv5_2": (512, 512),
    "conv5_3": (512, 512),
    "conv5_4": (512, 512),
}


def by_hand(name):
    n_h, n_w = FACTS_SPATIAL[int(name[4])]
    c_in, c_out = FACTS_CHANNELS[name]
    return 2 * n_h * n_w * 3 * 3 * c_in * c_out


def test_each_conv_costs_two_flops_per_weight_per_output_pixel():
    counted = flops.conv_flops(300, 400)
    assert counted == {name: by_hand(name) for name in FACTS_CHANNELS}


def test_an_adam_step_at_400x300_is_the_facts_173_gflop():
    step = flops.adam_step_flops(300, 400)
    forward = sum(by_hand(name) for name in list(FACTS_CHANNELS)[:13])  # conv1_1 .. conv5_1
    assert step == 2 * forward
    assert step == pytest.approx(173e9, rel=0.01)


def test_the_deepest_layer_of_the_original_costs_is_conv5_1():
    names = [DEFAULTS.content_layer, *(name for name, _ in DEFAULTS.style_layers)]
    assert flops.deepest_layer(names) == "conv5_1"
    assert flops.deepest_layer(["conv4_2", "avgpool3"]) == "conv4_2"
    assert flops.forward_flops(300, 400, "avgpool4") == flops.forward_flops(300, 400, "conv4_4")
    assert flops.forward_flops(300, 400, "conv1_1") == by_hand("conv1_1")


def test_cost_grows_with_the_pixels():
    ratio = flops.adam_step_flops(600, 800) / flops.adam_step_flops(300, 400)
    assert ratio == pytest.approx(4.0, rel=0.02)  # pools round odd sizes up, so not exactly 4


def test_unknown_layer_names_are_refused():
    with pytest.raises(ConfigError, match="unknown layer name"):
        flops.deepest_layer(["conv6_1"])
    with pytest.raises(ConfigError):
        flops.deepest_layer([])
