"""The box's init: imports TensorFlow once, then runs each graded function in a forked child.

Started inside the namespaces (PID 1 there) for one submission. JSON lines on stdin/stdout:
  out {"ready": true}; in {"task": {id, name, source, cases, limits, oracles}};
  out {"started": id}; while the child runs, out {"oracle": {name, value}} and in
  {"oracle_reply": {"value"} or {"error"}}; out {"result": {id, status, ...}}.
Statuses: ok, timeout, output, files, forbidden, exit, crashed, sandbox (setting up failed),
protocol (graded code wrote to this channel itself: a line the protocol does not know).
After each function every other process in the box is killed and /tmp emptied, so nothing a
function leaves behind reaches the next one.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import sys
import time

MAX_LINE_BYTES = 8_000_000
#: Calls a function may make to the grader's stand-ins for the functions it depends on.
MAX_ORACLE_CALLS = 64


class _Lines:
    """Line reader over a raw file descriptor, with a deadline and a size bound."""

    def __init__(self, fd):
        self.fd, self.buffer = fd, b""

    def read(self, deadline):
        """The next line (bytes, without newline); None at EOF, too long, or past the deadline."""
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.fd], [], [], remaining)[0]:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk or len(self.buffer) > MAX_LINE_BYTES:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line


def _send(fd, message) -> None:
    from . import protocol

    data = (protocol.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(fd, data) :]


def _child(task, workdir, output_path, to_init, from_init, close_fds):
    """In the forked process: contain, define the function, run its cases, send the outputs."""
    from . import guard, protocol, runner

    code = 0
    try:
        try:
            guard.contain(
                workdir,
                output_path,
                keep_fds=(to_init, from_init),
                close_fds=close_fds,
                limits=task["limits"],
            )
        except Exception as exc:  # noqa: BLE001 - report it: the submission is not to blame
            _send(to_init, {"sandbox_error": runner.error_info(exc)})
            os._exit(0)
        _send(to_init, {"contained": True})  # from here on, messages may be the submission's
        replies = _Lines(from_init)

        def ask(name, value):
            _send(to_init, {"oracle": {"name": name, "value": value}})
            line = replies.read(time.monotonic() + 60)
            reply = protocol.loads(line.decode()) if line else {"error": "no answer"}
            if "value" not in reply:
                raise RuntimeError(f"{name} is not available here: {reply.get('error')}")
            return reply["value"]

        extra = {name: runner.oracle_function(name, ask) for name in task.get("oracles", ())}
        env = runner.namespace(extra)
        outcome = {"blocked": guard.blocked}
        name = task["name"]
        try:
            exec(compile(task["source"], f"<{name} cell>", "exec"), env)
            failure = None
        except BaseException as exc:  # noqa: BLE001 - the cell itself failed (SyntaxError, exit...)
            failure = runner.error_info(exc)
            if isinstance(exc, SyntaxError):
                failure["message"] = f"{exc.msg} (line {exc.lineno})"
        fn = env.get(name)
        if callable(fn):  # defined before the cell failed, if it did: the notebook has it too
            outcome["outputs"] = runner.run_cases(fn, protocol.loads(task["cases"]))
        else:
            outcome["definition_error"] = failure or {
                "type": "NotDefined",
                "message": f"the cell does not define {name}()",
            }
        _send(to_init, {"outcome": outcome})
    except BaseException:  # noqa: BLE001 - never fall back into the init's loop
        code = 70
    os._exit(code)


def _files_in(folder) -> list:
    found = []
    for root, dirs, files in os.walk(folder):
        found += [os.path.relpath(os.path.join(root, f), folder) for f in files + dirs]
    return sorted(found)[:10]


def _exit_status(pid, deadline):
    """The child's wait status once it has ended, or None if it is still running at `deadline`."""
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.01)
    return None


def _end_everything_but_me(child_pid) -> None:
    """Kill every process the function started: all of the box as its init, else its group."""
    if os.getpid() == 1:
        try:
            os.kill(-1, signal.SIGKILL)  # in a PID namespace: every process but the init
        except OSError:
            pass
    else:
        try:
            os.killpg(child_pid, signal.SIGKILL)
        except OSError:
            pass
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return
        except InterruptedError:
            continue


def _empty(folder) -> None:
    for entry in os.listdir(folder):
        path = os.path.join(folder, entry)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except OSError:
                pass


