"""The compact conv-layer cache behind load_weights: hits, invalidation, corruption, read-only
folders."""

import hashlib
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from nst_utils import weights
from nst_utils.weights import cache
from nst_utils.weights import load
from nst_utils.architecture import CONV_LAYERS
from nst_utils.config import user_cache_dir
from nst_utils.settings import Settings
from nst_utils.weights.synthetic import write_vgg19_mat


@pytest.fixture(autouse=True)
def private_user_cache(tmp_path, monkeypatch):
    """Point the user cache folder at a temporary one, so no test touches ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return tmp_path / "xdg-cache" / "nst"


@pytest.fixture
def mat_copy(vgg_mat, tmp_path):
    """A private copy of the new-format fixture file, free to change."""
    folder = tmp_path / "weights"
    folder.mkdir()
    return (
        shutil.copy(vgg_mat, folder / "imagenet-vgg-verydeep-19.mat")
        and folder / "imagenet-vgg-verydeep-19.mat"
    )


def beside(mat):
    return mat.with_name(mat.name + cache.CACHE_SUFFIX)


def cache_files(path):
    """A cache's two files: its data and its stamp."""
    return [path, cache.stamp_path(path)]


def copy_cache(source, target):
    for a, b in zip(cache_files(source), cache_files(target)):
        shutil.copy(a, b)


def assert_same_weights(a, b):
    assert list(a.conv) == list(b.conv) == [layer.name for layer in CONV_LAYERS]
    for name in a.conv:
        for x, y in zip(a.conv[name], b.conv[name]):
            assert x.dtype == y.dtype == np.float32 and x.shape == y.shape
            np.testing.assert_array_equal(x, y)
    assert a.format == b.format
    assert a.mean_pixel == b.mean_pixel


def forbid_mat_reads(monkeypatch):
    def refuse(path):
        raise AssertionError(f"read the .mat {path} although a sound cache was there")

    monkeypatch.setattr(load, "load_weights_from_mat", refuse)


@pytest.mark.parametrize("fmt", ["new", "intermediate", "old"])
def test_the_cache_gives_identical_arrays_format_and_mean(vgg_mat_files, tmp_path, fmt):
    mat = shutil.copy(vgg_mat_files[fmt], tmp_path / f"{fmt}.mat")
    direct = weights.load_weights(mat, cache=False)
    assert not beside(tmp_path / f"{fmt}.mat").exists()
    first = weights.load_weights(mat)  # reads the .mat, writes the cache
    second = weights.load_weights(mat)  # reads the cache
    assert beside(tmp_path / f"{fmt}.mat").is_file()
    assert_same_weights(direct, first)
    assert_same_weights(direct, second)
    assert second.format == fmt


def test_a_second_load_reads_the_cache_not_the_mat(mat_copy, monkeypatch):
    expected = weights.load_weights(mat_copy)
    forbid_mat_reads(monkeypatch)
    assert_same_weights(expected, weights.load_weights(mat_copy))


def test_the_cache_holds_only_the_conv_layers(mat_copy):
    weights.load_weights(mat_copy)
    conv_bytes = sum(
        4 * (np.prod(layer.kernel_shape) + layer.kernel_shape[3]) for layer in CONV_LAYERS
    )
    size = beside(mat_copy).stat().st_size
    assert conv_bytes <= size <= conv_bytes + 128  # the data plus a .npy header
    assert np.load(beside(mat_copy), mmap_mode="r").shape == (cache.FLOATS,)
    assert conv_bytes == 4 * 20_024_384  # VGG-19's conv parameters as float32: "about 80 MB"


def test_a_changed_mat_invalidates_the_cache(mat_copy, caplog):
    weights.load_weights(mat_copy)
    write_vgg19_mat(mat_copy, "new", seed=42)  # same size, new content and mtime
    fresh = weights.load_weights(mat_copy, cache=False)
    with caplog.at_level(logging.INFO, logger="nst_utils.weights.cache"):
        assert_same_weights(fresh, weights.load_weights(mat_copy))
    assert [r.levelname for r in caplog.records] == ["INFO"] and "stale" in caplog.text
    stamp = cache.source_stamp(mat_copy)
    assert_same_weights(fresh, cache.read_cache(beside(mat_copy), stamp))  # rebuilt


