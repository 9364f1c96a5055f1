"""The solved notebook runs top to bottom on fixture weights and its functions match the package.

The notebook is executed once (nbclient, the venv's python3 kernel) at 64x48, from notebooks/ as
a student would run it. The size, weights and output folder reach CONFIG through the NST_*
variables; a cell inserted after model_nn's definition makes its run 2 iterations long, and a
cell appended at the end compares the notebook's functions with nst_utils.costs on random
inputs and prints the result as JSON.
"""

import json
import os
import re

import imageio.v3 as iio
import matplotlib
import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from nst_utils.config import PROJECT_ROOT
from nst_utils.grading.student import STUDENT
from nst_utils.quiet import STARTUP_NOISE

from conftest import SMALL_HEIGHT, SMALL_WIDTH
from limits import HANG_SECONDS

NOTEBOOK = PROJECT_ROOT / "notebooks" / "Art_Generation_with_Neural_Style_Transfer.ipynb"
GRADED = ("compute_content_cost", "gram_matrix", "compute_layer_style_cost", "total_cost")
#: The four lines the student writes in model_nn, as the original had them.
MODEL_NN_LINES = (
    "sess.run(tf.global_variables_initializer())",
    "sess.run(model['input'].assign(input_image))",
    "sess.run(train_step)",
    "generated_image = sess.run(model['input'])",
)
J_LINE = "J = total_cost(J_content, J_style, alpha=10, beta=40)"
COMPARE_MARK = "NB_COMPARE "

#: Appended to the notebook: the largest relative difference between each of the notebook's
#: cost functions (the four graded ones and the given compute_style_cost) and the package's,
#: over random inputs with unequal n_H, n_W, n_C.
COMPARE_CELL = r"""
import json as _json
from nst_utils import costs as _ref
from nst_utils.reference import evaluate as _evaluate

def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(1e-12, float(np.max(np.abs(b)))))

_rng = np.random.default_rng(7)
_worst = {name: 0.0 for name in ("compute_content_cost", "gram_matrix", "compute_layer_style_cost",
                                 "compute_style_cost", "total_cost")}
for _shape in [(1, 3, 5, 2), (1, 4, 2, 7), (1, 6, 3, 4)]:
    _x = _rng.normal(1, 4, _shape).astype("float32")
    _y = _rng.normal(1, 4, _shape).astype("float32")
    for _name, _args in (("compute_content_cost", {"a_C": _x, "a_G": _y}),
                         ("compute_layer_style_cost", {"a_S": _x, "a_G": _y})):
        _worst[_name] = max(_worst[_name], _rel(_evaluate(globals()[_name], _args),
                                                _evaluate(getattr(_ref, _name), _args)))
    _A = {"A": _rng.normal(1, 4, (_shape[3], _shape[1] * _shape[2])).astype("float32")}
    _worst["gram_matrix"] = max(_worst["gram_matrix"], _rel(_evaluate(gram_matrix, _A),
                                                            _evaluate(_ref.gram_matrix, _A)))
    _jc, _js, _al, _be = (float(v) for v in _rng.normal(0, 3, 4))
    _worst["total_cost"] = max(_worst["total_cost"],
                               _rel(total_cost(_jc, _js), _ref.total_cost(_jc, _js)),
                               _rel(total_cost(_jc, _js, alpha=_al, beta=_be),
                                    _ref.total_cost(_jc, _js, alpha=_al, beta=_be)))

# compute_style_cost on the notebook's own model and session: style read from one random image,
# the costs then evaluated on another.
_shape = tuple(model["input"].get_shape().as_list())
sess.run(model["input"].assign(_rng.normal(0, 50, _shape).astype("float32")))
_layers = [("conv1_1", 0.1), ("conv2_1", 0.3), ("conv3_1", 0.6)]
_mine = [compute_style_cost(model, STYLE_LAYERS), compute_style_cost(model, _layers)]
_theirs = [_ref.compute_style_cost(model, STYLE_LAYERS, sess=sess),
           _ref.compute_style_cost(model, _layers, sess=sess)]
sess.run(model["input"].assign(_rng.normal(0, 50, _shape).astype("float32")))
_values = sess.run(_mine + _theirs)
_worst["compute_style_cost"] = max(_rel(_values[0], _values[2]), _rel(_values[1], _values[3]))
print("NB_COMPARE " + _json.dumps(_worst))
"""


