"""A smoke run of benchmarks/bench.py at a tiny size: every figure present and a positive number.

No timing is asserted: the benchmark's figures depend on the machine and its load.
"""

import json
import math
import os
import subprocess
import sys

import pytest

from nst_utils.config import PROJECT_ROOT

if str(PROJECT_ROOT / "benchmarks") not in sys.path:  # the benchmarks import each other by name
    sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
from flops import adam_step_flops  # noqa: E402
from limits import HANG_SECONDS  # noqa: E402

BENCH = PROJECT_ROOT / "benchmarks" / "bench.py"

EXPECTED_NUMBERS = (
    "blas_gflops",
    "step_gflop",
    "blas_floor_seconds",
    "float32_seconds_per_iteration",
    "float32_blas_ratio",
    "bfloat16_seconds_per_iteration",
    "bfloat16_blas_ratio",
    "bfloat16_to_float32_time_ratio",
    "float32_large_seconds_per_iteration",
    "float32_large_to_base_ratio",
    "bfloat16_large_seconds_per_iteration",
    "bfloat16_large_to_base_ratio",
    "first_iteration_from_mat_seconds",
    "first_iteration_from_mat_peak_rss_mb",
    "loop_seconds_per_iteration",
    "image_fetch_seconds",
    "pixel_ratio",
    "peak_rss_mb",
    "benchmark_seconds",
    "help_seconds",
    "first_iteration_after_cache_load_seconds",
    "loop_peak_rss_mb",
    "loop_estimate_mb",
    "loop_peak_anon_mb",
    "loop_first_iteration_seconds",
)


def quick_bench(vgg_mat, *options, env=None) -> tuple:
    """(the finished process, its last line read as JSON) of `bench.py --quick` at 32x24 and
    64x48, 3 iterations, rounds of one, with `options`; it must exit 0."""
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--weights", str(vgg_mat)]
        + ["--size", "32x24", "--large", "64x48", "--iterations", "3", "--round-iterations", "1"]
        + list(options),
        capture_output=True,
        text=True,
        env=env,
        timeout=HANG_SECONDS,
        cwd=PROJECT_ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done, json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_quick_bench_prints_every_figure_as_one_json_line(vgg_mat):
    done, figures = quick_bench(vgg_mat, "--rounds", "1", "--gemm-size", "256")
    for key in EXPECTED_NUMBERS:
        value = figures[key]
        assert isinstance(value, (int, float)) and math.isfinite(value) and value > 0, key
    assert "first_iteration_from_cache_seconds" in figures  # a number once load_weights caches
    assert figures["step_gflop"] == adam_step_flops(24, 32) / 1e9
    assert figures["pixel_ratio"] == 4.0
    assert figures["blas_gflops"] == max(figures["blas_gflops_runs"])
    assert figures["blas_floor_seconds"] == pytest.approx(
        figures["step_gflop"] / figures["blas_gflops"]
    )
    assert figures["float32_blas_ratio"] == pytest.approx(
        figures["float32_seconds_per_iteration"] / figures["blas_floor_seconds"]
    )
    # The CPU's peak comes from /proc/cpuinfo; a host whose clock cannot be read has none.
    peak = figures["cpu_peak"]
    if peak["peak_gflops"] is None:
        assert figures["peak_floor_seconds"] is None
    else:
        assert peak["peak_gflops"] == pytest.approx(
            peak["cores"] * peak["floats"] * 2 * peak["fma_units"] * peak["ghz"]
        )
        assert figures["float32_peak_ratio"] == pytest.approx(
            figures["float32_seconds_per_iteration"]
            * figures["peak_gflops"]
            / figures["step_gflop"]
        )
    psnr = figures["bfloat16_psnr_db_after_3"]
    assert 20 < psnr <= math.inf  # bfloat16 drifts from float32, but not into another image
    assert "s per iteration at 32x24" in done.stdout and "the BLAS floor" in done.stdout
    # The PyTorch loop runs beside nst's when PyTorch is installed, else a line says it is not.
    if "PyTorch is not installed" in done.stdout:
        assert figures["torch"] is None
    else:
        assert figures["torch_peak_rss_mb"] > 0 and "PyTorch loop at 32x24: peak" in done.stdout
        assert figures["torch_peak_anon_mb"] > 0 and figures["torch_first_iteration_seconds"] > 0
        assert figures["torch_start_costs"] == pytest.approx(figures["loop_start_costs"], rel=1e-4)
        # Each side's resident memory right after importing its framework, split in two.
        for key in ("loop_framework_mb", "torch_framework_mb"):
            split = figures[key]
            assert split["rss"] == pytest.approx(split["anon"] + split["file"], abs=0.2), key
            assert 0 < split["rss"] < figures[key.replace("framework", "peak_rss")], key
        assert "resident peak split: nst (TensorFlow): " in done.stdout


