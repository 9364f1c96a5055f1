"""check() where grade and the notebook could part ways: in the students' download, which has no
reference gram_matrix to lend a style cost whose own gram_matrix fails, and for a cell run under
`%%time`, whose source `inspect` cannot find."""

import numpy as np
import pytest

from nst_utils.grading import selfcheck
from nst_utils.grading.answer_key import public_key
from nst_utils.grading.student import STUDENT

import nbformat

tf = pytest.importorskip("tensorflow").compat.v1
tf.disable_v2_behavior()


@pytest.fixture(scope="module")
def answers():
    return public_key("compute_layer_style_cost")["answers"]["gram_matrix"]


def test_the_stored_answers_are_the_gram_matrices_of_what_the_style_cost_asks(answers):
    assert len(answers) == 6 * len(public_key("compute_layer_style_cost")["cases"])
    for matrix, answer in answers:
        np.testing.assert_array_equal(answer, matrix @ matrix.T)


def test_a_known_matrix_is_answered_in_any_order_of_rows_and_columns_and_batched(answers):
    rng = np.random.default_rng(7)
    for matrix, _ in answers:
        rows, columns = rng.permutation(matrix.shape[0]), rng.permutation(matrix.shape[1])
        A = matrix[rows][:, columns]
        for asked in (A, A.astype(np.float32), A[None], np.stack([A, matrix])):
            found = selfcheck._known(asked, answers)
            want = asked.astype(np.float64) @ np.swapaxes(asked.astype(np.float64), -1, -2)
            np.testing.assert_allclose(found, want, rtol=1e-12)


def test_an_unknown_matrix_gets_no_answer(answers):
    matrix = answers[0][0]
    shuffled = np.array([np.random.default_rng(i).permutation(row) for i, row in enumerate(matrix)])
    assert not np.allclose(shuffled @ shuffled.T, matrix @ matrix.T)  # another Gram matrix
    for asked in (matrix + 1, 2 * matrix, shuffled, matrix[:-1], matrix.ravel()):
        assert selfcheck._known(asked, answers) is None


STYLE = """
def compute_layer_style_cost(a_S, a_G):
    m, n_H, n_W, n_C = a_G.get_shape().as_list()
    a_S = tf.transpose(tf.reshape(a_S @SCALE@, [n_H * n_W, n_C]))
    a_G = tf.transpose(tf.reshape(a_G, [n_H * n_W, n_C]))
    GS, GG = gram_matrix(a_S), gram_matrix(a_G)
    return tf.reduce_sum(tf.square(GS - GG)) / (4 * n_C**2 * (n_H * n_W) ** 2)

def gram_matrix(A):
    return tf.matmul(tf.transpose(A), A)
"""


@pytest.mark.parametrize("scale", ["", "* 2"])
def test_without_a_reference_the_stand_in_grades_as_grade_does(monkeypatch, scale):
    """As in the download: a right style cost passes with the stand-in, as grade passes it with
    the reference; a wrong one asks what the stand-in does not know: fix gram_matrix first."""
    monkeypatch.setattr(selfcheck, "_reference", lambda name: None)
    env = {"tf": tf, "np": np}
    exec(STYLE.replace("@SCALE@", scale), env)
    grade, note = selfcheck.self_grade(env["compute_layer_style_cost"])
    if not scale:
        assert grade.passed and grade.points == 25 and not note
        assert grade.feedback.startswith(
            "passes with the reference gram_matrix; your gram_matrix fails: computes A^T A"
        )
    else:
        assert not grade.passed and note.startswith(" (your gram_matrix fails too, fix it first")


def _graded_cell(name: str) -> str:
    notebook = nbformat.read(str(STUDENT), as_version=4)
    return next(
        c.source
        for c in notebook.cells
        if c.cell_type == "code" and c.source.startswith(f"# GRADED FUNCTION: {name}")
    )


def test_a_blank_under_time_is_not_implemented_and_a_later_answer_is_judged():
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=config)
    shell.run_cell("import numpy as np\nimport tensorflow.compat.v1 as tf", store_history=True)
    blank = "%%time\n" + _graded_cell("gram_matrix")
    answer = blank.replace("GA = None", "GA = tf.matmul(A, tf.transpose(A))")
    assert answer != blank
    for source, passed in ((blank, False), (answer, True), (blank, False)):
        shell.run_cell(source, store_history=True)
        grade, _ = selfcheck.self_grade(shell.user_ns["gram_matrix"])
        want = "correct" if passed else "not_implemented"
        assert (grade.passed, grade.diagnosis) == (passed, want), grade.line()
