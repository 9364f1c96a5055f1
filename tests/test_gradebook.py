"""The class gradebook: each grade stored as soon as it is made, a re-run grades only what is new,
changed or not yet graded, a stop keeps what was graded.

The boxes are replaced by a stand-in that records which notebooks it was asked to grade and
answers "timed out" for each function (a verdict the grader turns into a row like any other),
so these tests check the bookkeeping, not the sandbox (tests/test_grade_resume.py runs real
boxes and real signals).
"""

import csv
import json
import os
import signal
import sqlite3
import threading

import nbformat
import pytest

from nst_utils.cli import main
from nst_utils.grading import gradebook, grader
from nst_utils.grading.sandbox import host

from grading_helpers import solved_notebook, write

FUNCTIONS = ["total_cost"]


def _notebook(path, note):
    """The solved notebook with a note of its own (so each file's content differs)."""
    notebook = solved_notebook()
    notebook.cells.insert(0, nbformat.v4.new_markdown_cell(note))
    write(notebook, path)


def _class(folder, students):
    folder.mkdir(exist_ok=True)
    for name in students:
        _notebook(folder / f"{name}.ipynb", f"by {name}")
    return folder


class Boxes:
    """Stands in for host.run_submission: records the students it grades; from the call
    `block_from` on, each call waits until host.stop_all() ends every box, as a killed box
    would, and reports the task it was running as crashed."""

    def __init__(self, monkeypatch, folder, block_from=None, status="timeout", on_block=None):
        self.graded, self.lock = [], threading.Lock()
        self.killed = threading.Event()
        self.block_from, self.status, self.on_block = block_from, status, on_block
        self.folder, self.calls = folder, 0
        stop_all = host.stop_all

        def stop_everything():
            self.killed.set()
            stop_all()

        monkeypatch.setattr(host, "stop_all", stop_everything)
        monkeypatch.setattr(host, "run_submission", self.run)

    def run(self, tasks, isolated=True, slot=0):
        number = int(tasks[0].id.split(":")[0])
        student = grader.find_class([self.folder]).entries[number].student
        with self.lock:
            self.calls += 1
            blocked = self.block_from is not None and self.calls >= self.block_from
        if blocked:
            if self.on_block and self.calls == self.block_from:
                self.on_block()  # once: a second signal would mean "quit at once"
            assert self.killed.wait(120), "the run was never stopped"
            return {t.id: {"id": t.id, "status": "crashed", "detail": "killed"} for t in tasks}
        with self.lock:
            self.graded.append(student)
        detail = {"type": "SandboxError", "message": "no"}
        return {t.id: {"id": t.id, "status": self.status, "detail": detail} for t in tasks}


def _stored(db):
    connection = sqlite3.connect(str(db), timeout=60)
    try:
        return sorted(row[0] for row in connection.execute("SELECT student FROM grades"))
    finally:
        connection.close()


def _run(folder, db, **kwargs):
    with gradebook.Gradebook(db) as book:
        return grader.grade_class(
            grader.find_class([folder]), functions=FUNCTIONS, book=book, **kwargs
        )


STUDENTS = ["s1", "s2", "s3", "s4", "s5", "s6"]


def test_a_stopped_run_keeps_what_was_graded_and_the_next_grades_only_the_rest(
    tmp_path, monkeypatch
):
    folder = _class(tmp_path / "class", STUDENTS)
    db = tmp_path / "grades.sqlite"
    boxes = Boxes(monkeypatch, folder, block_from=3)
    outcome = _run(folder, db, jobs=2, should_stop=lambda: len(_stored(db)) >= 2)
    assert outcome.stopped and outcome.total == 6 and outcome.remaining == 4
    assert sorted(boxes.graded) == _stored(db) == sorted(row.student for row in outcome.rows)
    assert len(boxes.graded) == 2 and not host._STOPPING.is_set()  # boxes may start again
    first = set(boxes.graded)
    again = Boxes(monkeypatch, folder)
    outcome = _run(folder, db, jobs=2)
    assert not outcome.stopped and outcome.remaining == 0
    assert sorted(again.graded) == sorted(set(STUDENTS) - first)  # only what was left
    assert [row.student for row in outcome.rows] == STUDENTS
    assert all("did not return within" in row.grades["total_cost"].feedback for row in outcome.rows)
    assert _stored(db) == STUDENTS


