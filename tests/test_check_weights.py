"""`python -m nst_utils check-weights [PATH]`: the report, and exit 0 only for a usable file."""

import hashlib
import json

import pytest

from nst_utils import cli


@pytest.mark.parametrize("fmt", ["new", "old"])
def test_a_good_file_exits_0_with_the_full_report(vgg_mat_files, fmt, capsys):
    path = vgg_mat_files[fmt]
    assert cli.main(["check-weights", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"size:       {path.stat().st_size:,} bytes" in out
    assert hashlib.md5(path.read_bytes()).hexdigest() in out
    assert f"format:     {fmt}" in out
    assert "conv layers: 16 of 16 sound" in out and out.count(" ok\n") == 16
    assert "mean pixel: (123.680, 116.779, 103.939)" in out
    assert "verdict:    usable, but not the published file" in out


def test_a_bad_file_exits_1_with_the_reasons(vgg_mat, tmp_path, capsys):
    path = tmp_path / "cut.mat"
    path.write_bytes(vgg_mat.read_bytes()[:1_000_000])
    assert cli.main(["check-weights", str(path)]) == 1
    out = capsys.readouterr().out
    assert "verdict:    NOT usable (1 problem)" in out and "truncated or corrupt" in out


def test_json_output(vgg_mat, capsys):
    assert cli.main(["check-weights", "--json", str(vgg_mat)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["usable"] and data["size"] == vgg_mat.stat().st_size and data["format"] == "new"


def test_the_default_path_follows_nst_weights(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NST_WEIGHTS", str(tmp_path / "nowhere.mat"))
    assert cli.main(["check-weights"]) == 1
    out = capsys.readouterr().out
    assert f"VGG-19 weights not found at {tmp_path / 'nowhere.mat'}" in out
    assert (
        "(from NST_WEIGHTS): run "
        f"`python -m nst_utils fetch-weights --dest {tmp_path / 'nowhere.mat'}`" in out
    )
    assert "unset NST_WEIGHTS" in out
