"""The autograder on an honest class: full marks for correct work written several ways, zero for
the blank, each classic mistake named, misbehaving code contained; malformed notebooks reported;
and the self-check printing the grader's feedback.

Submissions are built from the solved notebook by replacing graded bodies, and graded in one
batch with two sandboxes side by side. Hostile classes are in test_grading_hostile.py.
"""

import json

import nbformat
import numpy as np
import pytest

from nst_utils.grading import Limits, check
from nst_utils.grading.grader import GRADED_FUNCTIONS, POINTS, grade_paths, grade_result
from nst_utils.grading.sandbox.box import runner
from nst_utils.grading.selfcheck import check_line
from nst_utils.grading.student import STUDENT
from nst_utils.grading.catalog import PUBLISHED

from grading_helpers import cell_source, packed, solved_notebook, with_bodies, with_body, write

LIMITS = Limits(time=8.0, memory_mb=600, output_bytes=100_000)
SHAPE = "m, n_H, n_W, n_C = a_G.get_shape().as_list()"
#: The correct first lines of compute_layer_style_cost, up to the two Gram matrices.
UNROLLED_GRAMS = (
    f"{SHAPE}\n        a_S = tf.transpose(tf.reshape(a_S, [n_H * n_W, n_C]))\n"
    "        a_G = tf.transpose(tf.reshape(a_G, [n_H * n_W, n_C]))\n"
    "        GS = gram_matrix(a_S)\n        GG = gram_matrix(a_G)"
)
STYLE_COST = "tf.reduce_sum(tf.square(tf.subtract(GS, GG))) / (4 * n_C ** 2 * (n_H * n_W) ** 2)"
CONTENT = f"{SHAPE}\nJ_content = tf.reduce_sum(tf.square(a_C - a_G)) / (4 * n_H * n_W * n_C)"

#: Correct work written other ways than the solution: every function of each notebook passes.
CORRECT = {
    "correct_unrolled": {
        "compute_content_cost": f"""
            {SHAPE}
            a_C_unrolled = tf.transpose(tf.reshape(a_C, [n_H * n_W, n_C]))
            a_G_unrolled = tf.transpose(tf.reshape(a_G, [n_H * n_W, n_C]))
            J_content = tf.reduce_sum((a_C_unrolled - a_G_unrolled) ** 2) / (4 * n_H * n_W * n_C)
            """,
        "gram_matrix": "GA = tf.linalg.matmul(A, A, transpose_b=True)",
        "compute_layer_style_cost": """
            _, n_H, n_W, n_C = a_G.shape.as_list()
            S = tf.reshape(tf.transpose(a_S, [0, 3, 1, 2]), [n_C, -1])
            G = tf.reshape(tf.transpose(a_G, [0, 3, 1, 2]), [n_C, -1])
            diff = gram_matrix(S) - gram_matrix(G)
            J_style_layer = tf.reduce_sum(diff * diff) / (4. * n_C**2 * (n_H*n_W)**2)
            """,
        "total_cost": "J = J_content * alpha + J_style * beta",
    },
    "correct_means": {
        "compute_content_cost": """
            J_content = tf.reduce_mean(tf.square(a_C - a_G)) / 4
            """,
        "gram_matrix": "GA = tf.einsum('ik,jk->ij', A, A)",
        "compute_layer_style_cost": """
            n_H, n_W, n_C = [int(d) for d in a_G.shape[1:]]
            GS = gram_matrix(tf.transpose(tf.reshape(a_S, [-1, n_C])))
            GG = gram_matrix(tf.transpose(tf.reshape(a_G, [-1, n_C])))
            J_style_layer = tf.reduce_mean(tf.square(GS - GG)) / (4 * (n_H * n_W) ** 2)
            """,
        "total_cost": "J = alpha*J_content+beta*J_style",
    },
}

