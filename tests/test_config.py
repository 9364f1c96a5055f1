"""CONFIG is the original class with the original values; DEFAULTS, the same values as run settings."""

from pathlib import Path

import numpy as np
import pytest

from nst_utils.config import CONFIG, DEFAULTS, PROJECT_ROOT, STYLE_LAYERS, Config
from nst_utils.errors import ConfigError


def test_original_values():
    assert (CONFIG.IMAGE_WIDTH, CONFIG.IMAGE_HEIGHT, CONFIG.COLOR_CHANNELS) == (400, 300, 3)
    assert CONFIG.NOISE_RATIO == 0.6
    np.testing.assert_array_equal(CONFIG.MEANS, np.array([123.68, 116.779, 103.939]).reshape(1, 1, 1, 3))
    assert CONFIG.VGG_MODEL == str(PROJECT_ROOT / "pretrained-model" / "imagenet-vgg-verydeep-19.mat")
    assert CONFIG.CONTENT_IMAGE == str(PROJECT_ROOT / "images" / "louvre.jpg")
    assert CONFIG.STYLE_IMAGE == str(PROJECT_ROOT / "images" / "sandstone.jpg")
    assert CONFIG.OUTPUT_DIR + "0.png" == str(PROJECT_ROOT / "output" / "0.png")
    assert DEFAULTS.vgg_model == PROJECT_ROOT / "pretrained-model" / "imagenet-vgg-verydeep-19.mat"
    assert DEFAULTS.output_dir == PROJECT_ROOT / "output"
    assert (DEFAULTS.alpha, DEFAULTS.beta, DEFAULTS.learning_rate) == (10, 40, 2.0)
    assert (DEFAULTS.num_iterations, DEFAULTS.save_every, DEFAULTS.content_layer) == (160, 20, "conv4_2")
    assert STYLE_LAYERS == (("conv1_1", 0.2), ("conv2_1", 0.2), ("conv3_1", 0.2),
                            ("conv4_1", 0.2), ("conv5_1", 0.2))


def test_replace_overrides_and_leaves_the_original_alone(tmp_path):
    cfg = DEFAULTS.replace(image_width=200, image_height=150, vgg_model=str(tmp_path / "w.mat"),
                         output_dir=tmp_path)
    assert (cfg.image_width, cfg.image_height) == (200, 150)
    assert cfg.vgg_model == tmp_path / "w.mat" and isinstance(cfg.vgg_model, Path)
    assert DEFAULTS.image_width == 400


@pytest.mark.parametrize("changes, message", [
    ({"image_width": 0}, "image_width must be a positive whole number"),
    ({"image_height": 2.5}, "image_height must be a positive whole number"),
    ({"noise_ratio": 1.5}, r"noise_ratio must lie in \[0, 1\]"),
    ({"color_channels": 4}, "color_channels must be 3"),
    ({"widht": 3}, "unknown setting"),
])
def test_bad_settings_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        DEFAULTS.replace(**changes)


def test_from_env_reads_the_nst_variables(tmp_path):
    env = {"NST_WEIGHTS": str(tmp_path / "v.mat"), "NST_IMAGE_WIDTH": "64",
           "NST_IMAGE_HEIGHT": "48", "NST_ITERATIONS": "2", "NST_OUTPUT_DIR": str(tmp_path),
           "NST_SAVE_EVERY": "1", "UNRELATED": "x"}
    cfg = Config.from_env(env)
    assert (cfg.vgg_model, cfg.image_width, cfg.image_height) == (tmp_path / "v.mat", 64, 48)
    assert (cfg.num_iterations, cfg.output_dir, cfg.save_every) == (2, tmp_path, 1)
    assert Config.from_env({}) == DEFAULTS


def test_from_env_refuses_a_non_number():
    with pytest.raises(ConfigError, match="NST_ITERATIONS must be a whole number"):
        Config.from_env({"NST_ITERATIONS": "many"})


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
