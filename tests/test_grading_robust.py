"""The grader against hostile data rather than hostile code: messages a sandbox may send,
files a class folder may hold, text a submission controls. No sandbox is started here."""

import json
import os
import tempfile
import threading

import numpy as np
import pytest

from nst_utils.grading import extract, report
from nst_utils.grading.diagnose import failed
from nst_utils.grading.functions import BY_NAME, _gram_oracle
from nst_utils.grading.grader import SubmissionGrade, grade_result
from nst_utils.grading import Limits
from nst_utils.grading.sandbox import host
from nst_utils.grading.sandbox.box import protocol


def _array(values, dtype, shape):
    return json.dumps({"__ndarray__": values, "dtype": dtype, "shape": shape})


def test_messages_decode_numbers_only():
    back = protocol.loads(protocol.dumps(np.arange(6, dtype=np.float32).reshape(2, 3)))
    assert back.dtype == np.float32 and back.tolist() == [[0, 1, 2], [3, 4, 5]]
    for text in (
        _array(["a"], "<U100000000", [1]),  # 400 MB per item, had it been decoded
        _array([1], "object", [1]),
        _array([1], "V8", [1]),
        _array([1], "S8", [1]),
        _array([], "float64", [10**7, 10**7]),
        _array([1], "float64", "1"),
        _array([1, 2], "float64", [3]),
        _array([[1], {}], "float64", [2]),
        json.dumps({"__ndarray__": [1]}),
        _array([1], "no such type", [1]),
        "[" * 100_000 + "]" * 100_000,
        "not json",
    ):
        with pytest.raises(ValueError):
            protocol.loads(text)


def test_the_gram_oracle_bounds_its_answer_not_only_its_question():
    assert _gram_oracle([[1.0, 2.0], [3.0, 4.0]]).tolist() == [[5.0, 11.0], [11.0, 25.0]]
    with pytest.raises(ValueError):
        _gram_oracle(np.ones((5000, 2)))  # 10^4 values asking for 2.5 * 10^7


def test_an_oracle_that_fails_in_any_way_gets_an_error_reply():
    def exhausted(value):
        raise MemoryError("Unable to allocate 298. GiB")

    task = host.Task(
        "0:compute_layer_style_cost",
        "compute_layer_style_cost",
        "",
        [],
        {},
        {"gram_matrix": exhausted},
    )
    reply = json.loads(host._answer(task, {"name": "gram_matrix", "value": [[1.0]]}))
    assert "error" in reply and "value" not in reply
    task.oracle = {"gram_matrix": BY_NAME["gram_matrix"].oracle}  # the grader's own stand-in
    reply = json.loads(host._answer(task, {"name": "gram_matrix", "value": np.zeros((200_000, 1))}))
    assert "error" in reply and "value" not in reply  # A A^T would need 320 GB
    reply = json.loads(host._answer(task, {"name": "compute_content_cost", "value": 1}))
    assert "not provided" in reply["error"]


@pytest.mark.slow
def test_an_unexpected_error_costs_one_submission_a_sandbox_row_not_the_class_run(monkeypatch):
    def broken(tasks, isolated, slot):
        raise KeyError("something no one foresaw")

    monkeypatch.setattr(host, "_run_one_box", broken)
    tasks = [
        host.Task(f"0:{name}", name, "", [], {"time": 1}) for name in ("gram_matrix", "total_cost")
    ]
    results = host.run_submission(tasks)
    assert {r["status"] for r in results.values()} == {"sandbox"}
    assert set(results) == {"0:gram_matrix", "0:total_cost"}


def test_fifos_devices_and_folders_named_ipynb_are_reported_not_read(tmp_path):
    os.mkfifo(tmp_path / "fifo.ipynb")
    (tmp_path / "zero.ipynb").symlink_to("/dev/zero")
    (tmp_path / "folder.ipynb").mkdir()
    (tmp_path / "-dash ünï cödé.ipynb").write_text(json.dumps({"cells": []}))
    found = {}
    reader = threading.Thread(
        target=lambda: found.update({s.student: s for s in extract.find_submissions([tmp_path])}),
        daemon=True,
    )
    reader.start()
    reader.join(30)
    assert not reader.is_alive(), "reading a FIFO blocked the class run"
    assert sorted(found) == ["-dash ünï cödé", "fifo", "zero"]
    for name in ("fifo", "zero"):
        assert "not a regular file" in found[name].error
    assert found["-dash ünï cödé"].error is None


