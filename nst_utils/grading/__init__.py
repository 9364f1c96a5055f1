"""Grading: the student notebook, the sandboxed autograder with diagnoses, and self-checks.

`check(fn)` prints, inside a notebook, the feedback the grader would give for one function;
`grade_paths(paths)` grades notebooks or folders of them (see `python -m nst_utils grade`).
The process layer of the sandbox lives in `sandbox/`; what is graded, one record per function,
in `functions.py`.
"""

from .catalog import Limits
from .selfcheck import check

__all__ = ["Limits", "check", "grade_paths", "grade_submissions", "GRADED_FUNCTIONS", "POINTS"]


def __getattr__(name):
    if name in (
        "grade_paths",
        "grade_submissions",
        "SubmissionGrade",
        "GRADED_FUNCTIONS",
        "POINTS",
    ):
        from . import grader

        return getattr(grader, name)
    raise AttributeError(name)
