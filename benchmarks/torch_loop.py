"""The same style-transfer loop in PyTorch, to compare nst's memory and speed against.

    python benchmarks/torch_loop.py --weights VGG.mat --size 400x300 --iterations 10

VGG-19 to conv5_1 with average pools, the content cost at conv4_2, the style cost at conv1_1,
conv2_1, conv3_1, conv4_1 and conv5_1 (0.2 each), J = 10 J_content + 40 J_style, Adam at 2.0
on the image, from the same noisy start, with the same weights read by nst's loader. PyTorch is
not one of nst's requirements: without it this script prints a line saying so and exits 0
(`pip install torch` to run it).

Prints one JSON line: peak resident memory, seconds per iteration (median), and the three
costs of the start image, which must match nst's own for the comparison to mean anything.

`prepare` writes the weights and the three network images to one `.npz`, so that `run_prepared`
measures PyTorch in a process that never imports TensorFlow (nst's loader does, as part of
the nst_utils package); `run` reads the weights and images with nst_utils itself.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _folder in (ROOT, Path(__file__).resolve().parent):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from resident import peak_rss_mb, resident_split_mb  # noqa: E402

STYLE_LAYERS = (
    ("conv1_1", 0.2),
    ("conv2_1", 0.2),
    ("conv3_1", 0.2),
    ("conv4_1", 0.2),
    ("conv5_1", 0.2),
)
CONTENT_LAYER = "conv4_2"
#: VGG-19's conv layers up to conv5_1, in order.
LAYERS = (
    "conv1_1",
    "conv1_2",
    "conv2_1",
    "conv2_2",
    "conv3_1",
    "conv3_2",
    "conv3_3",
    "conv3_4",
    "conv4_1",
    "conv4_2",
    "conv4_3",
    "conv4_4",
    "conv5_1",
)


def torch_missing() -> str | None:
    """None when PyTorch imports, else the line to print instead of the comparison."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return "PyTorch is not installed: skipping the PyTorch comparison (pip install torch)"
    return None


class TorchVGG:
    """VGG-19's conv layers up to conv5_1 as PyTorch tensors, from nst's `VGGWeights`.

    Kernels go from MatConvNet's (3, 3, in, out) to PyTorch's (out, in, 3, 3), in a copy;
    weights whose `layout` is "oihw" (from `load_prepared`) are PyTorch's already and are used
    as they are, without a second copy. Images are (1, 3, H, W). Pools are 2x2 averages of
    stride 2 that, like TensorFlow's SAME pools, average only the pixels inside the image at an
    odd edge.
    """

    def __init__(self, weights):
        import numpy as np
        import torch

        prepared = getattr(weights, "layout", "hwio") == "oihw"
        self.layers = []
        for name in LAYERS:
            kernel, bias = weights.conv[name]
            if not prepared:
                kernel = np.transpose(kernel, (3, 2, 0, 1))
            k = torch.from_numpy(np.ascontiguousarray(kernel, dtype=np.float32))
            self.layers.append((name, k, torch.from_numpy(np.array(bias, np.float32).reshape(-1))))

    def __call__(self, image) -> dict:
        """{layer name: ReLU output (1, C, h, w)} for every conv layer up to conv5_1."""
        import torch.nn.functional as F

        out, x = {}, image
        for name, kernel, bias in self.layers:
            if name.endswith("_1") and name != "conv1_1":
                x = F.avg_pool2d(x, 2, 2, ceil_mode=True, count_include_pad=False)
            x = F.relu(F.conv2d(x, kernel, bias, padding=1))
            out[name] = x
        return out


def gram(a):
    """(1, C, h, w) -> (C, C): A A^T with A the (C, h*w) unrolled activations."""
    flat = a.reshape(a.shape[1], -1)
    return flat @ flat.T


