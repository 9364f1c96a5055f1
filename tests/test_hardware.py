"""The CPU probe that tells whether bfloat16 is native here."""

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
