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


# The hardware floor, from injected /proc/cpuinfo text: nothing here depends on this machine.

EPYC_AVX512 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
cpu MHz\t\t: 2596.142
flags\t\t: fpu sse sse2 avx fma avx2 avx512f avx512_bf16 avx512_vnni

processor\t: 1
cpu MHz\t\t: 1.0
flags\t\t: fpu sse2
"""

AVX2_ONLY = """processor\t: 0
model name\t: AMD EPYC 7B12
cpu MHz\t\t: 2250.000
flags\t\t: fpu sse2 avx fma avx2
"""


def test_the_first_processor_block_is_read_and_the_second_ignored():
    fields = flops.cpuinfo_fields(EPYC_AVX512)
    assert fields["cpu MHz"] == "2596.142" and "avx512f" in fields["flags"].split()


@pytest.mark.parametrize(
    "flags, isa, floats",
    [
        ("sse2 avx fma avx2 avx512f", None, 16),
        ("sse2 avx fma avx2 avx512f", "avx2", 8),
        ("sse2 avx fma avx2", None, 8),
        ("sse2 fma", None, 8),
        ("sse2", None, 4),
        ("", None, 1),
        ("sse2 avx fma avx2", "avx512f", 8),  # a cap does not add lanes the CPU lacks
    ],
)
def test_vector_width_comes_from_the_widest_fma_flag(flags, isa, floats):
    assert flops.vector_floats(flags.split(), isa) == floats


def test_peak_of_an_avx512_cpu_is_cores_lanes_fma_and_clock():
    peak = flops.hardware_peak(EPYC_AVX512, cores=2)
    # 2 cores x 16 lanes x 2 flops x 2 FMA units x 2.596142 GHz
    assert peak["peak_gflops"] == pytest.approx(2 * 16 * 2 * 2 * 2.596142)
    assert (peak["floats"], peak["fma_units"], peak["ghz"]) == (16, 2, pytest.approx(2.596142))


def test_peak_of_an_avx2_cpu_and_the_fma_override():
    assert flops.hardware_peak(AVX2_ONLY, cores=2)["peak_gflops"] == pytest.approx(144.0)
    one = flops.hardware_peak(AVX2_ONLY, cores=2, fma_units=1)
    assert one["peak_gflops"] == pytest.approx(72.0)


def test_avx2_emulation_halves_an_avx512_peak():
    full = flops.hardware_peak(EPYC_AVX512, cores=2)["peak_gflops"]
    capped = flops.hardware_peak(EPYC_AVX512, cores=2, isa="avx2")["peak_gflops"]
    assert capped == pytest.approx(full / 2)


def test_cpufreq_max_clock_wins_over_cpu_mhz():
    peak = flops.hardware_peak(AVX2_ONLY, cores=4, max_freq_khz="3300000\n")
    assert peak["ghz"] == pytest.approx(3.3)
    assert peak["peak_gflops"] == pytest.approx(4 * 8 * 2 * 2 * 3.3)


@pytest.mark.parametrize("text", ["processor\t: 0\nflags\t: avx2\n", "cpu MHz : n/a\n"])
def test_no_clock_gives_no_peak(text):
    peak = flops.hardware_peak(text, cores=2, max_freq_khz="")
    assert peak["ghz"] is None and peak["peak_gflops"] is None


def test_blas_rate_is_a_positive_rate_per_run():
    rates = flops.blas_gflops(n=64, repeats=3)
    assert len(rates) == 3 and all(r > 0 for r in rates)