class TorchLoop:
    """Costs and Adam of the original problem on one content and one style image (numpy
    network images (1, H, W, 3), mean pixel subtracted)."""

    def __init__(self, weights, content, style, start, learning_rate=2.0, alpha=10.0, beta=40.0):
        import torch

        self.torch = torch
        self.net = TorchVGG(weights)
        self.alpha, self.beta = alpha, beta

        def to_nchw(a):
            return torch.from_numpy(a.astype("float32").transpose(0, 3, 1, 2).copy())

        with torch.no_grad():
            self.a_C = self.net(to_nchw(content))[CONTENT_LAYER]
            style_out = self.net(to_nchw(style))
            self.grams = {name: gram(style_out[name]) for name, _ in STYLE_LAYERS}
            self.sizes = {name: style_out[name].shape for name, _ in STYLE_LAYERS}
            del style_out
        self.image = to_nchw(start).requires_grad_(True)
        self.optimizer = torch.optim.Adam([self.image], lr=learning_rate)

    def costs(self, out):
        """(J, J_content, J_style) as tensors, the formulas of nst_utils.costs."""
        a_G = out[CONTENT_LAYER]
        _, n_C, n_H, n_W = a_G.shape
        J_content = ((self.a_C - a_G) ** 2).sum() / (4 * n_H * n_W * n_C)
        J_style = 0
        for name, coeff in STYLE_LAYERS:
            _, n_C, n_H, n_W = out[name].shape
            diff = self.grams[name] - gram(out[name])
            J_style = J_style + coeff * (diff**2).sum() / (4 * n_C**2 * (n_H * n_W) ** 2)
        return self.alpha * J_content + self.beta * J_style, J_content, J_style

    def start_costs(self) -> tuple:
        with self.torch.no_grad():
            return tuple(float(v) for v in self.costs(self.net(self.image)))

    def step(self) -> float:
        """One Adam iteration with the three costs read out, as nst's loop does: seconds."""
        begin = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        J, J_content, J_style = self.costs(self.net(self.image))
        J.backward()
        self.optimizer.step()
        float(J.detach()), float(J_content.detach()), float(J_style.detach())
        return time.perf_counter() - begin


def _inputs(weights_path, width: int, height: int):
    """(weights, content, style, start) as nst's benchmark makes them (seed 0 noise)."""
    from nst_utils.config import PROJECT_ROOT
    from nst_utils.images import generate_noise_image, load_image, reshape_and_normalize_image
    from nst_utils.weights import load_weights

    weights = load_weights(weights_path)
    content = reshape_and_normalize_image(
        load_image(PROJECT_ROOT / "images" / "louvre.jpg", (width, height))
    )
    style = reshape_and_normalize_image(
        load_image(PROJECT_ROOT / "images" / "sandstone.jpg", (width, height))
    )
    return weights, content, style, generate_noise_image(content, seed=0)


#: The suffix of a prepared kernel's name: PyTorch's (out, in, 3, 3) layout, contiguous.
KERNEL = ".kernel_oihw"


def prepare(weights_path, width: int, height: int, npz_path) -> str:
    """Write the inputs of `run` to `npz_path` for `run_prepared`, the kernels already in
    PyTorch's layout; returns the path."""
    return write_prepared(*_inputs(weights_path, width, height), npz_path)


def write_prepared(weights, content, style, start, npz_path) -> str:
    """`prepare` from inputs already in memory: nst's `VGGWeights` and the three network images
    (1, H, W, 3); returns the path."""
    import numpy as np

    arrays = {"content": content, "style": style, "start": start}
    for name, (kernel, bias) in weights.conv.items():
        arrays[name + KERNEL] = np.ascontiguousarray(np.transpose(kernel, (3, 2, 0, 1)))
        arrays[f"{name}.bias"] = bias
    np.savez(npz_path, **arrays)
    return str(npz_path)


def load_prepared(npz_path) -> tuple:
    """(weights, content, style, start) from a file `prepare` wrote: the weights' kernels in
    PyTorch's layout (`layout` "oihw"), read once, so that PyTorch holds one copy of them."""
    import types

    import numpy as np

    with np.load(npz_path) as data:
        arrays = {k: data[k] for k in data.files}
    conv = {
        k[: -len(KERNEL)]: (arrays[k], arrays[k[: -len(KERNEL)] + ".bias"])
        for k in arrays
        if k.endswith(KERNEL)
    }
    weights = types.SimpleNamespace(conv=conv, layout="oihw")
    return weights, arrays["content"], arrays["style"], arrays["start"]


