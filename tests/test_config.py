"""CONFIG keeps the original values; callers override without editing the package."""

from pathlib import Path

import numpy as np
import pytest

from nst_utils.config import CONFIG, PROJECT_ROOT, STYLE_LAYERS, Config
from nst_utils.errors import ConfigError


def test_original_values():
    assert (CONFIG.IMAGE_WIDTH, CONFIG.IMAGE_HEIGHT, CONFIG.COLOR_CHANNELS) == (400, 300, 3)
    assert CONFIG.NOISE_RATIO == 0.6
    np.testing.assert_array_equal(CONFIG.MEANS, np.array([123.68, 116.779, 103.939]).reshape(1, 1, 1, 3))
    assert CONFIG.vgg_model == PROJECT_ROOT / "pretrained-model" / "imagenet-vgg-verydeep-19.mat"
    assert CONFIG.output_dir == PROJECT_ROOT / "output"
    assert (CONFIG.alpha, CONFIG.beta, CONFIG.learning_rate) == (10, 40, 2.0)
    assert (CONFIG.num_iterations, CONFIG.save_every, CONFIG.content_layer) == (160, 20, "conv4_2")
    assert STYLE_LAYERS == (("conv1_1", 0.2), ("conv2_1", 0.2), ("conv3_1", 0.2),
                            ("conv4_1", 0.2), ("conv5_1", 0.2))


def test_replace_overrides_and_leaves_the_original_alone(tmp_path):
    cfg = CONFIG.replace(image_width=200, image_height=150, vgg_model=str(tmp_path / "w.mat"),
                         output_dir=tmp_path)
    assert (cfg.image_width, cfg.image_height) == (200, 150)
    assert cfg.vgg_model == tmp_path / "w.mat" and isinstance(cfg.vgg_model, Path)
    assert CONFIG.image_width == 400


@pytest.mark.parametrize("changes, message", [
    ({"image_width": 0}, "image_width must be a positive whole number"),
    ({"image_height": 2.5}, "image_height must be a positive whole number"),
    ({"noise_ratio": 1.5}, r"noise_ratio must lie in \[0, 1\]"),
    ({"color_channels": 4}, "color_channels must be 3"),
    ({"widht": 3}, "unknown setting"),
])
def test_bad_settings_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        CONFIG.replace(**changes)


def test_from_env_reads_the_nst_variables(tmp_path):
    env = {"NST_WEIGHTS": str(tmp_path / "v.mat"), "NST_IMAGE_WIDTH": "64",
           "NST_IMAGE_HEIGHT": "48", "NST_ITERATIONS": "2", "NST_OUTPUT_DIR": str(tmp_path),
           "NST_SAVE_EVERY": "1", "UNRELATED": "x"}
    cfg = Config.from_env(env)
    assert (cfg.vgg_model, cfg.image_width, cfg.image_height) == (tmp_path / "v.mat", 64, 48)
    assert (cfg.num_iterations, cfg.output_dir, cfg.save_every) == (2, tmp_path, 1)
    assert Config.from_env({}) == CONFIG


def test_from_env_refuses_a_non_number():
    with pytest.raises(ConfigError, match="NST_ITERATIONS must be a whole number"):
        Config.from_env({"NST_ITERATIONS": "many"})
