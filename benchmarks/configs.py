"""Which configuration runs nst's float32 iteration fastest here, against PyTorch and the floors.

    python benchmarks/configs.py            # 400x300, every group (about 10 minutes on 2 cores)
    python benchmarks/configs.py --quick    # a smoke run at 64x48

TensorFlow decides oneDNN once, at import, and sizes its thread pools once per process, so each
configuration is its own worker process, built once and then run a round at a time: the rounds
of the workers of a group are interleaved, so a change in the machine's load falls on all of
them alike. Groups run one after another, to keep at most three networks in memory at once.

- native: TensorFlow with oneDNN (nst's default), without it, and PyTorch;
- threads: oneDNN with 1 and 2 threads inside an op, and with XLA's auto-clustering
  (`global_jit_level` ON_1, the only XLA a tf.compat.v1 session offers);
- avx2: an AVX2-only CPU emulated on this one: oneDNN limited to AVX2 (ONEDNN_MAX_CPU_ISA),
  TensorFlow without oneDNN (its own kernels are built for AVX, the same code on either CPU),
  and PyTorch with ATEN_CPU_CAPABILITY=avx2 and ONEDNN_MAX_CPU_ISA=AVX2;
- frozen, frozen-avx2: natively and as on an AVX2-only CPU, oneDNN with and without
  TF_ONEDNN_ASSUME_FROZEN_WEIGHTS (filters kept in oneDNN's layout), beside PyTorch.

The groups without a setting of their own run with nst's (nst_utils.hardware). Besides the
medians, each row has its ratio to the group's first worker taken round by round (the median
of per-round ratios), which a change in the machine's load between rounds does not skew.

Each TensorFlow worker reports the costs of the start image and, after the same steps, its
image: its PSNR against the group's first worker says whether the configuration keeps the
results within float tolerance. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

ONEDNN_ON = {"TF_ENABLE_ONEDNN_OPTS": "1"}
ONEDNN_OFF = {"TF_ENABLE_ONEDNN_OPTS": "0"}
AVX2 = {"ONEDNN_MAX_CPU_ISA": "AVX2"}
#: XLA's auto-clustering is off on CPUs unless this flag says otherwise.
XLA_FLAGS = {"TF_XLA_FLAGS": "--tf_xla_auto_jit=1 --tf_xla_cpu_global_jit"}
#: oneDNN keeps each convolution's filter in its own layout across steps (VGG's weights never
#: change within a session) instead of reordering it every step.
FROZEN = {"TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": "1"}
NOT_FROZEN = {"TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": "0"}

#: PyTorch as on an AVX2-only CPU: its own kernels and oneDNN's limited to AVX2.
TORCH_AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", **AVX2}

#: group -> [(name, kind, environment, options)]; the first TensorFlow worker is the reference.
GROUPS = {
    "native": [
        ("nst oneDNN", "tf", ONEDNN_ON, {}),
        ("nst no oneDNN", "tf", ONEDNN_OFF, {}),
        ("PyTorch", "torch", {}, {}),
    ],
    "threads": [
        ("nst oneDNN 2 threads", "tf", ONEDNN_ON, {"intra": 2}),
        ("nst oneDNN 1 thread", "tf", ONEDNN_ON, {"intra": 1}),
        ("nst oneDNN XLA", "tf", {**ONEDNN_ON, **XLA_FLAGS}, {"xla": True}),
    ],
    "avx2": [
        ("nst oneDNN AVX2", "tf", {**ONEDNN_ON, **AVX2}, {}),
        ("nst no oneDNN (AVX)", "tf", ONEDNN_OFF, {}),
        ("PyTorch AVX2", "torch", TORCH_AVX2, {}),
    ],
    "frozen": [
        ("nst oneDNN", "tf", {**ONEDNN_ON, **NOT_FROZEN}, {}),
        ("nst oneDNN frozen", "tf", {**ONEDNN_ON, **FROZEN}, {}),
        ("PyTorch", "torch", {}, {}),
    ],
    "frozen-avx2": [
        ("nst oneDNN AVX2", "tf", {**ONEDNN_ON, **AVX2, **NOT_FROZEN}, {}),
        ("nst oneDNN AVX2 frozen", "tf", {**ONEDNN_ON, **AVX2, **FROZEN}, {}),
        ("PyTorch AVX2", "torch", TORCH_AVX2, {}),
    ],
}


def tf_worker(args) -> int:
    """In a worker process: build nst's float32 problem, then serve rounds (see torch_loop's
    `serve` for the protocol), "image PATH" saving the current image."""
    import numpy as np

    import bench
    import nst_utils.session as session

    if args.xla:
        plain = session.session_config

        def with_xla(config=None):
            proto = plain(config)
            level = session.tf1.OptimizerOptions.ON_1
            proto.graph_options.optimizer_options.global_jit_level = level
            return proto

        session.session_config = with_xla
    import tensorflow as tf
    from tensorflow.python.util import _pywrap_util_port

    tf.compat.v1.disable_eager_execution()
    width, height = args.size
    options = argparse.Namespace(inter_op_threads=None, intra_op_threads=args.intra)
    config = bench.config_for(options, width, height, args.weights)
    from nst_utils.weights import load_weights

    weights = load_weights(args.weights)
    content, style, start = bench.network_images(config, width, height)
    problem = bench.Problem(weights, config, "float32", content, style, start)

    def say(figures):
        print(json.dumps(figures), flush=True)

    say(
        {
            "start_costs": list(problem.painter.current_costs()),
            "onednn": bool(_pywrap_util_port.IsMklEnabled()),
        }
    )
    for line in sys.stdin:
        word = line.strip()
        if word in ("", "quit"):
            break
        if word.startswith("image "):
            np.save(word[6:], problem.image())
            say({"saved": word[6:]})
            continue
        times, cpu = [], []
        for _ in range(int(word)):
            before = time.process_time()
            times.append(problem.step())
            cpu.append(time.process_time() - before)
        say({"times": times, "cpu_times": cpu})
    problem.close()
    return 0


class TFWorker:
    """The client of tf_worker: nst's problem in its own process with `env` added."""

    def __init__(self, args, env, options):
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--tf-worker",
            "--weights",
            str(args.weights),
            "--size",
            f"{args.size[0]}x{args.size[1]}",
        ]
        if options.get("intra"):
            command += ["--intra", str(options["intra"])]
        if options.get("xla"):
            command.append("--xla")
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **env},
        )
        first = self._ask(None)
        self.start_costs, self.onednn = tuple(first["start_costs"]), first["onednn"]
        self.cpu_times = []  # CPU seconds (all threads) of each iteration `steps` ran

    def _ask(self, line):
        if line is not None:
            self.process.stdin.write(line + "\n")
            self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            self.process.wait()
            raise RuntimeError(f"a TensorFlow worker ended (status {self.process.returncode})")
        return json.loads(answer)

    def steps(self, count):
        answer = self._ask(str(count))
        self.cpu_times.extend(answer["cpu_times"])
        return answer["times"]

    def image(self, path):
        import numpy as np

        self._ask(f"image {path}")
        return np.load(path)

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
            self.process.wait()


