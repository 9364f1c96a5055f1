"""`check(fn)`: in a notebook, the grader's feedback for one function on the public cases.

Runs in the notebook's own process, on the public cases only, against their answer key: in the
repository the key is computed from the reference; in the students' build of the package it is
read from `public_key.json` beside this module (no reference code ships there). A function
that calls another graded one is first run as it is; if it fails because that other function
fails, it is tried with a correct one in its place, as the grader does: the reference, or, in
the students' build, a stand-in that knows the answers to what the function asks on the public
cases (stored with them); asked anything else, the line says to fix the other one first.
"""

from __future__ import annotations

import functools
import inspect
import sys
import types
from pathlib import Path

import numpy as np

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


def _code_objects(code):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def _history_source(fn):
    """The source of the last cell of IPython's history that defines `fn` with the same code
    (a cell under %%time is compiled by the magic, so `inspect` cannot find it); None if none."""
    from .extract import python_source

    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    code = getattr(fn, "__code__", None)
    if shell is None or code is None:
        return None
    for raw in reversed(getattr(shell.history_manager, "input_hist_raw", [])):
        source = python_source(raw) if f"def {code.co_name}" in raw else None
        if source is None:
            continue
        try:
            compiled = compile(source, "<cell>", "exec")
        except (SyntaxError, ValueError):
            continue
        if any(
            c.co_name == code.co_name and c.co_code == code.co_code and c.co_names == code.co_names
            for c in _code_objects(compiled)
        ):
            return source
    return None


def _untouched(fn) -> bool:
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        source = _history_source(fn)
    return source is not None and is_untouched_blank(source)


def _known(value, answers: list):
    """A A^T for matrix A (or each of a batch) when `answers` ([[matrix, its answer]]) hold A
    with its rows and columns in any order (the answer's rows and columns then follow the
    rows' order); None when they do not. Compared as float32, which the cases' values are."""
    A = np.asarray(value, dtype=np.float32)
    if A.ndim > 2:
        parts = [_known(a, answers) for a in A.reshape((-1,) + A.shape[-2:])]
        if any(p is None for p in parts):
            return None
        return np.stack(parts).reshape(A.shape[:-1] + A.shape[-2:-1])
    for matrix, answer in answers:
        U = np.asarray(matrix, dtype=np.float32)
        if A.ndim != 2 or U.shape != A.shape:
            continue
        rows = {np.sort(row).tobytes(): i for i, row in enumerate(U)}
        order = [rows.get(np.sort(row).tobytes()) for row in A]
        if None in order or len(set(order)) != len(order):
            continue
        V = U[order]
        if np.array_equal(V[:, np.lexsort(V[::-1])], A[:, np.lexsort(A[::-1])]):
            return np.asarray(answer)[np.ix_(order, order)]
    return None


def _stand_in(dep: str, key: dict, missed: list):
    """`dep` answering from key["answers"] (see _known), or None when the key has none; each
    question it cannot answer is appended to `missed`."""
    answers = key.get("answers", {}).get(dep)
    if answers is None:
        return None

    def ask(_, value):
        found = _known(value, answers)
        if found is None:
            missed.append(np.shape(value))
            raise ValueError(f"{dep} was asked about a matrix the self-check does not know")
        return found

    return runner.oracle_function(dep, ask)


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
        missed = []
        reference = _reference(dep) or _stand_in(dep, key, missed)
        if reference is None:
            return grade, f" (your {dep} fails too, fix it first: {own_grade.feedback})"
        with_reference = _grade(runner.with_globals(fn, {dep: reference}), key)
        if missed:
            return grade, f" (your {dep} fails too, fix it first: {own_grade.feedback})"
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
