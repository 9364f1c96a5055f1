"""Fetching the VGG-19 weights: streamed with a progress bar, resumable, verified, atomic.

The file is written to `<dest>.part` beside the destination and renamed to `dest` only after
its size and MD5 check out, so the final name never holds a partial or wrong file. A `.part`
left by an interrupted run is resumed with an HTTP Range request where the server allows it,
and started over where it does not. Every failure is a `WeightsError` with one line: the URL,
the destination and what to do, with the command to retry: the one the user typed when the
fetch-weights command passes it (`retry`), else one made from the call's own arguments.
"""

from __future__ import annotations

import dataclasses
import http.client
import os
import re
import shlex
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ..errors import WeightsError
from .sources import (
    DEFAULT_FORMAT,
    WEIGHTS_SOURCES,
    check_weights_path,
    fetch_command_for,
    file_md5,
)

PART_SUFFIX = ".part"
CHUNK_BYTES = 1 << 20
DEFAULT_TIMEOUT = 30.0
#: Retries after a connection that broke mid-file (each resumes where it stopped). A request
#: that fails before any byte arrives is not retried, so a dead server fails within seconds.
DEFAULT_RETRIES = 3
RETRY_PAUSE = 1.0
USER_AGENT = "nst-fetch-weights/1"
_MD5_RE = re.compile(r"^[0-9a-f]{32}$")


@dataclasses.dataclass
class FetchResult:
    """A verified weights file: where, how big, its MD5, whether this call downloaded it, and
    the byte offset its last request resumed from."""

    path: Path
    size: int
    md5: str
    downloaded: bool
    resumed_from: int = 0


class _BrokenTransfer(Exception):
    """The connection broke after some bytes arrived: worth resuming."""


def part_path(dest) -> Path:
    """The temporary name a download of `dest` is written to: `<dest>.part`, beside it."""
    dest = Path(dest)
    return dest.with_name(dest.name + PART_SUFFIX)


def expected_source(
    fmt: str = DEFAULT_FORMAT, url: str | None = None, md5: str | None = None
) -> tuple:
    """(url, md5, size) to fetch and verify: the published ones for `fmt`, unless overridden.

    The published size applies only while the published MD5 does: an explicit other `md5`
    (a mirror of another variant, or a test file) leaves the size unchecked.
    """
    if fmt not in WEIGHTS_SOURCES:
        raise WeightsError(
            f"unknown weights format {fmt!r}: choose one of {', '.join(WEIGHTS_SOURCES)}"
        )
    source = WEIGHTS_SOURCES[fmt]
    if md5 is not None:
        md5 = md5.strip().lower()
        if not _MD5_RE.match(md5):
            raise WeightsError(f"--md5 must be 32 hexadecimal digits, got {md5!r}")
    if url is not None and urllib.parse.urlsplit(url).scheme not in ("http", "https", "file"):
        raise WeightsError(f"--url must start with http://, https:// or file://, got {url!r}")
    size = source["size"] if md5 in (None, source["md5"]) else None
    return url or source["url"], md5 or source["md5"], size


def retry_command(
    dest, fmt: str = DEFAULT_FORMAT, url: str | None = None, md5: str | None = None
) -> str:
    """The fetch-weights command line that repeats a download of `url` (or `fmt`'s) to `dest`."""
    command = fetch_command_for(dest)
    for option, value, default in (
        ("--format", fmt, DEFAULT_FORMAT),
        ("--url", url, None),
        ("--md5", md5, None),
    ):
        if value != default:
            command += f" {option} {shlex.quote(value)}"
    return command


def _failure(url, dest, reason, retry) -> WeightsError:
    return WeightsError(
        f"could not download {url} to {dest}: {reason}; check the connection and "
        f"retry `{retry}`, or download that URL by hand and put the file "
        f"at {dest}"
    )