@pytest.fixture(scope="session")
def executed(vgg_mat, tmp_path_factory):
    """(executed notebook, output folder): the notebook run once, as described above."""
    out = tmp_path_factory.mktemp("notebook-output")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "def model_nn(" in c.source)
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell("model_nn.__defaults__ = (2,)"))
    nb.cells.append(nbformat.v4.new_code_cell(COMPARE_CELL))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("NST_") and k != "TF_CPP_MIN_LOG_LEVEL"
    }
    env.update(
        NST_WEIGHTS=str(vgg_mat),
        NST_IMAGE_WIDTH=str(SMALL_WIDTH),
        NST_IMAGE_HEIGHT=str(SMALL_HEIGHT),
        NST_OUTPUT_DIR=str(out),
        MPLBACKEND="agg",
    )
    client = NotebookClient(
        nb,
        timeout=HANG_SECONDS,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute(env=env)
    return nb, out


def _stdout(cell) -> str:
    return "".join(
        o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == "stdout"
    )


def _cell_printing(nb, prefix: str) -> str:
    """The stdout of the one code cell that prints `prefix`."""
    found = [_stdout(c) for c in nb.cells if c.cell_type == "code" and prefix in _stdout(c)]
    assert len(found) == 1, f"expected one cell printing {prefix!r}, found {len(found)}"
    return found[0]


def _numbers(text: str) -> list:
    return [float(x) for x in re.findall(r"-?\d+\.\d*(?:[eE][-+]?\d+)?", text)]


def _cell(nb, needle: str):
    found = [c for c in nb.cells if c.cell_type == "code" and needle in c.source]
    assert len(found) == 1, f"expected one cell with {needle!r}, found {len(found)}"
    return found[0]


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)


def test_graded_cells_are_the_originals_four():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    heads = [c.source.splitlines()[0] for c in nb.cells if c.cell_type == "code" and c.source]
    assert sorted(h for h in heads if h.startswith("# GRADED FUNCTION:")) == sorted(
        f"# GRADED FUNCTION: {name}" for name in GRADED
    )
    for name in GRADED:
        cell = next(c.source for c in nb.cells if c.source.startswith(f"# GRADED FUNCTION: {name}"))
        start, end = cell.index("### START CODE HERE ###"), cell.index("### END CODE HERE ###")
        assert f"def {name}(" in cell[:start] and start < end
    # the content cost unrolls both activations, as the original's exercise asked
    content = _cell(nb, "def compute_content_cost(").source
    assert content.count("tf.reshape(") == 2
    # compute_style_cost is given code to read: no marker; it reads the session it is given, or
    # the default one
    style = _cell(nb, "def compute_style_cost(").source
    assert "def compute_style_cost(model, STYLE_LAYERS, sess=None):" in style
    assert "START CODE HERE" not in style and "tf.get_default_session()" in style


def test_student_notebook_blanks_exactly_the_originals_exercises():
    solved = nbformat.read(NOTEBOOK, as_version=4)
    student = nbformat.read(STUDENT, as_version=4)
    assert len(solved.cells) == len(student.cells)
    changed = [
        (a.source, b.source) for a, b in zip(solved.cells, student.cells) if a.source != b.source
    ]
    # the four graded functions, the J line and model_nn: nothing else changes
    assert len(changed) == 6
    model_nn = _cell(student, "def model_nn(").source
    assert model_nn.count("### START CODE HERE ###") == 4
    assert model_nn.count("sess.run(None)") == 3 and "generated_image = None" in model_nn
    assert not any(line in model_nn for line in MODEL_NN_LINES)
    assert all(line in _cell(solved, "def model_nn(").source for line in MODEL_NN_LINES)
    # the given rest of the loop stays
    assert 'save_image(CONFIG.OUTPUT_DIR + str(i) + ".png", generated_image)' in model_nn
    j_cell = next(b for a, b in changed if J_LINE in a)
    assert J_LINE not in j_cell and "J = None" in j_cell
    # compute_style_cost and the optimizer stay given
    assert (
        _cell(student, "def compute_style_cost(").source
        == _cell(solved, "def compute_style_cost(").source
    )
    assert "optimizer.minimize(J)" in _cell(student, "optimizer.minimize(J)").source


@pytest.mark.slow
def test_notebook_runs_without_error(executed):
    nb, _ = executed
    errors = [
        (o.ename, o.evalue)
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "error"
    ]
    assert errors == []


