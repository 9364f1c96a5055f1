"""Shared fixtures: VGG-19 `.mat` files with random weights, written at test time in each format.

The files have the real file's exact structure (fields, order, cell shapes, real conv kernel
shapes) but shrunk fc layers, so each is about 80 MB and takes well under a second to write.
Tests run in TF1 graph mode, as the notebook does.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from nst_utils.config import CONFIG  # noqa: E402
from nst_utils.synthetic_weights import FORMATS, write_vgg19_mat  # noqa: E402

tf.compat.v1.disable_eager_execution()

#: A small model size that keeps every pool meaningful (48 -> 24 -> 12 -> 6 -> 3 -> 2).
SMALL_WIDTH, SMALL_HEIGHT = 64, 48


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("weights")


@pytest.fixture(scope="session")
def vgg_mat_files(weights_dir):
    """{format: path} of a random-weights VGG-19 file in each format (seeds 0, 1, 2)."""
    return {fmt: write_vgg19_mat(weights_dir / f"vgg19-{fmt}.mat", fmt, seed=i)
            for i, fmt in enumerate(FORMATS)}


@pytest.fixture(scope="session")
def vgg_mat(vgg_mat_files):
    """The new-format random-weights file: the one most users download."""
    return vgg_mat_files["new"]


@pytest.fixture
def small_config(vgg_mat, tmp_path):
    """CONFIG at 64x48 on the fixture weights, writing into a temporary output folder."""
    return CONFIG.replace(image_width=SMALL_WIDTH, image_height=SMALL_HEIGHT,
                          vgg_model=vgg_mat, output_dir=tmp_path / "output")


@pytest.fixture
def sess():
    """A session on a fresh default graph, set as the default session."""
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session, session.as_default():
        yield session


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
