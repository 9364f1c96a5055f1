"""The notebook's model_nn loop gives optimize's images bit for bit, and check(model_nn) says so.

model_nn is taken from the solved notebook's cell and run in a namespace of its own, as the
notebook's globals would hold it; the mistakes are that cell with one line changed.
"""

import linecache

import numpy as np

import nbformat
import pytest
import tensorflow as tf

from nst_utils import costs
from nst_utils.config import CONFIG, STYLE_LAYERS
from nst_utils.grading import check
from nst_utils.grading.selfcheck import check_line
from nst_utils.grading.student import SOLVED, STUDENT
from nst_utils.images import save_image
from nst_utils.grading.loop_check import ITERATIONS, check_model_nn
from nst_utils.training import Hooks, optimize
from nst_utils.vgg import load_vgg_model

tf1 = tf.compat.v1


def _model_nn_source(path=SOLVED) -> str:
    nb = nbformat.read(str(path), as_version=4)
    (source,) = [
        c.source for c in nb.cells if c.cell_type == "code" and "def model_nn(" in c.source
    ]
    return source


def _model_nn(source=None, namespace=None):
    """The notebook's model_nn defined in `namespace` (a fresh one with the notebook's imports)."""
    namespace = (
        {"tf": tf1, "np": np, "CONFIG": CONFIG, "save_image": save_image}
        if namespace is None
        else namespace
    )
    source = source or _model_nn_source()
    # As IPython does for a cell, so that inspect.getsource finds the function's text.
    filename = f"<cell-{abs(hash(source))}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)
    return namespace["model_nn"]


def _changed(old: str, new: str):
    source = _model_nn_source()
    assert source.count(old) == 1, old
    return _model_nn(source.replace(old, new))


@pytest.mark.slow
def test_the_notebooks_loop_gives_optimizes_images_bit_for_bit(vgg_mat, tmp_path, monkeypatch):
    width, height, iterations = 32, 24, 3
    rng = np.random.default_rng(5)
    content, style, start = (
        rng.normal(0, 50, (1, height, width, 3)).astype(np.float32) for _ in range(3)
    )
    graph = tf.Graph()
    with graph.as_default(), tf1.Session(graph=graph) as sess, sess.as_default():
        model = load_vgg_model(vgg_mat, image_height=height, image_width=width)
        sess.run(model["input"].assign(content))
        J_content = costs.compute_content_cost(sess.run(model["conv4_2"]), model["conv4_2"])
        sess.run(model["input"].assign(style))
        J_style = costs.compute_style_cost(model, STYLE_LAYERS, sess=sess)
        J = costs.total_cost(J_content, J_style)
        train_step = tf1.train.AdamOptimizer(2.0).minimize(J)
        namespace = {
            "tf": tf1,
            "np": np,
            "CONFIG": CONFIG,
            "save_image": save_image,
            "model": model,
            "train_step": train_step,
            "J": J,
            "J_content": J_content,
            "J_style": J_style,
        }
        model_nn = _model_nn(namespace=namespace)
        monkeypatch.setattr(CONFIG, "OUTPUT_DIR", str(tmp_path / "notebook") + "/")
        mine = model_nn(sess, start.copy(), num_iterations=iterations)
        theirs = optimize(
            sess,
            model,
            train_step,
            (J, J_content, J_style),
            start.copy(),
            num_iterations=iterations,
            output_dir=tmp_path / "optimize",
            hooks=Hooks(report=None),
        )
    assert mine.dtype == theirs.image.dtype == np.float32
    assert not np.array_equal(mine, start)
    np.testing.assert_array_equal(mine, theirs.image)
    for name in ("0.png", "generated_image.jpg"):
        assert (tmp_path / "notebook" / name).read_bytes() == (
            tmp_path / "optimize" / name
        ).read_bytes()


@pytest.mark.slow
def test_check_passes_the_solved_model_nn(capsys):
    model_nn = _model_nn()
    verdict = check_model_nn(model_nn)
    assert verdict.startswith("model_nn: PASS") and f"after {ITERATIONS} iterations" in verdict
    check(model_nn)  # the notebook's spelling
    assert capsys.readouterr().out == verdict + "\n"


