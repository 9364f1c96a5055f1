"""`python -m nst_utils grade`: a folder of mixed submissions gives one table, CSV and JSON."""

import csv
import json

import pytest

from nst_utils.cli import main

from grading_helpers import solved_notebook, with_body, write
from nst_utils.grading.student import STUDENT

NO_TRANSPOSE = """
    m, n_H, n_W, n_C = a_G.get_shape().as_list()
    a_S = tf.reshape(a_S, [n_C, n_H * n_W])
    a_G = tf.reshape(a_G, [n_C, n_H * n_W])
    J_style_layer = tf.reduce_sum(tf.square(gram_matrix(a_S) - gram_matrix(a_G))) / (4 * n_C ** 2 * (n_H * n_W) ** 2)
"""  # noqa: E501 - one line, as a student writes it


@pytest.fixture(scope="module")
def class_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("class")
    write(solved_notebook(), folder / "alice.ipynb")
    (folder / "bob.ipynb").write_text(STUDENT.read_text())
    write(
        with_body(solved_notebook(), "compute_layer_style_cost", NO_TRANSPOSE),
        folder / "carol.ipynb",
    )
    (folder / "dave.ipynb").write_text("{ this is not json")
    (folder / "erin").mkdir()
    write(
        with_body(solved_notebook(), "total_cost", "J = beta * J_content + alpha * J_style"),
        folder / "erin" / "submission.ipynb",
    )
    (folder / ".ipynb_checkpoints").mkdir()
    write(solved_notebook(), folder / ".ipynb_checkpoints" / "alice-checkpoint.ipynb")
    return folder


@pytest.fixture(scope="module")
def graded_class(class_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    import io
    from contextlib import redirect_stdout

    printed = io.StringIO()
    with redirect_stdout(printed):
        code = main(
            [
                "grade",
                str(class_folder),
                "--json",
                str(out / "grades.json"),
                "--csv",
                str(out / "grades.csv"),
                "--gradebook",
                str(out / "gradebook.csv"),
                "--feedback",
                str(out / "feedback"),
                "--time-limit",
                "10",
                "--jobs",
                "2",
            ]
        )
    return code, printed.getvalue(), out


EXPECTED_POINTS = {"alice": 100, "bob": 0, "carol": 75, "dave": 0, "erin/submission": 75}


@pytest.mark.slow
def test_table_has_one_row_per_student(graded_class):
    code, printed, _ = graded_class
    assert code == 0
    rows = {line.split()[0]: line.split()[-1] for line in printed.splitlines()[1:6]}
    assert rows == {student: f"{points}/100" for student, points in EXPECTED_POINTS.items()}
    assert printed.splitlines()[0].split() == [
        "student",
        "content",
        "gram",
        "layer_style",
        "total",
        "points",
    ]
    assert (
        "carol: compute_layer_style_cost: FAIL 0/25 - reshaped straight to (n_C, n_H*n_W)"
        in printed
    )
    assert "erin/submission: total_cost: FAIL 0/25 - alpha and beta are swapped" in printed
    assert "dave: compute_content_cost: FAIL 0/25 - could not read" in printed
    assert "without isolation" not in printed


@pytest.mark.slow
def test_csv_and_json_reports(graded_class):
    _, _, out = graded_class
    with open(out / "grades.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["student"]: int(r["points"]) for r in rows} == EXPECTED_POINTS
    carol = next(r for r in rows if r["student"] == "carol")
    assert carol["layer_style_points"] == "0" and carol["gram_points"] == "25"
    assert "without the transpose" in carol["layer_style_feedback"]
    grades = json.loads((out / "grades.json").read_text())
    assert {g["student"]: g["points"] for g in grades} == EXPECTED_POINTS
    alice = next(g for g in grades if g["student"] == "alice")
    assert all(f["passed"] and f["points"] == 25 for f in alice["functions"].values())
    assert next(g for g in grades if g["student"] == "dave")["error"].startswith("could not read")


@pytest.mark.slow
def test_gradebook_csv_has_one_row_per_student_with_totals(graded_class):
    _, _, out = graded_class
    with open(out / "gradebook.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == [
        "Student",
        "Total [100]",
        "compute_content_cost [25]",
        "gram_matrix [25]",
        "compute_layer_style_cost [25]",
        "total_cost [25]",
    ]
    assert {r[0]: int(r[1]) for r in rows[1:]} == EXPECTED_POINTS
    carol = next(r for r in rows if r[0] == "carol")
    assert carol[2:] == ["25", "25", "0", "25"] and sum(map(int, carol[2:])) == int(carol[1])


@pytest.mark.slow
def test_one_feedback_file_per_student(graded_class):
    _, _, out = graded_class
    files = sorted(p.name for p in (out / "feedback").iterdir())
    assert files == ["alice.md", "bob.md", "carol.md", "dave.md", "erin_submission.md"]
    carol = (out / "feedback" / "carol.md").read_text()
    assert "**Total: 75/100**" in carol
    assert (
        "| `compute_layer_style_cost` | 0/25 | reshaped straight to (n\\_C, n\\_H\\*n\\_W)" in carol
    )
    assert "| `gram_matrix` | 25/25 | correct" in carol


@pytest.mark.slow
def test_grading_refuses_without_isolation_unless_asked(
    class_folder, tmp_path, capsys, monkeypatch
):
    from nst_utils.grading.sandbox import host

    monkeypatch.setattr(host, "isolation_problem", lambda: "user namespaces are disabled")
    assert main(["grade", str(class_folder / "alice.ipynb")]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith(
            "error: cannot isolate submissions on this machine (user namespaces are disabled)"
        )
        and "--no-isolation" in err
        and "\n" not in err
    )
    assert (
        main(
            [
                "grade",
                str(class_folder / "alice.ipynb"),
                "--no-isolation",
                "--json",
                str(tmp_path / "grades.json"),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "graded without isolation" in printed
    (row,) = json.loads((tmp_path / "grades.json").read_text())
    assert row["points"] == 100 and row["isolated"] is False
    assert all("graded without isolation" in f["feedback"] for f in row["functions"].values())


@pytest.mark.parametrize(
    "args, message",
    [
        (["does-not-exist.ipynb"], "no such notebook or folder"),
        (["README.txt"], "is not a notebook"),
        (["empty"], "no .ipynb notebooks in folder"),
        (["x.ipynb", "--time-limit", "0"], "time limit must be positive"),
        (["empty", "--jobs", "0"], "jobs must be a positive whole number"),
    ],
)
def test_bad_arguments_get_one_line_errors(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.txt").write_text("hello")
    (tmp_path / "empty").mkdir()
    assert main(["grade"] + args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1


def test_an_unwritable_report_is_refused_before_any_grading(
    class_folder, tmp_path, capsys, monkeypatch
):
    from nst_utils.grading import grader

    graded = []
    monkeypatch.setattr(grader, "grade_class", lambda *a, **k: graded.append(a) or [])
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["grade", str(class_folder), "--csv", str(blocker / "grades.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot write") and "\n" not in err
    assert graded == []  # nothing was graded, so no work was lost
