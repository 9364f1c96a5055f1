"""From what a function returned (or did) to a grade: pass/fail, points and one line of feedback.

Everything here works on data: a function's answer key (its spec, cases, expected outputs and
the values its known mistakes give, see answer_key.py) and the outputs a run produced. No
reference code is needed, so the same module serves the grader and a student's self-check.
A wrong answer is explained by its effect: a named mistake, a wrong normalisation factor,
wrong default values, a value where a tensor is needed, numpy on a tensor, an exception, or
the sandbox's verdict.
"""

from __future__ import annotations

import dataclasses
import math
import re
import unicodedata
from typing import Optional

import numpy as np

from . import catalog

PUBLISHED_LABEL = "the test cell's inputs"
NOT_IMPLEMENTED = (
    "not implemented yet: write your code between the START CODE HERE and END CODE HERE lines"
)
#: Messages TensorFlow gives when numpy functions are applied to a graph tensor.
_NUMPY_ON_TENSOR = (
    "symbolic tf.Tensor",
    "symbolic Tensor",
    "numpy array",
    "__array__",
    "Cannot convert a symbolic",
)


@dataclasses.dataclass
class FunctionGrade:
    """The grade of one function of one submission."""

    name: str
    passed: bool
    points: int
    max_points: int
    diagnosis: str  # 'correct', a mistake's key, or what went wrong (e.g. 'timeout')
    feedback: str
    public_feedback: Optional[str] = None  # on the public cases only, when hidden ones exist

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return f"{self.name}: {verdict} {self.points}/{self.max_points} - {self.feedback}"


#: Feedback is one line of at most this many characters, whatever a submission raised or named.
MAX_FEEDBACK = 600


def one_line(text, limit: int = MAX_FEEDBACK) -> str:
    """`text` as one printable line: control and format characters (newlines, terminal escapes,
    bidirectional overrides), which a submission controls through its exceptions and file names,
    become spaces, so that it cannot forge rows of the class table; cut at `limit`."""
    text = "".join(" " if unicodedata.category(c)[0] == "C" else c for c in str(text))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def failed(spec, diagnosis: str, feedback: str) -> FunctionGrade:
    return FunctionGrade(spec.name, False, 0, spec.points, diagnosis, one_line(feedback))


def sandbox_failure(spec, result: dict, limits) -> Optional[FunctionGrade]:
    """The grade for a run the sandbox stopped or flagged, or None if it ran normally."""
    status = result.get("status")
    if status == "timeout":
        return failed(
            spec,
            "timeout",
            f"did not return within {limits.time:g} s (an endless "
            f"loop?); it must finish in well under a second",
        )
    if status == "output":
        return failed(
            spec, "output", f"printed more than {limits.output_bytes} bytes; remove the prints"
        )
    if status == "files":
        return failed(
            spec,
            "files",
            f"wrote files ({', '.join(map(str, result.get('files', [])))}); "
            f"graded functions must not write files",
        )
    if status == "forbidden":
        what = "; ".join(dict.fromkeys(map(str, result.get("blocked", []))))
        return failed(spec, "forbidden", f"tried to {what}, which graded code may not do")
    if status == "protocol":
        return failed(
            spec,
            "protocol",
            f"wrote to the grader's channel (file descriptor {result.get('fd', '?')}, the "
            f"sandbox's protocol pipe) instead of returning its result: graded code may not "
            f"write to file descriptors it did not open; return the value",
        )
    if status == "exit":
        return failed(
            spec,
            "exit",
            f"ended the process (exit status {result.get('exit_code')}) "
            f"instead of returning; never call sys.exit or os._exit",
        )
    if status == "crashed":
        detail = result.get("detail") or f"killed by signal {result.get('signal')}"
        return failed(
            spec, "crashed", f"crashed the process ({detail}); out of memory or a native crash"
        )
    if status == "sandbox":
        detail = result.get("detail") if isinstance(result.get("detail"), dict) else {}
        return failed(
            spec,
            "sandbox",
            f"could not be graded: the sandbox failed to start "
            f"({detail.get('type')}: {detail.get('message')}); "
            f"not the submission's fault, grade it again",
        )
    if status != "ok":
        return failed(spec, "crashed", f"could not be run (sandbox status {status!r})")
    return None


def _numpy_on_tensor(kind: str, message: str) -> bool:
    return kind in ("NotImplementedError", "TypeError", "ValueError") and any(
        m in message for m in _NUMPY_ON_TENSOR
    )