@pytest.mark.slow
@pytest.mark.parametrize(
    "old, new, expected",
    [
        (
            "sess.run(tf.global_variables_initializer())",
            "pass",
            "first run tf.global_variables_initializer()",
        ),
        (
            "sess.run(model['input'].assign(input_image))",
            "pass",
            "the loop started from zeros, not from input_image",
        ),
        ("sess.run(train_step)", "pass", "the image never changed"),
        (
            "generated_image = sess.run(model['input'])",
            "generated_image = sess.run(model['input']) + 1e-3",
            "the image differs from the reference loop's",
        ),
        (
            "    return generated_image",
            "    return None",
            "returns NoneType, not the generated image",
        ),
        (
            'print("total cost = " + str(Jt))',
            'print("total cost = " + str(float(Jt)))',
            "the cost report differs",
        ),
        (
            'save_image(CONFIG.OUTPUT_DIR + str(i) + ".png", generated_image)',
            'save_image(CONFIG.OUTPUT_DIR + str(i + 1) + ".png", generated_image)',
            "it saved ['1.png', '21.png', 'generated_image.jpg'] where",
        ),
    ],
)
def test_check_names_the_mistake(old, new, expected):
    verdict = check_model_nn(_changed(old, new))
    assert verdict.startswith("model_nn: FAIL - ") and expected in verdict, verdict


@pytest.mark.slow
def test_a_step_before_reading_in_the_wrong_order_fails():
    swapped = (
        _model_nn_source()
        .replace("        sess.run(train_step)\n", "        __STEP__\n")
        .replace(
            "        generated_image = sess.run(model['input'])\n",
            "        generated_image = sess.run(model['input'])\n        sess.run(train_step)\n",
        )
        .replace("        __STEP__\n", "")
    )
    verdict = check_model_nn(_model_nn(swapped))
    assert verdict.startswith("model_nn: FAIL - after 21 iterations the image differs"), verdict


def test_the_student_blank_is_not_implemented_yet():
    verdict = check_model_nn(_model_nn(_model_nn_source(STUDENT)))
    assert verdict.startswith("model_nn: not implemented yet")


@pytest.mark.slow
def test_other_errors_are_reported_in_one_line():
    verdict = check_model_nn(_changed("sess.run(train_step)", "sess.run(trian_step)"))
    assert verdict == "model_nn: FAIL - raises NameError: name 'trian_step' is not defined"
    assert check_model_nn(len).startswith("model_nn: FAIL - check() needs the function model_nn")


@pytest.mark.slow
def test_the_notebooks_globals_and_config_are_restored():
    namespace = {
        "tf": tf1,
        "np": np,
        "CONFIG": CONFIG,
        "save_image": save_image,
        "model": "the notebook's model",
        "J": 1.5,
    }
    model_nn = _model_nn(namespace=namespace)
    before = CONFIG.OUTPUT_DIR
    assert check_model_nn(model_nn).startswith("model_nn: PASS")
    assert namespace["model"] == "the notebook's model" and namespace["J"] == 1.5
    assert not {"train_step", "J_content", "J_style"} & set(namespace)
    assert CONFIG.OUTPUT_DIR == before


def _notebook_costs() -> dict:
    """The solved notebook's cost functions (and what they call), defined as its cells do."""
    nb = nbformat.read(str(SOLVED), as_version=4)
    namespace = {"tf": tf1, "np": np}
    for cell in nb.cells:
        if cell.cell_type == "code" and any(
            f"def {name}(" in cell.source
            for name in (
                "compute_content_cost",
                "gram_matrix",
                "compute_layer_style_cost",
                "compute_style_cost",
                "total_cost",
            )
        ):
            filename = f"<cell-{abs(hash(cell.source))}>"
            linecache.cache[filename] = (
                len(cell.source),
                None,
                cell.source.splitlines(True),
                filename,
            )
            exec(compile(cell.source, filename, "exec"), namespace)
    return namespace


