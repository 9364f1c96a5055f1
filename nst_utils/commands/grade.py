"""`python -m nst_utils grade NOTEBOOK_OR_FOLDER...`: grade a class, one row per student."""

from pathlib import Path


def add_arguments(parser):
    from ..grading.answer_key import DEFAULT_HIDDEN_SEED
    from ..grading.catalog import Limits
    from ..grading.functions import RECORDS

    defaults = Limits()
    names = [record.name for record in RECORDS]
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="NOTEBOOK_OR_FOLDER",
        help="submitted notebooks, or folders holding them (searched recursively)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the grades as JSON")
    parser.add_argument(
        "--csv",
        type=Path,
        metavar="FILE",
        help="also write one CSV row per student, with points and feedback",
    )
    parser.add_argument(
        "--gradebook",
        type=Path,
        metavar="FILE",
        help="also write a CSV for an LMS gradebook: total and points per function",
    )
    parser.add_argument(
        "--feedback",
        type=Path,
        metavar="FOLDER",
        help="also write one Markdown feedback file per student into FOLDER",
    )
    parser.add_argument(
        "--function",
        action="append",
        choices=names,
        dest="functions",
        help=f"grade only this function (repeatable; all {len(names)} if not given)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="sandboxes side by side (each holds TensorFlow, about 650 MB)",
    )
    parser.add_argument(
        "--time-limit", type=float, default=defaults.time, help="seconds each function may run"
    )
    parser.add_argument(
        "--memory-limit",
        type=int,
        default=defaults.memory_mb,
        help="megabytes each function may allocate",
    )
    parser.add_argument(
        "--output-limit",
        type=int,
        default=defaults.output_bytes,
        help="bytes each function may print",
    )
    parser.add_argument(
        "--hidden-seed",
        type=int,
        default=DEFAULT_HIDDEN_SEED,
        help="seed of the random cases students do not see",
    )
    parser.add_argument(
        "--no-isolation",
        action="store_true",
        help="grade even where the kernel cannot isolate submissions (only for "
        "trusted work: each row then says it was graded without isolation)",
    )


def run(args):
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    from ..files import check_writable
    from ..grading import grader, report
    from ..grading.catalog import Limits

    limits = Limits(
        time=args.time_limit, memory_mb=args.memory_limit, output_bytes=args.output_limit
    )
    grader.check_isolation(not args.no_isolation)  # refuse before reading a class, not after
    # Check the report files can be written before grading a class, not after.
    for target in (args.json, args.csv, args.gradebook):
        if target is not None:
            check_writable(target.expanduser())
    rows = grader.grade_paths(
        args.paths,
        limits,
        args.functions,
        args.jobs,
        isolation=not args.no_isolation,
        hidden_seed=args.hidden_seed,
    )
    print(report.table(rows), flush=True)  # the table first: it survives a failed write below
    if args.json:
        report.write_text(args.json, report.to_json(rows) + "\n")
    if args.csv:
        report.write_text(args.csv, report.to_csv(rows))
    if args.gradebook:
        report.write_text(args.gradebook, report.to_gradebook_csv(rows))
    if args.feedback:
        report.write_feedback(rows, args.feedback.expanduser())
    return 0
