"""Settings: the original values as defaults, validated changes, and the NST_* variables."""

import os
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
    with pytest.raises(ConfigError, match="NST_ITERATIONS must be a positive whole number"):
        Settings.from_env({"NST_ITERATIONS": "many"})


def test_the_settings_and_config_read_the_environment_by_one_set_of_rules(tmp_path, monkeypatch):
    from nst_utils.config import apply_environment

    class Original:
        IMAGE_WIDTH, IMAGE_HEIGHT, VGG_MODEL, OUTPUT_DIR = 400, 300, "/w.mat", "/out/"

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    env = {"NST_WEIGHTS": "w/v.mat", "NST_OUTPUT_DIR": "~/o", "NST_IMAGE_WIDTH": " 64 "}
    settings = Settings.from_env(env)
    apply_environment(Original, env)
    # Relative paths are taken from the current folder, ~ is the home folder, in both.
    assert settings.vgg_model == tmp_path / "w" / "v.mat" == Path(Original.VGG_MODEL)
    assert settings.output_dir == tmp_path / "home" / "o"
    assert Original.OUTPUT_DIR == str(tmp_path / "home" / "o") + os.sep
    assert settings.image_width == Original.IMAGE_WIDTH == 64
    # The same values are refused, with the same words, every refused one named.
    bad = {"NST_IMAGE_WIDTH": "0", "NST_IMAGE_HEIGHT": "-3", "NST_SAVE_EVERY": "-1"}
    with pytest.raises(ConfigError) as from_env:
        Settings.from_env(bad)
    with pytest.raises(ConfigError) as from_config:
        apply_environment(Original, bad)
    assert str(from_env.value) == str(from_config.value)
    for var, value in bad.items():
        assert f"{var} must be" in str(from_env.value) and repr(value) in str(from_env.value)
    assert (Original.IMAGE_WIDTH, Original.IMAGE_HEIGHT) == (64, 300)  # refused: left as it was
    assert Settings.from_env({"NST_SAVE_EVERY": "0"}).save_every == 0  # what --save-every takes
