"""Downloading the weights from a local HTTP server: full, resumed, restarted, and every failure."""

import hashlib
import shlex
import socket

import pytest

from nst_utils.weights import download, sources
from nst_utils.errors import WeightsError

#: Short enough that a test of a dead server takes about a second.
TIMEOUT = 1.0


@pytest.fixture(scope="session")
def served_md5(vgg_mat_bytes):
    return hashlib.md5(vgg_mat_bytes).hexdigest()


def fetch(server_or_url, dest, md5, **kwargs):
    url = server_or_url if isinstance(server_or_url, str) else server_or_url.url
    kwargs = {"timeout": TIMEOUT, "retry_pause": 0, "progress": False, **kwargs}
    return download.fetch_weights(dest, "new", url, md5, **kwargs)


def one_line(err):
    message = str(err.value)
    assert "\n" not in message
    return message


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_full_download_is_verified_and_renamed(file_server, vgg_mat_bytes, served_md5, tmp_path):
    dest = tmp_path / "w" / "imagenet-vgg-verydeep-19.mat"
    result = fetch(file_server, dest, served_md5)
    assert dest.read_bytes() == vgg_mat_bytes
    assert (result.path, result.size, result.md5) == (dest, len(vgg_mat_bytes), served_md5)
    assert result.downloaded and result.resumed_from == 0
    assert file_server.requests == [None]
    assert leftovers(dest.parent) == [dest.name]


def test_a_verified_file_is_not_downloaded_again(file_server, served_md5, tmp_path):
    dest = tmp_path / "imagenet-vgg-verydeep-19.mat"
    fetch(file_server, dest, served_md5)
    again = fetch(file_server, dest, served_md5)
    assert not again.downloaded and again.md5 == served_md5
    assert len(file_server.requests) == 1


def test_a_cut_connection_resumes_where_it_stopped(
    file_server, vgg_mat_bytes, served_md5, tmp_path
):
    cut = len(vgg_mat_bytes) // 3
    file_server.cut_at, file_server.cuts = cut, 1
    dest = tmp_path / "imagenet-vgg-verydeep-19.mat"
    result = fetch(file_server, dest, served_md5)
    assert dest.read_bytes() == vgg_mat_bytes
    assert file_server.requests == [None, f"bytes={cut}-"]
    assert result.resumed_from == cut
    assert file_server.sent == len(vgg_mat_bytes)  # nothing was sent twice


def test_a_failed_run_keeps_the_part_and_the_next_run_resumes(
    file_server, vgg_mat_bytes, served_md5, tmp_path
):
    cut = len(vgg_mat_bytes) // 4
    file_server.cut_at, file_server.cuts = cut, 1
    dest = tmp_path / "imagenet-vgg-verydeep-19.mat"
    with pytest.raises(WeightsError, match="cut mid-file|closed before the end") as err:
        fetch(file_server, dest, served_md5, retries=0)
    message = one_line(err)
    assert file_server.url in message and str(dest) in message and "resumes" in message
    assert not dest.exists()
    assert download.part_path(dest).read_bytes() == vgg_mat_bytes[:cut]
    fetch(file_server, dest, served_md5)
    assert dest.read_bytes() == vgg_mat_bytes
    assert file_server.requests == [None, f"bytes={cut}-"]
    assert not download.part_path(dest).exists()


def test_a_server_without_ranges_starts_over(file_server, vgg_mat_bytes, served_md5, tmp_path):
    file_server.ranges = False
    cut = len(vgg_mat_bytes) // 2
    file_server.cut_at, file_server.cuts = cut, 1
    dest = tmp_path / "imagenet-vgg-verydeep-19.mat"
    result = fetch(file_server, dest, served_md5)
    assert dest.read_bytes() == vgg_mat_bytes
    assert file_server.requests == [None, f"bytes={cut}-"]  # asked to resume, got the whole file
    assert result.resumed_from == 0
    assert file_server.sent == cut + len(vgg_mat_bytes)


def test_a_complete_part_file_is_verified_without_downloading(
    file_server, vgg_mat_bytes, served_md5, tmp_path
):
    dest = tmp_path / "imagenet-vgg-verydeep-19.mat"
    download.part_path(dest).write_bytes(vgg_mat_bytes)
    result = fetch(file_server, dest, served_md5)
    assert file_server.requests == [f"bytes={len(vgg_mat_bytes)}-"]  # answered 416
    assert file_server.sent == 0 and result.downloaded
    assert dest.read_bytes() == vgg_mat_bytes


def test_a_checksum_mismatch_leaves_nothing_behind(file_server, served_md5, tmp_path):
    dest = tmp_path / "imagenet-vgg-verydeep-19.mat"
    wrong = "0" * 32
    with pytest.raises(WeightsError, match=f"has MD5 {served_md5}, expected {wrong}") as err:
        fetch(file_server, dest, wrong)
    assert "deleted" in one_line(err)
    assert leftovers(tmp_path) == []


def test_a_size_other_than_the_published_one_stops_before_writing(
    file_server, vgg_mat_bytes, tmp_path
):
    dest = tmp_path / "imagenet-vgg-verydeep-19.mat"
    with pytest.raises(
        WeightsError,
        match=f"offers {len(vgg_mat_bytes):,} bytes, the published file has 534,904,783",
    ) as err:
        download.fetch_weights(dest, "new", file_server.url, timeout=TIMEOUT, progress=False)
    one_line(err)
    assert leftovers(tmp_path) == []


