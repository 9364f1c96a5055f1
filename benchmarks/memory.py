"""Peak memory of real runs, against `nst_utils.memory`'s estimate and the PyTorch loop.

    python benchmarks/memory.py                         # 400x300 TF vs PyTorch, and the estimate
    python benchmarks/memory.py --sizes 200x150 400x300 800x600 --styles 1 2 --optimizers adam
    python benchmarks/memory.py --stages --sizes 400x300        # where TensorFlow's memory goes

Each run is a fresh process with a full-size random-weight VGG-19 (written once under the
system's temporary folder; the real weights are not needed, the arithmetic is the same): it
loads the weights (from nst's cache), builds the graph and the costs as `generate` does, and
runs a few iterations. Printed per run: the peak resident memory (getrusage), the estimate made
before anything was built, their error, and seconds per iteration; with --stages, the resident
memory after each stage. The PyTorch loop (benchmarks/torch_loop.py) runs at the same sizes
when PyTorch is installed. One JSON line at the end holds every figure.
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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
for folder in (ROOT, HERE):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import nst_utils  # noqa: E402,F401  (TensorFlow then loads as `generate` loads it: quiet, without Keras)
from resident import AnonymousPeak, peak_rss_mb, resident_split_mb  # noqa: E402,F401


def parse_size(text: str) -> tuple:
    width, height = (int(v) for v in text.lower().split("x"))
    return width, height


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / (1 << 20)


def random_weights() -> Path:
    """The full-size random-weights file the benchmarks share."""
    from nst_utils.weights.synthetic import benchmark_weights

    return benchmark_weights(full_size=True)


def _network_images(width, height, styles=1):
    from nst_utils.config import PROJECT_ROOT
    from nst_utils.images import generate_noise_image, load_image, reshape_and_normalize_image

    content = reshape_and_normalize_image(
        load_image(PROJECT_ROOT / "images" / "louvre.jpg", (width, height))
    )
    style = reshape_and_normalize_image(
        load_image(PROJECT_ROOT / "images" / "sandstone.jpg", (width, height))
    )
    return content, [style] * styles, generate_noise_image(content, seed=0)


def _settings(width, height, styles=1, optimizer="adam", precision="float32"):
    from nst_utils.settings import DEFAULTS

    return DEFAULTS.replace(
        image_width=width,
        image_height=height,
        optimizer=optimizer,
        precision=precision,
        style_images=DEFAULTS.style_images * styles,
        style_blend_weights=(1.0 / styles,) * styles,
        seed=0,
        save_every=0,
    )


def tf_child(weights_path, width, height, styles, optimizer, precision, iterations) -> dict:
    """In this (fresh) process: one run through nst's painting core (`stylize.Painter`, what
    `generate` runs), with the estimate made before anything is built; figures as a dict."""
    stages = {"start": rss_mb()}
    import tensorflow as tf

    from nst_utils import memory
    from nst_utils.stylize import Painter
    from nst_utils.training import Hooks
    from nst_utils.weights import load_weights

    tf.compat.v1.disable_eager_execution()
    estimate = memory.estimate_peak(
        width, height, styles=styles, optimizer=optimizer, precision=precision
    )
    stages["imported"] = rss_mb()
    framework = resident_split_mb()
    weights = load_weights(weights_path)
    stages["weights"] = rss_mb()
    content, style_images, start = _network_images(width, height, styles)
    stamps = []
    settings = _settings(width, height, styles, optimizer, precision)
    begin = time.perf_counter()
    with Painter(settings, weights, content, style_images) as painter:
        stages["built"] = rss_mb()
        painter.run(
            start,
            False,
            Hooks(report=None, on_step=lambda *_: stamps.append(time.perf_counter())),
            iterations=iterations,
        )
        stages["ran"] = rss_mb()
    times = [b - a for a, b in zip(stamps, stamps[1:])]
    return {
        "engine": "tensorflow",
        "size": f"{width}x{height}",
        "styles": styles,
        "optimizer": optimizer,
        "precision": precision,
        "iterations": iterations,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "estimate_mb": round(estimate.total_mb, 1),
        "seconds_per_iteration": statistics.median(times[1:] or times) if times else None,
        # From weights in memory to the first step done: graph, targets, session, one step.
        "first_iteration_seconds": stamps[0] - begin if stamps else None,
        "stages_rss_mb": {k: round(v, 1) for k, v in stages.items()},
        "framework_mb": framework,
    }


def libraries_child() -> dict:
    """In this (fresh) process: the resident memory that loading TensorFlow's two C++ libraries
    alone adds (their relocations and static initialisers, no Python module of TensorFlow), as
    {"before": split, "after": split}; the floor under any TensorFlow program's resident peak."""
    import ctypes
    import importlib.util

    import numpy  # noqa: F401  (both sides of the comparison have numpy loaded)

    folder = Path(importlib.util.find_spec("tensorflow").submodule_search_locations[0])
    before = resident_split_mb()
    for name in ("libtensorflow_framework.so.2", "libtensorflow_cc.so.2"):
        ctypes.CDLL(str(folder / name), mode=ctypes.RTLD_GLOBAL)
    return {"before": before, "after": resident_split_mb()}


