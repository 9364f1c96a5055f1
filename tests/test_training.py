"""The shared optimisation loop: Adam lowers the cost, snapshots are saved, stops keep good work."""

import imageio.v3 as iio
import numpy as np
import pytest
import tensorflow as tf

from nst_utils import costs
from nst_utils.config import STYLE_LAYERS
from nst_utils.images import generate_noise_image, load_image, reshape_and_normalize_image
from nst_utils.run_record import FINAL_IMAGE
from nst_utils.training import Hooks, optimize
from nst_utils.vgg import load_vgg_model

tf1 = tf.compat.v1


def build_transfer(sess, config):
    """The notebook's steps: model, content cost on conv4_2, style cost, total, Adam(2.0)."""
    model = load_vgg_model(config=config)
    content = reshape_and_normalize_image(load_image(config.content_image, config=config))
    style = reshape_and_normalize_image(load_image(config.style_image, config=config))
    sess.run(tf1.global_variables_initializer())
    sess.run(model["input"].assign(content))
    a_C = sess.run(model["conv4_2"])
    J_content = costs.compute_content_cost(a_C, model["conv4_2"])
    sess.run(model["input"].assign(style))
    J_style = costs.compute_style_cost(model, STYLE_LAYERS)
    J = costs.total_cost(J_content, J_style, alpha=10, beta=40)
    train_step = tf1.train.AdamOptimizer(2.0).minimize(J)
    return model, train_step, (J, J_content, J_style), content


@pytest.mark.slow
def test_adam_steps_lower_the_total_cost_and_save_the_snapshots(sess, small_config, capsys):
    model, train_step, cost_tensors, content = build_transfer(sess, small_config)
    start = generate_noise_image(content, 0.6, seed=0)
    result = optimize(
        sess,
        model,
        train_step,
        cost_tensors,
        start,
        num_iterations=6,
        save_every=3,
        output_dir=small_config.output_dir,
    )
    totals = [h[0] for h in result.history]
    assert result.stopped is None and result.iterations == 6 and len(totals) == 6
    assert totals[-1] < 0.9 * totals[0]
    assert all(b < a for a, b in zip(totals, totals[1:]))
    for name in ("0.png", "3.png", FINAL_IMAGE):
        pixels = iio.imread(small_config.output_dir / name)
        assert pixels.shape == (48, 64, 3)
    assert sorted(p.name for p in small_config.output_dir.iterdir()) == [
        "0.png",
        "3.png",
        FINAL_IMAGE,
    ]
    printed = capsys.readouterr().out
    assert "Iteration 0 :\ntotal cost = " in printed and "Iteration 3 :" in printed
    # The returned image is the variable's final value and differs from the start.
    np.testing.assert_array_equal(result.image, sess.run(model["input"]))
    assert np.abs(result.image - start).max() > 1.0


def toy_problem(values, cost_of):
    """A one-variable 'model' whose cost is cost_of(x), for exercising the loop's edges."""
    x = tf1.Variable(np.zeros((1, 2, 2, 3)), dtype="float32")
    J = cost_of(x)
    # The cost reads the variable's own buffer, which Adam's update overwrites in place: the
    # update waits for the cost, as VGG's makes it wait (its costs come from activations the
    # gradient needs). Without this, a busy machine may run the update first.
    with tf1.control_dependencies([J]):
        step = tf1.train.AdamOptimizer(2.0).minimize(J)
    return ({"input": x}, step, (J, J, J), np.full((1, 2, 2, 3), values))


@pytest.mark.slow
def test_a_non_finite_cost_stops_and_keeps_the_last_good_image(sess, tmp_path):
    # sqrt of x: Adam's first step of about -2 takes x from 1 to -1, where the cost is NaN.
    model, step, cost_tensors, start = toy_problem(1.0, lambda x: tf.reduce_sum(tf.sqrt(x)))
    result = optimize(
        sess,
        model,
        step,
        cost_tensors,
        start,
        num_iterations=5,
        save_every=0,
        output_dir=tmp_path,
        hooks=Hooks(report=None),
    )
    assert result.stopped == "non-finite" and result.iterations == 1
    np.testing.assert_allclose(result.image, start)
    np.testing.assert_allclose(sess.run(model["input"]), start)  # restored in the session too
    assert (tmp_path / FINAL_IMAGE).exists()


