"""`python -m nst_utils fetch-weights` against a local HTTP server."""

import hashlib
import shlex
import subprocess
import sys

import pytest

from nst_utils import cli
from nst_utils.commands.fetch_weights import destination
from nst_utils.config import WEIGHTS_FILENAME
from nst_utils.weights import sources
from limits import HANG_SECONDS


@pytest.fixture(scope="session")
def served_md5(vgg_mat_bytes):
    return hashlib.md5(vgg_mat_bytes).hexdigest()


def test_fetch_then_check(file_server, vgg_mat_bytes, served_md5, tmp_path, capsys):
    args = ["fetch-weights", "--dest", str(tmp_path), "--url", file_server.url, "--md5", served_md5]
    assert cli.main(args + ["--quiet"]) == 0
    dest = tmp_path / WEIGHTS_FILENAME
    assert dest.read_bytes() == vgg_mat_bytes
    assert (
        f"downloaded and verified {dest} ({len(vgg_mat_bytes):,} bytes, MD5 {served_md5})"
        in capsys.readouterr().out
    )
    assert cli.main(args) == 0  # already there: no second request
    assert (
        "already there and verified" in capsys.readouterr().out and len(file_server.requests) == 1
    )
    assert cli.main(["check-weights", str(dest)]) == 0
    assert "usable, but not the published file" in capsys.readouterr().out


def test_progress_bar_goes_to_stderr(file_server, served_md5, tmp_path, capsys):
    assert (
        cli.main(
            [
                "fetch-weights",
                "--dest",
                str(tmp_path),
                "--url",
                file_server.url,
                "--md5",
                served_md5,
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert WEIGHTS_FILENAME in err and "100%" in err and "B/s" in err


def test_a_mismatch_exits_2_with_one_line(file_server, tmp_path, capsys):
    assert (
        cli.main(
            [
                "fetch-weights",
                "--dest",
                str(tmp_path),
                "--url",
                file_server.url,
                "--md5",
                "f" * 32,
                "--quiet",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: the download from") and "\n" not in err
    assert list(tmp_path.iterdir()) == []


def test_a_wrong_md5_argument(tmp_path, capsys):
    assert cli.main(["fetch-weights", "--dest", str(tmp_path), "--md5", "xyz"]) == 2
    assert "32 hexadecimal digits" in capsys.readouterr().err


@pytest.mark.slow
def test_refused_from_a_fresh_process(refused_url, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nst_utils",
            "fetch-weights",
            "--dest",
            str(tmp_path),
            "--url",
            refused_url,
            "--timeout",
            "2",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=HANG_SECONDS,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "connection refused" in lines[0] and refused_url in lines[0]
    assert str(tmp_path / WEIGHTS_FILENAME) in lines[0]
    assert "Traceback" not in result.stderr


def test_destination(tmp_path, monkeypatch):
    assert destination(tmp_path) == tmp_path / WEIGHTS_FILENAME
    assert destination(tmp_path / "mine.mat") == tmp_path / "mine.mat"
    monkeypatch.delenv("NST_WEIGHTS", raising=False)
    assert destination(None) == sources.default_weights_path()
    assert destination(None).parts[-2:] == ("pretrained-model", WEIGHTS_FILENAME)
    monkeypatch.setenv("NST_WEIGHTS", str(sources.default_weights_path()))
    assert destination(None) == sources.default_weights_path()


def test_nst_weights_is_never_a_download_target(
    file_server, served_md5, tmp_path, monkeypatch, capsys
):
    typo = tmp_path / "x" / "w.mat"
    monkeypatch.setenv("NST_WEIGHTS", str(typo))
    assert (
        cli.main(["fetch-weights", "--url", file_server.url, "--md5", served_md5, "--quiet"]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: NST_WEIGHTS points at {typo}") and "\n" not in err
    assert f"`python -m nst_utils fetch-weights --dest {typo}` to download there" in err
    assert f"unset NST_WEIGHTS to download to the default {sources.default_weights_path()}" in err
    assert file_server.requests == [] and not typo.parent.exists()


def suggested_command(message: str) -> str:
    """The command between the backticks after 'retry' in an error line."""
    return message.split("retry `", 1)[1].split("`", 1)[0]


def test_a_failed_download_suggests_exactly_the_typed_command(refused_url, tmp_path, capsys):
    folder = tmp_path / "my weights"  # a space, so the suggestion must quote it
    typed = [
        "fetch-weights",
        "--dest",
        str(folder),
        "--url",
        refused_url,
        "--md5",
        "AB" * 16,
        "--timeout",
        "2.5",
        "--retries",
        "0",
        "--quiet",
    ]
    assert cli.main(typed) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "connection refused" in err
    suggested = suggested_command(err)
    assert suggested == (
        "python -m nst_utils fetch-weights --dest "
        + shlex.quote(str(folder))
        + f" --url {refused_url} --md5 {'AB' * 16} --timeout 2.5 --retries 0 --quiet"
    )
    words = shlex.split(suggested)
    assert words[:3] == ["python", "-m", "nst_utils"] and words[3:] == typed
    parser = cli.build_parser()
    assert vars(parser.parse_args(words[3:])) == vars(parser.parse_args(typed))


def test_a_plain_command_is_repeated_plainly_and_flags_are_kept(file_server, tmp_path, capsys):
    file_server.status = 404
    assert (
        cli.main(["fetch-weights", "--dest", str(tmp_path), "--url", file_server.url, "--force"])
        == 2
    )
    err = capsys.readouterr().err
    assert suggested_command(err) == (
        f"python -m nst_utils fetch-weights --dest {tmp_path} --url {file_server.url} --force"
    )


def test_a_checksum_mismatch_suggests_the_typed_command(file_server, tmp_path, capsys):
    wrong = "f" * 32
    assert (
        cli.main(
            [
                "fetch-weights",
                "--dest",
                str(tmp_path),
                "--format",
                "new",
                "--url",
                file_server.url,
                "--md5",
                wrong,
                "--quiet",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert suggested_command(err) == (
        f"python -m nst_utils fetch-weights --dest {tmp_path} "
        f"--format new --url {file_server.url} --md5 {wrong} --quiet"
    )


def test_a_url_without_a_scheme_is_refused_in_one_line(tmp_path, capsys):
    assert (
        cli.main(["fetch-weights", "--dest", str(tmp_path), "--url", "www.example.com/v.mat"]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --url must start with http://") and "\n" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "option, value", [("--timeout", "nan"), ("--timeout", "0"), ("--retries", "-1")]
)
def test_bad_timeouts_and_retries_are_refused_by_the_parser(tmp_path, capsys, option, value):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["fetch-weights", "--dest", str(tmp_path), option, value])
    err = capsys.readouterr().err.strip()
    assert (
        exit_info.value.code == 2
        and err.startswith(f"error: argument {option}")
        and "\n" not in err
    )
