"""A cache of VGG-19's 16 conv layers (about 80 MB), so loads after the first skip the .mat.

Reading the whole `.mat` with scipy takes about half a second and 600 MB of memory. The cache
is two files: `<name>.nstcache`, a `.npy` (`np.save`) of every conv layer's kernel then bias as
one float32 vector in CONV_LAYERS order, memory-mapped by `np.load(mmap_mode="r")`; and its
stamp `<name>.nstcache.json`: the `.mat`'s identity (see `source_stamp`), the format, mean
pixel and MD5, and an XXH3-64 checksum of each layer (the xxhash package: 5 ms for the 80 MB,
where zlib's CRC-32 takes about 33) and of the stamp itself.

A cache is used only when everything checks out: the stamp's checksum and version, the
source's identity, the data's shape, exact length and every layer's checksum. Anything else
(stale, truncated, corrupt, from another version) is reported once and rebuilt, from a sound
cache of the same `.mat` in the other location or else from the `.mat` itself. Each file is
written under a temporary name in its folder and renamed into place, the data first and the
stamp last; a reader checks the data against the stamp, so it never takes a mixed pair. A
folder that cannot be written falls back to the user cache folder, and if that fails too,
loading goes on without a cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import os
import tempfile
import time
from pathlib import Path

import filelock
import numpy as np
import xxhash

from ..architecture import CONV_LAYERS
from ..config import user_cache_dir
from .mat import VGGWeights

log = logging.getLogger(__name__)

VERSION = 2
CACHE_SUFFIX = ".nstcache"
#: Content samples in the source fingerprint: SAMPLES blocks of SAMPLE_BYTES, evenly spaced.
SAMPLES, SAMPLE_BYTES = 16, 64 * 1024


def _spans() -> list:
    """(name, kernel shape, start, end of the kernel, end of the bias) in the cache's vector."""
    spans, start = [], 0
    for layer in CONV_LAYERS:
        kernel_end = start + int(np.prod(layer.kernel_shape))
        spans.append(
            (layer.name, layer.kernel_shape, start, kernel_end, kernel_end + layer.kernel_shape[3])
        )
        start = spans[-1][-1]
    return spans


_SPANS = _spans()
FLOATS = _SPANS[-1][-1]  # 20,024,384: VGG-19's conv parameters


class CacheInvalid(Exception):
    """A cache that must not be used; the message says why (stale, truncated, corrupt)."""


class CacheStale(CacheInvalid):
    """A sound cache of another version of the `.mat`: expected after the file is replaced."""


def source_stamp(mat_path) -> dict:
    """What ties a cache to its `.mat`: size, mtime (ns) and a fingerprint of sampled content.

    The fingerprint (BLAKE2b of 16 blocks of 64 KiB spread over the file, first and last
    included) also catches a same-size replacement whose mtime was carried over (`cp -p`,
    rsync), reading 1 MiB instead of the whole 535 MB.
    """
    with open(mat_path, "rb") as handle:
        stat = os.fstat(handle.fileno())
        size = stat.st_size
        digest = hashlib.blake2b(str(size).encode(), digest_size=16)
        if size <= SAMPLES * SAMPLE_BYTES:
            digest.update(handle.read())
        else:
            step = (size - SAMPLE_BYTES) / (SAMPLES - 1)
            for i in range(SAMPLES):
                handle.seek(int(i * step))
                digest.update(handle.read(SAMPLE_BYTES))
    return {"size": size, "mtime_ns": stat.st_mtime_ns, "fingerprint": digest.hexdigest()}


def cache_locations(mat_path, cache_dir=None) -> list:
    """Where the cache's data file of `mat_path` may live, in the order they are tried.

    With `cache_dir`: only there. Without: beside the `.mat` (`<name>.mat.nstcache`), then in
    `user_cache_dir()`, named after the `.mat`'s path (one shared folder serves many files).
    """
    mat_path = Path(mat_path)
    tag = hashlib.sha1(str(mat_path.resolve()).encode()).hexdigest()[:12]
    tagged = f"{mat_path.name}.{tag}{CACHE_SUFFIX}"
    if cache_dir is not None:
        return [Path(cache_dir).expanduser() / tagged]
    return [mat_path.with_name(mat_path.name + CACHE_SUFFIX), user_cache_dir() / tagged]


def stamp_path(cache_path) -> Path:
    """The stamp file beside a cache's data file."""
    return Path(f"{cache_path}.json")


def _stamp_sum(body: dict) -> int:
    return xxhash.xxh3_64_intdigest(json.dumps(body, sort_keys=True).encode())


#: A temporary cache file untouched this long, and locked by no writer, was left by a killed
#: build (the wait covers a writer between creating its file and locking it).
ABANDONED_TEMP_SECONDS = 2.0


