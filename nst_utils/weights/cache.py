"""A compact cache of VGG-19's 16 conv layers (about 80 MB), so loads after the first skip the .mat.

Reading the whole `.mat` with scipy takes about half a second and 600 MB of memory; the cache
holds only the arrays nst uses, as raw float32, memory-mapped and checked in a few hundredths.

File layout (little-endian): MAGIC (16 bytes), header length (uint64), the header as UTF-8 JSON,
the header's checksum (uint64), zero padding to a multiple of 64, then each layer's kernel and
bias as float32, in CONV_LAYERS order. The header records the source file's stamp (see
`source_stamp`), the format and mean pixel, and each layer's shapes, offset and checksum.
Checksums are XXH3-64 (the xxhash package): it checks the 80 MB in about 5 ms where zlib's
CRC-32 takes about 33 ms, which would be half the cache's whole load time.

A cache is used only when everything checks out: magic, version, header checksum, the source's
stamp, the file's exact length, every layer's shape and checksum. Anything else (stale, truncated,
corrupt, from another version) is never trusted: it is reported once and rebuilt, from a sound
cache of the same `.mat` in the other location or else from the `.mat` itself.
Writes go to a temporary name in the target folder, then `os.replace`, so a reader never sees a
half-written cache; a folder that cannot be written falls back to the user cache folder, and
if that fails too, loading goes on without a cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import os
import struct
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

MAGIC = b"NST-VGG19-CONV\x00\x00"
VERSION = 1
CACHE_SUFFIX = ".nstcache"
ALIGN = 64
_PREFIX = struct.Struct("<16sQ")
_SUM = struct.Struct("<Q")
#: A header is a few kilobytes; anything much larger is a damaged length field.
MAX_HEADER_BYTES = 1 << 20
#: Content samples in the source fingerprint: SAMPLES blocks of SAMPLE_BYTES, evenly spaced.
SAMPLES, SAMPLE_BYTES = 16, 64 * 1024


class CacheInvalid(Exception):
    """A cache file that must not be used; the message says why (stale, truncated, corrupt)."""


class CacheStale(CacheInvalid):
    """A sound cache of another version of the `.mat`: expected after the file is replaced."""


def source_stamp(mat_path) -> dict:
    """What ties a cache to its `.mat`: size, mtime (ns) and a fingerprint of sampled content.

    Size and mtime change whenever the file is rewritten, replaced or re-downloaded; the
    fingerprint (BLAKE2b of 16 blocks of 64 KiB spread over the file, first and last included)
    also catches a replacement of the same size whose mtime was carried over (`cp -p`, rsync).
    It reads 1 MiB, not the whole 535 MB, which would cost as much time as the load it saves.
    """
    mat_path = Path(mat_path)
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


def _path_tag(mat_path: Path) -> str:
    """A short tag of the `.mat`'s absolute path, so one shared folder can cache many files."""
    return hashlib.sha1(str(Path(mat_path).resolve()).encode()).hexdigest()[:12]


def cache_locations(mat_path, cache_dir=None) -> list:
    """Where the cache of `mat_path` may live, in the order they are tried.

    With `cache_dir`: only there. Without: beside the `.mat` (`<name>.mat.nstcache`), then in
    `user_cache_dir()`, named after the `.mat`'s path.
    """
    mat_path = Path(mat_path)
    tagged = f"{mat_path.name}.{_path_tag(mat_path)}{CACHE_SUFFIX}"
    if cache_dir is not None:
        return [Path(cache_dir).expanduser() / tagged]
    return [mat_path.with_name(mat_path.name + CACHE_SUFFIX), user_cache_dir() / tagged]


def checksum(*buffers) -> int:
    """XXH3-64 of the buffers' bytes, one after the other."""
    digest = xxhash.xxh3_64()
    for buffer in buffers:
        digest.update(buffer)
    return digest.intdigest()


