"""Graders run by root side by side on one machine: each box takes a user id that no other live
box holds (a grader ends every process of its box's id when the box ends, so a shared id would
end another grader's box), and two `grade` runs at once both finish with every grade."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from nst_utils.grading.sandbox import host

from grading_helpers import require_isolation, solved_notebook, write

pytestmark = [
    pytest.mark.slow,  # starts processes and graders
    pytest.mark.skipif(os.geteuid() != 0, reason="only a grader run by root gives boxes user ids"),
]
#: Seconds any one event may take on a loaded machine before the test gives up.
PATIENCE = 600

HOLDER = """
import sys
from nst_utils.grading.sandbox import host
user = host.BoxUser()
print(user.uid, flush=True)
sys.stdin.read()
"""


def _uids(pid: int) -> list:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return line.split()[1:]
    return []


def test_box_user_ids_are_never_shared_and_a_dead_graders_are_freed_and_cleared():
    mine = [host.BoxUser(), host.BoxUser()]
    holder = subprocess.Popen(  # another grader, holding an id of its own
        [sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    leftover = None
    try:
        theirs = int(holder.stdout.readline())
        assert len({mine[0].uid, mine[1].uid, theirs}) == 3
        mine.append(host.BoxUser())
        assert mine[2].uid not in (mine[0].uid, mine[1].uid, theirs)
        # The other grader dies (SIGKILL, no clean-up) and leaves a process under its box's id.
        leftover = subprocess.Popen(
            ["setpriv", f"--reuid={theirs}", f"--regid={theirs}", "--clear-groups"]
            + ["sleep", "600"],
            start_new_session=True,
        )
        deadline = time.monotonic() + PATIENCE
        while _uids(leftover.pid)[:1] != [str(theirs)] and time.monotonic() < deadline:
            time.sleep(0.05)  # setpriv has not taken the id yet
        holder.kill()
        holder.wait()
        # Its id is free again: taken (lowest free first) by the next boxes, its leftover killed.
        while all(u.uid != theirs for u in mine) and len(mine) < 64:
            mine.append(host.BoxUser())
        assert any(u.uid == theirs for u in mine)
        assert leftover.wait(timeout=PATIENCE) == -signal.SIGKILL
    finally:
        for user in mine:
            user.release()
        holder.kill()
        if leftover is not None and leftover.poll() is None:
            leftover.kill()


def test_a_released_id_ends_every_process_of_the_id():
    user = host.BoxUser()
    stray = subprocess.Popen(
        ["setpriv", f"--reuid={user.uid}", f"--regid={user.uid}", "--clear-groups"]
        + ["sleep", "600"],
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + PATIENCE
        while _uids(stray.pid)[:1] != [str(user.uid)] and time.monotonic() < deadline:
            time.sleep(0.05)
        user.release()
        assert stray.wait(timeout=PATIENCE) == -signal.SIGKILL
    finally:
        user.release()
        if stray.poll() is None:
            stray.kill()


def _class(folder: Path, students: list) -> Path:
    folder.mkdir()
    for student in students:
        notebook = solved_notebook()
        notebook.cells.insert(0, nbformat.v4.new_markdown_cell(f"# {student}"))
        write(notebook, folder / f"{student}.ipynb")
    return folder


def test_two_grades_at_once_both_finish_with_every_grade(tmp_path):
    require_isolation()
    classes = {
        "first": ["ann", "bob", "cid"],
        "second": ["dan", "eve", "fay"],
    }
    runs = {}
    for name, students in classes.items():
        folder = _class(tmp_path / name, students)
        report = tmp_path / f"{name}.json"
        command = [sys.executable, "-m", "nst_utils", "grade", "--jobs", "2", "--json"]
        command += [str(report), "--db", str(tmp_path / f"{name}.sqlite"), "--", str(folder)]
        runs[name] = (
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
            report,
        )
    for name, (process, report) in runs.items():
        out, err = process.communicate(timeout=PATIENCE)
        assert process.returncode == 0, err
        rows = {row["student"]: row for row in json.loads(report.read_text())}
        assert sorted(rows) == classes[name]
        for student, row in rows.items():
            assert row["isolated"] and row["points"] == row["max_points"] == 100, (
                student,
                {n: g["feedback"] for n, g in row["functions"].items()},
            )
