"""Environment variables that name folders, caches and URLs: `~` expanded, checked up front,
named in messages; a user cache that cannot be written never stops a run."""

import os
import shutil

import numpy as np
import pytest

from hubensemble import cost, rank
from hubensemble.catalogue import ModuleSpec
from hubensemble.data import load_task
from hubensemble.errors import HubensembleError
from hubensemble.zoo import zoo_root


@pytest.fixture(scope="module")
def task():
    return load_task("sklearn:digits")


@pytest.fixture(scope="module")
def spec(module_factory):
    return ModuleSpec(name="env-tiny", handle=module_factory("env-tiny", seed=7, width=5))


def entries(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder)
                  for f in fs if f.endswith(".npy"))


def test_a_tilde_in_a_cache_or_zoo_variable_is_the_home_folder(tmp_path, monkeypatch, task,
                                                               spec):
    """A new-user check: HUBENSEMBLE_CACHE_DIR="~/c" (quoted: the shell leaves it) made a
    folder literally named ./~/c; HUBENSEMBLE_ZOO_DIR expanded it, the caches did not."""
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    monkeypatch.setenv("HUBENSEMBLE_CACHE_DIR", "~/c")
    monkeypatch.setenv("HUBENSEMBLE_COST_CACHE", "~/cost")
    monkeypatch.setenv("HUBENSEMBLE_ZOO_DIR", "~/zoo")
    assert rank.default_cache_dir() == str(home / "c")
    assert cost.default_cache_dir() == str(home / "cost")
    assert zoo_root() == home / "zoo"
    result = rank.embed(spec, task, profile="quick")
    assert not result.cache_hit and len(entries(home / "c")) == 1
    assert os.listdir(work) == []  # no ./~ folder
    assert rank.embed(spec, task, profile="quick").cache_hit

    # Unset, the caches are under $XDG_CACHE_HOME, itself expanded.
    for name in ("HUBENSEMBLE_CACHE_DIR", "HUBENSEMBLE_COST_CACHE", "HUBENSEMBLE_ZOO_DIR"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CACHE_HOME", "~/xdg")
    assert rank.default_cache_dir() == str(home / "xdg" / "hubensemble" / "embeddings")
    assert cost.default_cache_dir() == str(home / "xdg" / "hubensemble" / "cost")
    assert zoo_root() == home / "xdg" / "hubensemble" / "zoo"
    assert np.array_equal(rank.embed(spec, task, profile="quick").embeddings,
                          result.embeddings)
    assert os.listdir(work) == []


def test_without_a_home_folder_the_caches_go_to_one_private_temporary_folder(
        tmp_path, monkeypatch, caplog, task, spec):
    """A new-user check (a container run under a user ID its image does not list, HOME
    unset): Python's expanduser gave back "~", and the zoo, embedding and cost caches were
    made in a folder literally named ./~/.cache in the working folder."""
    import pwd
    import stat
    import tempfile

    from hubensemble import environment

    def unlisted(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for name in ("HOME", "XDG_CACHE_HOME", "HUBENSEMBLE_CACHE_DIR", "HUBENSEMBLE_COST_CACHE",
                 "HUBENSEMBLE_ZOO_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(pwd, "getpwuid", unlisted)
    assert os.path.expanduser("~") == "~"  # the case itself
    monkeypatch.setattr(environment, "_HOMELESS", [], raising=False)  # said anew
    embeddings = rank.default_cache_dir()
    root = os.path.dirname(os.path.dirname(embeddings))
    assert os.path.dirname(root) == tempfile.gettempdir()
    assert embeddings == os.path.join(root, "hubensemble", "embeddings")
    assert cost.default_cache_dir() == os.path.join(root, "hubensemble", "cost")
    assert str(zoo_root()) == os.path.join(root, "hubensemble", "zoo")
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
    result = rank.embed(spec, task, profile="quick")
    assert len(entries(embeddings)) == 1 and rank.embed(spec, task, profile="quick").cache_hit
    assert os.listdir(work) == []  # no ./~ folder
    said = [r.getMessage() for r in caplog.records if "no home folder" in r.getMessage()]
    assert len(said) == 1 and root in said[0] and "set XDG_CACHE_HOME" in said[0], said
    assert not result.cache_hit


# --- a user cache that cannot be written ------------------------------------------------------

def ranked(specs, task, out, **kwargs):
    from hubensemble.rundir import DataArgs

    return rank.run_rank(str(out), specs, task, profile="quick", progress=False,
                         data_args=DataArgs(spec="sklearn:digits"), **kwargs)


def cache_warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"
            and "cannot be written" in r.getMessage()]


def test_an_embedding_cache_that_cannot_be_written_warns_once_and_ranks(
        tmp_path, monkeypatch, caplog, task, spec, module_factory):
    """A new-user check: HUBENSEMBLE_CACHE_DIR on a read-only mount (EROFS) or a file (ENOTDIR)
    failed every module ("no module could be ranked … fix these catalogue entries"): only
    PermissionError was caught around the entry's lock. Any OSError is the cache's: said
    once, naming the folder and what named it, and the ranking goes on."""
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    other = ModuleSpec(name="env-other", handle=module_factory("env-other", seed=8, width=6))
    monkeypatch.setenv("HUBENSEMBLE_CACHE_DIR", str(blocker))
    caplog.set_level("WARNING")
    result = ranked([spec, other], task, tmp_path / "run")
    assert [r["status"] for r in result.rows] == ["ok", "ok"]
    said = cache_warnings(caplog)
    assert len(said) == 1, said  # once, not per module or per file
    assert str(blocker) in said[0] and "HUBENSEMBLE_CACHE_DIR" in said[0]
    assert "Not a directory" in said[0] and "goes on" in said[0]

    # The keyword's folder: the warning names cache_dir (run_rank's keyword, not the flag
    # --cache-dir); the scores are the same.
    caplog.clear()
    flagged = ranked([spec, other], task, tmp_path / "run2", cache_dir=str(blocker / "x"))
    said = cache_warnings(caplog)
    assert len(said) == 1 and "pass cache_dir a folder you can write" in said[0]
    assert [r["score"] for r in flagged.rows] == [r["score"] for r in result.rows]

    # tune's probes and LP-FT heads read the cache through the same call.
    from hubensemble.tune.probe import split_embeddings

    emb, _ = split_embeddings(spec, task, ("train", "val"), resolution=32,
                              cache_dir=str(blocker / "y"))
    assert emb["train"].shape[0] == len(task.train) and emb["val"].shape[0] == len(task.val)


def test_a_cache_whose_writes_fail_still_serves_its_entries(tmp_path, caplog, monkeypatch,
                                                            task, spec):
    """What a cache holds is read when nothing can be written in it any more (here its memo
    folder is a file: every write there fails, as on a read-only copy)."""
    from hubensemble.rank import located

    monkeypatch.setattr(located, "RACY_SECONDS", 0.0)  # the test's module is fresh
    cache = tmp_path / "cache"
    first = rank.embed(spec, task, profile="quick", cache_dir=str(cache))
    assert not first.cache_hit
    shutil.rmtree(cache / "located")
    (cache / "located").write_text("in the way")
    caplog.set_level("WARNING")
    again = rank.embed(spec, task, profile="quick", cache_dir=str(cache))
    assert again.cache_hit and np.array_equal(again.embeddings, first.embeddings)
    said = cache_warnings(caplog)
    assert len(said) == 1 and str(cache) in said[0]


# --- errors caused by an environment variable name it --------------------------------------------

def test_a_zoo_cache_folder_in_the_way_names_hubensemble_zoo_dir(tmp_path, monkeypatch,
                                                                 in_process):
    """A new-user check: HUBENSEMBLE_ZOO_DIR=afile `zoo build --preset quick` said "choose
    another --out folder for the zoo", though no --out was given."""
    from hubensemble.zoo import ensure_zoo

    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    monkeypatch.setenv("HUBENSEMBLE_ZOO_DIR", str(blocker))
    code, out, err = in_process("zoo", "build", "--preset", "quick", "-q")
    assert code == 2 and f"{blocker} is a file, not a folder" in err, err
    assert "HUBENSEMBLE_ZOO_DIR names the preset zoos' cache folder" in err
    assert "choose another --out" not in err
    # zoo:PRESET/NAME handles build there too: the same words, not a NotADirectoryError.
    with pytest.raises(HubensembleError, match="HUBENSEMBLE_ZOO_DIR names the preset zoos'"):
        ensure_zoo("quick", progress=False)
    # An --out of the user's own stays theirs to change.
    code, out, err = in_process("zoo", "build", "--preset", "quick", "--out", blocker / "z")
    assert code == 2 and "choose another --out folder for the zoo" in err, err


@pytest.mark.parametrize("value, ok", [
    ("https://mirror.example/keras/", True), ("http://127.0.0.1:8000", True),
    ("file:///srv/keras-weights", True), ("not a url", False), ("mirror.example/keras", False),
    ("ftp://mirror.example/keras", False), ("https://", False)])
def test_the_weights_mirror_url_is_checked_with_the_timeouts(value, ok):
    from hubensemble import environment

    environ = {"HUBENSEMBLE_KERAS_WEIGHTS_MIRROR": value}
    if ok:
        environment.check_environment(environ)
        return
    with pytest.raises(HubensembleError, match=r"HUBENSEMBLE_KERAS_WEIGHTS_MIRROR=.* is not a "
                                               r"URL of a mirror"):
        environment.check_environment(environ)


def test_a_bad_weights_mirror_is_refused_before_the_work(tmp_path, monkeypatch, in_process):
    """A new-user check: HUBENSEMBLE_KERAS_WEIGHTS_MIRROR="not a url" failed only at the first
    download ("ValueError: unknown url type", advice to check the network)."""
    monkeypatch.setenv("HUBENSEMBLE_KERAS_WEIGHTS_MIRROR", "not a url")
    catalogue = tmp_path / "c.yaml"
    catalogue.write_text("modules:\n  - name: m\n    handle: keras:MobileNetV3Small\n")
    code, out, err = in_process("rank", "--catalogue", catalogue, "--data", "sklearn:digits",
                                "--out", tmp_path / "run")
    assert code == 2 and "HUBENSEMBLE_KERAS_WEIGHTS_MIRROR='not a url' is not a URL" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("first", ["figures", "tensorflow"])
def test_a_matplotlib_folder_that_cannot_be_written_is_one_line_of_ours(tmp_path, first):
    """With a HOME under a file (as a HOME or config folder that cannot be written) and
    MPLCONFIGDIR unset, matplotlib's first import (the report's figures; TensorFlow's import,
    which imports matplotlib) wrote two WARNING lines of its own on stderr ("mkdir -p failed
    for path …", "Matplotlib created a temporary cache directory at …"). Now one line of
    hubensemble's names MPLCONFIGDIR and the fix, and the private folder used instead is gone
    after the process."""
    import subprocess
    import sys

    (tmp_path / "afile").write_text("")
    env = {k: v for k, v in os.environ.items()
           if k not in ("MPLCONFIGDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")}
    env.update(HOME=str(tmp_path / "afile" / "home"), TMPDIR=str(tmp_path),
               PYTHONPATH=os.pathsep.join(sys.path))
    code = {"figures": "from hubensemble.report import figures; figures._figure(2, 2)",
            "tensorflow": "from hubensemble import _tf; _tf.import_tensorflow()"}[first]
    code += "; import os; print(os.environ['MPLCONFIGDIR'])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stderr.splitlines() if "matplotlib" in line.lower()]
    assert len(said) == 1 and "MPLCONFIGDIR" in said[0], done.stderr
    assert "set MPLCONFIGDIR to a folder you can write" in said[0]
    # Whose folder, in words (it said "the default, MPLCONFIGDIR being unset's"), and no
    # promise that entries there are still read: the temporary folder replaces it.
    assert "Its folder is the default (MPLCONFIGDIR unset)" in said[0], said
    assert "still read" not in said[0], said
    folder = done.stdout.strip()
    assert folder.startswith(str(tmp_path)) and not os.path.exists(folder), folder


def test_tensorflows_op_determinism_puts_no_line_on_stderr(tmp_path, monkeypatch):
    """TF_DETERMINISTIC_OPS=1 (a user who asks for determinism): tf.data then runs a map
    whose function is stateful one call at a time, by rewriting the parallel map's graph as
    each iterator is made, and the rewrite wrote "E… node_def_util.cc:682] NodeDef mentions
    attribute use_unbounded_threadpool which is not in the op definition: …" on stderr: 1
    line in rank, 1 to 5 in tune of a quick CLI fit of two tiny modules. The streams of rank
    (the split's) and tune (training, evaluation) are made in a fresh process under it: no
    line on stderr, and the same batches as without it."""
    import subprocess
    import sys

    script = """if True:
        import numpy as np
        from hubensemble.catalogue import ModuleSpec
        from hubensemble.data import Split, Task
        from hubensemble.hyperrule import HParams
        from hubensemble.tune import inputs
        rng = np.random.default_rng(0)
        def split(n):
            return Split(images=rng.integers(0, 256, (n, 20, 24, 3), dtype=np.uint8),
                         labels=np.arange(n) % 3)
        task = Task(name="t", source="test", class_names=["a", "b", "c"], train=split(11),
                    val=split(7), test=split(5), flip=True)
        spec = ModuleSpec(name="tiny", handle="unused", input_size=(12, 12))
        hp = HParams(lr=0.01, steps=5, batch_size=4, seed=3)
        batches = [next(iter(inputs.training_dataset(task, spec, hp, profile="quick")))[0],
                   next(iter(inputs.eval_dataset(task, "val", spec=spec, profile="quick",
                                                 batch_size=4))),
                   next(iter(task.dataset("train", batch_size=4, image_size=None,
                                          shuffle=False, repeat=False)))[0]]
        np.savez(sys.argv[1], *[b.numpy() for b in batches])
    """
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "HUBENSEMBLE_QUIET_TF")}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    env["TF_DETERMINISTIC_OPS"] = "1"  # read once, as TensorFlow starts: a process of its own
    done = subprocess.run([sys.executable, "-c", "import sys\n" + script, str(tmp_path / "1.npz")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "NodeDef" not in done.stderr, done.stderr
    # Without it: in this process (no process of its own to start), as a new process runs
    # it: no global seed (another test's tf.random.set_seed reorders a seeded shuffle).
    import tensorflow as tf
    from tensorflow.python.eager import context

    from hubensemble import _tf

    assert not _tf.op_determinism()
    seed = context.global_seed()
    tf.random.set_seed(None)
    try:
        monkeypatch.setattr(sys, "argv", ["-c", str(tmp_path / "0.npz")])
        exec(script, {"sys": sys})
    finally:
        tf.random.set_seed(seed)
    got = [np.load(tmp_path / f"{determinism}.npz") for determinism in "10"]
    assert got[0].files == got[1].files and len(got[0].files) == 3
    for name in got[0].files:
        np.testing.assert_array_equal(got[0][name], got[1][name])


def test_an_unknown_or_retired_hubensemble_variable_is_warned_of_once(caplog):
    """HUBENSEMBLE_CACHE_DIRR (a typo) was ignored without a word, the default cache used;
    HUBENSEMBLE_CHIEF_GRACE, which f807c7b retired, likewise. check_environment (before any
    work, from the command line and from fit) warns of each, once per process."""
    import logging

    from hubensemble import environment

    environ = {"HUBENSEMBLE_CACHE_DIRR": "/tmp/c", "HUBENSEMBLE_CHIEF_GRACE": "5",
               "HUBENSEMBLE_NOTHING_LIKE_IT": "1", "HUBENSEMBLE_HTTP_TIMEOUT": "30",
               "HUBENSEMBLE_QUIET_TF": "1", "PATH": "/bin"}
    assert environment.unknown_settings(environ) == [
        "$HUBENSEMBLE_CACHE_DIRR is set but is not a hubensemble setting (ignored); did you "
        "mean $HUBENSEMBLE_CACHE_DIR?",
        "$HUBENSEMBLE_CHIEF_GRACE is set but no longer read: a worker started after its chief "
        "ended waits for a chief started again ($HUBENSEMBLE_CHIEF_TIMEOUT bounds the wait) "
        "since 2026-12-06; unset it",
        "$HUBENSEMBLE_NOTHING_LIKE_IT is set but is not a hubensemble setting (ignored)"]
    environment._SAID_SETTINGS.clear()
    with caplog.at_level(logging.WARNING, logger="hubensemble.environment"):
        environment.check_environment(environ)
        environment.check_environment(environ)
    assert [r.getMessage() for r in caplog.records] == environment.unknown_settings(environ)


def pretend_unwritable(monkeypatch, folder, read_only):
    """os.access says `folder` (a str path) cannot be written, and os.statvfs says its file
    system is mounted read-only (`read_only`) or not: the suite runs as root on a writable
    mount, where neither can be made real. Every other path is asked as it is."""
    real_access, real_statvfs = os.access, os.statvfs
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: (
        False if os.fspath(p) == folder else real_access(p, mode, **kw)))

    class Mounted:
        f_flag = os.ST_RDONLY if read_only else 0

    monkeypatch.setattr(os, "statvfs", lambda p: Mounted if os.fspath(p) == folder
                        else real_statvfs(p))


@pytest.mark.parametrize("read_only", [True, False])
def test_a_read_only_matplotlib_folder_is_said_as_read_only_not_as_permission_denied(
        tmp_path, monkeypatch, caplog, read_only):
    # os.access said no and matplotlib's folder was said as "(Permission denied: …)" also on
    # a file system mounted read-only, where no chmod or chown helps: statvfs tells them
    # apart, as for TensorFlow Hub's cache. (Tests run as root, whom os.access lets write
    # anywhere: it and statvfs are stood in for the folder alone.)
    import sys

    from hubensemble import environment

    folder = str(tmp_path / "mpl")
    os.makedirs(folder)
    monkeypatch.delitem(sys.modules, "matplotlib", raising=False)  # put back after the test
    monkeypatch.setattr(environment, "matplotlib_folders", lambda: [folder])
    monkeypatch.delenv("MPLCONFIGDIR", raising=False)  # the temporary one set goes after
    monkeypatch.setattr(environment, "_UNWRITABLE", set())
    pretend_unwritable(monkeypatch, folder, read_only)
    with caplog.at_level("WARNING"):
        environment.matplotlib_folder()
    said = [r.getMessage() for r in caplog.records if "matplotlib" in r.getMessage()]
    reason = (f"(Read-only file system: {folder}; it is mounted read-only)" if read_only
              else f"(Permission denied: {folder})")
    assert len(said) == 1 and f"{folder} cannot be written {reason}" in said[0], said
    assert os.environ["MPLCONFIGDIR"] != folder


@pytest.mark.parametrize("name", ["HUBENSEMBLE_CACHE_DIR", "HUBENSEMBLE_COST_CACHE",
                                  "HUBENSEMBLE_ZOO_DIR", "XDG_CACHE_HOME"])
def test_a_relative_folder_variable_is_made_absolute_and_said_once(tmp_path, monkeypatch,
                                                                   caplog, name):
    """One rule for every folder variable (492's HUBENSEMBLE_DECODE_CACHE=cache made a cache
    under whatever folder a command ran from, without a word): a relative value is taken
    under the working folder, the absolute path returned and said once per process."""
    import logging

    from hubensemble import environment

    monkeypatch.setattr(environment, "_SAID_RELATIVE", set())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(name, "rel/c")
    with caplog.at_level(logging.WARNING):
        got = [environment.path_from_environment(name) for _ in range(2)]
        environment.check_environment()
    assert got == [str(tmp_path / "rel" / "c")] * 2
    said = [r.getMessage() for r in caplog.records if "relative path" in r.getMessage()]
    assert said == [f"{name}=rel/c is a relative path: taken as {tmp_path / 'rel' / 'c'}, "
                    "under the working folder (a command run from another folder uses another "
                    "one); set it to an absolute path to keep one folder"], said