@pytest.mark.slow
def test_no_tensorflow_startup_lines_in_the_outputs(executed):
    nb, _ = executed
    streams = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "stream"
    ]
    assert [o.text for o in streams if o.name == "stderr"] == []
    text = "".join(o.text for o in streams)
    assert not STARTUP_NOISE.search(text) and "is deprecated" not in text


@pytest.mark.slow
@pytest.mark.parametrize(
    "prefix, expected, tol",
    [
        ("J_content = ", 6.76559, 1e-5),
        ("J_style_layer = ", 9.19028, 1e-5),
        ("J = ", 35.34667875478276, 1e-12),
    ],
)
def test_test_cells_print_published_values(executed, prefix, expected, tol):
    text = _cell_printing(executed[0], prefix)
    value = float(text.split(prefix, 1)[1].split()[0])
    assert value == pytest.approx(expected, abs=tol)


#: The original notebook's expected GA, as its table printed it (numpy of 2017, 8 decimals).
ORIGINAL_GA = (
    "[[  6.42230511  -4.42912197  -2.09668207] <br>\n"
    "            [ -4.42912197  19.46583748  19.56387138] <br>\n"
    "            [ -2.09668207  19.56387138  20.6864624 ]]"
)


@pytest.mark.slow
def test_gram_cell_prints_published_matrix(executed):
    """The cell prints the original's table to float32 precision: within 4 float32 steps, as
    the matmul's order of summing differs with the CPU's kernels (AVX2-only CPUs print
    -2.0966816 where AVX-512 ones and TF1 print -2.09668207)."""
    text = _cell_printing(executed[0], "GA = ")
    expected = np.reshape(_numbers(ORIGINAL_GA), (3, 3))
    within = 4 * float(np.finfo(np.float32).eps)
    np.testing.assert_allclose(np.reshape(_numbers(text), (3, 3)), expected, rtol=within, atol=0)


