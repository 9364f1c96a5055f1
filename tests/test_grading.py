"""The autograder: full marks for the solved notebook, zero for the blank one, the classic
mistakes named, hostile submissions contained; and self-checks that print the grader's feedback.

All submissions are graded in one batch (one sandbox worker, one forked process per function),
built from the solved notebook by replacing one function's body.
"""

import os

import nbformat
import pytest

from nst_utils.grading import Limits, check, grade_paths, runner
from nst_utils.grading.catalog import GRADED_FUNCTIONS, POINTS
from nst_utils.grading.student import STUDENT
from nst_utils.reference import PUBLISHED

from grading_helpers import cell_source, solved_notebook, with_body, write

LIMITS = Limits(time=8.0, memory_mb=600, output_bytes=100_000)
SHAPE = "m, n_H, n_W, n_C = a_G.get_shape().as_list()"
#: The correct first lines of compute_layer_style_cost, up to the two Gram matrices.
UNROLLED_GRAMS = (f"{SHAPE}\n        a_S = tf.transpose(tf.reshape(a_S, [n_H * n_W, n_C]))\n"
                  "        a_G = tf.transpose(tf.reshape(a_G, [n_H * n_W, n_C]))\n"
                  "        GS = gram_matrix(a_S)\n        GG = gram_matrix(a_G)")
STYLE_COST = "tf.reduce_sum(tf.square(tf.subtract(GS, GG))) / (4 * n_C ** 2 * (n_H * n_W) ** 2)"

#: submission -> (function, body, expected diagnosis): one classic mistake each.
MISTAKES = {
    "no_transpose": ("compute_layer_style_cost", f"""
        {SHAPE}
        a_S = tf.reshape(a_S, [n_C, n_H * n_W])
        a_G = tf.reshape(a_G, [n_C, n_H * n_W])
        GS = gram_matrix(a_S)
        GG = gram_matrix(a_G)
        J_style_layer = {STYLE_COST}
        """, "no_transpose"),
    "content_norm": ("compute_content_cost", f"""
        {SHAPE}
        J_content = tf.reduce_sum(tf.square(a_C - a_G)) / (n_H * n_W * n_C)
        """, "normalisation"),
    "content_no_norm": ("compute_content_cost", """
        J_content = tf.reduce_sum(tf.square(a_C - a_G))
        """, "normalisation"),
    "style_norm": ("compute_layer_style_cost", f"""
        {UNROLLED_GRAMS}
        J_style_layer = tf.reduce_sum(tf.square(GS - GG)) / (4 * n_C * n_H * n_W)
        """, "normalisation"),
    "content_squared": ("compute_content_cost", f"""
        {SHAPE}
        J_content = tf.square(tf.reduce_sum(tf.square(a_C - a_G))) / (4 * n_H * n_W * n_C)
        """, "squared"),
    "gram_transposed": ("gram_matrix", "GA = tf.matmul(tf.transpose(A), A)", "transposed"),
    "alpha_beta_swapped": ("total_cost", "J = beta * J_content + alpha * J_style", "swapped"),
    "content_numpy": ("compute_content_cost", f"""
        {SHAPE}
        J_content = (tf.reduce_sum(tf.square(a_C - a_G)) / (4 * n_H * n_W * n_C)).eval()
        """, "not_a_tensor"),
    "style_python_float": ("compute_layer_style_cost", f"""
        {UNROLLED_GRAMS}
        J_style_layer = float(({STYLE_COST}).eval())
        """, "not_a_tensor"),
    "content_wrong_tensor": ("compute_content_cost", """
        m, n_H, n_W, n_C = a_C.get_shape().as_list()
        J_content = tf.reduce_sum(tf.square(a_C - a_G)) / (4 * n_H * n_W * n_C)
        """, "shape_from_wrong_tensor"),
    "forgot_return_value": ("gram_matrix", "GA = tf.matmul(A, tf.transpose(A))\nreturn", "wrong_type"),
    "syntax_error": ("total_cost", "J = alpha * J_content +", "cell_error"),
}

