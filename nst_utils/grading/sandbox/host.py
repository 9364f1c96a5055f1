"""The grader's side of the sandbox: one box per submission, its tasks, its questions, its clock.

Each submission's functions run in one box (box/worker.py): isolated by the kernel through
bubblewrap (isolate.py: new PID, mount, network, IPC and user namespaces, a private read-only
root that holds only Python, its libraries and the box's own code, a private /tmp, no
capabilities, its own user id when the grader runs as root), or, only when asked, as a plain
child process. The wall clock is enforced from here: past it, the box's launcher kills the box's
init, and the kernel every process it started; so it does when the grader itself dies, however
killed. A box that dies takes only its own submission's remaining functions with it, which a
fresh box then grades.
"""

from __future__ import annotations

import dataclasses
import fcntl
import functools
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ...errors import NSTError
from . import isolate
from .box import protocol
from .box.worker import MAX_ORACLE_CALLS

BOX_DIR = Path(__file__).resolve().parent / "box"
#: Seconds allowed for a box to start (it imports TensorFlow) on a busy machine; no submission
#: code runs before the box says it is ready, so this only bounds a box that hangs.
STARTUP_SECONDS = 600
#: Seconds a box gets beyond a task's own time limit to report it.
MARGIN_SECONDS = 20
MAX_LINE_BYTES = 16_000_000
#: Outer user ids of the boxes when the grader runs as root: the first, and how many there are.
ROOT_UID_BASE = 300_000
ROOT_UID_COUNT = 10_000
#: Where a grader run by root marks the box user ids it holds: one lock file per id, locked
#: (flock) while a box of this grader holds it, so that graders side by side never share an id.
UID_LOCKS = "/run/nst-grade"
INSIDE_BOX = "/nstbox"
#: Set to 1, the grader behaves as where the kernel denies namespaces (Docker's default
#: profile, as at Gradescope): no kernel isolation, boxes run as plain processes.
NO_NAMESPACES = "NST_SANDBOX_NO_NAMESPACES"
_BOOT = "import sys; sys.path.insert(0, {path!r}); from box.worker import main; sys.exit(main())"


class SandboxError(NSTError):
    """The grading sandbox could not run at all."""


class IsolationUnavailable(SandboxError):
    """This machine cannot isolate submissions with kernel namespaces."""


@dataclasses.dataclass
class Task:
    """One graded function of one submission; `oracle` answers its calls to the functions it
    depends on ({name: fn(array) -> array}), in the grader's process."""

    id: str
    name: str
    source: str
    cases: list
    limits: dict
    oracle: dict = dataclasses.field(default_factory=dict)

    def message(self) -> str:
        return (
            json.dumps(
                {
                    "task": {
                        "id": self.id,
                        "name": self.name,
                        "source": self.source,
                        "cases": protocol.dumps(self.cases),
                        "limits": self.limits,
                        "oracles": sorted(self.oracle),
                    }
                }
            )
            + "\n"
        )


def _under(path: str, folders) -> bool:
    return any(path == f or path.startswith(f.rstrip("/") + "/") for f in folders)


def _is_checkout(folder: Path) -> bool:
    return any((folder / mark).exists() for mark in (".git", "pyproject.toml", "setup.py", "tests"))


def answer_homes() -> set:
    """Every folder that holds the answers: each copy of nst_utils the grader's Python can find
    (the one running, one per entry of its path, those in an environment's src/, where
    `pip install -e git+...` keeps its checkouts) and the checkout around each, with its tests,
    notebooks and history. Paths as written and resolved: a box sees both."""
    import site

    import nst_utils

    entries = list(sys.path) + site.getsitepackages()
    packages = {Path(nst_utils.__file__).parent}
    packages |= {Path(e) / "nst_utils" for e in entries if e and (Path(e) / "nst_utils").is_dir()}
    for prefix in {sys.prefix, sys.base_prefix}:
        src = Path(prefix) / "src"
        if src.is_dir():
            packages |= {c / "nst_utils" for c in src.iterdir() if (c / "nst_utils").is_dir()}
    homes = set()
    for package in packages:
        for path in (package, package.resolve()):
            homes.add(str(path))
            if _is_checkout(path.parent) and path.parent.name != "site-packages":
                homes.add(str(path.parent))
    return homes


