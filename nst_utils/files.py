"""Writing a file so that it appears whole or not at all.

Every file nst writes for people (images, run records, plots, grade reports, the student
notebook) goes through `replace_atomically`: the content is written to a hidden temporary name
beside the target, then renamed over it, and the temporary file never outlives a failure.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Callable

from .errors import DiskFullError, NSTError

#: The errors of a full disk and of a spent disk quota.
DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def replace_atomically(path, write: Callable[[Path], object], error=NSTError) -> Path:
    """Call write(tmp) on a temporary file beside `path`, then rename it to `path`.

    Creates missing folders. An OSError becomes `error` (an NSTError subclass) with a one-line
    message naming the path; the target is then left as it was.
    """
    path = Path(path).expanduser()
    tmp = path.with_name(f".{path.name}.partial{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        if exc.errno in DISK_FULL:
            raise DiskFullError(
                f"cannot write {path}: the disk is full ({exc.strerror}); free "
                f"some space or choose a folder on another disk"
            ) from None
        raise error(
            f"cannot write {path} ({exc.strerror or exc}); choose a folder you can write to"
        ) from None
    finally:
        try:
            tmp.unlink()
        except OSError:
            pass
    return path


def write_text_atomically(path, text: str, error=NSTError) -> Path:
    """Write UTF-8 text to `path` atomically (see replace_atomically)."""
    return replace_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), error)


def check_writable(path, error=NSTError) -> Path:
    """Make sure a file can be written at `path` later, leaving any file already there untouched.

    A long job (grading a class) checks its outputs before it starts, not after.
    """
    path = Path(path).expanduser()
    probe = replace_atomically(
        path.with_name(f".{path.name}.probe"), lambda tmp: tmp.write_bytes(b""), error
    )
    probe.unlink()
    return path
