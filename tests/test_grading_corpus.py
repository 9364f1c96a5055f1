"""Honest work written the many ways students write it gets full marks; classic mistakes get
named; and the notebook's `check()` says what `grade` says, notebook by notebook.

Each corpus notebook is the student notebook with its exercises filled in as a student would:
between the markers, with a cell magic or comments around the header, with code outside the
markers, in a new cell of their own, in float64, batched, through einsum, tensordot or
linalg. Variants of different functions share notebooks (one box each), so the whole corpus
is graded in one batch; the same notebooks then run as Jupyter runs them (notebook_side.py),
with the repository's package and with the students' download alone (make-assignment), whose
check() has no reference to lend a function in place of a broken one it calls.
"""

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from nst_utils.cli import main
from nst_utils.grading import Limits
from nst_utils.grading.catalog import END_MARKER, GRADED_HEADER, START_MARKER
from nst_utils.grading.grader import GRADED_FUNCTIONS, grade_paths
from nst_utils.grading.student import STUDENT
from nst_utils.grading.catalog import PUBLISHED

pytestmark = pytest.mark.slow

#: Generous: nothing here hangs, and a loaded machine must not turn honest work into timeouts.
LIMITS = Limits(time=60.0, memory_mb=600, output_bytes=100_000)
SHAPE = "m, n_H, n_W, n_C = a_G.get_shape().as_list()"
CONTENT = "J_content = tf.reduce_sum(tf.square(a_C - a_G)) / (4 * n_H * n_W * n_C)"
UNROLL = (
    "a_S = tf.transpose(tf.reshape(a_S, [n_H * n_W, n_C]))\n"
    "a_G = tf.transpose(tf.reshape(a_G, [n_H * n_W, n_C]))"
)
GRAMS = "GS = gram_matrix(a_S)\nGG = gram_matrix(a_G)"
STYLE = "J_style_layer = tf.reduce_sum(tf.square(GS - GG)) / (4 * n_C**2 * (n_H * n_W) ** 2)"
TOTAL = "J = alpha * J_content + beta * J_style"
#: The intended answer of each exercise, written between the markers.
INTENDED = {
    "compute_content_cost": f"{SHAPE}\n{CONTENT}",
    "gram_matrix": "GA = tf.matmul(A, tf.transpose(A))",
    "compute_layer_style_cost": f"{SHAPE}\n{UNROLL}\n{GRAMS}\n{STYLE}",
    "total_cost": TOTAL,
}


# How a student changes a graded cell: each takes the student's cell and gives the new one.
def between(body):
    """`body` written between the markers, in place of the blank (hint comments kept)."""

    def edit(cell):
        lines = cell.split("\n")
        start = next(i for i, ln in enumerate(lines) if ln.strip().startswith(START_MARKER))
        end = next(i for i, ln in enumerate(lines) if ln.strip().startswith(END_MARKER))
        hints = [ln for ln in lines[start + 1 : end] if ln.strip().startswith("#")][:1]
        code = textwrap.indent(textwrap.dedent(body).strip("\n"), "    ").split("\n")
        return "\n".join(lines[: start + 1] + hints + code + lines[end:])

    return edit


def above(text, body):
    """`text` (a cell magic, comments) above the header, and `body` between the markers."""
    return lambda cell: textwrap.dedent(text).strip("\n") + "\n" + between(body)(cell)


def outside(code, where, body=None):
    """`code` just before the START marker or just after the END marker; the blank left as it
    was given (or `body` between the markers)."""

    def edit(cell):
        cell = between(body)(cell) if body else cell
        marker = START_MARKER if where == "before" else END_MARKER
        lines = cell.split("\n")
        at = next(i for i, ln in enumerate(lines) if ln.strip().startswith(marker))
        code_lines = textwrap.indent(textwrap.dedent(code).strip("\n"), "    ").split("\n")
        at = at if where == "before" else at + 1
        return "\n".join(lines[:at] + code_lines + lines[at:])

    return edit


def no_header(body):
    """The header line deleted (the function is still defined): found by its definition."""
    return lambda cell: between(body)(cell).split("\n", 2)[2]