def test_a_same_size_replacement_with_the_old_mtime_is_caught(mat_copy):
    weights.load_weights(mat_copy)
    before = mat_copy.stat()
    write_vgg19_mat(mat_copy, "new", seed=43)
    os.utime(mat_copy, ns=(before.st_atime_ns, before.st_mtime_ns))  # as `cp -p` would
    assert mat_copy.stat().st_size == before.st_size
    fresh = weights.load_weights(mat_copy, cache=False)
    assert_same_weights(fresh, weights.load_weights(mat_copy))


def test_the_stamp_ties_size_mtime_and_content(mat_copy):
    stamp = cache.source_stamp(mat_copy)
    assert stamp["size"] == mat_copy.stat().st_size
    assert stamp["mtime_ns"] == mat_copy.stat().st_mtime_ns
    data = bytearray(mat_copy.read_bytes())
    data[len(data) - 10] ^= 0xFF  # one byte in the last sampled block
    mat_copy.write_bytes(bytes(data))
    os.utime(mat_copy, ns=(stamp["mtime_ns"], stamp["mtime_ns"]))
    changed = cache.source_stamp(mat_copy)
    assert changed["size"] == stamp["size"] and changed["mtime_ns"] == stamp["mtime_ns"]
    assert changed["fingerprint"] != stamp["fingerprint"]


def flip_stamp_digit(path):
    """Turn one digit of the mean pixel in the stamp into another: still valid JSON."""
    stamp = cache.stamp_path(path)
    text = stamp.read_text()
    at = text.index('"mean_pixel": [') + len('"mean_pixel": [') + 1  # not a leading digit
    stamp.write_text(text[:at] + chr(ord(text[at]) ^ 0x01) + text[at + 1 :])


def flip_byte(at):
    def damage(path):
        data = bytearray(path.read_bytes())
        data[at(len(data))] ^= 0x01
        path.write_bytes(bytes(data))

    return damage


