"""How fast nst runs one Adam iteration on this CPU, against the hardware's floors and PyTorch.

    python benchmarks/bench.py            # the full benchmark (a few minutes)
    python benchmarks/bench.py --quick    # a smoke run at a tiny size (seconds)

It writes a full-size VGG-19 `.mat` with random weights once (about 575 MB, cached under the
system's temporary folder: the real weights are not needed, the arithmetic is the same), builds
the original problem (content cost at conv4_2, style cost at five layers, Adam at 2.0) on the
shipped Louvre and sandstone images, and prints, all measured in this run:

- seconds per Adam iteration (median after a warm-up, float32 and bfloat16 rounds interleaved)
  against two floors, the step's FLOPs (from the layer shapes, benchmarks/flops.py) divided by
  (1) the CPU's peak float32 rate, cores x vector lanes x 2 x FMA units x clock as the CPU
  reports them (`--fma-units`), and (2) the best rate of numpy's BLAS sgemm on large float32
  matrices, measured between the rounds;
- the same loop in PyTorch (benchmarks/torch_loop.py, when PyTorch is installed) on the same
  weights and images, in its own process, its rounds interleaved with nst's: both medians and
  their ratio, also taken round by round;

`--isa avx2` runs all of it as on a CPU with AVX2 only (oneDNN, PyTorch's kernels and OpenBLAS
limited to AVX2, the peak with 8 lanes): an emulation on this CPU's clock and caches.
- time to the first iteration (weights loaded, graph built, session ready, one step done) in a
  fresh process, from the `.mat` and, where `load_weights` has a cache, from the cache; the
  peak resident memory of those processes and of this one;
- seconds per iteration at the large size (800x600) against the base size (400x300);
- what the training loop adds per iteration (it fetches the image every step);
- the PSNR between the bfloat16 and float32 images after 20 iterations from the same start;
- one line of JSON with every figure, last.

The machine may be shared: every timing is a median over repeated, interleaved rounds.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import nst_utils  # noqa: E402,F401  (TensorFlow then loads as `generate` loads it: quiet, without Keras)

#: --isa NAME: the environment that makes this CPU run as one with only that vector ISA, for
#: oneDNN (TensorFlow's and PyTorch's convolutions), PyTorch's own kernels and OpenBLAS (the
#: BLAS floor). Set before TensorFlow loads; the worker processes inherit it.
ISA_EMULATION = {
    "avx2": {
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "ATEN_CPU_CAPABILITY": "avx2",
        "OPENBLAS_CORETYPE": "Haswell",
    },
}

#: Iterations after which the bfloat16 image is compared with the float32 one.
PSNR_ITERATIONS = 20


def parse_size(text: str) -> tuple:
    """'400x300' -> (400, 300): width x height."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 400x300, got {text!r}")
    if width <= 0 or height <= 0:
        raise argparse.ArgumentTypeError(f"width and height must be positive, got {text!r}")
    return width, height


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 64x48 and 128x96, few iterations, small fc layers",
    )
    parser.add_argument("--size", type=parse_size, default=None, help="base size (400x300)")
    parser.add_argument("--large", type=parse_size, default=None, help="large size (800x600)")
    parser.add_argument(
        "--iterations",
        type=int,
        default=None,
        help=f"iterations from the start image at the base size ({PSNR_ITERATIONS})",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="extra interleaved rounds of timed iterations per size (3)",
    )
    parser.add_argument(
        "--round-iterations",
        type=int,
        default=None,
        help="timed iterations per precision in each round (4)",
    )
    parser.add_argument("--precision", choices=("both", "float32", "bfloat16"), default="both")
    parser.add_argument(
        "--gemm-size", type=int, default=None, help="n of the n^3 BLAS sgemm floor (4096)"
    )
    parser.add_argument(
        "--fma-units",
        type=int,
        default=None,
        help="FMA units per core for the peak rate (2, recent x86; 1 for AMD Zen 4's AVX-512)",
    )
    parser.add_argument(
        "--isa",
        choices=tuple(ISA_EMULATION),
        default=None,
        help="run as if the CPU had only this vector ISA: oneDNN (nst's and PyTorch's), "
        "PyTorch's own kernels and the BLAS floor limited to it, and the peak rate computed "
        "with its vector width",
    )
    parser.add_argument(
        "--inter-op-threads",
        type=int,
        default=None,
        help="override config.inter_op_threads (to measure what it buys)",
    )
    parser.add_argument(
        "--intra-op-threads", type=int, default=None, help="override config.intra_op_threads"
    )
    parser.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="a VGG-19 .mat to use instead of the generated random-weights file",
    )
    parser.add_argument(
        "--skip-first-iteration",
        action="store_true",
        help="skip the time-to-first-iteration processes",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also print the time of every op type in the traced step",
    )
    parser.add_argument(
        "--no-torch",
        action="store_true",
        help="skip the PyTorch loop (side by side and peak memory)",
    )
    parser.add_argument(
        "--big-print",
        type=parse_size,
        default=None,
        metavar="WxH",
        help="also paint this big print coarse to fine (3 scales, 2 iterations "
        "each) and report its peak memory and seconds per iteration "
        "(3000x2250 takes about half an hour on 2 cores)",
    )
    parser.add_argument("--child-first-iteration", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cache", choices=("off", "on"), default="off", help=argparse.SUPPRESS)
    return parser


def settings(args) -> dict:
    """The run's sizes and counts: --quick's small defaults, else the full ones."""
    quick = args.quick

    def pick(value, full, small):
        return value if value is not None else (small if quick else full)

    return {
        "size": pick(args.size, (400, 300), (64, 48)),
        "large": pick(args.large, (800, 600), (128, 96)),
        "iterations": pick(args.iterations, PSNR_ITERATIONS, 4),
        "rounds": pick(args.rounds, 3, 1),
        "round_iterations": pick(args.round_iterations, 4, 2),
        "gemm_size": pick(args.gemm_size, 4096, 512),
        "full_size": not quick,
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (see resident.peak_rss_mb)."""
    from resident import peak_rss_mb as peak

    return peak()


def weights_file(args, full_size: bool) -> Path:
    """The given weights, or the random-weights file cached under the temporary folder."""
    if args.weights is not None:
        from nst_utils.weights.sources import check_weights_path

        return check_weights_path(args.weights)
    from nst_utils.weights.synthetic import benchmark_weights

    return benchmark_weights(full_size)


def config_for(args, width, height, weights_path):
    from nst_utils.settings import DEFAULTS

    changes = {"image_width": width, "image_height": height, "vgg_model": weights_path}
    if args.inter_op_threads is not None:
        changes["inter_op_threads"] = args.inter_op_threads
    if args.intra_op_threads is not None:
        changes["intra_op_threads"] = args.intra_op_threads
    return DEFAULTS.replace(**changes)


def load_weights_timed(path, cache: bool):
    """(weights, seconds, whether a cache was asked for), for load_weights with or without one."""
    from nst_utils.weights import load_weights

    start = time.perf_counter()
    if has_weights_cache():
        weights = load_weights(path, cache=cache)
    else:
        weights = load_weights(path)
    return weights, time.perf_counter() - start


def has_weights_cache() -> bool:
    """Whether `load_weights` can keep a cache (a `cache` argument)."""
    from nst_utils.weights import load_weights

    return "cache" in inspect.signature(load_weights).parameters


class Problem:
    """The original style-transfer problem at one size and precision: nst's painting core
    (`nst_utils.stylize.Painter`, the graph, costs and Adam that `generate` runs) and the noisy
    start image."""

    def __init__(self, weights, config, precision, content, style, start, ready=True):
        """ready=False leaves the variables to the loop, which initialises them itself."""
        from nst_utils.stylize import Painter

        self.config, self.precision, self.start = config, precision, start
        self.painter = Painter(config.replace(precision=precision), weights, content, [style])
        self.sess, self.graph = self.painter.sess, self.painter.graph
        if ready:
            self.restart()

    def restart(self):
        """Adam's state and the image back to the start."""
        self.painter.start(self.start)

    def step(self) -> float:
        """One Adam iteration with its three costs fetched, as the loop runs it: seconds."""
        begin = time.perf_counter()
        self.painter.step()
        return time.perf_counter() - begin

    def image(self):
        return self.painter.image()

    def fetch_image_seconds(self, repeats=5) -> float:
        """Median time to fetch the image, which the training loop does every iteration."""
        times = []
        for _ in range(repeats):
            begin = time.perf_counter()
            self.image()
            times.append(time.perf_counter() - begin)
        return statistics.median(times)

    def loop_seconds_per_iteration(self, iterations) -> tuple:
        """(median seconds per iteration inside `training.optimize`, median bare step) measured
        back to back: the loop's time is between consecutive on_step calls, so its one-time
        set-up (initialising, assigning the image) is not charged to the iterations."""
        from nst_utils.training import Hooks

        stamps = []
        self.painter.run(
            self.start,
            False,
            Hooks(report=None, on_step=lambda *_: stamps.append(time.perf_counter())),
            iterations=iterations + 1,
        )
        loop = statistics.median(b - a for a, b in zip(stamps, stamps[1:]))
        bare = statistics.median(self.step() for _ in range(iterations))
        return loop, bare

    def op_profile(self, top=8) -> list:
        """[(op type, seconds, count)] of one traced step, the slowest types first."""
        import collections

        import tensorflow as tf

        tf1 = tf.compat.v1
        options = tf1.RunOptions(trace_level=tf1.RunOptions.FULL_TRACE)
        metadata = tf1.RunMetadata()
        from nst_utils.training import image_after

        with self.graph.as_default():
            after = image_after(self.painter.train_step, self.painter.model["input"])
        self.sess.run([after, *self.painter.reported], options=options, run_metadata=metadata)
        seconds, counts = collections.Counter(), collections.Counter()
        for device in metadata.step_stats.dev_stats:
            for node in device.node_stats:
                label = node.timeline_label
                kind = label.split(" = ")[1].split("(")[0] if " = " in label else node.node_name
                seconds[kind] += node.all_end_rel_micros / 1e6
                counts[kind] += 1
        return [(kind, round(s, 4), counts[kind]) for kind, s in seconds.most_common(top)]

    def close(self):
        self.painter.close()


def psnr(image_a, image_b, means) -> float:
    """PSNR in dB between two (1, H, W, 3) network images as they would be saved (uint8)."""
    import numpy as np

    from nst_utils.images import deprocess_image

    a = deprocess_image(image_a, means).astype(np.float64)
    b = deprocess_image(image_b, means).astype(np.float64)
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def help_seconds(repeats: int = 3) -> float:
    """Median wall time of `python -m nst_utils generate --help` in a fresh process."""
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "nst_utils", "generate", "--help"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        times.append(time.perf_counter() - begin)
    return statistics.median(times)


def first_iteration(args, weights_path, cache: bool) -> dict:
    """Run this script in a fresh process to time one start-up to the first iteration."""
    width, height = settings(args)["size"]
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child-first-iteration",
        "--weights",
        str(weights_path),
        "--size",
        f"{width}x{height}",
        "--cache",
        "on" if cache else "off",
    ]
    if args.inter_op_threads is not None:
        command += ["--inter-op-threads", str(args.inter_op_threads)]
    if args.intra_op_threads is not None:
        command += ["--intra-op-threads", str(args.intra_op_threads)]
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"first-iteration process failed ({done.returncode}): "
            f"{done.stderr.strip().splitlines()[-1:] or done.stdout[-200:]}"
        )
    return json.loads(lines[-1])


