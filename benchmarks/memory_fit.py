"""Peak memory of real `generate` runs against `nst_utils.memory`'s estimate, and the fit.

    python benchmarks/memory_fit.py                    # the small grid, a few minutes
    python benchmarks/memory_fit.py --large            # and the 3000x2250 README print (8 GB)
    python benchmarks/memory_fit.py --only tiled lbfgs # the cases whose names contain these
    python benchmarks/memory_fit.py --only none --whole 1000x750 1400x1050  # whole runs only
    ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/memory_fit.py  # as on a CPU with AVX2 only
    python benchmarks/memory_fit.py --fit a.json b.json  # stored measurements again, no runs

Each case is one `python -m nst_utils generate` process (a full-size random-weight VGG-19,
written once under the temporary folder: the arithmetic is the real one) with 1-3 iterations
and generate's defaults otherwise (snapshot 0.png, the final image, the plots, run.json),
under `/usr/bin/time -v`; its "Maximum resident set size" is the measured peak. Every case runs
with NST_MEMORY_LIMIT_MB set, so that the memory the run counts on, and so its tiling, is the
one the estimate below is made for; each case records the oneDNN kernels it ran with (AVX2 at
most, frozen weights: nst_utils.hardware's rules, or the caller's settings). The estimate is
`nst_utils.scales.run_estimate`, the one `generate` uses, for those kernels. Printed: one line
per case (peak, estimate, their ratio), then the linear program's fit of the model's
coefficients to the peaks (per term, to compare with nst_utils.memory's
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
    (
        "6000x4500 photo scales 3 in 16384",
        6000,
        4500,
        ["--scales", "3", "--content", "PHOTO"],
        16384,
        3,
    ),
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
    from nst_utils import hardware
    from nst_utils.config import PROJECT_ROOT

    name, width, height, extra, limit, iterations = case
    style = str(PROJECT_ROOT / "images" / "sandstone.jpg")
    out = folder / re.sub(r"\W+", "-", name)
    photo = folder / f"photo-{width}x{height}.jpg"
    if "PHOTO" in extra and not photo.exists():  # a photo of the print's size: the Louvre
        from PIL import Image

        louvre = Image.open(PROJECT_ROOT / "images" / "louvre.jpg").convert("RGB")
        louvre.resize((width, height), Image.BICUBIC).save(photo, quality=90)
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
    ] + [{"STYLE": style, "PHOTO": str(photo)}.get(word, word) for word in extra]
    env = dict(os.environ, NST_MEMORY_LIMIT_MB=str(limit))
    hardware.apply_tensorflow_environment(env)  # as the child will: its frozen-weights setting
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
        "frozen_weights": hardware.frozen_weights_in_force(env),
        "avx2": hardware.onednn_runs_avx2_at_most(env),
        "onednn_isa": env.get("ONEDNN_MAX_CPU_ISA"),
        "tail": done.stderr.strip().splitlines()[-25:-22] if done.returncode else None,
    }


def kernels(row: dict) -> dict:
    """The oneDNN kernels a row was measured with, as estimate_peak takes them (rows stored
    before these keys were measured natively on AVX-512, without frozen weights)."""
    avx2 = row.get("avx2", row.get("onednn_isa") == "AVX2")
    return {"avx2": bool(avx2), "frozen_weights": bool(row.get("frozen_weights"))}


def estimate(case, **kernels) -> tuple:
    """(estimate MB, [scales.ScalePlan, ...]) as generate makes it, with the kernels given."""
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
        **kernels,
    )
    return total, plans


def mb(estimate) -> float:
    return estimate.total_mb


def replanned(spec, scale: dict, print_pixels: int, previous, **kernels):
    """The estimate of one scale a big print ran (its size and tile cell, from run.json), after
    a scale estimated as `previous` (None for the first)."""
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
        previous=previous,
        **kernels,
    )


def painted(row: dict) -> bool:
    """Whether a case ran to its end: a peak and status 0 (a run stopped before its end has no
    peak; one refused, e.g. emulated bfloat16, ends with status 1)."""
    return row.get("peak_mb") is not None and row.get("status", 0) == 0


def compare(rows: list) -> list:
    """[(label, measured peak MB, memory.Estimate), ...]: each measured run against the estimate
    of the run it made (its scales' tiles from run.json), and each earlier scale of a big print
    against the largest estimate up to it. Adds each row's plan and estimate to it."""
    points = []
    for row in rows:
        spec = next((c for c in SMALL + LARGE if c[0] == row["name"]), None) or row["case"]
        total, plans = estimate(spec, **kernels(row))
        row["plan"] = [(p.width, p.height, p.cell) for p in plans]
        worst = max(plans, key=lambda p: p.estimate.total_mb).estimate
        recorded = row.get("scales_recorded") or []
        each = []
        for scale in recorded:
            previous = each[-1] if each else None
            each.append(replanned(spec, scale, spec[1] * spec[2], previous, **kernels(row)))
        if each:  # the tiles the run chose, under today's constants
            worst = max(each, key=mb)
            row["plan_run"] = [(s["width"], s["height"], s["cell"]) for s in recorded]
        row["estimate_mb"] = round(worst.total_mb, 1)
        row["parts"] = worst.parts
        if painted(row):
            points.append((row["name"], row["peak_mb"], worst))
        for k, scale in enumerate(recorded[:-1]):
            # The process's peak so far when this scale ended (run.json) against the largest
            # estimate so far: a peak is never lower than an earlier scale's.
            if scale.get("peak_mb") is not None:
                label = (
                    f"  to scale {k + 1}/{len(recorded)}, {scale['width']}x{scale['height']} "
                    + (f"in {scale['tiles']} tiles" if scale["cell"] else "whole")
                )
                points.append((label, scale["peak_mb"], max(each[: k + 1], key=mb)))
    return points


def on_avx2(estimate) -> bool:
    """Whether an estimate was made for oneDNN's AVX2 kernels (it has their parts)."""
    return any(name.startswith("AVX2") for name in estimate.parts)


def highest_peaks(points: list) -> list:
    """[(highest peak MB, memory.Estimate), ...]: one per case as the estimate sees it (the same
    parts: size, options, kernels; the iterations and repeats apart), with the highest of its
    measured peaks. The same run's peak varies from one process to the next (up to 25% at
    1200x900 with AVX2), so an estimate never low covers the highest, and its margin is counted
    from it."""
    cases = {}
    for _, peak, guess in points:
        key = json.dumps(guess.parts, sort_keys=True)
        if key not in cases or peak > cases[key][0]:
            cases[key] = (peak, guess)
    return list(cases.values())


def fit(rows: list) -> dict:
    """Factors on the model's terms (1.0: nst_utils.memory's constant as it is) that keep every
    measured peak at or under its estimate with the least largest over-estimate, changing the
    constants as little as that allows (linear programming over the runs' estimates split into
    their parts), and that largest estimate / peak. A check on the constants, adopted by hand."""
    import numpy as np
    from scipy.optimize import linprog

    names = sorted({key for row in rows for key in row["parts"] if row["parts"][key]})
    X = np.array([[row["parts"].get(k, 0.0) for k in names] for row in rows])
    y = np.array([row["peak_mb"] for row in rows])
    n, m = len(names), len(y)
    # First the least t with y <= X f <= t y (variables f, t).
    A = np.vstack([np.hstack([-X, np.zeros((m, 1))]), np.hstack([X, -y[:, None]])])
    b = np.concatenate([-y, np.zeros(m)])
    cost = np.zeros(n + 1)
    cost[-1] = 1.0
    first = linprog(cost, A_ub=A, b_ub=b, bounds=[(0.0, 4.0)] * n + [(1.0, None)])
    if not first.success:
        return {"failed": first.message}
    t = float(first.x[-1]) + 0.005
    # Then the least sum of |f - 1| within that t (variables f, d >= |f - 1|).
    eye = np.eye(n)
    A = np.vstack(
        [
            np.hstack([-X, np.zeros((m, n))]),
            np.hstack([X, np.zeros((m, n))]),
            np.hstack([eye, -eye]),
            np.hstack([-eye, -eye]),
        ]
    )
    b = np.concatenate([-y, t * y, np.ones(n), -np.ones(n)])
    cost = np.concatenate([np.zeros(n), np.ones(n)])
    second = linprog(cost, A_ub=A, b_ub=b, bounds=[(0.0, 4.0)] * n + [(0.0, None)] * n)
    found = second.x[:n] if second.success else first.x[:n]
    factors = {k: round(float(f), 3) for k, f in zip(names, found)}
    return {"factors": factors, "largest estimate / peak": round(t, 3)}


def main(argv=None) -> int:
    from bench import parse_size

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="also the large cases (8+ GB)")
    parser.add_argument(
        "--only", nargs="+", default=None, help="only the cases whose names contain one of these"
    )
    parser.add_argument(
        "--fit", type=Path, nargs="+", default=None, help="JSON lines stored with --save"
    )
    parser.add_argument("--save", type=Path, default=None, help="write the JSON line here")
    parser.add_argument(
        "--whole",
        nargs="+",
        default=[],
        type=parse_size,
        metavar="WxH",
        help="also whole runs of these sizes, one iteration each (with --only none, only these)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from nst_utils.weights.synthetic import benchmark_weights

    if args.fit is not None:
        rows = [row for path in args.fit for row in json.loads(path.read_text())["rows"]]
    else:
        cases = SMALL + (LARGE if args.large else [])
        if args.only:
            cases = [c for c in cases if any(part in c[0] for part in args.only)]
        for width, height in args.whole:
            cases.append((f"whole {width}x{height} (--whole)", width, height, [], 20000, 1))
        weights = benchmark_weights(full_size=True)
        rows = []
        with tempfile.TemporaryDirectory(prefix="nst-memory-fit-") as folder:
            for case in cases:
                measured = run_case(case, weights, Path(folder))
                rows.append({"name": case[0], "limit_mb": case[4], "case": case, **measured})
                print(json.dumps(rows[-1]), flush=True)
    points = compare(rows)
    print(f"{'case':44} {'kernels':13} {'peak MB':>8} {'estimate':>9} {'over':>7}")
    for row in rows:
        if not painted(row):
            said = next((line for line in row.get("tail") or [] if line.strip()), "")
            why = row.get("note") or f"not painted (status {row.get('status')}): {said[:60]}"
            print(f"{row['name']:44} {why}")
            continue
        row["over"] = round(row["estimate_mb"] / row["peak_mb"] - 1, 3)
    for label, peak, guess in points:
        over = guess.total_mb / peak - 1
        ran = ("AVX2" if on_avx2(guess) else "native") + (
            ", frozen" if "frozen filters" in guess.parts else ""
        )
        print(f"{label:44} {ran:13} {peak:8.0f} {guess.total_mb:9.0f} {100 * over:6.1f}%")
    cases = highest_peaks(points)
    for avx2, wanted in ((False, 1.15), (True, 1.33)):
        kind = [(p, g) for p, g in cases if on_avx2(g) == avx2]
        if kind:
            ratios = [guess.total_mb / peak for peak, guess in kind]
            print(
                f"{'AVX2' if avx2 else 'native'}: estimate / highest peak of each case "
                f"({len(kind)} cases) from {min(ratios):.3f} to {max(ratios):.3f} "
                f"(wanted: 1.0 to {wanted})"
            )
    if cases:
        print(
            "the tightest factors per term:",
            json.dumps(fit([{"peak_mb": p, "parts": g.parts} for p, g in cases])),
        )
    line = json.dumps({"rows": rows})
    print(line)
    if args.save is not None:
        args.save.write_text(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