@pytest.mark.slow
def test_should_stop_ends_the_run_early_with_the_current_image(sess, tmp_path):
    model, step, cost_tensors, start = toy_problem(3.0, lambda x: tf.reduce_sum(tf.square(x)))
    calls = []
    result = optimize(
        sess,
        model,
        step,
        cost_tensors,
        start,
        num_iterations=50,
        save_every=0,
        output_dir=False,
        hooks=Hooks(
            report=None,
            should_stop=lambda: len(calls) >= 2,
            on_step=lambda i, *c: calls.append((i, c)),
        ),
    )
    assert result.stopped == "interrupted" and result.iterations == 2
    assert [i for i, _ in calls] == [0, 1]
    assert calls[0][1][0] == pytest.approx(12 * 9.0)  # cost of the start image, 12 pixels of 3
    current = sess.run(model["input"])
    np.testing.assert_allclose(result.image, current)  # the latest image, after two steps
    assert np.abs(current - start).max() > 1.0
    assert not result.saved


def test_the_report_prints_costs_as_the_original_did(capsys):
    from nst_utils.training import print_report

    print_report(0, 5050350000.0, 7877.67041015625, np.float64(126257000.0))
    assert capsys.readouterr().out == (
        "Iteration 0 :\ntotal cost = 5.05035e+09\n"
        "content cost = 7877.67\nstyle cost = 1.26257e+08\n"
    )


@pytest.mark.slow
def test_a_snapshot_is_reported_with_the_costs_of_its_own_image(sess, small_config, tmp_path):
    # The costs reported after step i come from step i + 1's forward pass (or, after the last
    # step, from one pass of their own); they must be the costs of the image saved as i.png.
    model, train_step, cost_tensors, content = build_transfer(sess, small_config)
    start = generate_noise_image(content, 0.6, seed=0)
    reports, images = [], {}
    result = optimize(
        sess,
        model,
        train_step,
        cost_tensors,
        start,
        num_iterations=5,
        save_every=2,
        output_dir=tmp_path,
        hooks=Hooks(
            report=lambda i, *c: reports.append((i, c)),
            save=lambda path, image: images.setdefault(path.name, image),
        ),
    )
    assert [i for i, _ in reports] == [0, 2, 4]
    assert result.history[1] == reports[0][1] and result.history[3] == reports[1][1]
    for i, reported in reports:
        sess.run(model["input"].assign(images[f"{i}.png"]))
        np.testing.assert_allclose(sess.run(cost_tensors), reported, rtol=1e-5)
    np.testing.assert_array_equal(images["4.png"], images[FINAL_IMAGE])


@pytest.mark.slow
def test_a_checkpoint_never_keeps_a_state_whose_image_is_not_finite(sess, tmp_path):
    # sqrt(relu(x)): Adam's first step takes x from 1 to about -1, where the cost is finite (0)
    # but the gradient is not, so the second step leaves NaN in the variable. The snapshot of
    # step 0 is saved then; the state a checkpoint would keep is the session's, NaN.
    model, step, cost_tensors, start = toy_problem(
        1.0, lambda x: tf.reduce_sum(tf.sqrt(tf.nn.relu(x)))
    )
    kept = []
    result = optimize(
        sess,
        model,
        step,
        cost_tensors,
        start,
        num_iterations=5,
        save_every=1,
        output_dir=tmp_path,
        hooks=Hooks(
            report=None,
            save=lambda path, image: path,
            checkpoint=lambda result: kept.append(sess.run(model["input"])),
        ),
    )
    assert result.stopped == "non-finite" and [p.name for p in result.saved][:1] == ["0.png"]
    assert all(np.isfinite(image).all() for image in kept)