def child_first_iteration(args) -> int:
    """In a fresh process: load the weights, build everything, run one iteration; print JSON."""
    begin = time.perf_counter()
    import numpy as np
    import tensorflow as tf

    from nst_utils.images import generate_noise_image, load_image, reshape_and_normalize_image

    tf.compat.v1.disable_eager_execution()
    imported = time.perf_counter()
    width, height = args.size
    config = config_for(args, width, height, args.weights)
    weights, load_seconds = load_weights_timed(args.weights, cache=args.cache == "on")
    loaded = time.perf_counter()
    content = reshape_and_normalize_image(load_image(config.content_image, (width, height)))
    style = reshape_and_normalize_image(load_image(config.style_image, (width, height)))
    start = generate_noise_image(content, seed=0)
    problem = Problem(weights, config, "float32", content, style, start, ready=False)
    ready = time.perf_counter()
    # The loop's first iteration, as `generate` runs it: the step and the costs of the image it
    # started from. The report and snapshot of iteration 0 take their costs from iteration 1.
    from nst_utils.training import Hooks

    stamps = []
    problem.painter.run(
        start,
        False,
        Hooks(
            report=None,
            on_step=lambda *_: stamps.append(time.perf_counter()),
            should_stop=lambda: bool(stamps),
        ),
    )
    end = stamps[0]
    print(
        json.dumps(
            {
                "import_seconds": imported - begin,
                "load_seconds": load_seconds,
                "ready_seconds": ready - imported,
                "first_iteration_seconds": end - imported,
                "after_load_seconds": end - loaded,
                "peak_rss_mb": peak_rss_mb(),
                "cache": args.cache == "on",
                "finite": bool(np.isfinite(problem.image()).all()),
            }
        )
    )
    return 0


