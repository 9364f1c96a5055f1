"""Benchmark: grading a class of 30 students with the sandbox, as `python -m nst_utils grade` does.

Builds 30 notebooks from the solved one (most correct, some with a classic mistake, a blank
one), grades them with `--jobs` sandboxes side by side (default 2), and prints the wall time,
the seconds per student, and whether isolation was on, as one JSON line.

    python benchmarks/grade_class.py [--students 30] [--jobs 2] [--no-isolation]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

MISTAKES = (
    ("gram_matrix", "GA = tf.matmul(tf.transpose(A), A)"),
    ("total_cost", "J = beta * J_content + alpha * J_style"),
    (
        "compute_content_cost",
        "m, n_H, n_W, n_C = a_G.get_shape().as_list()\n"
        "J_content = tf.reduce_sum(tf.square(a_C - a_G)) / (n_H * n_W * n_C)",
    ),
)


def build_class(folder: Path, students: int) -> None:
    from grading_helpers import solved_notebook, with_body, write
    from nst_utils.grading.student import STUDENT

    solved = solved_notebook()
    for i in range(students):
        path = folder / f"student{i:02d}.ipynb"
        if i % 10 == 9:
            path.write_text(STUDENT.read_text())
        elif i % 5 == 4:
            name, body = MISTAKES[i % len(MISTAKES)]
            write(with_body(solved, name, body), path)
        else:
            write(solved, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-isolation", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from nst_utils.grading import Limits
    from nst_utils.grading.answer_key import grading_key
    from nst_utils.grading.grader import GRADED_FUNCTIONS, grade_paths

    for name in GRADED_FUNCTIONS:  # the answer keys, computed once before the clock starts
        grading_key(name)
    with tempfile.TemporaryDirectory() as tmp:
        build_class(Path(tmp), args.students)
        start = time.perf_counter()
        rows = grade_paths([tmp], Limits(), jobs=args.jobs, isolation=not args.no_isolation)
        seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "students": len(rows),
                "jobs": args.jobs,
                "isolated": not args.no_isolation,
                "seconds": round(seconds, 1),
                "seconds_per_student": round(seconds / len(rows), 2),
                "points": sorted({r.points for r in rows}),
                "cpus": os.cpu_count(),
                "load_before": os.getloadavg()[0],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
