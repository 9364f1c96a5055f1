"""`make-assignment`: the students' build holds no graded solution and its self-checks work from
stored public values; the Gradescope autograder, unpacked as Gradescope lays it out, grades a
submission in the sandbox and writes a valid results.json."""

import ast
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from nst_utils.cli import main
from nst_utils.costs import SOLUTION_PIECES
from nst_utils.grading.functions import RECORDS

from grading_helpers import solved_notebook, with_body
from limits import HANG_SECONDS

GRADED = {record.name for record in RECORDS}
#: The graded functions and the pieces of costs.py their formulas are made of.
SOLUTIONS = GRADED | set(SOLUTION_PIECES)
COSTS = Path(__file__).resolve().parents[1] / "nst_utils" / "costs.py"


@pytest.fixture(scope="module")
def assignment(tmp_path_factory):
    out = tmp_path_factory.mktemp("assignment") / "out"
    assert main(["make-assignment", str(out), "--hidden-seed", "12345"]) == 0
    return out


def _reference_statements() -> set:
    """ast dumps of the reference implementations' statements (bare `return name` aside)."""
    found = set()
    for node in ast.parse(COSTS.read_text()).body:
        if isinstance(node, ast.FunctionDef) and node.name in SOLUTIONS:
            for stmt in node.body:
                bare_return = isinstance(stmt, ast.Return) and isinstance(stmt.value, ast.Name)
                docstring = isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
                if not (bare_return or docstring):
                    found.add(ast.dump(stmt))
    return found


@pytest.mark.slow
def test_the_student_build_holds_no_solution(assignment):
    student = assignment / "student"
    reference = _reference_statements()
    assert len(reference) >= 8
    python_files = list(student.rglob("*.py"))
    assert len(python_files) > 10
    for path in python_files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.stmt):
                assert ast.dump(node) not in reference, f"{path}: {ast.unparse(node)}"
    texts = [
        p.read_text(errors="replace")
        for p in student.rglob("*")
        if p.is_file() and p.suffix != ".jpg"
    ]
    for line in ("tf.matmul(A, tf.transpose(A))", "tf.square(tf.subtract(a_C, a_G))", "A @ A.T"):
        assert not any(line in text for text in texts), line
    grading = {
        p.relative_to(student / "nst_utils" / "grading").as_posix()
        for p in (student / "nst_utils" / "grading").rglob("*")
        if p.is_file()
    }
    assert not grading & {
        "functions.py",
        "answer_key.py",
        "grader.py",
        "sandbox/host.py",
        "sandbox/box/worker.py",
        "gradescope.py",
    }
    assert "public_key.json" in grading
    notebook = next((student / "notebooks").glob("*_student.ipynb"))
    assert "GRADED FUNCTION: compute_content_cost" in notebook.read_text()
    assert (student / "images" / "louvre.jpg").is_file()


SELF_CHECK = """
import json, sys
import nst_utils
from nst_utils.grading import check
from nst_utils.grading.selfcheck import check_line, STORED_KEY
assert nst_utils.__file__.startswith(sys.argv[1]), nst_utils.__file__
assert STORED_KEY.is_file()
try:
    import nst_utils.grading.functions
    raise SystemExit("the grader's records are in the student build")
except ImportError:
    pass
import numpy as np
import tensorflow.compat.v1 as tf
tf.disable_eager_execution()
env = {"tf": tf, "np": np}
exec('''
def compute_content_cost(a_C, a_G):
    m, n_H, n_W, n_C = a_G.get_shape().as_list()
    return tf.reduce_sum(tf.square(a_C - a_G)) / (4 * n_H * n_W * n_C)

def gram_matrix(A):
    return tf.matmul(tf.transpose(A), A)

def compute_layer_style_cost(a_S, a_G):
    m, n_H, n_W, n_C = a_G.get_shape().as_list()
    S = tf.transpose(tf.reshape(a_S, [n_H * n_W, n_C]))
    G = tf.transpose(tf.reshape(a_G, [n_H * n_W, n_C]))
    return tf.reduce_sum(tf.square(gram_matrix(S) - gram_matrix(G))) / (4 * n_C ** 2 * (n_H * n_W) ** 2)

def total_cost(J_content, J_style, alpha=10, beta=40):
    return alpha * J_content + beta * J_style
''', env)
print(json.dumps({name: check_line(env[name]) for name in
                  ("compute_content_cost", "gram_matrix", "compute_layer_style_cost", "total_cost")}))
"""


