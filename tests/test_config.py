"""CONFIG is the original class with the original values, read by the helpers when called."""

import os

import numpy as np
import pytest

from nst_utils.config import (
    CONFIG,
    CONFIG_ENVIRONMENT,
    PROJECT_ROOT,
    STYLE_LAYERS,
    apply_environment,
)
from nst_utils.errors import ConfigError


def _original(attribute, value):
    """`value`, or what the environment gives `attribute` if its variable is set here."""
    var = next(v for v, a in CONFIG_ENVIRONMENT.items() if a == attribute)
    given = os.environ.get(var, "").strip()
    if not given:
        return value
    if attribute in ("IMAGE_WIDTH", "IMAGE_HEIGHT"):
        return int(given) if given.isdigit() else value
    return os.path.abspath(os.path.expanduser(given)) + (
        os.sep if attribute == "OUTPUT_DIR" else ""
    )


def test_original_values():
    assert (CONFIG.IMAGE_WIDTH, CONFIG.IMAGE_HEIGHT) == (
        _original("IMAGE_WIDTH", 400),
        _original("IMAGE_HEIGHT", 300),
    )
    assert CONFIG.COLOR_CHANNELS == 3
    assert CONFIG.NOISE_RATIO == 0.6
    np.testing.assert_array_equal(
        CONFIG.MEANS, np.array([123.68, 116.779, 103.939]).reshape(1, 1, 1, 3)
    )
    assert CONFIG.VGG_MODEL == _original(
        "VGG_MODEL", str(PROJECT_ROOT / "pretrained-model" / "imagenet-vgg-verydeep-19.mat")
    )
    assert CONFIG.CONTENT_IMAGE == _original(
        "CONTENT_IMAGE", str(PROJECT_ROOT / "images" / "louvre.jpg")
    )
    assert CONFIG.STYLE_IMAGE == _original(
        "STYLE_IMAGE", str(PROJECT_ROOT / "images" / "sandstone.jpg")
    )
    assert CONFIG.OUTPUT_DIR == _original("OUTPUT_DIR", str(PROJECT_ROOT / "output") + os.sep)
    assert STYLE_LAYERS == (
        ("conv1_1", 0.2),
        ("conv2_1", 0.2),
        ("conv3_1", 0.2),
        ("conv4_1", 0.2),
        ("conv5_1", 0.2),
    )


@pytest.fixture
def restore_config():
    saved = {k: v for k, v in vars(CONFIG).items() if k.isupper()}
    yield CONFIG
    for k, v in saved.items():
        setattr(CONFIG, k, v)


def test_config_assignments_reach_the_helpers(restore_config):
    from nst_utils.images import generate_noise_image, load_image, reshape_and_normalize_image

    CONFIG.IMAGE_WIDTH, CONFIG.IMAGE_HEIGHT = 40, 30
    assert load_image(CONFIG.CONTENT_IMAGE).shape == (30, 40, 3)
    CONFIG.MEANS = np.array([1.0, 2.0, 3.0]).reshape((1, 1, 1, 3))
    normalized = reshape_and_normalize_image(np.full((2, 2, 3), 10.0))
    np.testing.assert_array_equal(normalized[0, 0, 0], [9.0, 8.0, 7.0])
    CONFIG.NOISE_RATIO = 0.0
    content = np.full((1, 3, 4, 3), 5.0, dtype=np.float32)
    np.testing.assert_array_equal(generate_noise_image(content), content)


def test_the_environment_reaches_config(tmp_path, monkeypatch):
    class Original:
        IMAGE_WIDTH, IMAGE_HEIGHT, VGG_MODEL, OUTPUT_DIR = 400, 300, "/w.mat", "/out/"
        CONTENT_IMAGE, STYLE_IMAGE = "/c.jpg", "/s.jpg"

    monkeypatch.chdir(tmp_path)
    apply_environment(
        Original,
        {
            "NST_WEIGHTS": "weights/v.mat",
            "NST_OUTPUT_DIR": str(tmp_path / "o"),
            "NST_IMAGE_WIDTH": "64",
            "NST_IMAGE_HEIGHT": " 48 ",
            "NST_CONTENT_IMAGE": "",
            "NST_ITERATIONS": "2",
        },
    )
    assert Original.VGG_MODEL == str(tmp_path / "weights" / "v.mat")
    assert Original.OUTPUT_DIR + "0.png" == str(tmp_path / "o" / "0.png")
    assert (Original.IMAGE_WIDTH, Original.IMAGE_HEIGHT) == (64, 48)
    assert (Original.CONTENT_IMAGE, Original.STYLE_IMAGE) == ("/c.jpg", "/s.jpg")


def test_a_bad_size_in_the_environment_is_named_and_the_rest_applied():
    class Original:
        IMAGE_WIDTH, IMAGE_HEIGHT, VGG_MODEL = 400, 300, "/w.mat"

    with pytest.raises(
        ConfigError, match="NST_IMAGE_WIDTH must be a positive whole number, got '-3'"
    ):
        apply_environment(
            Original,
            {"NST_IMAGE_WIDTH": "-3", "NST_IMAGE_HEIGHT": "0x", "NST_WEIGHTS": "/other.mat"},
        )
    assert (Original.IMAGE_WIDTH, Original.IMAGE_HEIGHT, Original.VGG_MODEL) == (
        400,
        300,
        "/other.mat",
    )


def test_star_import_gives_the_original_modules_names_and_no_solution():
    namespace = {}
    exec("from nst_utils import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == [
        "CONFIG",
        "generate_noise_image",
        "load_vgg_model",
        "reshape_and_normalize_image",
        "save_image",
    ]
    import nst_utils

    for name in (
        "compute_content_cost",
        "gram_matrix",
        "compute_layer_style_cost",
        "compute_style_cost",
        "total_cost",
    ):
        assert not hasattr(nst_utils, name), name


def test_config_assignments_reach_the_model_and_the_saved_image(restore_config, vgg_mat, tmp_path):
    import imageio.v3 as iio
    import tensorflow as tf

    from nst_utils.images import save_image
    from nst_utils.vgg import load_vgg_model

    CONFIG.VGG_MODEL, CONFIG.IMAGE_WIDTH, CONFIG.IMAGE_HEIGHT = str(vgg_mat), 32, 24
    with tf.Graph().as_default():
        model = (
            load_vgg_model()
        )  # the original's load_vgg_model(path) also reads only CONFIG's size
        assert model["input"].get_shape().as_list() == [1, 24, 32, 3]
        assert load_vgg_model(CONFIG.VGG_MODEL)["conv5_1"].get_shape().as_list() == [1, 2, 2, 512]
    CONFIG.MEANS = np.array([10.0, 20.0, 30.0]).reshape((1, 1, 1, 3))
    save_image(tmp_path / "x.png", np.ones((1, 2, 3, 3)))
    np.testing.assert_array_equal(iio.imread(tmp_path / "x.png")[0, 0], [11, 21, 31])