def test_late_and_changed_submissions_are_the_only_ones_graded_again(tmp_path, monkeypatch):
    folder = _class(tmp_path / "class", ["a", "b", "c"])
    db = tmp_path / "grades.sqlite"
    boxes = Boxes(monkeypatch, folder)
    _run(folder, db)
    assert sorted(boxes.graded) == ["a", "b", "c"]
    _notebook(folder / "b.ipynb", "b, resubmitted")
    _notebook(folder / "late.ipynb", "late")
    boxes = Boxes(monkeypatch, folder)
    outcome = _run(folder, db)
    assert sorted(boxes.graded) == ["b", "late"]
    assert [row.student for row in outcome.rows] == ["a", "b", "c", "late"]
    assert sorted(outcome.graded) == ["b", "late"]
    boxes = Boxes(monkeypatch, folder)
    _run(folder, db)
    assert boxes.graded == []  # nothing new
    _run(folder, db, regrade=True)
    assert sorted(boxes.graded) == ["a", "b", "c", "late"]
    boxes = Boxes(monkeypatch, folder)
    _run(folder, db, hidden_seed=7)  # other settings, other grades
    assert sorted(boxes.graded) == ["a", "b", "c", "late"]
    boxes = Boxes(monkeypatch, folder)
    monkeypatch.setattr(gradebook, "grader_version", lambda: "a grader of tomorrow")
    _run(folder, db, hidden_seed=7)
    assert sorted(boxes.graded) == ["a", "b", "c", "late"]


def test_a_row_the_sandbox_could_not_grade_is_not_stored(tmp_path, monkeypatch):
    folder = _class(tmp_path / "class", ["a"])
    db = tmp_path / "grades.sqlite"
    Boxes(monkeypatch, folder, status="sandbox")
    (row,) = _run(folder, db).rows
    assert "not the submission's fault" in row.grades["total_cost"].feedback
    assert _stored(db) == []
    boxes = Boxes(monkeypatch, folder)
    _run(folder, db)
    assert boxes.graded == ["a"] and _stored(db) == ["a"]


def test_the_grader_version_follows_the_grading_code():
    version = gradebook.grader_version()
    assert len(version) == 16 and version == gradebook.grader_version()
    gradebook.grader_version.cache_clear()
    assert gradebook.grader_version() == version  # same code, same version


def test_sigterm_stops_the_command_which_writes_what_is_graded_and_says_what_remains(
    tmp_path, monkeypatch, capsys
):
    folder = _class(tmp_path / "class", ["a", "b", "c", "d"])
    out = tmp_path / "out"
    db = out / gradebook.DEFAULT_NAME
    args = ["grade", str(folder), "--no-isolation", "--function", "total_cost"]
    args += ["--csv", str(out / "grades.csv")]
    args += ["--json", str(out / "grades.json"), "--feedback", str(out / "feedback")]
    boxes = Boxes(
        monkeypatch, folder, block_from=3, on_block=lambda: os.kill(os.getpid(), signal.SIGTERM)
    )
    assert main(args + ["--jobs", "2"]) == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert "SIGTERM received" in err
    stopped = [line for line in err.splitlines() if line.startswith("stopped:")]
    assert stopped == [
        f"stopped: 2 of 4 notebooks are graded and kept in {db}; 2 remain: run the same "
        f"command again to grade them"
    ]
    first = sorted(boxes.graded)
    assert len(first) == 2 and _stored(db) == first
    with open(out / "grades.csv", newline="") as handle:
        assert sorted(row["student"] for row in csv.DictReader(handle)) == first
    assert sorted(p.stem for p in (out / "feedback").iterdir()) == first
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers given back
    boxes = Boxes(monkeypatch, folder)
    assert main(args) == 0
    assert sorted(boxes.graded) == sorted({"a", "b", "c", "d"} - set(first))
    rows = json.loads((out / "grades.json").read_text())
    assert [row["student"] for row in rows] == ["a", "b", "c", "d"]
    assert "graded 2 notebook(s), 2 taken from the gradebook" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"not a database at all" * 100, b""])
def test_a_file_that_is_not_a_gradebook_is_refused_in_one_line(tmp_path, capsys, content):
    folder = _class(tmp_path / "class", ["a"])
    db = tmp_path / "db.sqlite"
    db.write_bytes(content)
    if content:
        assert main(["grade", str(folder), "--no-isolation", "--db", str(db)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {db} is not an nst gradebook") and "\n" not in err
        assert db.read_bytes() == content
    else:  # an empty file is an empty SQLite database: it becomes the gradebook
        with gradebook.Gradebook(db):
            pass
        assert _stored(db) == []
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(str(other)) as connection:
        connection.execute("CREATE TABLE grades (name TEXT)")
    assert main(["grade", str(folder), "--no-isolation", "--db", str(other)]) == 2
    assert "holds another program's 'grades' table" in capsys.readouterr().err
