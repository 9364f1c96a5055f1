"""A run's record in its output folder: run.json (settings, seed, versions, weights, costs),
costs.png (the three costs against iteration) and progress.png (the snapshots side by side).

Plots use matplotlib's Agg canvas directly (no pyplot state, no display needed). Every file is
written beside its target under a temporary name, then renamed, so none is ever half-written.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .errors import ConfigError, DiskFullError
from .files import replace_atomically, write_text_atomically
from .quiet import interrupted_import
from .settings import DEFAULTS

# The names of the files in a run's folder, used by every module that reads or writes them.
FINAL_IMAGE = "generated_image.jpg"
#: The optimiser's state, which a stopped run resumes from (nst_utils.state).
STATE_FILE = "state.npz"
RUN_JSON, COSTS_PNG, PROGRESS_PNG = "run.json", "costs.png", "progress.png"
#: Files a generate run writes in its folder (besides its numbered snapshots <i>.png).
RUN_FILES = (FINAL_IMAGE, RUN_JSON, COSTS_PNG, PROGRESS_PNG, STATE_FILE)
#: The link, in the output folder, to the newest run's folder.
LATEST = "latest"
#: The hidden file a run holds a lock on while it writes its folder.
LOCK_FILE = ".nst-lock"
#: The prefix of the temporary file that proves a folder writable.
WRITE_CHECK_PREFIX = ".nst-write-check-"

VERSIONED = ("tensorflow", "numpy", "scipy", "imageio", "PIL", "matplotlib", "tqdm")


def snapshot_name(i: int) -> str:
    """The file name of the snapshot of the image after iteration i."""
    return f"{i}.png"


def is_snapshot(name) -> bool:
    """True for a snapshot's file name (`snapshot_name`'s form)."""
    path = Path(name)
    return path.suffix == ".png" and path.stem.isdigit()


class FolderLock:
    """Context manager: an exclusive lock (filelock's flock) on a run's folder for as long as
    the run writes it.

    Two processes writing one folder (a second --resume, or --overwrite of a running run's
    folder) mixed their snapshots, state and record; the second now stops with a ConfigError.
    flock locks end with the process, so a killed run leaves no stale lock. A file system that
    refuses flock (NFS without its lock daemon, Lustre without -o flock) leaves the run
    unguarded. The lock file is removed when the run ends.
    """

    def __init__(self):
        self._held = {}

    def take(self, folder) -> None:
        import filelock

        folder = Path(folder).resolve()
        if folder in self._held:
            return
        lock = filelock.FileLock(
            folder / LOCK_FILE, timeout=0, thread_local=False, fallback_to_soft=False
        )
        try:
            lock.acquire()
        except filelock.Timeout:
            raise ConfigError(
                f"another nst process is writing in {folder} (a run still running); wait for "
                f"it to end or stop it, or choose another folder"
            ) from None
        except (OSError, NotImplementedError):  # no flock there, or no lock file: unguarded
            lock = None
        self._held[folder] = lock

    def release(self) -> None:
        """Remove the lock files, then let go of the locks."""
        for folder, lock in self._held.items():
            try:
                (folder / LOCK_FILE).unlink(missing_ok=True)
            except OSError:
                pass
            if lock is not None:
                lock.release()
        self._held.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
        return False


def _is_run_file(path: Path) -> bool:
    return path.name in RUN_FILES or is_snapshot(path)


def _holds_a_run(path: Path) -> bool:
    """True when `path` holds the run.json of a generate run."""
    try:
        return (
            json.loads((path / RUN_JSON).read_text(encoding="utf-8")).get("command") == "generate"
        )
    except (OSError, ValueError, AttributeError):
        return False


def new_run_dir(run_dir, output_dir, overwrite: bool = False) -> Path:
    """The folder of a new run, created and proven writable.

    run_dir given: that folder, which must be new or empty unless `overwrite` (then the files an
    earlier run wrote there are removed first). run_dir None: a new folder named after the
    current time under output_dir, which `output_dir/latest` then points to.
    """
    if run_dir is not None:
        path = prepare_output_dir(run_dir)
        entries = [
            p
            for p in path.iterdir()
            if not p.name.startswith(WRITE_CHECK_PREFIX) and p.name != LOCK_FILE
        ]
        if entries and not overwrite:
            raise ConfigError(
                f"the output folder {path} is not empty (an earlier run?); choose "
                f"a new --output, or add --overwrite to replace that run's files"
            )
        doomed = [entry for entry in entries if entry.is_file() and _is_run_file(entry)]
        if doomed and not _holds_a_run(path):
            # Numbered PNGs beside no run.json are someone's pictures, not a run's snapshots.
            raise ConfigError(
                f"the output folder {path} holds no earlier run (no run.json of "
                f"one) but files --overwrite would remove ({doomed[0].name}, ...); "
                f"choose a new --output"
            )
        for entry in doomed:
            entry.unlink()
        return path
    root = prepare_output_dir(output_dir)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    for n in range(1, 1000):
        path = root / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            path.mkdir()
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise ConfigError(
                f"cannot create a run folder in {root} ({exc.strerror or exc}); "
                f"choose another with --output"
            ) from None
    else:
        raise ConfigError(f"cannot find a free run folder name in {root}; choose one with --output")
    link_latest(root, path)
    return path


def link_latest(root: Path, path: Path) -> None:
    """Point root/latest at the run folder `path` (replaced atomically; skipped where the file
    system has no symbolic links)."""
    link = root / LATEST
    tmp = root / f".{LATEST}.{os.getpid()}"
    try:
        if link.exists() and not link.is_symlink():
            return  # a folder or file of the user's named 'latest': leave it alone
        tmp.unlink(missing_ok=True)
        os.symlink(path.name, tmp, target_is_directory=True)
        os.replace(tmp, link)
    except OSError:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def bytes_needed(settings) -> int:
    """A generous estimate of the bytes a run writes: snapshots, the final image, the saved
    optimiser state (image and Adam's two slots as float32) and the record."""
    pixels = (settings.image_width or DEFAULTS.image_width) * (
        settings.image_height or DEFAULTS.image_height
    )
    snapshots = settings.num_iterations // settings.save_every + 1 if settings.save_every else 0
    state = 3 * pixels * 3 * 4
    return (snapshots + 1) * pixels * 3 + 2 * state + 1_500_000


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def check_free_space(path, needed: int) -> None:
    """A DiskFullError when the disk holding `path` has less than `needed` bytes free."""
    try:
        free = shutil.disk_usage(path).free
    except OSError:
        return
    if free < needed:
        raise DiskFullError(
            f"the disk holding {path} has {_megabytes(free)} free and this run "
            f"needs about {_megabytes(needed)}; free some space or choose "
            f"another --output"
        )


def prepare_output_dir(path) -> Path:
    """Create the output folder if needed and prove it writable; a ConfigError if not."""
    path = Path(path).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=WRITE_CHECK_PREFIX):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"cannot write to the output folder {path} ({reason}); choose another with --output"
        ) from None
    return path


