"""L-BFGS through SciPy, driven by training.optimize: it minimises, and shares the bookkeeping."""

import imageio.v3 as iio
import numpy as np
import pytest
import tensorflow as tf

from nst_utils.lbfgs import LBFGS
from nst_utils.run_record import FINAL_IMAGE
from nst_utils.training import Hooks, optimize

tf1 = tf.compat.v1


def quadratic(sess, target):
    """A (1, 2, 3, 3) 'image' x with cost sum((x - target)^2) and two parts for the report."""
    x = tf1.Variable(np.zeros((1, 2, 3, 3)), dtype="float32")
    diff = x - tf.constant(target, dtype=tf.float32)
    content = tf.reduce_sum(tf.square(diff[..., :1]))
    style = tf.reduce_sum(tf.square(diff[..., 1:]))
    return {"input": x}, (content + style, content, style)


@pytest.mark.slow
def test_lbfgs_reaches_the_minimum_of_a_quadratic_and_saves_like_adam(sess, tmp_path, rng):
    target = rng.uniform(-50, 50, (1, 2, 3, 3))
    model, costs = quadratic(sess, target)
    step = LBFGS(sess, model["input"], costs)
    reports, steps = [], []
    result = optimize(
        sess,
        model,
        step,
        costs,
        np.zeros((1, 2, 3, 3)),
        num_iterations=5,
        save_every=2,
        output_dir=tmp_path,
        hooks=Hooks(report=lambda *a: reports.append(a), on_step=lambda *a: steps.append(a)),
    )
    start_cost = float(np.sum(target**2))
    assert result.history[0][0] == pytest.approx(start_cost, rel=1e-6)
    assert result.iterations == len(result.history) == len(steps) >= 1
    totals = [h[0] for h in result.history]
    assert all(b < a for a, b in zip(totals, totals[1:]))
    # A separable quadratic: L-BFGS lands on the target within a few iterations.
    np.testing.assert_allclose(result.image, target, atol=1e-2)
    np.testing.assert_allclose(sess.run(model["input"]), result.image)
    assert [r[0] for r in reports] == [i for i in range(result.iterations) if i % 2 == 0]
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([f"{i}.png" for i in range(0, result.iterations, 2)] + [FINAL_IMAGE])
    assert iio.imread(tmp_path / FINAL_IMAGE).shape == (2, 3, 3)


@pytest.mark.slow
def test_lbfgs_runs_exactly_the_iterations_asked_on_a_harder_problem(sess, rng):
    # A Rosenbrock-like valley over 18 numbers: many iterations are needed, so all 7 run.
    x = tf1.Variable(np.zeros((1, 2, 3, 3)), dtype="float32")
    flat = tf.reshape(x, [-1]) / 10.0
    J = tf.reduce_sum(
        100.0 * tf.square(flat[1:] - tf.square(flat[:-1])) + tf.square(1.0 - flat[:-1])
    )
    model, costs = {"input": x}, (J, J, J)
    result = optimize(
        sess,
        model,
        LBFGS(sess, x, costs),
        costs,
        np.full((1, 2, 3, 3), -12.0),
        num_iterations=7,
        save_every=0,
        output_dir=False,
        hooks=Hooks(report=None),
    )
    assert result.stopped is None and result.iterations == 7
    totals = [h[0] for h in result.history]
    assert all(b < a for a, b in zip(totals, totals[1:]))


@pytest.mark.slow
def test_lbfgs_stops_when_asked_and_on_a_non_finite_start(sess, tmp_path):
    model, costs = quadratic(sess, np.ones((1, 2, 3, 3)))
    asked = []
    result = optimize(
        sess,
        model,
        LBFGS(sess, model["input"], costs),
        costs,
        np.full((1, 2, 3, 3), 40.0),
        num_iterations=20,
        save_every=0,
        output_dir=False,
        hooks=Hooks(
            report=None, should_stop=lambda: len(asked) >= 1, on_step=lambda *a: asked.append(a)
        ),
    )
    assert result.stopped == "interrupted" and result.iterations == 1
    # sqrt of a negative number: the first cost is NaN, the start image is kept and saved.
    x = tf1.Variable(np.zeros((1, 2, 3, 3)), dtype="float32")
    J = tf.reduce_sum(tf.sqrt(x))
    start = np.full((1, 2, 3, 3), -1.0)
    result = optimize(
        sess,
        {"input": x},
        LBFGS(sess, x, (J, J, J)),
        (J, J, J),
        start,
        num_iterations=3,
        save_every=1,
        output_dir=tmp_path,
        hooks=Hooks(report=None),
    )
    assert result.stopped == "non-finite" and result.iterations == 0
    np.testing.assert_array_equal(result.image, start)
    assert [p.name for p in tmp_path.iterdir()] == [FINAL_IMAGE]
