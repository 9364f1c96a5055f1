"""A graded function the notebook lacks: its feedback names both ways a cell is found."""

import json

from nst_utils.grading import Limits, extract, grader
from nst_utils.grading.catalog import GRADED_HEADER

from grading_helpers import as_json, solved_notebook


def _without(notebook: dict, name: str) -> dict:
    """The notebook with the cell that defines `name` (its graded cell) removed."""
    kept = [
        c
        for c in notebook["cells"]
        if not (c["cell_type"] == "code" and f"def {name}(" in "".join(c["source"]))
    ]
    assert len(kept) == len(notebook["cells"]) - 1
    return dict(notebook, cells=kept)


def test_a_missing_function_is_explained_by_its_definition_and_its_header(tmp_path):
    path = tmp_path / "alice.ipynb"
    path.write_text(json.dumps(_without(as_json(solved_notebook()), "gram_matrix")))
    submission = extract.read_submission(path, "alice")
    assert "gram_matrix" not in submission.sources and "total_cost" in submission.sources
    limits = Limits(time=10.0, memory_mb=600, output_bytes=100_000)
    row = grader._row(0, submission, {}, ["gram_matrix"], limits, True, 1)
    missing = row.grades["gram_matrix"]
    assert missing.diagnosis == "missing" and missing.points == 0
    assert "def gram_matrix(" in missing.feedback  # found by its definition...
    assert f"'{GRADED_HEADER} gram_matrix'" in missing.feedback  # ...or by its header
