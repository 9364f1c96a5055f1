"""A big print's peak memory and seconds per iteration at each scale.

    python benchmarks/big_print.py                              # 3000x2250, 3 scales, 8 GB budget
    python benchmarks/big_print.py --size 1600x1200 --iterations 3 2 1 --budget-gb 4

Paints the Louvre in the style of sandstone coarse to fine (nst_utils.scales) with a full-size
random-weight VGG-19 (written once under the system's temporary folder; the arithmetic is the
real one), letting `nst_utils.memory` pick the tiles for the given memory budget. Prints, per
scale, the size, the tile cell (none: whole), the seconds per iteration (median), and at the end
the process's peak resident memory against the estimate, as one JSON line. The CPU seconds
per iteration (all the process's threads) are steadier than wall time on a loaded machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for folder in (ROOT, HERE):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import nst_utils  # noqa: E402,F401  (TensorFlow then loads as `generate` loads it: quiet, without Keras)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="3000x2250")
    parser.add_argument(
        "--iterations",
        nargs="+",
        type=int,
        default=[3, 3, 3],
        help="iterations per scale, coarse to fine (their count is the scales')",
    )
    parser.add_argument("--budget-gb", type=float, default=7.5)
    parser.add_argument("--style-scale", type=float, default=1.0)
    parser.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="a VGG-19 .mat (default: the full-size random-weights file)",
    )
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))

    import numpy as np
    import tensorflow as tf

    from memory import random_weights
    from resident import peak_rss_mb
    from nst_utils import memory, scales
    from nst_utils.config import PROJECT_ROOT
    from nst_utils.images import read_image
    from nst_utils.settings import DEFAULTS
    from nst_utils.weights import load_weights

    tf.compat.v1.disable_eager_execution()
    weights = load_weights(args.weights or random_weights())
    content = read_image(PROJECT_ROOT / "images" / "louvre.jpg")
    style = read_image(PROJECT_ROOT / "images" / "sandstone.jpg")
    settings = DEFAULTS.replace(
        image_width=width, image_height=height, style_scale=args.style_scale
    )
    plan = scales.BigPrint(settings, iterations=args.iterations)
    room = min(args.budget_gb * 1024, memory.available_mb()[0])
    stamps = {}

    def on_step(index, size, i, values, image=None):
        times = stamps.setdefault((index, size), [])
        times.append((time.perf_counter(), time.process_time()))
        since = ""
        if len(times) > 1:
            wall, cpu = (b - a for a, b in zip(times[-2], times[-1]))
            since = f", {wall:.1f} s ({cpu:.1f} CPU s) after the last"
        print(
            f"scale {index} {size[0]}x{size[1]} iteration {i}: J = {values[0]:.4g}{since}",
            flush=True,
        )

    begin = time.perf_counter()
    result = scales.paint(weights, plan, content, [style], on_step=on_step, room_mb=room)
    image, total = result.image, time.perf_counter() - begin
    figures = {
        "size": args.size,
        "iterations": args.iterations,
        "budget_mb": round(room),
        "wall_seconds": round(total, 1),
        "scales": result.scales,  # size, tiles, cell, estimate, peak so far, seconds
    }
    for index, size in stamps:
        # Between one iteration's end and the next's at the same scale: a scale's set-up and
        # its first iteration (which builds the graph and reads the targets) are not counted.
        times = stamps[(index, size)]
        for key, clock in (("seconds", 0), ("cpu_seconds", 1)):
            steps = [b[clock] - a[clock] for a, b in zip(times, times[1:])]
            median = round(statistics.median(steps), 2) if steps else None
            result.scales[index][f"{key}_per_iteration"] = median
            if median is not None:  # per pixel of the scale, in microseconds
                per_pixel = 1e6 * median / (size[0] * size[1])
                result.scales[index][f"{key}_per_pixel_us"] = round(per_pixel, 3)
    figures["peak_rss_mb"] = round(peak_rss_mb(), 1)
    figures["finite"] = bool(np.isfinite(image).all())
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
