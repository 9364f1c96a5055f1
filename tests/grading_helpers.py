"""Build submissions for the grading tests from the solved notebook by replacing function bodies."""

import copy
import json
import textwrap

import nbformat

from nst_utils.grading.catalog import END_MARKER, GRADED_HEADER, START_MARKER
from nst_utils.grading.student import SOLVED
from limits import HANG_SECONDS


def solved_notebook():
    return nbformat.read(str(SOLVED), as_version=4)


def with_body(notebook, name: str, body: str, before: str = ""):
    """A copy of `notebook` whose graded `name` has `body` between the markers.

    `before` goes at the top of the cell (code that runs when the cell is defined).
    """
    notebook = copy.deepcopy(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code" and cell.source.startswith(f"{GRADED_HEADER} {name}\n"):
            lines = cell.source.split("\n")
            start = next(i for i, line in enumerate(lines) if line.strip().startswith(START_MARKER))
            end = next(i for i, line in enumerate(lines) if line.strip().startswith(END_MARKER))
            code = textwrap.indent(textwrap.dedent(body).strip("\n"), "    ").split("\n")
            lines = lines[: start + 1] + code + lines[end:]
            if before:
                lines = [lines[0], textwrap.dedent(before).strip("\n")] + lines[1:]
            cell.source = "\n".join(lines)
            return notebook
    raise ValueError(f"no graded cell for {name}")


def with_bodies(notebook, bodies: dict):
    """A copy of `notebook` with several graded functions' bodies replaced ({name: body})."""
    for name, body in bodies.items():
        notebook = with_body(notebook, name, body)
    return notebook


def write(notebook, path):
    path.write_text(nbformat.writes(notebook), encoding="utf-8")
    return path


def cell_source(notebook, name: str) -> str:
    return next(
        c.source
        for c in notebook.cells
        if c.cell_type == "code" and c.source.startswith(f"{GRADED_HEADER} {name}\n")
    )


def as_json(notebook) -> dict:
    return json.loads(nbformat.writes(notebook))


def packed(functions: dict) -> list:
    """Keys ({key: the function it is about}) packed into as few notebooks as can hold them, at
    most one per function in each: [{function: key}]."""
    notebooks = []
    for key, name in functions.items():
        home = next((n for n in notebooks if name not in n), None)
        if home is None:
            home = {}
            notebooks.append(home)
        home[name] = key
    return notebooks


def require_isolation():
    """Skip when this kernel offers no namespaces to an unprivileged process; fail when it does
    and the sandbox still cannot isolate (a skip there would hide a broken sandbox)."""
    import shutil
    import subprocess

    import pytest

    from nst_utils.grading.sandbox import host

    problem = host.isolation_problem()
    if problem is None:
        return
    unshare = shutil.which("unshare")
    offered = (
        unshare is not None
        and subprocess.run(
            [
                unshare,
                "--user",
                "--map-root-user",
                "--pid",
                "--net",
                "--mount",
                "--ipc",
                "--fork",
                "true",
            ],
            capture_output=True,
            timeout=HANG_SECONDS,
        ).returncode
        == 0
    )
    if offered:
        pytest.fail(f"the kernel offers namespaces, but the sandbox cannot isolate: {problem}")
    pytest.skip(f"no kernel isolation here: {problem}")
