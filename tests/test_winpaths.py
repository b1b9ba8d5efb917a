"""Paths written as Windows writes them, typed on Linux or macOS: every path flag and argument
of the command line, the stage functions' path keywords, the environment variables that name
folders and the data specs refuse them, naming what they were given as and what to write
(`hubensemble.winpaths`); a name that really holds a backslash and exists is taken as typed,
and on Windows (separator "\\") nothing is said."""

import os

import pytest

from hubensemble import winpaths
from hubensemble.options import OptionError

posix_only = pytest.mark.skipif(os.sep == "\\", reason="on Windows these are its own paths")


def test_the_policy_names_each_windows_form_and_what_to_write():
    cases = {  # text: (kind, the path to write here on Linux)
        "C:\\models\\m": ("drive", "/mnt/c/models/m"),
        "d:/e": ("drive", "/mnt/d/e"),
        "C:\\": ("drive", "/mnt/c"),
        "runs\\w": ("backslash", "runs/w"),
        "..\\imgs\\": ("backslash", "../imgs/"),
        "\\\\server\\share\\imgs": ("unc", "/mnt/share/imgs"),
        "\\\\server/share/imgs": ("unc", "/mnt/share/imgs"),
        "\\\\?\\UNC\\srv\\sh\\x": ("unc", "/mnt/sh/x"),
        "\\\\?\\C:\\x": ("drive", "/mnt/c/x"),
    }
    for text, (kind, posix) in cases.items():
        form = winpaths.windows_form(text, sep="/", platform="linux")
        assert (form.kind, form.posix) == (kind, posix), text
    # POSIX paths, and forms Linux reads as its own: //server/share is /server/share there.
    for text in ("runs/w", "/tmp/x", "~/x", "//server/share/imgs", "C:", "C:foo", "a:b/c",
                 "https://tfhub.dev/google/bit/m-r50x1/1", "keras:ResNet50V2", "", None, 3):
        assert winpaths.windows_form(text, sep="/") is None, text
    # On Windows these are its own paths: nothing to say.
    for text in cases:
        assert winpaths.windows_form(text, sep="\\") is None
        assert winpaths.refusal_advice(text, sep="\\") == ""


def test_a_unc_share_is_advised_as_a_mount_point_not_as_slashes():
    """`folder:\\\\server\\share\\imgs` was advised as `//server/share/imgs`, which Linux reads
    as /server/share/imgs: no mount either. The advice says it is a network share and how to
    reach it from this machine: its mount point (Linux: mount -t cifs; macOS: /Volumes)."""
    text = "\\\\fileserver\\photos\\2024"
    linux = winpaths.windows_form(text, sep="/", platform="linux").advice()
    assert "Windows network share" in linux and "e.g. /mnt/photos/2024" in linux, linux
    assert "mount -t cifs //fileserver/photos /mnt/photos" in linux, linux
    mac = winpaths.windows_form(text, sep="/", platform="darwin").advice()
    assert "e.g. /Volumes/photos/2024" in mac and "smb://fileserver/photos" in mac, mac
    assert "e.g. //" not in linux + mac


def test_a_name_that_exists_is_taken_as_typed(tmp_path, monkeypatch):
    """A backslash is a legal character of a POSIX name: a file or folder so named that is
    there (or a folder "C:") makes the text a path of this system."""
    monkeypatch.chdir(tmp_path)
    for text, made in (("odd\\name", "odd\\name"), ("other\\name/new", "other\\name"),
                       ("C:/x", "C:"), ("D:\\y", "D:\\y")):
        assert winpaths.windows_refusal(text, sep="/", exists=os.path.lexists) is not None
        os.mkdir(tmp_path / made)
        assert winpaths.windows_refusal(text, sep="/") is None, text
    assert "make it first" in winpaths.windows_form("a\\b", sep="/").advice()