#: submission -> (function, body, expected diagnosis): one classic mistake each.
MISTAKES = {
    "no_transpose": (
        "compute_layer_style_cost",
        f"""
        {SHAPE}
        a_S = tf.reshape(a_S, [n_C, n_H * n_W])
        a_G = tf.reshape(a_G, [n_C, n_H * n_W])
        GS = gram_matrix(a_S)
        GG = gram_matrix(a_G)
        J_style_layer = {STYLE_COST}
        """,
        "no_transpose",
    ),
    "content_norm": (
        "compute_content_cost",
        f"""
        {SHAPE}
        J_content = tf.reduce_sum(tf.square(a_C - a_G)) / (n_H * n_W * n_C)
        """,
        "normalisation",
    ),
    "content_no_norm": (
        "compute_content_cost",
        """
        J_content = tf.reduce_sum(tf.square(a_C - a_G))
        """,
        "normalisation",
    ),
    "style_norm": (
        "compute_layer_style_cost",
        f"""
        {UNROLLED_GRAMS}
        J_style_layer = tf.reduce_sum(tf.square(GS - GG)) / (4 * n_C * n_H * n_W)
        """,
        "normalisation",
    ),
    "content_squared": (
        "compute_content_cost",
        f"""
        {SHAPE}
        J_content = tf.square(tf.reduce_sum(tf.square(a_C - a_G))) / (4 * n_H * n_W * n_C)
        """,
        "squared",
    ),
    "content_sqrt": (
        "compute_content_cost",
        f"""
        {SHAPE}
        J_content = tf.sqrt(tf.reduce_sum(tf.square(a_C - a_G))) / (4 * n_H * n_W * n_C)
        """,
        "square_root",
    ),
    "style_sqrt": (
        "compute_layer_style_cost",
        f"""
        {UNROLLED_GRAMS}
        J_style_layer = tf.reduce_sum(tf.sqrt(tf.square(GS - GG))) / (
            4 * n_C ** 2 * (n_H * n_W) ** 2)
        """,
        "square_root",
    ),
    "content_numpy_ops": (
        "compute_content_cost",
        f"""
        {SHAPE}
        J_content = np.sum(np.square(a_C - a_G)) / (4 * n_H * n_W * n_C)
        """,
        "numpy_on_tensor",
    ),
    "gram_transposed": ("gram_matrix", "GA = tf.matmul(tf.transpose(A), A)", "transposed"),
    "alpha_beta_swapped": ("total_cost", "J = beta * J_content + alpha * J_style", "swapped"),
    "content_eval": (
        "compute_content_cost",
        f"""
        {SHAPE}
        J_content = (tf.reduce_sum(tf.square(a_C - a_G)) / (4 * n_H * n_W * n_C)).eval()
        """,
        "not_a_tensor",
    ),
    "style_python_float": (
        "compute_layer_style_cost",
        f"""
        {UNROLLED_GRAMS}
        J_style_layer = float(({STYLE_COST}).eval())
        """,
        "not_a_tensor",
    ),
    "content_wrong_tensor": (
        "compute_content_cost",
        """
        m, n_H, n_W, n_C = a_C.get_shape().as_list()
        J_content = tf.reduce_sum(tf.square(a_C - a_G)) / (4 * n_H * n_W * n_C)
        """,
        "shape_from_wrong_tensor",
    ),
    "forgot_return_value": (
        "gram_matrix",
        "GA = tf.matmul(A, tf.transpose(A))\nreturn",
        "wrong_type",
    ),
    "syntax_error": ("total_cost", "J = alpha * J_content +", "cell_error"),
}

#: Misbehaving code the sandbox's limits and audit hook stop: (function, body, diagnosis).
MISBEHAVING = {
    "raises": ("compute_content_cost", "raise ValueError('boom')", "raises"),
    "hangs": ("gram_matrix", "while True:\n    pass", "timeout"),
    "eats_memory": (
        "compute_layer_style_cost",
        "hog = [bytearray(50_000_000) for _ in range(200)]",
        "memory",
    ),
    "prints_megabytes": (
        "total_cost",
        "print('x' * 5_000_000)\nJ = alpha * J_content + beta * J_style",
        "output",
    ),
    "sys_exit": ("compute_content_cost", "import sys\nsys.exit(0)", "exit"),
    "os_exit": ("gram_matrix", "import os\nos._exit(3)", "exit"),
    "writes_to_the_protocol": (
        "compute_layer_style_cost",
        "import os\nfor fd in range(3, 64):\n    try:\n"
        "        os.write(fd, b'not the protocol\\n')\n    except OSError:\n        pass",
        "protocol",
    ),
    "writes_files": (
        "total_cost",
        "open('/tmp/stolen.txt', 'w').write('x')\nJ = alpha * J_content + beta * J_style",
        "forbidden",
    ),
}


