"""The solved notebook runs top to bottom on fixture weights and its functions match the package.

The notebook is executed once (nbclient, the venv's python3 kernel) at 64x48 with 2 iterations,
from notebooks/ as a student would run it, with a cell appended that compares the notebook's
graded functions with nst_utils.costs on random inputs and prints the result as JSON.
"""

import json
import os
import re

import imageio.v3 as iio
import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from nst_utils.config import PROJECT_ROOT

from conftest import SMALL_HEIGHT, SMALL_WIDTH

NOTEBOOK = PROJECT_ROOT / "notebooks" / "Art_Generation_with_Neural_Style_Transfer.ipynb"
GRADED = ("compute_content_cost", "gram_matrix", "compute_layer_style_cost",
          "compute_style_cost", "total_cost")
COMPARE_MARK = "NB_COMPARE "

#: Appended to the notebook: the largest relative difference between each of the notebook's
#: graded functions and the package's, over random inputs with unequal n_H, n_W, n_C.
COMPARE_CELL = r'''
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
'''


@pytest.fixture(scope="session")
def executed(vgg_mat, tmp_path_factory):
    """(executed notebook, output folder): the notebook run once with a comparison cell appended."""
    out = tmp_path_factory.mktemp("notebook-output")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(COMPARE_CELL))
    env = dict(os.environ, NST_WEIGHTS=str(vgg_mat), NST_IMAGE_WIDTH=str(SMALL_WIDTH),
               NST_IMAGE_HEIGHT=str(SMALL_HEIGHT), NST_ITERATIONS="2", NST_OUTPUT_DIR=str(out),
               TF_CPP_MIN_LOG_LEVEL="2", MPLBACKEND="agg")
    client = NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute(env=env)
    return nb, out


def _stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs
                   if o.output_type == "stream" and o.name == "stdout")


def _cell_printing(nb, prefix: str) -> str:
    """The stdout of the one code cell that prints `prefix`."""
    found = [_stdout(c) for c in nb.cells if c.cell_type == "code" and prefix in _stdout(c)]
    assert len(found) == 1, f"expected one cell printing {prefix!r}, found {len(found)}"
    return found[0]


def _numbers(text: str) -> list:
    return [float(x) for x in re.findall(r"-?\d+\.\d*(?:[eE][-+]?\d+)?", text)]


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)


def test_graded_cells_are_marked():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    heads = [c.source.splitlines()[0] for c in nb.cells if c.cell_type == "code" and c.source]
    for name in GRADED:
        assert heads.count(f"# GRADED FUNCTION: {name}") == 1, name
        cell = next(c.source for c in nb.cells if c.source.startswith(f"# GRADED FUNCTION: {name}"))
        start, end = cell.index("### START CODE HERE ###"), cell.index("### END CODE HERE ###")
        assert f"def {name}(" in cell[:start] and start < end


def test_notebook_runs_without_error(executed):
    nb, _ = executed
    errors = [(o.ename, o.evalue) for c in nb.cells if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    assert errors == []


@pytest.mark.parametrize("prefix, expected, tol", [
    ("J_content = ", 6.76559, 1e-5),
    ("J_style_layer = ", 9.19028, 1e-5),
    ("J = ", 35.34667875478276, 1e-12),
])
def test_test_cells_print_published_values(executed, prefix, expected, tol):
    text = _cell_printing(executed[0], prefix)
    value = float(text.split(prefix, 1)[1].split()[0])
    assert value == pytest.approx(expected, abs=tol)


def test_gram_cell_prints_published_matrix(executed):
    text = _cell_printing(executed[0], "GA = ")
    expected = [[6.422305, -4.429122, -2.096682], [-4.429122, 19.465837, 19.563871],
                [-2.096682, 19.563871, 20.686462]]
    np.testing.assert_allclose(np.reshape(_numbers(text), (3, 3)), expected, atol=1e-5)


def test_model_nn_ran_and_saved_the_image(executed):
    nb, out = executed
    report = _cell_printing(nb, "Iteration 0 :")
    assert all(np.isfinite(_numbers(report)))
    image = iio.imread(out / "generated_image.jpg")
    assert image.shape == (SMALL_HEIGHT, SMALL_WIDTH, 3)
    assert (out / "0.png").is_file()


def test_self_checks_pass(executed):
    nb, _ = executed
    lines = [line for c in nb.cells if c.cell_type == "code" and c.source.lstrip().startswith("# Self-check")
             for line in _stdout(c).splitlines()]
    assert sorted(line.split(":")[0] for line in lines) == sorted(GRADED)
    assert all(" PASS 20/20 - correct" in line for line in lines), lines


def test_notebook_functions_agree_with_package(executed):
    text = _cell_printing(executed[0], COMPARE_MARK)
    worst = json.loads(text.split(COMPARE_MARK, 1)[1])
    assert sorted(worst) == sorted(GRADED)
    for name, rel in worst.items():
        assert rel < 1e-5, f"{name} differs from nst_utils.costs by {rel:.3g} (relative)"
