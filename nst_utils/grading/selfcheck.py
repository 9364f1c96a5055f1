"""`check(fn)`: in a notebook, the grader's feedback for one function on the public cases.

Runs in the notebook's own process, on the public cases only, against their answer key: in the
repository the key is computed from the reference; in the students' build of the package it is
read from `public_key.json` beside this module (no reference code ships there). A function
that calls another graded one is first run as it is; if it fails because that other function
fails, the line says so, and where the reference is at hand it is tried in its place.
"""

from __future__ import annotations

import functools
import inspect
import types
from pathlib import Path

from ..errors import NSTError
from .blanks import is_untouched_blank
from .catalog import FunctionSpec
from .diagnose import NOT_IMPLEMENTED, FunctionGrade, assess, failed
from .sandbox.box import protocol, runner

STORED_KEY = Path(__file__).with_name("public_key.json")


@functools.lru_cache(maxsize=None)
def public_keys() -> dict:
    """{name: answer key of the public cases}, stored (students' build) or computed."""
    if STORED_KEY.is_file():
        keys = protocol.loads(STORED_KEY.read_text(encoding="utf-8"))
        for key in keys.values():
            key["spec"] = FunctionSpec.from_dict(key["spec"])
        return keys
    from .answer_key import public_key
    from .functions import RECORDS

    return {record.name: public_key(record.name) for record in RECORDS}


def _reference(name: str):
    """The package's own implementation of `name`, or None in the students' build."""
    try:
        from .. import costs
    except ImportError:
        return None
    if getattr(costs, "STUDENT_BUILD", False):
        return None
    return getattr(costs, name, None)


def _untouched(fn) -> bool:
    try:
        return is_untouched_blank(inspect.getsource(fn))
    except (OSError, TypeError):
        return False


def _grade(fn, key) -> FunctionGrade:
    if _untouched(fn):
        return failed(key["spec"], "not_implemented", NOT_IMPLEMENTED)
    return assess(key, runner.run_cases(fn, key["cases"]))


def self_grade(fn):
    """(grade, note): the grade the grader would give `fn` on the public cases (a function that
    fails only through another graded one it calls is graded with the reference in its place,
    as the grader does), and a note for the student when their own dependency fails too."""
    name = getattr(fn, "__name__", None)
    keys = public_keys()
    if name not in keys:
        raise NSTError(
            f"check() takes one of the graded functions ({', '.join(keys)}) or "
            f"model_nn, got {name!r}"
        )
    key = keys[name]
    if isinstance(fn, types.FunctionType):  # a dependency not defined yet: the reference, if any
        missing = {
            dep: _reference(dep) for dep in key["spec"].dependencies if dep not in fn.__globals__
        }
        fn = runner.with_globals(fn, {dep: ref for dep, ref in missing.items() if ref is not None})
    grade = _grade(fn, key)
    if grade.passed or grade.diagnosis == "not_implemented":
        return grade, ""
    for dep in key["spec"].dependencies:
        own = fn.__globals__.get(dep) if isinstance(fn, types.FunctionType) else None
        if not callable(own) or dep not in keys:
            continue
        own_grade = _grade(own, keys[dep])
        if own_grade.passed:
            continue
        reference = _reference(dep)
        if reference is None:
            return grade, f" (your {dep} fails too, fix it first: {own_grade.feedback})"
        with_reference = _grade(runner.with_globals(fn, {dep: reference}), key)
        if with_reference.passed:
            with_reference.feedback = (
                f"passes with the reference {dep}; your {dep} fails: {own_grade.feedback}"
            )
            return with_reference, ""
        return with_reference, (
            f" (with the reference {dep}; your {dep} fails too: {own_grade.feedback})"
        )
    return grade, ""


def check_line(fn) -> str:
    """The one-line verdict `check` prints: the grader's line for the public cases."""
    if getattr(fn, "__name__", None) == "model_nn":
        try:
            from .loop_check import check_model_nn
        except ImportError:
            raise NSTError("this build of nst_utils has no self-check for model_nn") from None
        return check_model_nn(fn, check_line)
    grade, note = self_grade(fn)
    return grade.line() + note


def check(fn) -> None:
    """Print the grader's feedback for graded function `fn` (or model_nn's self-check)."""
    print(check_line(fn))
