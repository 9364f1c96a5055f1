"""The grading worker: imports TensorFlow once, then runs each task in a forked, contained child.

Started by dispatch.py as ``python -m nst_utils.grading.worker``. It reads one JSON task per line
on stdin ({id, name, source, cases, limits}) and answers on its original stdout, one JSON line
per event: {"ready"}, {"started": id}, then {"id", "status", ...}. It never runs graded code
itself (no session either), so forking it is safe and each function starts clean in ~0.1 s.
Statuses: ok, timeout, output, files, forbidden, exit, crashed, sandbox (setting it up failed).
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import sys
import tempfile
import time

MAX_RESULT_BYTES = 8_000_000


def _child(task, workdir, output_path, result_fd, protocol_fds, limits):
    """In the forked process: contain, define the function, run its cases, send the outputs."""
    from . import protocol, runner, sandbox

    code = 0
    try:
        try:
            sandbox.contain(workdir, output_path, keep_fds=(result_fd,), close_fds=protocol_fds,
                            limits=limits)
        except Exception as exc:  # noqa: BLE001 - report it: the submission is not to blame
            os.write(result_fd, protocol.dumps({"sandbox_error": runner.error_info(exc)}).encode())
            os._exit(0)
        outcome = {"blocked": sandbox.blocked}
        env = runner.namespace()
        name = task["name"]
        try:
            exec(compile(task["source"], f"<{name} cell>", "exec"), env)
            fn = env.get(name)
            if not callable(fn):
                outcome["definition_error"] = {"type": "NotDefined",
                                               "message": f"the cell does not define {name}()"}
            else:
                outcome["outputs"] = runner.run_cases(name, fn, protocol.loads(task["cases"]))
        except BaseException as exc:  # noqa: BLE001 - the cell itself failed (SyntaxError, exit...)
            outcome["definition_error"] = runner.error_info(exc)
            if isinstance(exc, SyntaxError):
                outcome["definition_error"]["message"] = f"{exc.msg} (line {exc.lineno})"
        data = protocol.dumps(outcome).encode()
        with os.fdopen(result_fd, "wb", closefd=False) as channel:
            channel.write(data)
    except BaseException:  # noqa: BLE001 - never fall back into the worker's loop
        code = 70
    os._exit(code)


def _read_result(fd, pid, deadline):
    """(bytes, timed_out): everything the child sends until EOF, killing it at the deadline."""
    chunks, size = [], 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return b"".join(chunks), True
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks), False
        size += len(chunk)
        if size > MAX_RESULT_BYTES:
            return b"", False
        chunks.append(chunk)


def _files_in(folder) -> list:
    found = []
    for root, dirs, files in os.walk(folder):
        found += [os.path.relpath(os.path.join(root, f), folder) for f in files + dirs]
    return sorted(found)[:10]


def run_task(task, protocol_fds, limits) -> dict:
    """Fork, contain and run one task; its status, outputs and anything it did wrong."""
    from . import protocol

    base = tempfile.mkdtemp(prefix="nst-grade-")
    workdir, output_path = os.path.join(base, "cwd"), os.path.join(base, "printed.txt")
    os.mkdir(workdir)
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _child(task, workdir, output_path, write_fd, protocol_fds, limits)
    os.close(write_fd)
    try:
        data, timed_out = _read_result(read_fd, pid, started + limits.time)
    finally:
        os.close(read_fd)
    if timed_out:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
    _, status = os.waitpid(pid, 0)
    try:
        os.killpg(pid, signal.SIGKILL)  # anything it left behind in its group
    except OSError:
        pass
    result = {"id": task["id"], "status": "ok", "seconds": round(time.monotonic() - started, 3)}
    printed = os.path.getsize(output_path) if os.path.exists(output_path) else 0
    result["printed_bytes"] = printed
    files = _files_in(workdir)
    shutil.rmtree(base, ignore_errors=True)
    if timed_out:
        result["status"] = "timeout"
        return result
    try:
        outcome = protocol.loads(data.decode()) if data else None
    except ValueError:
        outcome = None
    if isinstance(outcome, dict):
        result.update({k: outcome[k] for k in ("outputs", "definition_error", "blocked") if k in outcome})
        if "sandbox_error" in outcome:
            result["status"], result["detail"] = "sandbox", outcome["sandbox_error"]
            return result
    if printed >= limits.output_bytes:
        result["status"] = "output"
    elif files:
        result["status"], result["files"] = "files", files
    elif result.get("blocked"):
        result["status"] = "forbidden"
    elif outcome is None:
        if os.WIFSIGNALED(status):
            result["status"], result["signal"] = "crashed", os.WTERMSIG(status)
        else:
            result["status"], result["exit_code"] = "exit", os.WEXITSTATUS(status)
    return result


def main() -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    protocol_out = os.fdopen(os.dup(1), "w", buffering=1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)  # stray prints (TensorFlow's included) must not corrupt the protocol
    import json

    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    from . import catalog, runner  # noqa: F401 - imported before forking, so children start fast

    protocol_fds = (0, protocol_out.fileno())
    protocol_out.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        task = json.loads(line)
        limits = catalog.Limits(**task["limits"])
        protocol_out.write(json.dumps({"started": task["id"]}) + "\n")
        protocol_out.write(json.dumps(run_task(task, protocol_fds, limits)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
