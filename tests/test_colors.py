"""--preserve-colors' colour arithmetic: YIQ round trips, luminance, chroma recombination."""

import numpy as np

from nst_utils import colors


def test_yiq_round_trip_and_known_values(rng):
    pixels = rng.uniform(0, 255, (5, 7, 3))
    np.testing.assert_allclose(colors.yiq_to_rgb(colors.rgb_to_yiq(pixels)), pixels, atol=1e-9)
    # Grey has no chroma; white's luminance is 255.
    yiq = colors.rgb_to_yiq(np.array([[[255.0, 255.0, 255.0], [10.0, 10.0, 10.0]]]))
    np.testing.assert_allclose(yiq[0, :, 0], (255.0, 10.0), atol=1e-3)
    np.testing.assert_allclose(yiq[0, :, 1:], 0.0, atol=1e-3)
    # Pure red: Y = 0.299 * 255.
    assert colors.rgb_to_yiq(np.array([[[255.0, 0.0, 0.0]]]))[0, 0, 0] == 0.299 * 255


def test_luminance_image_is_grey_and_can_take_another_images_mean_and_spread(rng):
    pixels = rng.uniform(0, 255, (6, 4, 3))
    grey = colors.luminance_image(pixels)
    expected = 0.299 * pixels[..., 0] + 0.587 * pixels[..., 1] + 0.114 * pixels[..., 2]
    for c in range(3):
        np.testing.assert_allclose(grey[..., c], expected)
    other = rng.uniform(100, 140, (3, 3, 3))
    matched = colors.luminance_image(pixels, match=other)[..., 0]
    target = colors.rgb_to_yiq(other)[..., 0]
    assert np.isclose(matched.mean(), target.mean()) and np.isclose(matched.std(), target.std())
    np.testing.assert_allclose(np.corrcoef(matched.ravel(), expected.ravel())[0, 1], 1.0)


def test_recombine_keeps_the_generated_luminance_and_the_contents_chroma(rng):
    # Colours well inside the RGB cube, so no channel needs clipping after recombination.
    base = rng.integers(90, 170, (8, 8, 1))
    content = (base + rng.integers(-15, 16, (8, 8, 3))).astype(np.uint8)
    generated = rng.uniform(90, 170, (8, 8, 3))
    out = colors.recombine(generated, content)
    assert out.dtype == np.uint8 and out.shape == (8, 8, 3)
    got, want = colors.rgb_to_yiq(out), colors.rgb_to_yiq(content)
    np.testing.assert_allclose(got[..., 1:], want[..., 1:], atol=1.0)  # uint8 rounding only
    np.testing.assert_allclose(got[..., 0], colors.rgb_to_yiq(generated)[..., 0], atol=1.0)
