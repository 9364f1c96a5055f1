"""Self-check of the notebook's `model_nn`: its loop against `nst_utils.training.optimize`.

`model_nn(sess, input_image, num_iterations)` reads the notebook's globals `model`,
`train_step`, `J`, `J_content` and `J_style`, and saves under `CONFIG.OUTPUT_DIR`. The check
lends it a tiny random-weight network with the lesson's costs and Adam at 2.0 (through those
globals, restored afterwards, and a temporary output folder), runs `optimize` and then model_nn
on that graph from the same image, each in a fresh session, and compares the two bit for bit:
the returned image, the files saved and the cost report. The costs are the notebook's own cost
functions once their self-checks pass (the students' build holds no other), else the package's.
Before that, the notebook's own `J` of section 4, when it is there, must be
10 J_content + 40 J_style, and no blank of model_nn may still be None.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import inspect
import io
import tempfile
import textwrap
import types
from pathlib import Path

import numpy as np
import tensorflow as tf

from ..config import CONFIG
from ..training import Hooks, optimize
from ..errors import NSTError
from .blanks import is_untouched_blank

tf1 = tf.compat.v1

#: Iterations of the check: the report and snapshots of iterations 0 and 20, as in the original.
ITERATIONS = 21
SAVE_EVERY = 20
INPUT_SHAPE = (1, 6, 8, 3)
#: (layer, output channels) of the tiny network; each layer after the first follows a 2x2 pool.
LAYERS = (("conv1_1", 4), ("conv2_1", 5))
GLOBALS = ("model", "train_step", "J", "J_content", "J_style")
#: The cost functions the lesson graph is built with: the notebook's, or the package's.
COST_FUNCTIONS = ("compute_content_cost", "compute_style_cost", "total_cost")
#: The graded ones among them, whose self-check must pass before the loop check uses them.
GRADED_COSTS = ("compute_content_cost", "compute_layer_style_cost", "total_cost")
#: The weights of section 4's total cost, as the notebook's text gives them.
ALPHA, BETA = 10, 40
_MISSING = object()
NOT_IMPLEMENTED = (
    "model_nn: not implemented yet: write your code between ### START CODE HERE ### "
    "and ### END CODE HERE ###"
)


def tiny_model(seed: int = 0) -> dict:
    """A two-layer stand-in for VGG-19 in the current default graph: 'input' and LAYERS."""
    rng = np.random.default_rng(seed)
    model = {"input": tf1.Variable(np.zeros(INPUT_SHAPE, np.float32), name="input")}
    prev, channels = model["input"], INPUT_SHAPE[3]
    for i, (name, out) in enumerate(LAYERS):
        if i:
            prev = tf.nn.avg_pool2d(prev, ksize=2, strides=2, padding="SAME")
        kernel = rng.normal(0, np.sqrt(2.0 / (9 * channels)), (3, 3, channels, out)).astype(
            np.float32
        )
        bias = rng.normal(0, 0.1, out).astype(np.float32)
        conv = tf.nn.conv2d(prev, tf.constant(kernel), strides=1, padding="SAME")
        prev = model[name] = tf.nn.relu(tf.nn.bias_add(conv, tf.constant(bias)), name=name)
        channels = out
    return model


def lesson_graph(costs, seed: int = 0):
    """(graph, session, globals for model_nn, start image) on the tiny network.

    As in the notebook: the content cost on the last layer, the style cost over both layers
    (0.5 each), J = 10 J_content + 40 J_style, and Adam at 2.0; `costs` holds the functions
    compute_content_cost, compute_style_cost and total_cost.
    """
    rng = np.random.default_rng(seed)
    content, style, start = (rng.normal(0, 50, INPUT_SHAPE).astype(np.float32) for _ in range(3))
    graph = tf.Graph()
    with graph.as_default():
        sess = tf1.Session(graph=graph)
        model = tiny_model(seed)
        content_layer = LAYERS[-1][0]
        sess.run(model["input"].assign(content))
        J_content = costs.compute_content_cost(sess.run(model[content_layer]), model[content_layer])
        sess.run(model["input"].assign(style))
        J_style = costs.compute_style_cost(model, [(name, 0.5) for name, _ in LAYERS], sess=sess)
        J = costs.total_cost(J_content, J_style, alpha=ALPHA, beta=BETA)
        train_step = tf1.train.AdamOptimizer(2.0).minimize(J)
    names = {
        "model": model,
        "train_step": train_step,
        "J": J,
        "J_content": J_content,
        "J_style": J_style,
    }
    return graph, sess, names, start


@contextlib.contextmanager
def _lent(namespace: dict, values: dict):
    """`namespace` holds `values` inside the block, and what it held before afterwards."""
    saved = {name: namespace.get(name, _MISSING) for name in values}
    namespace.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is _MISSING:
                namespace.pop(name, None)
            else:
                namespace[name] = value


@contextlib.contextmanager
def _output_dir(configs, folder: str):
    saved = [(config, config.OUTPUT_DIR) for config in configs]
    for config, _ in saved:
        config.OUTPUT_DIR = folder
    try:
        yield
    finally:
        for config, value in saved:
            config.OUTPUT_DIR = value


def _report_line(i, total, content, style) -> str:
    """The original's report of iteration i, from costs that were float32 in the session."""
    return (
        f"Iteration {i} :\ntotal cost = {str(np.float32(total))}\n"
        f"content cost = {str(np.float32(content))}\nstyle cost = {str(np.float32(style))}\n"
    )