def test_text_a_submission_controls_cannot_forge_the_class_table():
    limits = Limits()
    forged = {
        "id": "0:total_cost",
        "status": "ok",
        "definition_error": {
            "type": "Evil\nz_victim  25  25  25  25  100/100\x1b[2J",
            "message": "\r\x1b[1A" + "x" * 5000,
        },
    }
    grade = grade_result("total_cost", forged, limits)
    files = grade_result(
        "total_cost",
        {
            "id": "0:total_cost",
            "status": "files",
            "files": ["a\nb\x1b]0;title\x07", "\u202egpj.exe"],
        },
        limits,
    )
    for g in (grade, files):
        assert g.points == 0 and g.feedback.isprintable() and len(g.feedback) <= 600
    spec = BY_NAME["total_cost"].spec
    row = SubmissionGrade(
        "m\nz_victim  25  25  25  25  100/100",
        "x.ipynb",
        {"total_cost": failed(spec, "raises", "boom\nz_victim: PASS")},
    )
    table = report.table([row])
    assert len(table.splitlines()) == 4  # header, one row, a blank, one note
    assert all(line.isprintable() for line in table.splitlines())
    assert "\n" not in report.feedback_markdown(row).split("\n")[0]


def test_a_file_name_that_is_not_utf8_still_gets_a_row_in_every_report(tmp_path):
    from nst_utils.grading.grader import grade_paths

    (tmp_path / os.fsdecode(b"caf\xe9 \xff.ipynb")).write_bytes(b"\x00 not json")
    (row,) = grade_paths([tmp_path], isolation=False)
    assert row.points == 0 and "could not read" in row.error
    for text in (
        row.student,
        row.path,
        report.to_csv([row]),
        report.to_gradebook_csv([row]),
        report.to_json([row]),
        report.table([row]),
        report.feedback_markdown([row][0]),
    ):
        text.encode("utf-8")  # no surrogate left to fail the write