def _binds() -> list:
    """[source, target, kind]: what the box sees, all read-only; then masks over the answers."""
    import numpy
    import tensorflow

    dirs = []
    for folder in (
        "/usr",
        "/lib",
        "/lib64",
        "/lib32",
        "/bin",
        sys.base_prefix,
        sys.prefix,
        str(Path(numpy.__file__).resolve().parents[1]),
        str(Path(tensorflow.__file__).resolve().parents[1]),
    ):
        if os.path.isdir(folder) and not _under(folder, dirs):
            dirs.append(folder)
    binds = [[d, d, "dir"] for d in dirs]
    binds += [[f, f, "file"] for f in ("/etc/ld.so.cache",) if os.path.isfile(f)]
    binds += [[d, d, "dev"] for d in ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")]
    binds.append([str(BOX_DIR), f"{INSIDE_BOX}/box", "dir"])
    masks = []  # the outermost only (a mask's empty folder holds no place for another); not
    for home in sorted(answer_homes(), key=len):  # one that holds a bound folder (Python's)
        if (
            _under(home, dirs)
            and not _under(home, masks)
            and not any(_under(d, [home]) for d in dirs)
        ):
            masks.append(home)
    return binds + [[m, m, "mask"] for m in masks]


def _box_env() -> dict:
    """The box's whole environment; NST_GRADER names the grader's process, so that an
    instructor (or a test) can tell its boxes from those of another grader on the machine."""
    return {
        "PATH": "/usr/bin:/bin",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MALLOC_ARENA_MAX": "2",
        "HOME": "/tmp",
        "OMP_NUM_THREADS": "1",
        "LANG": "C.UTF-8",
        "NST_GRADER": str(os.getpid()),
    }


def _spec(uid: int, cpu_seconds: int, argv: list, tmp_mb: int = 64) -> dict:
    return {
        "binds": _binds(),
        "tmp_mb": tmp_mb,
        "uid": uid,
        "rlimits": {"nproc": 512, "nofile": 256, "core": 0, "fsize": 64 << 20, "cpu": cpu_seconds},
        "python": sys.executable,
        "argv": argv,
        "env": _box_env(),
        "cwd": "/tmp",
    }


def _isolated_command(uid: int, cpu_seconds: int, lifeline: int, report: int) -> list:
    argv = [sys.executable, "-I", "-B", "-c", _BOOT.format(path=INSIDE_BOX)]
    spec = dict(_spec(uid, cpu_seconds, argv), lifeline=lifeline, report=report)
    return isolate.launcher(spec)


def _plain_command(code_folder: str) -> list:
    return [sys.executable, "-I", "-B", "-c", _BOOT.format(path=code_folder)]


def _plain_code() -> str:
    """A folder holding a copy of the box's code that any user may read (a box without
    isolation run by root runs as an ordinary user, who may not read the grader's folders)."""
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="nst-box-code-")
    shutil.copytree(
        BOX_DIR, os.path.join(folder, "box"), ignore=shutil.ignore_patterns("__pycache__")
    )
    for parent, dirs, files in os.walk(folder):
        os.chmod(parent, 0o755)
        for name in files:
            os.chmod(os.path.join(parent, name), 0o644)
    return folder


def close_to_boxes(folder) -> None:
    """Make `folder` (the Gradescope autograder's, with the source, the hidden seed and the
    results) root's alone: a box without isolation, run by root, runs as a user id of its own,
    which then can neither read nor write anything under it."""
    os.chown(folder, 0, 0)
    os.chmod(folder, 0o700)


def plain_box_problem() -> str | None:
    """Why a box without isolation would run with the grader's own rights (one line), or None
    when, run by root, it runs as an unprivileged user id of its own."""
    if os.geteuid() != 0:
        return "the grader is not root: a box without isolation runs as the grader's own user"
    user = BoxUser()
    try:
        if not _runs_as(user.uid):
            return f"an ordinary user cannot run {sys.executable} and import TensorFlow"
    finally:
        user.release()
    return None


