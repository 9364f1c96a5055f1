"""The student notebook, generated from the solved one: the exercises become blanks.

Between each `### START CODE HERE ###` and `### END CODE HERE ###` (in the graded cells and in
the ungraded exercises alike), the hint comments stay and the code is replaced by a
`raise NotImplementedError(...)`; outputs go.
One source: `python -m nst_utils make-student-notebook` regenerates it, and a test fails when
the committed student notebook differs.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat

from ..config import PROJECT_ROOT
from ..errors import NSTError
from ..files import write_text_atomically
from .catalog import END_MARKER, GRADED_HEADER, START_MARKER

SOLVED = PROJECT_ROOT / "notebooks" / "Art_Generation_with_Neural_Style_Transfer.ipynb"
STUDENT = PROJECT_ROOT / "notebooks" / "Art_Generation_with_Neural_Style_Transfer_student.ipynb"


def _exercise_name(source: str) -> str:
    """What a blank's message calls the exercise: the cell's function, or the first name it assigns."""
    match = re.search(r"^\s*def\s+(\w+)\s*\(", source, re.MULTILINE)
    if match:
        return match.group(1)
    body = source.split(START_MARKER, 1)[-1]
    match = re.search(r"^\s*(\w+)\s*=", body, re.MULTILINE)
    return match.group(1) if match else "this exercise"


def blank_body(source: str, name: str | None = None) -> str:
    """The cell's source with the code of every START/END block replaced by a not-implemented raise.

    name: what the raise's message calls the exercise (default: the cell's function, or the
    first name the block assigns).
    """
    name = name or _exercise_name(source)
    lines = source.split("\n")
    markers = [line.strip() for line in lines if line.strip() in (START_MARKER, END_MARKER)]
    starts = [i for i, line in enumerate(lines) if line.strip() == START_MARKER]
    ends = [i for i, line in enumerate(lines) if line.strip() == END_MARKER]
    if not markers or markers != [START_MARKER, END_MARKER] * len(starts):
        raise NSTError(f"the exercise {name} needs {START_MARKER} and {END_MARKER} lines in pairs, "
                       f"each START before its END")
    out, previous = [], 0
    for start, end in zip(starts, ends):
        indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
        hints = [line for line in lines[start + 1:end] if line.strip().startswith("#")]
        blank = (f'{indent}raise NotImplementedError("{name} is not implemented yet: replace this '
                 f'line with your code")')
        out += lines[previous: start + 1] + hints + [blank]
        previous = end
    return "\n".join(out + lines[previous:])


def make_student_notebook(solved):
    """A new notebook: `solved` with every exercise blanked and no outputs."""
    notebook = copy.deepcopy(solved)
    blanked = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs, cell.execution_count = [], None
        first = cell.source.split("\n", 1)[0].strip()
        if first.startswith(GRADED_HEADER):
            cell.source = blank_body(cell.source, first[len(GRADED_HEADER):].strip())
            blanked += 1
        elif any(line.strip() == START_MARKER for line in cell.source.split("\n")):
            cell.source = blank_body(cell.source)
    if not blanked:
        raise NSTError(f"no cell headed '{GRADED_HEADER} <name>' in the solved notebook")
    return notebook


def student_notebook_text(solved_path: Path = SOLVED) -> str:
    """The student notebook's file contents, generated from the solved notebook at `solved_path`."""
    try:
        solved = nbformat.read(str(solved_path), as_version=4)
    except (OSError, ValueError) as exc:
        raise NSTError(f"cannot read the solved notebook {solved_path} ({exc}); give a valid .ipynb") from None
    return nbformat.writes(make_student_notebook(solved)) + "\n"


def write_student_notebook(solved_path: Path = SOLVED, student_path: Path = STUDENT) -> Path:
    """Write the generated student notebook beside its target, then rename it into place."""
    return write_text_atomically(student_path, student_notebook_text(solved_path))

