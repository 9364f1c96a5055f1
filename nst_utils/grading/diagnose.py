"""From what a function returned (or did) to a grade: pass/fail, points and one line of feedback.

The expected outputs come from the reference implementation, computed by the grader itself.
A wrong answer is explained by its effect: a named classic mistake (mistakes.py), a wrong
normalisation factor, a value where a tensor is needed, an exception, or the sandbox's verdict.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

import numpy as np

from ..reference import PUBLISHED, PUBLISHED_TOLERANCE
from . import catalog, mistakes
from .cases import PUBLISHED_LABEL

#: What each function's normalisation factor should be, for the feedback.
NORMALISATION = {"compute_content_cost": "1/(4 n_H n_W n_C)",
                 "compute_layer_style_cost": "1/(4 n_C^2 (n_H n_W)^2)"}
FIRST_INPUT = {"compute_content_cost": "a_C", "compute_layer_style_cost": "a_S"}
NOT_IMPLEMENTED = ("not implemented yet: write your code between ### START CODE HERE ### and "
                   "### END CODE HERE ###")


@dataclasses.dataclass
class FunctionGrade:
    """The grade of one function of one submission."""

    name: str
    passed: bool
    points: int
    max_points: int
    diagnosis: str  # 'correct', a mistake's key, or what went wrong (e.g. 'timeout')
    feedback: str

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return f"{self.name}: {verdict} {self.points}/{self.max_points} - {self.feedback}"


def failed(name: str, diagnosis: str, feedback: str) -> FunctionGrade:
    return FunctionGrade(name, False, 0, catalog.POINTS[name], diagnosis, feedback)


def _passed(name: str, cases: list) -> FunctionGrade:
    if cases[0]["label"] == PUBLISHED_LABEL:
        published = f"the published value {PUBLISHED[name]}" if name in PUBLISHED else "the published value"
        what = f"{published} on the test cell's inputs and {len(cases) - 1} more cases agree"
    else:
        what = f"all {len(cases)} cases agree"
    return FunctionGrade(name, True, catalog.POINTS[name], catalog.POINTS[name], "correct",
                         f"correct: {what} with the reference (relative tolerance {catalog.RTOL:g})")


def sandbox_failure(name: str, result: dict, limits) -> Optional[FunctionGrade]:
    """The grade for a run the sandbox stopped or flagged, or None if it ran normally."""
    status = result.get("status")
    if status == "timeout":
        return failed(name, "timeout", f"did not return within {limits.time:g} s "
                                       f"(an endless loop?); it must finish in well under a second")
    if status == "output":
        return failed(name, "output", f"printed more than {limits.output_bytes} bytes; remove the prints")
    if status == "files":
        return failed(name, "files", f"wrote files ({', '.join(result.get('files', []))}); "
                                     f"graded functions must not write files")
    if status == "forbidden":
        what = "; ".join(dict.fromkeys(result.get("blocked", [])))
        return failed(name, "forbidden", f"tried to {what}, which graded code may not do")
    if status == "exit":
        return failed(name, "exit", f"ended the process (exit status {result.get('exit_code')}) "
                                    f"instead of returning; never call sys.exit or os._exit")
    if status == "crashed":
        detail = result.get("detail") or f"killed by signal {result.get('signal')}"
        return failed(name, "crashed", f"crashed the process ({detail}); out of memory or a "
                                       f"native crash")
    if status == "sandbox":
        detail = result.get("detail") if isinstance(result.get("detail"), dict) else {}
        return failed(name, "sandbox", f"could not be graded: the sandbox failed to start "
                                       f"({detail.get('type')}: {detail.get('message')}); "
                                       f"not the submission's fault, grade it again")
    if status != "ok":
        return failed(name, "crashed", f"could not be run (sandbox status {status!r})")
    return None


def _error_grade(name: str, error: dict, label: str, limits=None) -> FunctionGrade:
    kind, message = error.get("type", "Exception"), error.get("message", "")
    if kind == "NotImplementedError":
        return failed(name, "not_implemented", NOT_IMPLEMENTED)
    if kind == "SystemExit":
        return failed(name, "exit", "called sys.exit() instead of returning; never exit from a "
                                    "graded function")
    if kind in ("MemoryError", "ResourceExhaustedError"):
        limit = f" (limit {limits.memory_mb} MB)" if limits else ""
        return failed(name, "memory", f"ran out of memory{limit}; the cost needs only a few "
                                      f"small tensors")
    if kind == "Blocked":
        return failed(name, "forbidden", message.replace("blocked by the grader: graded code may not",
                                                         "tried to") + ", which graded code may not do")
    if kind in ("PermissionDeniedError", "PermissionError"):
        return failed(name, "forbidden", "tried to write where it may not (the system refused); "
                                         "graded functions must not touch files")
    if kind == "NotDefined":
        return failed(name, "not_defined", message)
    where = f" (on {label})" if label else ""
    return failed(name, "raises", f"raises {kind}: {message}{where}")


def _close(value, expected, atol=catalog.ATOL) -> bool:
    value, expected = np.asarray(value, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    return value.shape == expected.shape and bool(np.allclose(value, expected, rtol=catalog.RTOL,
                                                              atol=atol))


def normalisation_factor(name, cases, values, expected) -> Optional[str]:
    """value/expected as '4 n_H n_W n_C' or '0.25 (n_H n_W)^-1', if it is such a product, else None."""
    if name not in NORMALISATION:
        return None
    rows, logs = [], []
    for case, value, want in zip(cases, values, expected):
        if value is None or np.shape(value) != () or want == 0 or value == 0:
            continue
        ratio = float(value) / float(want)
        if ratio <= 0 or not math.isfinite(ratio):
            return None
        _, n_H, n_W, n_C = np.shape(case["a_G"])
        rows.append([math.log(n_H * n_W), math.log(n_C), 1.0])
        logs.append(math.log(ratio))
    if len(rows) < 4:
        return None
    coef, *_ = np.linalg.lstsq(np.array(rows), np.array(logs), rcond=None)
    if np.max(np.abs(np.array(rows) @ coef - logs)) > 1e-3:
        return None
    a, b = (round(c) for c in coef[:2])
    if abs(coef[0] - a) > 0.02 or abs(coef[1] - b) > 0.02:
        return None
    constant = math.exp(coef[2])
    parts = [f"{constant:.4g}" if abs(constant - 1) > 1e-3 else "",
             {0: "", 1: "n_H n_W"}.get(a, f"(n_H n_W)^{a}"),
             {0: "", 1: "n_C"}.get(b, f"n_C^{b}")]
    factor = " ".join(p for p in parts if p)
    return factor or None


def assess(name: str, cases: list, expected: list, outputs, limits=None, extras=None) -> FunctionGrade:
    """Grade `outputs` (one per case, from runner.run_cases) against the reference's `expected`."""
    if not isinstance(outputs, list) or len(outputs) != len(cases):
        return failed(name, "crashed", "returned no usable result")
    errors = [(i, out["error"]) for i, out in enumerate(outputs)
              if isinstance(out, dict) and isinstance(out.get("error"), dict)]
    for i, error in errors:  # the sandbox-like verdicts first, whatever case they hit
        grade = _error_grade(name, error, "", limits)
        if grade.diagnosis not in ("raises",):
            return grade
    if errors:
        on_numpy = all(cases[i].get("as_numpy") for i, _ in errors)
        if on_numpy and any("ndarray" in e.get("message", "") for _, e in errors):
            first = FIRST_INPUT[name]
            return failed(name, "shape_from_wrong_tensor",
                          f"shapes taken from the wrong tensor: in the real run {first} is a numpy "
                          f"array (from sess.run), which has no get_shape(); take n_H, n_W, n_C "
                          f"from a_G")
        i, error = errors[0]
        return _error_grade(name, error, cases[i]["label"], limits)
    values = []
    for case, out, want in zip(cases, outputs, expected):
        kind = out.get("kind") if isinstance(out, dict) else None
        if want.get("kind") == "tensor" and kind in ("numpy", "float"):
            what = "numpy value" if kind == "numpy" else "Python float"
            return failed(name, "not_a_tensor",
                          f"returns a {what} where a tensor is expected ({case['label']}): build the "
                          f"result with TensorFlow ops and return the tensor, without sess.run, "
                          f".eval() or float(), so that the optimizer can differentiate it")
        if kind in ("tensor", "numpy", "float") and out.get("value") is None:
            return failed(name, "wrong_shape", f"returns shape {tuple(out.get('shape') or ())} on "
                                               f"{case['label']}, expected {tuple(want.get('shape') or ())}")
        if kind not in ("tensor", "numpy", "float"):
            shown = "None (is `return` missing?)" if kind == "NoneType" else f"a {kind}"
            return failed(name, "wrong_type", f"returns {shown} on {case['label']}; expected a tensor")
        values.append(np.asarray(out["value"], dtype=np.float64))
    wants = [np.asarray(want["value"], dtype=np.float64) for want in expected]
    published_tol = PUBLISHED_TOLERANCE.get(name, 1e-5)
    if outputs[0].get("kind") == "tensor":
        published_tol = max(published_tol, 1e-5)  # float32 arithmetic is fine
    ok = [values[0].shape == wants[0].shape and bool(np.all(np.abs(values[0] - wants[0]) <= published_tol))]
    ok += [_close(v, w) for v, w in zip(values[1:], wants[1:])]
    if all(ok):
        return _passed(name, cases)
    mistake = mistakes.matching_mistake(name, cases, values, _close, extras)
    if mistake is not None:
        return failed(name, mistake.key, mistake.message)
    for case, value, want in zip(cases, values, wants):
        if value.shape != want.shape:
            return failed(name, "wrong_shape", f"returns shape {value.shape} on {case['label']}, "
                                               f"expected {want.shape}")
    factor = normalisation_factor(name, cases, values, wants)
    if factor:
        return failed(name, "normalisation", f"missing or wrong normalisation factor: your value is "
                                             f"{factor} times the expected one; the factor is "
                                             f"{NORMALISATION[name]}")
    if name == "total_cost" and all(ok[i] for i, c in enumerate(cases) if "alpha" in c):
        return failed(name, "defaults", "wrong default values: the defaults are alpha=10, beta=40")
    i = ok.index(False)
    expected_text = (f"{PUBLISHED[name]}" if i == 0 and name in PUBLISHED
                     else np.array2string(wants[i], precision=6))
    return failed(name, "wrong_value", f"wrong value on {cases[i]['label']}: got "
                                       f"{np.array2string(values[i], precision=6)}, expected "
                                       f"{expected_text}")