def step_tensors_child(weights_path, width, height) -> dict:
    """In this (fresh) process: the most bytes TensorFlow's CPU allocator held at once during
    one traced Adam step at width x height (the step's tensors: activations kept for the
    backward pass, gradients; not the weights, which stay in the cache file's pages), in MB;
    None where the trace carries no allocator figures (some CPUs and TensorFlow builds)."""
    import tensorflow as tf

    from nst_utils.stylize import Painter
    from nst_utils.weights import load_weights

    tf1 = tf.compat.v1
    tf1.disable_eager_execution()
    content, styles, start = _network_images(width, height)
    with Painter(_settings(width, height), load_weights(weights_path), content, styles) as painter:
        painter.start(start)
        painter.sess.run(painter.train_step)
        metadata = tf1.RunMetadata()
        painter.sess.run(
            painter.train_step,
            run_metadata=metadata,
            options=tf1.RunOptions(trace_level=tf1.RunOptions.FULL_TRACE),
        )
    peak = max(
        (
            memory.allocator_bytes_in_use
            for device in metadata.step_stats.dev_stats
            for node in device.node_stats
            for memory in node.memory
        ),
        default=0,
    )
    return {"step_tensors_peak_mb": round(peak / (1 << 20), 1) if peak else None}


def start_costs_tf(weights_path, width, height) -> tuple:
    """nst's (J, J_content, J_style) of the benchmark's start image, to check the PyTorch loop."""
    import tensorflow as tf

    from nst_utils.stylize import Painter
    from nst_utils.weights import load_weights

    tf.compat.v1.disable_eager_execution()
    content, styles, start = _network_images(width, height)
    with Painter(_settings(width, height), load_weights(weights_path), content, styles) as painter:
        painter.start(start)
        return painter.current_costs()


def framework_line(tf_run: dict, torch_run: dict) -> str:
    """One line splitting each loop's peak into its framework's resident memory just after the
    import (and how much of that is the libraries' file pages) and what the run adds above it."""
    parts = []
    for name, run in (("nst (TensorFlow)", tf_run), ("PyTorch", torch_run)):
        framework, peak = run.get("framework_mb"), run.get("peak_rss_mb")
        if not framework or peak is None:
            parts.append(f"{name}: n/a")
            continue
        parts.append(
            f"{name}: {framework['rss']:.0f} MB after the import ({framework['file']:.0f} "
            f"MB of it file pages), the run adds {peak - framework['rss']:.0f} MB"
        )
    return "resident peak split: " + "; ".join(parts)


def in_child(call: str) -> dict:
    """Run `call` (an expression of this module, giving a dict) in a fresh interpreter; its
    result, with the child's peak anonymous memory (`AnonymousPeak`) as peak_anon_mb."""
    code = (
        f"import sys, json; sys.path[:0] = [{str(HERE)!r}, {str(ROOT)!r}]; import memory as m; "
        f"anon = m.AnonymousPeak(); result = {call}; "
        f"print('@@' + json.dumps(dict(result, peak_anon_mb=anon.mb()) "
        f"if isinstance(result, dict) else result))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    lines = [line[2:] for line in done.stdout.splitlines() if line.startswith("@@")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"error": f"exit {done.returncode}: {tail}"}
    return json.loads(lines[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=parse_size, default=[(400, 300)])
    parser.add_argument("--styles", nargs="+", type=int, default=[1])
    parser.add_argument("--optimizers", nargs="+", default=["adam"])
    parser.add_argument("--precisions", nargs="+", default=["float32"])
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args(argv)
    weights = random_weights()
    in_child(f"m.tf_child({str(weights)!r}, 8, 8, 1, 'adam', 'float32', 1)")  # writes the cache
    figures = {"runs": [], "libraries": in_child("m.libraries_child()")}
    if "error" not in figures["libraries"]:
        before, after = figures["libraries"]["before"], figures["libraries"]["after"]
        added = after["rss"] - before["rss"]
        print(
            f"TensorFlow's C++ libraries loaded alone (no Python module): +{added:.0f}"
            f" MB resident, {after['file'] - before['file']:.0f} MB of it file pages",
            flush=True,
        )
    for width, height in args.sizes:
        for styles in args.styles:
            for optimizer in args.optimizers:
                for precision in args.precisions:
                    result = in_child(
                        f"m.tf_child({str(weights)!r}, {width}, {height}, {styles}, "
                        f"{optimizer!r}, {precision!r}, {args.iterations})"
                    )
                    if "error" not in result:
                        result.update(
                            in_child(f"m.step_tensors_child({str(weights)!r}, {width}, {height})")
                        )
                        result["estimate_error"] = round(
                            result["estimate_mb"] / result["peak_rss_mb"] - 1, 3
                        )
                    figures["runs"].append(result)
                    print(json.dumps(result), flush=True)
        if args.no_torch:
            continue
        from torch_loop import torch_missing

        missing = torch_missing()
        if missing:
            print(missing, flush=True)
            figures["torch"] = {"skipped": missing}
            continue
        with tempfile.TemporaryDirectory(prefix="nst-torch-") as folder:  # this run's own inputs
            npz = Path(folder) / f"torch-inputs-{width}x{height}.npz"
            in_child(
                f"__import__('torch_loop').prepare({str(weights)!r}, {width}, {height}, "
                f"{str(npz)!r}) and {{}}"
            )
            torch = in_child(
                f"__import__('torch_loop').run_prepared({str(npz)!r}, {args.iterations})"
            )
        torch["tensorflow_start_costs"] = in_child(
            f"m.start_costs_tf({str(weights)!r}, {width}, {height})"
        )
        figures.setdefault("torch_runs", []).append(torch)
        print(json.dumps(torch), flush=True)
        same_size = [r for r in figures["runs"] if r.get("size") == f"{width}x{height}"]
        if same_size:
            print(framework_line(same_size[0], torch), flush=True)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
