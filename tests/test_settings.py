"""Settings: the original values as defaults, validated changes, and the NST_* variables."""

from pathlib import Path

import pytest

from nst_utils.config import PROJECT_ROOT
from nst_utils.errors import ConfigError
from nst_utils.settings import DEFAULTS, Settings


def test_defaults_are_the_original_values():
    assert DEFAULTS.vgg_model == PROJECT_ROOT / "pretrained-model" / "imagenet-vgg-verydeep-19.mat"
    assert DEFAULTS.output_dir == PROJECT_ROOT / "output"
    assert (DEFAULTS.alpha, DEFAULTS.beta, DEFAULTS.learning_rate) == (10, 40, 2.0)
    assert (DEFAULTS.num_iterations, DEFAULTS.save_every, DEFAULTS.content_layer) == (
        160,
        20,
        "conv4_2",
    )


def test_replace_overrides_and_leaves_the_original_alone(tmp_path):
    cfg = DEFAULTS.replace(
        image_width=200, image_height=150, vgg_model=str(tmp_path / "w.mat"), output_dir=tmp_path
    )
    assert (cfg.image_width, cfg.image_height) == (200, 150)
    assert cfg.vgg_model == tmp_path / "w.mat" and isinstance(cfg.vgg_model, Path)
    assert DEFAULTS.image_width == 400


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"image_width": 0}, "image_width must be a positive whole number"),
        ({"image_height": 2.5}, "image_height must be a positive whole number"),
        ({"noise_ratio": 1.5}, r"noise_ratio must lie in \[0, 1\]"),
        ({"color_channels": 4}, "color_channels must be 3"),
        ({"widht": 3}, "unknown setting"),
    ],
)
def test_bad_settings_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        DEFAULTS.replace(**changes)


def test_from_env_reads_the_nst_variables(tmp_path):
    env = {
        "NST_WEIGHTS": str(tmp_path / "v.mat"),
        "NST_IMAGE_WIDTH": "64",
        "NST_IMAGE_HEIGHT": "48",
        "NST_ITERATIONS": "2",
        "NST_OUTPUT_DIR": str(tmp_path),
        "NST_SAVE_EVERY": "1",
        "UNRELATED": "x",
    }
    cfg = Settings.from_env(env)
    assert (cfg.vgg_model, cfg.image_width, cfg.image_height) == (tmp_path / "v.mat", 64, 48)
    assert (cfg.num_iterations, cfg.output_dir, cfg.save_every) == (2, tmp_path, 1)
    assert Settings.from_env({}) == DEFAULTS


def test_from_env_refuses_a_non_number():
    with pytest.raises(ConfigError, match="NST_ITERATIONS must be a whole number"):
        Settings.from_env({"NST_ITERATIONS": "many"})