def run_group(args, name, members, folder) -> list:
    """Start the group's workers one after another, then interleave their rounds; a row of
    figures per worker."""
    from torch_loop import Worker, torch_missing

    import bench

    workers = []
    for label, kind, env, options in members:
        if kind == "torch":
            if torch_missing():
                print(f"{label}: skipped ({torch_missing()})", flush=True)
                continue
            workers.append((label, kind, Worker(args.npz, options.get("intra"), env)))
        else:
            workers.append((label, kind, TFWorker(args, env, options)))
    times = {label: [] for label, _, _ in workers}
    rounds = {label: [] for label, _, _ in workers}  # each round's median
    for label, _, worker in workers:
        times[label].extend(worker.steps(args.warmup)[2:])  # the first two are warm-up
    for _ in range(args.rounds):
        for label, _, worker in workers:
            step_times = worker.steps(args.round_iterations)
            times[label].extend(step_times)
            rounds[label].append(statistics.median(step_times))
    rows, reference = [], None
    from nst_utils.settings import DEFAULTS

    for label, kind, worker in workers:
        row = {
            "group": name,
            "config": label,
            "median_seconds": statistics.median(times[label]),
            "min_seconds": min(times[label]),
            "samples": len(times[label]),
            # CPU time of the worker's threads per iteration, warm-up excluded: on a machine
            # loaded past its cores, the work done rather than the wait for a core.
            "median_cpu_seconds": statistics.median(worker.cpu_times[args.warmup :]),
            "start_costs": list(worker.start_costs),
            # Against the group's first worker, round by round (the rounds ran back to back, so
            # each pair saw about the same load): the median of those ratios.
            "paired_ratio_to_first": statistics.median(
                mine / first for mine, first in zip(rounds[label], rounds[workers[0][0]])
            ),
        }
        if kind == "tf":
            row["onednn"] = worker.onednn
            image = worker.image(str(Path(folder) / f"{len(rows)}.npy"))
            if reference is None:
                reference = (worker.start_costs, image)
            row["start_cost_rel_diff"] = max(
                abs(a - b) / abs(b) for a, b in zip(worker.start_costs, reference[0])
            )
            row["psnr_db_against_first"] = bench.psnr(image, reference[1], DEFAULTS.means)
        worker.close()
        rows.append(row)
    return rows


