"""`make-assignment`: the students' download stands alone and holds no graded formula, its
self-checks (model_nn's included) work from stored public values; the Gradescope autograder,
unpacked as Gradescope lays it out, grades a submission and writes a valid results.json."""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from nst_utils.cli import main
from nst_utils.grading import assignment as making
from nst_utils.grading import gradescope
from nst_utils.grading.functions import RECORDS

from grading_helpers import solved_notebook, with_body, write

GRADED = {record.name for record in RECORDS}
PACKAGE = Path(__file__).resolve().parents[1] / "nst_utils"
COSTS = PACKAGE / "costs.py"
#: The graded formulas in the forms code writes them: the content and style normalisations
#: (integer or float, as the reference and the big-print costs write them), the content sum of
#: squares, the unrolling with its transpose, and the Gram product.
FORMULAS = {
    "content normalisation": r"4(\.0)?\s*\*\s*n_H\s*\*\s*n_W\s*\*\s*(n_C|a_C\.shape)",
    "style normalisation": r"4(\.0)?\s*\*\s*n_C\s*\*\*\s*2\s*\*\s*\(\s*n_H\s*\*\s*n_W\s*\)",
    "content sum of squares": r"reduce_sum\(\s*tf\.square\(\s*(tf\.subtract\()?\s*(self\.)?a_C",
    "unrolling with its transpose": r"transpose\(\s*tf\.reshape\(",
    "Gram product": r"matmul\(\s*(\w+)\s*,\s*(tf\.transpose\(\s*\1\s*\)|\1\s*,\s*transpose_)"
    r"|\b(\w+)\s*@\s*\3\.T\b",
}


@pytest.fixture(scope="module")
def assignment(tmp_path_factory):
    out = tmp_path_factory.mktemp("assignment") / "out"
    assert main(["make-assignment", str(out), "--hidden-seed", "12345"]) == 0
    return out


def _reference_statements() -> set:
    """ast dumps of the statements of costs.py's functions, the graded ones and the pieces they
    are made of (bare `return name` and docstrings aside)."""
    found = set()
    for node in ast.parse(COSTS.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            for stmt in node.body:
                bare_return = isinstance(stmt, ast.Return) and isinstance(stmt.value, ast.Name)
                docstring = isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
                if not (bare_return or docstring):
                    found.add(ast.dump(stmt))
    return found


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
    for what, pattern in FORMULAS.items():
        for path in student.rglob("*"):
            if path.is_file() and path.suffix != ".jpg":
                found = re.search(pattern, path.read_text(errors="replace"))
                assert found is None, f"{path} holds the {what}: {found.group(0)}"
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


#: Makes a process see only the students' build: the editable install's finder (it finds the
#: repository's modules that the build lacks) leaves the import system.
ONLY_THE_BUILD = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "Editable" not in getattr(f, "__name__", "")]
"""
SELF_CHECK = (
    ONLY_THE_BUILD
    + """
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
    norm = 4 * n_C ** 2 * (n_H * n_W) ** 2
    return tf.reduce_sum(tf.square(gram_matrix(S) - gram_matrix(G))) / norm

def total_cost(J_content, J_style, alpha=10, beta=40):
    return alpha * J_content + beta * J_style