#: A cell of the student's own below the graded cell, which stays as it was given.
NEW_CELL = object()

#: function -> {variant: edit of its cell, or (NEW_CELL, the new cell's source)}.
HONEST = {
    "compute_content_cost": {
        "content_intended": between(INTENDED["compute_content_cost"]),
        "content_unrolled": between(
            f"""
            {SHAPE}
            a_C_unrolled = tf.transpose(tf.reshape(a_C, [n_H * n_W, n_C]))
            a_G_unrolled = tf.transpose(tf.reshape(a_G, [n_H * n_W, n_C]))
            J_content = tf.reduce_sum(tf.square(tf.subtract(a_C_unrolled, a_G_unrolled))) / (
                4 * n_H * n_W * n_C)
            """
        ),
        "content_float64": between(
            f"""
            {SHAPE}
            a_C_unrolled = tf.cast(tf.reshape(a_C, [-1]), tf.float64)
            a_G_unrolled = tf.cast(tf.reshape(a_G, [-1]), tf.float64)
            J_content = tf.reduce_sum((a_C_unrolled - a_G_unrolled) ** 2) / (4. * n_H * n_W * n_C)
            """
        ),
        "content_mean": between(f"{SHAPE}\nJ_content = tf.reduce_mean(tf.square(a_C - a_G)) / 4"),
        "content_norm": between(
            f"{SHAPE}\nJ_content = tf.norm(a_C - a_G) ** 2 / (4 * n_H * n_W * n_C)"
        ),
        "content_einsum": between(
            f"""
            {SHAPE}
            d = tf.subtract(a_C, a_G)
            J_content = tf.einsum('ijkl,ijkl->', d, d) / (4 * n_H * n_W * n_C)
            """
        ),
        "content_time_magic": above("%%time", INTENDED["compute_content_cost"]),
        "content_own_cell": (
            NEW_CELL,
            """
            # my own version, the one above did not work
            def compute_content_cost(a_C, a_G):
                n_H, n_W, n_C = a_G.get_shape().as_list()[1:]
                diff = tf.math.squared_difference(a_C, a_G)
                return tf.reduce_sum(diff) * (1 / (4 * n_H * n_W * n_C))

            tf.reset_default_graph()
            with tf.Session() as mine:
                a = legacy_random_normal([1, 2, 2, 3])
                print("mine:", compute_content_cost(a, 2 * a).eval())
            """,
        ),
        "content_float64_back": between(
            f"""
            {SHAPE}
            d = tf.cast(a_C, tf.float64) - tf.cast(a_G, tf.float64)
            d = tf.reshape(d, [-1])
            J_content = tf.cast(tf.tensordot(d, d, 1) / (4 * n_H * n_W * n_C), tf.float32)
            """
        ),
    },
    "gram_matrix": {
        "gram_intended": between(INTENDED["gram_matrix"]),
        "gram_transpose_b": between("GA = tf.matmul(A, A, transpose_b=True)"),
        "gram_einsum": between("GA = tf.einsum('ij,kj->ik', A, A)"),
        "gram_tensordot": between("GA = tf.tensordot(A, A, axes=[[1], [1]])"),
        "gram_linalg": between("GA = tf.linalg.matmul(A, tf.linalg.matrix_transpose(A))"),
        "gram_return_before_start": outside("return tf.matmul(A, tf.transpose(A))", "before"),
        "gram_time_magic": above("%%time", "GA = A @ tf.transpose(A)"),
        "gram_after_end": outside("GA = tf.matmul(A, A, transpose_b=True)", "after"),
        "gram_float64": between(
            "A64 = tf.cast(A, tf.float64)\nGA = tf.matmul(A64, tf.transpose(A64))"
        ),
    },
    "compute_layer_style_cost": {
        "style_intended": between(INTENDED["compute_layer_style_cost"]),
        "style_float64": between(
            f"""
            {SHAPE}
            a_S = tf.cast(tf.transpose(tf.reshape(a_S, [n_H * n_W, n_C])), tf.float64)
            a_G = tf.cast(tf.transpose(tf.reshape(a_G, [n_H * n_W, n_C])), tf.float64)
            {GRAMS.replace(chr(10), chr(10) + " " * 12)}
            {STYLE}
            """
        ),
        "style_batched": between(
            f"""
            {SHAPE}
            a_S = tf.transpose(tf.reshape(a_S, [1, n_H * n_W, n_C]), perm=[0, 2, 1])
            a_G = tf.transpose(tf.reshape(a_G, [1, n_H * n_W, n_C]), perm=[0, 2, 1])
            {GRAMS.replace(chr(10), chr(10) + " " * 12)}
            {STYLE}
            """
        ),
        "style_permuted": between(
            f"""
            {SHAPE}
            a_S = tf.reshape(tf.transpose(a_S, [0, 3, 1, 2]), [n_C, -1])
            a_G = tf.reshape(tf.transpose(a_G, [0, 3, 1, 2]), [n_C, -1])
            {GRAMS.replace(chr(10), chr(10) + " " * 12)}
            J_style_layer = tf.reduce_sum((GS - GG) * (GS - GG)) / (2 * n_C * n_H * n_W) ** 2
            """
        ),
        "style_mean": between(
            f"""
            {SHAPE}
            {UNROLL.replace(chr(10), chr(10) + " " * 12)}
            {GRAMS.replace(chr(10), chr(10) + " " * 12)}
            J_style_layer = tf.reduce_mean(tf.square(GS - GG)) / (4 * (n_H * n_W) ** 2)
            """
        ),
        "style_inline_einsum": between(
            f"""
            {SHAPE}
            {UNROLL.replace(chr(10), chr(10) + " " * 12)}
            GS = tf.einsum('ij,kj->ik', a_S, a_S)
            GG = tf.einsum('ij,kj->ik', a_G, a_G)
            {STYLE}
            """
        ),
        "style_norm": between(
            f"""
            {SHAPE}
            {UNROLL.replace(chr(10), chr(10) + " " * 12)}
            {GRAMS.replace(chr(10), chr(10) + " " * 12)}
            J_style_layer = tf.norm(GS - GG) ** 2 / (4 * n_C**2 * (n_H * n_W) ** 2)
            """
        ),
        "style_float64_back": between(
            f"""
            {SHAPE}
            S = tf.transpose(tf.reshape(tf.cast(a_S, tf.float64), [n_H * n_W, n_C]))
            G = tf.transpose(tf.reshape(tf.cast(a_G, tf.float64), [n_H * n_W, n_C]))
            J = tf.reduce_sum(tf.square(gram_matrix(S) - gram_matrix(G)))
            J = J / (4 * n_C**2 * (n_H * n_W) ** 2)
            J_style_layer = tf.cast(J, tf.float32)
            """
        ),
        "style_commented": above(
            """
            # Exercise 3: the style cost of one layer.
            # I checked it against the expected output below.
            """,
            INTENDED["compute_layer_style_cost"],
        ),
    },
    "total_cost": {
        "total_intended": between(TOTAL),
        "total_commuted": between("J = J_content * alpha + J_style * beta"),
        "total_numpy_float32": between(
            "J = np.float32(alpha) * J_content + np.float32(beta) * J_style"
        ),
        "total_sum": between("J = sum([alpha * J_content, beta * J_style])"),
        "total_return_before_start": outside("return alpha * J_content + beta * J_style", "before"),
        "total_time_magic": above("%%time", TOTAL),
        "total_no_header": no_header(TOTAL),
        "total_parenthesised": between(
            "J = (alpha * J_content  # the content, weighted\n     + beta * J_style)"
        ),
    },
}

