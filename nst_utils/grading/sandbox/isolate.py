"""Start a program inside new Linux namespaces, as an unprivileged identity, in a private root.

Standard library only, so that it runs before anything else is imported and can be tested with
any Python. Run as ``python isolate.py SPEC_JSON``; SPEC is a dict:
  binds: [[source, target, kind]] read-only bind mounts (kind 'dir', 'file' or 'dev'), or
    'mask': an empty read-only folder laid over `target` (hides what a bound folder holds);
  tmp_mb: size of the private tmpfs at /tmp, the only writable place;
  uid: the outer user id the program runs as when started by root (ignored otherwise);
  rlimits: {name: value} (names of `resource.RLIMIT_*` without the prefix);
  argv, env, cwd: the program to execute once inside.
The program runs as PID 1 of new PID, mount, network, IPC and user namespaces with no
capabilities and no_new_privs; this process waits for it and exits with its status. When this
process dies (killed from outside at the wall clock), the kernel kills the namespace's init and
with it every process the program started.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID = 0x00020000, 0x10000000, 0x20000000
CLONE_NEWNET, CLONE_NEWIPC = 0x40000000, 0x08000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
MNT_DETACH = 2
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS = (
    1,
    4,
    24,
    28,
    38,
)
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
#: noroot, no_setuid_fixup and no_cap_ambient_raise, each locked; keep_caps locked off.
SECUREBITS = 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x40 | 0x80
#: statvfs flags -> mount flags that a bind remount must keep (the kernel locks them).
_KEPT = (
    (os.ST_NOSUID, MS_NOSUID),
    (os.ST_NODEV, MS_NODEV),
    (os.ST_NOEXEC, MS_NOEXEC),
    (os.ST_NOATIME, MS_NOATIME),
    (os.ST_NODIRATIME, MS_NODIRATIME),
    (os.ST_RELATIME, MS_RELATIME),
)

_libc = ctypes.CDLL(None, use_errno=True)


class IsolationError(OSError):
    """A namespace, mount or identity step failed: isolation is not available here."""


def _check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise IsolationError(err, f"{what}: {os.strerror(err)}")


def _unshare(flags):
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def _mount(source, target, fstype, flags, data=None):
    def enc(s):
        return None if s is None else s.encode()

    _check(
        _libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
        f"mount {source or fstype} on {target}",
    )


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _map_identity(inner_uid, inner_gid, outer_uid, outer_gid):
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{inner_uid} {outer_uid} 1")
    _write("/proc/self/gid_map", f"{inner_gid} {outer_gid} 1")


def _bind(root, source, target, kind):
    inside = os.path.join(root, target.lstrip("/"))
    if kind == "mask":
        _mount("tmpfs", inside, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "size=4k,mode=555")
        return
    if kind == "dir":
        os.makedirs(inside, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(inside), exist_ok=True)
        open(inside, "a").close()
    _mount(source, inside, None, MS_BIND | MS_REC)
    kept = os.statvfs(inside).f_flag
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID
    flags |= sum(ms for st, ms in _KEPT if kept & st and ms != MS_NODEV)
    if kind != "dev":
        flags |= MS_NODEV
    _mount(None, inside, None, flags)


def _build_root(root, spec):
    """Mount the private root at `root` and switch to it."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=755")
    os.makedirs(os.path.join(root, "proc"))
    _mount("proc", os.path.join(root, "proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    # The private /tmp first: code that lives under /tmp on the host (a checkout there) is then
    # bound read-only on top of it, where the reverse order would hide it.
    os.makedirs(os.path.join(root, "tmp"))
    _mount(
        "tmpfs",
        os.path.join(root, "tmp"),
        "tmpfs",
        MS_NOSUID | MS_NODEV,
        f"size={int(spec['tmp_mb'])}m,mode=1777",
    )
    for source, target, kind in spec["binds"]:
        _bind(root, source, target, kind)
    os.chdir(root)
    os.mkdir(".oldroot")
    number = SYS_PIVOT_ROOT.get(os.uname().machine)
    if number is None:
        raise IsolationError(0, f"pivot_root: unsupported machine {os.uname().machine}")
    _check(_libc.syscall(ctypes.c_long(number), b".", b".oldroot"), "pivot_root")
    os.chdir("/")
    _check(_libc.umount2(b"/.oldroot", ctypes.c_int(MNT_DETACH)), "umount old root")
    os.rmdir("/.oldroot")
    _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _drop_capabilities():
    """No capabilities now, none regained by exec (even as uid 0), no privilege gain at all."""
    _check(_libc.prctl(PR_SET_SECUREBITS, ctypes.c_ulong(SECUREBITS), 0, 0, 0), "securebits")
    cap = 0
    while _libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0) == 0:
        cap += 1
    if cap == 0:
        _check(-1, "drop the capability bounding set")
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(_CapHeader(0x20080522, 0)), data), "capset")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def _set_limits(rlimits):
    for name, value in rlimits.items():
        limit = getattr(resource, f"RLIMIT_{name.upper()}")
        resource.setrlimit(limit, (int(value), int(value)))


