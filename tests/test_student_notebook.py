"""The student notebook is generated from the solved one, and the committed copy is up to date."""

import nbformat
import pytest

from nst_utils.cli import main
from nst_utils.errors import NSTError
from nst_utils.grading.blanks import blank_body, is_untouched_blank
from nst_utils.grading.extract import graded_sources
from nst_utils.grading.grader import GRADED_FUNCTIONS
from nst_utils.grading.student import STUDENT, student_notebook_text

from grading_helpers import as_json, solved_notebook, with_body, write


def test_committed_student_notebook_matches_the_generator():
    assert STUDENT.read_text(encoding="utf-8") == student_notebook_text(), (
        "run: python -m nst_utils make-student-notebook"
    )


def test_graded_bodies_do_not_leak_into_the_student_notebook(tmp_path):
    solved = write(
        with_body(solved_notebook(), "total_cost", "J = alpha * J_content  # SECRET"),
        tmp_path / "solved.ipynb",
    )
    assert "SECRET" not in student_notebook_text(solved)
    assert student_notebook_text(solved) == student_notebook_text()


def test_check_flag_reports_drift(tmp_path, capsys):
    solved = write(solved_notebook(), tmp_path / "solved.ipynb")
    target = tmp_path / "student.ipynb"
    assert main(["make-student-notebook", "--solved", str(solved), "--output", str(target)]) == 0
    assert (
        main(["make-student-notebook", "--solved", str(solved), "--output", str(target), "--check"])
        == 0
    )
    edited = solved_notebook()
    edited.cells.append(nbformat.v4.new_markdown_cell("A new closing remark."))
    write(edited, solved)
    assert (
        main(["make-student-notebook", "--solved", str(solved), "--output", str(target), "--check"])
        == 1
    )
    assert "out of date" in capsys.readouterr().err


def test_student_blanks_are_the_originals_and_keep_no_solution():
    student = nbformat.reads(student_notebook_text(), as_version=4)
    solved = graded_sources(as_json(solved_notebook()))
    sources = graded_sources(as_json(student))
    assert set(GRADED_FUNCTIONS) <= set(sources)
    for name, source in sources.items():
        assert is_untouched_blank(source) and not is_untouched_blank(solved[name])
        body = source.split("### START CODE HERE ###")[1].split("### END CODE HERE ###")[0]
        code = [
            line.strip()
            for line in body.splitlines()
            if line.strip() and not line.strip().startswith("#")
        ]
        assert code and all(
            line == "None" or line.endswith(" = None") or line.endswith("(None)") for line in code
        ), code
        # the rest of the cell (signature, docstring, return) is the solved notebook's
        assert (
            source.split("### START CODE HERE ###")[0]
            == solved[name].split("### START CODE HERE ###")[0]
        )
    assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")


def test_blanks_keep_targets_and_calls_of_every_marked_block():
    source = (
        "def model_nn(sess, image):\n"
        "    ### START CODE HERE ### (1 line)\n"
        "    sess.run(tf.global_variables_initializer())\n"
        "    ### END CODE HERE ###\n"
        "    for i in range(2):\n"
        "        ### START CODE HERE ### (1 line)\n"
        "        # run the train step\n"
        "        _ = sess.run(\n"
        "            train_step)\n"
        "        ### END CODE HERE ###\n"
        "    return image\n"
    )
    blank = blank_body(source, "model_nn")
    assert blank.split("\n")[2] == "    sess.run(None)"
    assert blank.split("\n")[6:8] == ["        # run the train step", "        _ = None"]
    assert "train_step" not in blank and blank.endswith("    return image\n")
    assert is_untouched_blank(blank) and not is_untouched_blank(source)


def test_blank_body_needs_both_markers():
    with pytest.raises(NSTError, match="START CODE HERE"):
        blank_body("def f():\n    ### START CODE HERE ###\n    return 1\n", "f")