def time_size(
    args,
    weights,
    weights_path,
    width,
    height,
    precisions,
    iterations,
    rounds,
    round_iterations,
    keep_problems=False,
    between_rounds=None,
    inputs=None,
):
    """Per-precision step times at one size: the first `iterations` from the start image (the
    first two are warm-up), then `rounds` interleaved rounds. `inputs` are the (content, style,
    start) network images (network_images' by default). Returns ({precision: times},
    {precision: image after `iterations`}, problems)."""
    config = config_for(args, width, height, weights_path)
    content, style, start = inputs or network_images(config, width, height)
    problems = {p: Problem(weights, config, p, content, style, start) for p in precisions}
    times = {p: [] for p in precisions}
    images = {}
    for p, problem in problems.items():
        run = [problem.step() for _ in range(iterations)]
        times[p].extend(run[2:] if len(run) > 2 else run[-1:])
        images[p] = problem.image()
    for _ in range(rounds):
        for p, problem in problems.items():
            times[p].extend(problem.step() for _ in range(round_iterations))
        if between_rounds is not None:
            between_rounds()
    if not keep_problems:
        for problem in problems.values():
            problem.close()
        problems = {}
    return times, images, problems, config


def paired_ratio(nst_times, torch_times, iterations, round_iterations) -> float:
    """The median, over the blocks that ran back to back (the first iterations less two, then
    each round), of nst's median over PyTorch's: a load that changes between rounds falls on
    both sides of each ratio alike."""
    first = max(iterations - 2, 1)

    def blocks(times):
        rest = times[first:]
        return [times[:first]] + [
            rest[i : i + round_iterations] for i in range(0, len(rest), round_iterations)
        ]

    pairs = zip(blocks(nst_times), blocks(torch_times))
    return statistics.median(
        statistics.median(a) / statistics.median(b) for a, b in pairs if a and b
    )