def prefer_for_the_oom_killer() -> None:
    """Make this process, and all it starts, the kernel's first choice when memory runs out:
    memory is limited per process, so a submission that forks could still exhaust the machine;
    its own processes then die, not the grader or another box. Only set by root of the
    machine's first user namespace is it locked: elsewhere a submission may lower it to 0."""
    try:
        _write("/proc/self/oom_score_adj", "1000")
    except OSError:
        pass


def _inside(spec, privileged, root, built_fd):
    """In the namespace's init: build the root, become unprivileged, exec the program."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    prefer_for_the_oom_killer()
    _build_root(root, spec)
    os.write(built_fd, b"1")  # the mount point outside is no longer needed: it may go
    os.close(built_fd)
    if privileged:
        uid = int(spec["uid"])
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        _libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # the identity change cleared it; maps need it
        _unshare(CLONE_NEWUSER)
        _map_identity(uid, uid, uid, uid)
    _drop_capabilities()
    _set_limits(spec.get("rlimits", {}))
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # identity changes clear it
    os.chdir(spec.get("cwd", "/tmp"))
    os.execve(spec["argv"][0], spec["argv"], spec.get("env", {}))


def _remove(folder, parent_fd):
    """Remove the mount point `folder` through the real parent folder's descriptor (after a
    failed setup, first lift the tmpfs left on it in this namespace)."""
    _libc.umount2(folder.encode(), ctypes.c_int(MNT_DETACH))
    try:
        os.rmdir(os.path.basename(folder), dir_fd=parent_fd)
    except OSError:
        pass


def run(spec) -> int:
    """Enter the namespaces, run spec's program inside, return its exit status (128+signal)."""
    import tempfile

    privileged = os.geteuid() == 0
    outer_uid, outer_gid = os.geteuid(), os.getegid()
    root = tempfile.mkdtemp(prefix="nst-box-")
    # This process shares the new mount namespace, whose root the box replaces: keep a handle
    # on the real folder holding the mount point, to remove it from there.
    parent = os.open(os.path.dirname(root), os.O_RDONLY | os.O_DIRECTORY)
    try:
        flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC
        if not privileged:
            _unshare(flags | CLONE_NEWUSER)
            _map_identity(0, 0, outer_uid, outer_gid)
        else:
            _unshare(flags)
        sys.stdout.flush()
        built_read, built_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(built_read)
            try:
                _inside(spec, privileged, root, built_write)
            except BaseException as exc:  # noqa: BLE001 - report, never run the program unconfined
                os.write(2, f"isolation failed: {exc}\n".encode())
            os._exit(125)
        os.close(built_write)
        os.read(built_read, 1)  # the box has its own root (or failed): the mount point may go
        os.close(built_read)
        _remove(root, parent)
        _, status = os.waitpid(pid, 0)
    finally:
        _remove(root, parent)
        os.close(parent)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return run(json.loads(argv[0]))
    except (OSError, ValueError, KeyError, IndexError) as exc:
        print(f"isolation failed: {exc}", file=sys.stderr)
        return 125


if __name__ == "__main__":
    sys.exit(main())
