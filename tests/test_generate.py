"""`python -m nst_utils generate` on fixture weights at 64x48, a few iterations per run.

Most runs go through nst_utils.cli.main in-process; Ctrl-C and SIGTERM through a subprocess.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import warnings

import imageio.v3 as iio
import numpy as np
import pytest

from nst_utils import colors
from nst_utils.cli import main
from nst_utils.config import PROJECT_ROOT
from nst_utils.errors import EmulatedBfloat16Warning
from nst_utils.settings import DEFAULTS
from nst_utils.images import generate_noise_image, load_image, reshape_and_normalize_image
from nst_utils.weights import load_weights
from limits import HANG_SECONDS

pytestmark = pytest.mark.slow  # every test here starts processes or paints

LOUVRE, SANDSTONE = (
    PROJECT_ROOT / "images" / "louvre.jpg",
    PROJECT_ROOT / "images" / "sandstone.jpg",
)
RECORD = ("run.json", "costs.png", "progress.png", "state.npz")


@pytest.fixture
def paint(vgg_mat, tmp_path):
    """paint(name, *options) -> (exit code, output folder): a 64x48 run on the fixture weights."""

    def run(name, *options, **size):
        out = tmp_path / name
        return paint_in(out, vgg_mat, *options, **size), out

    return run


SEEDED = ("--seed", "4", "--iterations", "2", "--save-every", "1")


def paint_in(out, vgg_mat, *options, size=("--width", "64", "--height", "48")):
    return main(
        [
            "generate",
            "--weights",
            str(vgg_mat),
            *size,
            "--no-progress",
            "--output",
            str(out),
            *options,
        ]
    )


@pytest.fixture(scope="module")
def seeded(vgg_mat, tmp_path_factory):
    """The output folder of one plain run with SEEDED options, shared as a reference."""
    out = tmp_path_factory.mktemp("seeded") / "out"
    assert paint_in(out, vgg_mat, *SEEDED) == 0
    return out


def record(out):
    return json.loads((out / "run.json").read_text())


def first_costs(out):
    row = record(out)["costs"][0]
    return row["total"], row["content"], row["style"]


def net(pixels):
    return reshape_and_normalize_image(pixels)


def test_defaults_write_the_expected_files_and_record(paint, vgg_mat, capsys):
    code, out = paint(
        "defaults", "--iterations", "5", "--save-every", "2", "--log-every", "2", "--seed", "21"
    )
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["0.png", "2.png", "4.png", "generated_image.jpg", *RECORD]
    )
    for name in ("0.png", "2.png", "4.png", "generated_image.jpg"):
        assert iio.imread(out / name).shape == (48, 64, 3)
    rec = record(out)
    s = rec["settings"]
    assert (s["content"], s["style"]) == (str(DEFAULTS.content_image), [str(DEFAULTS.style_image)])
    assert (s["alpha"], s["beta"], s["learning_rate"], s["noise_ratio"]) == (10.0, 40.0, 2.0, 0.6)
    assert s["content_layer"] == "conv4_2" and s["style_layers"] == [
        list(x) for x in DEFAULTS.style_layers
    ]
    assert (s["optimizer"], s["pooling"], s["tv_weight"], s["init"]) == (
        "adam",
        "avg",
        0.0,
        "noise",
    )
    assert (s["width"], s["height"], s["iterations"]) == (64, 48, 5)
    assert rec["seed"] == 21 and rec["seed_given"] and rec["stopped"] is None
    assert rec["weights"]["md5"] == hashlib.md5(vgg_mat.read_bytes()).hexdigest()
    assert rec["weights"]["format"] == "new" and rec["weights"]["bytes"] == vgg_mat.stat().st_size
    assert {"tensorflow", "numpy", "scipy", "python"} <= set(rec["versions"])
    assert rec["iterations_completed"] == 5 and rec["wall_time_seconds"] > 0
    assert (
        rec["snapshots"] == ["0.png", "2.png", "4.png"]
        and rec["final_image"] == "generated_image.jpg"
    )
    totals = [row["total"] for row in rec["costs"]]
    assert [row["iteration"] for row in rec["costs"]] == list(range(5))
    assert all(b < a for a, b in zip(totals, totals[1:]))
    for row in rec["costs"]:
        assert row["total"] == pytest.approx(10 * row["content"] + 40 * row["style"], rel=1e-5)
    assert iio.imread(out / "costs.png").shape[:2] == (450, 700)
    assert (
        iio.imread(out / "progress.png").shape[1] == 6 * 240
    )  # content, style, 3 snapshots, result
    printed = capsys.readouterr().out
    assert "seed 21\n" in printed
    assert [line for line in printed.splitlines() if line.startswith("Iteration")] == [
        "Iteration 0 :",
        "Iteration 2 :",
        "Iteration 4 :",
    ]
    assert f"saved {out / 'generated_image.jpg'} after 5 iteration(s)" in printed


def test_layers_and_weights_give_the_costs_numpy_computes(paint, vgg_mat):
    # conv1_1 is one convolution from the image, so numpy can check the whole chain: image
    # loading, seeded noise, the layer choices, the layer weight, alpha and beta.
    code, out = paint(
        "numpy",
        "--content-layer",
        "conv1_1",
        "--style-layers",
        "conv1_1:0.5",
        "--alpha",
        "3",
        "--beta",
        "7",
        "--seed",
        "9",
        "--iterations",
        "1",
        "--save-every",
        "0",
    )
    assert code == 0
    kernel, bias = load_weights(vgg_mat).conv["conv1_1"]

    def conv1_1(image):
        x = np.pad(np.asarray(image, np.float64)[0], ((1, 1), (1, 1), (0, 0)))
        h, w = image.shape[1:3]
        z = sum(
            x[dy : dy + h, dx : dx + w] @ kernel[dy, dx].astype(np.float64)
            for dy in range(3)
            for dx in range(3)
        )
        return np.maximum(z + bias, 0).reshape(h * w, -1)

    content = net(load_image(LOUVRE, (64, 48)))
    style = net(load_image(SANDSTONE, (64, 48)))
    start = generate_noise_image(content, 0.6, seed=9)
    a_C, a_S, a_G = conv1_1(content), conv1_1(style), conv1_1(start)
    n_hw, n_c = a_G.shape
    j_content = np.sum((a_C - a_G) ** 2) / (4 * n_hw * n_c)
    j_style = 0.5 * np.sum((a_S.T @ a_S - a_G.T @ a_G) ** 2) / (4 * n_c**2 * n_hw**2)
    total, got_content, got_style = first_costs(out)
    assert got_content == pytest.approx(j_content, rel=1e-4)
    assert got_style == pytest.approx(j_style, rel=1e-4)
    assert total == pytest.approx(3 * j_content + 7 * j_style, rel=1e-4)


def test_seed_repeats_a_run_bit_for_bit_and_an_unseeded_run_prints_its_seed(paint, seeded, capsys):
    code, again = paint("again", *SEEDED)
    assert code == 0
    assert record(again)["costs"] == record(seeded)["costs"]
    assert record(again)["final_costs"] == record(seeded)["final_costs"]
    for name in ("0.png", "1.png", "generated_image.jpg"):
        assert (again / name).read_bytes() == (seeded / name).read_bytes()
    code, drawn = paint("drawn", "--iterations", "1", "--save-every", "0")
    seed = record(drawn)["seed"]
    assert code == 0 and not record(drawn)["seed_given"] and record(again)["seed_given"]
    assert (
        f"seed {seed} (drawn at random; repeat this run with --seed {seed})"
        in capsys.readouterr().out
    )
    if seed != 4:
        assert record(drawn)["costs"][0] != record(seeded)["costs"][0]
    # Max pooling changes the network after the first block: other costs from the same start.
    code, maxed = paint("max", "--seed", "4", "--iterations", "1", "--pooling", "max")
    assert code == 0 and record(maxed)["settings"]["pooling"] == "max"
    assert record(maxed)["costs"][0]["content"] != pytest.approx(
        record(seeded)["costs"][0]["content"]
    )
    assert record(maxed)["costs"][0]["style"] != pytest.approx(record(seeded)["costs"][0]["style"])


def test_learning_rate_sets_the_size_of_adams_first_step(paint):
    # Adam's first update moves every pixel by the learning rate (m/sqrt(v) = sign of gradient).
    content = load_image(LOUVRE, (64, 48)).astype(int)
    for rate, low, high in (("5", 4, 6), ("1", 0, 2)):
        code, out = paint(
            f"lr{rate}",
            "--init",
            "content",
            "--learning-rate",
            rate,
            "--iterations",
            "1",
            "--save-every",
            "1",
        )
        assert code == 0
        inside = (content > 10) & (content < 245)
        step = np.abs(iio.imread(out / "0.png").astype(int) - content)[inside]
        assert low <= np.median(step) <= high


def test_init_options_and_tv_weight(paint):
    # --init content: no content cost at the start; the TV term is numpy's on the content.
    code, out = paint(
        "content",
        "--init",
        "content",
        "--tv-weight",
        "0.5",
        "--iterations",
        "1",
        "--save-every",
        "0",
        "--seed",
        "1",
    )
    assert code == 0
    total, content_cost, style_cost = first_costs(out)
    image = net(load_image(LOUVRE, (64, 48))).astype(np.float32).astype(np.float64)
    tv = np.square(np.diff(image, axis=1)).sum() + np.square(np.diff(image, axis=2)).sum()
    assert content_cost == 0.0
    assert total == pytest.approx(40 * style_cost + 0.5 * tv, rel=1e-5)
    # --init PATH with the style image: no style cost at the start (up to float32 rounding of
    # the two Gram matrices, which TF may compute by different kernels).
    code, out = paint("path", "--init", str(SANDSTONE), "--iterations", "1", "--save-every", "0")
    assert code == 0 and first_costs(out)[2] < 1e-9 * style_cost and first_costs(out)[1] > 0
    # Noise ratio 0: the noise start is the content itself.
    code, out = paint("ratio", "--noise-ratio", "0", "--iterations", "1", "--save-every", "0")
    assert code == 0 and first_costs(out)[1] == 0.0


def test_blend_weights_1_0_equal_the_single_style(paint, seeded):
    code, blend = paint(
        "blend", "--style", str(SANDSTONE), str(LOUVRE), "--style-blend-weights", "1", "0", *SEEDED
    )
    assert code == 0 and record(blend)["settings"]["style_blend_weights"] == [1.0, 0.0]
    assert record(blend)["costs"] == record(seeded)["costs"]
    assert (blend / "1.png").read_bytes() == (seeded / "1.png").read_bytes()


def test_preserve_colors_keeps_the_contents_chroma(paint, seeded):
    code, kept = paint("kept", "--preserve-colors", *SEEDED)
    assert code == 0 and record(kept)["settings"]["preserve_colors"] is True
    content = load_image(LOUVRE, (64, 48))
    content_yiq = colors.rgb_to_yiq(content)
    for name in ("0.png", "1.png"):
        kept_yiq = colors.rgb_to_yiq(iio.imread(kept / name))
        plain_yiq = colors.rgb_to_yiq(iio.imread(seeded / name))
        assert np.median(np.abs(kept_yiq[..., 1:] - content_yiq[..., 1:])) < 0.75
        assert np.median(np.abs(plain_yiq[..., 1:] - content_yiq[..., 1:])) > 2.0
        # The luminance is the generated one, not the content's.
        assert np.abs(kept_yiq[..., 0] - content_yiq[..., 0]).mean() > 2.0


def test_lbfgs_lowers_the_cost_and_reports_like_adam(paint, capsys):
    code, out = paint(
        "lbfgs",
        "--optimizer",
        "lbfgs",
        "--iterations",
        "4",
        "--save-every",
        "2",
        "--log-every",
        "3",
        "--seed",
        "3",
    )
    assert code == 0
    printed = capsys.readouterr().out.splitlines()
    assert [line for line in printed if line.startswith("Iteration")] == [
        "Iteration 0 :",
        "Iteration 3 :",
    ]
    rec = record(out)
    totals = [row["total"] for row in rec["costs"]]
    assert rec["iterations_completed"] == 4 == len(totals)
    assert all(b < a for a, b in zip(totals, totals[1:]))
    assert rec["final_costs"]["total"] < 0.5 * totals[0]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["0.png", "2.png", "generated_image.jpg", *RECORD]
    )


def test_one_side_keeps_the_aspect_and_odd_images_work(paint, tmp_path, rng):
    louvre = load_image(LOUVRE, (300, 225))
    grey16 = (colors.rgb_to_yiq(louvre)[..., 0] * 257).astype(np.uint16)
    iio.imwrite(tmp_path / "grey16.png", grey16)
    rgba = np.dstack(
        [load_image(SANDSTONE, (40, 30)), rng.integers(0, 256, (30, 40), dtype=np.uint8)]
    )
    iio.imwrite(tmp_path / "rgba.png", rgba)
    code, out = paint(
        "odd",
        "--content",
        str(tmp_path / "grey16.png"),
        "--style",
        str(tmp_path / "rgba.png"),
        "--iterations",
        "1",
        "--save-every",
        "0",
        size=("--width", "64"),
    )
    assert code == 0 and iio.imread(out / "generated_image.jpg").shape == (48, 64, 3)
    assert (record(out)["settings"]["width"], record(out)["settings"]["height"]) == (64, 48)
    iio.imwrite(tmp_path / "large.jpg", load_image(LOUVRE, (3000, 2250)))
    iio.imwrite(tmp_path / "tiny.png", rng.integers(0, 256, (2, 2, 3), dtype=np.uint8))
    code, out = paint(
        "sizes",
        "--content",
        str(tmp_path / "large.jpg"),
        "--style",
        str(tmp_path / "tiny.png"),
        "--init",
        str(tmp_path / "tiny.png"),
        "--iterations",
        "1",
        "--save-every",
        "0",
        size=("--height", "30"),
    )
    assert code == 0 and iio.imread(out / "generated_image.jpg").shape == (30, 40, 3)


def test_a_non_finite_cost_stops_with_a_message_and_keeps_the_last_good_image(paint, capsys):
    code, out = paint(
        "nan",
        "--init",
        "content",
        "--learning-rate",
        "1e38",
        "--iterations",
        "4",
        "--save-every",
        "1",
        "--log-every",
        "0",
    )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "error: the cost became NaN or infinite after 1 iteration"
    )
    rec = record(out)
    assert rec["stopped"] == "non-finite" and rec["iterations_completed"] == 1
    assert rec["final_costs"]["content"] == 0.0  # the kept image is the start: the content
    kept = iio.imread(out / "generated_image.jpg").astype(float)
    assert np.abs(kept - load_image(LOUVRE, (64, 48))).mean() < 5.0  # as JPEG keeps it
    # No optimiser state: a run gone non-finite has nothing sound to resume from.
    assert sorted(p.name for p in out.iterdir()) == sorted(["generated_image.jpg", *RECORD[:3]])


@pytest.mark.parametrize(
    "options, says",
    [
        (("--content", "missing.jpg"), "missing.jpg does not exist"),
        (("--style", "{text}"), "could not be read as an image"),
        (("--content", "{folder}"), "is a folder, not an image file"),
        (("--init", "nowhere.png"), "nowhere.png does not exist"),
        (("--content-layer", "conv6_1"), "unknown layer 'conv6_1'"),
        (("--style-layers", "conv1_1;0.2"), "unknown layer 'conv1_1;0.2'"),
        (("--style-layers", "conv1_1:0.2,conv2_1:x"), "the weight of conv2_1 must be a number"),
        (("--style-layers", "conv1_1:0.2,"), "malformed style layers"),
        (("--iterations", "0"), "argument --iterations: expected a positive whole number, got '0'"),
        (("--iterations", "-5"), "expected a positive whole number, got '-5'"),
        (("--width", "0"), "argument --width: expected a positive whole number"),
        (("--height", "-48"), "argument --height: expected a positive whole number"),
        (("--learning-rate", "0"), "argument --learning-rate: expected a positive number"),
        (("--noise-ratio", "1.5"), "between 0 and 1"),
        (("--style-blend-weights", "0.5", "0.5"), "2 value(s) for 1 style image(s)"),
        (("--optimizer", "sgd"), "invalid choice: 'sgd'"),
        (("--weights", "{missing}"), "VGG-19 weights not found"),
        (("--weights", "{text}"), "is not a MATLAB .mat file"),
        (("--output", "{text}"), "cannot write to the output folder"),
        (("--output", "{text}/sub"), "cannot write to the output folder"),
    ],
)
def test_bad_input_gets_one_line_and_exit_2_with_nothing_written(
    options, says, vgg_mat, tmp_path, capsys
):
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    folder = tmp_path / "a_folder"
    folder.mkdir()
    places = {"text": text, "folder": folder, "missing": tmp_path / "none.mat"}
    options = [o.format(**places) for o in options]
    out = tmp_path / "out"
    argv = [
        "generate",
        "--weights",
        str(vgg_mat),
        "--width",
        "64",
        "--height",
        "48",
        "--iterations",
        "2",
        "--no-progress",
        "--output",
        str(out),
        *options,
    ]
    try:
        code = main(argv)
    except SystemExit as exit_info:  # argparse's own errors exit through SystemExit
        code = exit_info.code
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], captured.err
    assert not out.exists() and text.read_text() == "not an image"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_folder", "notes.txt"]


def run_until_first_snapshot(vgg_mat, out):
    """Start a long run in a subprocess; return it once 0.png has been written."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nst_utils",
            "generate",
            "--weights",
            str(vgg_mat),
            "--width",
            "64",
            "--height",
            "48",
            "--iterations",
            "100000",
            "--save-every",
            "1",
            "--log-every",
            "0",
            "--seed",
            "5",
            "--output",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(out.parent),
    )
    deadline = time.monotonic() + HANG_SECONDS
    while not (out / "0.png").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no snapshot appeared: {proc.communicate()}")
        time.sleep(0.1)
    return proc


