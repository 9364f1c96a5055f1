"""The box's bwrap command on its own, with a small standard-library probe instead of TensorFlow:
as the grader's own user and, when the tests run as root, as an ordinary user (nobody)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nst_utils.grading.sandbox import isolate

from grading_helpers import require_isolation

pytestmark = pytest.mark.slow  # every test here starts processes or paints
SYSTEM_PYTHON = "/usr/bin/python3"

PROBE = r"""
import json, os, socket
found = {"pid": os.getpid(), "uid": os.getuid(), "root": sorted(os.listdir("/")), "writes": {},
         "pids": sorted(p for p in os.listdir("/proc") if p.isdigit())}
for path in ("/tmp/x", "/x", "/usr/x", "@OUTSIDE@/x"):
    try:
        open(path, "w").write("x")
        found["writes"][path] = "written"
    except OSError as exc:
        found["writes"][path] = exc.strerror
found["oom_score_adj"] = open("/proc/self/oom_score_adj").read().strip()
for line in open("/proc/self/status"):
    if line.startswith("CapEff:") or line.startswith("CapBnd:"):
        found[line.split(":")[0]] = line.split()[1]
found["interfaces"] = [line.split(":")[0].strip() for line in open("/proc/net/dev")][2:]
found["net"] = {}
for address in (("127.0.0.1", @PORT@), ("8.8.8.8", 53)):
    try:
        socket.create_connection(address, timeout=1)
        found["net"][address[0]] = "connected"
    except OSError as exc:
        found["net"][address[0]] = exc.strerror