@pytest.mark.slow
def test_a_missing_weights_file_is_one_line_and_exit_status_2(tmp_path):
    missing = tmp_path / "nowhere.mat"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--weights", str(missing)],
        capture_output=True,
        text=True,
        timeout=HANG_SECONDS,
        cwd=PROJECT_ROOT,
    )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"VGG-19 weights not found at {missing}" in errors[0]
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_the_big_print_benchmark_paints_every_scale_and_prints_its_figures(vgg_mat):
    done = subprocess.run(
        [
            sys.executable,
            str(PROJECT_ROOT / "benchmarks" / "big_print.py"),
            "--weights",
            str(vgg_mat),
            "--size",
            "256x192",
            "--iterations",
            "3",
            "3",
            "--budget-gb",
            "8",
        ],
        capture_output=True,
        text=True,
        timeout=HANG_SECONDS,
        cwd=PROJECT_ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["finite"] is True and figures["peak_rss_mb"] > 0
    sizes = [(scale["width"], scale["height"]) for scale in figures["scales"]]
    assert sizes == [(128, 96), (256, 192)]
    for scale in figures["scales"]:
        assert scale["seconds_per_iteration"] > 0 and scale["estimate_mb"] > 0


def _benchmark_python(code: str) -> str:
    """What `code` prints, run by a fresh Python with benchmarks/ importable; it must succeed."""
    code = f"import sys\nsys.path.insert(0, {str(PROJECT_ROOT / 'benchmarks')!r})\n" + code
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=HANG_SECONDS,
        cwd=PROJECT_ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
def test_the_pytorch_loop_holds_its_prepared_weights_once(vgg_mat, tmp_path):
    # The comparison's memory figures mean something only if the PyTorch side keeps one copy of
    # the weights, as a PyTorch program would: its kernels are the arrays it read, not copies.
    pytest.importorskip("torch")
    code = (
        "import numpy as np\n"
        "import torch_loop\n"
        f"npz = torch_loop.prepare({str(vgg_mat)!r}, 32, 24, {str(tmp_path / 'in.npz')!r})\n"
        "weights, content, style, start = torch_loop.load_prepared(npz)\n"
        "net = torch_loop.TorchVGG(weights)\n"
        "from nst_utils.weights import load_weights\n"
        f"original = load_weights({str(vgg_mat)!r}).conv\n"
        "for name, kernel, bias in net.layers:\n"
        "    assert np.array_equal(kernel.numpy(), np.transpose(original[name][0], (3, 2, 0, 1)))\n"
        "    assert np.array_equal(bias.numpy(), original[name][1])\n"
        "print(sum(np.shares_memory(k.numpy(), weights.conv[n][0]) for n, k, _ in net.layers),\n"
        "      len(net.layers))\n"
    )
    assert _benchmark_python(code).split() == ["13", "13"]


@pytest.mark.slow
def test_the_resident_split_sees_anonymous_and_file_pages_grow(tmp_path):
    # Touching a 64 MB array adds about 64 MB of anonymous pages; reading a mapped 32 MB file
    # adds about 32 MB of file pages; the split always sums to the resident total.
    code = (
        "import mmap, numpy as np\n"
        "from resident import resident_split_mb as split\n"
        "before = split()\n"
        "a = np.ones(64 << 18, dtype=np.float32)\n"
        "middle = split()\n"
        f"path = {str(tmp_path / 'blob')!r}\n"
        "open(path, 'wb').write(b'x' * (32 << 20))\n"
        "handle = open(path, 'rb')\n"
        "m = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)\n"
        "total = sum(m[i] for i in range(0, len(m), 4096))\n"
        "after = split()\n"
        "print(before, middle, after, sep='\\n')\n"
    )
    printed = _benchmark_python(code)
    before, middle, after = (eval(line) for line in printed.split("\n")[:3])  # noqa: S307
    assert 60 <= middle["anon"] - before["anon"] <= 70
    assert 30 <= after["file"] - middle["file"] <= 34
    for split in (before, middle, after):
        assert split["rss"] == pytest.approx(split["anon"] + split["file"], abs=0.2)


@pytest.mark.slow
def test_loading_tensorflows_libraries_alone_is_measured_in_a_fresh_process():
    import memory

    figures = memory.in_child("m.libraries_child()")
    before, after = figures["before"], figures["after"]
    # The libraries are hundreds of MB on disk; loading them maps at least tens of MB of them.
    assert after["file"] - before["file"] > 50
    assert after["rss"] == pytest.approx(after["anon"] + after["file"], abs=0.2)


@pytest.mark.slow
def test_the_step_tensors_peak_holds_at_least_the_first_block_kept_for_backward(vgg_mat):
    # The backward pass needs conv1_1's and conv1_2's ReLU outputs (1, H, W, C) together, so
    # TensorFlow's allocator must have held at least those bytes at once during the step.
    from nst_utils.weights import load_weights

    channels = load_weights(vgg_mat).conv["conv1_1"][0].shape[-1]
    printed = _benchmark_python(
        "import json, memory\nprint(json.dumps("
        f"memory.step_tensors_child({str(vgg_mat)!r}, 64, 48)))"
    )
    peak_mb = json.loads(printed.splitlines()[-1])["step_tensors_peak_mb"]
    if peak_mb is None:
        pytest.skip(
            "this CPU's TensorFlow build records no allocator figures in a traced step "
            "(step_tensors_peak_mb is None)"
        )
    assert 2 * 64 * 48 * channels * 4 / (1 << 20) <= peak_mb < 512


@pytest.mark.slow
def test_quick_bench_runs_pytorch_side_by_side_on_the_same_inputs(vgg_mat):
    pytest.importorskip("torch", reason="PyTorch is not installed: no side-by-side to check")
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--quick",
            "--weights",
            str(vgg_mat),
            "--size",
            "32x24",
            "--large",
            "32x24",
            "--precision",
            "float32",
            "--iterations",
            "4",
            "--rounds",
            "2",
            "--round-iterations",
            "2",
            "--gemm-size",
            "128",
            "--skip-first-iteration",
        ],
        capture_output=True,
        text=True,
        timeout=HANG_SECONDS,
        cwd=PROJECT_ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    nst = figures["float32_seconds_per_iteration"]
    torch = figures["torch_interleaved_seconds_per_iteration"]
    for value in (nst, torch):
        assert isinstance(value, float) and math.isfinite(value) and value > 0
    assert figures["nst_to_torch_ratio"] == pytest.approx(nst / torch)
    # 2 timed of the 4 warm-up iterations, then 2 rounds of 2: PyTorch's rounds ran between nst's.
    assert figures["torch_interleaved_samples"] == 2 + 2 * 2
    # Same weights and images: the costs of the start image agree.
    assert figures["torch_interleaved_start_costs"] == pytest.approx(
        figures["nst_start_costs"], rel=1e-4
    )
    assert "side by side, rounds interleaved" in done.stdout


