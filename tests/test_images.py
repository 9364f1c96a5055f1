"""Image helpers: any common image to RGB, resizing, normalising, noise and saving."""

import warnings
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from nst_utils import images
from nst_utils.config import PROJECT_ROOT
from nst_utils.errors import ImageError, ImageTooLargeError
from nst_utils.settings import DEFAULTS

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
    rgba[0, 0] = (200, 100, 0, 255)  # opaque
    rgba[0, 1] = (0, 0, 0, 0)  # transparent -> white
    rgba[1, 0] = (0, 0, 0, 51)  # 20% black over white -> 204
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
    network[0, 0, 0] = (-500, 900, 0)  # clipped to (0, 255, ...)
    path = images.save_image(tmp_path / "deep" / "folder" / "x.png", network)
    back = iio.imread(path)
    expected = pixels.astype(np.uint8)
    expected[0, 0, :2] = (0, 255)
    expected[0, 0, 2] = np.uint8(np.clip(MEANS[0, 0, 0, 2], 0, 255))
    np.testing.assert_array_equal(back, expected)
    assert not list(path.parent.glob(".*partial*"))


def test_save_image_writes_jpeg(tmp_path, rng):
    ramp = np.linspace(0, 255, 16)
    pixels = np.stack(
        [np.add.outer(ramp, ramp) / 2, np.add.outer(ramp, 255 - ramp) / 2, np.full((16, 16), 90.0)],
        axis=-1,
    )
    network = pixels[None] - MEANS
    path = images.save_image(tmp_path / "out.jpg", network)
    assert path.read_bytes()[:3] == b"\xff\xd8\xff"
    back = iio.imread(path)
    assert back.shape == (16, 16, 3)
    assert np.abs(back.astype(float) - images.deprocess_image(network)).mean() < 3


def test_an_image_written_to_a_full_disk_is_one_error_and_no_traceback(tmp_path, monkeypatch):
    import gc
    import os
    import sys

    from nst_utils.errors import DiskFullError

    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    # The temporary file the write goes through leads to /dev/full: every write fails ENOSPC.
    name = "x.png"
    (tmp_path / f".{name}.partial{Path(name).suffix}").symlink_to("/dev/full")
    ignored = []
    monkeypatch.setattr(sys, "unraisablehook", lambda raised: ignored.append(raised.exc_value))
    with pytest.raises(DiskFullError, match="the disk is full"):
        images.write_image(tmp_path / name, np.zeros((48, 64, 3), np.uint8))
    gc.collect()
    assert ignored == [] and not (tmp_path / name).exists()