#: Notebooks whose variants depend on each other (a batched style cost needs a gram_matrix
#: that takes batches); the other variants are dealt to notebooks in order.
TOGETHER = [{"compute_layer_style_cost": "style_batched", "gram_matrix": "gram_transpose_b"}]

#: A mistake in gram_matrix alone, in a notebook of its own: the style cost that calls it is
#: right, and passes in both.
GRAM_ALONE = {"gram_matrix": "gram_squared"}

#: function -> {mistake: (body between the markers, the diagnosis grade gives)}.
MISTAKES = {
    "compute_content_cost": {
        "content_norm_missing_4": (
            f"{SHAPE}\nJ_content = tf.reduce_sum(tf.square(a_C - a_G)) / (n_H * n_W * n_C)",
            "normalisation",
        ),
        "content_sqrt": (
            f"{SHAPE}\nJ_content = tf.sqrt(tf.reduce_sum(tf.square(a_C - a_G)))"
            " / (4 * n_H * n_W * n_C)",
            "square_root",
        ),
        "content_numpy_on_tensor": (
            f"{SHAPE}\nJ_content = np.sum(np.square(a_C - a_G)) / (4 * n_H * n_W * n_C)",
            "numpy_on_tensor",
        ),
        "content_eval": (f"{SHAPE}\nJ_content = ({CONTENT[12:]}).eval()", "not_a_tensor"),
        "content_shape_from_a_C": (
            "m, n_H, n_W, n_C = a_C.get_shape().as_list()\n" + CONTENT,
            "shape_from_wrong_tensor",
        ),
    },
    "gram_matrix": {
        "gram_transposed": ("GA = tf.matmul(tf.transpose(A), A)", "transposed"),
        "gram_no_transpose": ("GA = tf.matmul(A, A)", "shape_error"),
        "gram_squared": ("GA = tf.square(tf.matmul(A, tf.transpose(A)))", "squared"),
        "gram_elementwise": ("GA = A * A", "elementwise"),
    },
    "compute_layer_style_cost": {
        "style_reshape_without_transpose": (
            f"{SHAPE}\na_S = tf.reshape(a_S, [n_C, n_H * n_W])\n"
            f"a_G = tf.reshape(a_G, [n_C, n_H * n_W])\n{GRAMS}\n{STYLE}",
            "no_transpose",
        ),
        "style_norm_wrong": (
            f"{SHAPE}\n{UNROLL}\n{GRAMS}\n"
            "J_style_layer = tf.reduce_sum(tf.square(GS - GG)) / (4 * n_C * n_H * n_W)",
            "normalisation",
        ),
        "style_sqrt": (
            f"{SHAPE}\n{UNROLL}\n{GRAMS}\n"
            "J_style_layer = tf.sqrt(tf.reduce_sum(tf.square(GS - GG)))"
            " / (4 * n_C**2 * (n_H * n_W) ** 2)",
            "square_root",
        ),
        "style_not_squared": (
            f"{SHAPE}\n{UNROLL}\n{GRAMS}\n"
            "J_style_layer = tf.reduce_sum(GS - GG) / (4 * n_C**2 * (n_H * n_W) ** 2)",
            "not_squared",
        ),
        "style_grams_of_rows": (
            f"{SHAPE}\na_S = tf.reshape(a_S, [n_H * n_W, n_C])\n"
            f"a_G = tf.reshape(a_G, [n_H * n_W, n_C])\n{GRAMS}\n{STYLE}",
            "gram_of_rows",
        ),
    },
    "total_cost": {
        "total_swapped": ("J = beta * J_content + alpha * J_style", "swapped"),
        "total_hard_coded": ("J = 10 * J_content + 40 * J_style", "hard_coded"),
        "total_squared": ("J = alpha * J_content ** 2 + beta * J_style ** 2", "squared"),
    },
}