@pytest.mark.parametrize("number, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stop_signal_mid_run_leaves_a_valid_image_and_record(number, code, vgg_mat, tmp_path):
    out = tmp_path / "out"
    proc = run_until_first_snapshot(vgg_mat, out)
    proc.send_signal(number)
    try:
        stdout, stderr = proc.communicate(timeout=HANG_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == code, stderr
    assert f"{signal.Signals(number).name} received: stopping after this iteration" in stderr
    assert "%|" in stderr and "total " in stderr  # the progress bar, with the costs
    rec = record(out)
    assert rec["stopped"] == "interrupted" and rec["signal"] == signal.Signals(number).name
    assert 1 <= rec["iterations_completed"] == len(rec["costs"]) < 100000
    assert iio.imread(out / "generated_image.jpg").shape == (48, 64, 3)
    assert iio.imread(out / "costs.png").ndim == 3 and iio.imread(out / "progress.png").ndim == 3
    assert not [p.name for p in out.iterdir() if "partial" in p.name or p.name.startswith(".")]
    assert (out / "state.npz").is_file()
    assert "saved " in stdout


def test_bfloat16_precision_is_opt_in_and_close_to_float32(paint, seeded, capsys):
    from nst_utils.hardware import bfloat16_support

    assert record(seeded)["settings"]["precision"] == "float32"
    capsys.readouterr()
    # Allowed where the CPU only emulates it, so that the test runs on any CPU.
    with warnings.catch_warnings(record=True) as raised:
        warnings.simplefilter("always")
        code, half = paint("bf16", *SEEDED, "--precision", "bfloat16", "--allow-emulated-bfloat16")
    assert code == 0 and record(half)["settings"]["precision"] == "bfloat16"
    # Emulation is said once, in generate's own words; no raw warning with a source line.
    said = [line for line in capsys.readouterr().err.splitlines() if "bfloat16" in line]
    emulated = bfloat16_support() is None
    assert len(said) == emulated and all(line.startswith("warning: ") for line in said), said
    assert not [w for w in raised if issubclass(w.category, EmulatedBfloat16Warning)]
    # Same start image: bfloat16 convolutions (8-bit mantissa) give nearly the same costs.
    for got, want in zip(first_costs(half), first_costs(seeded)):
        assert got == pytest.approx(want, rel=0.05)
    assert first_costs(half) != first_costs(seeded)  # it really ran in another precision
    assert iio.imread(half / "generated_image.jpg").shape == (48, 64, 3)


def test_an_unknown_precision_is_refused_in_one_line(vgg_mat, tmp_path, capsys):
    out = tmp_path / "bad"
    with pytest.raises(SystemExit) as exit_info:  # argparse's own errors exit through SystemExit
        paint_in(out, vgg_mat, "--precision", "float8")
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and err.startswith("error: argument --precision")
    assert "\n" not in err and not out.exists()


@pytest.mark.parametrize(
    "size",
    [
        ("--width", "1", "--height", "1"),
        ("--width", "8", "--height", "8"),
        ("--width", "64", "--height", "12"),
    ],
)
def test_a_painting_with_a_side_under_16_pixels_is_refused(size, vgg_mat, tmp_path, capsys):
    # --width 1 painted a 1x1 image with status 0.
    out = tmp_path / "small"
    assert paint_in(out, vgg_mat, "--iterations", "1", size=size) == 2
    width, height = size[1], size[3]
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: a {width}x{height} painting is too small: VGG-19 needs at least 16 pixels a "
        f"side; give a larger --width/--height"
    )
    assert not out.exists()


def test_the_thinnest_painting_allowed_draws_its_record_without_a_warning(paint):
    import warnings

    # --width 5000 --height 1 leaked matplotlib's UserWarning from progress.png's layout; a
    # side under 16 pixels is now refused, and 16 draws without one.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out = paint("thin", "--iterations", "1", size=("--width", "3000", "--height", "16"))
    assert code == 0 and (out / "progress.png").is_file()
    assert [str(w.message) for w in caught if issubclass(w.category, UserWarning)] == []
