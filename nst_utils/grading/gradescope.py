"""The Gradescope side of an assignment: grade ROOT/submission/*.ipynb, write results.json.

Run by the autograder's `run_autograder` as ``python -m nst_utils.grading.gradescope --root ROOT``.
Each function is a test worth its points, visible, with feedback from the public cases only;
the hidden cases' feedback is a test of its own, shown once the instructor publishes the grades.
Several notebooks in one submission: the one with the most graded cells filled is graded and
the output says which; a tie is reported, not guessed. Gradescope grades every submission in
a container of its own; `--isolation auto` uses the strongest sandbox `sandbox.host` finds
there and says in the output when it has none, `--isolation none` grades unboxed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from . import catalog, extract, grader
from .blanks import is_untouched_blank
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


def _filled(submission) -> int:
    """How many graded cells of `submission` are filled (-1 for a notebook that cannot be read)."""
    if submission.error is not None:
        return -1
    return sum(not is_untouched_blank(source) for source in submission.sources.values())


def choose(notebooks: list, folder: Path):
    """(the submission to grade, a note) among the notebooks submitted in `folder`: the one with
    the most graded cells filled; (None, why) when several share that count (no guess)."""
    submissions = [extract.read_submission(path, path.stem) for path in notebooks]
    if len(submissions) == 1:
        return submissions[0], ""
    counts = [_filled(s) for s in submissions]
    best = max(counts)
    names = [extract.printable(p.relative_to(folder)) for p in notebooks]
    tied = [name for name, count in zip(names, counts) if count == best]
    if len(tied) > 1:
        return None, (
            f"{len(notebooks)} notebooks were submitted and {len(tied)} of them ("
            + ", ".join(tied)
            + ") have as many graded cells filled: submit only the notebook to grade."
        )
    chosen = counts.index(best)
    others = ", ".join(n for i, n in enumerate(names) if i != chosen)
    return submissions[chosen], (
        f"{len(notebooks)} notebooks were submitted; graded {names[chosen]}, the one with the "
        f"most graded cells filled ({best}), not {others}."
    )


def _isolation(choice: str):
    """(isolation for grade_submissions, a note for the output) for --isolation `choice`."""
    if choice == "none":
        return False, "Graded without the sandbox (--isolation none)."
    problem = host.isolation_problem()
    if problem is None:
        return True, ""
    plain = host.plain_box_problem()
    if plain is None:
        return False, (
            f"Graded without the kernel sandbox ({problem}), as an unprivileged user that can "
            "neither read the autograder's files nor write its results."
        )
    return False, f"Graded without the sandbox ({problem}; {plain})."


def results(root: Path, settings: dict, isolation: str = "auto") -> dict:
    """The results.json content for the submission under `root`."""
    submitted = root / "submission"
    notebooks = sorted(
        p for p in submitted.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts and p.is_file()
    )
    if not notebooks:
        return {
            "score": 0,
            "output": "No notebook (.ipynb) was submitted: upload your notebook.",
            "tests": [],
        }
    submission, note = choose(notebooks, submitted)
    if submission is None:
        return {"score": 0, "output": note, "tests": []}
    boxed, box_note = _isolation(isolation)
    (row,) = grader.grade_submissions(
        [submission],
        catalog.Limits(),
        isolation=boxed,
        hidden_seed=int(settings.get("hidden_seed", 1)),
    )
    name = extract.printable(submission.path.relative_to(submitted))
    output = [f"Graded {name}: {row.points}/{row.max_points}."]
    output += [text for text in (note, row.error, box_note) if text]
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
    parser.add_argument(
        "--isolation",
        choices=("auto", "none"),
        default="auto",
        help="auto: the strongest sandbox this container offers; none: grade unboxed",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:  # the autograder's source, hidden seed and results are no other user's business (a box
        host.close_to_boxes(args.root)  # without namespaces runs as another user)
    except OSError:
        pass
    settings = json.loads(SETTINGS.read_text()) if SETTINGS.is_file() else {}
    try:
        content = results(args.root, settings, args.isolation)
    except Exception as exc:  # noqa: BLE001 - Gradescope must always get a results file
        content = {
            "score": 0,
            "tests": [],
            "output": f"The autograder could not grade this submission ({type(exc).__name__}: "
            f"{exc}); tell your instructor.",
        }
    content["execution_time"] = math.ceil(time.monotonic() - started)  # whole seconds, as specified
    folder = args.root / "results"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    print(content.get("output", ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
