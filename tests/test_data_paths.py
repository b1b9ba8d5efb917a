"""Paths and names as users' data brings them: spaces, non-ASCII, a trailing slash, `~`,
`..`, Windows-style paths written on Linux, and class folders whose names differ only by
Unicode normalisation (macOS writes NFD) or by case."""

import os
import unicodedata

import numpy as np
import pytest
from PIL import Image

from hubensemble.data import load_task, load_test_set
from hubensemble.data.specs import check_spec
from hubensemble.dataargs import DataArgs
from hubensemble.errors import DataError

NFC, NFD = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")


def _images(folder, classes, n=4):
    rng = np.random.default_rng(len(str(folder)))
    for c in classes:
        os.makedirs(os.path.join(folder, c), exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), np.uint8)).save(
                os.path.join(folder, c, f"{i}.png"))
    return folder


def test_paths_with_spaces_non_ascii_a_trailing_slash_tilde_and_dotdot_load_one_task(
        tmp_path, monkeypatch):
    data = _images(tmp_path / "Fotos" / "Größe 写真 🐱", ["a b", "猫", NFD])
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path / "Fotos")
    specs = [f"folder:{data}", f"folder:{data}/", "folder:~/Fotos/Größe 写真 🐱",
             "folder:../Fotos/Größe 写真 🐱/"]
    tasks = [load_task(s, progress=False) for s in specs]
    assert {t.fingerprint for t in tasks} == {tasks[0].fingerprint}
    assert {t.spec for t in tasks} == {f"folder:{data}"}  # one spelling recorded
    assert tasks[0].class_names == sorted(["a b", "猫", NFD])  # as the folders spell them
    # The source (the summary's "from …", run.json's and robustness.json's task.source)
    # names the folder absolute whichever way it is written, for fit's data and evaluate's
    # test set alike, as the spec does: it said "folder:../Fotos/…/" as typed (and evaluate's
    # test set "folder:~/Fotos/…", where fit's said the home folder).
    assert {t.source.partition(" (")[0] for t in tasks} == {f"folder:{data}"}
    test_sets = [load_test_set(s) for s in specs]
    assert {t.source for t in test_sets} == {
        f"folder:{data} (class folders; every image is a test example)"}
    assert {t.spec for t in test_sets} == {f"folder:{data}"}
    np.savez(data / "d.npz", x_train=np.zeros((4, 8, 8, 3), np.uint8) + np.arange(4)[:, None,
             None, None] * 60, y_train=np.array([0, 0, 1, 1]))
    arrays = [load_task(s, val_fraction=0) for s in (
        f"npz:{data}/d.npz", "npz:~/Fotos/Größe 写真 🐱/d.npz", "npz:Größe 写真 🐱/d.npz")]
    assert {t.source.partition(" (")[0] for t in arrays} == {f"npz:{data / 'd.npz'}"}


def test_a_windows_path_written_on_linux_is_refused_with_the_path_to_write(
        tmp_path, monkeypatch):
    """`folder:C:\\Users\\me\\imgs` and `folder:..\\imgs` said only "no such folder; check
    the path": on Linux a backslash is part of a name, and there are no drive letters."""
    _images(tmp_path / "imgs", ["a", "b"])
    monkeypatch.chdir(tmp_path)
    for spec, posix in (("folder:C:\\Users\\me\\imgs", "/mnt/c/Users/me/imgs"),
                        ("folder:C:/Users/me/imgs", "/mnt/c/Users/me/imgs"),
                        ("npz:D:\\data\\x.npz", "/mnt/d/data/x.npz"),
                        ("folder:.\\imgs", "./imgs")):
        drive = posix.startswith("/mnt/")
        for refuse in (lambda: check_spec(spec), lambda: DataArgs(spec=spec).load()):
            with pytest.raises(DataError) as e:  # hubensemble.fit(data=spec) made it CWD/C:\
                refuse()
            said = str(e.value)
            assert "written as a Windows path" in said and f"e.g. {posix}" in said, said
            assert ("there are no drive letters" in said) == drive, said
            assert str(tmp_path) not in said, said
    with pytest.raises(DataError) as e:
        check_spec("folder:nowhere")
    assert "Windows" not in str(e.value)
    assert load_task("folder:./imgs", progress=False).class_names == ["a", "b"]


