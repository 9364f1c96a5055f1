"""Benchmark: loading VGG-19's conv layers from the full-size .mat versus from nst's cache.

Writes a full-size random-weights VGG-19 file (about 575 MB, the real file's shapes) to a
temporary folder unless --mat is given, then loads it in fresh subprocesses, a few runs each:
  mat    load_weights(path, cache=False): scipy reads the whole .mat
  first  load_weights(path) with no cache yet: reads the .mat and writes the cache
  cache  load_weights(path) with a fresh cache
Each run reports wall time of the load alone, and peak RSS (ru_maxrss) before and after it: the
difference is what the load itself adds on top of the imports (nst_utils imports TensorFlow).
Prints each run and the medians. The files are read from the OS page cache (warm): this
measures parsing and copying, not the disk.

    python benchmarks/weights_load.py [--runs 5] [--mat PATH] [--keep]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from nst_utils.weights import load_weights
mode, path = sys.argv[1], Path(sys.argv[2])
if mode == "first":
    for cache in path.parent.glob(path.name + ".nstcache"):
        cache.unlink()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
weights = load_weights(path, cache=(mode != "mat"))
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
assert len(weights.conv) == 16
print(json.dumps({"seconds": seconds, "rss_before_mb": before / 1024, "peak_rss_mb": peak / 1024}))
"""


#: Writing the full-size file takes over 1 GB; a child does it, so this process stays small:
#: on Linux a process's ru_maxrss starts from its parent's high-water mark at fork.
WRITER = r"""
import sys
from nst_utils.weights.synthetic import write_vgg19_mat
write_vgg19_mat(sys.argv[1], "new", full_size=True)
"""


def run_child(mode: str, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(path)], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--mat",
        type=Path,
        default=None,
        help="an existing weights file (default: write a full-size random one)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the written file and its cache")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="nst-bench-") as folder:
        path = args.mat
        if path is None:
            path = Path(folder) / "imagenet-vgg-verydeep-19.mat"
            subprocess.run(
                [sys.executable, "-c", WRITER, str(path)], check=True, capture_output=True
            )
        print(f"file: {path} ({path.stat().st_size:,} bytes)")
        results = {mode: [] for mode in ("mat", "first", "cache")}
        for _ in range(args.runs):  # interleaved, so load from other users hits all modes alike
            for mode in ("mat", "first", "cache"):
                result = run_child(mode, path)
                results[mode].append(result)
                print(
                    f"  {mode:5} {result['seconds']:7.3f} s  "
                    f"peak RSS {result['peak_rss_mb']:7.0f} MB "
                    f"(before the load {result['rss_before_mb']:5.0f} MB)"
                )
        cache = path.with_name(path.name + ".nstcache")
        print(f"cache file: {cache.stat().st_size:,} bytes")
        print(f"medians over {args.runs} runs:")
        medians = {}
        for mode, runs in results.items():
            seconds = statistics.median(r["seconds"] for r in runs)
            peak = statistics.median(r["peak_rss_mb"] for r in runs)
            added = statistics.median(r["peak_rss_mb"] - r["rss_before_mb"] for r in runs)
            medians[mode] = seconds
            print(
                f"  {mode:5} {seconds:7.3f} s  peak RSS {peak:7.0f} MB  "
                f"added by the load {added:6.0f} MB"
            )
        print(f"cache / mat load time: {medians['cache'] / medians['mat']:.3f}")
        if args.keep and args.mat is None:
            kept = Path(tempfile.mkdtemp(prefix="nst-bench-kept-"))
            for item in (path, cache):
                item.rename(kept / item.name)
            print(f"kept in {kept}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
