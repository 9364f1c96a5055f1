"""The CPU probe that tells whether bfloat16 is native here, and the settings nst gives
TensorFlow for this CPU: in force before TensorFlow loads, the user's own winning."""

import os

import pytest

from limits import json_child
from nst_utils import hardware


def fake_cpuinfo(monkeypatch, flags):
    monkeypatch.setattr(hardware, "_cpuinfo", lambda: {"model name": "Test CPU", "flags": flags})


def test_native_bfloat16_is_read_from_the_cpu_flags(monkeypatch):
    fake_cpuinfo(monkeypatch, "fpu avx2 avx512f avx512_bf16 amx_tile amx_bf16")
    assert hardware.bfloat16_support() == "amx_bf16 avx512_bf16"
    assert hardware.cpu_name() == "Test CPU"


def test_no_bfloat16_flag_means_no_native_support(monkeypatch):
    fake_cpuinfo(monkeypatch, "fpu avx2 fma avx512f")
    assert hardware.bfloat16_support() is None
    fake_cpuinfo(monkeypatch, "")
    assert hardware.bfloat16_support() is None


def test_this_machine_is_described():
    assert hardware.core_count() >= 1
    assert isinstance(hardware.cpu_name(), str) and hardware.cpu_name()


NAMES = (hardware.ONEDNN, hardware.FROZEN_WEIGHTS)
AVX2_ONLY = "fpu avx avx2 fma"
AVX512 = "fpu avx2 fma avx512f avx512_bf16"


@pytest.mark.parametrize(
    "flags, environ, frozen",
    [
        (AVX2_ONLY, {}, True),  # oneDNN runs AVX2: frozen weights buy 18-28% there
        (AVX512, {}, False),  # the same time with AVX-512, and more memory: not set
        ("", {}, False),  # flags unreadable: the plain setting
        ("fp asimd bf16", {}, False),  # aarch64: not measured, not set
        (AVX512, {"ONEDNN_MAX_CPU_ISA": "avx2"}, True),  # oneDNN capped at AVX2 (bench --isa)
        (AVX512, {"DNNL_MAX_CPU_ISA": "AVX2_VNNI"}, True),
        (AVX512, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}, False),
        (AVX2_ONLY, {"ONEDNN_MAX_CPU_ISA": "ALL"}, True),  # a cap cannot add AVX-512
    ],
)
def test_frozen_weights_are_set_where_onednn_runs_avx2_at_most(monkeypatch, flags, environ, frozen):
    fake_cpuinfo(monkeypatch, flags)
    expected = {hardware.ONEDNN: "1", **({hardware.FROZEN_WEIGHTS: "1"} if frozen else {})}
    assert hardware.tensorflow_environment(environ) == expected


@pytest.mark.parametrize("flags", [AVX2_ONLY, AVX512])
def test_the_tensorflow_settings_fill_only_what_the_user_left_unset(monkeypatch, flags):
    fake_cpuinfo(monkeypatch, flags)
    adopted = hardware.tensorflow_environment({})
    environ = {"PATH": "/bin"}
    assert hardware.apply_tensorflow_environment(environ) == adopted
    assert environ == {"PATH": "/bin", **adopted}
    mine = {hardware.ONEDNN: "0", hardware.FROZEN_WEIGHTS: ""}  # "" is a setting
    environ = dict(mine)
    assert hardware.apply_tensorflow_environment(environ) == mine
    assert environ == mine


@pytest.mark.parametrize(
    "environ, in_force",
    [
        ({}, False),
        ({"TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": "1"}, True),
        ({"TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": "True"}, True),
        ({"TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": "1", "TF_ENABLE_ONEDNN_OPTS": "1"}, True),
        ({"TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": "1", "TF_ENABLE_ONEDNN_OPTS": "0"}, False),
        ({"TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": "0"}, False),
        ({"TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": ""}, False),
    ],
)
def test_frozen_weights_are_in_force_as_tensorflow_reads_the_two_variables(environ, in_force):
    assert hardware.frozen_weights_in_force(environ) is in_force


#: In a fresh process: the environment as it is when TensorFlow's first submodule starts to
#: load (an audit hook sees the import before any of TensorFlow's native code runs), and
#: whether TensorFlow then runs oneDNN.
CHILD = """
import json, os, sys
seen = {}
names = %r

def hook(event, args):
    if event == "import" and not seen and str(args[0]).startswith("tensorflow."):
        seen.update({name: os.environ.get(name) for name in names})

sys.addaudithook(hook)
import nst_utils
import tensorflow
from tensorflow.python.util import _pywrap_util_port as port
print(json.dumps({"before_load": seen, "onednn": bool(port.IsMklEnabled())}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("users", [{}, *({name: "0"} for name in NAMES)])
def test_the_settings_are_in_force_before_tensorflow_loads_and_the_users_win(users):
    env = {k: v for k, v in os.environ.items() if k not in NAMES}
    expected = {name: None for name in NAMES}
    expected.update({**hardware.tensorflow_environment(env), **users})
    env.update(users)
    child = json_child(["-c", CHILD % (sorted(NAMES),)], env)
    assert child["before_load"] == expected
    # TensorFlow read the value: the user's "0" turns oneDNN off even on a CPU where
    # TensorFlow's own default is on.
    assert child["onednn"] is (expected[hardware.ONEDNN] == "1")
