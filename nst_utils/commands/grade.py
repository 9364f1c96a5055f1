"""`python -m nst_utils grade NOTEBOOK_OR_FOLDER...`: grade a class, one row per student."""

from pathlib import Path


def add_arguments(parser):
    from ..grading.catalog import GRADED_FUNCTIONS, Limits

    defaults = Limits()
    parser.add_argument("paths", nargs="+", metavar="NOTEBOOK_OR_FOLDER",
                        help="submitted notebooks, or folders holding them (searched recursively)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the grades as JSON")
    parser.add_argument("--csv", type=Path, metavar="FILE", help="also write one CSV row per student")
    parser.add_argument("--function", action="append", choices=GRADED_FUNCTIONS, dest="functions",
                        help="grade only this function (repeatable; default: all five)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="sandbox workers side by side (each holds TensorFlow, about 650 MB)")
    parser.add_argument("--time-limit", type=float, default=defaults.time,
                        help="seconds each function may run")
    parser.add_argument("--memory-limit", type=int, default=defaults.memory_mb,
                        help="megabytes each function may allocate")
    parser.add_argument("--output-limit", type=int, default=defaults.output_bytes,
                        help="bytes each function may print")


def run(args):
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    from ..files import check_writable
    from ..grading import grader, report
    from ..grading.catalog import Limits

    limits = Limits(time=args.time_limit, memory_mb=args.memory_limit, output_bytes=args.output_limit)
    # Check the report files can be written before grading a class, not after.
    for target in (args.json, args.csv):
        if target is not None:
            check_writable(target.expanduser())
    rows = grader.grade_paths(args.paths, limits, args.functions, args.jobs)
    print(report.table(rows), flush=True)  # the table first: it survives a failed write below
    if args.json:
        report.write_text(args.json, report.to_json(rows) + "\n")
    if args.csv:
        report.write_text(args.csv, report.to_csv(rows))
    return 0