def test_http_404(file_server, served_md5, tmp_path):
    file_server.status = 404
    dest = tmp_path / "imagenet-vgg-verydeep-19.mat"
    with pytest.raises(WeightsError, match="HTTP 404") as err:
        fetch(file_server, dest, served_md5)
    message = one_line(err)
    assert file_server.url in message and str(dest) in message
    assert "download that URL by hand" in message
    assert leftovers(tmp_path) == [] and len(file_server.requests) == 1  # no retries


def test_connection_refused(refused_url, served_md5, tmp_path):
    dest = tmp_path / "imagenet-vgg-verydeep-19.mat"
    with pytest.raises(WeightsError, match="connection refused") as err:
        fetch(refused_url, dest, served_md5)
    message = one_line(err)
    assert refused_url in message and str(dest) in message and "retry" in message
    assert leftovers(tmp_path) == []


def test_unknown_host(served_md5, tmp_path):
    url = "http://no-such-host.invalid/imagenet-vgg-verydeep-19.mat"
    with pytest.raises(WeightsError, match="could not be resolved") as err:
        fetch(url, tmp_path / "w.mat", served_md5)
    assert url in one_line(err)


def test_a_server_that_never_answers_times_out(served_md5, tmp_path):
    with socket.socket() as silent:  # accepts connections (backlog) but never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/w.mat"
        with pytest.raises(WeightsError, match=r"no answer within 0.5 s") as err:
            fetch(url, tmp_path / "w.mat", served_md5, timeout=0.5)
    one_line(err)


def test_another_file_in_the_way_is_kept_unless_forced(
    file_server, vgg_mat_bytes, served_md5, tmp_path
):
    dest = tmp_path / "imagenet-vgg-verydeep-19.mat"
    dest.write_bytes(b"my own file")
    with pytest.raises(WeightsError, match="already exists but its MD5 is") as err:
        fetch(file_server, dest, served_md5)
    assert "check-weights" in one_line(err) and "--force" in str(err.value)
    assert dest.read_bytes() == b"my own file" and file_server.requests == []
    fetch(file_server, dest, served_md5, force=True)
    assert dest.read_bytes() == vgg_mat_bytes


def test_a_failed_forced_download_keeps_the_old_file(file_server, tmp_path):
    dest = tmp_path / "imagenet-vgg-verydeep-19.mat"
    dest.write_bytes(b"my own file")
    with pytest.raises(WeightsError, match="expected"):
        fetch(file_server, dest, "1" * 32, force=True)
    assert dest.read_bytes() == b"my own file"


def test_progress_bar_shows_bytes_rate_and_time_left(file_server, served_md5, tmp_path, capsys):
    fetch(file_server, tmp_path / "imagenet-vgg-verydeep-19.mat", served_md5, progress=True)
    err = capsys.readouterr().err
    assert "100%" in err and "B/s" in err and "<" in err  # tqdm: elapsed<remaining


def test_expected_source_defaults_and_overrides():
    assert download.expected_source("new") == (
        "https://www.vlfeat.org/matconvnet/models/imagenet-vgg-verydeep-19.mat",
        "106118b7cf60435e6d8e04f6a6dc3657",
        534_904_783,
    )
    assert download.expected_source("old")[1:] == ("8ee3263992981a1d26e73b3ca028a123", None)
    assert download.expected_source("new", "http://m/x.mat", "AB" * 16) == (
        "http://m/x.mat",
        "ab" * 16,
        None,
    )
    with pytest.raises(WeightsError, match="32 hexadecimal digits"):
        download.expected_source("new", md5="1234")
    with pytest.raises(WeightsError, match="unknown weights format"):
        download.expected_source("newest")


def test_file_md5_matches_hashlib(vgg_mat, vgg_mat_bytes):
    assert sources.file_md5(vgg_mat, chunk_bytes=1000_003) == hashlib.md5(vgg_mat_bytes).hexdigest()


def test_ensure_weights_returns_a_present_file_without_network(vgg_mat, refused_url):
    assert download.ensure_weights(vgg_mat, url=refused_url, progress=False) == vgg_mat


def test_ensure_weights_downloads_a_missing_file(file_server, vgg_mat_bytes, served_md5, tmp_path):
    dest = tmp_path / "pretrained-model" / "imagenet-vgg-verydeep-19.mat"
    assert (
        download.ensure_weights(dest, url=file_server.url, md5=served_md5, progress=False) == dest
    )
    assert dest.read_bytes() == vgg_mat_bytes


def test_ensure_weights_failure_is_one_weights_error(refused_url, tmp_path):
    dest = tmp_path / "imagenet-vgg-verydeep-19.mat"
    with pytest.raises(WeightsError, match="connection refused") as err:
        download.ensure_weights(dest, url=refused_url, timeout=TIMEOUT, progress=False)
    assert str(dest) in one_line(err) and refused_url in str(err.value)


def test_a_library_call_suggests_a_command_with_its_own_arguments(refused_url, tmp_path):
    dest = tmp_path / "a folder" / "w.mat"
    with pytest.raises(WeightsError) as err:
        fetch(refused_url, dest, "ab" * 16, retries=0)
    suggested = one_line(err).split("retry `", 1)[1].split("`", 1)[0]
    assert shlex.split(suggested) == [
        "python",
        "-m",
        "nst_utils",
        "fetch-weights",
        "--dest",
        str(dest),
        "--url",
        refused_url,
        "--md5",
        "ab" * 16,
    ]


def test_a_given_retry_command_is_used_as_it_is(refused_url, tmp_path):
    with pytest.raises(WeightsError, match="retry `my command --quiet`"):
        fetch(refused_url, tmp_path / "w.mat", "ab" * 16, retry="my command --quiet")