def _aligned(offset: int) -> int:
    return -(-offset // ALIGN) * ALIGN


def _layer_bytes(weights: VGGWeights):
    """(name, kernel, bias) per conv layer, as contiguous little-endian float32 arrays."""
    for layer in CONV_LAYERS:
        kernel, bias = weights.conv[layer.name]
        yield (
            layer.name,
            np.ascontiguousarray(kernel, dtype="<f4"),
            np.ascontiguousarray(np.reshape(bias, -1), dtype="<f4"),
        )


def encode_header(weights: VGGWeights, stamp: dict) -> dict:
    """The header of a cache for `weights`: source stamp, facts, and each layer's place and sum."""
    layers, offset = [], 0
    for name, kernel, bias in _layer_bytes(weights):
        layers.append(
            {
                "name": name,
                "kernel_shape": list(kernel.shape),
                "bias_shape": list(bias.shape),
                "offset": offset,
                "xxh3": checksum(kernel, bias),
            }
        )
        offset += kernel.nbytes + bias.nbytes
    header = {
        "version": VERSION,
        "source": stamp,
        "format": weights.format,
        "mean_pixel": None if weights.mean_pixel is None else list(weights.mean_pixel),
        "source_md5": weights.source_md5,
        "layers": layers,
        "data_bytes": offset,
    }
    return header


#: A temporary cache file untouched this long, and locked by no writer, was left by a killed
#: build (the wait covers a writer between creating its file and locking it).
ABANDONED_TEMP_SECONDS = 2.0


def _remove_abandoned_temps(cache_path: Path) -> None:
    """Remove the temporary files of cache_path that builds killed without clean-up (SIGTERM,
    SIGKILL) left beside it: each is as large as the cache, and nothing else removes them."""
    now = time.time()
    for temp in cache_path.parent.glob(f".{cache_path.name}.*.tmp"):
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
    """The flock a build holds on its temporary file while writing it (filelock, on the file
    itself: no other file to clean up)."""
    return filelock.FileLock(temp, timeout=timeout, thread_local=False, fallback_to_soft=False)


def write_cache(weights: VGGWeights, stamp: dict, cache_path) -> Path:
    """Write the cache atomically (temporary file in the same folder, then rename); returns it.

    Raises OSError when the folder cannot be written. No fsync: a cache torn by a crash fails
    its checksums on the next read and is rebuilt, so durability is not worth its cost here.
    """
    cache_path = Path(cache_path)
    header = encode_header(weights, stamp)
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    prefix = _PREFIX.pack(MAGIC, len(header_bytes)) + header_bytes
    prefix += _SUM.pack(checksum(header_bytes))
    prefix += b"\0" * (_aligned(len(prefix)) - len(prefix))
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_temps(cache_path)
    fd, temp = tempfile.mkstemp(dir=cache_path.parent, prefix=f".{cache_path.name}.", suffix=".tmp")
    held = _build_lock(temp)
    try:
        try:  # held while writing: _remove_abandoned_temps leaves a locked file alone
            held.acquire()
        except (OSError, NotImplementedError):  # a file system without flock: unguarded
            pass
        with os.fdopen(fd, "wb") as handle:
            handle.write(prefix)
            for _, kernel, bias in _layer_bytes(weights):
                handle.write(memoryview(kernel).cast("B"))
                handle.write(memoryview(bias).cast("B"))
        os.replace(temp, cache_path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    finally:
        held.release()
    return cache_path


def read_cache(cache_path, stamp: dict) -> VGGWeights:
    """The weights in a cache written for a source with this `stamp`; `CacheInvalid` if unsound.

    The data is memory-mapped, not copied: the arrays returned are read-only views of the
    mapping (each layer checksummed first), which costs about a quarter of reading the 80 MB
    into fresh memory. The mapping stays valid because caches are only ever replaced by
    rename, never rewritten in place.
    """
    cache_path = Path(cache_path)
    try:
        handle = open(cache_path, "rb")
    except FileNotFoundError:
        raise CacheInvalid("there is none") from None
    with handle:
        file_size = os.fstat(handle.fileno()).st_size
        prefix = handle.read(_PREFIX.size)
        if len(prefix) < _PREFIX.size or not prefix.startswith(MAGIC):
            raise CacheInvalid("it is not an nst weights cache (bad magic)")
        _, header_len = _PREFIX.unpack(prefix)
        if header_len > MAX_HEADER_BYTES:
            raise CacheInvalid(f"its header length ({header_len}) is corrupt")
        header_bytes = handle.read(header_len)
        sum_bytes = handle.read(_SUM.size)
        if len(header_bytes) != header_len or len(sum_bytes) != _SUM.size:
            raise CacheInvalid("it is truncated inside its header")
        if checksum(header_bytes) != _SUM.unpack(sum_bytes)[0]:
            raise CacheInvalid("its header fails its checksum (corrupt)")
        try:
            header = json.loads(header_bytes)
        except ValueError:
            raise CacheInvalid("its header is not valid JSON") from None
        if header.get("version") != VERSION:
            raise CacheInvalid(f"it is version {header.get('version')}, this nst writes {VERSION}")
        if header.get("source") != stamp:
            raise CacheStale("it is stale: the .mat file changed since the cache was written")
        data_start = _aligned(_PREFIX.size + header_len + _SUM.size)
        data_bytes = header.get("data_bytes")
        if (
            not isinstance(data_bytes, int)
            or data_bytes <= 0
            or file_size != data_start + data_bytes
        ):
            raise CacheInvalid(
                f"it is {file_size} bytes long, its header says "
                f"{data_start + (data_bytes or 0)}: truncated or padded"
            )
        layers = header.get("layers") or []
        if [entry.get("name") for entry in layers] != [layer.name for layer in CONV_LAYERS]:
            raise CacheInvalid("its layer list is not VGG-19's 16 conv layers")
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    buffer = np.frombuffer(mapped, dtype=np.uint8, count=data_bytes, offset=data_start)
    conv = {}
    for layer, entry in zip(CONV_LAYERS, layers):
        out = layer.kernel_shape[-1]
        if tuple(entry["kernel_shape"]) != layer.kernel_shape or tuple(entry["bias_shape"]) != (
            out,
        ):
            raise CacheInvalid(f"its {layer.name} has the wrong shape")
        start = entry["offset"]
        kernel_end = start + 4 * int(np.prod(layer.kernel_shape))
        end = kernel_end + 4 * out
        if not isinstance(start, int) or start < 0 or end > data_bytes:
            raise CacheInvalid(f"its {layer.name} lies outside the data")
        if checksum(buffer[start:end]) != entry.get("xxh3"):
            raise CacheInvalid(f"its {layer.name} fails its checksum (corrupt)")
        conv[layer.name] = (
            buffer[start:kernel_end].view("<f4").reshape(layer.kernel_shape),
            buffer[kernel_end:end].view("<f4"),
        )
    mean = header.get("mean_pixel")
    md5 = header.get("source_md5")
    return VGGWeights(
        conv=conv,
        format=header.get("format", "unknown"),
        mean_pixel=None if mean is None else tuple(float(v) for v in mean),
        source_md5=md5 if isinstance(md5, str) else None,
    )


def release_pages(arrays) -> None:
    """Let the kernel take back the resident pages of the cache files behind `arrays`.

    For arrays read by `read_cache` (views of a read-only mapping) once TensorFlow's variables
    hold them: the checksums touched every page, and a run reads back only the layers it uses
    (TensorFlow's float32 variables share the mapping rather than copy it). 25 to 50 MB less
    resident at 400x300. Arrays of any other origin are left alone.
    """
    mappings = {}
    for array in arrays:
        base = array
        while isinstance(base, np.ndarray):
            base = base.base
        mapping = base.obj if isinstance(base, memoryview) else base
        if isinstance(mapping, mmap.mmap) and not mapping.closed:
            mappings[id(mapping)] = mapping
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
    """
    unsound = []
    for location in cache_locations(mat_path, cache_dir):
        _remove_abandoned_temps(location)
        try:
            weights = read_cache(location, stamp)
        except CacheInvalid as why:
            if location.exists():
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
            if location.exists():
                notes.append(f"{location}: {why}")
        except OSError as exc:
            notes.append(f"{location}: {exc.strerror or exc}")
    if notes:
        return "none usable (" + "; ".join(notes) + "); the next load rebuilds it"
    return "none yet; the first load writes it"
