"""The Gradescope side of an assignment: grade ROOT/submission/*.ipynb, write ROOT/results/results.json.

Run by the autograder's `run_autograder` as ``python -m nst_utils.grading.gradescope --root ROOT``.
Each function is a test worth its points, visible, with feedback from the public cases only;
the hidden cases' feedback is a test of its own, shown once the instructor publishes the grades.
Gradescope already grades every submission in a container of its own: where that container
offers no user namespaces, the sandbox runs without them, as a user of its own who cannot
enter the autograder's folder, and the results say so.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import catalog, extract, grader
from .sandbox import host

SETTINGS = Path(__file__).resolve().parents[2] / "assignment.json"


def _tests(row) -> list:
    tests = []
    for name, grade in row.grades.items():
        tests.append(
            {
                "name": name,
                "score": grade.points,
                "max_score": grade.max_points,
                "status": "passed" if grade.passed else "failed",
                "output": grade.public_feedback or grade.feedback,
                "visibility": "visible",
            }
        )
        if grade.public_feedback is not None:
            tests.append(
                {
                    "name": f"{name} (hidden cases)",
                    "score": 0,
                    "max_score": 0,
                    "status": "passed" if grade.passed else "failed",
                    "output": grade.feedback,
                    "visibility": "after_published",
                }
            )
    return tests


def results(root: Path, settings: dict) -> dict:
    """The results.json content for the submission under `root`."""
    notebooks = sorted(
        p
        for p in (root / "submission").rglob("*.ipynb")
        if ".ipynb_checkpoints" not in p.parts and p.is_file()
    )
    if not notebooks:
        return {
            "score": 0,
            "output": "No notebook (.ipynb) was submitted: upload your notebook.",
            "tests": [],
        }
    isolation = host.isolation_problem() is None
    submission = extract.read_submission(notebooks[0], notebooks[0].stem)
    (row,) = grader.grade_submissions(
        [submission],
        catalog.Limits(),
        isolation=isolation,
        hidden_seed=int(settings.get("hidden_seed", 1)),
    )
    output = [f"Graded {notebooks[0].name}: {row.points}/{row.max_points}."]
    if len(notebooks) > 1:
        output.append(f"Several notebooks were submitted; only {notebooks[0].name} was graded.")
    if row.error:
        output.append(row.error)
    if not isolation:
        output.append("Graded in this submission's own container, without user namespaces.")
    return {
        "score": row.points,
        "output": " ".join(output),
        "tests": _tests(row),
        "visibility": "visible",
        "stdout_visibility": "hidden",
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/autograder"))
    args = parser.parse_args(argv)
    try:  # the autograder's source, hidden seed and results are no other user's business (a box
        os.chmod(args.root, 0o700)  # without namespaces runs as another user)
    except OSError:
        pass
    settings = json.loads(SETTINGS.read_text()) if SETTINGS.is_file() else {}
    try:
        content = results(args.root, settings)
    except Exception as exc:  # noqa: BLE001 - Gradescope must always get a results file
        content = {
            "score": 0,
            "tests": [],
            "output": f"The autograder could not grade this submission ({type(exc).__name__}: "
            f"{exc}); tell your instructor.",
        }
    folder = args.root / "results"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    print(content.get("output", ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