def _remove_abandoned_temps(cache_path: Path) -> None:
    """Remove the temporary files (each up to the cache's size) that builds killed without
    clean-up (SIGTERM, SIGKILL) left beside cache_path: nothing else removes them."""
    now = time.time()
    for temp in cache_path.parent.glob(f".{cache_path.name}*.tmp"):
        try:
            if now - temp.stat().st_mtime < ABANDONED_TEMP_SECONDS:
                continue
        except OSError:
            continue
        probe = _build_lock(temp, timeout=0)
        try:
            probe.acquire()
        except (filelock.Timeout, OSError, NotImplementedError):
            continue  # a live build holds it, or a file system without flock cannot tell
        try:
            temp.unlink(missing_ok=True)
        except OSError:
            pass
        finally:
            probe.release()


def _build_lock(temp, timeout: float = -1) -> filelock.FileLock:
    """The flock a build holds on its temporary file while writing it."""
    return filelock.FileLock(temp, timeout=timeout, thread_local=False, fallback_to_soft=False)


def _replace_with(target: Path, write) -> None:
    """Call write(temporary path) for a new file in target's folder, locked against clean-up
    while written, then rename it onto target: a reader sees the old file or the new one."""
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    held = _build_lock(temp)
    try:
        try:  # _remove_abandoned_temps leaves a locked file alone
            held.acquire()
        except (OSError, NotImplementedError):  # a file system without flock: unguarded
            pass
        write(temp)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    finally:
        held.release()


def write_cache(weights: VGGWeights, stamp: dict, cache_path) -> Path:
    """Write the cache's data, then its stamp, each atomically; returns the data file's path.

    Raises OSError when the folder cannot be written. No fsync: a cache torn by a crash fails
    its checks on the next read and is rebuilt.
    """
    cache_path = Path(cache_path)
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_temps(cache_path)
    sums = {}

    def write_data(temp):
        data = np.lib.format.open_memmap(temp, mode="w+", dtype="<f4", shape=(FLOATS,))
        for name, _, start, kernel_end, end in _SPANS:
            kernel, bias = weights.conv[name]
            data[start:kernel_end] = np.ravel(kernel)
            data[kernel_end:end] = np.ravel(bias)
            sums[name] = xxhash.xxh3_64_intdigest(data[start:end])
        data.flush()
        del data

    _replace_with(cache_path, write_data)
    body = {
        "version": VERSION,
        "source": stamp,
        "format": weights.format,
        "mean_pixel": None if weights.mean_pixel is None else list(weights.mean_pixel),
        "source_md5": weights.source_md5,
        "xxh3": sums,
    }
    text = json.dumps({"body": body, "xxh3": _stamp_sum(body)})
    _replace_with(stamp_path(cache_path), lambda temp: Path(temp).write_text(text))
    return cache_path


def read_cache(cache_path, stamp: dict) -> VGGWeights:
    """The weights in a cache written for a source with this `stamp`; `CacheInvalid` if unsound.

    The arrays are read-only views of the memory-mapped data file (each layer checksummed
    first), which stays valid because caches are replaced by rename, never rewritten in place.
    """
    cache_path = Path(cache_path)
    try:
        saved = json.loads(stamp_path(cache_path).read_bytes())
        body, saved_sum = saved["body"], saved["xxh3"]
        if not isinstance(body, dict):
            raise TypeError(body)
    except FileNotFoundError:
        missing = "its stamp is missing" if cache_path.exists() else "there is none"
        raise CacheInvalid(missing) from None
    except (ValueError, KeyError, TypeError):
        raise CacheInvalid("its stamp is not an nst weights cache stamp (corrupt)") from None
    if saved_sum != _stamp_sum(body):
        raise CacheInvalid("its stamp fails its checksum (corrupt)")
    if body.get("version") != VERSION:
        raise CacheInvalid(f"it is version {body.get('version')}, this nst writes {VERSION}")
    if body.get("source") != stamp:
        raise CacheStale("it is stale: the .mat file changed since the cache was written")
    try:
        data = np.load(cache_path, mmap_mode="r")
    except FileNotFoundError:
        raise CacheInvalid("its data file is missing") from None
    except (ValueError, EOFError) as exc:  # a damaged .npy header, or too short for its shape
        raise CacheInvalid(f"its data is truncated or not a .npy file ({exc})") from None
    if data.dtype != np.dtype("<f4") or data.shape != (FLOATS,):
        raise CacheInvalid(f"its data is {data.dtype} {data.shape}, not float32 ({FLOATS},)")
    if data.offset + data.nbytes != cache_path.stat().st_size:
        raise CacheInvalid("its data file is longer than its array: truncated or padded")
    sums, conv = body.get("xxh3") or {}, {}
    for name, shape, start, kernel_end, end in _SPANS:
        if xxhash.xxh3_64_intdigest(data[start:end]) != sums.get(name):
            raise CacheInvalid(f"its {name} fails its checksum (corrupt)")
        conv[name] = (data[start:kernel_end].reshape(shape), data[kernel_end:end])
    mean, md5 = body.get("mean_pixel"), body.get("source_md5")
    return VGGWeights(
        conv=conv,
        format=body.get("format", "unknown"),
        mean_pixel=None if mean is None else tuple(float(v) for v in mean),
        source_md5=md5 if isinstance(md5, str) else None,
    )