CORRUPTIONS = {
    "a flipped bit in the last layer": (flip_byte(lambda n: n - 5), "conv5_4 fails its checksum"),
    "a flipped bit in the first layer": (
        flip_byte(lambda n: n - 4 * 20_024_384 + 100),
        "conv1_1 fails its checksum",
    ),
    "a flipped bit in the .npy header's shape": (
        flip_byte(lambda n: n - 4 * 20_024_384 - 60),
        "not float32 \\(20024384,\\)|truncated",
    ),
    "a flipped digit in the stamp": (flip_stamp_digit, "stamp fails its checksum"),
    "a stamp that is not JSON": (
        lambda p: cache.stamp_path(p).write_text("{"),
        "stamp is not an nst weights cache stamp",
    ),
    "no stamp": (lambda p: cache.stamp_path(p).unlink(), "stamp is missing"),
    "no data": (lambda p: p.unlink(), "data file is missing"),
    "cut in half": (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "truncated"),
    "cut inside the header": (lambda p: p.write_bytes(p.read_bytes()[:100]), "truncated"),
    "extra bytes": (lambda p: p.write_bytes(p.read_bytes() + b"\0"), "truncated or padded"),
    "empty": (lambda p: p.write_bytes(b""), "not a .npy file"),
    "another file": (lambda p: p.write_text("not a cache"), "not a .npy file"),
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_a_corrupt_cache_is_detected_and_rebuilt(mat_copy, caplog, kind):
    damage, reason = CORRUPTIONS[kind]
    expected = weights.load_weights(mat_copy, cache=False)
    weights.load_weights(mat_copy)
    damage(beside(mat_copy))
    stamp = cache.source_stamp(mat_copy)
    with pytest.raises(cache.CacheInvalid, match=reason):
        cache.read_cache(beside(mat_copy), stamp)
    with caplog.at_level(logging.WARNING, logger="nst_utils.weights.cache"):
        assert_same_weights(expected, weights.load_weights(mat_copy))
    assert "ignoring the weights cache" in caplog.text and caplog.records[0].levelname == "WARNING"
    assert_same_weights(expected, cache.read_cache(beside(mat_copy), stamp))


def test_no_temporary_files_are_left(mat_copy):
    weights.load_weights(mat_copy)
    assert sorted(p.name for p in mat_copy.parent.iterdir()) == [
        mat_copy.name,
        beside(mat_copy).name,
        cache.stamp_path(beside(mat_copy)).name,
    ]


def test_a_build_killed_mid_write_leaves_no_lasting_temporary_file(mat_copy, monkeypatch):
    import fcntl
    import time

    # A build killed by SIGTERM or SIGKILL runs no clean-up: its temporary file, the cache's
    # size, stayed beside the weights for good. The grace for a build just started is an hour
    # here, so that "just now" holds however slowly a loaded machine runs this test.
    monkeypatch.setattr(cache, "ABANDONED_TEMP_SECONDS", 3600)
    old = time.time() - 7200
    killed = mat_copy.parent / f".{beside(mat_copy).name}.dead1234.tmp"
    killed.write_bytes(b"\0" * 4096)
    os.utime(killed, (old, old))
    fresh = mat_copy.parent / f".{beside(mat_copy).name}.busy5678.tmp"  # another build, now
    fresh.write_bytes(b"\0" * 4096)
    locked = mat_copy.parent / f".{beside(mat_copy).name}.slow9012.tmp"  # a slow live build
    locked.write_bytes(b"\0" * 4096)
    os.utime(locked, (old, old))
    with open(locked, "rb") as writer:
        fcntl.flock(writer, fcntl.LOCK_EX)
        weights.load_weights(mat_copy)
    assert beside(mat_copy).exists() and not killed.exists()
    assert fresh.exists() and locked.exists()
    # A load from a sound cache removes them too (the killed build was followed by another).
    os.utime(fresh, (old, old))
    weights.load_weights(mat_copy)
    assert not fresh.exists() and not locked.exists()


def test_a_first_load_gives_the_cache_s_mapping_as_later_loads_do(mat_copy):
    # Not the arrays read from the .mat: those would stay in anonymous memory for the run.
    expected = weights.load_weights(mat_copy, cache=False)
    loaded = weights.load_weights(mat_copy)
    assert_same_weights(expected, loaded)
    kernel = loaded.conv["conv1_1"][0]
    assert isinstance(kernel, np.memmap) and not kernel.flags.writeable
    assert Path(kernel.filename) == beside(mat_copy).resolve()
    assert loaded.source_md5 == hashlib.md5(mat_copy.read_bytes()).hexdigest()


@pytest.mark.slow
def test_apart_the_mat_is_read_by_a_child_process(mat_copy, monkeypatch):
    # What a run loads with (load_for_run): the .mat's 600 MB and scipy.io stay out of the run.
    expected = weights.load_weights(mat_copy, cache=False)
    forbid_mat_reads(monkeypatch)
    loaded = weights.load_weights(mat_copy, apart=True)
    assert_same_weights(expected, loaded)
    assert Path(loaded.conv["conv5_4"][1].filename) == beside(mat_copy).resolve()
    assert loaded.source_md5 == hashlib.md5(mat_copy.read_bytes()).hexdigest()
    assert_same_weights(expected, cache.read_cache(beside(mat_copy), cache.source_stamp(mat_copy)))
    assert sorted(p.name for p in mat_copy.parent.iterdir()) == sorted(
        [mat_copy.name] + [p.name for p in cache_files(beside(mat_copy))]
    )


@pytest.mark.slow
def test_a_child_that_cannot_read_the_mat_leaves_the_error_to_this_process(tmp_path):
    from nst_utils.errors import WeightsError

    bad = tmp_path / "imagenet-vgg-verydeep-19.mat"
    bad.write_bytes(b"MATLAB 5.0 MAT-file" + bytes(200))  # a header, then nothing usable
    with pytest.raises(WeightsError) as apart:
        weights.load_weights(bad, apart=True)
    with pytest.raises(WeightsError) as direct:
        weights.load_weights(bad, cache=False)
    assert str(apart.value) == str(direct.value)
    assert not beside(bad).exists()


def test_cache_false_writes_nothing(mat_copy, private_user_cache):
    weights.load_weights(mat_copy, cache=False)
    assert not beside(mat_copy).exists() and not private_user_cache.exists()


def test_an_explicit_cache_dir(mat_copy, tmp_path, monkeypatch):
    folder = tmp_path / "elsewhere" / "cache"
    expected = weights.load_weights(mat_copy, cache_dir=folder)
    assert not beside(mat_copy).exists()
    written = cache.cache_locations(mat_copy, folder)[0]
    assert sorted(folder.iterdir()) == cache_files(written)
    assert written.name.startswith(mat_copy.name) and written.suffix == cache.CACHE_SUFFIX
    forbid_mat_reads(monkeypatch)
    assert_same_weights(expected, weights.load_weights(mat_copy, cache_dir=folder))


def refuse_writes_in(monkeypatch, *folders):
    """Make the cache writer fail in these folders as read-only ones would (tests run as root)."""
    real = cache.write_cache

    def write(w, stamp, cache_path):
        if cache_path.parent in folders:
            raise PermissionError(13, "Permission denied", str(cache_path.parent))
        return real(w, stamp, cache_path)

    monkeypatch.setattr(cache, "write_cache", write)


def test_a_read_only_weights_folder_uses_the_user_cache(mat_copy, private_user_cache, monkeypatch):
    refuse_writes_in(monkeypatch, mat_copy.parent)
    expected = weights.load_weights(mat_copy)
    assert not beside(mat_copy).exists()
    assert sorted(private_user_cache.iterdir()) == cache_files(cache.cache_locations(mat_copy)[1])
    forbid_mat_reads(monkeypatch)
    assert_same_weights(expected, weights.load_weights(mat_copy))


def test_no_writable_folder_at_all_still_loads(mat_copy, private_user_cache, monkeypatch, caplog):
    refuse_writes_in(monkeypatch, mat_copy.parent, private_user_cache)
    with caplog.at_level(logging.WARNING, logger="nst_utils.weights.cache"):
        loaded = weights.load_weights(mat_copy)
    assert_same_weights(weights.load_weights(mat_copy, cache=False), loaded)
    assert "could not write a weights cache" in caplog.text and "Permission denied" in caplog.text


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_truly_read_only_folder(mat_copy, private_user_cache):
    mat_copy.parent.chmod(0o555)
    try:
        weights.load_weights(mat_copy)
        assert not beside(mat_copy).exists() and len(list(private_user_cache.iterdir())) == 2
    finally:
        mat_copy.parent.chmod(0o755)


def test_an_explicit_cache_dir_that_cannot_exist_still_loads(mat_copy, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    loaded = weights.load_weights(mat_copy, cache_dir=blocker / "cache")
    assert_same_weights(weights.load_weights(mat_copy, cache=False), loaded)


def test_cache_status_lines(mat_copy):
    assert cache.cache_status(mat_copy).startswith("none yet")
    weights.load_weights(mat_copy)
    assert cache.cache_status(mat_copy) == f"fresh at {beside(mat_copy)}"
    flip_byte(lambda n: n - 1)(beside(mat_copy))
    assert "fails its checksum" in cache.cache_status(mat_copy)


def test_user_cache_dir_and_config_settings(tmp_path):
    assert user_cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "nst"
    assert user_cache_dir({}).parts[-2:] == (".cache", "nst")
    config = Settings.from_env({"NST_WEIGHTS_CACHE_DIR": str(tmp_path), "NST_WEIGHTS_CACHE": "0"})
    assert config.weights_cache_dir == tmp_path and config.weights_cache is False
    assert Settings().weights_cache is True and Settings().weights_cache_dir is None


def test_load_vgg_model_uses_the_configured_cache_folder(sess, small_config, tmp_path, monkeypatch):
    from nst_utils.vgg import load_vgg_model

    folder = tmp_path / "model-cache"
    config = small_config.replace(
        vgg_model=shutil.copy(small_config.vgg_model, tmp_path / "w.mat"), weights_cache_dir=folder
    )
    load_vgg_model(config=config)
    assert len(list(folder.iterdir())) == 2  # the data and its stamp


def test_the_cache_remembers_the_source_md5_so_runs_need_not_rehash(
    tmp_path, vgg_mat_bytes, monkeypatch
):
    import hashlib

    mat = tmp_path / "v.mat"
    mat.write_bytes(vgg_mat_bytes)
    expected = hashlib.md5(vgg_mat_bytes).hexdigest()
    assert weights.load_weights(mat).source_md5 == expected
    calls = []
    real = load.file_md5
    counting = lambda *a, **k: calls.append(a) or real(*a, **k)  # noqa: E731
    monkeypatch.setattr(load, "file_md5", counting)
    assert weights.load_weights(mat).source_md5 == expected
    assert load.load_for_run(mat).md5 == expected
    assert calls == []  # neither the cache hit nor the run hashed the file again


def spy_reads(monkeypatch):
    """Record the cache files read_cache opens, in order."""
    opened, real = [], cache.read_cache

    def read(location, stamp):
        opened.append(location)
        return real(location, stamp)

    monkeypatch.setattr(cache, "read_cache", read)
    return opened


def fallback_cache_only(mat_copy, private_user_cache, monkeypatch):
    """A sound cache in the user cache folder only, as left by a load while the weights' folder
    was read-only; returns the weights and the fallback's path."""
    with monkeypatch.context() as scoped:
        refuse_writes_in(scoped, mat_copy.parent)
        expected = weights.load_weights(mat_copy)
    fallback = cache.cache_locations(mat_copy)[1]
    assert fallback.is_file() and not beside(mat_copy).exists()
    return expected, fallback


@pytest.mark.parametrize("kind", ["another file", "a flipped bit in the last layer", "stale"])
def test_an_unsound_cache_before_a_sound_fallback_is_rebuilt_once(
    mat_copy, private_user_cache, monkeypatch, caplog, kind
):
    expected, fallback = fallback_cache_only(mat_copy, private_user_cache, monkeypatch)
    if kind == "stale":  # a sound cache of other weights, as after the .mat was replaced
        other = write_vgg19_mat(mat_copy.parent / "other.mat", "new", seed=9)
        cache.write_cache(
            weights.load_weights(other, cache=False), cache.source_stamp(other), beside(mat_copy)
        )
    else:
        copy_cache(fallback, beside(mat_copy))
        CORRUPTIONS[kind][0](beside(mat_copy))
    forbid_mat_reads(monkeypatch)
    with caplog.at_level(logging.INFO, logger="nst_utils.weights.cache"):
        assert_same_weights(expected, weights.load_weights(mat_copy))
    assert len(caplog.records) == 1
    assert f"rebuilt it from the sound cache {fallback}" in caplog.text
    stamp = cache.source_stamp(mat_copy)
    assert_same_weights(expected, cache.read_cache(beside(mat_copy), stamp))
    caplog.clear()
    opened = spy_reads(monkeypatch)
    with caplog.at_level(logging.INFO, logger="nst_utils.weights.cache"):
        for _ in range(2):
            assert_same_weights(expected, weights.load_weights(mat_copy))
    assert caplog.records == [] and opened == [beside(mat_copy)] * 2  # used, not skipped


def test_an_unsound_cache_that_cannot_be_rebuilt_says_so(
    mat_copy, private_user_cache, monkeypatch, caplog
):
    expected, fallback = fallback_cache_only(mat_copy, private_user_cache, monkeypatch)
    beside(mat_copy).write_text("not a cache")
    refuse_writes_in(monkeypatch, mat_copy.parent)
    forbid_mat_reads(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="nst_utils.weights.cache"):
        assert_same_weights(expected, weights.load_weights(mat_copy))
    assert "rebuilt it" not in caplog.text and "rebuilding" not in caplog.text
    assert (
        f"it cannot be rebuilt (Permission denied), so {fallback} is used instead; remove "
        f"{beside(mat_copy)} or make its folder writable"
    ) in caplog.text


def test_an_unsound_cache_in_a_read_only_folder_without_fallback(
    mat_copy, private_user_cache, monkeypatch, caplog
):
    expected = weights.load_weights(mat_copy, cache=False)
    beside(mat_copy).write_text("not a cache")
    refuse_writes_in(monkeypatch, mat_copy.parent)
    with caplog.at_level(logging.WARNING, logger="nst_utils.weights.cache"):
        assert_same_weights(expected, weights.load_weights(mat_copy))
    fallback = cache.cache_locations(mat_copy)[1]
    assert f"read {mat_copy} instead and cached it at {fallback}" in caplog.text
    assert "rebuilt it" not in caplog.text and fallback.is_file()


def _resident_kb(path) -> int:
    """Resident kB of this process's mappings of `path`, from /proc/self/smaps."""
    total, inside = 0, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5:  # a mapping's header line
                inside = len(fields) >= 6 and fields[-1] == str(path)
            elif inside and fields[0] == "Rss:":
                total += int(fields[1])
    return total


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="needs Linux's /proc")
def test_the_painting_core_gives_the_cache_pages_back_and_keeps_the_values(mat_copy, rng):
    from nst_utils.settings import DEFAULTS
    from nst_utils.stylize import Painter

    weights.load_weights(mat_copy)  # writes the cache
    cached = weights.load_weights(mat_copy)
    expected = {name: (k.copy(), b.copy()) for name, (k, b) in cached.conv.items()}
    assert _resident_kb(beside(mat_copy)) > 0  # touched by the checksums
    content, style, start = (rng.normal(0, 40, (1, 24, 32, 3)).astype(np.float32) for _ in range(3))
    settings = DEFAULTS.replace(image_width=32, image_height=24, seed=0)
    with Painter(settings, cached, content, [style]) as painter:
        assert _resident_kb(beside(mat_copy)) == 0
        painter.start(start)
        image, *costs = painter.step()  # the weights are read back from the file as needed
        assert np.isfinite(image).all() and np.isfinite(costs).all()
    for name, (kernel, bias) in cached.conv.items():
        np.testing.assert_array_equal(kernel, expected[name][0])
        np.testing.assert_array_equal(bias, expected[name][1])
