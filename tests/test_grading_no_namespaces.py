"""Where the container denies user namespaces (Docker's default profile, as at Gradescope), a
grader run by root runs each box as an unprivileged user id of its own: once the autograder's
folder is closed to other users (`host.close_to_boxes`), a submission can neither read the
answer key in its source nor write its results. The grader runs here under the system's Python
(any user may run it) with this environment's libraries, as the Gradescope image would."""

import json
import os
import shutil
import subprocess
import tempfile
import textwrap
from pathlib import Path

import pytest

from grading_helpers import solved_notebook, with_bodies, write

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = "/usr/bin/python3"
GIVE_UP = "raise RuntimeError('the attack found nothing')"

#: Graded as the Gradescope autograder does: isolation only if the kernel allows it.
GRADE = """
import json, sys
from pathlib import Path
from nst_utils.grading import Limits
from nst_utils.grading.grader import grade_paths
from nst_utils.grading.sandbox import host
isolation = host.isolation_problem() is None
limits = Limits(time=60.0, memory_mb=600, output_bytes=100_000, audit_hook=False)
functions = ["compute_content_cost", "gram_matrix"]
(row,) = grade_paths([Path(sys.argv[1])], limits, functions, isolation=isolation)
print(json.dumps({"isolated": row.isolated, "user": host.plain_box_problem(),
                  **{n: [g.points, g.feedback] for n, g in row.grades.items()}}))
"""


def _attacks(root: Path) -> dict:
    return {
        "compute_content_cost": f"""
        for read in (lambda: __import__("nst_utils.costs").costs,
                     lambda: exec(open("{root}/source/nst_utils/costs.py").read(), env) or env):
            try:
                env = {{}}
                found = read()
                if isinstance(found, dict):
                    return found["compute_content_cost"](a_C, a_G)
                return found.compute_content_cost(a_C, a_G)
            except Exception:
                pass
        {GIVE_UP}
        """,
        "gram_matrix": f"""
        try:
            open("{root}/results/results.json", "w").write('{{"score": 100}}')
        except OSError:
            pass
        {GIVE_UP}
        """,
    }


@pytest.fixture
def autograder():
    """A world-traversable folder holding an environment made from the system's Python and an
    autograder root (source with nst_utils, results)."""
    if os.geteuid() != 0:
        pytest.skip("only a grader run by root gives its boxes a user id of their own")
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.skip(f"needs {SYSTEM_PYTHON}, which any user may run")
    import numpy

    base = Path(tempfile.mkdtemp(prefix="nst-no-namespaces-"))
    base.chmod(0o755)
    try:
        root = base / "autograder"
        shutil.copytree(REPO / "nst_utils", root / "source" / "nst_utils")
        (root / "results").mkdir()
        for folder, dirs, files in os.walk(base):
            os.chmod(folder, 0o755)
            for name in files:
                os.chmod(os.path.join(folder, name), 0o644)
        done = subprocess.run(
            [SYSTEM_PYTHON, "-m", "venv", "--without-pip", str(base / "env")], capture_output=True
        )
        if done.returncode != 0:
            pytest.skip(f"{SYSTEM_PYTHON} cannot make an environment: {done.stderr[-200:]!r}")
        python = base / "env" / "bin" / "python"
        site = subprocess.run(
            [str(python), "-c", "import site; print(site.getsitepackages()[0])"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        libraries = str(Path(numpy.__file__).resolve().parents[1])
        Path(site, "paths.pth").write_text(f"{libraries}\n{root / 'source'}\n")
        probe = subprocess.run(
            [str(python), "-c", "import tensorflow, nst_utils"], capture_output=True, text=True
        )
        if probe.returncode != 0:
            pytest.skip(
                f"the system's Python cannot import this environment's libraries: "
                f"{probe.stderr.strip().splitlines()[-1:]}"
            )
        yield {"python": python, "root": root, "base": base}
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _grade(autograder) -> dict:
    root = autograder["root"]
    bodies = {n: textwrap.dedent(b) for n, b in _attacks(root).items()}
    notebook = write(with_bodies(solved_notebook(), bodies), autograder["base"] / "sub.ipynb")
    notebook.chmod(0o644)
    env = dict(os.environ, NST_SANDBOX_NO_NAMESPACES="1")
    done = subprocess.run(
        [str(autograder["python"]), "-c", GRADE, str(notebook)],
        capture_output=True,
        text=True,
        env=env,
        cwd=autograder["base"],
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_without_namespaces_a_box_reads_no_answer_key_and_writes_no_results(autograder):
    from nst_utils.grading.sandbox import host

    host.close_to_boxes(autograder["root"])
    found = _grade(autograder)
    assert found["isolated"] is False and found["user"] is None, found
    for name in ("compute_content_cost", "gram_matrix"):
        points, feedback = found[name]
        assert points == 0 and "the attack found nothing" in feedback, found
    assert list((autograder["root"] / "results").iterdir()) == []


def test_without_namespaces_an_open_answer_key_is_read(autograder):
    """The control: the same submission reads the answer key when its folder is left open."""
    found = _grade(autograder)
    assert found["isolated"] is False and found["user"] is None, found
    assert found["compute_content_cost"][0] == 25, found
