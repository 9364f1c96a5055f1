"""Shared fixtures: VGG-19 `.mat` files with random weights, written at test time in each format.

The files have the real file's exact structure (fields, order, cell shapes, real conv kernel
shapes) but shrunk fc layers, so each is about 80 MB and takes well under a second to write.
Tests run in TF1 graph mode, as the notebook does.
"""

import http.server
import multiprocessing.util
import os
import re
import socket
import subprocess
import sys
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from nst_utils.quiet import import_tensorflow  # noqa: E402

# As the package imports it: quiet, so that xdist's controller prints none of its start-up lines.
tf = import_tensorflow()

from nst_utils import training  # noqa: E402
from nst_utils.grading.sandbox import host  # noqa: E402
from nst_utils.settings import DEFAULTS  # noqa: E402
from nst_utils.weights.synthetic import FORMATS, write_vgg19_mat  # noqa: E402

tf.compat.v1.disable_eager_execution()

#: A small model size that keeps every pool meaningful (48 -> 24 -> 12 -> 6 -> 3 -> 2).
SMALL_WIDTH, SMALL_HEIGHT = 64, 48


@pytest.fixture(autouse=True)
def slow_is_marked(request, monkeypatch):
    """A test not marked `slow` that starts a Python process, forks or paints (the training loop's
    tracker) fails once it has run, naming what it started: `pytest -m "not slow"` stays fast.
    Short non-Python tools (git, bwrap --version) are allowed, and so is the host's isolation
    probe, made once per session (cached) by whichever test first asks the grader to isolate."""
    if request.node.get_closest_marker("slow"):
        yield
        return
    started = []
    execute, fork, spawn = (
        subprocess.Popen._execute_child,
        os.fork,
        multiprocessing.util.spawnv_passfds,
    )
    tracker, probe, probing = training.RunTracker.__init__, host.isolation_problem, []

    def execute_child(self, args, executable, *rest, **options):
        argv = [args] if isinstance(args, (str, bytes, os.PathLike)) else list(args)
        program = str(executable or argv[0])
        python = os.path.basename(program).startswith("python") or program == sys.executable
        if python and not probing:
            started.append(f"a Python process {argv}"[:160])
        return execute(self, args, executable, *rest, **options)

    def forked():
        if not probing:
            started.append("a forked process")
        return fork()

    def spawned(path, args, passfds):
        started.append(f"a multiprocessing process {args}"[:160])
        return spawn(path, args, passfds)

    def isolation_problem():
        probing.append(1)
        try:
            return probe()
        finally:
            probing.pop()

    def painting(self, *args, **kwargs):
        started.append("a painting (training.RunTracker)")
        return tracker(self, *args, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "_execute_child", execute_child)
    monkeypatch.setattr(os, "fork", forked)
    monkeypatch.setattr(multiprocessing.util, "spawnv_passfds", spawned)
    monkeypatch.setattr(training.RunTracker, "__init__", painting)
    monkeypatch.setattr(host, "isolation_problem", isolation_problem)
    yield
    if started:
        pytest.fail(f"not marked @pytest.mark.slow, yet started {started[0]}", pytrace=False)


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("weights")


@pytest.fixture(scope="session")
def vgg_mat_files(weights_dir):
    """{format: path} of a random-weights VGG-19 file in each format (seeds 0, 1, 2)."""
    return {
        fmt: write_vgg19_mat(weights_dir / f"vgg19-{fmt}.mat", fmt, seed=i)
        for i, fmt in enumerate(FORMATS)
    }


@pytest.fixture(scope="session")
def vgg_mat(vgg_mat_files):
    """The new-format random-weights file: the one most users download."""
    return vgg_mat_files["new"]


@pytest.fixture
def small_config(vgg_mat, tmp_path):
    """The run defaults at 64x48 on the fixture weights, writing into a temporary output folder."""
    return DEFAULTS.replace(
        image_width=SMALL_WIDTH,
        image_height=SMALL_HEIGHT,
        vgg_model=vgg_mat,
        output_dir=tmp_path / "output",
    )


@pytest.fixture
def sess():
    """A session on a fresh default graph, set as the default session."""
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session, session.as_default():
        yield session


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


class _FileHandler(http.server.BaseHTTPRequestHandler):
    """Answers GET for FileServer: whole file, a byte range, an error, or a cut connection."""

    def log_message(self, *args):  # keep the test output clean
        pass

    def do_GET(self):
        owner = self.server.owner
        asked = self.headers.get("Range")
        owner.requests.append(asked)
        if owner.status:
            self.send_error(owner.status)
            return
        data, start, status = owner.data, 0, 200
        match = re.fullmatch(r"bytes=(\d+)-", asked or "")
        if match and owner.ranges:
            start, status = int(match.group(1)), 206
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        self.send_response(status)
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("Accept-Ranges", "bytes" if owner.ranges else "none")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        end, cut = len(data), False
        if owner.cuts > 0 and owner.cut_at is not None and owner.cut_at > start:
            owner.cuts -= 1
            end, cut = owner.cut_at, True
        self.wfile.write(memoryview(data)[start:end])
        owner.sent += end - start
        if cut:
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)


class FileServer:
    """Serves one file's bytes over HTTP on 127.0.0.1, with the failures a test asks for.

    ranges: honour `Range: bytes=N-` (206) or ignore it (200, whole file); cut_at and cuts: the
    next `cuts` responses stop at byte cut_at of the file and drop the connection; status: answer
    every request with this HTTP error instead. requests records each request's Range header
    (None without one); sent counts the body bytes written.
    """

    def __init__(self, data: bytes = b""):
        self.data, self.ranges, self.cut_at, self.cuts, self.status = data, True, None, 0, None
        self.requests, self.sent = [], 0
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FileHandler)
        self.httpd.owner = self
        self.httpd.handle_error = self._client_hung_up
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def _client_hung_up(self, request, client_address):
        """A client that stops reading (after a failed size check, say) is normal: no traceback."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/imagenet-vgg-verydeep-19.mat"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session")
def vgg_mat_bytes(vgg_mat):
    """The bytes of the new-format fixture file, served by `file_server`."""
    return vgg_mat.read_bytes()


@pytest.fixture
def file_server(vgg_mat_bytes):
    """A local HTTP server on 127.0.0.1 serving the new-format fixture file; see FileServer."""
    server = FileServer(vgg_mat_bytes)
    yield server
    server.close()


@pytest.fixture
def refused_url():
    """A URL on 127.0.0.1 where nothing listens: connections to it are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/imagenet-vgg-verydeep-19.mat"


@pytest.fixture
def published_is_local(monkeypatch, file_server, vgg_mat_bytes):
    """Make the 'published' new-format file the fixture served on 127.0.0.1."""
    import hashlib

    from nst_utils.weights import sources

    monkeypatch.setitem(
        sources.WEIGHTS_SOURCES,
        "new",
        {
            "url": file_server.url,
            "md5": hashlib.md5(vgg_mat_bytes).hexdigest(),
            "size": len(vgg_mat_bytes),
        },
    )
    return file_server