def error_grade(spec, error: dict, label: str = "", limits=None) -> FunctionGrade:
    kind, message = str(error.get("type", "Exception")), str(error.get("message", ""))
    if _numpy_on_tensor(kind, message):
        return failed(
            spec,
            "numpy_on_tensor",
            f"numpy operations on a tensor ({kind}: {message[:120]}): the inputs are "
            f"TensorFlow tensors; use tf.reduce_sum, tf.square, tf.matmul, ... instead "
            f"of np.sum, np.square, np.dot, ...",
        )
    if kind == "SystemExit":
        return failed(
            spec,
            "exit",
            "called sys.exit() instead of returning; never exit from a graded function",
        )
    if kind in ("MemoryError", "ResourceExhaustedError"):
        limit = f" (limit {limits.memory_mb} MB)" if limits else ""
        return failed(
            spec, "memory", f"ran out of memory{limit}; the cost needs only a few small tensors"
        )
    if kind == "Blocked":
        return failed(
            spec,
            "forbidden",
            message.replace("blocked by the grader: graded code may not", "tried to")
            + ", which graded code may not do",
        )
    if kind in ("PermissionDeniedError", "PermissionError"):
        return failed(
            spec,
            "forbidden",
            "tried to write where it may not (the system refused); "
            "graded functions must not touch files",
        )
    if kind == "NotDefined":
        return failed(spec, "not_defined", message)
    where = f" (on {label})" if label else ""
    shapes = (
        _SHAPE_ERROR.search(message) if kind in ("ValueError", "InvalidArgumentError") else None
    )
    if shapes:
        return failed(spec, "shape_error", _shape_feedback(shapes, where))
    return failed(spec, "raises", f"raises {kind}: {message}{where}")


#: TensorFlow's text when an op's input shapes do not fit, as graph construction raises it.
_SHAPE_ERROR = re.compile(
    r"^(?P<what>.*?) for '\{\{node (?P<node>[^}]*)\}\} = (?P<op>\w+)\[.*"
    r"with input shapes: (?P<shapes>.*?)(?: and with input tensors.*)?\.?$"
)
#: The likely cause of a shape mismatch, by the family of the op that raised it.
_SHAPE_HINTS = {
    ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"): (
        "in tf.matmul(X, Y) the columns of X must match the rows of Y: for the Gram matrix "
        "A A^T of A (n_C, n_H*n_W), tf.matmul(A, A) needs a transpose, on its second factor"
    ),
    ("Reshape",): (
        "a reshape must keep the number of values: take n_H, n_W, n_C from a_G "
        "(m, n_H, n_W, n_C = a_G.get_shape().as_list()) and reshape to [n_H * n_W, n_C]"
    ),
    ("Transpose",): "tf.transpose(x, perm) needs one axis in perm per axis of x",
    ("Sub", "Add", "AddV2", "Mul", "RealDiv", "SquaredDifference", "Maximum", "Minimum"): (
        "element-wise operations need operands of the same shape: unroll and transpose both "
        "activations (or both Gram matrices) the same way"
    ),
}
_ANY_SHAPE_HINT = "print each tensor's get_shape() to find the one that is not what you expect"


def _shape_feedback(match, where: str) -> str:
    """One line naming the op, the shapes that do not fit and their likely cause."""
    op, shapes = match.group("op"), match.group("shapes").rstrip(".")
    hint = next((h for ops, h in _SHAPE_HINTS.items() if op in ops), _ANY_SHAPE_HINT)
    return (
        f"shapes do not fit in {op} (node {match.group('node')}): input shapes {shapes}; "
        f"{match.group('what')}{where}; {hint}"
    )