@pytest.mark.slow
def test_a_box_that_cannot_start_leaves_no_copy_of_its_code(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(host, "_runs_as", lambda uid: False)
    monkeypatch.setattr(host.sys, "executable", str(tmp_path / "no-such-python"))
    tasks = [host.Task("0:total_cost", "total_cost", "", [], {"time": 1})]
    results = host.run_submission(tasks, isolated=False)
    assert results["0:total_cost"]["status"] == "sandbox"
    assert list(tmp_path.iterdir()) == []


# Honest work and telling feedback, judged from data (no sandbox).


def _total_outputs(published_value, dtype):
    """The box's outputs for total_cost when every case is right except how the published one
    was returned (`published_value` as a numpy value of `dtype`)."""
    from nst_utils.grading.answer_key import grading_key

    key = grading_key("total_cost")
    outputs = [dict(want) for want in key["expected"]]
    outputs[0] = {
        "kind": "numpy",
        "value": float(np.asarray(published_value, dtype=dtype)),
        "shape": [],
        "dtype": np.dtype(dtype).name,
    }
    return {"id": "0:total_cost", "status": "ok", "outputs": outputs}, key


def test_a_total_cost_returned_as_a_numpy_float32_is_right():
    from nst_utils.grading.catalog import PUBLISHED

    result, _ = _total_outputs(PUBLISHED["total_cost"], np.float32)
    grade = grade_result("total_cost", result, Limits())
    assert grade.passed and grade.diagnosis == "correct", grade.line()


def test_a_float64_value_off_by_a_float32_rounding_is_not_called_wrong_defaults():
    from nst_utils.grading.catalog import PUBLISHED

    value = float(np.float32(PUBLISHED["total_cost"]))  # float32's rounding, returned as float64
    result, _ = _total_outputs(value, np.float64)
    grade = grade_result("total_cost", result, Limits())
    assert not grade.passed and grade.diagnosis == "wrong_value", grade.line()
    assert "default" not in grade.feedback


def test_wrong_defaults_are_still_named():
    from nst_utils.grading.answer_key import grading_key

    key = grading_key("total_cost")
    outputs = []
    for case, want in zip(key["cases"], key["expected"]):
        out = dict(want)
        if not case.get("kwargs"):  # alpha=40, beta=10 by default: only the defaults differ
            a = {x["name"]: float(np.asarray(x["value"])) for x in case["args"]}
            out["value"] = 40 * a["J_content"] + 10 * a["J_style"]
        outputs.append(out)
    grade = grade_result("total_cost", {"status": "ok", "outputs": outputs}, Limits())
    assert grade.diagnosis == "defaults" and "alpha=10, beta=40" in grade.feedback


def test_a_write_to_the_protocol_channel_is_called_what_it_is():
    grade = grade_result(
        "gram_matrix", {"id": "0:gram_matrix", "status": "protocol", "fd": 7}, Limits()
    )
    assert grade.diagnosis == "protocol" and grade.points == 0
    assert "wrote to the grader's channel (file descriptor 7" in grade.feedback
    assert "exit" not in grade.feedback


def test_a_shape_error_names_the_shapes_and_the_likely_cause():
    from nst_utils.grading.sandbox.box import runner

    def gram_matrix(A):
        return runner._tf().matmul(A, A)

    (out,) = runner.run_cases(
        gram_matrix,
        [{"label": "x", "args": [{"name": "A", "value": np.ones((3, 2)), "as": "tensor"}]}],
    )
    from nst_utils.grading.answer_key import grading_key

    result = {"status": "ok", "outputs": [out] * len(grading_key("gram_matrix")["cases"])}
    grade = grade_result("gram_matrix", result, Limits())
    assert grade.diagnosis == "shape_error", grade.line()
    assert "MatMul" in grade.feedback and "input shapes [3,2], [3,2]" in grade.feedback
    assert "tf.matmul(A, A) needs a transpose" in grade.feedback
    from nst_utils.grading.diagnose import error_grade

    message = (
        "Dimensions must be equal, but are 3 and 2 for '{{node sub}} = Sub[T=DT_FLOAT]"
        "(MatMul, MatMul_1)' with input shapes: [3,3], [2,2]."
    )
    spec = BY_NAME["compute_layer_style_cost"].spec
    grade = error_grade(spec, {"type": "ValueError", "message": message}, "random (1, 3, 5, 2)")
    assert grade.diagnosis == "shape_error" and "input shapes [3,3], [2,2]" in grade.feedback
    assert "operands of the same shape" in grade.feedback and "(on random (1, 3, 5, 2))" in (
        grade.feedback
    )


def test_the_gram_stand_in_takes_float64_and_batches(monkeypatch):
    """compute_layer_style_cost's gram_matrix in the box: a float64 matrix or a batch of them
    (..., n_C, n_H*n_W), answered by the grader's oracle; A A^T of each, in A's dtype."""
    from nst_utils.grading.sandbox.box import runner

    tf = runner._tf()
    proxy = runner.oracle_function("gram_matrix", lambda name, value: _gram_oracle(value))
    rng = np.random.default_rng(0)
    A = rng.normal(size=(2, 3, 5))
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        batched = proxy(tf.constant(A, dtype=tf.float32))
        double = proxy(tf.constant(A[0], dtype=tf.float64))
        assert batched.shape.as_list() == [2, 3, 3] and double.shape.as_list() == [3, 3]
        got_batched, got_double = sess.run([batched, double])
    assert got_double.dtype == np.float64 and got_batched.dtype == np.float32
    np.testing.assert_allclose(got_double, A[0] @ A[0].T, rtol=1e-12)
    np.testing.assert_allclose(got_batched, np.einsum("bij,bkj->bik", A, A), rtol=1e-5)
    with pytest.raises(ValueError):
        _gram_oracle(np.ones((100, 1000, 10)))  # 10^6 values asking for 10^8


def _notebook(*sources):
    return {"cells": [{"cell_type": "code", "source": s} for s in sources]}


GRADED_NAMES = ("compute_content_cost", "gram_matrix", "compute_layer_style_cost", "total_cost")
GRAM_CELL = "# GRADED FUNCTION: gram_matrix\n\ndef gram_matrix(A):\n    return A\n"


def test_the_graded_cell_is_found_under_magics_and_comments_and_by_its_definition():
    found = extract.graded_sources(
        _notebook(
            "%%time\n" + GRAM_CELL,
            "# second try\n\n#GRADED FUNCTION:  total_cost (done)\n# weights\n"
            "def total_cost(J_content, J_style, alpha=10, beta=40):\n    return 0\n",
            "def compute_content_cost(a_C, a_G):\n    return 1\n",
            "# GRADED FUNCTION: compute_layer_style_cost (my version)\ndef style(a_S, a_G):\n"
            "    return 2\n",
            "%%writefile notes.py\ndef compute_layer_style_cost(a_S, a_G):\n    return 2\n",
            "%%timeit\ndef compute_layer_style_cost(a_S, a_G):\n    return 3\n",
        )
    )
    assert sorted(found) == sorted(GRADED_NAMES)
    assert found["compute_layer_style_cost"].startswith("# GRADED FUNCTION")  # by its header
    assert found["gram_matrix"].startswith("# %%time\n# GRADED FUNCTION: gram_matrix")
    assert found["compute_content_cost"].startswith("def compute_content_cost")


def test_the_last_cell_that_defines_a_function_is_graded_as_the_notebook_runs():
    found = extract.graded_sources(
        _notebook(GRAM_CELL, "# mine\ndef gram_matrix(A):\n    return A @ A\n", "x = 1")
    )
    assert found["gram_matrix"].startswith("# mine")
    broken = extract.graded_sources(_notebook(GRAM_CELL, "def gram_matrix(A)\n    return A\n"))
    assert broken["gram_matrix"].startswith("def gram_matrix(A)\n")  # its syntax error is graded
    huge = extract.graded_sources(_notebook("x = 1\n" + GRAM_CELL + "#" * 2_000_000))
    assert list(huge) == ["gram_matrix"]  # found by its text, without a syntax tree of 2 MB


def test_code_outside_the_markers_is_run_not_called_a_blank():
    from nst_utils.grading.blanks import is_untouched_blank

    blank = (
        "def gram_matrix(A):\n    # A times its transpose (1 line)\n"
        "    ### START CODE HERE ###\n    GA = None\n    ### END CODE HERE ###\n\n    return GA\n"
    )
    assert is_untouched_blank(blank)
    before = blank.replace(
        "    ### START", "    return tf.matmul(A, tf.transpose(A))\n    ### START"
    )
    after = blank.replace(
        "END CODE HERE ###\n", "END CODE HERE ###\n    GA = A @ tf.transpose(A)\n"
    )
    direct = blank.replace("return GA", "return tf.matmul(A, tf.transpose(A))")
    undone = blank.replace("    ### START", "    GA = A @ tf.transpose(A)\n    ### START")
    assert not any(map(is_untouched_blank, (before, after, direct)))
    assert is_untouched_blank(undone)  # the blank below undoes it: still not implemented


def test_a_notebook_heavy_with_outputs_is_read_up_to_100_mb(tmp_path):
    notebook = _notebook(GRAM_CELL)
    notebook["cells"][0]["outputs"] = [
        {"output_type": "stream", "name": "stdout", "text": "x" * 60_000_000}
    ]
    path = tmp_path / "heavy.ipynb"
    path.write_text(json.dumps(notebook))
    read = extract.read_submission(path, "heavy")
    assert read.error is None and list(read.sources) == ["gram_matrix"]
    with open(tmp_path / "huge.ipynb", "wb") as huge:  # sparse: no disk used
        huge.truncate(100_000_001)
    assert "larger than 100 MB" in extract.read_submission(tmp_path / "huge.ipynb", "h").error


@pytest.mark.slow
def test_grade_help_does_not_import_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys\nfrom nst_utils.cli import main\n"
        "try:\n    main(['grade', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('tensorflow' in sys.modules, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "usage:" in done.stdout and "--hidden-seed" in done.stdout
    assert done.stderr.strip() == "False", done.stderr[-2000:]
