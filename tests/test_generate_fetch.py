"""The main job fetches the configured weights when they are missing, and only those."""

import hashlib

import pytest

from nst_utils.weights import sources
from nst_utils.cli import main

SMALL_RUN = ["generate", "--iterations", "1", "--width", "32", "--height", "24", "--seed", "1",
             "--no-progress", "--log-every", "0"]


@pytest.fixture
def published_is_local(monkeypatch, file_server, vgg_mat_bytes):
    """Make the 'published' new-format file the fixture served on 127.0.0.1."""
    monkeypatch.setitem(sources.WEIGHTS_SOURCES, "new", {
        "url": file_server.url, "md5": hashlib.md5(vgg_mat_bytes).hexdigest(),
        "size": len(vgg_mat_bytes)})
    return file_server


def test_missing_configured_weights_are_downloaded_then_the_run_goes_on(
        published_is_local, vgg_mat_bytes, monkeypatch, tmp_path, capsys):
    target = tmp_path / "pretrained-model" / "imagenet-vgg-verydeep-19.mat"
    monkeypatch.setenv("NST_WEIGHTS", str(target))
    assert main(SMALL_RUN + ["--output", str(tmp_path / "out")]) == 0
    assert target.read_bytes() == vgg_mat_bytes
    assert published_is_local.requests == [None]
    assert (tmp_path / "out" / "generated_image.jpg").is_file()
    assert "downloading" in capsys.readouterr().err


def test_a_missing_file_named_on_the_command_line_is_not_downloaded(
        published_is_local, tmp_path, capsys):
    typo = tmp_path / "imagenet-vgg-verydeep-19.nat"
    assert main(SMALL_RUN + ["--weights", str(typo), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: VGG-19 weights not found at") and "\n" not in err
    assert "python -m nst_utils fetch-weights" in err
    assert published_is_local.requests == [] and not typo.exists()
    assert not (tmp_path / "out").exists()


def test_the_commands_follow_the_weights_cache_settings(vgg_mat_bytes, monkeypatch, tmp_path, capsys):
    """NST_WEIGHTS_CACHE_DIR moves the cache and NST_WEIGHTS_CACHE=0 turns it off, for generate
    and check-weights as for the notebook."""
    mat = tmp_path / "weights" / "imagenet-vgg-verydeep-19.mat"
    mat.parent.mkdir()
    mat.write_bytes(vgg_mat_bytes)
    elsewhere = tmp_path / "cache-here"
    monkeypatch.setenv("NST_WEIGHTS", str(mat))
    monkeypatch.setenv("NST_WEIGHTS_CACHE_DIR", str(elsewhere))
    assert main(SMALL_RUN + ["--output", str(tmp_path / "a")]) == 0
    assert [p.suffix for p in elsewhere.iterdir()] == [".nstcache"]
    assert sorted(p.name for p in mat.parent.iterdir()) == [mat.name]
    assert main(["check-weights"]) == 0
    assert "cache:" in capsys.readouterr().out
    monkeypatch.setenv("NST_WEIGHTS_CACHE", "0")
    monkeypatch.setenv("NST_WEIGHTS_CACHE_DIR", str(tmp_path / "unused"))
    assert main(SMALL_RUN + ["--output", str(tmp_path / "b")]) == 0
    assert not (tmp_path / "unused").exists()