def _malformed(folder):
    """Notebooks whose JSON is not what Jupyter writes: each must be reported, never crash."""
    (folder / "bad_not_json.ipynb").write_text("{ this is not json")
    (folder / "bad_binary.ipynb").write_bytes(bytes(range(256)) * 40)
    (folder / "bad_cells_null.ipynb").write_text(json.dumps({"cells": None, "nbformat": 4}))
    (folder / "bad_list.ipynb").write_text("[1, 2, 3]")
    (folder / "bad_deep.ipynb").write_text("[" * 100_000 + "]" * 100_000)
    with open(folder / "bad_huge.ipynb", "wb") as huge:  # sparse: no disk used
        huge.truncate(60_000_000)
    numbers = json.loads(nbformat.writes(solved_notebook()))
    for cell in numbers["cells"]:
        if cell["cell_type"] == "code":
            cell["source"] = (
                [7, 3.5, None] if "total_cost" not in "".join(cell["source"]) else cell["source"]
            )
    (folder / "odd_source_numbers.ipynb").write_text(json.dumps(numbers))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """{submission or packed entry: SubmissionGrade} for every submission above, in one batch."""
    folder = tmp_path_factory.mktemp("submissions")
    solved = solved_notebook()
    write(solved, folder / "solved.ipynb")
    (folder / "student.ipynb").write_text(STUDENT.read_text())
    for key, bodies in CORRECT.items():
        write(with_bodies(solved, bodies), folder / f"{key}.ipynb")
    entries = {**MISTAKES, **MISBEHAVING}
    packs = {}
    for i, pack in enumerate(packed({k: v[0] for k, v in entries.items()})):
        write(
            with_bodies(solved, {name: entries[key][1] for name, key in pack.items()}),
            folder / f"pack{i}.ipynb",
        )
        packs.update({key: f"pack{i}" for key in pack.values()})
    write(
        with_bodies(solved, {"gram_matrix": "GA = tf.matmul(tf.transpose(A), A)"}),
        folder / "gram_wrong_style_right.ipynb",
    )
    missing = solved_notebook()
    missing.cells = [
        c for c in missing.cells if not c.source.startswith("# GRADED FUNCTION: gram_matrix")
    ]
    write(missing, folder / "missing_cell.ipynb")
    _malformed(folder)
    rows = {row.student: row for row in grade_paths([folder], LIMITS, jobs=2)}
    rows.update({key: rows[pack] for key, pack in packs.items()})
    return rows


def others_pass(graded, key) -> bool:
    """The functions of `key`'s notebook that hold no planted mistake all pass."""
    entries = {**MISTAKES, **MISBEHAVING}
    planted = {entries[k][0] for k in entries if graded[k] is graded[key]}
    return all(g.passed for n, g in graded[key].grades.items() if n not in planted)


def test_the_graded_set_is_the_originals_four():
    assert GRADED_FUNCTIONS == (
        "compute_content_cost",
        "gram_matrix",
        "compute_layer_style_cost",
        "total_cost",
    )
    assert set(POINTS.values()) == {25} and sum(POINTS.values()) == 100


@pytest.mark.slow
@pytest.mark.parametrize("key", ["solved", *CORRECT])
def test_correct_work_scores_full_marks(graded, key):
    row = graded[key]
    assert row.points == row.max_points == 100, [g.line() for g in row.grades.values()]
    assert all(g.passed and g.diagnosis == "correct" for g in row.grades.values())
    assert row.isolated


@pytest.mark.slow
def test_published_values_are_named_in_the_feedback(graded):
    feedback = graded["solved"].grades["compute_content_cost"].feedback
    assert f"the published value {PUBLISHED['compute_content_cost']}" in feedback


@pytest.mark.slow
def test_untouched_blank_scores_zero_with_not_implemented(graded):
    row = graded["student"]
    assert row.points == 0
    for grade in row.grades.values():
        assert grade.diagnosis == "not_implemented" and "not implemented yet" in grade.feedback


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(MISTAKES))
def test_classic_mistake_is_named(graded, key):
    name, _, diagnosis = MISTAKES[key]
    row = graded[key]
    grade = row.grades[name]
    assert (grade.passed, grade.points, grade.diagnosis) == (False, 0, diagnosis), grade.line()
    assert others_pass(graded, key)  # the untouched functions of the same notebook pass


