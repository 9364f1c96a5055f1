"""The published values of the graded functions come back exactly on TF2."""

import json
import subprocess
import sys

import numpy as np
import pytest

from nst_utils import reference
from nst_utils.cli import main
from nst_utils.config import PROJECT_ROOT
from limits import HANG_SECONDS

# The gram matrix of the original test input A (3, 2), as TF1 printed it.
ORIGINAL_GRAM = [
    [6.422305, -4.429122, -2.096682],
    [-4.429122, 19.465837, 19.563871],
    [-2.096682, 19.563871, 20.686462],
]


def check_published(values):
    assert values["compute_content_cost"] == pytest.approx(6.76559, abs=1e-5)
    assert values["compute_layer_style_cost"] == pytest.approx(9.19028, abs=1e-5)
    assert abs(values["total_cost"] - 35.34667875478276) <= 1e-12
    assert np.allclose(values["gram_matrix"], ORIGINAL_GRAM, atol=1e-5)


def test_reference_values_equal_the_published_ones():
    check_published(reference.reference_values())


def test_gram_matrix_is_A_times_A_transposed_of_the_legacy_draw():
    A = reference.reference_inputs("gram")["A"]
    assert A.shape == (3, 2)
    gram = reference.reference_values()["gram_matrix"]
    np.testing.assert_allclose(gram, A.astype(np.float64) @ A.T.astype(np.float64), rtol=1e-6)


def test_plain_tf2_draws_differ_which_is_why_legacy_seeds_are_needed():
    import tensorflow as tf

    tf1 = tf.compat.v1
    with tf.Graph().as_default() as graph, tf1.Session(graph=graph) as sess:
        tf1.set_random_seed(1)
        a = tf1.random_normal([1, 4, 4, 3], mean=1, stddev=4)
        b = tf1.random_normal([1, 4, 4, 3], mean=1, stddev=4)
        plain = sess.run(tf.reduce_sum(tf.square(a - b)) / (4 * 4 * 4 * 3))
    assert abs(plain - 6.76559) > 0.1  # TF2's own op seeds: 7.6410 per the facts
    inputs = reference.reference_inputs("content")
    legacy = np.sum((inputs["a_C"] - inputs["a_G"]) ** 2) / (4 * 4 * 4 * 3)
    assert legacy == pytest.approx(6.76559, abs=1e-5)


def test_layer_style_inputs_are_the_content_inputs():
    content, style = (
        reference.reference_inputs("content"),
        reference.reference_inputs("layer_style"),
    )
    np.testing.assert_array_equal(content["a_C"], style["a_S"])
    np.testing.assert_array_equal(content["a_G"], style["a_G"])


def test_unknown_reference_kind_is_refused():
    with pytest.raises(ValueError, match="kind must be"):
        reference.reference_inputs("nonsense")


def test_reference_command_prints_one_json_object(capsys):
    assert main(["reference"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    values = json.loads(out[0])
    assert set(values) == {
        "compute_content_cost",
        "gram_matrix",
        "compute_layer_style_cost",
        "total_cost",
    }
    check_published(values)


@pytest.mark.slow
def test_python_dash_m_reference_runs_in_a_fresh_process():
    done = subprocess.run(
        [sys.executable, "-m", "nst_utils", "reference"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=HANG_SECONDS,
    )
    assert done.returncode == 0, done.stderr
    check_published(json.loads(done.stdout))