def _reason(exc: BaseException, timeout: float) -> str:
    """A short human reason for a network exception."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"the server answered HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
    if isinstance(exc, socket.gaierror):
        return f"the host name could not be resolved ({exc.strerror or exc})"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return f"no answer within {timeout:g} s (timed out)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the URL right and the server up?)"
    if isinstance(exc, http.client.IncompleteRead):
        return "the connection was cut mid-file"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text).splitlines()[0]


def _content_range(header: str | None):
    """(start, total) from a `Content-Range: bytes start-end/total` header; total may be None."""
    match = re.match(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)", header or "")
    if not match:
        return None, None
    return int(match.group(1)), None if match.group(2) == "*" else int(match.group(2))


def _progress_bar(total, initial, name, enabled):
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=name,
        disable=not enabled,
        file=sys.stderr,
        dynamic_ncols=True,
    )


def _attempt(url, dest, part, *, timeout, expected_size, progress, retry) -> int:
    """One HTTP request, appending to `part` where the server resumes; returns the offset used.

    Raises `_BrokenTransfer` when the connection broke after bytes arrived, `WeightsError`
    for anything else.
    """
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        request = urllib.request.Request(url, headers=headers)
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            return offset  # the .part already holds the whole file (or more): verification decides
        raise _failure(url, dest, _reason(exc, timeout), retry) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        raise _failure(url, dest, _reason(exc, timeout), retry) from None
    with response:
        start, total = _content_range(response.headers.get("Content-Range"))
        if response.status == 206 and start == offset:
            mode = "ab"
        elif response.status == 206:  # a range we did not ask for: start clean on the next try
            part.unlink(missing_ok=True)
            raise _BrokenTransfer(f"the server resumed at byte {start}, not {offset}")
        else:  # the server ignored the range (or had none to honour): start over
            offset, mode = 0, "wb"
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        if expected_size is not None and total is not None and total != expected_size:
            raise _failure(
                url,
                dest,
                f"the server offers {total:,} bytes, the published file "
                f"has {expected_size:,} (wrong URL, or an error page?)",
                retry,
            )
        received = 0
        try:
            with open(part, mode) as out, _progress_bar(total, offset, dest.name, progress) as bar:
                while block := response.read(CHUNK_BYTES):
                    out.write(block)
                    received += len(block)
                    bar.update(len(block))
        except OSError as exc:
            if isinstance(exc, (socket.timeout, TimeoutError, ConnectionError)) and received:
                raise _BrokenTransfer(_reason(exc, timeout)) from None
            if isinstance(exc, (socket.timeout, TimeoutError, ConnectionError)):
                raise _failure(url, dest, _reason(exc, timeout), retry) from None
            raise WeightsError(
                f"could not write {part} ({exc.strerror or exc}); free some space "
                f"or choose another --dest, then retry `{retry}`"
            ) from None
        except http.client.HTTPException as exc:
            if received:
                raise _BrokenTransfer(_reason(exc, timeout)) from None
            raise _failure(url, dest, _reason(exc, timeout), retry) from None
    if total is not None and offset + received < total:
        if received:
            raise _BrokenTransfer("the connection closed before the end of the file")
        raise _failure(url, dest, "the connection closed before the end of the file", retry)
    return offset


def download(
    url,
    dest,
    *,
    timeout=DEFAULT_TIMEOUT,
    retries=DEFAULT_RETRIES,
    retry_pause=RETRY_PAUSE,
    expected_size=None,
    progress=True,
    retry=None,
) -> int:
    """Stream `url` into `part_path(dest)`, resuming a break up to `retries` times.

    Returns the byte offset the last request resumed from (0: it downloaded from the start).
    On failure the `.part` file stays, so the next call resumes it; the error suggests the
    command `retry` (default: fetch-weights to `dest` from `url`).
    """
    retry = retry or retry_command(dest, url=url)
    dest = Path(dest)
    part = part_path(dest)
    for attempt in range(retries + 1):
        try:
            return _attempt(
                url,
                dest,
                part,
                timeout=timeout,
                expected_size=expected_size,
                progress=progress,
                retry=retry,
            )
        except _BrokenTransfer as broken:
            if attempt == retries:
                raise _failure(
                    url,
                    dest,
                    f"{broken} after {retries + 1} tries; the part "
                    f"downloaded so far is kept in {part} and the next "
                    f"run resumes it",
                    retry,
                ) from None
            time.sleep(retry_pause)
    raise AssertionError("unreachable")  # pragma: no cover


def fetch_weights(
    dest,
    fmt: str = DEFAULT_FORMAT,
    url: str | None = None,
    md5: str | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    retry_pause: float = RETRY_PAUSE,
    force: bool = False,
    progress: bool = True,
    retry: str | None = None,
) -> FetchResult:
    """Download the weights file to `dest` and verify it; an already verified file is kept.

    `md5` defaults to the published MD5 of `fmt`; the size is checked where it is known. A
    file already at `dest` whose MD5 matches is not downloaded again; one that does not match
    is left alone unless `force`, and then replaced only once the new file has verified.
    `retry`: the command the errors suggest (default: one made from these arguments).
    """
    retry = retry or retry_command(dest, fmt, url, md5)
    url, want_md5, want_size = expected_source(fmt, url, md5)
    dest = Path(dest).expanduser()
    if dest.is_dir():
        raise WeightsError(
            f"{dest} is a folder; give the weights file's path, or pass the folder as --dest"
        )
    if dest.exists() and not force:
        have = file_md5(dest)
        if have == want_md5:
            return FetchResult(dest, dest.stat().st_size, have, downloaded=False)
        raise WeightsError(
            f"{dest} already exists but its MD5 is {have}, not {want_md5}; run "
            f"`python -m nst_utils check-weights {shlex.quote(str(dest))}` to see "
            f"what it is, or pass --force to download over it"
        )
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WeightsError(
            f"cannot create the folder {dest.parent} ({exc.strerror or exc}); choose another --dest"
        ) from None
    resumed_from = download(
        url,
        dest,
        timeout=timeout,
        retries=retries,
        retry_pause=retry_pause,
        expected_size=want_size,
        progress=progress,
        retry=retry,
    )
    part = part_path(dest)
    size = part.stat().st_size
    if want_size is not None and size != want_size:
        part.unlink()
        raise WeightsError(
            f"the download from {url} has {size:,} bytes, the published file "
            f"{want_size:,}; the partial file was deleted: retry `{retry}`, "
            f"or download that URL by hand and put the file at {dest}"
        )
    have = file_md5(part)
    if have != want_md5:
        part.unlink()
        raise WeightsError(
            f"the download from {url} has MD5 {have}, expected {want_md5}; it was "
            f"deleted: retry `{retry}`, or download that URL by hand and "
            f"put the file at {dest}"
        )
    os.replace(part, dest)
    return FetchResult(dest, size, have, downloaded=True, resumed_from=resumed_from)


def ensure_weights(
    path,
    fmt: str = DEFAULT_FORMAT,
    url: str | None = None,
    md5: str | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    progress: bool = True,
) -> Path:
    """`path` when a file is there; otherwise download it there, verified, and return `path`.

    For the main job: a present file is not re-hashed (loading checks its structure; run
    check-weights for its MD5). Raises `WeightsError` (one line) when the download fails.
    """
    path = Path(path).expanduser()
    if path.exists():
        return check_weights_path(path)
    if progress:
        print(
            f"VGG-19 weights not found at {path}: downloading them "
            f"({expected_source(fmt, url, md5)[0]})",
            file=sys.stderr,
        )
    fetch_weights(path, fmt, url, md5, timeout=timeout, retries=retries, progress=progress)
    return path