@pytest.mark.slow
def test_diagnoses_explain_the_mistake(graded):
    feedback = {key: graded[key].grades[MISTAKES[key][0]].feedback for key in MISTAKES}
    assert "a square root where a square belongs" in feedback["content_sqrt"]
    assert "numpy operations on a tensor" in feedback["content_numpy_ops"]
    assert "not implemented" not in feedback["content_numpy_ops"]
    assert "your value is 4 times the expected one" in feedback["content_norm"]
    assert "4 n_H n_W n_C times" in feedback["content_no_norm"]
    assert "returns None (is `return` missing?)" in feedback["forgot_return_value"]
    assert "the cell does not run: SyntaxError" in feedback["syntax_error"]


@pytest.mark.slow
def test_a_wrong_gram_matrix_costs_once_and_is_named_where_it_is_used(graded):
    row = graded["gram_wrong_style_right"]
    assert row.points == 75 and row.grades["gram_matrix"].diagnosis == "transposed"
    style = row.grades["compute_layer_style_cost"]
    assert style.passed
    assert style.feedback.startswith(
        "passes with the reference gram_matrix; your gram_matrix fails: computes A^T A"
    )


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(MISBEHAVING))
def test_misbehaving_code_is_stopped_and_named(graded, key):
    name, _, diagnosis = MISBEHAVING[key]
    grade = graded[key].grades[name]
    assert (grade.points, grade.diagnosis) == (0, diagnosis), grade.line()
    assert others_pass(graded, key)


@pytest.mark.slow
def test_misbehaviour_feedback_says_what_happened(graded):
    feedback = {key: graded[key].grades[MISBEHAVING[key][0]].feedback for key in MISBEHAVING}
    assert "within 8 s" in feedback["hangs"]
    assert "out of memory" in feedback["eats_memory"] and "600 MB" in feedback["eats_memory"]
    assert "printed more than 100000 bytes" in feedback["prints_megabytes"]
    assert "sys.exit" in feedback["sys_exit"] and "exit status 3" in feedback["os_exit"]
    assert "write files (/tmp/stolen.txt)" in feedback["writes_files"]
    assert "raises ValueError: boom" in feedback["raises"]
    protocol = feedback["writes_to_the_protocol"]
    assert "wrote to the grader's channel" in protocol and "sys.exit" not in protocol


@pytest.mark.slow
def test_missing_cell_is_explained(graded):
    assert graded["missing_cell"].points == 75
    missing = graded["missing_cell"].grades["gram_matrix"]
    assert (
        missing.diagnosis == "missing"
        and "no cell headed '# GRADED FUNCTION: gram_matrix'" in missing.feedback
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "key", ["bad_not_json", "bad_binary", "bad_cells_null", "bad_list", "bad_deep", "bad_huge"]
)
def test_malformed_notebooks_are_reported_not_fatal(graded, key):
    row = graded[key]
    assert row.points == 0 and row.error and row.error.startswith("could not read")
    assert {g.diagnosis for g in row.grades.values()} == {"unreadable"}
    assert "\n" not in row.error


@pytest.mark.slow
def test_sources_holding_numbers_are_graded_as_text(graded):
    row = graded["odd_source_numbers"]
    assert row.error is None and row.grades["total_cost"].passed
    assert {g.diagnosis for n, g in row.grades.items() if n != "total_cost"} == {"missing"}


def _defined(source: str, name: str):
    """`name` as a notebook cell defines it (its source findable by inspect, as IPython does)."""
    import linecache

    filename = f"<cell {name} {hash(source)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    env = runner.namespace()
    exec(compile(source, filename, "exec"), env)
    return env[name]


@pytest.mark.slow
@pytest.mark.parametrize(
    "key",
    [
        "no_transpose",
        "content_norm",
        "alpha_beta_swapped",
        "content_wrong_tensor",
        "content_sqrt",
        "content_numpy_ops",
    ],
)
def test_self_check_prints_the_graders_feedback(graded, key, capsys):
    name, body, _ = MISTAKES[key]
    fn = _defined(cell_source(with_body(solved_notebook(), name, body), name), name)
    check(fn)
    assert capsys.readouterr().out.strip() == graded[key].grades[name].line()