print(json.dumps(found))
"""


def _spec(tmp_path, argv, uid=301_234):
    binds = [[d, d, "dir"] for d in ("/usr", "/lib", "/lib64", "/bin") if os.path.isdir(d)]
    binds += [["/etc/ld.so.cache", "/etc/ld.so.cache", "file"], ["/dev/null", "/dev/null", "dev"]]
    return {
        "binds": binds,
        "tmp_mb": 4,
        "uid": uid,
        "rlimits": {"nproc": 64, "core": 0},
        "python": SYSTEM_PYTHON,
        "argv": argv,
        "env": {},
        "cwd": "/tmp",
    }


_COMMAND = "import json, sys; print(json.dumps(isolate.command(json.loads(sys.argv[1]))))"


def _command(spec, prefix=()):
    """bwrap's command line, written by `isolate` as the user of `prefix` (nobody) would."""
    if not prefix:
        return isolate.command(spec)
    code = f"import sys; sys.path.insert(0, {str(Path(isolate.__file__).parent)!r}); " + (
        "import isolate; " + _COMMAND
    )
    done = subprocess.run(
        [*prefix, sys.executable, "-I", "-c", code, json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return [*prefix, *json.loads(done.stdout)]


#: Runs the launcher (argv) with the read end of a lifeline at fd 3 and holds the write end.
HOLDER = """
import os, sys, time
read, write = os.pipe()
if os.fork() == 0:
    os.dup2(read, 3) if read != 3 else None
    os.set_inheritable(3, True)
    os.close(write)
    os.execvp(sys.argv[1], sys.argv[1:])
os.close(read)
print("ready", flush=True)
time.sleep(600)
"""


def _launcher(spec, prefix=()):
    """The launcher's command line, as isolate writes it for the user of `prefix`."""
    return [*prefix, *isolate.launcher(spec)]


def _run(spec, prefix=()):
    done = subprocess.run(
        _command(spec, prefix),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _as_ordinary_user():
    if os.geteuid() != 0:
        return ()
    if not shutil.which("setpriv"):
        pytest.skip("setpriv is needed to run as an ordinary user")
    return ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")


def _outside(tmp_path):
    folder = tmp_path / "outside"
    folder.mkdir()
    folder.chmod(0o777)  # writable by anyone: only the namespaces can keep the probe out
    return folder


@pytest.fixture(autouse=True)
def needs_isolation():
    if not os.path.exists(SYSTEM_PYTHON):
        pytest.skip(f"the probe needs {SYSTEM_PYTHON}")
    require_isolation()


@pytest.mark.parametrize("who", ["grader", "ordinary_user"])
def test_the_box_sees_only_itself_and_writes_only_its_tmp(tmp_path, who):
    outside = _outside(tmp_path)
    prefix = _as_ordinary_user() if who == "ordinary_user" else ()
    listener = socket.create_server(("127.0.0.1", 0))  # a server outside the box, on loopback
    probe = PROBE.replace("@OUTSIDE@", str(outside))
    probe = probe.replace("@PORT@", str(listener.getsockname()[1]))
    found = _run(_spec(tmp_path, [SYSTEM_PYTHON, "-I", "-S", "-c", probe]), prefix)
    listener.close()
    assert found["pid"] == 1 and found["pids"] == ["1"]
    assert found["root"] == ["bin", "dev", "etc", "lib", "lib64", "proc", "tmp", "usr"] or set(
        found["root"]
    ) <= {"bin", "dev", "etc", "lib", "lib64", "proc", "tmp", "usr"}
    assert found["writes"]["/tmp/x"] == "written"
    assert found["writes"]["/x"] == found["writes"]["/usr/x"] == "Read-only file system"
    assert found["writes"][f"{outside}/x"] == "No such file or directory"
    assert not list(outside.iterdir())
    assert int(found["CapEff"], 16) == 0 and int(found["CapBnd"], 16) == 0
    assert found["interfaces"] == ["lo"]  # a network of its own: its own loopback, nothing else
    assert found["net"] == {"127.0.0.1": "Connection refused", "8.8.8.8": "Network is unreachable"}
    assert found["oom_score_adj"] == "1000"  # the box's processes die first when memory runs out
    if os.geteuid() == 0 and who == "grader":
        assert found["uid"] == 301_234  # root's boxes run as an unprivileged id of their own


@pytest.mark.parametrize("who", ["grader", "ordinary_user"])
@pytest.mark.parametrize("how", ["lifeline_closed", "grader_killed", "sigterm"])
def test_the_launcher_ends_everything_in_the_box(tmp_path, who, how):
    """The box ends with its caller: when the lifeline's writer closes it, when the writer is
    killed (SIGKILL, no clean-up), and when the launcher gets SIGTERM."""
    prefix = _as_ordinary_user() if who == "ordinary_user" else ()
    marker = f"nst-isolation-marker-{os.getpid()}-{who}-{how}"
    code = f"import os, time\nos.fork(); os.fork()\ntime.sleep(120)  # {marker}"
    spec = dict(_spec(tmp_path, [SYSTEM_PYTHON, "-I", "-S", "-c", code]), lifeline=3)
    holder = subprocess.Popen(  # the grader's stand-in: holds the lifeline's write end
        [SYSTEM_PYTHON, "-c", HOLDER, *_launcher(spec, prefix)],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert holder.stdout.readline() == b"ready\n"

    def in_the_box():
        found = []
        for pid in os.listdir("/proc"):
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in command and b"isolate.py" not in command:
                if b"bwrap" not in command.split(b"\0")[0]:
                    found.append(int(pid))
        return found

    deadline = time.monotonic() + 60
    while len(in_the_box()) < 4 and time.monotonic() < deadline:  # PID 1 and three forks
        time.sleep(0.1)
    assert len(in_the_box()) == 4
    if how == "sigterm":
        for pid in os.listdir("/proc"):
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in command and b"isolate.py" in command:
                os.kill(int(pid), signal.SIGTERM)
    else:  # the holder dies; with it the lifeline's writer (its child keeps only the reader)
        holder.kill() if how == "grader_killed" else holder.terminate()
    holder.wait()
    deadline = time.monotonic() + 60
    while in_the_box() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert in_the_box() == []
    try:
        os.killpg(holder.pid, signal.SIGKILL)
    except OSError:
        pass


def test_a_failed_setup_never_runs_the_program_unconfined(tmp_path):
    spec = _spec(tmp_path, [SYSTEM_PYTHON, "-c", "print('ran')"])
    spec["binds"].append(["/does/not/exist", "/x", "dir"])
    done = subprocess.run(isolate.command(spec), capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "ran" not in done.stdout
    assert "/does/not/exist" in done.stderr
