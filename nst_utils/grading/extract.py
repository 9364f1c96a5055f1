"""Find submissions and the graded functions in them: the cells that define them (headed
`# GRADED FUNCTION: name` in the notebook)."""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import re
import stat
from pathlib import Path

from ..errors import NSTError
from .catalog import GRADED_HEADER

#: A header line, however spaced and whatever follows the name: `# GRADED FUNCTION: name`,
#: `#GRADED FUNCTION:name (done)`.
_HEADER = re.compile(r"^\s*#\s*" + re.escape(GRADED_HEADER.lstrip("#").strip()) + r"\s*(\w+)\b")
#: A function defined at the top of a cell, for cells Python cannot parse (a syntax error).
_TOP_DEF = re.compile(r"^(?:async\s+)?def\s+(\w+)\s*\(", re.MULTILINE)
#: Cell magics that run their cell as Python in the notebook's namespace; a cell under any
#: other defines nothing there (%%bash, %%writefile, %%html; %%timeit runs it in a function).
PYTHON_CELL_MAGICS = frozenset({"time", "capture", "prun", "debug"})


@dataclasses.dataclass
class Submission:
    """One student's notebook: its graded cells' sources, or why it could not be read."""

    student: str
    path: Path
    sources: dict
    error: str | None = None


#: Cells longer than this (characters) are searched for definitions by their text alone.
MAX_PARSED_CELL = 1_000_000
#: Larger files are reported, not read. Only a notebook's code is graded, so its outputs may
#: weigh what they like up to this size (a plot or a long log).
MAX_NOTEBOOK_BYTES = 100_000_000


def _source(cell) -> str:
    """The cell's source as text, whatever the JSON holds (a string, a list of pieces, numbers)."""
    source = cell.get("source", "")
    if isinstance(source, list):
        return "".join(piece if isinstance(piece, str) else str(piece) for piece in source)
    return source if isinstance(source, str) else str(source)


def _without_magics(source: str) -> str:
    """IPython magics and shell escapes (%..., !...) commented out, so plain Python can run it."""
    return "\n".join(re.sub(r"^(\s*)([%!])", r"\1# \2", line) for line in source.splitlines())


def python_source(source: str):
    """The cell as plain Python, as IPython runs it: magics and shell escapes commented out
    (line numbers kept); None for a cell that a cell magic makes other than Python."""
    for line in source.splitlines():
        stripped = line.strip()
        if not stripped or (stripped.startswith("#") and not stripped.startswith("%%")):
            continue
        if stripped.startswith("%%"):
            magic = stripped[2:].split(maxsplit=1)[0] if stripped[2:].strip() else ""
            if magic not in PYTHON_CELL_MAGICS:
                return None
        break
    return _without_magics(source)


def _header_name(source: str):
    """The name in the cell's `# GRADED FUNCTION: name` line, among the comments and magics
    above its first statement; None if it has none."""
    for line in source.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return None
        match = _HEADER.match(line)
        if match:
            return match.group(1)
    return None


def defined_functions(source: str) -> list:
    """Names of the functions a cell defines at its top level, in order (by the text, when
    the cell has a syntax error: the grader then reports the error)."""
    if len(source) > MAX_PARSED_CELL:  # a syntax tree takes many times the text's memory
        return _TOP_DEF.findall(source)
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return _TOP_DEF.findall(source)
    return [
        node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]


def graded_sources(notebook: dict) -> dict:
    """{function name: the source of the cell that defines it} for each graded function.

    A graded cell is found by its function's definition (the last cell that defines it wins,
    as when the notebook is run from the top) or, failing that, by its header; a header may
    sit among comments and under a cell magic such as %%time.
    """
    cells = notebook.get("cells")
    if not isinstance(cells, list):
        raise ValueError(
            f"its 'cells' is {type(cells).__name__ if cells is not None else 'missing'}, "
            f"not a list of cells"
        )
    from .functions import BY_NAME

    by_header, by_definition = {}, {}
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = python_source(_source(cell))
        if source is None:
            continue
        header = _header_name(source)
        if header:
            by_header[header] = source
        for name in defined_functions(source):
            if name in BY_NAME:
                by_definition[name] = source
    return {**by_header, **by_definition}


def _without_outputs(pairs) -> dict:
    """A JSON object without its outputs: only a notebook's code is graded, and dropping each
    cell's outputs as it is parsed keeps a notebook heavy with plots from filling memory."""
    return {key: value for key, value in pairs if key not in ("outputs", "attachments")}


def _read_regular_file(path: Path):
    """The file's bytes (at most one more than the size limit), or None if it is not a regular
    file: a FIFO would block the class run and a link to /dev/zero fill its memory."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return handle.read(MAX_NOTEBOOK_BYTES + 1)


def read_submission(path: Path, student: str) -> Submission:
    """The submission at `path`: whatever the file holds, a Submission (`error` if unusable)."""

    def unreadable(reason):
        return Submission(
            student,
            Path(path),
            {},
            f"could not read {printable(path)}: {reason}; submit the notebook as saved by Jupyter",
        )

    try:
        data = _read_regular_file(Path(path))
        if data is None:
            return unreadable("not a regular file (a device, a FIFO or a folder)")
        if len(data) > MAX_NOTEBOOK_BYTES:
            return unreadable(f"larger than {MAX_NOTEBOOK_BYTES // 1_000_000} MB")
        notebook = json.loads(data.decode("utf-8"), object_pairs_hook=_without_outputs)
    except OSError as exc:
        return unreadable(exc.strerror or "the file cannot be opened")
    except (UnicodeDecodeError, ValueError, RecursionError):
        return unreadable("not a notebook (.ipynb JSON)")
    if not isinstance(notebook, dict):
        return unreadable("not a notebook (its JSON is not an object)")
    try:
        return Submission(student, Path(path), graded_sources(notebook))
    except (ValueError, TypeError, AttributeError, RecursionError) as exc:
        return unreadable(f"not a notebook ({exc})")


def printable(path) -> str:
    """`path` as text that can be written anywhere: a file name that is not valid UTF-8 (its
    bytes kept as surrogates by Python) would make writing the CSV fail after grading."""
    return os.fsencode(str(path)).decode("utf-8", "replace")


def find_submissions(paths) -> list:
    """Submissions from notebook files and folders (every .ipynb inside, recursively), in order.

    A student is named by the file's path relative to the folder given, without `.ipynb`.
    """
    found = []
    for given in paths:
        given = Path(given).expanduser()
        if given.is_dir():
            notebooks = sorted(
                p
                for p in given.rglob("*.ipynb")
                if ".ipynb_checkpoints" not in p.parts and not p.is_dir()
            )
            if not notebooks:
                raise NSTError(
                    f"no .ipynb notebooks in folder {given}; give notebooks or folders "
                    f"that hold them"
                )
            found += [(p, p.relative_to(given).with_suffix("").as_posix()) for p in notebooks]
        elif given.is_file():
            if given.suffix != ".ipynb":
                raise NSTError(f"{given} is not a notebook; give .ipynb files or folders of them")
            found.append((given, given.stem))
        else:
            raise NSTError(f"no such notebook or folder: {given}")
    return [read_submission(path, printable(student)) for path, student in found]