def _student():
    return nbformat.read(str(STUDENT), as_version=4)


def _graded_index(notebook, name):
    return next(
        i
        for i, c in enumerate(notebook.cells)
        if c.cell_type == "code" and c.source.startswith(f"{GRADED_HEADER} {name}\n")
    )


def build(edits: dict):
    """The student notebook with each function's cell edited ({name: edit or (NEW_CELL, src)});
    the functions not named keep the intended answer."""
    notebook = _student()
    for name in GRADED_FUNCTIONS:
        edit = edits.get(name, between(INTENDED[name]))
        at = _graded_index(notebook, name)
        if isinstance(edit, tuple) and edit[0] is NEW_CELL:
            new = nbformat.v4.new_code_cell(textwrap.dedent(edit[1]).strip("\n"))
            notebook.cells.insert(at + 1, new)
        else:
            notebook.cells[at].source = edit(notebook.cells[at].source)
    return notebook


def deal(variants: dict, together=()) -> list:
    """Variants ({function: {key: edit}}) dealt to notebooks, one per function in each:
    [{function: key}], the `together` groups first."""
    placed = {key for group in together for key in group.values()}
    notebooks = [dict(group) for group in together]
    for name, keys in variants.items():
        free = [k for k in keys if k not in placed]
        for i, key in enumerate(free):
            home = next((n for n in notebooks if name not in n), None)
            if home is None:
                home = {}
                notebooks.append(home)
            home[name] = key
    return notebooks


