"""Peak memory of real `generate` runs against `nst_utils.memory`'s estimate, and the fit.

    python benchmarks/memory_fit.py                    # the small grid, a few minutes
    python benchmarks/memory_fit.py --large            # and the 3000x2250 README print (8 GB)
    python benchmarks/memory_fit.py --only tiled lbfgs # the cases whose names contain these
    python benchmarks/memory_fit.py --fit a.json b.json  # stored measurements again, no runs

Each case is one `python -m nst_utils generate` process (a full-size random-weight VGG-19,
written once under the temporary folder: the arithmetic is the real one) with 1-3 iterations
and generate's defaults otherwise (snapshot 0.png, the final image, the plots, run.json),
under `/usr/bin/time -v`; its "Maximum resident set size" is the measured peak. Every case runs
with NST_MEMORY_LIMIT_MB set, so that the memory the run counts on, and so its tiling, is the
one the estimate below is made for. The estimate is `nst_utils.scales.run_estimate`, the one
`generate` uses. Printed: one line per case (peak, estimate, their ratio), then the least-squares
fit of the model's coefficients to the peaks (per term, to compare with nst_utils.memory's
constants) and a JSON line with every figure. Large runs belong in a memory-capped cgroup.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: name, width, height, extra generate options, NST_MEMORY_LIMIT_MB, iterations
SMALL = [
    ("whole 200x150", 200, 150, [], 8000, 2),
    ("whole 400x300", 400, 300, [], 8000, 2),
    ("whole 800x600", 800, 600, [], 8000, 2),
    ("whole 1200x900", 1200, 900, [], 8000, 2),
    ("whole 2 styles 800x600", 800, 600, ["--style", "STYLE", "STYLE"], 8000, 2),
    ("whole lbfgs 400x300", 400, 300, ["--optimizer", "lbfgs"], 8000, 2),
    ("whole lbfgs 1000x750", 1000, 750, ["--optimizer", "lbfgs"], 8000, 2),
    ("whole bfloat16 400x300", 400, 300, ["--precision", "bfloat16"], 8000, 1),
    ("whole bfloat16 800x600", 800, 600, ["--precision", "bfloat16"], 8000, 1),
    ("scales 2 800x600", 800, 600, ["--scales", "2"], 8000, 2),
    ("scales 3 1600x1200", 1600, 1200, ["--scales", "3"], 8000, 3),
    ("tiled 800x600 in 1500", 800, 600, [], 1500, 1),
    ("tiled 1200x900 in 2000", 1200, 900, [], 2000, 1),
    ("tiled 1500x1125 in 2000", 1500, 1125, [], 2000, 1),
    ("tiled bfloat16 800x600 in 1500", 800, 600, ["--precision", "bfloat16"], 1500, 1),
]
LARGE = [
    ("whole 1600x1200", 1600, 1200, [], 8500, 1),
    ("README 3000x2250 scales 3 in 8000", 3000, 2250, ["--scales", "3"], 8000, 3),
]


#: The tiles' margin for the default layers (conv4_2 and conv5_1): nst_utils.tiles.halo_for.
HALO = 96


def options_of(extra: list) -> dict:
    """The estimate's options from a case's generate options."""
    out = {"styles": 1, "optimizer": "adam", "precision": "float32", "scales": 1}
    for flag, key in (("--optimizer", "optimizer"), ("--precision", "precision")):
        if flag in extra:
            out[key] = extra[extra.index(flag) + 1]
    if "--scales" in extra:
        out["scales"] = int(extra[extra.index("--scales") + 1])
    out["styles"] = max(1, extra.count("STYLE"))
    return out


def run_case(case, weights: Path, folder: Path) -> dict:
    """Run one case under /usr/bin/time -v: its peak RSS (MB), wall time and run.json."""
    from nst_utils.config import PROJECT_ROOT

    name, width, height, extra, limit, iterations = case
    style = str(PROJECT_ROOT / "images" / "sandstone.jpg")
    out = folder / re.sub(r"\W+", "-", name)
    command = [
        "/usr/bin/time",
        "-v",
        sys.executable,
        "-m",
        "nst_utils",
        "generate",
        "--weights",
        str(weights),
        "--width",
        str(width),
        "--height",
        str(height),
        "--iterations",
        str(iterations),
        "--no-progress",
        "--seed",
        "0",
        "--output",
        str(out),
    ] + [style if word == "STYLE" else word for word in extra]
    env = dict(os.environ, NST_MEMORY_LIMIT_MB=str(limit))
    begin = time.monotonic()
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    seconds = time.monotonic() - begin
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    record = {}
    try:
        record = json.loads((out / "run.json").read_text())
    except (OSError, ValueError):
        pass
    status = re.search(r"Exit status: (-?\d+)", done.stderr)
    return {
        "peak_mb": int(found.group(1)) / 1024 if found else None,
        "status": int(status.group(1)) if status else done.returncode,
        "seconds": round(seconds, 1),
        "scales_recorded": record.get("scales"),
        "tail": done.stderr.strip().splitlines()[-25:-22] if done.returncode else None,
    }


def estimate(case) -> tuple:
    """(estimate MB, [scales.ScalePlan, ...]) as generate makes it."""
    from nst_utils import scales

    _, width, height, extra, limit, iterations = case
    opts = options_of(extra)
    total, plans = scales.run_estimate(
        width,
        height,
        room_mb=limit,
        scales=opts["scales"],
        styles=opts["styles"],
        optimizer=opts["optimizer"],
        precision=opts["precision"],
    )
    return total, plans


def mb(estimate) -> float:
    return estimate.total_mb


def replanned(spec, scale: dict, print_pixels: int):
    """The estimate of one scale a big print ran (its size and tile cell, from run.json)."""
    from nst_utils import memory, tiles

    opts = options_of(spec[3])
    width, height, cell = scale["width"], scale["height"], scale["cell"]
    window = None if cell is None else tiles.largest_window(height, width, cell, HALO)
    return memory.estimate_peak(
        width,
        height,
        styles=opts["styles"],
        precision=opts["precision"],
        tile=window,
        big=True,
        print_pixels=print_pixels,
    )


def fit(rows: list) -> dict:
    """Least-squares coefficients of the model's terms against the measured peaks (MB), from
    each run's estimate split into its parts: how far each of nst_utils.memory's constants is
    from what the peaks say, term by term (a check on the model, not the constants used)."""
    import numpy as np

    names = sorted({key for row in rows for key in row["parts"]})
    X = np.array([[row["parts"].get(k, 0.0) for k in names] for row in rows])
    y = np.array([row["peak_mb"] for row in rows])
    scale, *_ = np.linalg.lstsq(X, y, rcond=None)
    return {k: round(float(s), 3) for k, s in zip(names, scale)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="also the large cases (8+ GB)")
    parser.add_argument(
        "--only", nargs="+", default=None, help="only the cases whose names contain one of these"
    )
    parser.add_argument(
        "--fit", type=Path, nargs="+", default=None, help="JSON lines stored with --save"
    )
    parser.add_argument("--save", type=Path, default=None, help="write the JSON line here")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from nst_utils.weights.synthetic import benchmark_weights

    if args.fit is not None:
        rows = [row for path in args.fit for row in json.loads(path.read_text())["rows"]]
    else:
        cases = SMALL + (LARGE if args.large else [])
        if args.only:
            cases = [c for c in cases if any(part in c[0] for part in args.only)]
        weights = benchmark_weights(full_size=True)
        rows = []
        with tempfile.TemporaryDirectory(prefix="nst-memory-fit-") as folder:
            for case in cases:
                measured = run_case(case, weights, Path(folder))
                rows.append({"name": case[0], "limit_mb": case[4], **measured})
                print(json.dumps(rows[-1]), flush=True)
    for row in rows:
        spec = next(c for c in SMALL + LARGE if c[0] == row["name"])
        total, plans = estimate(spec)
        row["plan"] = [(p.width, p.height, p.cell) for p in plans]
        worst = max(plans, key=lambda p: p.estimate.total_mb).estimate
        if row.get("scales_recorded"):  # the tiles the run chose, under today's constants
            worst = max(
                (replanned(spec, s, spec[1] * spec[2]) for s in row["scales_recorded"]), key=mb
            )
            row["plan_run"] = [(s["width"], s["height"], s["cell"]) for s in row["scales_recorded"]]
        row["estimate_mb"] = round(worst.total_mb, 1)
        row["parts"] = worst.parts
    print(f"{'case':36} {'peak MB':>8} {'estimate':>9} {'over':>7}  plan run (w, h, cell)")
    for row in rows:
        if row.get("peak_mb") is None:
            print(f"{row['name']:36} failed (status {row.get('status')}) {row.get('tail')}")
            continue
        over = row["estimate_mb"] / row["peak_mb"] - 1
        row["over"] = round(over, 3)
        print(
            f"{row['name']:36} {row['peak_mb']:8.0f} {row['estimate_mb']:9.0f} "
            f"{100 * over:6.1f}%  {row.get('plan_run', row['plan'])}"
        )
    good = [row for row in rows if row.get("peak_mb") is not None]
    if good:
        print("least-squares factor per term:", json.dumps(fit(good)))
    line = json.dumps({"rows": rows})
    print(line)
    if args.save is not None:
        args.save.write_text(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
