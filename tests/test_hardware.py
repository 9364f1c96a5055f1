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


#: The settings the benchmark justified (benchmarks/RESULTS.md), on AVX-512 and AVX2-only CPUs.
ADOPTED = {"TF_ENABLE_ONEDNN_OPTS": "1", "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": "1"}


@pytest.mark.parametrize("flags", ["fpu avx avx2 fma", "fpu avx2 fma avx512f avx512_bf16", ""])
def test_the_same_tensorflow_settings_on_avx512_and_avx2_only_cpus(monkeypatch, flags):
    fake_cpuinfo(monkeypatch, flags)
    assert hardware.tensorflow_environment() == ADOPTED


def test_the_tensorflow_settings_fill_only_what_the_user_left_unset():
    environ = {"PATH": "/bin"}
    assert hardware.apply_tensorflow_environment(environ) == ADOPTED
    assert environ == {"PATH": "/bin", **ADOPTED}
    mine = {name: "0" if i == 0 else "" for i, name in enumerate(ADOPTED)}  # "" is a setting
    environ = dict(mine)
    assert hardware.apply_tensorflow_environment(environ) == mine
    assert environ == mine


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
@pytest.mark.parametrize("users", [{}, *({name: "0"} for name in ADOPTED)])
def test_the_settings_are_in_force_before_tensorflow_loads_and_the_users_win(users):
    expected = {**ADOPTED, **users}
    env = {k: v for k, v in os.environ.items() if k not in ADOPTED}
    env.update(users)
    child = json_child(["-c", CHILD % (sorted(ADOPTED),)], env)
    assert child["before_load"] == expected
    # TensorFlow read the value: the user's "0" turns oneDNN off even on a CPU where
    # TensorFlow's own default is on.
    assert child["onednn"] is (expected["TF_ENABLE_ONEDNN_OPTS"] == "1")