def _lock_folder() -> str:
    """UID_LOCKS (or, where there is no /run, a folder in the temporary folder), made if needed;
    SandboxError unless it is root's and only root may write it."""
    folder = UID_LOCKS
    if not os.path.isdir(os.path.dirname(UID_LOCKS)):
        folder = os.path.join(tempfile.gettempdir(), "nst-grade-uids")
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise SandboxError(f"cannot make {folder} for the boxes' user ids ({exc.strerror})")
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
        raise SandboxError(f"{folder} must be a folder that only root may write: remove it")
    return folder


class BoxUser:
    """A user id for one box of a grader run by root, from ROOT_UID_BASE on, that no other box
    on the machine holds until release(): its lock file stays locked by this process (and so
    is freed by the kernel when the grader dies, however). Whatever still runs under the id
    (left by a grader that died) is killed when it is taken and when it is released."""

    def __init__(self):
        folder = _lock_folder()
        for uid in range(ROOT_UID_BASE, ROOT_UID_BASE + ROOT_UID_COUNT):
            path = os.path.join(folder, f"{uid}.lock")
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.uid, self._lock = uid, fd
            _end_user(uid)
            return
        raise SandboxError(f"all {ROOT_UID_COUNT} box user ids are taken by running graders")

    def release(self) -> None:
        if self._lock is not None:
            _end_user(self.uid)
            os.close(self._lock)
            self._lock = None


@functools.lru_cache(maxsize=None)
def _runs_as(uid: int) -> bool:
    """Whether user `uid` can run this Python and find numpy and TensorFlow (not so when they
    are installed in a folder only root may enter; the box then runs as root, as before)."""
    probe = (
        "import importlib.util as u, sys; "
        "sys.exit(not all(u.find_spec(m) for m in ('numpy', 'tensorflow')))"
    )
    try:
        return (
            subprocess.run(
                [sys.executable, "-I", "-c", probe],
                user=uid,
                group=uid,
                extra_groups=[],
                capture_output=True,
                timeout=60,
            ).returncode
            == 0
        )
    except (OSError, subprocess.SubprocessError):
        return False


