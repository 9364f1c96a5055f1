"""`make-assignment`: what students download, and a Gradescope autograder for the instructor.

OUT/student/ holds the student notebook, the images and a build of nst_utils with no graded
solution in it: every graded function's body is replaced by a raise wherever it is defined,
and the grading package keeps only what the self-check needs (its diagnoses work on data; the
public cases' answer key is stored as JSON). OUT/autograder.zip holds the whole package (the
reference stays on the grading side), `setup.sh`, `run_autograder` and `assignment.json` (the
seed of the hidden cases, drawn afresh for every assignment).
"""

from __future__ import annotations

import ast
import json
import secrets
import shutil
import zipfile
from pathlib import Path

from ..config import PROJECT_ROOT
from ..errors import NSTError
from . import answer_key
from .functions import RECORDS
from .student import SOLVED, student_notebook_text

PACKAGE = Path(__file__).resolve().parents[1]
#: Parts of the package students do not get: the grader, and the commands built on it.
GRADER_ONLY = ("cli.py", "__main__.py", "commands", "grading")
#: The grading modules the students' self-check needs; none holds a solution or the grader.
SELF_CHECK = (
    "__init__.py",
    "catalog.py",
    "blanks.py",
    "diagnose.py",
    "selfcheck.py",
    "sandbox/__init__.py",
    "sandbox/box/__init__.py",
    "sandbox/box/runner.py",
    "sandbox/box/protocol.py",
)
STUDENT_GRADING_INIT = '''"""Self-checks for the notebook: `check(fn)` prints the grader's feedback on the public cases."""

from .catalog import Limits
from .selfcheck import check

__all__ = ["Limits", "check"]
'''
STUB = (
    'raise NotImplementedError("{name} is yours to write in the notebook; this copy of '
    'nst_utils does not hold it")'
)
RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this once per submission: grade /autograder/submission/*.ipynb in the sandbox
# and write /autograder/results/results.json. NST_AUTOGRADER_ROOT moves /autograder (tests).
set -u
ROOT="${NST_AUTOGRADER_ROOT:-/autograder}"
cd "$ROOT/source" && exec "${NST_PYTHON:-python3}" -m nst_utils.grading.gradescope --root "$ROOT"
"""
SETUP = """#!/usr/bin/env bash
# Gradescope runs this once when the autograder is uploaded: Python, TensorFlow, util-linux.
set -eu
apt-get update
apt-get install -y python3 python3-pip python3-venv util-linux
python3 -m pip install --break-system-packages -r /autograder/source/requirements.txt \\
  || python3 -m pip install -r /autograder/source/requirements.txt
"""


def _graded_names() -> set:
    return {record.name for record in RECORDS}


def strip_solutions(source: str, names: set) -> str:
    """`source` with the body of every function named in `names` replaced by a raise (its
    signature and docstring stay)."""
    tree = ast.parse(source)
    lines = source.split("\n")
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in names:
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(getattr(body[0], "value", None), ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                body = body[1:]
            indent = " " * (node.col_offset + 4)
            if body:
                spans.append(
                    (body[0].lineno - 1, node.end_lineno, indent + STUB.format(name=node.name))
                )
            else:
                spans.append(
                    (node.end_lineno, node.end_lineno, indent + STUB.format(name=node.name))
                )
    for first, last, stub in sorted(spans, reverse=True):
        lines[first:last] = [stub]
    return "\n".join(lines)


def _copy_package(target: Path) -> None:
    from ..costs import SOLUTION_PIECES

    names = _graded_names() | set(SOLUTION_PIECES)
    for path in sorted(PACKAGE.rglob("*")):
        relative = path.relative_to(PACKAGE)
        if "__pycache__" in relative.parts or relative.parts[0] in GRADER_ONLY or path.is_dir():
            continue
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".py":
            text = strip_solutions(path.read_text(encoding="utf-8"), names)
            if path.name == "costs.py":
                text += "\n\n#: This copy holds no graded solution (the self-check reads it).\nSTUDENT_BUILD = True\n"
            destination.write_text(text, encoding="utf-8")
        else:
            shutil.copy2(path, destination)
    grading = target / "grading"
    for relative in SELF_CHECK:
        destination = grading / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        text = (PACKAGE / "grading" / relative).read_text(encoding="utf-8")
        destination.write_text(strip_solutions(text, names), encoding="utf-8")
    (grading / "__init__.py").write_text(STUDENT_GRADING_INIT, encoding="utf-8")
    keys = {record.name: answer_key.public_key(record.name) for record in RECORDS}
    (grading / "public_key.json").write_text(answer_key.dumps(keys), encoding="utf-8")


def _student_folder(out: Path, solved: Path) -> Path:
    student = out / "student"
    student.mkdir(parents=True)
    notebooks = student / "notebooks"
    notebooks.mkdir()
    (notebooks / SOLVED.name.replace(".ipynb", "_student.ipynb")).write_text(
        student_notebook_text(solved), encoding="utf-8"
    )
    shutil.copytree(PROJECT_ROOT / "images", student / "images")
    _copy_package(student / "nst_utils")
    return student


def _zip_tree(archive: zipfile.ZipFile, folder: Path, prefix: str) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            archive.write(path, f"{prefix}/{path.relative_to(folder).as_posix()}")


def _executable(archive: zipfile.ZipFile, name: str, text: str) -> None:
    info = zipfile.ZipInfo(name)
    info.external_attr = 0o755 << 16
    archive.writestr(info, text)


def _autograder(out: Path, hidden_seed: int) -> Path:
    path = out / "autograder.zip"
    settings = {"hidden_seed": hidden_seed, "functions": sorted(_graded_names())}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        _executable(archive, "setup.sh", SETUP)
        _executable(archive, "run_autograder", RUN_AUTOGRADER)
        archive.writestr("assignment.json", json.dumps(settings, indent=2) + "\n")
        archive.write(PROJECT_ROOT / "requirements.txt", "requirements.txt")
        _zip_tree(archive, PACKAGE, "nst_utils")
    return path


def make_assignment(out: Path, solved: Path = SOLVED, hidden_seed: int | None = None) -> dict:
    """Write OUT/student/ and OUT/autograder.zip; {'student': path, 'autograder': path}."""
    out = Path(out).expanduser()
    if out.exists() and any(out.iterdir()):
        raise NSTError(f"{out} is not empty; give a new or empty folder for the assignment")
    out.mkdir(parents=True, exist_ok=True)
    seed = secrets.randbelow(2**31) if hidden_seed is None else hidden_seed
    return {"student": _student_folder(out, solved), "autograder": _autograder(out, seed)}