def _photo(h=48, w=64):
    """A smooth colourful (h, w, 3) uint8 picture that survives JPEG well."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack(
        [x * 255 // (w - 1), y * 255 // (h - 1), (x + y) * 255 // (w + h - 2)], axis=-1
    ).astype(np.uint8)


def _bad_files(folder):
    good = folder / "good.jpg"
    Image.fromarray(_photo()).save(good, quality=90)
    data = good.read_bytes()
    (folder / "cut.jpg").write_bytes(data[: len(data) // 2])
    png = folder / "good.png"
    Image.fromarray(_photo()).save(png)
    (folder / "cut.png").write_bytes(png.read_bytes()[:-40])
    scrambled = bytearray(data)
    scrambled[200:260] = b"\xff" * 60  # markers where the pixels were; the end marker stays
    (folder / "scrambled.jpg").write_bytes(bytes(scrambled))
    (folder / "notes.png").write_text("not an image")
    (folder / "empty.png").write_bytes(b"")
    (folder / "phone.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(100))
    (folder / "drawing.jpg").write_text('<svg xmlns="http://www.w3.org/2000/svg"></svg>')


@pytest.mark.parametrize(
    "name, message",
    [
        ("missing.png", "missing.png does not exist"),
        ("notes.png", "could not be read as an image: its contents are in no image format"),
        ("empty.png", "could not be read as an image: the file is empty"),
        ("cut.jpg", "cut.jpg is truncated"),
        ("cut.png", "cut.png is truncated"),
        (
            "phone.heic",
            r"is a HEIC/HEIF \(an iPhone photo\) file, which nst cannot read; convert it",
        ),
        ("drawing.jpg", "is a SVG file"),
    ],
)
def test_bad_images_get_one_line_errors_naming_the_cause(tmp_path, name, message):
    _bad_files(tmp_path)
    with pytest.raises(ImageError, match=message) as err:
        images.read_image(tmp_path / name)
    assert "\n" not in str(err.value) and "OSError" not in str(err.value)


def test_a_damaged_jpeg_is_told_apart_from_a_truncated_one(tmp_path):
    _bad_files(tmp_path)
    try:
        pixels = images.read_image(tmp_path / "scrambled.jpg")
    except ImageError as err:  # Pillow may refuse it outright ...
        assert "damaged" in str(err) and "truncated" not in str(err)
    else:  # ... or decode what it can, as image viewers do
        assert pixels.shape == (48, 64, 3)


def test_permission_denied_is_named(tmp_path, monkeypatch):
    import builtins

    _bad_files(tmp_path)
    real_open = builtins.open

    def refusing_open(file, *args, **kwargs):
        if str(file).endswith("good.jpg"):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing_open)
    with pytest.raises(ImageError, match="cannot be read: permission denied"):
        images.read_image(tmp_path / "good.jpg")


def test_a_cmyk_jpeg_keeps_its_colours(tmp_path):
    # Flat blocks of known ink: C, M, Y, K, C+M, none -> RGB = 255 (1 - ink) (1 - black).
    inks = [
        (255, 0, 0, 0),
        (0, 255, 0, 0),
        (0, 0, 255, 0),
        (0, 0, 0, 128),
        (255, 255, 0, 0),
        (0, 0, 0, 0),
        (64, 128, 192, 32),
    ]
    cmyk = np.zeros((16, 16 * len(inks), 4), dtype=np.uint8)
    for i, ink in enumerate(inks):
        cmyk[:, 16 * i : 16 * (i + 1)] = ink
    Image.fromarray(cmyk, mode="CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    rgb = images.read_image(tmp_path / "cmyk.jpg")
    assert rgb.shape == (16, 16 * len(inks), 3)
    for i, ink in enumerate(inks):
        c = np.array(ink[:3]) / 255.0
        k = ink[3] / 255.0
        expected = 255.0 * (1 - c) * (1 - k)
        block = rgb[4:12, 16 * i + 4 : 16 * i + 12].reshape(-1, 3).mean(axis=0)
        np.testing.assert_allclose(block, expected, atol=4)


def _modes(folder):
    """Files in Pillow modes other than RGB, each with the RGB it should read as."""
    rng = np.random.default_rng(5)
    grey = rng.integers(0, 256, (6, 5), dtype=np.uint8)
    out = {}
    palette = Image.fromarray(grey).convert("P")  # 'P' without transparency
    pal = np.asarray(palette.convert("RGB"))
    palette.save(folder / "p.png")
    out["p.png"] = pal
    transparent = palette.copy()
    index = int(np.asarray(palette)[0, 0])
    transparent.info["transparency"] = index  # one colour of the palette is clear
    transparent.save(folder / "p_clear.gif", transparency=index)
    expected = pal.copy()
    expected[np.asarray(palette) == index] = 255
    out["p_clear.gif"] = expected
    alpha = rng.integers(0, 256, (6, 5), dtype=np.uint8)
    Image.fromarray(np.dstack([grey, alpha])).save(folder / "la.png")
    la = grey * (alpha / 255.0) + 255.0 * (1 - alpha / 255.0)
    out["la.png"] = np.repeat(np.rint(la)[..., None], 3, axis=2)
    bits = grey > 128
    Image.fromarray(bits).save(folder / "one.png")
    out["one.png"] = np.repeat((bits * 255)[..., None], 3, axis=2)
    wide = rng.integers(0, 2**31 - 1, (6, 5)).astype(np.int32)
    Image.fromarray(wide).save(folder / "i.tif")
    out["i.tif"] = np.repeat(np.rint(wide * (255.0 / wide.max()))[..., None], 3, axis=2)
    real = rng.random((6, 5)).astype(np.float32)
    Image.fromarray(real).save(folder / "f.tif")
    out["f.tif"] = np.repeat(np.rint(real * 255.0)[..., None], 3, axis=2)
    sixteen = rng.integers(0, 65536, (6, 5)).astype(np.uint16)
    Image.fromarray(sixteen).save(folder / "i16.png")
    out["i16.png"] = np.repeat(np.rint(sixteen / 257.0)[..., None], 3, axis=2)
    return out


def test_every_common_mode_reads_as_the_rgb_it_shows(tmp_path):
    for name, expected in _modes(tmp_path).items():
        rgb = images.read_image(tmp_path / name)
        assert rgb.dtype == np.uint8 and rgb.shape == (6, 5, 3), name
        np.testing.assert_allclose(rgb, expected, atol=1, err_msg=name)


@pytest.mark.parametrize(
    "mode, pixel, rgb",
    [
        ("YCbCr", (76, 85, 255), (255, 0, 0)),  # JPEG's full-range BT.601 red
        ("HSV", (85, 255, 255), (0, 255, 0)),  # hue 120 degrees: green
        ("LAB", (255, 128, 128), (255, 255, 255)),  # L* = 100: white
        ("CMYK", (0, 255, 255, 0), (255, 0, 0)),
    ],
)
def test_colour_spaces_convert_to_rgb(mode, pixel, rgb):
    out = images.pil_to_rgb_uint8(Image.new(mode, (2, 2), pixel))
    np.testing.assert_allclose(out[0, 0], rgb, atol=3)


def _asymmetric():
    """A (2, 3, 3) picture with every pixel different, so each turn and flip shows."""
    return (np.arange(18).reshape(2, 3, 3) * 14).astype(np.uint8)


# What each EXIF orientation asks a viewer to do with the stored pixels, written with numpy.
SHOWN = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),  # a quarter turn clockwise
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_turns_the_picture_upright(tmp_path, orientation):
    stored = _asymmetric()
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(tmp_path / "o.png", exif=exif)
    shown = SHOWN[orientation](stored)
    np.testing.assert_array_equal(images.read_image(tmp_path / "o.png"), shown)
    assert images.image_size(tmp_path / "o.png") == (shown.shape[1], shown.shape[0])


def test_a_sideways_phone_jpeg_comes_out_upright_even_when_decoded_small(tmp_path):
    stored = np.repeat(np.repeat(_photo(48, 64), 8, axis=0), 8, axis=1)  # 512x384 stored
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    assert images.image_size(tmp_path / "phone.jpg") == (384, 512)
    full = images.read_image(tmp_path / "phone.jpg")
    assert full.shape == (512, 384, 3)
    np.testing.assert_allclose(full.astype(float), np.rot90(stored, -1), atol=6)
    small = images.read_image(tmp_path / "phone.jpg", at_least=(48, 64))
    assert small.shape == (64, 48, 3)  # decoded at 1/8 scale, already upright
    np.testing.assert_allclose(small.astype(float), np.rot90(_photo(48, 64), -1), atol=8)


def test_a_large_jpeg_is_decoded_at_reduced_scale_for_a_small_model(tmp_path):
    big = np.repeat(np.repeat(_photo(60, 80), 20, axis=0), 20, axis=1)  # 1600x1200
    Image.fromarray(big).save(tmp_path / "big.jpg", quality=92)
    assert images.read_image(tmp_path / "big.jpg", at_least=(400, 300)).shape == (300, 400, 3)
    assert images.read_image(tmp_path / "big.jpg", at_least=(401, 300)).shape == (600, 800, 3)
    assert images.read_image(tmp_path / "big.jpg").shape == (1200, 1600, 3)
    reduced = images.load_image(tmp_path / "big.jpg", (80, 60)).astype(float)
    whole = images.resize_image(images.read_image(tmp_path / "big.jpg"), 80, 60).astype(float)
    assert np.abs(reduced - whole).mean() < 1.5


def test_a_photo_beyond_the_decoding_limit_gets_one_line_with_its_size(tmp_path, monkeypatch):
    Image.fromarray(_photo(300, 400)).save(tmp_path / "wide.png")
    Image.fromarray(_photo(300, 400)).save(tmp_path / "wide.jpg")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)  # decoding limit: 40,000 pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no bomb warning leaks out
        with pytest.raises(ImageTooLargeError) as err:
            images.read_image(tmp_path / "wide.png")
        message = str(err.value)
        assert "wide.png is 400x300, 0 million pixels" in message and "\n" not in message
        assert "reduce the photo" in message
        # The same size as a JPEG for a small model decodes at 1/8 scale: 50x38, well inside.
        assert images.load_image(tmp_path / "wide.jpg", (40, 30)).shape == (30, 40, 3)
        assert images.image_size(tmp_path / "wide.png") == (400, 300)
    assert Image.MAX_IMAGE_PIXELS == 20_000  # Pillow's setting is left as it was


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
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def test_16_bit_rgb_png_keeps_its_colours(tmp_path):
    deep = (np.arange(2 * 3 * 3).reshape(2, 3, 3) * 3000).astype(np.uint16)
    write_png16(tmp_path / "rgb16.png", deep)
    rgb = images.read_image(tmp_path / "rgb16.png")
    assert rgb.dtype == np.uint8
    np.testing.assert_allclose(rgb, deep / 257.0, atol=1.0)
