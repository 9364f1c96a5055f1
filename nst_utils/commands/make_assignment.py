"""`python -m nst_utils make-assignment OUT/`: the students' download and a Gradescope
autograder."""

from pathlib import Path


def add_arguments(parser):
    from ..grading.student import SOLVED

    parser.add_argument(
        "out",
        type=Path,
        metavar="OUT",
        help="a new or empty folder: OUT/student/ and OUT/autograder.zip go there",
    )
    parser.add_argument(
        "--solved", type=Path, default=SOLVED, help="the solved notebook (the source)"
    )
    parser.add_argument(
        "--hidden-seed",
        type=int,
        default=None,
        help="seed of the random cases students do not see; drawn afresh if not given",
    )


def run(args):
    from ..grading.assignment import make_assignment

    made = make_assignment(args.out, args.solved, args.hidden_seed)
    print(
        f"wrote {made['student']}/ (give it to students) and {made['autograder']} "
        f"(upload it to Gradescope as the autograder)"
    )
    return 0