def run_prepared(npz_path, iterations: int, threads: int | None = None) -> dict:
    """`run` on inputs written by `prepare`, without importing TensorFlow or nst_utils; with
    the process's resident memory just after importing PyTorch, before the inputs are read."""
    import torch  # noqa: F401

    framework = resident_split_mb()
    figures = _run(*load_prepared(npz_path), iterations, threads)
    figures["imports_tensorflow"] = "tensorflow" in sys.modules
    figures["framework_mb"] = framework
    return figures


def serve(npz_path, threads: int | None = None, commands=None, out=None) -> int:
    """A PyTorch loop that runs when told, for interleaved rounds against another process.

    Builds the loop from a file `prepare` wrote, prints one JSON line {"start_costs": [...],
    "torch_version": ...}, then for each line "N" of `commands` (stdin) runs N Adam iterations
    and prints {"times": [seconds, ...]}; ends at "quit" or the end of the input. Never imports
    TensorFlow."""
    import torch

    commands = sys.stdin if commands is None else commands
    out = sys.stdout if out is None else out
    torch.set_num_threads(threads or _cores())
    loop = TorchLoop(*load_prepared(npz_path))

    def say(figures):
        out.write(json.dumps(figures) + "\n")
        out.flush()

    say(
        {
            "start_costs": loop.start_costs(),
            "torch_version": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        }
    )
    for line in commands:
        if line.strip() in ("", "quit"):
            break
        times, cpu = [], []
        for _ in range(int(line)):
            before = time.process_time()
            times.append(loop.step())
            cpu.append(time.process_time() - before)
        say({"times": times, "cpu_times": cpu})
    return 0


class Worker:
    """The client of `serve`: a PyTorch loop in its own process (which never imports
    TensorFlow), run a round at a time. `env` adds variables to its environment (for instance
    ATEN_CPU_CAPABILITY to emulate another CPU); `start_costs` is what it printed first."""

    def __init__(self, npz_path, threads: int | None = None, env: dict | None = None):
        import subprocess

        command = [sys.executable, str(Path(__file__).resolve()), "--serve", str(npz_path)]
        if threads:
            command += ["--threads", str(threads)]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        first = self._answer()
        self.start_costs = tuple(first["start_costs"])
        self.version = first["torch_version"]
        self.cpu_capability = first.get("cpu_capability")  # the vector ISA ATen runs, "AVX2"
        self.cpu_times = []  # CPU seconds (all threads) of each iteration `steps` ran

    def _answer(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            raise RuntimeError(f"the PyTorch worker ended (status {self.process.returncode})")
        return json.loads(line)

    def steps(self, count: int) -> list:
        """Run `count` Adam iterations in the worker: their seconds."""
        self.process.stdin.write(f"{count}\n")
        self.process.stdin.flush()
        answer = self._answer()
        self.cpu_times.extend(answer["cpu_times"])
        return answer["times"]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
            self.process.wait()


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def run(weights_path, width: int, height: int, iterations: int, threads: int | None = None) -> dict:
    """Load, build and run `iterations` steps at width x height; the figures as a dict."""
    weights, content, style, start = _inputs(weights_path, width, height)
    return _run(weights, content, style, start, iterations, threads)


def _run(weights, content, style, start, iterations, threads):
    import torch

    torch.set_num_threads(threads or os.cpu_count() or 1)
    _, height, width, _ = content.shape
    begin = time.perf_counter()
    loop = TorchLoop(weights, content, style, start)
    built = time.perf_counter() - begin
    start_costs = loop.start_costs()  # not timed: a check against nst's costs
    times = [loop.step() for _ in range(iterations)]
    return {
        "torch_version": torch.__version__,
        "size": f"{width}x{height}",
        "iterations": iterations,
        "start_costs": start_costs,
        "first_iteration_seconds": built + times[0],
        "seconds_per_iteration": statistics.median(times[2:] or times),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--size", default="400x300")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--serve", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    missing = torch_missing()
    if missing:
        print(missing)
        print(json.dumps({"skipped": missing}))
        return 0
    if args.serve is not None:
        return serve(args.serve, args.threads)
    if args.weights is None:
        parser.error("--weights is required")
    width, height = (int(v) for v in args.size.lower().split("x"))
    print(json.dumps(run(args.weights, width, height, args.iterations, args.threads)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