@pytest.mark.slow
def test_without_the_packages_costs_the_notebooks_own_build_the_test(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "nst_utils.costs", None)  # as in the students' build
    namespace = dict(_notebook_costs(), CONFIG=CONFIG, save_image=save_image)
    verdict = check_model_nn(_model_nn(namespace=namespace))
    assert verdict.startswith("model_nn: PASS"), verdict
    bare = {"tf": tf1, "np": np, "CONFIG": CONFIG, "save_image": save_image}
    verdict = check_model_nn(_model_nn(namespace=bare))
    assert verdict.startswith(
        "model_nn: FAIL - check(model_nn) builds its test network with the "
        "notebook's compute_content_cost"
    ), verdict


def test_a_wrong_cost_function_is_named_before_the_loop_is_tried():
    namespace = dict(_notebook_costs(), CONFIG=CONFIG, save_image=save_image)
    exec(
        "def total_cost(J_content, J_style, alpha=10, beta=40):\n    return J_content + J_style\n",
        namespace,
    )
    verdict = check_line(_model_nn(namespace=namespace))
    assert verdict.startswith(
        "model_nn: FAIL - check(model_nn) builds its test network with your "
        "cost functions: make check(total_cost) pass first (total_cost: FAIL"
    )


def _section_4(alpha, beta, j_none=False):
    """A namespace as section 4 leaves it: J_content, J_style and J in an interactive session."""
    graph = tf.Graph()
    with graph.as_default():
        x = tf1.Variable(np.array([1.5, -2.0], np.float32))
        J_content = tf.reduce_sum(tf.square(x))
        J_style = tf.reduce_sum(x)
        J = None if j_none else costs.total_cost(J_content, J_style, alpha=alpha, beta=beta)
    sess = tf1.InteractiveSession(graph=graph)
    sess.run(x.initializer)
    return sess, {"J": J, "J_content": J_content, "J_style": J_style}


@pytest.mark.slow
@pytest.mark.parametrize(
    "alpha, beta, j_none, expected",
    [
        (
            40,
            10,
            False,
            "is not total_cost(J_content, J_style, alpha = 10, beta = 40): alpha and "
            "beta are swapped",
        ),
        (
            10,
            4,
            False,
            "is not total_cost(J_content, J_style, alpha = 10, beta = 40); fix its cell",
        ),
        (10, 40, True, "J is still None: compute J = total_cost(J_content, J_style, alpha = 10"),
        (10, 40, False, None),
    ],
)
def test_the_J_of_section_4_is_checked_with_model_nn(alpha, beta, j_none, expected):
    sess, section_4 = _section_4(alpha, beta, j_none)
    try:
        namespace = dict(section_4, tf=tf1, np=np, CONFIG=CONFIG, save_image=save_image)
        verdict = check_model_nn(_model_nn(namespace=namespace))
    finally:
        sess.close()
    if expected is None:
        assert verdict.startswith("model_nn: PASS"), verdict
    else:
        assert verdict.startswith("model_nn: FAIL - ") and expected in verdict, verdict
    assert namespace["J"] is section_4["J"]  # the notebook's globals are back


@pytest.mark.slow
def test_reading_a_layer_instead_of_the_input_is_told_so():
    verdict = check_model_nn(
        _changed(
            "generated_image = sess.run(model['input'])",
            "generated_image = sess.run(model['conv4_2'])",
        )
    )
    assert verdict == (
        "model_nn: FAIL - reads model['conv4_2'], a layer: the generated image is the network's "
        "input, read it with sess.run(model['input'])"
    )


@pytest.mark.parametrize(
    "line, hint",
    [
        ("sess.run(tf.global_variables_initializer())", "Initialise the graph's variables"),
        ("sess.run(model['input'].assign(input_image))", "Make input_image (the noisy start)"),
        ("sess.run(train_step)", "One optimisation step"),
        ("generated_image = sess.run(model['input'])", "The image after this step"),
    ],
)
def test_a_blank_left_as_none_is_named(line, hint):
    blank = "generated_image = None" if line.startswith("generated_image") else "sess.run(None)"
    verdict = check_model_nn(_changed(line, blank))
    assert verdict.startswith(f"model_nn: FAIL - a blank is still None: {hint}"), verdict
    assert verdict.endswith(f"({blank}); write that line"), verdict
