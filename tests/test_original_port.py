"""The original notebook's own code (tests/original_port.py) runs against nst_utils.

The port is run as a script in a separate process (it calls tf.disable_v2_behavior()), from a
temporary folder laid out like the project: images/ with the two images at 32x24,
pretrained-model/ with the random-weight fixture file, and output/. The size reaches the
helpers through CONFIG, here from NST_IMAGE_WIDTH and NST_IMAGE_HEIGHT.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tensorflow as tf

from nst_utils.config import PROJECT_ROOT
from nst_utils.images import load_image
from limits import HANG_SECONDS

pytestmark = pytest.mark.slow  # every test here starts processes or paints

PORT = Path(__file__).resolve().parent / "original_port.py"
WIDTH, HEIGHT = 32, 24
tf1 = tf.compat.v1


@pytest.fixture(scope="module")
def port_run(vgg_mat, tmp_path_factory):
    """(stdout, project folder) of the port, run once."""
    project = tmp_path_factory.mktemp("original-project")
    (project / "images").mkdir()
    for name in ("louvre.jpg", "sandstone.jpg"):
        iio.imwrite(
            project / "images" / name,
            load_image(PROJECT_ROOT / "images" / name, size=(WIDTH, HEIGHT)),
            quality=95,
        )
    (project / "pretrained-model").mkdir()
    (project / "pretrained-model" / "imagenet-vgg-verydeep-19.mat").symlink_to(vgg_mat)
    (project / "output").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NST_")}
    env.update(
        NST_IMAGE_WIDTH=str(WIDTH),
        NST_IMAGE_HEIGHT=str(HEIGHT),
        MPLBACKEND="agg",
        NST_WEIGHTS_CACHE_DIR=str(project / "cache"),
        PYTHONPATH=os.pathsep.join(
            [str(PROJECT_ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]
        ),
    )
    done = subprocess.run(
        [sys.executable, str(PORT)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_SECONDS,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, project


def _value(stdout: str, prefix: str) -> str:
    found = [line[len(prefix) :] for line in stdout.splitlines() if line.startswith(prefix)]
    assert len(found) == 1, f"{prefix!r} printed {len(found)} times"
    return found[0]


def _tf2_draws(shape):
    """Two tf.random_normal draws after set_random_seed(1), as TF2's compat.v1 makes them."""
    with tf.Graph().as_default(), tf1.Session() as sess:
        tf1.set_random_seed(1)
        first = tf1.random_normal(shape, mean=1, stddev=4)
        second = tf1.random_normal(shape, mean=1, stddev=4)
        return [np.asarray(v, np.float64) for v in sess.run([first, second])]


def _numpy_layer_style_cost(a_S, a_G):
    _, n_H, n_W, n_C = a_G.shape
    unrolled = [a.reshape(n_H * n_W, n_C).T for a in (a_S, a_G)]
    GS, GG = (u @ u.T for u in unrolled)
    return np.sum((GS - GG) ** 2) / (4 * n_C**2 * (n_H * n_W) ** 2)


def test_test_cells_print_tf2s_draws(port_run):
    stdout, _ = port_run
    # Without the legacy seeds, TF2 draws other inputs: the content cost is 7.6410217, not 6.76559.
    assert float(_value(stdout, "J_content = ")) == pytest.approx(7.6410217, abs=1e-5)
    a_S, a_G = _tf2_draws([1, 4, 4, 3])
    assert float(_value(stdout, "J_style_layer = ")) == pytest.approx(
        _numpy_layer_style_cost(a_S, a_G), rel=1e-5
    )
    assert float(_value(stdout, "J = ")) == 35.34667875478276


def test_gram_cell(port_run):
    stdout, _ = port_run
    block = stdout.split("GA = ", 1)[1].split("]]", 1)[0]
    printed = np.array([float(x) for x in re.findall(r"-?\d+\.\d*(?:e[-+]?\d+)?", block)]).reshape(
        3, 3
    )
    A = _tf2_draws([3, 2])[0]
    np.testing.assert_allclose(printed, A @ A.T, rtol=1e-5)


def test_model_nn_reports_and_saves_as_the_original(port_run):
    stdout, project = port_run
    iterations = [int(i) for i in re.findall(r"^Iteration (\d+) :$", stdout, re.MULTILINE)]
    assert iterations == list(range(0, 160, 20))
    for label in ("total cost = ", "content cost = ", "style cost = "):
        values = re.findall(f"^{label}(.+)$", stdout, re.MULTILINE)
        assert len(values) == 8
        # printed as numpy float32, as in the original: str() of the float32 value itself
        assert all(str(np.float32(v)) == v and np.isfinite(float(v)) for v in values), values
    saved = sorted(p.name for p in (project / "output").iterdir())
    assert saved == sorted([f"{i}.png" for i in range(0, 160, 20)] + ["generated_image.jpg"])
    assert iio.imread(project / "output" / "generated_image.jpg").shape == (HEIGHT, WIDTH, 3)
