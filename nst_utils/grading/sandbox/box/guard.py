"""Containment of one graded function, inside the namespaces, in the forked process that runs it.

The kernel already confines the whole box (isolate.py); this adds, per function: its own
process group, folder and output file, an address-space limit, a file-size limit that caps the
printed output, and, as a second layer that names what was tried, an audit hook refusing file
writes, new processes, signals, sockets and native libraries from Python.
"""

from __future__ import annotations

import os
import resource
import signal
import sys

#: Audit events graded code may not raise (see the `sys.addaudithook` audit events table).
BLOCKED_EVENTS = {
    "os.remove": "delete files",
    "os.rename": "rename files",
    "os.rmdir": "delete folders",
    "os.mkdir": "create folders",
    "os.symlink": "create links",
    "os.link": "create links",
    "os.chmod": "change file permissions",
    "os.chown": "change file owners",
    "os.truncate": "truncate files",
    "os.utime": "change file times",
    "shutil.rmtree": "delete folders",
    "shutil.copyfile": "copy files",
    "shutil.move": "move files",
    "os.system": "run shell commands",
    "os.exec": "start programs",
    "os.posix_spawn": "start programs",
    "os.spawn": "start programs",
    "os.fork": "start processes",
    "os.forkpty": "start processes",
    "subprocess.Popen": "start programs",
    "os.kill": "send signals",
    "os.killpg": "send signals",
    "signal.pthread_kill": "send signals",
    "socket.connect": "use the network",
    "socket.bind": "use the network",
    "socket.sendto": "use the network",
    "ctypes.dlopen": "load native libraries",
    "resource.setrlimit": "change resource limits",
    "resource.prlimit": "change resource limits",
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

#: What the audit hook refused, as short descriptions; sent back with the results.
blocked: list = []


class Blocked(PermissionError):
    """Raised into graded code that tries something the grader forbids."""


def _audit(event, args):
    what = None
    if event == "open":
        path, _mode, flags = args
        if not isinstance(path, int) and flags is not None and flags & _WRITE_FLAGS:
            what = f"write files ({path})"
    elif event in BLOCKED_EVENTS:
        what = BLOCKED_EVENTS[event]
    if what is not None:
        if len(blocked) < 20:
            blocked.append(what)
        raise Blocked(f"blocked by the grader: graded code may not {what}")


def _address_space_in_use() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def contain(
    workdir: str, output_path: str, keep_fds: tuple, close_fds: tuple, limits: dict
) -> None:
    """Confine the current (freshly forked) process before it runs graded code."""
    os.setpgid(0, 0)
    try:  # first to die when memory runs out (the launcher already set it inside the namespaces)
        with open("/proc/self/oom_score_adj", "w") as adj:
            adj.write("1000")
    except OSError:
        pass
    for fd in close_fds:
        if fd not in keep_fds:
            try:
                os.close(fd)
            except OSError:
                pass
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    out = os.open(output_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    os.close(null)
    sys.stdout = open(1, "w", buffering=1, closefd=False, errors="replace")
    sys.stderr = open(2, "w", buffering=1, closefd=False, errors="replace")
    os.chdir(workdir)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over the output cap: writes fail, no kill
    memory = _address_space_in_use() + limits["memory_mb"] * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["output_bytes"], limits["output_bytes"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.dont_write_bytecode = True
    if limits.get("audit_hook", True):
        sys.addaudithook(_audit)
