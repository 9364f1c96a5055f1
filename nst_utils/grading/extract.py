"""Find submissions and the graded functions in them (cells headed `# GRADED FUNCTION: name`)."""

from __future__ import annotations

import dataclasses
import json
import re
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


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _without_magics(source: str) -> str:
    """IPython magics and shell escapes (%..., !...) commented out, so plain Python can run it."""
    return "\n".join(re.sub(r"^(\s*)([%!])", r"\1# \2", line) for line in source.splitlines())


def graded_sources(notebook: dict) -> dict:
    """{function name: its cell's source} for each graded cell; a later cell replaces an earlier one."""
    sources = {}
    for cell in notebook.get("cells", []):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = _source(cell)
        first = next((line for line in source.splitlines() if line.strip()), "")
        match = _HEADER.match(first)
        if match:
            sources[match.group(1)] = _without_magics(source)
    return sources


def read_submission(path: Path, student: str) -> Submission:
    try:
        notebook = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(notebook, dict):
            raise ValueError("not a notebook")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a notebook (.ipynb JSON)"
        return Submission(student, Path(path), {}, f"could not read {path}: {reason}")
    return Submission(student, Path(path), graded_sources(notebook))


def find_submissions(paths) -> list:
    """Submissions from notebook files and folders (every .ipynb inside, recursively), in order.

    A student is named by the file's path relative to the folder given, without `.ipynb`.
    """
    found = []
    for given in paths:
        given = Path(given).expanduser()
        if given.is_dir():
            notebooks = sorted(p for p in given.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
            if not notebooks:
                raise NSTError(f"no .ipynb notebooks in folder {given}; give notebooks or folders "
                               f"that hold them")
            found += [(p, p.relative_to(given).with_suffix("").as_posix()) for p in notebooks]
        elif given.is_file():
            if given.suffix != ".ipynb":
                raise NSTError(f"{given} is not a notebook; give .ipynb files or folders of them")
            found.append((given, given.stem))
        else:
            raise NSTError(f"no such notebook or folder: {given}")
    return [read_submission(path, student) for path, student in found]