def network_images(config, width, height) -> tuple:
    """(content, style, start): the shipped images at width x height and the seed-0 noisy
    start, as network images (1, H, W, 3)."""
    from nst_utils.images import generate_noise_image, load_image, reshape_and_normalize_image

    content = reshape_and_normalize_image(load_image(config.content_image, (width, height)))
    style = reshape_and_normalize_image(load_image(config.style_image, (width, height)))
    return content, style, generate_noise_image(content, seed=0)


def torch_worker(weights, inputs, threads, folder, env=None):
    """The PyTorch loop (torch_loop.Worker) on these weights and (content, style, start), in its
    own process with `threads` threads; None, with a line saying why, without PyTorch."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from torch_loop import Worker, torch_missing, write_prepared

    missing = torch_missing()
    if missing:
        print(missing, flush=True)
        return None
    npz = write_prepared(weights, *inputs, Path(folder) / "torch-inputs.npz")
    return Worker(npz, threads, env)


def torch_comparison(weights_path, width, height, iterations) -> dict:
    """Peak memory (resident, and anonymous), seconds per iteration and time from the weights
    to the first step of nst's loop and of the same loop in PyTorch (benchmarks/torch_loop.py),
    each in a fresh process at width x height; skipped, with a line saying so, without PyTorch."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import memory
    from torch_loop import torch_missing

    tf_run = memory.in_child(
        f"m.tf_child({str(weights_path)!r}, {width}, {height}, 1, 'adam', 'float32', {iterations})"
    )
    figures = {
        "loop_peak_rss_mb": tf_run.get("peak_rss_mb"),
        "loop_estimate_mb": tf_run.get("estimate_mb"),
        "loop_peak_anon_mb": tf_run.get("peak_anon_mb"),
        "loop_first_iteration_seconds": tf_run.get("first_iteration_seconds"),
    }
    print(
        f"nst's loop at {width}x{height}: peak {tf_run.get('peak_rss_mb')} MB (estimated "
        f"{tf_run.get('estimate_mb')} MB before building)",
        flush=True,
    )
    missing = torch_missing()
    if missing:
        print(missing, flush=True)
        figures["torch"] = None
        return figures
    with tempfile.TemporaryDirectory(prefix="nst-torch-") as folder:  # this run's own inputs
        npz = Path(folder) / f"torch-inputs-{width}x{height}.npz"
        memory.in_child(
            f"__import__('torch_loop').prepare({str(weights_path)!r}, {width}, "
            f"{height}, {str(npz)!r}) and {{}}"
        )
        torch = memory.in_child(
            f"__import__('torch_loop').run_prepared({str(npz)!r}, {iterations})"
        )
    figures["loop_start_costs"] = memory.in_child(
        f"m.start_costs_tf({str(weights_path)!r}, {width}, {height})"
    )
    figures.update(
        {
            "torch_peak_rss_mb": torch.get("peak_rss_mb"),
            "torch_seconds_per_iteration": torch.get("seconds_per_iteration"),
            "torch_start_costs": torch.get("start_costs"),
            "loop_seconds_per_iteration_same_run": tf_run.get("seconds_per_iteration"),
            "torch_peak_anon_mb": torch.get("peak_anon_mb"),
            "torch_first_iteration_seconds": torch.get("first_iteration_seconds"),
            "loop_framework_mb": tf_run.get("framework_mb"),
            "torch_framework_mb": torch.get("framework_mb"),
        }
    )
    print(
        f"PyTorch loop at {width}x{height}: peak {torch.get('peak_rss_mb')} MB, "
        f"{torch.get('seconds_per_iteration')} s per iteration (nst's: "
        f"{tf_run.get('seconds_per_iteration')} s)",
        flush=True,
    )
    print(
        f"peak anonymous memory (what a machine without swap cannot give back): nst "
        f"{tf_run.get('peak_anon_mb')} MB, PyTorch {torch.get('peak_anon_mb')} MB",
        flush=True,
    )
    print(memory.framework_line(tf_run, torch), flush=True)
    print(
        "weights in memory to the first step done: nst "
        f"{_seconds(tf_run, 'first_iteration_seconds')}, PyTorch "
        f"{_seconds(torch, 'first_iteration_seconds')}",
        flush=True,
    )
    return figures