def release_pages(arrays) -> None:
    """Let the kernel take back the resident pages of the cache files behind `arrays`.

    For arrays read by `read_cache` once TensorFlow's variables hold them: the checksums
    touched every page, and a run reads back only the layers it uses. 25 to 50 MB less
    resident at 400x300. Arrays of any other origin are left alone.
    """
    mappings = {}
    for array in arrays:
        base = array
        while isinstance(base, np.ndarray):
            base = base.base
        if isinstance(base, mmap.mmap) and not base.closed:
            mappings[id(base)] = base
    for mapping in mappings.values():
        try:
            mapping.madvise(mmap.MADV_DONTNEED)
        except (AttributeError, OSError, ValueError):  # no madvise on this system
            pass


def store_cache(weights: VGGWeights, mat_path, stamp: dict, cache_dir=None):
    """Write the cache at the first location that can be written; the path, or None if none can."""
    reasons = []
    for location in cache_locations(mat_path, cache_dir):
        try:
            return write_cache(weights, stamp, location)
        except OSError as exc:
            reasons.append(f"{location.parent}: {exc.strerror or exc}")
    log.warning(
        "could not write a weights cache (%s); every load will read the whole .mat; "
        "name a writable folder for it (cache_dir, the weights_cache_dir setting, or "
        "NST_WEIGHTS_CACHE_DIR for the commands and the notebook)",
        "; ".join(reasons),
    )
    return None


def cached_weights(mat_path, stamp: dict, build, cache_dir=None) -> VGGWeights:
    """The weights of `mat_path` from its first sound cache, else from `build()`, then cached.

    An unsound cache (damaged, stale, of another version) is never trusted and is replaced at
    once: from the sound cache found after it, or by the cache written from `build()`. So it is
    reported once, and the next load reads it. Each report says what was done about it.
    The weights built are given back as the cache's mapping, as every later load gives them,
    so that a first run holds no more memory than the runs after it.
    """
    unsound = []
    for location in cache_locations(mat_path, cache_dir):
        _remove_abandoned_temps(location)
        try:
            weights = read_cache(location, stamp)
        except CacheInvalid as why:
            if location.exists() or stamp_path(location).exists():
                unsound.append((location, why))
            continue
        except OSError as exc:
            log.warning(
                "cannot read the weights cache %s (%s); loading %s instead", location, exc, mat_path
            )
            continue
        for bad, why in unsound:
            try:
                write_cache(weights, stamp, bad)
                done = f"rebuilt it from the sound cache {location}"
            except OSError as exc:
                done = (
                    f"it cannot be rebuilt ({exc.strerror or exc}), so {location} is used "
                    f"instead; remove {bad} or make its folder writable to stop this message"
                )
            _report(bad, why, done)
        return weights
    weights = build()
    written = store_cache(weights, mat_path, stamp, cache_dir)
    for bad, why in unsound:
        if bad == written:
            done = f"rebuilt it from {mat_path}"
        elif written is not None:
            done = f"read {mat_path} instead and cached it at {written}"
        else:
            done = f"read {mat_path} instead"
        _report(bad, why, done)
    if written is not None:
        try:
            return read_cache(written, stamp)
        except (CacheInvalid, OSError):  # replaced meanwhile by another writer: keep ours
            pass
    return weights


def _report(location: Path, why: CacheInvalid, done: str) -> None:
    """Log an unsound cache: a stale one (expected after the .mat changes) as INFO, else WARNING."""
    level = logging.INFO if isinstance(why, CacheStale) else logging.WARNING
    log.log(level, "ignoring the weights cache %s: %s; %s", location, why, done)


def cache_status(mat_path, cache_dir=None) -> str:
    """One line on the cache of `mat_path`: where a sound one is, or why there is none."""
    try:
        stamp = source_stamp(mat_path)
    except OSError as exc:
        return f"unavailable ({exc.strerror or exc})"
    notes = []
    for location in cache_locations(mat_path, cache_dir):
        try:
            read_cache(location, stamp)
            return f"fresh at {location}"
        except CacheInvalid as why:
            if location.exists() or stamp_path(location).exists():
                notes.append(f"{location}: {why}")
        except OSError as exc:
            notes.append(f"{location}: {exc.strerror or exc}")
    if notes:
        return "none usable (" + "; ".join(notes) + "); the next load rebuilds it"
    return "none yet; the first load writes it"