#: submission -> (function, body, code run when the cell is defined, expected diagnosis).
HOSTILE = {
    "raises": ("compute_content_cost", "raise ValueError('boom')", "", "raises"),
    "hangs": ("gram_matrix", "while True:\n    pass", "", "timeout"),
    "eats_memory": ("compute_layer_style_cost",
                    "hog = [bytearray(50_000_000) for _ in range(200)]", "", "memory"),
    "prints_megabytes": ("total_cost", "print('x' * 5_000_000)\nJ = alpha * J_content + beta * J_style",
                         "", "output"),
    "sys_exit": ("compute_content_cost", "import sys\nsys.exit(0)", "", "exit"),
    "os_exit": ("gram_matrix", "import os\nos._exit(3)", "", "exit"),
    "writes_files": ("total_cost", "open('@FOLDER@/stolen.txt', 'w').write('x')\n"
                                   "J = alpha * J_content + beta * J_style", "", "forbidden"),
    # TensorFlow's own file ops bypass Python's audit hooks; as root the sandbox runs as nobody.
    "writes_via_tensorflow": ("total_cost", "tf1.get_default_session().run(tf.io.write_file("
                              "'@FOLDER@/escaped.txt', 'x'))\nJ = alpha * J_content + beta * J_style",
                              "", "forbidden"),
    "kills_grader": ("gram_matrix", "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)", "",
                     "forbidden"),
    # Tries to change the grader and the reference values from inside its sandbox, then returns 0.
    "tampers": ("compute_content_cost", "J_content = tf.constant(0.0)", """
        import nst_utils.costs, nst_utils.reference, nst_utils.grading.grader as _g
        nst_utils.reference.PUBLISHED['compute_content_cost'] = 0.0
        nst_utils.costs.compute_content_cost = lambda a_C, a_G: tf.constant(0.0)
        _g.reference.cache_clear()
        """, "wrong_value"),
}


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    """{submission: SubmissionGrade} for every submission above, graded in one batch."""
    folder = tmp_path_factory.mktemp("submissions")
    folder.chmod(0o700)
    solved = solved_notebook()
    write(solved, folder / "solved.ipynb")
    (folder / "student.ipynb").write_text(STUDENT.read_text())
    for key, (name, body, _) in MISTAKES.items():
        write(with_body(solved, name, body), folder / f"{key}.ipynb")
    for key, (name, body, before, _) in HOSTILE.items():
        body = body.replace("@FOLDER@", str(folder))
        write(with_body(solved, name, body, before), folder / f"{key}.ipynb")
    missing = solved_notebook()
    missing.cells = [c for c in missing.cells if not c.source.startswith("# GRADED FUNCTION: gram_matrix")]
    write(missing, folder / "missing_cell.ipynb")
    rows = grade_paths([folder], LIMITS)
    return {row.student: row for row in rows}


def test_solved_notebook_scores_full_marks(graded):
    row = graded["solved"]
    assert row.points == row.max_points == sum(POINTS.values()) == 100
    assert all(g.passed and g.diagnosis == "correct" for g in row.grades.values())


def test_student_notebook_scores_zero_with_not_implemented(graded):
    row = graded["student"]
    assert row.points == 0
    for grade in row.grades.values():
        assert grade.diagnosis == "not_implemented" and "not implemented yet" in grade.feedback


@pytest.mark.parametrize("key", sorted(MISTAKES))
def test_classic_mistake_is_named(graded, key):
    name, _, diagnosis = MISTAKES[key]
    row = graded[key]
    grade = row.grades[name]
    assert (grade.passed, grade.points, grade.diagnosis) == (False, 0, diagnosis), grade.line()
    assert row.points == 100 - POINTS[name]  # the other functions are untouched and pass


@pytest.mark.parametrize("key", sorted(HOSTILE))
def test_hostile_submission_is_contained(graded, key):
    if key == "writes_via_tensorflow" and os.geteuid() != 0:
        pytest.skip("only a grader running as root can drop to user nobody")
    name, _, _, diagnosis = HOSTILE[key]
    grade = graded[key].grades[name]
    assert (grade.points, grade.diagnosis) == (0, diagnosis), grade.line()
    others = [g for n, g in graded[key].grades.items() if n != name]
    assert all(g.passed for g in others), [g.line() for g in others if not g.passed]


def test_other_failures_are_explained(graded):
    assert graded["missing_cell"].points == 100 - POINTS["gram_matrix"]
    missing = graded["missing_cell"].grades["gram_matrix"]
    assert missing.diagnosis == "missing" and "no cell headed '# GRADED FUNCTION: gram_matrix'" in missing.feedback
    assert "returns None (is `return` missing?)" in graded["forgot_return_value"].grades["gram_matrix"].feedback
    assert "the cell does not run: SyntaxError" in graded["syntax_error"].grades["total_cost"].feedback


