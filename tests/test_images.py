"""Image helpers: any common image to RGB, resizing, normalising, noise and saving."""

import imageio.v3 as iio
import numpy as np
import pytest

from nst_utils import images
from nst_utils.config import PROJECT_ROOT
from nst_utils.settings import DEFAULTS
from nst_utils.errors import ImageError

MEANS = np.array([123.68, 116.779, 103.939]).reshape(1, 1, 1, 3)


def test_the_shipped_images_load_at_the_model_size():
    for name in ("louvre.jpg", "sandstone.jpg"):
        raw = images.read_image(PROJECT_ROOT / "images" / name)
        assert raw.shape == (225, 300, 3) and raw.dtype == np.uint8
        loaded = images.load_image(PROJECT_ROOT / "images" / name)
        assert loaded.shape == (300, 400, 3) and loaded.dtype == np.uint8
        # Upscaling keeps the picture: mean colours agree closely.
        np.testing.assert_allclose(loaded.mean(axis=(0, 1)), raw.mean(axis=(0, 1)), atol=1.5)


def test_grayscale_becomes_three_equal_channels(tmp_path, rng):
    grey = rng.integers(0, 256, (9, 7), dtype=np.uint8)
    iio.imwrite(tmp_path / "g.png", grey)
    rgb = images.read_image(tmp_path / "g.png")
    assert rgb.shape == (9, 7, 3)
    for c in range(3):
        np.testing.assert_array_equal(rgb[:, :, c], grey)


def test_rgba_is_composited_over_white(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (200, 100, 0, 255)   # opaque
    rgba[0, 1] = (0, 0, 0, 0)         # transparent -> white
    rgba[1, 0] = (0, 0, 0, 51)        # 20% black over white -> 204
    iio.imwrite(tmp_path / "a.png", rgba)
    rgb = images.read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(rgb[0, 0], (200, 100, 0))
    np.testing.assert_array_equal(rgb[0, 1], (255, 255, 255))
    np.testing.assert_array_equal(rgb[1, 0], (204, 204, 204))


def test_16_bit_png_is_scaled_to_8_bits(tmp_path):
    deep = np.array([[0, 257 * 128, 65535]], dtype=np.uint16)
    iio.imwrite(tmp_path / "d.png", deep)
    rgb = images.read_image(tmp_path / "d.png")
    np.testing.assert_array_equal(rgb[0, :, 0], (0, 128, 255))


def test_float_images_in_0_1_are_scaled():
    out = images.to_rgb_uint8(np.array([[[0.0, 0.5, 1.0]]]))
    np.testing.assert_array_equal(out[0, 0], (0, 128, 255))


def test_resize_to_any_size():
    img = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    assert images.resize_image(img, 12, 8).shape == (8, 12, 3)
    assert images.resize_image(img, 6, 4) is img


def test_reshape_and_normalize_subtracts_the_means(rng):
    img = rng.integers(0, 256, (5, 4, 3)).astype(np.uint8)
    out = images.reshape_and_normalize_image(img)
    assert out.shape == (1, 5, 4, 3)
    np.testing.assert_allclose(out, img[None].astype(np.float64) - MEANS)


def test_noise_image_blends_uniform_noise_with_the_content(rng):
    content = rng.normal(0, 50, (1, 6, 8, 3))
    seeded = images.generate_noise_image(content, 0.6, seed=7)
    noise = np.random.default_rng(7).uniform(-20, 20, (1, 6, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(seeded, noise * 0.6 + content * 0.4, rtol=1e-6)
    np.testing.assert_array_equal(images.generate_noise_image(content, 0.6, seed=7), seeded)
    gen = images.generate_noise_image(content, 0.6, seed=np.random.default_rng(7))
    np.testing.assert_array_equal(gen, seeded)
    assert np.abs(seeded - content * 0.4).max() <= 12.0 + 1e-4


def test_unseeded_noise_draws_from_numpys_global_state_as_the_original():
    content = np.zeros((1, 3, 4, 3))
    np.random.seed(11)
    expected = np.random.uniform(-20, 20, (1, 3, 4, 3)).astype("float32") * DEFAULTS.noise_ratio
    np.random.seed(11)
    np.testing.assert_allclose(images.generate_noise_image(content), expected)


def test_noise_image_refuses_an_unbatched_content():
    with pytest.raises(ImageError, match=r"shape \(1, H, W, 3\)"):
        images.generate_noise_image(np.zeros((3, 4, 3)))


def test_save_image_round_trips_through_png(tmp_path, rng):
    pixels = rng.integers(0, 256, (5, 6, 3)).astype(np.float64)
    network = pixels[None] - MEANS
    network[0, 0, 0] = (-500, 900, 0)   # clipped to (0, 255, ...)
    path = images.save_image(tmp_path / "deep" / "folder" / "x.png", network)
    back = iio.imread(path)
    expected = pixels.astype(np.uint8)
    expected[0, 0, :2] = (0, 255)
    expected[0, 0, 2] = np.uint8(np.clip(MEANS[0, 0, 0, 2], 0, 255))
    np.testing.assert_array_equal(back, expected)
    assert not list(path.parent.glob(".*partial*"))


def test_save_image_writes_jpeg(tmp_path, rng):
    ramp = np.linspace(0, 255, 16)
    pixels = np.stack([np.add.outer(ramp, ramp) / 2, np.add.outer(ramp, 255 - ramp) / 2,
                       np.full((16, 16), 90.0)], axis=-1)
    network = pixels[None] - MEANS
    path = images.save_image(tmp_path / "out.jpg", network)
    assert path.read_bytes()[:3] == b"\xff\xd8\xff"
    back = iio.imread(path)
    assert back.shape == (16, 16, 3)
    assert np.abs(back.astype(float) - images.deprocess_image(network)).mean() < 3


@pytest.mark.parametrize("name, message", [
    ("missing.png", "does not exist"),
    ("notes.png", "could not be read as an image"),
    ("empty.png", "could not be read as an image"),
])
def test_bad_images_get_one_line_errors(tmp_path, name, message):
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError, match=message) as err:
        images.read_image(tmp_path / name)
    assert "\n" not in str(err.value)


def test_a_folder_is_not_an_image(tmp_path):
    with pytest.raises(ImageError, match="is a folder"):
        images.read_image(tmp_path)


def test_saving_needs_a_known_suffix_and_a_writable_place(tmp_path):
    with pytest.raises(ImageError, match="use a .png, .jpg or .jpeg"):
        images.save_image(tmp_path / "x.bmp", np.zeros((1, 2, 2, 3)))
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ImageError, match="cannot write"):
        images.save_image(blocker / "x.png", np.zeros((1, 2, 2, 3)))


def write_png16(path, pixels):
    """A 16-bit RGB PNG written by hand (imageio's writers refuse 16-bit colour)."""
    import struct
    import zlib

    h, w, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_16_bit_rgb_png_keeps_its_colours(tmp_path):
    deep = (np.arange(2 * 3 * 3).reshape(2, 3, 3) * 3000).astype(np.uint16)
    write_png16(tmp_path / "rgb16.png", deep)
    rgb = images.read_image(tmp_path / "rgb16.png")
    assert rgb.dtype == np.uint8
    np.testing.assert_allclose(rgb, deep / 257.0, atol=1.0)
