"""`python -m nst_utils make-student-notebook`: the student notebook, made again from the solved
one."""

import sys
from pathlib import Path


def add_arguments(parser):
    from ..grading.student import SOLVED, STUDENT

    parser.add_argument(
        "--solved", type=Path, default=SOLVED, help="the solved notebook (the source)"
    )
    parser.add_argument(
        "--output", type=Path, default=STUDENT, help="the student notebook to write"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit with status 1 if the student notebook is out of date",
    )


def run(args):
    from ..grading.student import student_notebook_text, write_student_notebook

    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.is_file() else None
        if current != student_notebook_text(args.solved):
            print(
                f"{args.output} is out of date: run python -m nst_utils make-student-notebook",
                file=sys.stderr,
            )
            return 1
        print(f"{args.output} is up to date")
        return 0
    print(f"wrote {write_student_notebook(args.solved, args.output)}")
    return 0
