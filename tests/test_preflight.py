"""The checks `generate` makes before TensorFlow is imported, and what they refuse or tell."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from nst_utils import hardware, preflight
from nst_utils.errors import ConfigError
from nst_utils.settings import DEFAULTS


def run_generate(tmp_path, *options):
    """`generate` in a process of its own that reports whether TensorFlow was imported."""
    code = (
        "import sys\n"
        "from nst_utils import hardware\n"
        "hardware._cpuinfo = lambda: {'flags': 'fpu avx2 fma'}  # a CPU without bfloat16\n"
        "from nst_utils.cli import main\n"
        "status = main(sys.argv[1:])\n"
        "print('tensorflow imported' if 'tensorflow' in sys.modules else 'no tensorflow')\n"
        "sys.exit(status)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, "generate", "--no-progress", *options],
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
        timeout=300,
    )


def picture(path, width, height, frames=1):
    rng = np.random.default_rng(0)
    images = [
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        for _ in range(frames)
    ]
    images[0].save(path, save_all=frames > 1, append_images=images[1:])
    return path


@pytest.mark.slow
@pytest.mark.parametrize(
    "options, says",
    [
        (["--content", "https://example.com/photo.jpg"], "URLs are not supported"),
        (["--style", "http://example.com/style.jpg"], "URLs are not supported"),
        (["--content", "nowhere.jpg"], "nowhere.jpg"),
        (["--width", "1"], "too small: VGG-19 needs at least 16 pixels a side"),
        (["--width", "5000", "--height", "1"], "too small"),
        (["--weights", "missing.mat"], "missing.mat"),
        (["--precision", "bfloat16", "--width", "64"], "no native bfloat16"),
        (["--output", "{text}/sub"], "cannot write to the output folder"),
    ],
)
def test_a_refusal_comes_before_tensorflow_is_imported(options, says, vgg_mat, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a folder")
    options = [o.format(text=text) for o in options]
    if "--weights" not in options:
        options = ["--weights", str(vgg_mat), *options]
    done = run_generate(tmp_path, *options)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert says is None or says in lines[0], lines
    assert done.stdout.strip().splitlines()[-1] == "no tensorflow", done.stdout


def settings_for(tmp_path, content, **changes):
    return DEFAULTS.replace(content_image=content, output_dir=tmp_path / "out", **changes)


def test_a_distorted_aspect_is_told_with_the_size_to_use(tmp_path, capsys):
    content = picture(tmp_path / "wide.png", 4000, 50)
    preflight.check(settings_for(tmp_path, content))  # 400x300 by default: 80x
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: the content is 4000x50")
    assert "changed 60.0x" in err[0] and "--width 1280 --height 16" in err[0]
    preflight.check(settings_for(tmp_path, content, image_width=1600, image_height=None))
    assert capsys.readouterr().err == ""  # one side given: the other follows the aspect
    with pytest.raises(ConfigError, match="a 800x10 painting is too small"):
        preflight.check(settings_for(tmp_path, content, image_width=800, image_height=None))
    picture(tmp_path / "photo.png", 400, 240)
    preflight.check(settings_for(tmp_path, tmp_path / "photo.png"))  # 1.25x: nothing to say
    assert capsys.readouterr().err == ""


def test_an_animations_extra_frames_are_mentioned(tmp_path, capsys):
    gif = picture(tmp_path / "moving.gif", 80, 60, frames=3)
    preflight.check(settings_for(tmp_path, gif))
    assert capsys.readouterr().err.strip() == (
        f"warning: {gif} has 3 frames; only its first is painted"
    )


def fake_flags(monkeypatch, key, flags):
    monkeypatch.setattr(hardware, "_cpuinfo", lambda: {key: flags})


@pytest.mark.parametrize(
    "key, flags, native",
    [
        ("flags", "fpu avx2 fma avx512f", False),  # x86 with AVX-512, no BF16
        ("flags", "fpu avx2 avx512f avx512_bf16", True),
        ("flags", "fpu avx2 amx_tile amx_bf16", True),
        ("Features", "fp asimd sve", False),  # aarch64 (Neoverse N1)
        ("Features", "fp asimd sve sve2 bf16 i8mm", True),  # aarch64 (Neoverse V1/V2)
        ("flags", "", False),
    ],
)
def test_emulated_bfloat16_is_refused_unless_allowed(key, flags, native, monkeypatch):
    fake_flags(monkeypatch, key, flags)
    assert preflight.check_precision("float32") is False
    # True: emulated, and allowed (generate then says so once and quiets the rest).
    assert preflight.check_precision("bfloat16", allow_emulated=True) is (not native)
    if native:
        assert preflight.check_precision("bfloat16") is False
        return
    with pytest.raises(ConfigError) as refused:
        preflight.check_precision("bfloat16")
    assert "--precision float32" in str(refused.value)
    assert "--allow-emulated-bfloat16" in str(refused.value)


def test_this_hosts_answer_follows_its_cpu_flags():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        pytest.skip("no /proc/cpuinfo here")
    first = text.split("\n\n")[0]
    fields = dict(line.split(":", 1) for line in first.splitlines() if ":" in line)
    fields = {k.strip(): v.split() for k, v in fields.items()}
    words = set(fields.get("flags") or fields.get("Features") or [])
    native = bool(words & {"avx512_bf16", "amx_bf16", "bf16"})
    if native:
        preflight.check_precision("bfloat16")
    else:
        with pytest.raises(ConfigError):
            preflight.check_precision("bfloat16")
