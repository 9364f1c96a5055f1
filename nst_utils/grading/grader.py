"""Grade a class: each submission's functions in its own sandbox, the outputs judged here.

The answer keys (reference outputs and the mistakes' values) are computed in this process and
never sent anywhere; a sandbox receives a cell's source and its cases' inputs, and sends back
plain data. A function that calls another graded one (compute_layer_style_cost calls
gram_matrix) gets a stand-in whose values this process computes, so one mistake costs once.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Optional

from ..errors import NSTError
from . import answer_key, catalog, extract
from .diagnose import FunctionGrade, assess, failed, one_line, sandbox_failure, NOT_IMPLEMENTED
from .functions import BY_NAME, RECORDS
from .sandbox import host
from .blanks import is_untouched_blank

GRADED_FUNCTIONS = tuple(record.name for record in RECORDS)
POINTS = {record.name: record.spec.points for record in RECORDS}
UNISOLATED = "graded without isolation"


@dataclasses.dataclass
class SubmissionGrade:
    """One row of the class table."""

    student: str
    path: str
    grades: dict  # function name -> FunctionGrade
    error: Optional[str] = None
    isolated: bool = True

    @property
    def points(self) -> int:
        return sum(g.points for g in self.grades.values())

    @property
    def max_points(self) -> int:
        return sum(g.max_points for g in self.grades.values())


def _selected(functions) -> tuple:
    functions = tuple(functions or GRADED_FUNCTIONS)
    unknown = [f for f in functions if f not in POINTS]
    if unknown:
        raise NSTError(
            f"unknown graded function(s) {', '.join(unknown)}; choose from "
            f"{', '.join(GRADED_FUNCTIONS)}"
        )
    return functions


def check_isolation(isolation: bool) -> None:
    """Refuse in one line when kernel isolation is wanted but this machine cannot give it."""
    if isolation:
        problem = host.isolation_problem()
        if problem:
            raise host.IsolationUnavailable(
                f"cannot isolate submissions on this machine ({problem}); grade on Linux with "
                f"user namespaces, or pass --no-isolation to grade without it (only for trusted work)"
            )


def _task(number, name, source, limits, hidden_seed) -> host.Task:
    key = answer_key.grading_key(name, hidden_seed)
    oracle = {dep: BY_NAME[dep].oracle for dep in key["spec"].dependencies}
    limits_data = dataclasses.asdict(limits)
    return host.Task(f"{number}:{name}", name, source, key["cases"], limits_data, oracle)


def grade_submissions(
    submissions: list,
    limits: catalog.Limits | None = None,
    functions: Iterable[str] | None = None,
    jobs: int = 1,
    isolation: bool = True,
    hidden_seed: int = answer_key.DEFAULT_HIDDEN_SEED,
) -> list:
    """A SubmissionGrade per submission; each submission runs in its own sandbox.

    jobs: how many sandboxes run side by side (each holds TensorFlow, about 650 MB).
    """
    _check_jobs(jobs)
    check_isolation(isolation)
    limits = limits or catalog.Limits()
    functions = _selected(functions)
    groups = []
    for number, submission in enumerate(submissions):
        groups.append(
            [
                _task(number, name, submission.sources[name], limits, hidden_seed)
                for name in functions
                if submission.error is None
                and name in submission.sources
                and not is_untouched_blank(submission.sources[name])
            ]
        )
    results = host.run_submissions(groups, jobs, isolation)
    graded = []
    for number, submission in enumerate(submissions):
        grades = {}
        for name in functions:
            spec = BY_NAME[name].spec
            if submission.error is not None:
                grades[name] = failed(spec, "unreadable", submission.error)
            elif name not in submission.sources:
                grades[name] = failed(
                    spec,
                    "missing",
                    f"no cell headed '{catalog.GRADED_HEADER} {name}' in the notebook",
                )
            elif is_untouched_blank(submission.sources[name]):
                grades[name] = failed(spec, "not_implemented", NOT_IMPLEMENTED)
            else:
                grades[name] = grade_result(
                    name, results.get(f"{number}:{name}"), limits, hidden_seed
                )
        _note_dependencies(grades)
        if not isolation:
            for grade in grades.values():
                grade.feedback = f"{grade.feedback} ({UNISOLATED})"
        graded.append(
            SubmissionGrade(
                submission.student,
                extract.printable(submission.path),
                grades,
                submission.error,
                isolation,
            )
        )
    return graded


def _note_dependencies(grades: dict) -> None:
    """Say when a function was graded with the grader's copy of another that the student got wrong."""
    for name, grade in grades.items():
        for dep in BY_NAME[name].spec.dependencies:
            own = grades.get(dep)
            if own is not None and not own.passed and grade.passed:
                grade.feedback = (
                    f"passes with the reference {dep}; your {dep} fails: {own.feedback}"
                )
                if grade.public_feedback is not None:
                    grade.public_feedback = (
                        f"passes with the reference {dep}; your {dep} fails: "
                        f"{own.public_feedback or own.feedback}"
                    )


def grade_result(
    name: str, result, limits, hidden_seed: int = answer_key.DEFAULT_HIDDEN_SEED
) -> FunctionGrade:
    """The grade of one sandbox result (untrusted data: anything malformed fails)."""
    spec = BY_NAME[name].spec
    try:
        grade = _grade_result(name, result, limits, hidden_seed)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError):
        return failed(spec, "crashed", "returned no usable result (malformed output)")
    grade.feedback = one_line(grade.feedback)  # it may quote what the submission raised
    if grade.public_feedback is not None:
        grade.public_feedback = one_line(grade.public_feedback)
    return grade


def _grade_result(name, result, limits, hidden_seed) -> FunctionGrade:
    spec = BY_NAME[name].spec
    if not isinstance(result, dict):
        return failed(spec, "crashed", "returned no usable result")
    verdict = sandbox_failure(spec, result, limits)
    if verdict is not None:
        return verdict
    key = answer_key.grading_key(name, hidden_seed)
    error = result.get("definition_error")
    if isinstance(error, dict):
        grade = assess(key, [{"error": error}] * len(key["cases"]), limits)
        if grade.diagnosis == "raises":
            grade.feedback = f"the cell does not run: {error.get('type')}: {error.get('message')}"
            grade.diagnosis = "cell_error"
        return grade
    outputs = result.get("outputs")
    grade = assess(key, outputs, limits)
    if key["public"] < len(key["cases"]) and isinstance(outputs, list):
        public = assess(answer_key.public_part(key), outputs[: key["public"]], limits)
        grade.public_feedback = public.feedback
        if public.passed and not grade.passed:
            grade.public_feedback = (
                "passes the public cases but fails hidden ones (shown when "
                "the grades are published)"
            )
    return grade


def grade_paths(
    paths,
    limits: catalog.Limits | None = None,
    functions=None,
    jobs: int = 1,
    isolation: bool = True,
    hidden_seed: int = answer_key.DEFAULT_HIDDEN_SEED,
) -> list:
    """Grade every notebook given, or found in the folders given."""
    _check_jobs(jobs)
    return grade_submissions(
        extract.find_submissions(paths), limits, functions, jobs, isolation, hidden_seed
    )


def _check_jobs(jobs) -> None:
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise NSTError(f"jobs must be a positive whole number, got {jobs!r}")
