"""The decoded-image cache of folder: data (data/decodecache.py): a later load decodes nothing."""

import logging
import os
import time

import numpy as np
import pytest
from PIL import Image

from hubensemble.data import decodecache, load_task
from hubensemble.dataargs import DataArgs

CLASSES, PER_CLASS, SIDE = 3, 8, 8


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A cache folder of the test's own (never the user's ~/.cache)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(decodecache.VARIABLE, str(folder))
    return folder


@pytest.fixture
def decodes(monkeypatch):
    """The files decode_bytes decoded through the cache, in order (the real decoder runs)."""
    seen = []
    real = decodecache.decode_bytes

    def counted(data, **kw):
        seen.append(kw.get("name"))
        return real(data, **kw)

    monkeypatch.setattr(decodecache, "decode_bytes", counted)
    return seen


def _folder(root, seed=0):
    """CLASSES class folders of PER_CLASS random PNGs (SIDE px) and one JPEG each."""
    rng = np.random.default_rng(seed)
    for c in range(CLASSES):
        d = root / f"c{c}"
        d.mkdir(parents=True)
        for i in range(PER_CLASS):
            pixels = rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(d / f"{i:02d}.png")
        Image.fromarray(rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)).save(
            d / "photo.jpg", quality=90)
    return root


def _same(a, b):
    for name in ("train", "val", "test"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None)
        if x is not None:
            assert np.asarray(x.images).dtype == np.asarray(y.images).dtype == np.uint8
            np.testing.assert_array_equal(np.asarray(x.images), np.asarray(y.images))
            np.testing.assert_array_equal(x.labels, y.labels)
            assert list(x.paths) == list(y.paths)
    assert a.fingerprint == b.fingerprint


def test_second_load_decodes_nothing_and_gives_the_same_arrays(tmp_path, cache_dir, decodes):
    root = _folder(tmp_path / "data")
    first = load_task(f"folder:{root}", progress=False)
    files = CLASSES * (PER_CLASS + 1)
    assert len(decodes) == files
    assert [p.suffix for p in cache_dir.iterdir()] == [".npz"]
    decodes.clear()
    # a later command on the run: DataArgs.load, as rundir.Run.task loads the run's data
    again = DataArgs(spec=f"folder:{root}").load()
    assert decodes == []
    _same(first, again)
    assert again.files == first.files == files


def test_changed_bytes_of_same_size_and_mtime_are_a_miss(tmp_path, cache_dir, decodes):
    root = _folder(tmp_path / "data")
    target = root / "c1" / "extra.bmp"  # uncompressed: other pixels, the very same size
    rng = np.random.default_rng(7)
    Image.fromarray(rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)).save(target)
    first = load_task(f"folder:{root}", progress=False)
    stat = target.stat()
    other = rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
    Image.fromarray(other).save(target)
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    now = target.stat()
    assert (now.st_mtime_ns, now.st_size) == (stat.st_mtime_ns, stat.st_size)
    decodes.clear()
    again = load_task(f"folder:{root}", progress=False)
    assert decodes == [str(target)]
    split, where = next((s, list(getattr(again, s).paths).index(str(target)))
                        for s in ("train", "val", "test")
                        if str(target) in list(getattr(again, s).paths))
    np.testing.assert_array_equal(np.asarray(getattr(again, split).images[where]), other)
    assert again.fingerprint != first.fingerprint


def test_damaged_cache_is_moved_aside_and_decoded_again(tmp_path, cache_dir, decodes, caplog):
    root = _folder(tmp_path / "data")
    first = load_task(f"folder:{root}", progress=False)
    (cache,) = cache_dir.iterdir()
    cache.write_bytes(cache.read_bytes()[:100])  # cut short, as by a full disk
    decodes.clear()
    with caplog.at_level(logging.WARNING, logger="hubensemble.data.decodecache"):
        again = load_task(f"folder:{root}", progress=False)
    assert len(decodes) == CLASSES * (PER_CLASS + 1)
    assert "is damaged" in caplog.text and "decoded again" in caplog.text
    assert (cache_dir / (cache.name + ".damaged")).exists()
    _same(first, again)
    decodes.clear()
    load_task(f"folder:{root}", progress=False)  # rewritten whole: read again
    assert decodes == []


