"""A real class run stopped half-way by SIGTERM, then killed by SIGKILL, then run to its end:
every grade is kept, every box ends with the run, and each run grades only what was left.

One submission sleeps far longer than the test lasts, so the class can never finish before a
signal, whatever the machine's speed; the test waits for events (rows in the gradebook, the
process's end), never for a time.
"""

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from grading_helpers import solved_notebook, with_body, write

pytestmark = pytest.mark.slow

STUDENTS = ["a_sleeper", "s1", "s2", "s3", "s4", "s5"]
SLEEPER = """
    import time
    time.sleep(3000)
    J = alpha * J_content + beta * J_style
"""
#: Seconds any one event may take on a loaded machine before the test gives up.
PATIENCE = 1200


def _notebook(path, note, notebook=None):
    notebook = notebook or solved_notebook()
    notebook.cells.insert(0, nbformat.v4.new_markdown_cell(note))
    write(notebook, path)


def _stored(db) -> dict:
    """{student: when last graded} in the gradebook (empty while it does not exist yet)."""
    if not Path(db).exists():
        return {}
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=60)
    try:
        return dict(connection.execute("SELECT student, graded_at FROM grades ORDER BY graded_at"))
    except sqlite3.OperationalError:  # the table is not created yet
        return {}
    finally:
        connection.close()


def _feedback(db) -> dict:
    connection = sqlite3.connect(str(db), timeout=60)
    try:
        return {
            s: json.loads(g)["grades"]
            for s, g in connection.execute("SELECT student, grade FROM grades")
        }
    finally:
        connection.close()


def _start(command):
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=os.getcwd()
    )


def _wait_for_rows(process, db, count):
    deadline = time.monotonic() + PATIENCE
    while len(_stored(db)) < count:
        if process.poll() is not None:
            pytest.fail(f"grade ended before {count} rows: {process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no {count} rows in the gradebook after {PATIENCE} s")
        time.sleep(0.2)


def _boxes_of(pid) -> list:
    """The processes (pids) the grader `pid` started as boxes: their environment names it."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                environ = handle.read().split(b"\0")
        except OSError:
            continue
        if f"NST_GRADER={pid}".encode() in environ:
            found.append(int(entry))
    return found


def _wait_until_gone(pid) -> list:
    deadline = time.monotonic() + 60
    while _boxes_of(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    return _boxes_of(pid)


def test_a_class_stopped_by_sigterm_and_killed_by_sigkill_ends_with_every_grade(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    solved = solved_notebook()
    _notebook(folder / "a_sleeper.ipynb", "asleep", with_body(solved, "total_cost", SLEEPER))
    for name in STUDENTS[1:]:
        _notebook(folder / f"{name}.ipynb", f"by {name}")
    out = tmp_path / "out"
    db = out / "nst-grades.sqlite"
    command = [sys.executable, "-m", "nst_utils", "grade", str(folder), "--jobs", "2"]
    command += ["--function", "total_cost", "--time-limit", "3600", "--csv", str(out / "g.csv")]

    # 1. SIGTERM once two notebooks are graded: every box ends, the reports hold what is graded
    first = _start(command)
    _wait_for_rows(first, db, 2)
    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=PATIENCE)
    assert first.returncode == 128 + signal.SIGTERM, err
    assert _wait_until_gone(first.pid) == [], "a box outlived grade after SIGTERM"
    after_term = _stored(db)
    assert len(after_term) >= 2, _feedback(db)
    remain = len(STUDENTS) - len(after_term)
    assert (
        f"stopped: {len(after_term)} of {len(STUDENTS)} notebooks are graded and kept in {db}; "
        f"{remain} remain: run the same command again to grade them"
    ) in err
    with open(out / "g.csv", newline="") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    assert sorted(rows) == sorted(after_term)
    # every notebook but the sleeper is right (the sleeper gets a row only if its box was
    # killed from outside, as another grader's clean-up of its user id may do)
    assert all(row["points"] == "25" for s, row in rows.items() if s != "a_sleeper"), rows

    # 2. SIGKILL once one more is graded: what was stored stays
    second = _start(command)
    _wait_for_rows(second, db, len(after_term) + 1)
    second.kill()
    second.communicate(timeout=PATIENCE)
    after_kill = _stored(db)
    for student, graded_at in after_term.items():
        assert after_kill[student] == graded_at  # not graded again
    assert len(after_kill) > len(after_term)
    connection = sqlite3.connect(str(db))
    assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    connection.close()
    for pid in _boxes_of(second.pid):  # none where boxes die with their grader; else end ours
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass

    # 3. the sleeper resubmits a working notebook; the run grades it and what was left, only
    _notebook(folder / "a_sleeper.ipynb", "awake")
    third = subprocess.run(command, capture_output=True, text=True, timeout=PATIENCE * 2)
    assert third.returncode == 0, third.stderr
    final = _stored(db)
    assert sorted(final) == STUDENTS
    regraded = sorted(s for s in final if after_kill.get(s) != final[s])
    # what was left, and the changed notebook (stored before only if its box was killed from
    # outside, as another grader's clean-up of its user id may do on a shared machine)
    assert regraded == sorted(set(STUDENTS) - set(after_kill) | {"a_sleeper"})
    taken = len(set(after_kill) - {"a_sleeper"})
    assert f"graded {len(regraded)} notebook(s), {taken} taken from the gradebook" in third.stderr
    with open(out / "g.csv", newline="") as handle:
        rows = {row["student"]: row["points"] for row in csv.DictReader(handle)}
    assert rows == {student: "25" for student in STUDENTS}