@pytest.mark.slow
def test_the_student_builds_self_checks_use_stored_public_values(assignment, tmp_path):
    student = assignment / "student"
    env = dict(os.environ, PYTHONPATH=str(student), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "-c", SELF_CHECK, str(student)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=HANG_SECONDS,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = json.loads(done.stdout.strip().splitlines()[-1])
    assert lines["compute_content_cost"].startswith(
        "compute_content_cost: PASS 25/25 - correct: the published value 6.76559"
    )
    assert lines["total_cost"].startswith("total_cost: PASS 25/25")
    assert lines["gram_matrix"].startswith("gram_matrix: FAIL 0/25 - computes A^T A")
    assert (
        "your gram_matrix fails too, fix it first: computes A^T A"
        in lines["compute_layer_style_cost"]
    )


def _autograder_root(assignment, tmp_path, notebook_text):
    """A folder laid out as Gradescope's /autograder: source/ (the zip), the submission, results/."""
    root = tmp_path / "autograder"
    with zipfile.ZipFile(assignment / "autograder.zip") as archive:
        archive.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    (root / "submission" / "my_work.ipynb").write_text(notebook_text)
    return root


def _run_autograder(root):
    env = dict(
        os.environ,
        NST_AUTOGRADER_ROOT=str(root),
        NST_PYTHON=sys.executable,
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        ["bash", str(root / "run_autograder")],
        capture_output=True,
        text=True,
        env=env,
        timeout=HANG_SECONDS,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads((root / "results" / "results.json").read_text())


def _valid(results):
    assert isinstance(results["score"], (int, float))
    for test in results["tests"]:
        assert set(test) == {"name", "score", "max_score", "status", "output", "visibility"}
        assert test["status"] in ("passed", "failed")
        assert test["visibility"] in ("visible", "hidden", "after_due_date", "after_published")
    assert results["score"] == sum(t["score"] for t in results["tests"])


@pytest.mark.slow
def test_the_autograder_zip_grades_a_submission_as_gradescope_runs_it(assignment, tmp_path):
    import nbformat

    with zipfile.ZipFile(assignment / "autograder.zip") as archive:
        names = set(archive.namelist())
        assert {
            "setup.sh",
            "run_autograder",
            "requirements.txt",
            "assignment.json",
            "nst_utils/costs.py",
            "nst_utils/grading/sandbox/isolate.py",
        } <= names
        assert json.loads(archive.read("assignment.json"))["hidden_seed"] == 12345
        assert archive.getinfo("run_autograder").external_attr >> 16 & 0o111
    submitted = with_body(solved_notebook(), "gram_matrix", "GA = tf.matmul(tf.transpose(A), A)")
    root = _autograder_root(assignment, tmp_path, nbformat.writes(submitted))
    results = _run_autograder(root)
    _valid(results)
    assert results["score"] == 75
    tests = {t["name"]: t for t in results["tests"]}
    assert tests["gram_matrix"]["score"] == 0 and "computes A^T A" in tests["gram_matrix"]["output"]
    assert tests["compute_layer_style_cost"]["output"].startswith(
        "passes with the reference gram_matrix"
    )
    assert (tests["total_cost"]["score"], tests["total_cost"]["max_score"]) == (25, 25)
    hidden = [t for t in results["tests"] if t["name"].endswith("(hidden cases)")]
    assert len(hidden) == 4 and {t["visibility"] for t in hidden} == {"after_published"}
    visible = " ".join(t["output"] for t in results["tests"] if t["visibility"] == "visible")
    assert "hidden case" not in visible


@pytest.mark.slow
def test_the_autograder_reports_an_unreadable_submission(assignment, tmp_path):
    results = _run_autograder(_autograder_root(assignment, tmp_path, '{"cells": null}'))
    _valid(results)
    assert results["score"] == 0 and "could not read" in results["output"]


def test_make_assignment_refuses_a_folder_in_use(tmp_path, capsys):
    (tmp_path / "something").write_text("x")
    assert main(["make-assignment", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "not empty" in err and "\n" not in err