def _pad_outputs(notebook, megabytes: int):
    """The notebook with a test cell's output grown to `megabytes` (a long log, as a loop
    printing every step leaves)."""
    cell = next(c for c in notebook.cells if c.cell_type == "code" and "GA.eval()" in c.source)
    text = "GA = [[ 1.  2.]]\n" * (megabytes * 1_000_000 // 16)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    return notebook


def _under_time(notebook):
    """The notebook with `%%time` above each graded cell's header (its blanks left as given)."""
    for name in GRADED_FUNCTIONS:
        cell = notebook.cells[_graded_index(notebook, name)]
        cell.source = "%%time\n" + cell.source
    return notebook


def _notebook_side(paths, build=None):
    """notebook_side.py started on `paths` (with the students' download `build` alone)."""
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("notebook_side.py"))]
        + (["--build", str(build)] if build else [])
        + [str(p) for p in paths],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _checked(side) -> dict:
    out, err = side.communicate(timeout=900)
    assert side.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def sides(tmp_path_factory):
    """{"repository" and "download": {notebook name: (the row grade gives, what the notebook's
    check() gives with that package, the kind of notebook, its variants)}}."""
    folder = tmp_path_factory.mktemp("corpus")
    download = tmp_path_factory.mktemp("assignment") / "out"
    assert main(["make-assignment", str(download), "--hidden-seed", "12345"]) == 0
    layout = {}
    for i, pack in enumerate(deal(HONEST, TOGETHER)):
        notebook = build({name: HONEST[name][key] for name, key in pack.items()})
        if i == 0:
            _pad_outputs(notebook, 55)
        layout[f"honest{i}"] = ("honest", pack, notebook)
    mistakes = {name: {k: v[0] for k, v in keys.items()} for name, keys in MISTAKES.items()}
    for i, pack in enumerate(deal(mistakes)):
        notebook = build({name: between(mistakes[name][key]) for name, key in pack.items()})
        layout[f"mistakes{i}"] = ("mistakes", pack, notebook)
    alone = build({name: between(mistakes[name][key]) for name, key in GRAM_ALONE.items()})
    layout["gram_alone"] = ("mistakes", GRAM_ALONE, alone)
    layout["blank"] = ("blank", {}, _student())
    layout["blank_under_time"] = ("blank", {}, _under_time(_student()))
    paths = {}
    for key, (_, _, notebook) in layout.items():
        paths[key] = folder / f"{key}.ipynb"
        nbformat.write(notebook, str(paths[key]))
    side = _notebook_side(paths.values())
    download_side = _notebook_side(paths.values(), download / "student")
    rows = {row.student: row for row in grade_paths([folder], LIMITS, jobs=2)}
    checked = {"repository": _checked(side), "download": _checked(download_side)}
    return {
        where: {
            key: (rows[key], found[str(paths[key])], kind, pack)
            for key, (kind, pack, _) in layout.items()
        }
        for where, found in checked.items()
    }


@pytest.fixture(scope="module")
def corpus(sides):
    """{notebook name: (the row grade gives, what the notebook's check() gives, its variants)}."""
    return sides["repository"]


def test_the_corpus_is_large_enough():
    honest = sum(len(v) for v in HONEST.values())
    mistakes = sum(len(v) for v in MISTAKES.values())
    assert honest >= 30 and mistakes >= 15


def test_every_honest_variant_gets_full_marks(corpus):
    failures = [
        f"{pack.get(name)}: {grade.line()}"
        for row, _, kind, pack in corpus.values()
        if kind == "honest"
        for name, grade in row.grades.items()
        if not (grade.passed and grade.points == grade.max_points and grade.diagnosis == "correct")
    ]
    assert not failures, failures