def test_hostile_feedback_says_what_happened(graded):
    feedback = {key: graded[key].grades[HOSTILE[key][0]].feedback for key in HOSTILE}
    assert "within 8 s" in feedback["hangs"]
    assert "out of memory" in feedback["eats_memory"] and "600 MB" in feedback["eats_memory"]
    assert "printed more than 100000 bytes" in feedback["prints_megabytes"]
    assert "sys.exit" in feedback["sys_exit"] and "exit status 3" in feedback["os_exit"]
    assert "write files (" in feedback["writes_files"] and "stolen.txt)" in feedback["writes_files"]
    assert "send signals" in feedback["kills_grader"]
    assert "raises ValueError: boom" in feedback["raises"]
    assert f"expected {PUBLISHED['compute_content_cost']}" in feedback["tampers"]


def test_nothing_escaped_the_sandbox(graded):
    folder = os.path.dirname(graded["solved"].path)
    assert not os.path.exists(os.path.join(folder, "stolen.txt"))
    if os.geteuid() == 0:  # the sandbox drops to user nobody, which cannot write here
        assert not os.path.exists(os.path.join(folder, "escaped.txt"))
        assert "the system refused" in graded["writes_via_tensorflow"].grades["total_cost"].feedback
    assert PUBLISHED["compute_content_cost"] == 6.76559
    import nst_utils.costs
    assert nst_utils.costs.compute_content_cost.__module__ == "nst_utils.costs"


def _defined(source: str, name: str):
    env = runner.namespace()
    exec(source, env)
    return env[name]


@pytest.mark.parametrize("key", ["no_transpose", "content_norm", "alpha_beta_swapped",
                                 "content_wrong_tensor"])
def test_self_check_prints_the_graders_feedback(graded, key, capsys):
    name, body, _ = MISTAKES[key]
    fn = _defined(cell_source(with_body(solved_notebook(), name, body), name), name)
    check(fn)
    assert capsys.readouterr().out.strip() == graded[key].grades[name].line()


def test_self_check_on_the_solution_and_the_blank(capsys):
    for notebook in (solved_notebook(), nbformat.read(str(STUDENT), as_version=4)):
        for name in GRADED_FUNCTIONS:
            check(_defined(cell_source(notebook, name), name))
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == list(GRADED_FUNCTIONS) * 2
    count = len(GRADED_FUNCTIONS)
    assert all(f"PASS {POINTS[line.split(':')[0]]}/" in line for line in lines[:count])
    assert all(" FAIL 0/" in line and "not implemented yet" in line for line in lines[count:])


def test_a_dead_worker_is_replaced_and_the_class_goes_on(tmp_path, monkeypatch):
    from nst_utils.grading import dispatch, grade_submissions
    from nst_utils.grading.extract import read_submission

    path = write(solved_notebook(), tmp_path / "solved.ipynb")
    submissions = [read_submission(path, "first"), read_submission(path, "second")]
    original, killed = dispatch._Worker.read, []

    def read_then_kill(self, timeout):  # the worker dies while running the first function
        message = original(self, timeout)
        if isinstance(message, dict) and "started" in message and not killed:
            killed.append(message["started"])
            self.proc.kill()
        return message

    monkeypatch.setattr(dispatch._Worker, "read", read_then_kill)
    first, second = grade_submissions(submissions, LIMITS, ["total_cost"])
    assert killed == ["0:total_cost"]
    assert (first.points, first.grades["total_cost"].diagnosis) == (0, "crashed")
    assert "grading worker stopped" in first.grades["total_cost"].feedback
    assert second.points == POINTS["total_cost"] and second.grades["total_cost"].passed


@pytest.mark.parametrize("outputs", [
    [{"kind": "tensor", "value": "not a number", "shape": []}] * 6,
    [{"error": {"type": "X", "message": 5}}] * 6,
    ["garbage"] * 6,
    None,
])
def test_malformed_results_from_the_sandbox_fail_cleanly(outputs):
    from nst_utils.grading.grader import grade_result

    grade = grade_result("compute_content_cost", {"status": "ok", "outputs": outputs}, LIMITS)
    assert (grade.points, grade.passed) == (0, False)