@pytest.mark.slow
def test_quick_configurations_run_interleaved_and_keep_the_costs(vgg_mat):
    done = subprocess.run(
        [
            sys.executable,
            str(PROJECT_ROOT / "benchmarks" / "configs.py"),
            "--quick",
            "--weights",
            str(vgg_mat),
            "--size",
            "32x24",
            "--groups",
            "native",
            "--rounds",
            "2",
            "--round-iterations",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=HANG_SECONDS,
        cwd=PROJECT_ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    rows = {row["config"]: row for row in figures["rows"]}
    assert rows["nst oneDNN"]["onednn"] is True and rows["nst no oneDNN"]["onednn"] is False
    for row in rows.values():
        assert row["median_seconds"] > 0 and row["samples"] == 1 + 2  # warm-up 3 less 2, rounds
        # Every configuration computes the same costs of the start image (float32 rounding).
        assert row["start_costs"] == pytest.approx(rows["nst oneDNN"]["start_costs"], rel=1e-5)
    assert ("PyTorch" in rows) == ("PyTorch is not installed" not in done.stdout)


def test_the_paired_ratio_takes_each_round_against_its_neighbour():
    import bench

    # 4 first iterations (2 kept), then 2 rounds of 2; the load doubles in the second round.
    nst = [1.0, 1.0, 0.9, 0.9, 2.0, 2.0]
    torch = [1.25, 1.25, 1.0, 1.0, 2.5, 2.5]
    assert bench.paired_ratio(nst, torch, 4, 2) == pytest.approx(0.8)
    # The load rises after nst's second block and before PyTorch's: one ratio of three is off,
    # where the ratio of the medians would be (1.0 / 3.3).
    nst, torch = [1.0, 1.0, 3.0], [1.1, 3.3, 3.3]
    assert bench.paired_ratio(nst, torch, 3, 1) == pytest.approx(1.0 / 1.1)


@pytest.mark.slow
def test_bench_isa_avx2_runs_nst_pytorch_and_the_blas_floor_as_on_an_avx2_only_cpu(vgg_mat):
    import bench
    import flops

    emulation = bench.ISA_EMULATION["avx2"]
    env = {k: v for k, v in os.environ.items() if k not in emulation}
    done, figures = quick_bench(
        vgg_mat,
        *("--isa", "avx2", "--precision", "float32", "--rounds", "2", "--gemm-size", "128"),
        "--skip-first-iteration",
        env=env,
    )
    assert figures["isa"] == "avx2" and figures["isa_emulation"] == emulation
    assert "emulating a CPU with AVX2 only: ONEDNN_MAX_CPU_ISA=AVX2" in done.stdout
    # The peak is computed with AVX2's 8 float32 lanes (or fewer, on a CPU without AVX2).
    flags = flops.cpuinfo_fields(open("/proc/cpuinfo").read()).get("flags", "").split()
    assert figures["cpu_peak"]["floats"] == flops.vector_floats(flags, "avx2") <= 8
    assert figures["machine"]["bfloat16_native"] is None  # no AVX512_BF16 under AVX2
    # nst's own settings for TensorFlow stay in force, those of a CPU with AVX2 only (frozen
    # weights among them); a setting of the caller's would win.
    settings = figures["machine"]["tensorflow_environment"]
    assert settings["TF_ENABLE_ONEDNN_OPTS"] is not None
    assert settings["TF_ONEDNN_ASSUME_FROZEN_WEIGHTS"] == env.get(
        "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS", "1"
    )
    if "PyTorch is not installed" not in done.stdout:
        if "avx2" in flags:
            assert figures["torch_cpu_capability"] == "AVX2"  # PyTorch's kernels were limited
        ratio = figures["nst_to_torch_paired_ratio"]
        assert math.isfinite(ratio) and ratio > 0
        assert figures["torch_interleaved_samples"] == 1 + 2 * 1