def _markdown(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


@pytest.mark.parametrize("path", [NOTEBOOK, STUDENT], ids=["solved", "student"])
def test_the_texts_are_the_originals(path):
    """The GA table, the transpose hint of the content cost and the Adam paragraph as the
    original has them, and no size written in the text where CONFIG's is meant."""
    nb = nbformat.read(path, as_version=4)
    text = _markdown(nb)
    assert ORIGINAL_GA in text
    content = next(c.source for c in nb.cells if "### 3.1 - Computing the content cost" in c.source)
    assert "api_docs/python/tf/transpose" in content and "api_docs/python/tf/reshape" in content
    adam = next(c.source for c in nb.cells if "Adam optimizer in earlier lessons" in c.source)
    assert "non-trainable" in adam and "constants" not in adam
    assert "(400x300)" not in text


def test_the_networks_weights_are_non_trainable_variables(vgg_mat):
    """What the Adam paragraph says: Adam's only trainable variable is the input image."""
    import tensorflow as tf

    from nst_utils.vgg import load_vgg_model

    with tf.Graph().as_default():
        model = load_vgg_model(vgg_mat, image_height=SMALL_HEIGHT, image_width=SMALL_WIDTH)
        trainable = tf.compat.v1.trainable_variables()
        assert trainable == [model["input"]]
        assert len(tf.compat.v1.global_variables()) == 1 + 2 * 16


def test_section_1s_pictures_sit_side_by_side():
    """A table keeps the three pictures in one row, the result on the right, in JupyterLab (whose
    CSS sets img height: auto, so a height attribute is lost) and in the classic Notebook (whose
    CSS makes every img a centred block): widths, not heights, size them."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    cell = next(c.source for c in nb.cells if "## 1 - Problem statement" in c.source)
    row = re.search(r"<tr>(.*?)</tr>", cell, re.DOTALL).group(1)
    pictures = re.findall(r"<td><img ([^>]*)></td>", row)
    assert [re.search(r'src="([^"]+)"', p).group(1).rsplit("/", 1)[1] for p in pictures] == [
        "louvre.jpg",
        "sandstone.jpg",
        "seed_result_louvre_sandstone.png",
    ]
    assert all("width=" in p and "height=" not in p for p in pictures)
    assert "On the right" in cell


def test_section_4s_figures_have_no_pixel_axes_and_show_the_size_in_use():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    start = next(i for i, c in enumerate(nb.cells) if c.source.startswith("## 4 -"))
    end = next(i for i, c in enumerate(nb.cells) if c.source.startswith("## 5 -"))
    figures = [c.source for c in nb.cells[start:end] if "imshow(" in c.source]
    assert len(figures) == 4
    for source in figures:
        assert 'plt.axis("off")' in source, source
    for source in figures[:3]:
        assert "(CONFIG.IMAGE_WIDTH, CONFIG.IMAGE_HEIGHT)" in source, source


@pytest.mark.slow
def test_model_nn_reports_and_saves_as_the_original(executed):
    nb, out = executed
    report = _cell_printing(nb, "Iteration 0 :")
    assert re.findall(r"^Iteration (\d+) :$", report, re.MULTILINE) == ["0"]
    for label in ("total cost = ", "content cost = ", "style cost = "):
        (value,) = re.findall(f"^{label}(.+)$", report, re.MULTILINE)
        # str() of a numpy float32, as the original printed (not a Python float's 17 digits)
        assert str(np.float32(value)) == value and np.isfinite(float(value))
    assert sorted(p.name for p in out.iterdir()) == ["0.png", "generated_image.jpg"]
    assert iio.imread(out / "generated_image.jpg").shape == (SMALL_HEIGHT, SMALL_WIDTH, 3)


@pytest.mark.slow
def test_final_cell_shows_the_picture_this_run_wrote(executed):
    nb, _ = executed
    final = _cell(nb, "written_by_this_run")
    assert [o.output_type for o in final.outputs] == ["display_data"]
    assert "image/png" in final.outputs[0].data


def test_final_cell_shows_no_stale_picture(tmp_path, capsys):
    """A generated_image.jpg older than the run, or no run at all: no picture, one line instead."""
    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    stale = tmp_path / "generated_image.jpg"
    iio.imwrite(stale, np.zeros((4, 4, 3), np.uint8))
    os.utime(stale, (1_000_000_000, 1_000_000_000))
    source = _cell(nbformat.read(NOTEBOOK, as_version=4), "written_by_this_run").source

    class Config:
        OUTPUT_DIR = str(tmp_path) + os.sep

    for run in ({}, {"run_started": 2_000_000_000}):
        shown = []
        namespace = {"os": os, "plt": plt, "imshow": shown.append, "CONFIG": Config, **run}
        exec(source, namespace)
        assert shown == [] and "No picture yet" in capsys.readouterr().out


@pytest.mark.slow
def test_self_checks_pass(executed):
    nb, _ = executed
    lines = [
        line
        for c in nb.cells
        if c.cell_type == "code" and c.source.startswith("check(")
        for line in _stdout(c).splitlines()
    ]
    assert sorted(line.split(":")[0] for line in lines) == sorted(GRADED + ("model_nn",))
    for line in lines:
        expected = " PASS - " if line.startswith("model_nn:") else " - correct: "
        assert expected in line, line


@pytest.mark.slow
def test_notebook_functions_agree_with_package(executed):
    text = _cell_printing(executed[0], COMPARE_MARK)
    worst = json.loads(text.split(COMPARE_MARK, 1)[1])
    assert sorted(worst) == sorted(GRADED + ("compute_style_cost",))
    for name, rel in worst.items():
        assert rel < 1e-5, f"{name} differs from nst_utils.costs by {rel:.3g} (relative)"


def test_figures_the_notebook_shows_exist():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    text = "".join(c.source for c in nb.cells if c.cell_type == "markdown")
    paths = re.findall(r"\]\((\.\./images/[^)]+)\)", text) + re.findall(
        r'src="(\.\./images/[^"]+)"', text
    )
    assert {
        "../images/seed_result_louvre_sandstone.png",
        "../images/diagram_content_cost.png",
        "../images/diagram_unrolling.png",
        "../images/diagram_gram.png",
    } <= set(paths)
    assert [p for p in paths if not (NOTEBOOK.parent / p).is_file()] == []


@pytest.mark.slow
@pytest.mark.parametrize("path", [NOTEBOOK, STUDENT], ids=["solved", "student"])
def test_every_code_cell_is_valid_python(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            source = re.sub(r"^(\s*)%", r"\1# %", cell.source, flags=re.MULTILINE)
            compile(source, f"{path.name}: {cell.source[:40]!r}", "exec")
