"""The main job fetches the project's default weights when they are missing, and only those:
never a path from NST_WEIGHTS or --weights."""

import pytest

from nst_utils.weights import sources
from nst_utils.cli import main

SMALL_RUN = [
    "generate",
    "--iterations",
    "1",
    "--width",
    "32",
    "--height",
    "24",
    "--seed",
    "1",
    "--no-progress",
    "--log-every",
    "0",
]


@pytest.fixture
def default_path_is(monkeypatch):
    """Make the project's default weights path another one (the real one is in the repository)."""

    def use(path):
        monkeypatch.setattr(sources, "default_weights_path", lambda: path)
        # generate reads the configured path; point it at the same file, as the default would be
        monkeypatch.setenv("NST_WEIGHTS", str(path))

    return use


@pytest.mark.slow
def test_missing_default_weights_are_downloaded_then_the_run_goes_on(
    published_is_local, default_path_is, vgg_mat_bytes, tmp_path, capsys
):
    target = tmp_path / "pretrained-model" / "imagenet-vgg-verydeep-19.mat"
    default_path_is(target)
    assert main(SMALL_RUN + ["--output", str(tmp_path / "out")]) == 0
    assert target.read_bytes() == vgg_mat_bytes
    assert published_is_local.requests == [None]
    assert (tmp_path / "out" / "generated_image.jpg").is_file()
    assert "downloading" in capsys.readouterr().err


def test_a_missing_nst_weights_file_is_not_downloaded(
    published_is_local, monkeypatch, tmp_path, capsys
):
    typo = tmp_path / "pretrained-modle" / "imagenet-vgg-verydeep-19.mat"
    monkeypatch.setenv("NST_WEIGHTS", str(typo))
    assert main(SMALL_RUN + ["--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith(
            f"error: VGG-19 weights not found at {typo} (from NST_WEIGHTS): run "
            f"`python -m nst_utils fetch-weights --dest {typo.parent}` to download "
            f"them there"
        )
        and "\n" not in err
    )
    assert f"or unset NST_WEIGHTS to use the default {sources.default_weights_path()}" in err
    assert published_is_local.requests == [] and not typo.parent.exists()
    assert not (tmp_path / "out").exists()


def test_a_missing_file_named_on_the_command_line_is_not_downloaded(
    published_is_local, default_path_is, tmp_path, capsys
):
    default_path_is(tmp_path / "default" / "imagenet-vgg-verydeep-19.mat")
    typo = tmp_path / "imagenet-vgg-verydeep-19.nat"
    assert main(SMALL_RUN + ["--weights", str(typo), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith(
            f"error: VGG-19 weights not found at {typo} (from --weights): run "
            f"`python -m nst_utils fetch-weights --dest {tmp_path}` to download "
            f"them (about 535 MB from "
        )
        and "\n" not in err
    )
    assert f") to {tmp_path / 'imagenet-vgg-verydeep-19.mat'}, and use that path" in err
    assert published_is_local.requests == [] and not typo.exists()
    assert not (tmp_path / "default").exists() and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_the_commands_follow_the_weights_cache_settings(
    vgg_mat_bytes, monkeypatch, tmp_path, capsys
):
    """NST_WEIGHTS_CACHE_DIR moves the cache and NST_WEIGHTS_CACHE=0 turns it off, for generate
    and check-weights as for the notebook."""
    mat = tmp_path / "weights" / "imagenet-vgg-verydeep-19.mat"
    mat.parent.mkdir()
    mat.write_bytes(vgg_mat_bytes)
    elsewhere = tmp_path / "cache-here"
    monkeypatch.setenv("NST_WEIGHTS", str(mat))
    monkeypatch.setenv("NST_WEIGHTS_CACHE_DIR", str(elsewhere))
    assert main(SMALL_RUN + ["--output", str(tmp_path / "a")]) == 0
    assert sorted(p.suffix for p in elsewhere.iterdir()) == [".json", ".nstcache"]
    assert sorted(p.name for p in mat.parent.iterdir()) == [mat.name]
    assert main(["check-weights"]) == 0
    assert "cache:" in capsys.readouterr().out
    monkeypatch.setenv("NST_WEIGHTS_CACHE", "0")
    monkeypatch.setenv("NST_WEIGHTS_CACHE_DIR", str(tmp_path / "unused"))
    assert main(SMALL_RUN + ["--output", str(tmp_path / "b")]) == 0
    assert not (tmp_path / "unused").exists()


@pytest.mark.parametrize("present", [True, False])
def test_generate_reads_the_weights_before_it_loads_tensorflow_unless_it_must_download_them(
    vgg_mat_bytes, default_path_is, monkeypatch, tmp_path, present
):
    # A first run reads the whole .mat (600 MB): before TensorFlow's hundreds of MB are loaded,
    # its peak stays under the run's own. A download waits for TensorFlow: a broken TensorFlow
    # is told before 535 MB are fetched for nothing.
    from nst_utils import quiet
    from nst_utils.commands import generate

    class Seen(Exception):
        pass

    order = []

    def load(settings, typed):
        order.append("weights")
        raise Seen

    monkeypatch.setattr(generate, "_load_weights", load)
    monkeypatch.setattr(quiet, "import_tensorflow", lambda: order.append("tensorflow"))
    mat = tmp_path / "pretrained-model" / "imagenet-vgg-verydeep-19.mat"
    default_path_is(mat)  # the one path a run may download to
    if present:
        mat.parent.mkdir()
        mat.write_bytes(vgg_mat_bytes)
    with pytest.raises(Seen):
        main(SMALL_RUN + ["--output", str(tmp_path / "out")])
    assert order == (["weights"] if present else ["tensorflow", "weights"])
