"""A box made by a grader run by root has a user namespace of its own, and none of its processes
is root outside it, even when what it must see lies in a folder that only root may enter."""

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from nst_utils.grading import Limits
from nst_utils.grading.grader import grade_paths
from nst_utils.grading.sandbox import host, isolate

from grading_helpers import require_isolation, solved_notebook, with_bodies, write

pytestmark = [
    pytest.mark.slow,  # every test here starts boxes
    pytest.mark.skipif(
        os.geteuid() != 0, reason="only a grader run by root changes the box's user"
    ),
]
SYSTEM_PYTHON = "/usr/bin/python3"
UID = 301_234

#: Reports what the box is, then waits for its standard input to close.
PROBE = r"""
import json, os, sys
found = {"uid": os.getuid(), "uid_map": open("/proc/self/uid_map").read().split(),
         "data": open("@CLOSED@/data/secret.txt").read(), "root": sorted(os.listdir("/")),
         "closed": sorted(os.listdir("@CLOSED@")), "fds": sorted(os.listdir("/proc/self/fd"))}
for line in open("/proc/self/status"):
    if line.startswith("CapEff:"):
        found["CapEff"] = line.split()[1]
try:
    os.setuid(0)
    found["setuid0"] = "done"
except OSError as exc:
    found["setuid0"] = exc.strerror
print(json.dumps(found), flush=True)
sys.stdin.read()  # @MARKER@
"""


@pytest.fixture(autouse=True)
def needs_isolation():
    if not os.path.exists(SYSTEM_PYTHON):
        pytest.skip(f"the probe needs {SYSTEM_PYTHON}")
    require_isolation()


def _status(pid: int) -> dict:
    return dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())


def _marked(marker: str) -> list:
    """The PIDs of the processes whose command line holds `marker`."""
    found = []
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            continue
    return found


@pytest.fixture
def open_folder():
    """A folder that anyone may pass through (pytest's own are root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="nst-userns-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def test_a_root_box_has_its_own_user_namespace_and_no_root_outside(open_folder):
    """The data the box reads sits in a folder closed to all but root (as a Python under /root):
    the launcher makes it reachable in a mount namespace of its own, the machine's mounts are
    untouched, and from outside every process of the box, bwrap's included, is the box's id."""
    closed = open_folder / "closed"
    (closed / "data").mkdir(parents=True)
    (closed / "data" / "secret.txt").write_text("only the box's copy")
    (closed / "other.txt").write_text("not bound")
    closed.chmod(0o700)
    marker = f"nst-userns-marker-{os.getpid()}"
    probe = PROBE.replace("@MARKER@", marker).replace("@CLOSED@", str(closed))
    binds = [[d, d, "dir"] for d in ("/usr", "/lib", "/lib64", "/bin") if os.path.isdir(d)]
    binds += [["/etc/ld.so.cache", "/etc/ld.so.cache", "file"], ["/dev/null", "/dev/null", "dev"]]
    binds += [[str(closed / "data"), str(closed / "data"), "dir"]]
    spec = {
        "binds": binds,
        "tmp_mb": 4,
        "uid": UID,
        "rlimits": {"nproc": 64, "core": 0},
        "python": SYSTEM_PYTHON,
        "argv": [SYSTEM_PYTHON, "-I", "-S", "-c", probe],
        "env": {},
        "cwd": "/tmp",
    }
    assert isolate.unreachable(spec) == {str(closed): [str(closed / "data")]}  # to be staged
    mounts_before = Path("/proc/self/mountinfo").read_text()
    launcher = subprocess.Popen(
        isolate.launcher(spec),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = launcher.stdout.readline()
        assert line, launcher.stderr.read()
        found = json.loads(line)
        # Seen from outside while the box runs: the box's own id, a user namespace of its own.
        pids = [p for p in _marked(marker) if p != launcher.pid]
        assert len(pids) == 2  # bwrap and the box's PID 1
        for pid in pids:
            ids = _status(pid)["Uid"].split()
            assert ids == [str(UID)] * 4, (pid, ids)
            program = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
            if not program.endswith(b"bwrap"):  # bwrap, outside the box, watches it
                assert os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user")
        assert "nst-stage" not in Path("/proc/self/mountinfo").read_text()
        assert "nst-stage" not in Path("/proc/1/mountinfo").read_text()
    finally:
        launcher.stdin.close()
        assert launcher.wait(timeout=60) == 0
    assert found["uid"] == UID
    assert found["uid_map"] == [str(UID), str(UID), "1"]  # only its own id is mapped: never root
    assert found["setuid0"] == "Invalid argument"  # root is not even a name in its namespace
    assert int(found["CapEff"], 16) == 0
    assert found["data"] == "only the box's copy"
    assert found["closed"] == ["data"]  # the closed folder shows only the path to what is bound
    assert found["fds"] == ["0", "1", "2", "3"]  # no descriptor of the staging reached the box
    assert Path("/proc/self/mountinfo").read_text() == mounts_before


def test_a_root_graders_box_runs_the_grader_python_in_its_own_user_namespace(tmp_path):
    """A real grade as root with the grader's own Python (on this kind of machine, under /root,
    which the box's id may not enter): the box starts, and says from inside what it is."""
    report = """
    import os
    inside, outside, count = open("/proc/self/uid_map").read().split()
    groups = ",".join(map(str, os.getgroups()))
    raise RuntimeError(f"box uid {os.getuid()} map {inside}:{outside}:{count} groups [{groups}]")
    """
    write(with_bodies(solved_notebook(), {"gram_matrix": report}), tmp_path / "who.ipynb")
    limits = Limits(time=30.0, memory_mb=600, output_bytes=100_000, audit_hook=False)
    (row,) = grade_paths([tmp_path / "who.ipynb"], limits, ["gram_matrix"], isolation=True)
    feedback = row.grades["gram_matrix"].feedback
    found = re.search(r"box uid (\d+) map (\d+):(\d+):(\d+) groups \[([\d,]*)\]", feedback)
    assert found, feedback
    uid, inside, outside, count, groups = found.groups()
    assert uid == inside == outside and count == "1"  # its id alone is mapped, never root
    assert host.ROOT_UID_BASE <= int(uid) < host.ROOT_UID_BASE + host.ROOT_UID_COUNT
    assert groups in ("", uid)
