"""The load policy: when the weights are downloaded, and when the cache is read or written.

`load_weights` is what the notebook and the network use: the `.mat` at a path, through the cache
unless told not to. `load_for_run` is what a command that paints uses: it may download a missing
file first, but only to the path it is told it may download to (the project's default path),
and it returns the facts a run's record needs. Every argument is explicit: the callers read
the environment and the settings.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import WeightsError
from .cache import CacheInvalid, cached_weights, read_cache, source_stamp, write_cache
from .download import ensure_weights
from .mat import VGGWeights, load_weights_from_mat
from .sources import check_weights_path, file_md5, unreadable_message


def load_weights(path, *, cache: bool = True, cache_dir=None, apart: bool = False) -> VGGWeights:
    """The 16 conv layers of a VGG-19 `.mat` file (any format), checked layer by layer.

    With `cache` (the default), the first load writes a compact cache of those layers and later
    loads read it instead of the `.mat`, as long as the `.mat` is unchanged; see
    `nst_utils.weights.cache`. `cache_dir` (None: beside the `.mat`, or the user cache folder
    if that folder is read-only) is where the cache goes. Arrays read from the cache are
    read-only views of the memory-mapped cache file; copy one before changing it. With
    `apart`, a cache is built from the `.mat` read by a child process (see `_read_apart`).
    """
    path = check_weights_path(path)
    if not cache:
        return load_weights_from_mat(path)
    try:
        stamp = source_stamp(path)
    except OSError as exc:
        raise WeightsError(unreadable_message(path, exc)) from None

    def build() -> VGGWeights:
        weights = _read_apart(path, stamp) if apart else None
        return _from_mat(path) if weights is None else weights  # the child's error, raised here

    return cached_weights(path, stamp, build, cache_dir)


def _from_mat(path) -> VGGWeights:
    weights = load_weights_from_mat(path)
    weights.source_md5 = file_md5(path)  # once, while the file is in the page cache anyway
    return weights


def _read_apart(path: Path, stamp: dict):
    """The weights of the `.mat` at `path` as read by a child process into a private cache file,
    mapped here; None if the child failed. The `.mat`'s 600 MB, scipy.io and what they leave in
    the heap stay out of this process: a run's first load peaks no higher than the later ones."""
    root = str(Path(__file__).resolve().parents[2])  # where nst_utils is, for the child
    code = (
        "import sys; sys.path.insert(0, sys.argv.pop(1)); from nst_utils.weights import load; "
        "load._write_from_mat(*sys.argv[1:])"
    )
    with tempfile.TemporaryDirectory(prefix="nst-weights-") as folder:
        target = Path(folder) / "weights.nstcache"
        args = [sys.executable, "-c", code, root, str(path), json.dumps(stamp), str(target)]
        if subprocess.run(args, capture_output=True).returncode != 0:
            return None
        try:
            return read_cache(target, stamp)  # the mapping outlives the folder's removal
        except (CacheInvalid, OSError):
            return None


def _write_from_mat(path: str, stamp: str, target: str) -> None:
    """`_read_apart`'s child: the `.mat`'s weights into a cache file at `target`."""
    write_cache(_from_mat(Path(path)), json.loads(stamp), target)


@dataclasses.dataclass
class RunWeights:
    """Loaded VGG-19 weights plus the file's path, size, MD5 and format (for run.json)."""

    weights: VGGWeights
    path: Path
    size: int
    md5: str

    @property
    def format(self) -> str:
        return self.weights.format

    def record(self) -> dict:
        return {"path": str(self.path), "bytes": self.size, "md5": self.md5, "format": self.format}


def load_for_run(
    path,
    *,
    download_to=None,
    named_by: str | None = None,
    cache: bool = True,
    cache_dir=None,
    progress: bool = True,
) -> RunWeights:
    """Read and check the weights file at `path` for a run; a one-line `WeightsError` if unusable.

    download_to: the one path that may be downloaded to (the project's default path), or None.
    A missing file is downloaded, verified, only when `path` is that path; any other missing
    path is an error that names it, and named_by (what chose it: 'NST_WEIGHTS', '--weights')
    says where it came from. cache and cache_dir: as for `load_weights`.
    """
    wanted = Path(path).expanduser()
    if (
        download_to is not None
        and not wanted.exists()
        and wanted.resolve() == Path(download_to).expanduser().resolve()
    ):
        ensure_weights(wanted, progress=progress)
    wanted = check_weights_path(wanted, named_by).resolve()
    weights = load_weights(wanted, cache=cache, cache_dir=cache_dir, apart=True)
    return RunWeights(
        weights=weights,
        path=wanted,
        size=wanted.stat().st_size,
        md5=weights.source_md5 or file_md5(wanted),
    )