# Every family of path arguments of the command line (options.PATH_METAVARS, catalogue add's
# HANDLE), and the table's path options (--data-dir, --cache-dir): (argv, the flag named).
_CLI = [
    (("rank", "--catalogue", "C:\\cat.yaml", "--data", "sklearn:digits", "--out", "r"),
     "--catalogue"),
    (("rank", "--catalogue", "c.yaml", "--data", "sklearn:digits", "--out", "runs\\w"),
     "--out"),
    (("rank", "--catalogue", "c.yaml", "--data", "tfds:beans", "--out", "r", "--data-dir",
      "D:\\tfds"), "--data-dir"),
    (("rank", "--catalogue", "c.yaml", "--data", "sklearn:digits", "--out", "r",
      "--cache-dir", "\\\\srv\\share\\emb"), "--cache-dir"),
    (("rank", "merge", "shards\\0", "s1", "--out", "m"), "RUN_SHARD"),
    (("tune", "--run", "C:/runs/r"), "--run"),
    (("export", "--run", "r", "--out", "D:\\e"), "--out"),
    (("fit", "--catalogue", "c.yaml", "--data", "sklearn:digits", "--out", "r", "--export",
      "D:\\e"), "--export"),
    (("predict", "--model", "C:\\models\\m", "a.png"), "--model"),
    (("predict", "--model", "m", "photos\\cat.jpg"), "IMAGE"),
    (("evaluate", "--model", "m", "--out", "C:\\results.json"), "--out"),
    (("catalogue", "add", "C:\\models\\m", "--to", "c.yaml"), "HANDLE"),
    (("catalogue", "add", "keras:ResNet50V2", "--to", "cats\\mine.yaml"), "--to"),
    (("catalogue", "add", "keras:ResNet50V2", "--to", "c.yaml", "--weights", "C:\\w.h5"),
     "--weights"),
    (("catalogue", "validate", "C:\\cat.yaml"), "FILE"),
    (("zoo", "build", "--out", "D:\\zoo"), "--out"),
    (("demo", "--out", "runs\\demo"), "--out"),
]


@posix_only
@pytest.mark.parametrize("argv, flag", _CLI, ids=[f"{a[0]}-{f}" for a, f in _CLI])
def test_every_path_argument_refuses_a_windows_path_naming_its_flag(argv, flag, capsys):
    """`rank --out 'runs\\w'` made a folder named "runs\\w"; `--catalogue 'C:\\cat.yaml'`,
    `--model 'C:\\models\\m'`, `--export 'D:\\e'`, predict's images, catalogue add's paths
    said nothing of why (no such file) or wrote where no one looks. A usage error (exit 2,
    while parsing: before anything is made) naming the flag and the path to write."""
    from hubensemble.cli import build_parser

    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(list(argv))
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    assert f"argument {flag}: " in err and "e.g. " in err and "Windows" in err, err


@posix_only
def test_a_path_flag_takes_an_existing_name_with_a_backslash(in_process, tmp_path,
                                                             monkeypatch):
    from hubensemble.cli import build_parser

    monkeypatch.chdir(tmp_path)
    os.mkdir("runs\\w")
    args = build_parser().parse_args(["report", "--run", "runs\\w"])
    assert args.run == "runs\\w"
    code, _, err = in_process("report", "--run", "runs\\w")
    assert "Windows" not in err and "is not a hubensemble run" in err, err


@posix_only
def test_the_python_keywords_refuse_a_windows_path_naming_the_keyword(tmp_path, monkeypatch):
    """fit(out="runs\\\\w") made a folder named "runs\\w"; every stage function's path
    keyword is refused as its flag is, naming the keyword (OptionError, before any work)."""
    import hubensemble
    from hubensemble.catalogue import load_catalogue, load_catalogues
    from hubensemble.data import load_task
    from hubensemble.errors import DataError

    monkeypatch.chdir(tmp_path)
    os.mkdir("model")
    calls = [
        (lambda: hubensemble.fit("c.yaml", "sklearn:digits", "runs\\w"), "fit() out="),
        (lambda: hubensemble.fit("C:\\cat.yaml", "sklearn:digits", "r"), "fit() catalogue="),
        (lambda: hubensemble.fit(["c.yaml", "D:/c2.yaml"], "sklearn:digits", "r"),
         "fit() catalogue="),
        (lambda: hubensemble.fit("c.yaml", "sklearn:digits", "r", export="D:\\e"),
         "fit() export="),
        (lambda: hubensemble.fit("c.yaml", "sklearn:digits", "r", cache_dir="C:\\c"),
         "cache_dir is written"),
        (lambda: hubensemble.run_rank("runs\\w", None, None), "run_rank() out_dir="),
        (lambda: hubensemble.run_tune("C:\\runs\\r"), "run_tune() run_dir="),
        (lambda: hubensemble.run_ensemble("C:\\runs\\r"), "run_ensemble() run_dir="),
        (lambda: hubensemble.export_ensemble("r", "D:\\e"), "export_ensemble() out_dir="),
        (lambda: hubensemble.merge_rankings(["s\\0"], "m"), "merge_rankings() shard_dirs[0]="),
        (lambda: hubensemble.write_report("\\\\srv\\share\\r"), "write_report() run_dir="),
        (lambda: hubensemble.evaluate_model("C:\\m", None), "evaluate_model() model_dir="),
        (lambda: hubensemble.predict("C:\\m", ["a.png"]), "predict() model_dir="),
        (lambda: hubensemble.predict("model", ["x.png", "C:\\a.png"]),
         "predict() image_paths[1]="),
        (lambda: load_catalogue("C:\\cat.yaml"), "load_catalogue() path="),
        (lambda: load_catalogues(["c\\cat.yaml"]), "load_catalogues() paths[0]="),
        (lambda: hubensemble.build_zoo("quick", "D:\\zoo"), "build_zoo() out_dir="),
    ]
    for call, said in calls:
        with pytest.raises(OptionError) as e:
            call()
        assert said in str(e.value) and "Windows" in str(e.value), str(e.value)
    with pytest.raises(DataError, match=r"data_dir is written as a Windows"):
        load_task("tfds:beans", data_dir="D:\\tfds")
    assert sorted(os.listdir(tmp_path)) == ["model"]