def _files(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _lesson_costs(namespace: dict, check_line=None):
    """The cost functions of the lesson graph, or a FAIL line: the notebook's own once their
    self-checks pass (`check_line(fn)`, the line check() prints; none: taken as they are),
    else (outside a notebook) the package's reference."""
    own = {name: namespace.get(name) for name in COST_FUNCTIONS}
    if all(isinstance(fn, types.FunctionType) for fn in own.values()):
        for name in GRADED_COSTS if check_line else ():
            fn = namespace.get(name)
            line = check_line(fn) if callable(fn) else f"{name} is not defined"
            if not line.startswith(f"{name}: PASS"):
                return (
                    f"model_nn: FAIL - check(model_nn) builds its test network with your cost "
                    f"functions: make check({name}) pass first ({line})"
                )
        return types.SimpleNamespace(**own)
    try:
        costs = importlib.import_module("..costs", __package__)
    except ImportError:  # the students' build: no reference costs
        return (
            "model_nn: FAIL - check(model_nn) builds its test network with the notebook's "
            "compute_content_cost, compute_style_cost and total_cost: run their cells first"
        )
    return costs


def _blank_left(source: str):
    """'<hint> (<blank>)' of the first blank of `source` still as the student got it, or None."""
    from .blanks import _blank_statement, _statements, code_blocks

    lines = source.split("\n")
    try:
        blocks = code_blocks(source)
    except NSTError:
        return None
    for first, last in blocks:
        statements = _statements(lines[first:last]) or []
        text = textwrap.dedent("\n".join(lines[first:last]))
        for top, _bottom, node in statements:
            written = ast.get_source_segment(text, node)
            if written != _blank_statement(node, text):
                continue
            above = lines[: first + top]
            hint = next(
                (
                    ln.strip().lstrip("#").strip()
                    for ln in reversed(above)
                    if ln.strip().startswith("#") and not ln.strip().startswith("###")
                ),
                "",
            )
            return f"{hint} ({written})" if hint else written
    return None


def _blank_verdict(model_nn):
    """A FAIL line naming a blank of model_nn still left as None, or None."""
    try:
        source = inspect.getsource(model_nn)
    except (OSError, TypeError):
        return None
    if is_untouched_blank(source):
        return NOT_IMPLEMENTED
    blank = _blank_left(source)
    if blank is None:
        return None
    return f"model_nn: FAIL - a blank is still None: {blank}; write that line"


def _total_cost_verdict(namespace: dict):
    """A FAIL line when the notebook's J of section 4 is not ALPHA J_content + BETA J_style,
    evaluated in its default session; None when it is, or when there is none to evaluate."""
    J, J_content, J_style = (namespace.get(name) for name in ("J", "J_content", "J_style"))
    if not all(isinstance(t, tf.Tensor) for t in (J_content, J_style)):
        return None
    if J is None:
        return (
            "model_nn: FAIL - J is still None: compute J = total_cost(J_content, J_style, "
            f"alpha = {ALPHA}, beta = {BETA}) in its cell of section 4"
        )
    if not isinstance(J, tf.Tensor) or J.graph is not J_content.graph:
        return None
    sess = tf1.get_default_session()
    if sess is None or sess.graph is not J.graph:
        return None
    try:
        total, content, style = (float(v) for v in sess.run([J, J_content, J_style]))
    except tf.errors.OpError:
        return None
    if np.isclose(total, ALPHA * content + BETA * style, rtol=1e-4):
        return None
    swapped = np.isclose(total, BETA * content + ALPHA * style, rtol=1e-4)
    return (
        f"model_nn: FAIL - the J of section 4 is not total_cost(J_content, J_style, "
        f"alpha = {ALPHA}, beta = {BETA})"
        + (": alpha and beta are swapped" if swapped else "")
        + "; fix its cell and run the cells after it again"
    )


def check_model_nn(model_nn, check_line=None) -> str:
    """A one-line verdict on the notebook's model_nn: the reference loop's results, or what
    differs; first the notebook's J and model_nn's blanks. `check_line(fn)` gives check()'s
    line for a graded cost function, which must pass before the lesson is built on it."""
    if not isinstance(model_nn, types.FunctionType):
        got = type(model_nn).__name__
        return f"model_nn: FAIL - check() needs the function model_nn itself, got {got}"
    namespace = model_nn.__globals__
    early = _blank_verdict(model_nn) or _total_cost_verdict(namespace)
    if early:
        return early
    costs = _lesson_costs(namespace, check_line)
    if isinstance(costs, str):
        return costs
    graph, sess, names, start = lesson_graph(costs)
    notebook_config = namespace.get("CONFIG", CONFIG)
    configs = [CONFIG] + (
        [notebook_config]
        if notebook_config is not CONFIG and hasattr(notebook_config, "OUTPUT_DIR")
        else []
    )
    # model_nn gets a session of its own, so that nothing the reference run did (initialising
    # the variables, for one) can hide a missing line.
    own = tf1.Session(graph=graph)
    with sess, own, tempfile.TemporaryDirectory() as folder:
        mine, reference = Path(folder) / "model_nn", Path(folder) / "optimize"
        mine.mkdir()
        lines = []
        # first, so that model_nn's run adds no node to a graph already run
        with graph.as_default():
            expected = optimize(
                sess,
                names["model"],
                names["train_step"],
                (names["J"], names["J_content"], names["J_style"]),
                start.copy(),
                num_iterations=ITERATIONS,
                save_every=SAVE_EVERY,
                output_dir=reference,
                hooks=Hooks(report=lambda *values: lines.append(_report_line(*values))),
            )
        printed = io.StringIO()
        try:
            with (
                graph.as_default(),
                own.as_default(),
                _lent(model_nn.__globals__, names),
                _output_dir(configs, str(mine) + "/"),
                contextlib.redirect_stdout(printed),
            ):
                returned = model_nn(own, start.copy(), num_iterations=ITERATIONS)
        except NotImplementedError:
            return NOT_IMPLEMENTED
        except tf.errors.FailedPreconditionError:
            return (
                "model_nn: FAIL - a variable was read before it was initialised: first run "
                "tf.global_variables_initializer() in the session"
            )
        except KeyError as exc:
            layer = exc.args[0] if exc.args else None
            if isinstance(layer, str) and layer != "input":
                return (
                    f"model_nn: FAIL - reads model[{layer!r}], a layer: the generated image is "
                    f"the network's input, read it with sess.run(model['input'])"
                )
            return f"model_nn: FAIL - raises KeyError: {layer!r}"
        except Exception as exc:  # the student's code: any error becomes the verdict
            if _untouched(model_nn):
                return NOT_IMPLEMENTED
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return f"model_nn: FAIL - raises {type(exc).__name__}: {message[:200]}"
        return _verdict(
            returned,
            expected.image,
            start,
            printed.getvalue(),
            "".join(lines),
            _files(mine),
            _files(reference),
            sess,
            names,
        )


def _untouched(model_nn) -> bool:
    """True when model_nn's source is still the blank the student notebook gives."""
    try:
        return is_untouched_blank(inspect.getsource(model_nn))
    except (OSError, TypeError):
        return False


def _verdict(returned, expected, start, printed, report, files, expected_files, sess, names) -> str:
    if not isinstance(returned, np.ndarray) or returned.shape != expected.shape:
        what = (
            type(returned).__name__
            if not isinstance(returned, np.ndarray)
            else f"shape {returned.shape}"
        )
        return (
            f"model_nn: FAIL - returns {what}, not the generated image: return generated_image, "
            f"the value of model['input'] read in the session"
        )
    if np.array_equal(returned, start):
        return (
            "model_nn: FAIL - the image never changed: run train_step in the session at every "
            "iteration, and read model['input'] after it"
        )
    if not np.array_equal(returned, expected):
        if _from_zeros(sess, names, returned):
            return (
                "model_nn: FAIL - the loop started from zeros, not from input_image: assign "
                "input_image to model['input'] before the loop"
            )
        gap = float(np.max(np.abs(returned.astype(np.float64) - expected)))
        return (
            f"model_nn: FAIL - after {ITERATIONS} iterations the image differs from the "
            f"reference loop's (largest difference {gap:.3g}): one initialisation, one "
            f"assignment, one train_step per iteration, then read model['input']"
        )
    if printed != report:
        return (
            "model_nn: FAIL - the image is right, but the cost report differs from the "
            "original's (every 20 iterations: the iteration, total, content and style costs)"
        )
    if sorted(files) != sorted(expected_files):
        return (
            f"model_nn: FAIL - the image is right, but it saved {sorted(files)} where "
            f"{sorted(expected_files)} were expected, in CONFIG.OUTPUT_DIR"
        )
    if any(files[name] != expected_files[name] for name in files):
        return "model_nn: FAIL - the image is right, but a saved file differs from the reference's"
    return (
        f"model_nn: PASS - after {ITERATIONS} iterations the image, the report and the saved "
        f"files are those of nst_utils.training.optimize, bit for bit"
    )


def _from_zeros(sess, names, returned) -> bool:
    """True if `returned` is what the loop gives from the all-zero image (no assignment)."""
    with sess.graph.as_default():
        result = optimize(
            sess,
            names["model"],
            names["train_step"],
            (names["J"], names["J_content"], names["J_style"]),
            np.zeros(INPUT_SHAPE, np.float32),
            num_iterations=ITERATIONS,
            output_dir=False,
            hooks=Hooks(report=None),
        )
    return np.array_equal(returned, result.image)