def library_versions() -> dict:
    """Versions of Python, nst_utils and the libraries a run depends on."""
    import importlib

    from . import __version__

    versions = {"python": platform.python_version(), "nst_utils": __version__}
    for name in VERSIONED:
        try:
            versions[name] = getattr(importlib.import_module(name), "__version__", "unknown")
        except ImportError as exc:
            # The interrupt, not a missing library: the import stays broken for the run's plots.
            if interrupted_import(exc):
                raise KeyboardInterrupt from None
            versions[name] = None
    versions["pillow"] = versions.pop("PIL")
    return versions


def _json_safe(value):
    """NaN and infinities become None (JSON has no such numbers); paths become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


def write_run_json(path, record: dict) -> Path:
    text = json.dumps(_json_safe(record), indent=2, allow_nan=False) + "\n"
    return write_text_atomically(path, text)


def history_rows(history) -> list:
    """[(total, content, style), ...] -> [{'iteration', 'total', 'content', 'style'}, ...]."""
    return [
        {"iteration": i, "total": t, "content": c, "style": s}
        for i, (t, c, s) in enumerate(history)
    ]


def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _save_figure(figure, path) -> Path:
    return replace_atomically(path, lambda tmp: figure.savefig(tmp, format="png"))


def plot_costs(path, history) -> Path:
    """costs.png: total, content and style cost (log scale) against iteration."""
    figure = _figure(7, 4.5)
    axes = figure.add_subplot()
    values = np.asarray(history, dtype=np.float64).reshape(-1, 3)
    iterations = np.arange(len(values))
    for column, label in enumerate(("total", "content", "style")):
        series = values[:, column]
        positive = series > 0
        axes.plot(
            iterations[positive],
            series[positive],
            label=label,
            marker="." if len(values) < 30 else None,
        )
    axes.set_yscale("log")
    from matplotlib.ticker import MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("iteration")
    axes.set_ylabel("cost")
    axes.set_title("costs of the image before each iteration")
    if len(values):
        axes.legend()
    else:
        axes.text(
            0.5, 0.5, "no iteration completed", ha="center", va="center", transform=axes.transAxes
        )
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    return _save_figure(figure, path)


def plot_progress(path, tiles, columns: int = 6) -> Path:
    """progress.png: (title, (H, W, 3) uint8 image) tiles side by side, `columns` per row."""
    columns = max(1, min(columns, len(tiles)))
    rows = max(1, math.ceil(len(tiles) / columns))
    height, width = tiles[0][1].shape[:2] if tiles else (3, 4)
    tile_width = 2.4
    tile_height = tile_width * height / width + 0.35
    figure = _figure(tile_width * columns, tile_height * rows)
    for index, (title, pixels) in enumerate(tiles):
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.imshow(pixels)
        axes.set_title(title, fontsize=9)
        axes.axis("off")
    figure.tight_layout()
    return _save_figure(figure, path)
