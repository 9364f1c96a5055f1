"""Find submissions and the graded functions in them (cells headed `# GRADED FUNCTION: name`)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import stat
from pathlib import Path

from ..errors import NSTError
from .catalog import GRADED_HEADER

_HEADER = re.compile(r"^\s*" + re.escape(GRADED_HEADER) + r"\s*(\w+)\s*$")


@dataclasses.dataclass
class Submission:
    """One student's notebook: its graded cells' sources, or why it could not be read."""

    student: str
    path: Path
    sources: dict
    error: str | None = None


#: Larger files are reported, not read: a notebook of this exercise is far smaller.
MAX_NOTEBOOK_BYTES = 50_000_000


def _source(cell) -> str:
    """The cell's source as text, whatever the JSON holds (a string, a list of pieces, numbers)."""
    source = cell.get("source", "")
    if isinstance(source, list):
        return "".join(piece if isinstance(piece, str) else str(piece) for piece in source)
    return source if isinstance(source, str) else str(source)


def _without_magics(source: str) -> str:
    """IPython magics and shell escapes (%..., !...) commented out, so plain Python can run it."""
    return "\n".join(re.sub(r"^(\s*)([%!])", r"\1# \2", line) for line in source.splitlines())


def graded_sources(notebook: dict) -> dict:
    """{function name: its cell's source} for each graded cell; a later cell replaces an earlier one."""
    sources = {}
    cells = notebook.get("cells")
    if not isinstance(cells, list):
        raise ValueError(
            f"its 'cells' is {type(cells).__name__ if cells is not None else 'missing'}, "
            f"not a list of cells"
        )
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = _source(cell)
        first = next((line for line in source.splitlines() if line.strip()), "")
        match = _HEADER.match(first)
        if match:
            sources[match.group(1)] = _without_magics(source)
    return sources


def _read_regular_file(path: Path):
    """The file's bytes (at most one more than the size limit), or None if it is not a regular
    file: a FIFO would block the class run and a link to /dev/zero fill its memory."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return handle.read(MAX_NOTEBOOK_BYTES + 1)


def read_submission(path: Path, student: str) -> Submission:
    """The submission at `path`; whatever the file holds, a Submission (with `error` if unusable)."""

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
        notebook = json.loads(data.decode("utf-8"))
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