def _seconds(figures, key) -> str:
    value = figures.get(key)
    return "n/a" if value is None else f"{value:.2f} s"


def big_print(size) -> dict:
    """benchmarks/big_print.py at `size` in a fresh process: its JSON figures."""
    done = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve().parent / "big_print.py"),
            "--size",
            f"{size[0]}x{size[1]}",
            "--iterations",
            "3",
            "3",
            "3",
        ],
        capture_output=True,
        text=True,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr.strip().splitlines() or ["(no output)"])[-1]}
    figures = json.loads(lines[-1])
    print(
        f"big print {figures['size']}: peak {figures['peak_rss_mb']:.0f} MB; per scale "
        + ", ".join(f"{x['size']} {x['seconds_per_iteration']} s/it" for x in figures["scales"]),
        flush=True,
    )
    return figures


def emulate_isa(isa) -> dict:
    """Put ISA_EMULATION[isa] into this process's environment (a variable already set is kept)
    before TensorFlow loads, with nst's TensorFlow settings for a CPU of that ISA:
    {variable: value} in force; {} without an isa."""
    if isa is None:
        return {}
    if "tensorflow" in sys.modules:
        raise RuntimeError("--isa must take effect before TensorFlow is imported")
    from nst_utils.hardware import apply_tensorflow_environment

    for name, value in ISA_EMULATION[isa].items():
        os.environ.setdefault(name, value)
    apply_tensorflow_environment()  # e.g. frozen weights, as on a CPU with AVX2 only
    return {name: os.environ[name] for name in ISA_EMULATION[isa]}


