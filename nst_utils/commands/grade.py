"""`python -m nst_utils grade NOTEBOOK_OR_FOLDER...`: grade a class, one row per student.

Each grade is stored in the class's gradebook (SQLite) as soon as it is made; a run grades only
what the gradebook lacks and writes every report from it. Ctrl-C or SIGTERM ends every box at
once, writes the reports of what is graded, and says how many remain for the next run.
"""

import signal
import sys
from pathlib import Path

from ..stop_signals import StopSignals


class GradingStopSignals(StopSignals):
    """Ctrl-C (SIGINT) and SIGTERM stop a class run at once, keeping what is graded; a second
    signal quits without writing the reports (the gradebook keeps the grades)."""

    def _handle(self, number, frame):
        if self.signal_number is not None:
            raise KeyboardInterrupt
        self.signal_number = number
        print(
            f"\n{signal.Signals(number).name} received: ending every box now; the grades made "
            f"so far are kept (send it again to quit at once)",
            file=self.stream or sys.stderr,
            flush=True,
        )


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
        help="submitted notebooks, or folders holding them (searched recursively; symbolic "
        "links are not followed); put -- before them when a name may begin with '-'",
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
        "--db",
        type=Path,
        metavar="FILE",
        help="the SQLite gradebook that keeps each grade as soon as it is made; a run "
        "grades only the notebooks it lacks (default: nst-grades.sqlite beside the first "
        "report, or in the current folder)",
    )
    parser.add_argument(
        "--regrade",
        action="store_true",
        help="grade every notebook again, even those the gradebook holds",
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
    from ..grading import grader, gradebook, report
    from ..grading.catalog import Limits

    limits = Limits(
        time=args.time_limit, memory_mb=args.memory_limit, output_bytes=args.output_limit
    )
    grader.check_jobs(args.jobs)
    grader.check_isolation(not args.no_isolation)  # refuse before reading a class, not after
    found = grader.find_class(args.paths)
    for warning in found.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    reports = {"--json": args.json, "--csv": args.csv, "--gradebook": args.gradebook}
    db = args.db or gradebook.default_path([*reports.values(), args.feedback])
    grader.check_outputs({**reports, "--feedback": args.feedback, "--db": db}, args.paths, found)
    # Check the report files can be written before grading a class, not after.
    for target in reports.values():
        if target is not None:
            check_writable(target.expanduser())
    with gradebook.Gradebook(db) as book, GradingStopSignals() as stop:
        outcome = grader.grade_class(
            found,
            limits,
            args.functions,
            args.jobs,
            isolation=not args.no_isolation,
            hidden_seed=args.hidden_seed,
            book=book,
            regrade=args.regrade,
            should_stop=stop.requested,
            progress=sys.stderr.isatty(),
        )
    rows = outcome.rows
    print(report.table(rows), flush=True)  # the table first: it survives a failed write below
    if args.json:
        report.write_text(args.json, report.to_json(rows) + "\n")
    if args.csv:
        report.write_text(args.csv, report.to_csv(rows))
    if args.gradebook:
        report.write_text(args.gradebook, report.to_gradebook_csv(rows))
    if args.feedback:
        report.write_feedback(rows, args.feedback.expanduser())
    kept = outcome.total - len(outcome.graded) - outcome.remaining
    print(
        f"graded {len(outcome.graded)} notebook(s), {kept} taken from the gradebook {db}",
        file=sys.stderr,
    )
    if outcome.stopped:
        print(
            f"stopped: {len(rows)} of {outcome.total} notebooks are graded and kept in {db}; "
            f"{outcome.remaining} remain: run the same command again to grade them",
            file=sys.stderr,
        )
        return stop.exit_code()
    return 0