def run_task(task, host_in: _Lines, host_out: int, close_fds, scratch) -> dict:
    """Fork, contain and run one task, relaying its questions to the grader; its result."""
    from . import protocol

    limits = task["limits"]
    base = os.path.join(scratch, f"task-{os.getpid()}-{time.monotonic_ns()}")
    workdir, output_path = os.path.join(base, "cwd"), os.path.join(base, "printed.txt")
    os.makedirs(workdir)
    up_read, up_write = os.pipe()
    down_read, down_write = os.pipe()
    sys.stdout.flush()
    started = time.monotonic()
    deadline = started + limits["time"]
    pid = os.fork()
    if pid == 0:
        os.close(up_read)
        os.close(down_write)
        _child(task, workdir, output_path, up_write, down_read, close_fds)
    os.close(up_write)
    os.close(down_read)
    child, outcome, timed_out, calls, contained = _Lines(up_read), None, False, 0, False
    abused = False  # a line on the channel that its protocol does not know
    while True:
        line = child.read(deadline)
        if line is None:
            timed_out = time.monotonic() >= deadline
            break
        try:
            message = protocol.loads(line.decode())
        except ValueError:
            message = None
        if not isinstance(message, dict):
            abused = contained
            break
        if "oracle" in message and calls < MAX_ORACLE_CALLS:
            calls += 1
            _send(host_out, {"oracle": message["oracle"]})
            reply = host_in.read(deadline)
            try:
                os.write(down_write, (reply or b'{"error":"no answer"}') + b"\n")
            except OSError:
                pass
        elif "oracle" in message:
            os.write(down_write, b'{"error":"too many calls"}\n')
        elif message.get("contained") is True and not contained:
            contained = True
        elif "outcome" in message or ("sandbox_error" in message and not contained):
            outcome = message
            break
        else:  # a sandbox error sent by graded code is not believed, nor anything unknown
            abused = contained
            break
    os.close(up_read)
    os.close(down_write)
    status = None if timed_out else _exit_status(pid, time.monotonic() + 2)
    _end_everything_but_me(pid)
    result = {"id": task["id"], "status": "ok", "seconds": round(time.monotonic() - started, 3)}
    printed = os.path.getsize(output_path) if os.path.exists(output_path) else 0
    result["printed_bytes"] = printed
    files = _files_in(workdir)
    shutil.rmtree(base, ignore_errors=True)
    _empty(scratch) if os.getpid() == 1 else None
    if timed_out:
        result["status"] = "timeout"
        return result
    if abused:
        result["status"], result["fd"] = "protocol", up_write
        return result
    if isinstance(outcome, dict) and "sandbox_error" in outcome:
        result["status"], result["detail"] = "sandbox", outcome["sandbox_error"]
        return result
    inner = outcome.get("outcome") if isinstance(outcome, dict) else None
    if isinstance(inner, dict):
        result.update(
            {k: inner[k] for k in ("outputs", "definition_error", "blocked") if k in inner}
        )
    if printed >= limits["output_bytes"]:
        result["status"] = "output"
    elif files:
        result["status"], result["files"] = "files", files
    elif result.get("blocked"):
        result["status"] = "forbidden"
    elif not isinstance(inner, dict):
        if status is not None and os.WIFSIGNALED(status):
            result["status"], result["signal"] = "crashed", os.WTERMSIG(status)
        else:
            code = os.WEXITSTATUS(status) if status is not None and os.WIFEXITED(status) else None
            result["status"], result["exit_code"] = "exit", code
    return result


def main() -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if os.getpid() == 1:
        import ctypes

        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: no reading the init's memory
    host_out = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)  # stray prints (TensorFlow's included) must not corrupt the protocol
    import tensorflow as tf

    tf.compat.v1.disable_v2_behavior()  # as the notebook runs: TF1 graphs, shapes and all
    from . import guard, protocol, runner  # noqa: F401 - imported before forking: children start fast

    scratch = "/tmp" if os.getpid() == 1 else None
    host_in = _Lines(0)
    _send(host_out, {"ready": True})
    while True:
        line = host_in.read(time.monotonic() + 24 * 3600)
        if line is None:
            return 0
        try:
            message = protocol.loads(line.decode())
            task = message["task"]
        except (ValueError, KeyError, TypeError):
            continue
        _send(host_out, {"started": task["id"]})
        import tempfile

        folder = scratch or tempfile.mkdtemp(prefix="nst-grade-")
        try:
            result = run_task(task, host_in, host_out, (0, host_out), folder)
        finally:
            if scratch is None:
                shutil.rmtree(folder, ignore_errors=True)
        _send(host_out, {"result": result})


if __name__ == "__main__":
    sys.exit(main())
