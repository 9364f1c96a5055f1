"""Grade submissions (each function in the sandbox) and self-check a function in a notebook.

Expected outputs and the extra numbers the diagnoses need are computed here, in the grader's
process, with the reference implementation (nst_utils.costs); graded code never sees them.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Iterable, Optional

import numpy as np
import tensorflow as tf

from .. import costs
from ..errors import NSTError
from . import cases as cases_module
from . import catalog, dispatch, extract, fake_model, runner
from .diagnose import FunctionGrade, assess, failed, sandbox_failure

tf1 = tf.compat.v1


@dataclasses.dataclass
class SubmissionGrade:
    """One row of the class table."""

    student: str
    path: str
    grades: dict  # function name -> FunctionGrade
    error: Optional[str] = None

    @property
    def points(self) -> int:
        return sum(g.points for g in self.grades.values())

    @property
    def max_points(self) -> int:
        return sum(g.max_points for g in self.grades.values())


def _style_extras(cases) -> list:
    """Per style case: the reference cost of each style layer, and the layers' weights."""
    extras = []
    for case in cases:
        graph = tf.Graph()
        with graph.as_default(), tf1.Session(graph=graph) as sess:
            model = fake_model.build_model(case["model_seed"])
            sess.run(tf1.global_variables_initializer())
            names = [layer for layer, _ in case["style_layers"]]
            sess.run(model["input"].assign(case["style_image"]))
            style = sess.run([model[n] for n in names])
            sess.run(model["input"].assign(case["generated_image"]))
            layer_costs = sess.run([costs.compute_layer_style_cost(a_S, model[n])
                                    for a_S, n in zip(style, names)])
        extras.append({"layer_costs": np.asarray(layer_costs, np.float64),
                       "weights": np.asarray([w for _, w in case["style_layers"]], np.float64)})
    return extras


@functools.lru_cache(maxsize=None)
def reference(name: str) -> tuple:
    """(cases, expected outputs, extras) for `name`, computed once, in this process."""
    if name not in catalog.POINTS:
        raise NSTError(f"{name!r} is not a graded function; graded: {', '.join(catalog.GRADED_FUNCTIONS)}")
    cases = cases_module.build_cases(name)
    expected = runner.run_cases(name, getattr(costs, name), cases)
    bad = [out for out in expected if "error" in out]
    if bad:
        raise RuntimeError(f"the reference {name} failed on its own cases: {bad[0]['error']}")
    extras = _style_extras(cases) if name == "compute_style_cost" else None
    return cases, expected, extras


def _selected(functions) -> tuple:
    functions = tuple(functions or catalog.GRADED_FUNCTIONS)
    unknown = [f for f in functions if f not in catalog.POINTS]
    if unknown:
        raise NSTError(f"unknown graded function(s) {', '.join(unknown)}; choose from "
                       f"{', '.join(catalog.GRADED_FUNCTIONS)}")
    return functions


def grade_submissions(submissions: list, limits: catalog.Limits | None = None,
                      functions: Iterable[str] | None = None, jobs: int = 1) -> list:
    """A SubmissionGrade per submission; every function runs in its own sandboxed process.

    jobs: how many sandbox workers run side by side (each holds TensorFlow, about 650 MB).
    """
    _check_jobs(jobs)
    limits = limits or catalog.Limits()
    functions = _selected(functions)
    tasks = []
    for number, submission in enumerate(submissions):
        for name in functions:
            if submission.error is None and name in submission.sources:
                tasks.append(dispatch.Task(f"{number}:{name}", name, submission.sources[name],
                                           reference(name)[0], limits))
    results = dispatch.run_tasks(tasks, jobs) if tasks else {}
    graded = []
    for number, submission in enumerate(submissions):
        grades = {}
        for name in functions:
            if submission.error is not None:
                grades[name] = failed(name, "unreadable", submission.error)
            elif name not in submission.sources:
                grades[name] = failed(name, "missing", f"no cell headed "
                                                       f"'{catalog.GRADED_HEADER} {name}' in the notebook")
            else:
                grades[name] = grade_result(name, results[f"{number}:{name}"], limits)
        graded.append(SubmissionGrade(submission.student, str(submission.path), grades,
                                      submission.error))
    return graded


def grade_result(name: str, result: dict, limits) -> FunctionGrade:
    """The grade of one sandbox result (untrusted data: anything malformed fails)."""
    try:
        return _grade_result(name, result, limits)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError):
        return failed(name, "crashed", "returned no usable result (malformed output)")


def _grade_result(name: str, result: dict, limits) -> FunctionGrade:
    if not isinstance(result, dict):
        return failed(name, "crashed", "returned no usable result")
    verdict = sandbox_failure(name, result, limits)
    if verdict is not None:
        return verdict
    cases, expected, extras = reference(name)
    error = result.get("definition_error")
    if isinstance(error, dict):
        grade = assess(name, cases, expected, [{"error": error}] * len(cases), limits, extras)
        if grade.diagnosis == "raises":
            grade.feedback = (f"the cell does not run: {error.get('type')}: {error.get('message')}")
            grade.diagnosis = "cell_error"
        return grade
    return assess(name, cases, expected, result.get("outputs"), limits, extras)


def grade_paths(paths, limits: catalog.Limits | None = None, functions=None, jobs: int = 1) -> list:
    """Grade every notebook given, or found in the folders given."""
    _check_jobs(jobs)
    return grade_submissions(extract.find_submissions(paths), limits, functions, jobs)


def _check_jobs(jobs) -> None:
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise NSTError(f"jobs must be a positive whole number, got {jobs!r}")


def check(fn) -> None:
    """Self-check one graded function in a notebook: prints the grader's feedback for it.

    Runs in the notebook's own process (no sandbox), on the grader's cases and checks.
    """
    name = getattr(fn, "__name__", None)
    if name == "model_nn":  # the ungraded loop exercise: its own check against the reference loop
        from ..loop_check import check_model_nn

        print(check_model_nn(fn))
        return
    if name not in catalog.POINTS:
        raise NSTError(f"check() takes one of the graded functions "
                       f"({', '.join(catalog.GRADED_FUNCTIONS)}), got {name!r}")
    cases, expected, extras = reference(name)
    outputs = runner.run_cases(name, runner.with_dependencies(fn, name), cases)
    print(assess(name, cases, expected, outputs, None, extras).line())
