"""The namespace launcher on its own, with a small standard-library probe instead of TensorFlow:
as the grader's own user and, when the tests run as root, as an ordinary user (nobody)."""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from nst_utils.grading.sandbox import host

from grading_helpers import require_isolation

pytestmark = pytest.mark.slow  # every test here starts processes or paints

ISOLATE = Path(host.__file__).with_name("isolate.py")
SYSTEM_PYTHON = "/usr/bin/python3"

PROBE = r"""
import json, os, socket
found = {"pid": os.getpid(), "uid": os.getuid(), "pids": sorted(p for p in os.listdir("/proc") if p.isdigit()),
         "root": sorted(os.listdir("/")), "writes": {}, "caps": None, "net": None, "kill_parent": None}
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
try:
    socket.create_connection(("127.0.0.1", 22), timeout=1)
    found["net"] = "connected"
except OSError as exc:
    found["net"] = exc.strerror
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
        "argv": argv,
        "env": {},
        "cwd": "/tmp",
    }


def _run(spec, prefix=()):
    done = subprocess.run(
        [*prefix, SYSTEM_PYTHON, "-I", "-S", str(ISOLATE), json.dumps(spec)],
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
    probe = PROBE.replace("@OUTSIDE@", str(outside))
    found = _run(_spec(tmp_path, [SYSTEM_PYTHON, "-I", "-S", "-c", probe]), prefix)
    assert found["pid"] == 1 and found["pids"] == ["1"]
    assert found["root"] == ["bin", "dev", "etc", "lib", "lib64", "proc", "tmp", "usr"] or set(
        found["root"]
    ) <= {"bin", "dev", "etc", "lib", "lib64", "proc", "tmp", "usr"}
    assert found["writes"]["/tmp/x"] == "written"
    assert found["writes"]["/x"] == found["writes"]["/usr/x"] == "Read-only file system"
    assert found["writes"][f"{outside}/x"] == "No such file or directory"
    assert not list(outside.iterdir())
    assert int(found["CapEff"], 16) == 0 and int(found["CapBnd"], 16) == 0
    assert found["net"] == "Network is unreachable"
    assert found["oom_score_adj"] == "1000"  # the box's processes die first when memory runs out
    if os.geteuid() == 0 and who == "grader":
        assert found["uid"] == 301_234  # root's boxes run as an unprivileged id of their own


def test_killing_the_launcher_ends_everything_in_the_box(tmp_path):
    marker = f"nst-isolation-marker-{os.getpid()}"
    code = f"import os, time\nos.fork(); os.fork()\ntime.sleep(120)  # {marker}"
    spec = _spec(tmp_path, [SYSTEM_PYTHON, "-I", "-S", "-c", code])
    launcher = subprocess.Popen(
        [SYSTEM_PYTHON, "-I", "-S", str(ISOLATE), json.dumps(spec)], start_new_session=True
    )

    def running():
        found = 0
        for pid in os.listdir("/proc"):
            try:
                found += (
                    pid.isdigit() and marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
                )
            except OSError:
                pass
        return found

    deadline = time.monotonic() + 30
    while running() < 5 and time.monotonic() < deadline:  # the launcher and four in the box
        time.sleep(0.1)
    assert running() == 5
    launcher.kill()
    launcher.wait()
    deadline = time.monotonic() + 10
    while running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert running() == 0


def test_a_failed_setup_never_runs_the_program_unconfined(tmp_path):
    spec = _spec(tmp_path, [SYSTEM_PYTHON, "-c", "print('ran')"])
    spec["binds"].append(["/does/not/exist", "/x", "dir"])
    done = subprocess.run(
        [SYSTEM_PYTHON, "-I", "-S", str(ISOLATE), json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 125 and "ran" not in done.stdout
    assert done.stderr.startswith("isolation failed: ")
