"""CONFIG is the original class with the original values, read by the helpers when called."""

import numpy as np
import pytest

from nst_utils.config import CONFIG, PROJECT_ROOT, STYLE_LAYERS


def test_original_values():
    assert (CONFIG.IMAGE_WIDTH, CONFIG.IMAGE_HEIGHT, CONFIG.COLOR_CHANNELS) == (400, 300, 3)
    assert CONFIG.NOISE_RATIO == 0.6
    np.testing.assert_array_equal(CONFIG.MEANS, np.array([123.68, 116.779, 103.939]).reshape(1, 1, 1, 3))
    assert CONFIG.VGG_MODEL == str(PROJECT_ROOT / "pretrained-model" / "imagenet-vgg-verydeep-19.mat")
    assert CONFIG.CONTENT_IMAGE == str(PROJECT_ROOT / "images" / "louvre.jpg")
    assert CONFIG.STYLE_IMAGE == str(PROJECT_ROOT / "images" / "sandstone.jpg")
    assert CONFIG.OUTPUT_DIR + "0.png" == str(PROJECT_ROOT / "output" / "0.png")
    assert STYLE_LAYERS == (("conv1_1", 0.2), ("conv2_1", 0.2), ("conv3_1", 0.2),
                            ("conv4_1", 0.2), ("conv5_1", 0.2))


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