def test_class_folders_that_differ_only_by_unicode_form_are_refused_naming_both(
        tmp_path):
    """A Mac's decomposed 'café' (NFD) beside a composed one were two classes that the
    summary, the report and the export's labels showed alike; a val/ folder so spelled (or
    differing from train/'s only by case) was "a class folder the train folder does not
    have". Refused before any image is decoded, naming both folders; one NFD folder alone is
    a class as named. Case alone is two classes, as in every source (A/ and a/ of letters)."""
    data = _images(tmp_path / "norm", [NFC, NFD, "b"])
    for load in (lambda: check_spec(f"folder:{data}"),
                 lambda: load_task(f"folder:{data}", progress=False),
                 lambda: load_test_set(f"folder:{data}")):
        with pytest.raises(DataError) as e:
            load()
        said = str(e.value)
        assert "two Unicode forms" in said and said.count(f"{data}{os.sep}") == 2, said
    letters = _images(tmp_path / "case", ["A", "a", "b"])
    assert load_task(f"folder:{letters}", progress=False).class_names == ["A", "a", "b"]
    cased = tmp_path / "cased"
    _images(cased / "train", ["A", "a", "b"])
    _images(cased / "val", ["A", "a", "b"], n=2)  # train/'s own spellings: no refusal
    check_spec(f"folder:{cased}")
    _images(cased / "test", ["B"], n=2)  # train/ has b/, not B/
    with pytest.raises(DataError, match=r"\('b'\) and .*\('B'\) differ only by case.*rename"):
        check_spec(f"folder:{cased}")
    split = tmp_path / "split"
    _images(split / "train", [NFC, "b"])
    _images(split / "val", [NFD, "b"], n=2)
    with pytest.raises(DataError) as e:
        check_spec(f"folder:{split}")
    said = str(e.value)
    assert (str(split / "train" / NFC) in said and str(split / "val" / NFD) in said
            and ascii(NFC) in said and "two Unicode forms" in said), said
    alone = _images(tmp_path / "alone", [NFD, "b"])
    assert load_task(f"folder:{alone}", progress=False).class_names == ["b", NFD]
    # Any source: class names that are one text in two forms are refused; case is not (an
    # npz of letters has 'A' and 'a').
    x = np.random.default_rng(0).integers(0, 256, (8, 4, 4, 3), np.uint8)
    y = np.arange(8) % 2
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, class_names=np.array([NFC, NFD]))
    with pytest.raises(DataError, match="two Unicode forms"):
        load_task(f"npz:{tmp_path / 'd.npz'}", progress=False)
    from hubensemble.data.names import check_class_names

    with pytest.raises(DataError, match=r"^names\[2\] 'caf\\xe9' and names\[3\] "
                                        r"'cafe\\u0301' are the same text in two Unicode"):
        check_class_names(np.array(["x", "y", NFC, NFD]), what="names")
    np.savez(tmp_path / "e.npz", x_train=x, y_train=y,
             class_names=np.array(["A", "a"]))
    assert load_task(f"npz:{tmp_path / 'e.npz'}", progress=False).class_names == ["A", "a"]


def test_a_val_class_folder_without_a_train_folder_is_refused_before_decoding(tmp_path):
    """val/zebra/ without train/zebra/ was refused after every train/ image was decoded
    (check_spec, which reads listings only, passed it)."""
    _images(tmp_path / "d" / "train", ["a", "b"])
    _images(tmp_path / "d" / "val", ["a", "zebra"], n=2)
    with pytest.raises(DataError, match=r"val has a class folder 'zebra' that the "
                                        r"train folder does not have; .*add train/zebra/"):
        check_spec(f"folder:{tmp_path / 'd'}")