def _end_user(uid: int) -> None:
    """Kill every process of user `uid` (a plain box's own id): what left the box's process
    group or session too. Done by a short-lived child that takes that id and signals all."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            os.kill(-1, 9)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


@functools.lru_cache(maxsize=None)
def isolation_problem() -> str | None:
    """Why kernel isolation cannot work here (one line), or None when it does."""
    if os.environ.get(NO_NAMESPACES) == "1":
        return f"user namespaces are denied here ({NO_NAMESPACES}=1)"
    if not sys.platform.startswith("linux"):
        return f"kernel namespaces are Linux only (this is {sys.platform})"
    argv = [sys.executable, "-I", "-S", "-c", "import os; print(os.getpid())"]
    user = BoxUser() if os.geteuid() == 0 else None
    try:
        command = isolate.launcher(_spec(user.uid if user else ROOT_UID_BASE, 60, argv, tmp_mb=1))
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc) if isinstance(exc, isolate.IsolationError) else f"bwrap did not run ({exc})"
    finally:
        if user is not None:
            user.release()
    if done.returncode != 0 or done.stdout.strip() != "1":
        lines = (done.stderr or done.stdout).strip().splitlines()
        return lines[-1] if lines else f"the box's launcher failed (status {done.returncode})"
    return None


#: The boxes running now, so that a stopped class run can end them all at once (stop_all).
_LIVE_BOXES: set = set()
_LIVE_LOCK = threading.Lock()
_STOPPING = threading.Event()


def stop_all() -> None:
    """End every box of this process at once (a class run stopped by Ctrl-C or SIGTERM); no new
    box starts until allow_boxes(). The threads running them see their box end and return."""
    _STOPPING.set()
    with _LIVE_LOCK:
        boxes = list(_LIVE_BOXES)
    for box in boxes:
        box.kill()


def allow_boxes() -> None:
    """Let boxes start again after stop_all()."""
    _STOPPING.clear()


class _Box:
    """One running box and the line protocol with it."""

    def __init__(self, isolated: bool, cpu_seconds: int):
        if _STOPPING.is_set():
            raise SandboxError("grading was stopped")
        self.code, self.lifeline, self.report, self.ended = None, None, None, None
        self.init, self.init_lock = None, threading.Lock()
        self.user = BoxUser() if os.geteuid() == 0 else None  # run by root: an id of its own
        try:
            self._start(isolated, cpu_seconds)
        except BaseException:
            self._release_user()
            raise
        with _LIVE_LOCK:
            _LIVE_BOXES.add(self)
        if _STOPPING.is_set():  # stop_all() ran while this box started
            self.kill()

    def _start(self, isolated: bool, cpu_seconds: int):
        identity, keep = {}, ()
        if isolated:
            # The launcher ends the box once this pipe's write end is closed: by stop(), or by
            # the kernel when the grader dies, however it was killed. It reports the box's PID 1
            # on the other pipe, so that the grader can end the box should the launcher die.
            alive, self.lifeline = os.pipe()
            self.report, report = os.pipe()
            keep = (alive, report)
            uid = self.user.uid if self.user else ROOT_UID_BASE
            try:
                command = _isolated_command(uid, cpu_seconds, alive, report)
            except isolate.IsolationError as exc:
                for fd in keep:
                    os.close(fd)
                self._close_lifeline()
                raise SandboxError(f"the grading sandbox did not start ({exc})") from None
            env = dict(os.environ, NST_GRADER=str(os.getpid()))  # tells whose launcher it is
        else:
            self.code = _plain_code()
            command = _plain_command(self.code)
            env = dict(_box_env(), PATH=os.environ.get("PATH", "/usr/bin:/bin"))
            if self.user is not None and _runs_as(self.user.uid):  # not as root
                identity = {"user": self.user.uid, "group": self.user.uid, "extra_groups": []}
        try:
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,
                pass_fds=keep,
                **identity,
            )
        except OSError as exc:
            self._remove_code()
            raise SandboxError(f"the grading sandbox did not start ({exc})") from None
        finally:
            for fd in keep:
                os.close(fd)
        self.buffer, self.stderr_tail = b"", b""
        # The launcher ends only after its box: once it is gone, so is the box (stop() sees to
        # it even when the launcher was killed).
        self.ended = os.pidfd_open(self.proc.pid) if isolated else None
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def _release_user(self):
        if self.user is not None:
            self.user.release()

    def hold_init(self):
        """Once the box is ready: a pidfd of its PID 1, read from the launcher's report."""
        if self.report is None:
            return
        import select

        try:
            if select.select([self.report], [], [], 60)[0]:
                pid = int(os.read(self.report, 64).decode().strip() or 0)
                self.init = os.pidfd_open(pid) if pid > 1 else None
        except (OSError, ValueError):
            self.init = None
        finally:
            os.close(self.report)
            self.report = None

    def _close_lifeline(self):
        if self.lifeline is not None:
            os.close(self.lifeline)
            self.lifeline = None

    def _remove_code(self):
        if self.code is not None:
            import shutil

            shutil.rmtree(self.code, ignore_errors=True)

    def _drain_stderr(self):
        for chunk in iter(lambda: self.proc.stderr.read(4096), b""):
            self.stderr_tail = (self.stderr_tail + chunk)[-2000:]

    def send(self, text: str) -> bool:
        try:
            self.proc.stdin.write(text.encode())
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def read(self, deadline):
        """The next JSON message, or None if the box ended, misbehaved or passed the deadline."""
        import select

        fd = self.proc.stdout.fileno()
        watched = [fd] + ([self.ended] if self.ended is not None else [])
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            ready = select.select(watched, [], [], max(remaining, 0))[0] if remaining > 0 else []
            if not ready or fd not in ready:  # past the deadline, or the launcher is gone
                return None
            chunk = os.read(fd, 65536)
            if not chunk or len(self.buffer) > MAX_LINE_BYTES:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        try:
            return protocol.loads(line.decode())
        except (ValueError, UnicodeDecodeError):
            return None

    def kill(self):
        """End the box at once, from any thread: its PID 1 (and with it the whole box) through
        the pidfd, then the launcher (which ends a box still starting), or the plain box's group."""
        with self.init_lock:
            if self.init is not None:
                try:
                    signal.pidfd_send_signal(self.init, signal.SIGKILL)
                except OSError:
                    pass
        try:
            if self.lifeline is not None:
                os.kill(self.proc.pid, signal.SIGTERM)  # the launcher ends its box, then exits
            else:
                os.killpg(self.proc.pid, 9)
        except OSError:
            pass

    def stop(self):
        """End the box (see kill), wait for its launcher and, when a plain box ran as an id of
        its own, end every process of that id; then release what it held."""
        self.kill()
        with self.init_lock:
            if self.init is not None:
                os.close(self.init)
                self.init = None
        for name in ("report", "ended"):
            if getattr(self, name) is not None:
                os.close(getattr(self, name))
                setattr(self, name, None)
        if self.lifeline is not None:
            self._close_lifeline()  # the launcher kills the box's PID 1, then exits
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, 9)
        except OSError:
            pass
        with _LIVE_LOCK:
            _LIVE_BOXES.discard(self)
        self._release_user()  # ends every process of the box's own id (a plain box's escapees)
        self.proc.wait()
        self._remove_code()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