''', env)
names = ("compute_content_cost", "gram_matrix", "compute_layer_style_cost", "total_cost")
print(json.dumps({name: check_line(env[name]) for name in names}))
"""
)


def test_the_formula_search_finds_what_the_package_holds():
    """The patterns above find each formula where the repository has it (so the search of the
    students' download can fail)."""
    texts = "\n".join(p.read_text() for p in PACKAGE.rglob("*.py"))
    for what, pattern in FORMULAS.items():
        assert re.search(pattern, texts), what
    reference = COSTS.read_text()
    for what in ("content normalisation", "style normalisation", "unrolling with its transpose"):
        assert re.search(FORMULAS[what], reference), what
    assert re.search(FORMULAS["Gram product"], "GA = tf.matmul(A, tf.transpose(A))")
    assert re.search(FORMULAS["Gram product"], "x = flat @ flat.T")


def test_the_student_build_is_what_a_student_needs(assignment):
    student = assignment / "student"
    readme = (student / "README.md").read_text()
    for needed in (
        "requirements.txt",
        "python -m nst_utils fetch-weights",
        "https://www.vlfeat.org/matconvnet/models/imagenet-vgg-verydeep-19.mat",
        "pretrained-model/",
        "NST_WEIGHTS",
        "jupyter notebook notebooks/Art_Generation_with_Neural_Style_Transfer_student.ipynb",
        "check(model_nn)",
    ):
        assert needed in readme, needed
    assert (student / "pretrained-model").is_dir() and (student / "output").is_dir()
    shipped = {
        p.relative_to(student / "nst_utils").as_posix()
        for p in (student / "nst_utils").rglob("*.py")
    }
    assert shipped == set(making.STUDENT_MODULES) | {"grading/__init__.py"}
    assert "costs.py" not in shipped
    assert not shipped & {"transfer.py", "tiles.py", "stylize.py", "grading/functions.py"}
    requirements = (student / "requirements.txt").read_text()
    assert "-e ." not in requirements and "tensorflow==" in requirements


def _pins(text: str, python: str) -> dict:
    """{package: version} that pip would install from requirements `text` on `python` (X.Y)."""
    from packaging.requirements import Requirement

    pins = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate(
                {"python_version": python, "python_full_version": python + ".0"}
            ):
                assert requirement.name not in pins, f"{requirement.name} twice on {python}"
                (spec,) = requirement.specifier
                pins[requirement.name] = spec.version
    return pins


@pytest.mark.parametrize("python", ["3.10", "3.11", "3.12", "3.13"])
def test_the_requirement_sets_pin_every_package_once_on_each_python(python):
    student = _pins(making.requirements_text(making.STUDENT_REQUIREMENTS, "students"), python)
    grading = _pins(making.requirements_text(making.GRADING_REQUIREMENTS, "grading"), python)
    assert set(student) == set(making.STUDENT_REQUIREMENTS)
    assert set(grading) == {"tensorflow", "numpy"}
    # numpy 2.3 and later need Python 3.11
    assert (grading["numpy"] == "2.2.6") == (python == "3.10")
    assert not {"notebook", "jupyter", "pytest", "matplotlib", "nbclient"} & set(grading)


def _notebook(tmp_path, name, graded):
    """A notebook with the `graded` functions of the solved notebook filled, the others blank."""
    from nst_utils.grading.student import make_student_notebook

    solved = solved_notebook()
    blank = make_student_notebook(solved)
    for cell, done in zip(blank.cells, solved.cells):
        if any(done.source.startswith(f"# GRADED FUNCTION: {g}\n") for g in graded):
            cell.source = done.source
    return write(blank, tmp_path / name)


def test_of_two_notebooks_the_filled_one_is_chosen_and_a_tie_reported(tmp_path):
    every = ("compute_content_cost", "gram_matrix", "compute_layer_style_cost", "total_cost")
    blank = _notebook(tmp_path, "Art_Generation_student.ipynb", ())
    mine = _notebook(tmp_path, "My solution.ipynb", every)
    chosen, note = gradescope.choose([blank, mine], tmp_path)
    assert chosen.path == mine and "graded My solution.ipynb" in note
    assert "Art_Generation_student.ipynb" in note
    half = _notebook(tmp_path, "half.ipynb", every[:2])
    other = _notebook(tmp_path, "other half.ipynb", every[2:])
    chosen, note = gradescope.choose([half, other, blank], tmp_path)
    assert chosen is None and "2 of them (half.ipynb, other half.ipynb)" in note
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    chosen, note = gradescope.choose([broken, half], tmp_path)
    assert chosen.path == half
    chosen, note = gradescope.choose([broken], tmp_path)
    assert chosen.error and note == ""


def test_the_autograder_scripts_install_no_project_and_no_tools(assignment):
    with zipfile.ZipFile(assignment / "autograder.zip") as archive:
        setup = archive.read("setup.sh").decode()
        requirements = archive.read("requirements.txt").decode()
        run = archive.read("run_autograder").decode()
    assert "-e ." not in requirements and "pyproject.toml" not in setup
    assert "python3 -m venv" in setup and "-m pip install --no-cache-dir -r" in setup
    assert "nst-venv}/bin/python" in run and "--isolation" in run
    for tool in ("jupyter", "notebook", "pytest", "matplotlib", "nbclient"):
        assert tool not in requirements, tool


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
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = json.loads(done.stdout.strip().splitlines()[-1])
    assert lines["compute_content_cost"].startswith(
        "compute_content_cost: PASS 25/25 - correct: the published value 6.76559"
    )
    assert lines["total_cost"].startswith("total_cost: PASS 25/25")
    assert lines["gram_matrix"].startswith("gram_matrix: FAIL 0/25 - computes A^T A")
    assert lines["compute_layer_style_cost"].startswith(  # as grade: a mistake costs points once
        "compute_layer_style_cost: PASS 25/25 - passes with the reference gram_matrix; your "
        "gram_matrix fails: computes A^T A"
    )


BUNDLE_NOTEBOOK = (
    ONLY_THE_BUILD
    + """
import json, linecache, sys
import nst_utils
from nst_utils import *
from nst_utils.grading.selfcheck import check_line
import numpy as np
import tensorflow.compat.v1 as tf
tf.disable_v2_behavior()
assert nst_utils.__file__.startswith(sys.argv[1]), nst_utils.__file__
cells = json.load(open(sys.argv[2]))

def define(source):
    name = f"<cell-{abs(hash(source))}>"
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    exec(compile(source, name, "exec"), globals())

verdicts = {}
for source in cells["solved"]:
    define(source)
for name in ("compute_content_cost", "gram_matrix", "compute_layer_style_cost", "total_cost",
             "model_nn"):
    verdicts[name] = check_line(globals()[name])
for label, source in cells["wrong"].items():
    define(source)
    verdicts[label] = check_line(globals()[source.split("def ", 1)[1].split("(", 1)[0]])
print(json.dumps(verdicts))
"""
)


def _solved_cells() -> dict:
    """{function name: its solved notebook cell} for the functions the notebook defines."""
    cells = {}
    for cell in solved_notebook().cells:
        found = re.search(r"^def (\w+)\(", cell.source, re.MULTILINE)
        if cell.cell_type == "code" and found:
            cells[found.group(1)] = cell.source
    return cells


@pytest.mark.slow
def test_every_check_works_from_the_students_build_model_nns_included(assignment, tmp_path):
    """The solved notebook's functions, defined as its cells do, pass every check() with only the
    students' download on the path; a wrong model_nn or cost is named."""
    student = tmp_path / "student"
    shutil.copytree(assignment / "student", student)  # a folder of its own, outside the checkout
    cells = _solved_cells()
    model_nn = cells["model_nn"]
    wrong = {
        "model_nn blank": model_nn.replace("sess.run(train_step)", "sess.run(None)"),
        "model_nn layer": model_nn.replace(
            "generated_image = sess.run(model['input'])",
            "generated_image = sess.run(model['conv4_2'])",
        ),
        "cost": cells["total_cost"].replace(
            "alpha * J_content + beta * J_style", "beta * J_content + alpha * J_style"
        ),
    }
    wrong["model_nn after cost"] = model_nn
    assert all(
        wrong[k] != (cells["total_cost"] if k == "cost" else model_nn)
        for k in wrong
        if k != "model_nn after cost"
    )
    order = [
        "compute_content_cost",
        "gram_matrix",
        "compute_layer_style_cost",
        "compute_style_cost",
        "total_cost",
        "model_nn",
    ]
    data = tmp_path / "cells.json"
    data.write_text(json.dumps({"solved": [cells[n] for n in order], "wrong": wrong}))
    env = dict(os.environ, PYTHONPATH=str(student), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "-c", BUNDLE_NOTEBOOK, str(student), str(data)],
        capture_output=True,
        text=True,
        cwd=student / "notebooks",
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    verdicts = json.loads(done.stdout.strip().splitlines()[-1])
    for name in ("compute_content_cost", "gram_matrix", "compute_layer_style_cost", "total_cost"):
        assert verdicts[name].startswith(f"{name}: PASS 25/25"), verdicts[name]
    assert verdicts["model_nn"].startswith("model_nn: PASS - after 21 iterations"), verdicts
    assert verdicts["model_nn blank"].startswith(
        "model_nn: FAIL - a blank is still None: One optimisation step"
    )
    assert verdicts["model_nn layer"].startswith("model_nn: FAIL - reads model['conv4_2']")
    assert verdicts["cost"].startswith("total_cost: FAIL 0/25")
    assert verdicts["model_nn after cost"].startswith(
        "model_nn: FAIL - check(model_nn) builds its test network with your cost functions: "
        "make check(total_cost) pass first"
    )


def _autograder_root(assignment, tmp_path, notebook_text):
    """A folder laid out as Gradescope's /autograder: source/ (the zip), the submission,
    results/."""
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
        ["bash", str(root / "run_autograder")], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads((root / "results" / "results.json").read_text())


#: Gradescope's results.json: the top-level keys and each test's, with their types.
RESULTS_KEYS = {
    "score": (int, float),
    "execution_time": (int, float),
    "output": str,
    "output_format": str,
    "test_output_format": str,
    "test_name_format": str,
    "visibility": str,
    "stdout_visibility": str,
    "extra_data": dict,
    "tests": list,
    "leaderboard": list,
}
TEST_KEYS = {
    "score": (int, float),
    "max_score": (int, float),
    "status": str,
    "name": str,
    "name_format": str,
    "number": str,
    "output": str,
    "output_format": str,
    "tags": list,
    "visibility": str,
    "extra_data": dict,
}
VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")


def _valid(results):
    """`results` follows Gradescope's specification of results.json (keys, types, values)."""
    assert set(results) <= set(RESULTS_KEYS), set(results) - set(RESULTS_KEYS)
    for key, value in results.items():
        assert isinstance(value, RESULTS_KEYS[key]), (key, value)
    assert "score" in results and results["execution_time"] >= 0
    for key in ("visibility", "stdout_visibility"):
        assert results.get(key, "visible") in VISIBILITIES
    for test in results["tests"]:
        assert set(test) == {"name", "score", "max_score", "status", "output", "visibility"}
        for key, value in test.items():
            assert isinstance(value, TEST_KEYS[key]), (key, value)
        assert test["status"] in ("passed", "failed")
        assert test["visibility"] in VISIBILITIES
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


RUN_NOTEBOOK = """
import sys
import nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
               resources={"metadata": {"path": sys.argv[2]}}).execute()
nbformat.write(nb, sys.argv[3])
"""


def _reachable(host: str, port: int = 443) -> bool:
    import socket

    try:
        socket.create_connection((host, port), timeout=10).close()
        return True
    except OSError:
        return False


def _student_venv(requirements: Path) -> Path:
    """A venv with only `requirements` installed (pip from PyPI), kept under NST_TEST_CACHE
    (default /var/cache/nst-tests) by the file's hash, so that reruns reuse it; built under a
    file lock, so that suites running at once on one machine build it once."""
    import hashlib

    from filelock import FileLock

    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    cache = Path(os.environ.get("NST_TEST_CACHE", "/var/cache/nst-tests"))
    venv = cache / f"student-venv-{digest}"
    cache.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{venv}.lock"):
        return _build_student_venv(venv, requirements, digest)


def _build_student_venv(venv: Path, requirements: Path, digest: str) -> Path:
    if (venv / "ok").is_file():
        return venv
    if not _reachable("pypi.org"):
        pytest.skip("PyPI is not reachable: the students' requirements cannot be installed")
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_FIND_LINKS")}
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-r", str(requirements)],
        capture_output=True,
        text=True,
        timeout=3600,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (venv / "ok").write_text(digest)
    return venv


@pytest.mark.slow
@pytest.mark.ship
def test_the_completed_student_notebook_runs_in_the_download_alone(assignment, vgg_mat, tmp_path):
    """The download, copied outside the checkout, in a venv made from its own requirements file
    only (a fresh `python -m venv` and `pip install -r requirements.txt`, cached by the file's
    hash): the student notebook with its blanks filled runs to the end with nbclient at 64x48 on
    fixture weights, every check() passes and model_nn writes into the download's output/."""
    from conftest import SMALL_HEIGHT, SMALL_WIDTH

    import nbformat

    student = tmp_path / "student"
    shutil.copytree(assignment / "student", student)
    venv = _student_venv(student / "requirements.txt")
    path = next((student / "notebooks").glob("*_student.ipynb"))
    nb = nbformat.read(str(path), as_version=4)
    solved = solved_notebook()
    assert len(nb.cells) == len(solved.cells)
    for cell, done in zip(nb.cells, solved.cells):
        if "### START CODE HERE ###" in cell.source:
            cell.source = done.source
    at = next(i for i, c in enumerate(nb.cells) if "def model_nn(" in c.source)
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell("model_nn.__defaults__ = (2,)"))
    nbformat.write(nb, str(path))
    executed = tmp_path / "executed.ipynb"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NST_", "PYTHON", "VIRTUAL"))}
    env.update(
        NST_WEIGHTS=str(vgg_mat),
        NST_IMAGE_WIDTH=str(SMALL_WIDTH),
        NST_IMAGE_HEIGHT=str(SMALL_HEIGHT),
        MPLBACKEND="agg",
        PATH=f"{venv / 'bin'}:{env.get('PATH', '')}",
    )
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", RUN_NOTEBOOK, str(path), str(path.parent), executed],
        capture_output=True,
        text=True,
        cwd=path.parent,
        env=env,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ran = nbformat.read(str(executed), as_version=4)
    errors = [
        (o.ename, o.evalue)
        for c in ran.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "error"
    ]
    assert errors == []
    checks = {
        c.source: "".join(o.get("text", "") for o in c.outputs)
        for c in ran.cells
        if c.cell_type == "code" and c.source.startswith("check(")
    }
    assert len(checks) == 5
    for source, printed in checks.items():
        name = source[len("check(") : -1]
        assert printed.startswith(f"{name}: PASS"), (source, printed)
    assert (student / "output" / "generated_image.jpg").is_file()


DEBROOT = Path(os.environ.get("NST_DEBROOT_CACHE", "/var/cache/nst-debroot"))
ROOT_LOCK = DEBROOT.with_name(DEBROOT.name + ".lock")
SUITE = "bookworm"


def _debian_mirror():
    """The Debian mirror this machine's apt is configured with (for SUITE), or None."""
    sources = Path("/etc/apt")
    texts = [p.read_text() for p in [sources / "sources.list"] if p.is_file()]
    texts += [p.read_text() for p in sorted((sources / "sources.list.d").glob("*.sources"))]
    texts += [p.read_text() for p in sorted((sources / "sources.list.d").glob("*.list"))]
    for text in texts:
        for stanza in re.split(r"\n\s*\n", text):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.MULTILINE)
            suites = re.search(r"^Suites:(.*)$", stanza, re.MULTILINE)
            if uris and suites and SUITE in suites.group(1).split() and "security" not in uris[1]:
                return uris.group(1)
        for line in text.splitlines():
            words = line.split()
            if len(words) >= 3 and words[0] == "deb" and words[2] == SUITE:
                return words[1]
    return None


class _Mounted:
    """/proc, /sys and /dev of the host mounted into a root for the block, and unmounted after."""

    def __init__(self, root: Path):
        self.root, self.done = root, []

    def __enter__(self):
        for source, target, args in (
            ("proc", "proc", ["-t", "proc"]),
            ("/sys", "sys", ["--rbind"]),
            ("/dev", "dev", ["--rbind"]),
        ):
            subprocess.run(["mount", *args, source, str(self.root / target)], check=True)
            self.done.append(self.root / target)
        shutil.copy("/etc/resolv.conf", self.root / "etc" / "resolv.conf")
        return self

    def __exit__(self, *exc):
        for path in reversed(self.done):
            subprocess.run(["umount", "-R", "-l", str(path)], check=False)


def _chroot(root: Path, command: list, timeout: float, env: dict | None = None):
    clean = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
    }
    with _Mounted(root):
        return subprocess.run(
            ["chroot", str(root), *command],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(clean, **(env or {})),
        )


def _install_zip(root: Path, archive: Path) -> None:
    """The zip alone, laid out as Gradescope does: source/ and a copy of run_autograder."""
    autograder = root / "autograder"
    shutil.rmtree(autograder / "source", ignore_errors=True)
    (autograder / "source").mkdir(parents=True)
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(autograder / "source")
        for info in opened.infolist():  # zipfile drops the modes: restore the executable bits
            mode = info.external_attr >> 16
            if mode:
                (autograder / "source" / info.filename).chmod(mode)
    shutil.copy2(autograder / "source" / "run_autograder", autograder / "run_autograder")


def _prepared_root(archive: Path) -> Path:
    """A clean Debian root (debootstrap, minbase) where the zip's setup.sh has run, cached in
    DEBROOT by the hash of setup.sh and requirements.txt, so that reruns are cheap. The caller
    holds ROOT_LOCK while it makes and uses the root: the root is shared by every suite on the
    machine, and a test lays its own zip and mounts into it."""
    import hashlib

    if os.geteuid() != 0 or not shutil.which("debootstrap") or not shutil.which("chroot"):
        pytest.skip("needs root, debootstrap and chroot (apt-get install debootstrap)")
    with zipfile.ZipFile(archive) as opened:
        digest = hashlib.sha256(
            opened.read("setup.sh") + opened.read("requirements.txt")
        ).hexdigest()[:16]
    ready = DEBROOT / f"setup-{digest}"
    if (ready / ".nst-ready").is_file():
        return ready
    mirror = _debian_mirror()
    if mirror is None:
        pytest.skip(f"no Debian {SUITE} mirror in /etc/apt/sources.list*")
    if not _reachable("pypi.org") or not _reachable(mirror.split("/")[2], 80):
        pytest.skip("the Debian mirror or PyPI is not reachable")
    DEBROOT.mkdir(parents=True, exist_ok=True)
    base = DEBROOT / f"base-{SUITE}"
    if not (base / ".nst-ready").is_file():
        building = DEBROOT / f"base-{SUITE}.building"
        shutil.rmtree(building, ignore_errors=True)
        done = subprocess.run(
            ["debootstrap", "--variant=minbase", SUITE, str(building), mirror],
            capture_output=True,
            text=True,
            timeout=3600,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        (building / ".nst-ready").write_text(mirror)
        shutil.rmtree(base, ignore_errors=True)
        building.rename(base)
    building = DEBROOT / f"setup-{digest}.building"
    shutil.rmtree(building, ignore_errors=True)
    subprocess.run(["cp", "-a", str(base), str(building)], check=True)
    (building / ".nst-ready").unlink()
    _install_zip(building, archive)
    # This machine's network may pass TLS through a proxy whose CA only the host trusts: pip in
    # the root is given the host's CA bundle (Gradescope's network needs no such thing).
    host_ca = Path(os.environ.get("PIP_CERT", "/etc/ssl/certs/ca-certificates.crt"))
    env = {}
    if host_ca.is_file():
        shutil.copy(host_ca, building / "etc" / "nst-host-ca.crt")
        env["PIP_CERT"] = "/etc/nst-host-ca.crt"
    done = _chroot(building, ["bash", "/autograder/source/setup.sh"], timeout=3600, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (building / ".nst-ready").write_text(digest)
    shutil.rmtree(ready, ignore_errors=True)
    building.rename(ready)
    return ready


@pytest.mark.slow
@pytest.mark.ship
def test_the_zip_alone_installs_and_grades_in_a_clean_debian_root(assignment, tmp_path):
    """Gradescope's life cycle on the nearest image this machine builds: the zip alone unpacked
    into /autograder/source of a debootstrapped Debian root, setup.sh run there as root (Python
    from Debian, the grading requirements from PyPI), then run_autograder, in the chroot, on a
    correct, a mistaken, a malformed and a two-notebook submission. The sandbox is whatever
    `--isolation auto` finds in the chroot; the output says when there is none."""
    from filelock import FileLock

    archive = assignment / "autograder.zip"
    DEBROOT.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(ROOT_LOCK):
        _grade_in_the_debian_root(archive)


def _grade_in_the_debian_root(archive: Path) -> None:
    import nbformat

    from nst_utils.grading.student import make_student_notebook

    root = _prepared_root(archive)
    _install_zip(root, archive)  # this assignment's zip (the setup is shared by its hash)
    assert not (root / "autograder" / "source" / "pyproject.toml").exists()
    solved = solved_notebook()
    submissions = {
        "correct": {"solution.ipynb": nbformat.writes(solved)},
        "mistaken": {
            "solution.ipynb": nbformat.writes(
                with_body(solved, "gram_matrix", "GA = tf.matmul(tf.transpose(A), A)")
            )
        },
        "malformed": {"solution.ipynb": '{"cells": null}'},
        "two notebooks": {
            "Art_Generation_with_Neural_Style_Transfer_student.ipynb": nbformat.writes(
                make_student_notebook(solved)
            ),
            "My solution.ipynb": nbformat.writes(solved),
        },
    }
    results = {}
    for label, files in submissions.items():
        folder = root / "autograder" / "submission"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(root / "autograder" / "results", ignore_errors=True)
        folder.mkdir(parents=True)
        for name, text in files.items():
            (folder / name).write_text(text)
        done = _chroot(
            root,
            ["bash", "-c", "cd /autograder && ./run_autograder"],
            timeout=900,
            env={"TF_CPP_MIN_LOG_LEVEL": "3"},
        )
        assert done.returncode == 0, (label, done.stderr[-3000:])
        results[label] = json.loads((root / "autograder/results/results.json").read_text())
        _valid(results[label])
    assert results["correct"]["score"] == 100, results["correct"]["output"]
    assert results["mistaken"]["score"] == 75
    tests = {t["name"]: t for t in results["mistaken"]["tests"]}
    assert "computes A^T A" in tests["gram_matrix"]["output"]
    assert results["malformed"]["score"] == 0 and "could not read" in results["malformed"]["output"]
    assert results["two notebooks"]["score"] == 100
    assert "graded My solution.ipynb" in results["two notebooks"]["output"]
    for label, result in results.items():
        assert "could not grade" not in result["output"], (label, result["output"])


def _interpreter(version: str):
    """A working `pythonX.Y` on this machine (on PATH, or installed by pyenv), or None."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [shutil.which(f"python{version}")]
    candidates += sorted(str(p) for p in pyenv.glob(f"{version}.*/bin/python{version}"))
    for found in filter(None, candidates):
        done = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=60)
        if done.returncode == 0 and f"Python {version}." in done.stdout + done.stderr:
            return found
    return None


@pytest.mark.slow
@pytest.mark.ship
@pytest.mark.parametrize(
    "version, packages",
    [
        ("3.10", "GRADING_REQUIREMENTS"),
        ("3.10", "STUDENT_REQUIREMENTS"),
        ("3.11", "GRADING_REQUIREMENTS"),
        ("3.12", "GRADING_REQUIREMENTS"),
        ("3.13", "GRADING_REQUIREMENTS"),
        ("3.13", "STUDENT_REQUIREMENTS"),
    ],
)
def test_the_requirement_sets_resolve_on_each_python(version, packages, tmp_path):
    """pip on that very Python (markers are evaluated by the interpreter that runs pip) finds a
    release of every pinned package and of their dependencies (a dry run, nothing installed)."""
    python = _interpreter(version)
    if python is None:
        pytest.skip(f"no python{version} on this machine")
    if not _reachable("pypi.org"):
        pytest.skip("PyPI is not reachable")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(making.requirements_text(getattr(making, packages), packages))
    done = subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "-q",
            "-r",
            str(requirements),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_without_namespaces_the_autograder_boxes_run_as_a_user_of_their_own(monkeypatch, tmp_path):
    """Where the container denies user namespaces, the output says the code ran as an
    unprivileged user when that is possible, and says why not otherwise; the autograder's folder
    is made root's alone; and the grading venv lies outside it, where that user can run it."""
    from nst_utils.grading.sandbox import host

    monkeypatch.setattr(host, "isolation_problem", lambda: "user namespaces are denied here")
    monkeypatch.setattr(host, "plain_box_problem", lambda: None)
    boxed, note = gradescope._isolation("auto")
    assert not boxed and "unprivileged user" in note
    monkeypatch.setattr(host, "plain_box_problem", lambda: "the grader is not root")
    boxed, note = gradescope._isolation("auto")
    assert not boxed and "the grader is not root" in note and "unprivileged" not in note
    closed = []
    monkeypatch.setattr(host, "close_to_boxes", closed.append)
    monkeypatch.setattr(gradescope, "results", lambda root, settings, isolation: {"score": 0})
    (tmp_path / "results").mkdir()
    gradescope.main(["--root", str(tmp_path)])
    assert closed == [tmp_path]
    assert 'VENV="${NST_VENV:-/opt/nst-venv}"' in making.SETUP
    assert "${NST_VENV:-/opt/nst-venv}/bin/python" in making.RUN_AUTOGRADER
