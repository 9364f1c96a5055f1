"""Arithmetic of one optimisation step, counted from the layer shapes: the CPU's floor.

A 3x3 SAME convolution of stride 1 costs 2 * n_H * n_W * 9 * C_in * C_out floating-point
operations (one multiply and one add per weight per output pixel). One Adam step runs the
network forward up to the deepest layer the costs use, then back to the image: the gradient
with respect to each conv's input costs as much as the conv itself (the weights are constants,
so no weight gradients). Pools, ReLUs, bias adds, Gram matrices and Adam are left out: at
400x300 they add under 10% to the count. That is 174.2 GFLOP per Adam step at 400x300.
"""

from __future__ import annotations

from nst_utils.architecture import CONV_LAYERS, LAYER_NAMES, MODEL_KEYS, activation_shape
from nst_utils.errors import ConfigError

#: Multiply-adds per output value of a 3x3 kernel, per input channel.
KERNEL_TAPS = 9


def conv_flops(height: int, width: int) -> dict:
    """{conv layer name: FLOPs of its forward pass} for an input of height x width pixels."""
    flops = {}
    for layer in CONV_LAYERS:
        _, n_h, n_w, c_out = activation_shape(layer.name, height, width)
        c_in = layer.kernel_shape[2]
        flops[layer.name] = 2 * n_h * n_w * KERNEL_TAPS * c_in * c_out
    return flops


def deepest_layer(layer_names) -> str:
    """The model key, of those named, that comes last in the network (e.g. 'conv5_1')."""
    names = list(layer_names)
    unknown = [name for name in names if name not in LAYER_NAMES]
    if unknown or not names:
        raise ConfigError(
            f"unknown layer name(s) {unknown or names}; known: {', '.join(LAYER_NAMES)}"
        )
    return max(names, key=MODEL_KEYS.index)


def forward_flops(height: int, width: int, last_layer: str = "conv5_1") -> int:
    """FLOPs of the convolutions from conv1_1 up to and including `last_layer`'s block."""
    last = MODEL_KEYS.index(deepest_layer([last_layer]))
    return sum(f for name, f in conv_flops(height, width).items() if MODEL_KEYS.index(name) <= last)


def adam_step_flops(height: int, width: int, last_layer: str = "conv5_1") -> int:
    """FLOPs of one training step: forward to `last_layer` plus the gradient back to the image.

    At 400x300 to conv5_1: 174.2e9 (the facts' "about 173 GFLOP").
    """
    return 2 * forward_flops(height, width, last_layer)


# The hardware's floor: the CPU's peak float32 rate, from what the CPU says about itself.

#: FMA units per core assumed for the peak rate: two on recent x86 cores (Intel since Haswell,
#: AMD since Zen 2). AMD's Zen 4 runs a 512-bit FMA as two 256-bit halves, so on Zen 4 the
#: AVX-512 peak this gives is twice what the core can reach: pass fma_units=1 there.
FMA_UNITS = 2

#: (flag, float32 lanes of the widest vector FMA it gives), widest first.
VECTOR_FLAGS = (("avx512f", 16), ("avx2", 8), ("fma", 8), ("avx", 8), ("sse2", 4))

#: Where Linux gives the highest clock of cpu0, in kHz (absent in many virtual machines).
MAX_FREQ_FILE = "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"


def cpuinfo_fields(text: str) -> dict:
    """The first processor's fields of /proc/cpuinfo's `text`: {'flags': '...', 'cpu MHz': ...}."""
    fields = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def vector_floats(flags, isa: str | None = None) -> int:
    """float32 lanes of the widest vector FMA among `flags` (16 with avx512f, 8 with avx2 or
    fma), capped at `isa` ('avx2' -> at most 8) to model a CPU that has only that."""
    flags = {flag.lower() for flag in flags}
    cap = dict(VECTOR_FLAGS).get((isa or "").lower(), 16)
    return next((min(n, cap) for flag, n in VECTOR_FLAGS if flag in flags), 1)


def clock_ghz(cpuinfo_text: str, max_freq_khz: str | None = None) -> float | None:
    """The core clock in GHz: cpufreq's highest (`max_freq_khz`, the text of MAX_FREQ_FILE)
    where given, else /proc/cpuinfo's "cpu MHz"; None if neither says."""
    if max_freq_khz and max_freq_khz.strip().isdigit() and int(max_freq_khz) > 0:
        return int(max_freq_khz) / 1e6
    try:
        mhz = float(cpuinfo_fields(cpuinfo_text).get("cpu MHz", ""))
    except ValueError:
        return None
    return mhz / 1e3 if mhz > 0 else None


def peak_flops(cores: int, floats: int, ghz: float, fma_units: int = FMA_UNITS) -> float:
    """float32 FLOP/s of the CPU at full tilt: cores x lanes x 2 (an FMA is a multiply and an
    add) x FMA units per core x clock."""
    return cores * floats * 2 * fma_units * ghz * 1e9


def hardware_peak(
    cpuinfo_text: str,
    cores: int,
    max_freq_khz: str | None = None,
    fma_units: int = FMA_UNITS,
    isa: str | None = None,
) -> dict:
    """The peak float32 rate and what it is made of, from /proc/cpuinfo's text (and cpufreq's
    highest clock): {'peak_gflops', 'cores', 'floats', 'fma_units', 'ghz'}; peak_gflops is
    None where the clock cannot be read."""
    flags = cpuinfo_fields(cpuinfo_text).get("flags", "").split()
    floats = vector_floats(flags, isa)
    ghz = clock_ghz(cpuinfo_text, max_freq_khz)
    peak = None if ghz is None else peak_flops(cores, floats, ghz, fma_units) / 1e9
    return {
        "peak_gflops": peak,
        "cores": cores,
        "floats": floats,
        "fma_units": fma_units,
        "ghz": ghz,
    }


def this_cpu_peak(fma_units: int = FMA_UNITS, isa: str | None = None) -> dict:
    """hardware_peak of this machine: /proc/cpuinfo, cpufreq, and the cores this process may
    use."""
    import os

    def read(path):
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except OSError:
            return None

    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return hardware_peak(
        read("/proc/cpuinfo") or "", cores, read(MAX_FREQ_FILE), fma_units=fma_units, isa=isa
    )


def blas_gflops(n: int = 4096, repeats: int = 5) -> list:
    """GFLOP/s of numpy's BLAS sgemm (float32 n x n times n x n) in each of `repeats` runs
    after a warm-up: the rate a well-tuned library reaches on this machine."""
    import time

    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), np.float32)
    np.matmul(a, b, out=out)
    rates = []
    for _ in range(repeats):
        begin = time.perf_counter()
        np.matmul(a, b, out=out)
        rates.append(2 * n**3 / (time.perf_counter() - begin) / 1e9)
    return rates


def blas_gflops_in_child(n: int = 4096, repeats: int = 5, env: dict | None = None) -> list:
    """blas_gflops in a fresh Python process, whose BLAS threads then leave nothing running
    here; `env` adds variables (OPENBLAS_CORETYPE=Haswell runs OpenBLAS's AVX2 kernels)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    here = str(Path(__file__).resolve().parent)
    code = (
        f"import sys, json; sys.path.insert(0, {here!r}); import flops; "
        f"print(json.dumps(flops.blas_gflops({int(n)}, {int(repeats)})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    return json.loads(done.stdout.strip().splitlines()[-1])