def _answer(task: Task, request) -> str:
    """The reply to a box's call to a function the task may use, computed here, or a refusal."""
    name = request.get("name") if isinstance(request, dict) else None
    if name not in task.oracle:
        return json.dumps({"error": f"{name!r} is not provided to {task.name}"}) + "\n"
    try:
        value = task.oracle[name](request.get("value"))
    except (TypeError, ValueError) as exc:
        return json.dumps({"error": str(exc)[:200]}) + "\n"
    except Exception as exc:  # noqa: BLE001 - whatever a box asks, the class run goes on
        return json.dumps({"error": f"{name} failed ({type(exc).__name__})"}) + "\n"
    return protocol.dumps({"value": value}) + "\n"


def _run_one_box(tasks: list, isolated: bool) -> dict:
    """Run `tasks` (one submission's) in one box; {task id: result} for those it finished."""
    results = {}
    cpu = int(sum(t.limits["time"] for t in tasks) * 2 + STARTUP_SECONDS)
    box = _Box(isolated, cpu)
    try:
        ready = box.read(time.monotonic() + STARTUP_SECONDS)
        box.hold_init()
        if not (isinstance(ready, dict) and ready.get("ready")):
            detail = box.stderr_tail.decode(errors="replace").strip().splitlines()
            raise SandboxError(
                "the grading sandbox did not start"
                + (f": {detail[-1]}" if detail else "")
                + "; check that TensorFlow imports in this environment"
            )
        for task in tasks:
            deadline = time.monotonic() + task.limits["time"] + MARGIN_SECONDS
            if not box.send(task.message()):
                break
            calls = 0
            while True:
                message = box.read(deadline)
                if not isinstance(message, dict):
                    results[task.id] = {
                        "id": task.id,
                        "status": "crashed",
                        "detail": "the sandbox stopped while running it",
                    }
                    return results
                if "oracle" in message and calls < MAX_ORACLE_CALLS:
                    calls += 1
                    box.send(_answer(task, message["oracle"]))
                elif (
                    isinstance(message.get("result"), dict)
                    and message["result"].get("id") == task.id
                ):
                    results[task.id] = message["result"]
                    break
    finally:
        box.stop()
    return results


def run_submission(tasks: list, isolated: bool = True, slot: int = 0) -> dict:
    """{task id: result} for every task of one submission, whatever the tasks do; a sandbox
    that cannot start gives each task the status 'sandbox' (not the submission's fault).
    `slot` numbers the caller's worker; each box takes a user id of its own (BoxUser)."""
    results, pending = {}, list(tasks)
    while pending:
        try:
            done = _run_one_box(pending, isolated)
        except Exception as exc:  # noqa: BLE001 - every notebook gets a row, whatever happened
            detail = {"type": type(exc).__name__, "message": str(exc)[:300]}
            results.update(
                {t.id: {"id": t.id, "status": "sandbox", "detail": detail} for t in pending}
            )
            return results
        results.update(done)
        if pending[0].id not in done:  # the box died at once: do not retry it forever
            results[pending[0].id] = {
                "id": pending[0].id,
                "status": "crashed",
                "detail": "the sandbox stopped while running it",
            }
        pending = [t for t in pending if t.id not in results]
    return results
