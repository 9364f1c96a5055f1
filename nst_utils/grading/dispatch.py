"""The grader's side of the sandbox: start the worker, send it tasks, collect one result each.

If the worker itself dies or stops answering, the function it was running gets a 'crashed'
result and a fresh worker takes the remaining tasks, so one submission never stops the class.
"""

from __future__ import annotations

import dataclasses
import json
import os
import selectors
import subprocess
import sys
import threading
import time

from ..errors import NSTError
from . import protocol

#: Seconds allowed for the worker to start (it imports TensorFlow) on a busy machine.
STARTUP_SECONDS = 180
#: Seconds the worker gets beyond a task's own time limit to report it.
MARGIN_SECONDS = 30
MAX_LINE_BYTES = 16_000_000


class SandboxError(NSTError):
    """The grading sandbox could not run at all."""


@dataclasses.dataclass
class Task:
    id: str
    name: str
    source: str
    cases: list
    limits: object  # catalog.Limits

    def message(self) -> str:
        return json.dumps({"id": self.id, "name": self.name, "source": self.source,
                           "cases": protocol.dumps(self.cases),
                           "limits": dataclasses.asdict(self.limits)}) + "\n"


class _Worker:
    def __init__(self):
        # Few malloc arenas: each thread's arena would otherwise count 64 MB against the limit.
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONDONTWRITEBYTECODE="1",
                   MALLOC_ARENA_MAX="2")
        self.proc = subprocess.Popen([sys.executable, "-m", "nst_utils.grading.worker"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, start_new_session=True)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.proc.stdout, selectors.EVENT_READ)
        self.buffer = b""
        self.stderr_tail = b""
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def _drain_stderr(self):
        for chunk in iter(lambda: self.proc.stderr.read(4096), b""):
            self.stderr_tail = (self.stderr_tail + chunk)[-2000:]

    def send(self, tasks):
        def feed():
            try:
                for task in tasks:
                    self.proc.stdin.write(task.message().encode())
                    self.proc.stdin.flush()
                self.proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
        threading.Thread(target=feed, daemon=True).start()

    def read(self, timeout):
        """The next JSON message, or None if the worker ended or said nothing in time."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.selector.select(remaining):
                return None
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk or len(self.buffer) > MAX_LINE_BYTES:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError:
            return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.selector.close()
        self.proc.stdout.close()


def run_tasks(tasks: list, jobs: int = 1) -> dict:
    """{task id: result dict} for every task, whatever the tasks do; `jobs` workers side by side."""
    if jobs > 1 and len(tasks) > 1:
        from concurrent.futures import ThreadPoolExecutor

        shares = [tasks[i::jobs] for i in range(jobs) if tasks[i::jobs]]
        with ThreadPoolExecutor(len(shares)) as pool:
            results = {}
            for part in pool.map(_run_with_one_worker, shares):
                results.update(part)
        return results
    return _run_with_one_worker(tasks)


def _run_with_one_worker(tasks: list) -> dict:
    results, pending = {}, list(tasks)
    while pending:
        worker = _Worker()
        try:
            ready = worker.read(STARTUP_SECONDS)
            if not (isinstance(ready, dict) and ready.get("ready")):
                detail = worker.stderr_tail.decode(errors="replace").strip().splitlines()
                raise SandboxError("the grading worker did not start"
                                   + (f": {detail[-1]}" if detail else "")
                                   + "; check that TensorFlow imports in this environment")
            worker.send(pending)
            running = None
            by_id = {task.id: task for task in pending}
            while pending:
                limit = by_id[running].limits.time if running else max(t.limits.time for t in pending)
                message = worker.read(limit + MARGIN_SECONDS)
                if message is None:
                    crashed = running or pending[0].id
                    results[crashed] = {"id": crashed, "status": "crashed",
                                        "detail": "the grading worker stopped while running it"}
                    pending = [t for t in pending if t.id != crashed]
                    break
                if not isinstance(message, dict):
                    continue
                if "started" in message:
                    running = message["started"]
                elif message.get("id") in by_id:
                    results[message["id"]] = message
                    pending = [t for t in pending if t.id != message["id"]]
                    running = None
        finally:
            worker.stop()
    return results
