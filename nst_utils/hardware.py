"""What this machine's CPU offers: its name, core count and bfloat16 support (Linux flags).

The bfloat16 mode is fast only where the CPU multiplies bfloat16 natively (AVX512_BF16, AMX);
elsewhere oneDNN emulates it, and it is slower than float32.
"""

from __future__ import annotations

import functools
import os
import platform

#: CPU flags (as /proc/cpuinfo names them) that give native bfloat16 arithmetic: x86's, then
#: aarch64's (Armv8.6 BF16, which oneDNN's Arm Compute Library kernels use).
BFLOAT16_FLAGS = ("amx_bf16", "avx512_bf16", "bf16")
#: What nst says of a CPU without them: bfloat16 is emulated there, about 10x slower.
NO_NATIVE_BFLOAT16 = f"this CPU has no native bfloat16 (no {', '.join(BFLOAT16_FLAGS)} flag)"


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> dict:
    """The first processor's fields of /proc/cpuinfo; empty where there is none (not Linux)."""
    fields = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def cpu_flags() -> frozenset:
    """The CPU's feature flags (lower case; x86's 'flags', aarch64's 'Features'), or an empty
    set where they cannot be read."""
    info = _cpuinfo()
    return frozenset((info.get("flags") or info.get("Features", "")).lower().split())


def cpu_name() -> str:
    """The CPU's model name, e.g. 'Intel(R) Xeon(R) Processor'."""
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


def core_count() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def bfloat16_support() -> str | None:
    """The flags that give native bfloat16 (e.g. 'amx_bf16 avx512_bf16'); None if it has none
    or the flags cannot be read (then bfloat16 is emulated and slower than float32)."""
    found = [flag for flag in BFLOAT16_FLAGS if flag in cpu_flags()]
    return " ".join(found) or None


# TensorFlow's settings for this CPU, by rules the benchmark justifies (benchmarks/configs.py,
# figures in benchmarks/RESULTS.md). TensorFlow reads them from the environment, some of them
# once when it loads, so they are set before it is imported (nst_utils.quiet does it).

#: TF_ENABLE_ONEDNN_OPTS=1, on every CPU: oneDNN's kernels for TensorFlow's CPU ops, which
#: TensorFlow turns on by itself only on CPUs with AVX-512 VNNI, BF16 or AMX; on AVX2 CPUs too
#: they make the step faster, with the same results within float32 rounding.
ONEDNN = "TF_ENABLE_ONEDNN_OPTS"
#: TF_ONEDNN_ASSUME_FROZEN_WEIGHTS=1, where oneDNN runs AVX2 at most: oneDNN reorders each
#: convolution's filter into its own layout once per session and keeps it, instead of every
#: step. On such a CPU it also lets oneDNN pick its brgemm convolution for the forward pass
#: instead of an im2col + GEMM one: 18-28% less time per iteration. With AVX-512 the
#: convolutions are the same and the time too (within 1%), so the kept copies (130-200 MB of
#: resident memory, which nst_utils.memory counts when they are in force) buy nothing there.
#: Right for nst, whose VGG weights are filled once when a session starts and never change in
#: it (a new graph, a new session or new weights get new kernels and so a new copy); wrong for a
#: graph whose convolution filters are trained or assigned while the session runs.
FROZEN_WEIGHTS = "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS"
#: Variables that cap oneDNN's instruction set (oneDNN's name, then its older one).
ONEDNN_ISA_CAPS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
#: oneDNN's names of the instruction sets up to AVX2 (its caps from AVX512_CORE up are wider).
AVX2_AT_MOST = frozenset({"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2"})


def onednn_runs_avx2_at_most(environ=None) -> bool:
    """True where oneDNN's widest vectors are AVX2's: an x86 CPU with AVX2 and no AVX-512
    (avx512f), or one whose oneDNN is capped at AVX2 or lower (ONEDNN_MAX_CPU_ISA=AVX2...)."""
    environ = os.environ if environ is None else environ
    cap = next((environ[name] for name in ONEDNN_ISA_CAPS if environ.get(name)), "")
    if cap.strip().upper() in AVX2_AT_MOST:
        return True
    flags = cpu_flags()
    return "avx2" in flags and "avx512f" not in flags


def tensorflow_environment(environ=None) -> dict:
    """{variable: value} of the settings nst gives TensorFlow on this CPU: oneDNN on every CPU,
    and frozen weights where oneDNN runs AVX2 at most."""
    settings = {ONEDNN: "1"}
    if onednn_runs_avx2_at_most(environ):
        settings[FROZEN_WEIGHTS] = "1"
    return settings


def apply_tensorflow_environment(environ=None) -> dict:
    """Set in `environ` (os.environ by default) each of tensorflow_environment()'s settings that
    it lacks; a value the user set wins. Returns the settings in force, {variable: value}."""
    environ = os.environ if environ is None else environ
    for name, value in tensorflow_environment(environ).items():
        environ.setdefault(name, value)
    return {name: environ[name] for name in (ONEDNN, FROZEN_WEIGHTS) if name in environ}


def frozen_weights_in_force(environ=None) -> bool:
    """Whether TensorFlow keeps oneDNN's reordered filters (oneDNN on and frozen weights on, as
    TensorFlow reads the two variables: '1' or 'true', any case)."""
    environ = os.environ if environ is None else environ

    def read(name, default):
        value = environ.get(name, "").strip().lower()
        return default if value == "" else value in ("1", "true")

    return read(ONEDNN, True) and read(FROZEN_WEIGHTS, False)