def describe_machine() -> dict:
    import tensorflow as tf

    from nst_utils.hardware import bfloat16_support, core_count, cpu_name

    try:
        from tensorflow.python.util import _pywrap_util_port

        onednn = bool(_pywrap_util_port.IsMklEnabled())
    except Exception:  # a private module: absent in some builds
        onednn = None
    from nst_utils.hardware import FROZEN_WEIGHTS, ONEDNN

    return {
        "tensorflow_environment": {name: os.environ.get(name) for name in (ONEDNN, FROZEN_WEIGHTS)},
        "cpu": cpu_name(),
        "cores": core_count(),
        "bfloat16_native": bfloat16_support(),
        "tensorflow": tf.__version__,
        "onednn": onednn,
        "loadavg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.child_first_iteration:
        return child_first_iteration(args)
    run_begin = time.perf_counter()
    emulated = emulate_isa(args.isa)
    import tensorflow as tf

    from flops import adam_step_flops, deepest_layer
    from nst_utils.weights import load_weights  # noqa: F401 (fails early if the package is broken)

    tf.compat.v1.disable_eager_execution()
    s = settings(args)
    precisions = ("float32", "bfloat16") if args.precision == "both" else (args.precision,)
    (width, height), (large_w, large_h) = s["size"], s["large"]
    figures = {
        "machine": describe_machine(),
        "size": f"{width}x{height}",
        "large_size": f"{large_w}x{large_h}",
        "precisions": list(precisions),
        "isa": args.isa,
        "isa_emulation": emulated,
    }
    machine = figures["machine"]
    if emulated:  # oneDNN limited to AVX2 has no bfloat16 instructions either
        machine["bfloat16_native"] = None
    print(
        f"machine: {machine['cpu']}, {machine['cores']} cores, native bfloat16: "
        f"{machine['bfloat16_native'] or 'no'}, TensorFlow {machine['tensorflow']} "
        f"(oneDNN {machine['onednn']}; "
        + ", ".join(f"{k}={v}" for k, v in machine["tensorflow_environment"].items())
        + f"), load average {machine['loadavg_1min']}",
        flush=True,
    )
    if emulated:
        print(
            f"emulating a CPU with {args.isa.upper()} only: "
            + ", ".join(f"{k}={v}" for k, v in emulated.items()),
            flush=True,
        )
    if "bfloat16" in precisions and not machine["bfloat16_native"]:
        print(
            "note: this CPU has no native bfloat16 (no AMX or AVX512_BF16): the bfloat16 "
            "figures measure emulation",
            flush=True,
        )

    weights_path = weights_file(args, s["full_size"])
    from flops import FMA_UNITS, blas_gflops_in_child, this_cpu_peak

    peak = this_cpu_peak(args.fma_units or FMA_UNITS, args.isa)
    figures["cpu_peak"] = peak
    print(
        f"CPU peak float32: {peak['cores']} cores x {peak['floats']} lanes x 2 x "
        f"{peak['fma_units']} FMA units (assumed; --fma-units) x {peak['ghz']} GHz = "
        + ("unknown (no clock)" if peak["peak_gflops"] is None else f"{peak['peak_gflops']:.0f}")
        + " GFLOP/s",
        flush=True,
    )
    rates = blas_gflops_in_child(s["gemm_size"], 3)

    figures["help_seconds"] = help_seconds()
    print(f"python -m nst_utils generate --help: {figures['help_seconds']:.2f} s", flush=True)
    # Time to the first iteration, each in a fresh process.
    if not args.skip_first_iteration:
        cold = first_iteration(args, weights_path, cache=False)
        figures["first_iteration_from_mat_seconds"] = cold["first_iteration_seconds"]
        figures["first_iteration_from_mat_load_seconds"] = cold["load_seconds"]
        figures["first_iteration_from_mat_peak_rss_mb"] = cold["peak_rss_mb"]
        figures["import_seconds"] = cold["import_seconds"]
        print(
            f"time to first iteration from .mat: {cold['first_iteration_seconds']:.2f} s "
            f"(weights {cold['load_seconds']:.2f} s; import of TensorFlow before that "
            f"{cold['import_seconds']:.2f} s), peak resident memory "
            f"{cold['peak_rss_mb']:.0f} MB",
            flush=True,
        )
        if has_weights_cache():
            first_iteration(args, weights_path, cache=True)  # writes the cache if missing
            warm = first_iteration(args, weights_path, cache=True)
            figures["first_iteration_from_cache_seconds"] = warm["first_iteration_seconds"]
            figures["first_iteration_from_cache_load_seconds"] = warm["load_seconds"]
            figures["first_iteration_from_cache_peak_rss_mb"] = warm["peak_rss_mb"]
            figures["first_iteration_after_cache_load_seconds"] = warm["after_load_seconds"]
            print(
                f"time to first iteration from the cache: {warm['first_iteration_seconds']:.2f}"
                f" s (weights {warm['load_seconds']:.2f} s, then "
                f"{warm['after_load_seconds']:.2f} s to the first iteration), peak resident memory "
                f"{warm['peak_rss_mb']:.0f} MB",
                flush=True,
            )
        else:
            figures["first_iteration_from_cache_seconds"] = None
            print("time to first iteration from the cache: n/a (load_weights has no cache yet)")

    weights, _ = load_weights_timed(weights_path, cache=True)
    inputs = network_images(config_for(args, width, height, weights_path), width, height)
    folder = tempfile.TemporaryDirectory(prefix="nst-torch-")
    worker = None
    if not args.no_torch:
        worker = torch_worker(weights, inputs, args.intra_op_threads, folder.name)
    torch_times = []
    if worker is not None:
        torch_times.extend(worker.steps(s["iterations"])[2:])  # the first two are warm-up

    def between_rounds():
        if worker is not None:
            torch_times.extend(worker.steps(s["round_iterations"]))
        rates.extend(blas_gflops_in_child(s["gemm_size"], 1))

    base_times, images, problems, config = time_size(
        args,
        weights,
        weights_path,
        width,
        height,
        precisions,
        s["iterations"],
        s["rounds"],
        s["round_iterations"],
        keep_problems=True,
        between_rounds=between_rounds,
        inputs=inputs,
    )
    rate, best_rate = statistics.median(rates) * 1e9, max(rates) * 1e9
    last = deepest_layer([config.content_layer, *(name for name, _ in config.style_layers)])
    flops = adam_step_flops(height, width, last)
    floor = flops / best_rate
    peak_floor = None if peak["peak_gflops"] is None else flops / (peak["peak_gflops"] * 1e9)
    figures.update(
        {
            "peak_gflops": peak["peak_gflops"],
            "blas_gflops": best_rate / 1e9,
            "blas_gflops_median": rate / 1e9,
            "blas_gflops_runs": rates,
            "step_gflop": flops / 1e9,
            "peak_floor_seconds": peak_floor,
            "blas_floor_seconds": floor,
        }
    )
    print(
        f"numpy BLAS sgemm ({s['gemm_size']}^3, float32): {best_rate / 1e9:.0f} GFLOP/s best, "
        f"{rate / 1e9:.0f} median (runs: " + ", ".join(f"{r:.0f}" for r in rates) + ")"
    )
    print(
        f"one Adam step at {width}x{height}: {flops / 1e9:.1f} GFLOP (forward to {last} plus "
        f"the gradient to the image); floors: {floor:.3f} s per iteration at the best BLAS "
        f"rate, " + ("n/a" if peak_floor is None else f"{peak_floor:.3f} s") + " at the CPU's peak"
    )

    for p in precisions:
        median = statistics.median(base_times[p])
        figures[f"{p}_seconds_per_iteration"] = median
        figures[f"{p}_iteration_samples"] = len(base_times[p])
        figures[f"{p}_iteration_min_seconds"] = min(base_times[p])
        figures[f"{p}_blas_ratio"] = median / floor
        # On a busy machine the quietest moments are the fairest comparison: best against best.
        figures[f"{p}_blas_ratio_best"] = min(base_times[p]) / floor
        figures[f"{p}_peak_ratio"] = None if peak_floor is None else median / peak_floor
        print(
            f"{p}: {median:.3f} s per iteration at {width}x{height} (median of "
            f"{len(base_times[p])}, min {min(base_times[p]):.3f}), {median / floor:.2f}x the BLAS "
            f"floor (fastest iteration: {figures[f'{p}_blas_ratio_best']:.2f}x), "
            + ("n/a" if peak_floor is None else f"{median / peak_floor:.2f}x")
            + " the CPU's peak floor"
        )
    if worker is not None:
        worker.close()
        torch_median = statistics.median(torch_times)
        nst_median = figures[f"{precisions[0]}_seconds_per_iteration"]
        paired = paired_ratio(
            base_times[precisions[0]], torch_times, s["iterations"], s["round_iterations"]
        )
        figures.update(
            {
                "torch_interleaved_seconds_per_iteration": torch_median,
                "torch_interleaved_samples": len(torch_times),
                "torch_interleaved_start_costs": list(worker.start_costs),
                "torch_cpu_capability": worker.cpu_capability,
                "nst_to_torch_ratio": nst_median / torch_median,
                "nst_to_torch_paired_ratio": paired,
                "torch_blas_ratio": torch_median / floor,
            }
        )
        print(
            f"side by side, rounds interleaved, same weights and images: nst {precisions[0]} "
            f"{nst_median:.3f} s, PyTorch {worker.version} ({worker.cpu_capability}) float32 "
            f"{torch_median:.3f} s per iteration (median of {len(torch_times)}); nst / PyTorch = "
            f"{nst_median / torch_median:.2f} (round by round: {paired:.2f})",
            flush=True,
        )
    folder.cleanup()
    if "float32" in problems:  # the costs of the start image, which PyTorch's must match
        problems["float32"].restart()
        figures["nst_start_costs"] = list(problems["float32"].painter.current_costs())
    if len(precisions) == 2:
        ratio = figures["bfloat16_seconds_per_iteration"] / figures["float32_seconds_per_iteration"]
        quality = psnr(images["bfloat16"], images["float32"], config.means)
        figures["bfloat16_to_float32_time_ratio"] = ratio
        figures[f"bfloat16_psnr_db_after_{s['iterations']}"] = quality
        print(
            f"bfloat16 / float32 time: {ratio:.2f}; PSNR of the bfloat16 image against the "
            f"float32 one after {s['iterations']} iterations: {quality:.1f} dB"
        )

    main_problem = problems[precisions[0]]
    fetch = main_problem.fetch_image_seconds()
    loop, bare = main_problem.loop_seconds_per_iteration(max(3, s["round_iterations"]))
    figures["image_fetch_seconds"] = fetch
    figures["loop_seconds_per_iteration"] = loop
    figures["loop_bare_step_seconds"] = bare
    print(
        f"training.optimize ({precisions[0]}): {loop:.3f} s per iteration against {bare:.3f} s "
        f"for the bare step just after; fetching the image, which it does every iteration, "
        f"takes {fetch * 1000:.1f} ms"
    )
    # Where the float32 step's time goes: one traced step, op types summed.
    profile = main_problem.op_profile(top=12)
    figures["op_profile"] = profile
    op_seconds = dict((kind, sec) for kind, sec, _ in profile)
    forward = sum(
        sec for kind, sec in op_seconds.items() if "Conv2D" in kind and "Backprop" not in kind
    )
    backward = sum(sec for kind, sec in op_seconds.items() if "Conv2DBackpropInput" in kind)
    if forward and backward:
        figures["conv_forward_gflops"] = flops / 2 / forward / 1e9
        figures["conv_input_gradient_gflops"] = flops / 2 / backward / 1e9
        figures["conv_seconds_traced"] = forward + backward
        print(
            f"traced {precisions[0]} step: convolutions {forward + backward:.3f} s "
            f"({(forward + backward) / floor:.2f}x the BLAS floor): forward at "
            f"{figures['conv_forward_gflops']:.0f} GFLOP/s, input gradient at "
            f"{figures['conv_input_gradient_gflops']:.0f} GFLOP/s, against BLAS's "
            f"{best_rate / 1e9:.0f}; other ops "
            + "; ".join(f"{kind} {sec:.3f} s" for kind, sec, _ in profile if "Conv2D" not in kind)
        )
    if args.profile:
        print(
            "time per op type in one traced step: "
            + "; ".join(f"{kind} {sec:.3f} s x{count}" for kind, sec, count in profile)
        )
    if "bfloat16" in problems and precisions[0] != "bfloat16":
        low = problems["bfloat16"].op_profile(top=8)
        figures["bfloat16_op_profile"] = low
        print(
            "traced bfloat16 step, time per op type: "
            + "; ".join(f"{kind} {sec:.3f} s x{count}" for kind, sec, count in low)
        )
    for problem in problems.values():
        problem.close()
    del problems, main_problem  # free the base-size graphs before building the large ones
    figures["peak_rss_mb_after_base_size"] = peak_rss_mb()

    # Fewer samples at the large size (each costs 4x): one warm-up, then interleaved rounds.
    large_times, _, _, _ = time_size(
        args,
        weights,
        weights_path,
        large_w,
        large_h,
        precisions,
        2,
        max(1, s["rounds"] - 1),
        max(1, s["round_iterations"] // 2),
    )
    pixels = (large_w * large_h) / (width * height)
    figures["pixel_ratio"] = pixels
    for p in precisions:
        median = statistics.median(large_times[p])
        growth = median / figures[f"{p}_seconds_per_iteration"]
        figures[f"{p}_large_seconds_per_iteration"] = median
        figures[f"{p}_large_to_base_ratio"] = growth
        print(
            f"{p}: {median:.3f} s per iteration at {large_w}x{large_h} (median of "
            f"{len(large_times[p])}), {growth:.2f}x the {width}x{height} time for "
            f"{pixels:.2f}x the pixels"
        )
    if not args.no_torch:
        figures.update(torch_comparison(weights_path, width, height, s["iterations"] // 2 + 2))
    if args.big_print is not None:
        figures["big_print"] = big_print(args.big_print)
    figures["peak_rss_mb"] = peak_rss_mb()
    figures["benchmark_seconds"] = time.perf_counter() - run_begin
    print(
        f"peak resident memory of this process: {figures['peak_rss_mb']:.0f} MB; "
        f"benchmark took {figures['benchmark_seconds']:.0f} s"
    )
    print(json.dumps(figures))
    return 0


def run(argv=None) -> int:
    """main(), with nst's one-line errors (a missing weights file, a bad size) as `error: ...`."""
    from nst_utils.errors import NSTError

    try:
        return main(argv)
    except NSTError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(run())
