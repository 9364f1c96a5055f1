"""Grading: the student notebook, the sandboxed autograder with diagnoses, and self-checks.

`check(fn)` prints, inside a notebook, the feedback the grader would give for one function;
`grade_paths(paths)` grades notebooks or folders of them (see `python -m nst_utils grade`).
"""

from .catalog import GRADED_FUNCTIONS, POINTS, Limits
from .grader import SubmissionGrade, check, grade_paths, grade_submissions

__all__ = ["GRADED_FUNCTIONS", "POINTS", "Limits", "SubmissionGrade", "check", "grade_paths",
           "grade_submissions"]
