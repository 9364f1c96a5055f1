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