def test_other_decode_code_is_a_miss(tmp_path, cache_dir, decodes, monkeypatch):
    root = _folder(tmp_path / "data")
    load_task(f"folder:{root}", progress=False)
    monkeypatch.setattr(decodecache, "code_version", lambda: "another decode path")
    decodes.clear()
    load_task(f"folder:{root}", progress=False)
    assert len(decodes) == CLASSES * (PER_CLASS + 1)


def test_refused_file_is_cached_with_its_reason(tmp_path, cache_dir, decodes):
    root = _folder(tmp_path / "data")
    (root / "c0" / "cut.png").write_bytes((root / "c0" / "00.png").read_bytes()[:40])
    first = load_task(f"folder:{root}", progress=False)
    decodes.clear()
    again = load_task(f"folder:{root}", progress=False)
    assert decodes == []
    assert again.skipped == first.skipped and len(first.skipped) == 1


def test_off_reads_and_writes_nothing(tmp_path, monkeypatch, decodes):
    monkeypatch.setenv(decodecache.VARIABLE, "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = _folder(tmp_path / "data")
    load_task(f"folder:{root}", progress=False)
    load_task(f"folder:{root}", progress=False)
    assert len(decodes) == 2 * CLASSES * (PER_CLASS + 1)
    assert not (tmp_path / "xdg").exists()


def test_prune_removes_old_then_least_recently_used_files_never_the_one_written(tmp_path):
    root = tmp_path / "cache"
    root.mkdir()
    now = time.time()
    ages = {"old.npz": 40, "lru.npz": 3, "recent.npz": 1, "gone.npz.damaged": 2,
            "keep.npz": 50}
    for name, days in ages.items():
        (root / name).write_bytes(b"x" * 100)
        os.utime(root / name, (now - days * 86400, now - days * 86400))
    (root / "notes.txt").write_text("not ours")
    removed = decodecache.prune(str(root), keep=str(root / "keep.npz"), max_bytes=250,
                                max_age_days=30)
    assert sorted(os.path.basename(p) for p in removed) == ["gone.npz.damaged", "lru.npz",
                                                            "old.npz"]
    assert sorted(p.name for p in root.iterdir()) == ["keep.npz", "notes.txt", "recent.npz"]


def test_a_hit_touches_its_file(tmp_path, cache_dir):
    root = _folder(tmp_path / "data")
    load_task(f"folder:{root}", progress=False)
    (cache,) = cache_dir.iterdir()
    past = time.time() - 10 * 86400
    os.utime(cache, (past, past))
    load_task(f"folder:{root}", progress=False)
    assert cache.stat().st_mtime > past + 86400


def test_the_cache_variable_is_a_hubensemble_setting():
    # Fails before: "$HUBENSEMBLE_DECODE_CACHE is set but is not a hubensemble setting
    # (ignored); did you mean $HUBENSEMBLE_COST_CACHE?" on every command that set it.
    from hubensemble.environment import unknown_settings

    for value in ("/tmp/decoded", decodecache.OFF):
        assert unknown_settings({decodecache.VARIABLE: value}) == []


def test_a_cache_file_of_other_bytes_is_said_no_cache_file(tmp_path, cache_dir, decodes,
                                                           caplog):
    # Fails before: "(ValueError: This file contains pickled (object) data. If you trust the
    # file you can load it unsafely using the `allow_pickle=` keyword argument …)" (492).
    root = _folder(tmp_path / "data")
    first = load_task(f"folder:{root}", progress=False)
    (cache,) = cache_dir.iterdir()
    cache.write_text("garbage")
    with caplog.at_level(logging.WARNING, logger="hubensemble.data.decodecache"):
        again = load_task(f"folder:{root}", progress=False)
    assert "not a decoded-image cache file (no .npz zip header)" in caplog.text, caplog.text
    assert "allow_pickle" not in caplog.text
    assert (cache_dir / (cache.name + ".damaged")).exists()
    _same(first, again)


def _unwritable_said(caplog):
    return [r.getMessage() for r in caplog.records
            if "decoded-image cache" in r.getMessage() and "cannot be written" in r.getMessage()]


def test_a_cache_variable_naming_a_file_is_said_not_a_folder_once(
        tmp_path, monkeypatch, decodes, caplog):
    """A new-user check (490): HUBENSEMBLE_DECODE_CACHE naming a file said "cannot be written
    (File exists)", at every load; now "a file, not a folder", once per process."""
    from hubensemble import environment

    monkeypatch.setattr(environment, "_UNWRITABLE", set())
    afile = tmp_path / "cache.txt"
    afile.write_text("mine")
    monkeypatch.setenv(decodecache.VARIABLE, str(afile))
    root = _folder(tmp_path / "data")
    with caplog.at_level(logging.WARNING):
        load_task(f"folder:{root}", progress=False)
        load_task(f"folder:{root}", progress=False)
    said = _unwritable_said(caplog)
    assert len(said) == 1, said
    assert f"it is a file, not a folder: {afile}" in said[0], said
    assert f"set {decodecache.VARIABLE}=off" in said[0] and "File exists" not in said[0], said
    assert "still read" not in said[0], said  # a file holds no entries
    assert afile.read_text() == "mine"  # the user's file untouched


def test_an_unwritable_cache_folder_is_said_once_per_process(
        tmp_path, monkeypatch, decodes, caplog):
    """A new-user check (490): a read-only cache folder warned at every load of a command."""
    from hubensemble import environment

    if os.geteuid() == 0:
        pytest.skip("root writes a read-only folder")
    monkeypatch.setattr(environment, "_UNWRITABLE", set())
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    monkeypatch.setenv(decodecache.VARIABLE, str(folder))
    root = _folder(tmp_path / "data")
    try:
        with caplog.at_level(logging.WARNING):
            for _ in range(3):
                load_task(f"folder:{root}", progress=False)
    finally:
        folder.chmod(0o700)
    said = _unwritable_said(caplog)
    assert len(said) == 1 and str(folder) in said[0], said
    assert "each load decodes the images again" in said[0], said


@pytest.mark.parametrize("value", ["OFF", " Off "])
def test_off_in_any_case_turns_the_cache_off(tmp_path, monkeypatch, value):
    """The docs say `off`; OFF and Off are the same (docs/data.md says so)."""
    monkeypatch.setenv(decodecache.VARIABLE, value)
    assert decodecache.cache_path(str(tmp_path)) is None


def test_a_relative_cache_variable_is_taken_under_the_working_folder_and_said(
        tmp_path, monkeypatch, decodes, caplog):
    """A new-user check (492): HUBENSEMBLE_DECODE_CACHE=cache silently made ./cache in the
    working folder; it is the rule of every folder variable: taken there, and said once."""
    from hubensemble import environment

    monkeypatch.setattr(environment, "_SAID_RELATIVE", set())
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv(decodecache.VARIABLE, "cache")
    root = _folder(tmp_path / "data")
    with caplog.at_level(logging.WARNING):
        load_task(f"folder:{root}", progress=False)
        load_task(f"folder:{root}", progress=False)
    said = [r.getMessage() for r in caplog.records if "relative path" in r.getMessage()]
    assert len(said) == 1, said
    assert f"{decodecache.VARIABLE}=cache is a relative path: taken as {work / 'cache'}" \
        in said[0], said
    assert decodecache.cache_path(str(root)).startswith(str(work / "cache") + os.sep)
    assert len(decodes) == CLASSES * (PER_CLASS + 1)  # the second load hit
