"""Where the VGG-19 weights come from, and the lines that tell people how to get them.

The published files (URL, MD5, size), the file checks every reader starts with (the path names
a file; its MD5), and the messages shared by the loader, the downloader and the doctor, so the
three never word the same problem differently.
"""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path

from ..settings import DEFAULTS, WEIGHTS_FILENAME
from ..errors import WeightsError

#: Where the two circulating formats are published, with their MD5 and (where known) size.
WEIGHTS_SOURCES = {
    "new": {
        "url": "https://www.vlfeat.org/matconvnet/models/imagenet-vgg-verydeep-19.mat",
        "md5": "106118b7cf60435e6d8e04f6a6dc3657",
        "size": 534_904_783,
    },
    "old": {
        "url": "http://www.vlfeat.org/matconvnet/models/beta16/imagenet-vgg-verydeep-19.mat",
        "md5": "8ee3263992981a1d26e73b3ca028a123",
        "size": None,
    },
}
DEFAULT_FORMAT = "new"
FETCH_COMMAND = "python -m nst_utils fetch-weights"
#: The environment variable that points the commands and the notebook at other weights.
WEIGHTS_ENV = "NST_WEIGHTS"


def default_weights_path() -> Path:
    """The project's own weights path, `pretrained-model/imagenet-vgg-verydeep-19.mat`.

    The only path a missing file is downloaded to without being asked (`fetch-weights --dest`
    names others).
    """
    return DEFAULTS.vgg_model


def is_default_path(path) -> bool:
    """Whether `path` names the project's own weights file."""
    return Path(path).expanduser().resolve() == default_weights_path().resolve()


def fetch_command_for(path) -> str:
    """The shell command that downloads the published file to `path` (quoted where needed)."""
    path = Path(path).expanduser()
    if is_default_path(path):
        return FETCH_COMMAND
    dest = path.parent if path.name == WEIGHTS_FILENAME or path.suffix.lower() != ".mat" else path
    return f"{FETCH_COMMAND} --dest {shlex.quote(str(dest))}"


def missing_weights_message(path, named_by: str | None = None) -> str:
    """The one line shown when there is no weights file at `path`.

    named_by: what chose that path, for instance 'NST_WEIGHTS' or '--weights' (None: nothing
    did, it is the default path). The line names the path and the command that puts the
    published file there; for NST_WEIGHTS it adds that unsetting it restores the default.
    """
    path = Path(path).expanduser()
    source = WEIGHTS_SOURCES[DEFAULT_FORMAT]
    origin = f" (from {named_by})" if named_by else ""
    line = (
        f"VGG-19 weights not found at {path}{origin}: run `{fetch_command_for(path)}` to "
        f"download them there (about 535 MB from {source['url']})"
    )
    if path.suffix.lower() != ".mat" and not is_default_path(path):
        line = (
            f"VGG-19 weights not found at {path}{origin}: run `{fetch_command_for(path)}` "
            f"to download them (about 535 MB from {source['url']}) to "
            f"{path.parent / WEIGHTS_FILENAME}, and use that path"
        )
    if named_by == WEIGHTS_ENV:
        return line + f", or unset {WEIGHTS_ENV} to use the default {default_weights_path()}"
    return line + ", or download that file by hand and put it there"


def unreadable_message(path, exc: OSError) -> str:
    """The one line shown when the weights file exists but the system refuses to read it."""
    return (
        f"{path} cannot be read ({exc.strerror or exc}); check its permissions, or delete it "
        f"and run `{fetch_command_for(path)}`"
    )


def folder_message(path) -> str:
    """The one line shown when the weights path names a folder."""
    return f"{path} is a folder; give the path of the file {WEIGHTS_FILENAME} inside it"


def check_weights_path(path, named_by: str | None = None) -> Path:
    """The path as a `Path` if it names an existing regular file; a `WeightsError` if not."""
    path = Path(path).expanduser()
    if not path.exists():
        raise WeightsError(missing_weights_message(path, named_by))
    if path.is_dir():
        raise WeightsError(folder_message(path))
    return path


def file_md5(path, chunk_bytes: int = 1 << 22) -> str:
    """The MD5 of a file as 32 lower-case hex digits, read in chunks (constant memory)."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def published_format(md5: str | None) -> str | None:
    """'new' or 'old' when `md5` is that format's published MD5, else None."""
    for fmt, source in WEIGHTS_SOURCES.items():
        if md5 == source["md5"]:
            return fmt
    return None