def test_self_check_says_when_the_reference_dependency_was_used():
    notebook = with_body(solved_notebook(), "gram_matrix", "GA = tf.matmul(tf.transpose(A), A)")
    env = runner.namespace()
    for name in ("gram_matrix", "compute_layer_style_cost"):
        exec(cell_source(notebook, name), env)
    line = check_line(env["compute_layer_style_cost"])
    assert line.startswith(  # as the grader's row says it
        "compute_layer_style_cost: PASS 25/25 - passes with the reference gram_matrix; "
        "your gram_matrix fails: computes A^T A"
    )


def test_self_check_on_the_solution_and_the_blank(capsys):
    for notebook in (solved_notebook(), nbformat.read(str(STUDENT), as_version=4)):
        for name in GRADED_FUNCTIONS:
            check(_defined(cell_source(notebook, name), name))
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == list(GRADED_FUNCTIONS) * 2
    assert all("PASS 25/25" in line for line in lines[:4])
    assert all("FAIL 0/25 - not implemented yet" in line for line in lines[4:])


def test_self_check_refuses_other_functions():
    from nst_utils.errors import NSTError

    with pytest.raises(NSTError, match="check\\(\\) takes one of the graded functions"):
        check(print)


@pytest.mark.slow
@pytest.mark.parametrize(
    "outputs",
    [
        [{"kind": "tensor", "value": "not a number", "shape": []}] * 9,
        [{"error": {"type": "X", "message": 5}}] * 9,
        ["garbage"] * 9,
        None,
    ],
)
def test_malformed_results_from_the_sandbox_fail_cleanly(outputs):
    grade = grade_result("compute_content_cost", {"status": "ok", "outputs": outputs}, LIMITS)
    assert (grade.points, grade.passed) == (0, False)


def test_mistake_values_are_independent_numpy_computations():
    from nst_utils.grading.answer_key import grading_key

    key = grading_key("compute_content_cost")
    for case, want in zip(key["cases"], key["expected"]):
        a_C, a_G = (np.asarray(a["value"], np.float64) for a in case["args"])
        _, n_H, n_W, n_C = a_G.shape
        assert np.isclose(
            want["value"], np.sum((a_C - a_G) ** 2) / (4 * n_H * n_W * n_C), rtol=1e-5
        )
    hidden = [c for c in key["cases"] if c.get("hidden")]
    assert hidden and key["public"] == len(key["cases"]) - len(hidden)


def test_self_check_of_model_nn_is_the_loops_own(monkeypatch):
    import sys
    import types

    from nst_utils.errors import NSTError

    def model_nn(sess, input_image, num_iterations=160):
        return input_image

    monkeypatch.setitem(sys.modules, "nst_utils.grading.loop_check", None)  # not in this build
    with pytest.raises(NSTError, match="no self-check for model_nn"):
        check_line(model_nn)
    seen = []
    fake = types.ModuleType("nst_utils.grading.loop_check")
    fake.check_model_nn = lambda fn, check_line: (
        seen.append(fn) or "model_nn: PASS - the loop's verdict"
    )
    monkeypatch.setitem(sys.modules, "nst_utils.grading.loop_check", fake)
    assert check_line(model_nn) == "model_nn: PASS - the loop's verdict" and seen == [model_nn]


@pytest.mark.slow
def test_a_dead_sandbox_is_replaced_and_the_class_goes_on(tmp_path, monkeypatch):
    from nst_utils.grading.extract import read_submission
    from nst_utils.grading.grader import grade_submissions
    from nst_utils.grading.sandbox import host

    path = write(solved_notebook(), tmp_path / "solved.ipynb")
    submissions = [read_submission(path, "first"), read_submission(path, "second")]
    original, killed = host._Box.read, []

    def read_then_kill(self, deadline):  # the box dies while running the first function
        message = original(self, deadline)
        if isinstance(message, dict) and "started" in message and not killed:
            killed.append(message["started"])
            self.proc.kill()
        return message

    monkeypatch.setattr(host._Box, "read", read_then_kill)
    first, second = grade_submissions(submissions, LIMITS, ["gram_matrix", "total_cost"])
    assert killed == ["0:gram_matrix"]
    assert (first.grades["gram_matrix"].points, first.grades["gram_matrix"].diagnosis) == (
        0,
        "crashed",
    )
    assert "the sandbox stopped while running it" in first.grades["gram_matrix"].feedback
    assert first.grades["total_cost"].passed  # graded in a fresh sandbox
    assert second.points == 50 and all(g.passed for g in second.grades.values())