@posix_only
@pytest.mark.parametrize("variable", ["HUBENSEMBLE_ZOO_DIR", "HUBENSEMBLE_CACHE_DIR",
                                      "TFHUB_CACHE_DIR", "KERAS_HOME", "TFDS_DATA_DIR"])
def test_an_environment_variable_naming_a_windows_path_is_refused_naming_it(
        variable, in_process, tmp_path, monkeypatch):
    """HUBENSEMBLE_ZOO_DIR='C:\\zoo' built the zoo in a folder of that name in the working
    folder; TFHUB_CACHE_DIR and KERAS_HOME, read by the libraries, the same. Refused before
    any work (the command line's exit 2, fit's OptionError) naming the variable."""
    import hubensemble
    from hubensemble import environment

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(variable, "C:\\cache")
    with pytest.raises(OptionError, match=f"{variable}='C:\\\\cache' is written as a Windows"):
        environment.check_environment()
    with pytest.raises(OptionError, match=variable):
        hubensemble.fit("c.yaml", "sklearn:digits", "r")
    code, _, err = in_process("catalogue", "validate")
    assert code == 2 and f"{variable}='C:\\cache'" in err and "/mnt/c/cache" in err, err
    assert os.listdir(tmp_path) == []
    os.mkdir("C:\\cache")  # a folder so named here: taken as typed
    environment.check_environment()


@posix_only
def test_a_data_spec_on_a_unc_share_is_advised_its_mount_point(tmp_path, monkeypatch):
    from hubensemble.data.specs import check_spec
    from hubensemble.errors import DataError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as e:
        check_spec("folder:\\\\server\\share\\imgs")
    said = str(e.value)
    assert "Windows network share" in said and "e.g. /mnt/share/imgs" in said, said
    assert "//server/share/imgs" not in said.replace("mount -t cifs //server/share", ""), said


def test_a_catalogue_written_for_windows_is_kept_as_written_and_advised(tmp_path):
    """A handle or weights: file written as Windows writes paths is kept as written (it was
    joined to the catalogue's folder: "/home/me/cats/C:\\models\\m does not exist"), and
    validate's warning and rank's skip reason say the form to write here."""
    from hubensemble import hub
    from hubensemble.catalogue import load_catalogue
    from hubensemble.errors import ModuleLoadError
    from hubensemble.handlewarnings import local_handle_warnings

    cat = tmp_path / "c.yaml"
    cat.write_text('modules:\n  - {name: m, handle: "C:\\\\models\\\\m"}\n'
                   '  - {name: k, handle: "keras:MobileNet", weights: "D:\\\\w\\\\mn.h5"}\n'
                   '  - {name: g, handle: "keras:MobileNet", weights: "gone.h5"}\n')
    m, k, g = load_catalogue(cat)
    assert m.handle == "C:\\models\\m" and k.weights == "D:\\w\\mn.h5"
    assert g.weights == str(tmp_path / "gone.h5")  # an ordinary path: beside the catalogue
    notes = local_handle_warnings([m, k, g])
    assert len(notes) == 3
    assert f"{cat}:2" in notes[0] and "/mnt/c/models/m" in notes[0]
    # The value as the file holds it, not its repr, which doubled each backslash.
    assert "handle 'C:\\models\\m' is written as a Windows path" in notes[0], notes[0]
    assert "weights file 'D:\\w\\mn.h5'" in notes[1], notes[1]
    assert f"{cat}:3" in notes[1] and "/mnt/d/w/mn.h5" in notes[1]
    assert f"{cat}:4" in notes[2] and "does not exist" in notes[2]
    with pytest.raises(ModuleLoadError, match="/mnt/c/models/m"):
        hub.resolve(m.handle)


def test_a_catalogue_path_with_a_backslash_that_exists_is_taken_as_typed(tmp_path):
    from hubensemble.catalogue import load_catalogue

    (tmp_path / "odd\\name").mkdir()
    cat = tmp_path / "c.yaml"
    cat.write_text('modules:\n  - {name: m, handle: "odd\\\\name"}\n')
    assert load_catalogue(cat)[0].handle == str(tmp_path / "odd\\name")