def parse_args(argv=None):
    import bench

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run at 64x48")
    parser.add_argument("--size", type=bench.parse_size, default=None)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--groups", default=",".join(GROUPS), help="which groups, in order")
    parser.add_argument("--warmup", type=int, default=None, help="first iterations (4)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (4)")
    parser.add_argument("--round-iterations", type=int, default=None, help="per round (3)")
    parser.add_argument("--fma-units", type=int, default=None, help="for the peak (2)")
    parser.add_argument("--tf-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--intra", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--xla", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.size = args.size or ((64, 48) if args.quick else (400, 300))
    args.warmup = args.warmup or (3 if args.quick else 4)
    args.rounds = args.rounds or (1 if args.quick else 4)
    args.round_iterations = args.round_iterations or (1 if args.quick else 3)
    unknown = [g for g in args.groups.split(",") if g not in GROUPS]
    if unknown:
        parser.error(f"unknown group(s) {unknown}; known: {', '.join(GROUPS)}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.tf_worker:
        return tf_worker(args)
    import bench
    import flops

    args.weights = bench.weights_file(args, not args.quick)
    width, height = args.size
    step = flops.adam_step_flops(height, width)
    fma = args.fma_units or flops.FMA_UNITS
    peaks = {isa: flops.this_cpu_peak(fma, isa)["peak_gflops"] for isa in (None, "avx2")}
    blas = {
        "native": max(flops.blas_gflops_in_child(2048 if args.quick else 4096, 3)),
        "avx2": max(
            flops.blas_gflops_in_child(
                2048 if args.quick else 4096, 3, {"OPENBLAS_CORETYPE": "Haswell"}
            )
        ),
    }
    load = os.getloadavg()[0]
    print(
        f"{width}x{height}, {step / 1e9:.1f} GFLOP per step; peak {peaks[None]} GFLOP/s "
        f"(AVX2: {peaks['avx2']}), BLAS best {blas['native']:.0f} GFLOP/s (OpenBLAS's AVX2 "
        f"kernels: {blas['avx2']:.0f}); load average {load:.2f}",
        flush=True,
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="nst-configs-") as folder:
        from nst_utils.settings import DEFAULTS
        from nst_utils.weights import load_weights
        from torch_loop import write_prepared

        config = DEFAULTS.replace(image_width=width, image_height=height)
        args.npz = write_prepared(
            load_weights(args.weights),
            *bench.network_images(config, width, height),
            Path(folder) / "torch.npz",
        )
        for name in args.groups.split(","):
            group_rows = run_group(args, name, GROUPS[name], folder)
            isa = "avx2" if "avx2" in name else "native"
            for row in group_rows:
                row["blas_ratio"] = row["median_seconds"] / (step / blas[isa] / 1e9)
                peak = peaks["avx2" if isa == "avx2" else None]
                row["peak_ratio"] = (
                    None if peak is None else row["median_seconds"] * peak / (step / 1e9)
                )
                print(
                    f"{name:8} {row['config']:24} {row['median_seconds']:.3f} s median "
                    f"(min {row['min_seconds']:.3f}, n={row['samples']}; CPU "
                    f"{row['median_cpu_seconds']:.3f} s), "
                    f"{row['paired_ratio_to_first']:.3f}x the first, round by round, "
                    f"{row['blas_ratio']:.2f}x BLAS floor, "
                    + ("" if row["peak_ratio"] is None else f"{row['peak_ratio']:.2f}x peak floor")
                    + (
                        f", PSNR {row['psnr_db_against_first']:.1f} dB, start costs within "
                        f"{row['start_cost_rel_diff']:.1e}"
                        if "psnr_db_against_first" in row
                        else ""
                    ),
                    flush=True,
                )
            rows.extend(group_rows)
    print(
        json.dumps(
            {
                "size": f"{width}x{height}",
                "step_gflop": step / 1e9,
                "peak_gflops": peaks[None],
                "peak_gflops_avx2": peaks["avx2"],
                "blas_gflops": blas["native"],
                "blas_gflops_avx2": blas["avx2"],
                "loadavg_before": load,
                "loadavg_after": os.getloadavg()[0],
                "rows": rows,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
