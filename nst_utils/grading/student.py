"""The student notebook, generated from the solved one: the lines between the START CODE HERE
and END CODE HERE markers of every cell become blanks as the original's (see blanks.py), and
outputs go. One source: `python -m nst_utils make-student-notebook` regenerates
it, and a test fails when the committed student notebook differs.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat

from ..config import PROJECT_ROOT
from ..errors import NSTError
from ..files import write_text_atomically
from .blanks import blank_body, is_start
from .catalog import GRADED_HEADER

SOLVED = PROJECT_ROOT / "notebooks" / "Art_Generation_with_Neural_Style_Transfer.ipynb"
STUDENT = PROJECT_ROOT / "notebooks" / "Art_Generation_with_Neural_Style_Transfer_student.ipynb"


def make_student_notebook(solved):
    """A new notebook: `solved` with every graded body blanked and no outputs."""
    notebook = copy.deepcopy(solved)
    blanked = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs, cell.execution_count = [], None
        first = cell.source.split("\n", 1)[0].strip()
        if first.startswith(GRADED_HEADER):
            cell.source = blank_body(cell.source, first[len(GRADED_HEADER) :].strip())
            blanked += 1
        elif any(is_start(line) for line in cell.source.split("\n")):
            cell.source = blank_body(cell.source, "this exercise")
    if not blanked:
        raise NSTError(f"no cell headed '{GRADED_HEADER} <name>' in the solved notebook")
    return notebook


def student_notebook_text(solved_path: Path = SOLVED) -> str:
    """The student notebook's file contents, generated from the solved notebook at `solved_path`."""
    try:
        solved = nbformat.read(str(solved_path), as_version=4)
    except (OSError, ValueError) as exc:
        raise NSTError(
            f"cannot read the solved notebook {solved_path} ({exc}); give a valid .ipynb"
        ) from None
    return nbformat.writes(make_student_notebook(solved)) + "\n"


def write_student_notebook(solved_path: Path = SOLVED, student_path: Path = STUDENT) -> Path:
    """Write the generated student notebook beside its target, then rename it into place."""
    return write_text_atomically(student_path, student_notebook_text(solved_path))