def test_class_folder_names_are_read_as_utf8_whatever_the_locale(tmp_path):
    """A new-user check: under a C locale with PYTHONUTF8=0 (a container started so, a cron
    job) Python reads the file name 'café' as 'caf\\udcc3\\udca9', and folder:DATA with a
    class folder café/ was refused: "has a name that holds a lone surrogate (\\xc3), which is
    not text UTF-8 can hold …: rename the folder", though it is UTF-8 (a Latin-1 locale
    would read 'cafÃ©' and serve that label). A class folder's name is its bytes read as
    UTF-8 (`folder.label`; the task's name too: 'fl\\xe4t', not 'fl\\udcc3\\udca4t'): the same
    class names, split and fingerprint in every locale,
    its files still read by the path the system gives; train/ val/ layouts and the
    checks before decoding too."""
    import subprocess
    import sys

    flat = _images(tmp_path / "fl\u00e4t", [NFC, "na\u00efve", "plain"], n=6)
    split = tmp_path / "split"
    _images(split / "train", [NFC, "plain"], n=6)
    _images(split / "val", [NFC, "plain"], n=2)
    code = ("import sys\nfrom hubensemble.data import load_task\nfrom hubensemble.data.specs "
            "import check_spec\nfor spec in sys.argv[1:]:\n    check_spec(spec)\n"
            "    t = load_task(spec, progress=False)\n"
            "    print(ascii(t.class_names), t.fingerprint, ascii(sorted(t.class_files['train'])),"
            " len(t.val), ascii(t.name))\nprint(sys.getfilesystemencoding())")
    specs = [f"folder:{flat}", f"folder:{split}"]
    out = subprocess.run([sys.executable, "-c", code, *specs], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONUTF8="0", LC_ALL="C"), timeout=600)
    assert out.returncode == 0, out.stderr
    here = []
    for spec in specs:
        t = load_task(spec, progress=False)
        here.append(f"{ascii(t.class_names)} {t.fingerprint} "
                    f"{ascii(sorted(t.class_files['train']))} {len(t.val)} {ascii(t.name)}")
    assert out.stdout.splitlines() == [*here, "ascii"], out.stdout
    assert "'caf\\xe9', 'na\\xefve', 'plain'" in here[0] and here[0].endswith("'fl\\xe4t'")


def test_a_relative_path_that_names_nothing_is_refused_naming_the_working_folder(
        tmp_path, monkeypatch):
    """A new user's `hubensemble report --run runs/sign` from another folder said only
    "runs/sign does not exist", where `--data folder:photos` named the working folder: every
    refusal of a relative run, export, shard or image path that names nothing now names it
    too (text.relative_hint); an absolute one is named as it is."""
    from hubensemble.errors import RunError
    from hubensemble.formats import check_saved_model_folder
    from hubensemble.prediction import _reason
    from hubensemble.rank.merge import check_shards
    from hubensemble.rundir import Run

    monkeypatch.chdir(tmp_path)
    where = f"(relative paths are relative to {tmp_path})"
    calls = {"run": lambda p: Run(p).require_started(),
             "export": check_saved_model_folder,
             "shard": lambda p: check_shards([p])}
    for what, call in calls.items():
        with pytest.raises(RunError) as err:
            call("runs/nothing")
        assert f"runs/nothing does not exist {where}" in str(err.value), what
        with pytest.raises(RunError) as err:
            call(str(tmp_path / "nothing"))
        assert "relative paths" not in str(err.value), what
    missing = FileNotFoundError(2, "No such file or directory")
    assert _reason("img.png", missing) == f"cannot read it: No such file or directory {where}"
    assert "relative paths" not in _reason(str(tmp_path / "img.png"), missing)
    with pytest.raises(DataError, match=r"folder:photos: no such folder; check the path \("
                       + "relative paths are relative to"):
        load_task("folder:photos")