def test_honest_variants_print_the_published_values_in_the_notebook(corpus):
    """The notebook's own test cells agree that the variants are right (the float64 style
    cost prints 9.1902783): the corpus is honest, not merely accepted."""
    names = {"J_content": "compute_content_cost", "J_style_layer": "compute_layer_style_cost"}
    names["J"] = "total_cost"
    for key, (_, checked, kind, _) in corpus.items():
        if kind != "honest":
            continue
        printed = dict(
            re.findall(r"^(J_content|J_style_layer|J) = (\S+)$", checked["printed"], re.M)
        )
        assert set(printed) == set(names), (key, checked["printed"][:2000])
        for variable, value in printed.items():  # as printed: float32 shows 6 digits
            want = PUBLISHED[names[variable]]
            assert abs(float(value) - want) <= 1e-5 * max(1, abs(want)), (key, variable, value)


def test_each_mistake_is_named(corpus):
    wrong = []
    for row, _, kind, pack in corpus.values():
        if kind != "mistakes":
            continue
        for name, grade in row.grades.items():
            want = (False, MISTAKES[name][pack[name]][1]) if name in pack else (True, "correct")
            if (grade.passed, grade.diagnosis) != want:
                wrong.append(f"{pack.get(name, 'intended')}: {grade.line()}")
    assert not wrong, "\n".join(wrong)


def test_a_shape_error_names_the_shapes_and_the_missing_transpose(corpus):
    row = next(r for r, _, _, pack in corpus.values() if "gram_no_transpose" in pack.values())
    feedback = row.grades["gram_matrix"].feedback
    assert "input shapes [3,2], [3,2]" in feedback, feedback
    assert "tf.matmul(A, A) needs a transpose" in feedback, feedback


def test_a_notebook_heavy_with_outputs_is_graded(corpus):
    row = corpus["honest0"][0]
    assert row.error is None and row.points == 100, row.error


@pytest.mark.parametrize("key", ["blank", "blank_under_time"])
@pytest.mark.parametrize("where", ["repository", "download"])
def test_the_blank_is_not_implemented_in_both(sides, where, key):
    row, checked, _, _ = sides[where][key]
    for name in GRADED_FUNCTIONS:
        assert row.grades[name].diagnosis == "not_implemented"
        assert checked["grades"][name]["diagnosis"] == "not_implemented", (name, checked)


@pytest.mark.parametrize("where", ["repository", "download"])
def test_a_style_cost_right_but_for_its_gram_matrix_passes_in_both(sides, where):
    """One mistake costs points once: grade grades the style cost with a correct gram_matrix,
    and check() says the same, even in the download, which holds no reference."""
    row, checked, _, _ = sides[where]["gram_alone"]
    for mine in (
        row.grades["compute_layer_style_cost"].line(),
        checked["grades"]["compute_layer_style_cost"]["line"],
    ):
        assert mine.startswith(
            "compute_layer_style_cost: PASS 25/25 - passes with the reference gram_matrix; your "
            "gram_matrix fails: squared where it should not be"
        ), mine


@pytest.mark.parametrize("where", ["repository", "download"])
def test_check_and_grade_agree_on_every_notebook_of_both_corpora(sides, where):
    """Same verdict, points and diagnosis; the same feedback as grade gives on the public
    cases (the ones check() sees); and check()'s printed line is that grade's line."""
    disagreements = []
    for key, (row, checked, _, pack) in sides[where].items():
        for name in GRADED_FUNCTIONS:
            grade, mine = row.grades[name], checked["grades"].get(name)
            public = grade.public_feedback if grade.public_feedback is not None else grade.feedback
            theirs = {
                "passed": grade.passed,
                "points": grade.points,
                "diagnosis": grade.diagnosis,
                "feedback": public,
            }
            where = f"{key} {pack.get(name, 'intended')} {name}"
            if mine is None or {k: mine[k] for k in theirs} != theirs:
                disagreements.append(f"{where}: grade {theirs} / check {mine and mine['line']}")
            elif mine["line"] not in checked["printed"]:
                disagreements.append(f"{where}: check() printed no {mine['line']!r}")
    assert not disagreements, "\n".join(disagreements)