def close(value, expected) -> bool:
    value, expected = np.asarray(value, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    return value.shape == expected.shape and bool(
        np.allclose(value, expected, rtol=catalog.RTOL, atol=catalog.ATOL)
    )


def _dims_of_case(case):
    """(n_H * n_W, n_C) of the case's a_G argument."""
    a_G = next(a["value"] for a in case["args"] if a["name"] == "a_G")
    _, n_H, n_W, n_C = np.shape(a_G)
    return n_H * n_W, n_C


def normalisation_factor(spec, cases, values, expected) -> Optional[str]:
    """value/expected as '4 n_H n_W n_C' or '0.25 (n_H n_W)^-1' if it is such a product, or None."""
    if not spec.normalisation:
        return None
    rows, logs = [], []
    for case, value, want in zip(cases, values, expected):
        if np.shape(value) != () or want == 0 or value == 0:
            continue
        ratio = float(value) / float(want)
        if ratio <= 0 or not math.isfinite(ratio):
            return None
        pixels, channels = _dims_of_case(case)
        rows.append([math.log(pixels), math.log(channels), 1.0])
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
    parts = [
        f"{constant:.4g}" if abs(constant - 1) > 1e-3 else "",
        {0: "", 1: "n_H n_W"}.get(a, f"(n_H n_W)^{a}"),
        {0: "", 1: "n_C"}.get(b, f"n_C^{b}"),
    ]
    return " ".join(p for p in parts if p) or None


def _matching_mistake(mistakes, values) -> Optional[dict]:
    """The first mistake whose values match the student's on every case it can judge."""
    for mistake in mistakes:
        judged = 0
        for value, wrong in zip(values, mistake["values"]):
            if wrong is None:
                continue
            if not close(value, wrong):
                break
            judged += 1
        else:
            if judged:
                return mistake
    return None


def _passed(spec, cases) -> FunctionGrade:
    if cases and cases[0]["label"] == PUBLISHED_LABEL:
        published = (
            f"the published value {spec.published_text}"
            if spec.published_text
            else "the published value"
        )
        what = f"{published} on the test cell's inputs and {len(cases) - 1} more cases agree"
    else:
        what = f"all {len(cases)} cases agree"
    return FunctionGrade(
        spec.name,
        True,
        spec.points,
        spec.points,
        "correct",
        f"correct: {what} with the reference (relative tolerance {catalog.RTOL:g})",
    )


def _single_precision(output: dict) -> bool:
    """Whether an output was computed to float32's precision (a tensor, or a float32 value), so
    that a published value given to more digits is checked to float32's 1e-5 only."""
    return output.get("kind") == "tensor" or output.get("dtype") == "float32"


def assess(key: dict, outputs, limits=None) -> FunctionGrade:
    """Grade `outputs` (one per case, from runner.run_cases) against answer key `key`."""
    spec, cases, expected = key["spec"], key["cases"], key["expected"]
    if not isinstance(outputs, list) or len(outputs) != len(cases):
        return failed(spec, "crashed", "returned no usable result")
    errors = [
        (i, out["error"])
        for i, out in enumerate(outputs)
        if isinstance(out, dict) and isinstance(out.get("error"), dict)
    ]
    for i, error in errors:  # the sandbox-like verdicts first, whatever case they hit
        grade = error_grade(spec, error, "", limits)
        if grade.diagnosis != "raises":
            return grade
    if errors:
        on_numpy = all(any(a["as"] == "numpy" for a in cases[i]["args"]) for i, _ in errors)
        if on_numpy and any("ndarray" in str(e.get("message", "")) for _, e in errors):
            return failed(
                spec,
                "shape_from_wrong_tensor",
                f"shapes taken from the wrong tensor: in the real run {spec.first_input} "
                f"is a numpy array (from sess.run), which has no get_shape(); take "
                f"n_H, n_W, n_C from a_G",
            )
        i, error = errors[0]
        return error_grade(spec, error, cases[i]["label"], limits)
    values = []
    for case, out, want in zip(cases, outputs, expected):
        kind = out.get("kind") if isinstance(out, dict) else None
        if want.get("kind") == "tensor" and kind in ("numpy", "float"):
            what = "numpy value" if kind == "numpy" else "Python float"
            return failed(
                spec,
                "not_a_tensor",
                f"returns a {what} where a tensor is expected ({case['label']}): build the "
                f"result with TensorFlow ops and return the tensor, without sess.run, "
                f".eval() or float(), so that the optimizer can differentiate it",
            )
        if kind in ("tensor", "numpy", "float") and out.get("value") is None:
            return failed(
                spec,
                "wrong_shape",
                f"returns shape {tuple(out.get('shape') or ())} on "
                f"{case['label']}, expected {tuple(want.get('shape') or ())}",
            )
        if kind not in ("tensor", "numpy", "float"):
            shown = "None (is `return` missing?)" if kind == "NoneType" else f"a {kind}"
            return failed(
                spec, "wrong_type", f"returns {shown} on {case['label']}; expected a tensor"
            )
        values.append(np.asarray(out["value"], dtype=np.float64))
    wants = [np.asarray(want["value"], dtype=np.float64) for want in expected]
    for case, value in zip(cases, values):
        if not np.all(np.isfinite(value)):
            return failed(
                spec,
                "not_finite",
                f"returns {np.array2string(value, precision=4)} on "
                f"{case['label']}: a square root of a negative "
                f"number, or a division by zero?",
            )
    ok = []
    for case, out, value, want in zip(cases, outputs, values, wants):
        if case["label"] == PUBLISHED_LABEL:
            tolerance = max(spec.published_tolerance, 1e-5 if _single_precision(out) else 0)
            ok.append(value.shape == want.shape and bool(np.all(np.abs(value - want) <= tolerance)))
        else:
            ok.append(close(value, want))
    if all(ok):
        return _passed(spec, cases)
    mistake = _matching_mistake(key.get("mistakes", ()), values)
    if mistake is not None:
        return failed(spec, mistake["key"], mistake["message"])
    for case, value, want in zip(cases, values, wants):
        if value.shape != want.shape:
            return failed(
                spec,
                "wrong_shape",
                f"returns shape {value.shape} on {case['label']}, expected {want.shape}",
            )
    factor = normalisation_factor(spec, cases, values, wants)
    if factor:
        return failed(
            spec,
            "normalisation",
            f"missing or wrong normalisation factor: your value is "
            f"{factor} times the expected one; the factor is "
            f"{spec.normalisation}",
        )
    if (
        spec.defaults
        and all(ok[i] for i, c in enumerate(cases) if c.get("kwargs"))
        and not all(close(v, w) for c, v, w in zip(cases, values, wants) if not c.get("kwargs"))
    ):
        return failed(spec, "defaults", f"wrong default values: the defaults are {spec.defaults}")
    i = ok.index(False)
    expected_text = (
        spec.published_text
        if cases[i]["label"] == PUBLISHED_LABEL and spec.published_text
        else np.array2string(wants[i], precision=6)
    )
    return failed(
        spec,
        "wrong_value",
        f"wrong value on {cases[i]['label']}: got "
        f"{np.array2string(values[i], precision=6)}, expected "
        f"{expected_text}",
    )
