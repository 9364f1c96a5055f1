"""The class's gradebook: each submission's grade kept in an SQLite file as soon as it is made.

A grade is stored under its key: the student, the notebook's content hash (SHA-256 of its
bytes), the grader's version (a hash of the grading code and of what the answer key is
computed from) and the settings a grade depends on (functions, limits, hidden seed, isolation).
A run that finds a submission's key here does not grade it again, so a class run stopped by a
crash, Ctrl-C or a time limit goes on where it stopped, and late or changed submissions are
the only ones graded. Each grade is committed on its own: what is stored survives a kill.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import json
import os
import sqlite3
import stat
from pathlib import Path

from ..errors import NSTError

#: The gradebook's file name when --db is not given (beside the reports).
DEFAULT_NAME = "nst-grades.sqlite"
#: Bumped when the table's layout changes.
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS grades (
    student TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    grader_version TEXT NOT NULL,
    settings TEXT NOT NULL,
    path TEXT NOT NULL,
    grade TEXT NOT NULL,
    run TEXT NOT NULL,
    graded_at TEXT NOT NULL,
    PRIMARY KEY (student, content_hash, grader_version, settings)
)
"""
#: Seconds to wait for another process that is writing the same gradebook.
BUSY_SECONDS = 60


class GradebookError(NSTError):
    """The gradebook file cannot be opened or is not an nst gradebook."""


@dataclasses.dataclass(frozen=True)
class Key:
    """What a stored grade is valid for."""

    student: str
    content_hash: str
    grader_version: str
    settings: str


def content_hash(path, max_bytes: int) -> str | None:
    """SHA-256 of the regular file at `path` (a symbolic link is not followed), or None when it
    is not one, cannot be opened or holds more than `max_bytes`: such a file gets its row
    without a box, so it is cheap to look at again."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            return None
        digest = hashlib.sha256()
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@functools.lru_cache(maxsize=None)
def grader_version() -> str:
    """A hash that changes whenever grading may change: the sources of the grading package
    (the judge, the mistakes, the box's code), of the reference the answer key is computed from,
    and the numpy and TensorFlow versions both run on."""
    import numpy
    import tensorflow

    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    files = sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)
    files.append(package.parent / "costs.py")
    for path in files:
        digest.update(path.relative_to(package.parent).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    digest.update(f"numpy {numpy.__version__} tensorflow {tensorflow.__version__}".encode())
    return digest.hexdigest()[:16]


def settings_text(**settings) -> str:
    """The settings a grade depends on, as canonical JSON."""
    return json.dumps(settings, sort_keys=True, separators=(",", ":"))


def default_path(outputs, cwd=None) -> Path:
    """Where the gradebook goes when not named: beside the first report file (or the feedback
    folder) given, else in the current folder."""
    for output in outputs:
        if output is not None:
            return Path(output).expanduser().absolute().parent / DEFAULT_NAME
    return Path(cwd or os.getcwd()) / DEFAULT_NAME


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


class Gradebook:
    """The SQLite gradebook at `path` (created if missing); use as a context manager."""

    def __init__(self, path, run: str | None = None):
        self.path = Path(path).expanduser()
        self.run = run or f"{_now()} pid {os.getpid()}"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(self.path), timeout=BUSY_SECONDS)
        except (OSError, sqlite3.Error) as exc:
            raise GradebookError(
                f"cannot open the gradebook {self.path} ({exc}); choose another file with --db"
            ) from None
        try:
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise GradebookError(
                    f"{self.path} is a gradebook of another layout (version {version}); "
                    f"choose another file with --db"
                )
            with self.db:
                self.db.execute(_SCHEMA)
                self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            columns = {row[1] for row in self.db.execute("PRAGMA table_info(grades)")}
        except sqlite3.Error as exc:
            self.db.close()
            raise GradebookError(
                f"{self.path} is not an nst gradebook ({exc}); choose another file with --db"
            ) from None
        if "grade" not in columns or "content_hash" not in columns:
            self.db.close()
            raise GradebookError(
                f"{self.path} holds another program's 'grades' table; choose another file with --db"
            )

    def get(self, key: Key) -> dict | None:
        """The grade stored under `key` (plain data), or None."""
        row = self.db.execute(
            "SELECT grade FROM grades WHERE student = ? AND content_hash = ? "
            "AND grader_version = ? AND settings = ?",
            dataclasses.astuple(key),
        ).fetchone()
        if row is None:
            return None
        try:
            return json.loads(row[0])
        except ValueError:
            return None

    def put(self, key: Key, path: str, grade: dict) -> None:
        """Store `grade` under `key` and commit at once."""
        try:
            with self.db:
                self.db.execute(
                    "INSERT OR REPLACE INTO grades VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    dataclasses.astuple(key) + (path, json.dumps(grade), self.run, _now()),
                )
        except sqlite3.Error as exc:  # a full disk, a file another program holds too long
            raise GradebookError(
                f"cannot store a grade in the gradebook {self.path} ({exc}); what is stored "
                f"stays: free some space, or wait for the other program, and run again"
            ) from None

    def close(self) -> None:
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
