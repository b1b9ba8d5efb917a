"""Atomic writes and inter-process locks (fileio): real processes, real kills."""

import argparse
import ast
import errno
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from hubensemble import fileio

HOLD = textwrap.dedent("""
    import sys, time
    from hubensemble.fileio import file_lock
    path, seconds, timeout = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    try:
        with file_lock(path, timeout=timeout):
            print("took", time.time(), flush=True)
            time.sleep(seconds)
    except TimeoutError as e:
        print("timeout", str(e), flush=True)
""")


def _holder(path, seconds, timeout):
    return subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds), str(timeout)],
                            stdout=subprocess.PIPE, text=True)


def _wait_until_held(path, deadline=30.0):
    end = time.monotonic() + deadline
    while not (os.path.exists(path) and fileio.lock_is_held(path)):
        assert time.monotonic() < end, "the holder never took the lock"
        time.sleep(0.02)


def test_two_processes_racing_for_a_dead_owners_lock_exactly_one_wins(tmp_path):
    lock = tmp_path / "run.json.lock"
    owner = _holder(lock, 600, 5)
    _wait_until_held(lock)
    owner.send_signal(signal.SIGKILL)  # dies holding it: no release code runs
    owner.wait(30)
    assert lock.exists() and not fileio.lock_is_held(lock)  # the kernel let go
    # Both racers start at once and hold the lock for 3 s if they get it; the one that does
    # not get it within 1 s gives up. With the old O_EXCL lock both could take over the dead
    # owner's file.
    racers = [_holder(lock, 3, 1), _holder(lock, 3, 1)]
    outs = [r.communicate(timeout=60)[0] for r in racers]
    took = [o for o in outs if o.startswith("took")]
    timed_out = [o for o in outs if o.startswith("timeout")]
    assert len(took) == 1 and len(timed_out) == 1, outs
    assert str(lock) in timed_out[0]  # the error names the lock file


def test_a_waiter_gets_the_lock_when_its_holder_is_killed(tmp_path):
    lock = tmp_path / "x.lock"
    owner = _holder(lock, 600, 5)
    _wait_until_held(lock)
    waiter = _holder(lock, 0, 60)
    time.sleep(0.5)
    assert waiter.poll() is None  # still waiting
    start = time.time()
    owner.kill()
    out = waiter.communicate(timeout=60)[0]
    owner.wait(30)
    assert out.startswith("took") and float(out.split()[1]) >= start


def test_atomic_writes_leave_no_temp_and_read_back(tmp_path):
    fileio.atomic_write_json(tmp_path / "a.json", {"x": np.float32(1.5), "y": np.arange(3)})
    assert fileio.read_json(tmp_path / "a.json") == {"x": 1.5, "y": [0, 1, 2]}
    fileio.atomic_save_npy(tmp_path / "b.npy", np.eye(2, dtype=np.float32))
    assert np.array_equal(np.load(tmp_path / "b.npy"), np.eye(2))
    assert not [n for n in os.listdir(tmp_path) if fileio.is_temp(n)]
    with pytest.raises(TypeError, match="cannot write object"):
        fileio.atomic_write_json(tmp_path / "c.json", {"x": object()})
    assert not (tmp_path / "c.json").exists()
    assert not [n for n in os.listdir(tmp_path) if fileio.is_temp(n)]


def test_replace_dir_swaps_whole_folders_and_stale_temps_go(tmp_path):
    final = tmp_path / "export"
    for value in ("one", "two"):
        tmp = fileio.temp_dir_for(final)
        os.makedirs(tmp)
        (tmp_path / os.path.basename(tmp) / "v.txt").write_text(value)
        fileio.replace_dir(tmp, final)
        assert (final / "v.txt").read_text() == value
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".tmp-export.{dead}"
    stale.mkdir()
    live = tmp_path / f".tmp-export.{os.getppid()}"
    live.mkdir()
    removed = fileio.remove_stale_temp_dirs(final)
    assert removed == [str(stale)] and live.exists() and (final / "v.txt").exists()
    # A file where the folder goes is never renamed aside (it was, into a hidden temp entry
    # that the next clean-up deleted: a new-user check with export --format tflite).
    (tmp_path / "f").write_text("keep")
    tmp = fileio.temp_dir_for(tmp_path / "f")
    os.makedirs(tmp)
    with pytest.raises(FileExistsError, match="is a file, not a folder"):
        fileio.replace_dir(tmp, tmp_path / "f")
    assert (tmp_path / "f").read_text() == "keep" and os.path.isdir(tmp)


def test_replace_dir_puts_back_a_folder_that_came_to_hold_other_files(tmp_path):
    """A new-user check: a file put into an export's (empty) folder while the export was
    written was deleted with the old folder at the swap, exit 0. With `replaceable` the
    folder is asked again once renamed aside (nothing can come into it by its name then):
    refused, it is put back as it was and the new folder is not put in."""
    final = tmp_path / "exp dir"
    final.mkdir()
    tmp = fileio.temp_dir_for(final)
    os.makedirs(tmp)
    (tmp_path / os.path.basename(tmp) / "v.txt").write_text("new")
    asked = []

    def replaceable(old):
        asked.append(os.listdir(old))
        return not os.listdir(old)

    (final / "notes.txt").write_text("keep me")  # came during the work
    with pytest.raises(fileio.HubensembleError, match=re.escape(
            f"{final} came to hold other files while the export was written there")):
        fileio.replace_dir(tmp, final, replaceable=replaceable, what="the export")
    assert asked == [["notes.txt"]]
    assert sorted(os.listdir(final)) == ["notes.txt"] and (final / "notes.txt").read_text() == \
        "keep me"
    assert (tmp_path / os.path.basename(tmp) / "v.txt").read_text() == "new"  # the caller's
    (final / "notes.txt").unlink()  # an empty folder (the early check's rule) is replaced
    fileio.replace_dir(tmp, final, replaceable=replaceable, what="the export")
    assert (final / "v.txt").read_text() == "new"
    assert not [n for n in os.listdir(tmp_path) if fileio.is_temp(n)]


def test_a_read_only_folder_is_refused_before_the_work():
    """A new-user check: `evaluate --out ro/x.json` in a read-only folder ran the whole
    evaluation, then failed naming a temp file and saying to resume. Checked as an
    unprivileged user (root writes anywhere): in a child process that becomes nobody when
    this test runs as root."""
    import json
    import shutil
    import tempfile

    base = tempfile.mkdtemp(prefix="hubensemble-ro-")  # outside pytest's private tmp
    ro = os.path.join(base, "ro")
    os.makedirs(os.path.join(ro, "sub"))
    os.chmod(base, 0o755)
    os.chmod(ro, 0o555)

    def checks():
        said = []
        for call in (lambda: fileio.check_file_target(ro + "/x.json", "choose another file"),
                     lambda: fileio.check_dir_target(ro + "/new/export", "choose another"),
                     lambda: fileio.check_file_target(base + "/x.json", "h")):  # writable
            try:
                call()
                said.append("accepted")
            except fileio.HubensembleError as e:
                said.append(str(e))
        return said

    try:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: nobody when root, itself otherwise
            try:
                if os.geteuid() == 0:
                    os.chmod(base, 0o777)
                    os.setgid(65534)
                    os.setuid(65534)
                os.write(write, json.dumps(checks()).encode())
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read) as f:
            said = json.loads(f.read())
        os.waitpid(pid, 0)
    finally:
        os.chmod(ro, 0o755)
        shutil.rmtree(base)
    assert said == [f"no permission to write in {ro}; make it writable, or choose another file",
                    f"no permission to write in {ro}; make it writable, or choose another",
                    "accepted"]


def test_a_run_folder_on_a_read_only_file_system_is_said_so_with_the_commands_way_on(
        tmp_path, monkeypatch):
    """`tune --run D`, `ensemble --run D` and `rank --out D` on a read-only mount said "no
    permission to write in D; pass another --out / --run": the cause is the file system
    (EROFS), tune and ensemble take no --out, and another run does not help them. Tests may
    not mount: the check is fed what it reads of a read-only mount, as root reads it too
    (access(2) refuses writing there with EROFS; statvfs's ST_RDONLY flag set)."""
    import types

    from hubensemble.lockwords import command_line
    from hubensemble.rundir import Run

    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    flag = os.ST_RDONLY
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: mode & os.W_OK == 0)
    monkeypatch.setattr(os, "statvfs", lambda path: types.SimpleNamespace(f_flag=flag))

    def said(command, path=run):
        with pytest.raises(fileio.HubensembleError) as e:
            Run(path).make_folder(command)
        return str(e.value)

    copy = f"copy the run to a folder you can write (`cp -r {run} COPY`)"
    with command_line():
        assert said("tune") == (f"{run} is on a read-only file system; make it writable, or "
                                f"{copy} and run `hubensemble tune --run COPY`")
        assert said("ensemble").endswith(f"{copy} and run `hubensemble ensemble --run COPY`")
        assert said("rank") == (f"{run} is on a read-only file system; make it writable, or "
                                f"pass another --out folder (a new run), or {copy} and pass "
                                "--out COPY")
        # A new run in a read-only folder: only another --out helps (nothing to copy).
        assert said("fit", run / "new") == (f"{run} is on a read-only file system; make it "
                                            "writable, or pass another --out folder (a new run)")
    # From Python, the stage function's keywords.
    assert said("tune").endswith(f"{copy} and call run_tune(run_dir='COPY')")
    assert said("rank").endswith("pass run_rank() another out_dir folder (a new run), or "
                                 f"{copy} and pass out_dir='COPY'")
    # A file in the way: another folder, not "make it writable".
    (tmp_path / "afile").write_text("")
    assert said("fit", tmp_path / "afile" / "run") == (
        f"{tmp_path / 'afile'} is a file, not a folder (in {tmp_path / 'afile' / 'run'}); pass "
        "hubensemble.fit() another out folder (a new run)")
    # Without ST_RDONLY it is permission, as before.
    flag = 0
    assert said(None) == (f"no permission to write in {run}; make it writable, or {copy} and "
                          "go on there")


def test_a_full_disk_is_recognised_behind_other_libraries_errors():
    # TensorFlow's summary writer and h5py's save_weights report a full disk or a file in
    # the way as their own errors; a sweep recorded them as the trial's failure for good.
    from hubensemble.fileio import machine_error

    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/run/candidates/t/val_probs.npy")
    assert machine_error(full) is full
    assert machine_error(OSError(errno.ENOENT, "No such file or directory", "x")) is None
    assert machine_error(ValueError("the training loss became nan by step 3")) is None
    tf_full = RuntimeError("{{function_node __wrapped__CreateSummaryFileWriter_device_/job:"
                           "localhost/replica:0/task:0/device:CPU:0}} /run/tuner/tensorboard/t/"
                           "train/events.out.tfevents.1.vm.2.v2; No space left on device")
    found = machine_error(tf_full)
    assert (found.errno, found.filename) == (
        errno.ENOSPC, "/run/tuner/tensorboard/t/train/events.out.tfevents.1.vm.2.v2")
    assert found.strerror == "No space left on device (RuntimeError)"  # the file named once
    assert str(found).count("events.out.tfevents") == 1
    h5 = RuntimeError("Disable slist on flush dest failure failed (file write failed: time = "
                      "Fri Dec 4 20:43:02 2026\n, filename = '/run/candidates/.tmp-t-1@vm/"
                      "weights.weights.h5', file descriptor = 5, errno = 28, error message = "
                      "'No space left on device', buf = 0x1, total write size = 8)")
    found = machine_error(h5)
    assert (found.errno, found.filename) == (
        errno.ENOSPC, "/run/candidates/.tmp-t-1@vm/weights.weights.h5")
    in_the_way = machine_error(RuntimeError("Not a directory [Op:CreateSummaryFileWriter]"))
    assert (in_the_way.errno, in_the_way.filename) == (errno.ENOTDIR, None)
    assert in_the_way.strerror == ("Not a directory (RuntimeError: Not a directory "
                                   "[Op:CreateSummaryFileWriter])")  # no file: its words


def test_one_run_named_by_a_symlink_and_its_real_path_is_one_lock(tmp_path, run_lock_holder):
    """A run folder with spaces and non-ASCII characters, reached through a symlink and
    through `..`: in the process that holds its lock, a nested use by another name was
    refused as "another fit is running on /…/link (pid <its own>)" (the lock was keyed by
    os.path.abspath), and a nested log_file by another name wrote every line twice. Another
    process is refused by any name (the kernel's lock is on the one file)."""
    import logging

    from hubensemble.errors import RunError
    from hubensemble.rundir import Run

    real = tmp_path / "runs" / "ünïcode run"
    real.mkdir(parents=True)
    (real / "run.json").write_text("{}")
    link = tmp_path / "link"
    link.symlink_to(real)
    dotdot = tmp_path / "runs" / ".." / "runs" / "ünïcode run"
    for first, second in ((real, link), (link, real), (link, dotdot)):
        with Run(first).lock("fit"), Run(second).lock("rank"):
            assert fileio.owned_here(second / ".fit.lock")
    with Run(real).log_file(lock="fit"), Run(link).log_file(lock="rank"):
        logging.getLogger("hubensemble.test").info("said once")
    assert (real / "log.txt").read_text().count("said once") == 1
    holder = run_lock_holder(real, "fit")
    for name in (link, dotdot):
        with pytest.raises(RunError, match=f"another fit is running on .*pid {holder.pid}"):
            Run(name).lock("ensemble").__enter__()


def test_two_threads_in_two_runs_logs_each_write_their_own_lines(tmp_path):
    """Two fits from two threads of one process (measured: tiny fits into runs a and b)
    each wrote both fits' lines into both log.txt files: the run log's handler took every
    thread's records. And the first block to end set the hubensemble logger's level back
    under the other, whose INFO lines were then lost."""
    import logging
    import threading

    from hubensemble.rundir import Run

    log = logging.getLogger("hubensemble.test")
    inside, first_done = threading.Barrier(2, timeout=60), threading.Event()
    errors = []

    def fit_like(name):
        try:
            with Run(tmp_path / name).log_file(lock="fit"):
                inside.wait()
                log.info("line of %s", name)
                inside.wait()
                if name == "a":
                    return
                assert first_done.wait(60)
                log.info("late line of %s", name)
        except BaseException as e:  # noqa: BLE001 - said by the assertion below
            errors.append(e)
        finally:
            if name == "a":
                first_done.set()

    threads = [threading.Thread(target=fit_like, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and not any(t.is_alive() for t in threads), errors
    a, b = ((tmp_path / n / "log.txt").read_text() for n in ("a", "b"))
    assert "line of a" in a and "line of b" not in a, a
    assert "line of b" in b and "line of a" not in b, b
    assert "late line of b" in b, b


def test_a_run_named_through_a_symlink_and_dotdot_is_named_where_it_is(
        tmp_path, run_lock_holder):
    """`--out runs/link/../r2` with runs/link a symlink to elsewhere/target: the system made
    elsewhere/r2 (it follows the link before ".."), while refusals, pasteable advice and
    run.json's export record named runs/r2 (os.path.abspath drops "link/.." textually)."""
    from hubensemble.errors import RunError
    from hubensemble.rundir import Run
    from hubensemble.text import shell

    (tmp_path / "runs").mkdir()
    (tmp_path / "elsewhere" / "target").mkdir(parents=True)
    (tmp_path / "runs" / "link").symlink_to(tmp_path / "elsewhere" / "target")
    typed = str(tmp_path / "runs" / "link" / ".." / "r2")
    real = tmp_path / "elsewhere" / "r2"
    Run(typed).make_folder()
    assert real.is_dir() and not (tmp_path / "runs" / "r2").exists()
    (real / "run.json").write_text("{}")
    holder = run_lock_holder(real, "fit")
    with pytest.raises(RunError) as refused:
        Run(typed).lock("ensemble").__enter__()
    assert (f"another fit is running on {real} (pid {holder.pid}" in str(refused.value)
            and f"call run_ensemble(run_dir='{real}')" in str(refused.value)), refused.value
    assert shell(typed) == shell(real)
    record = Run(typed).export_record(typed + "/../exports/e1")
    # An export outside the run also names the run and itself beside it (6c77f38: a copy of
    # the run folder finds its own), both where they are, not through the link textually.
    assert record == {"path": str(tmp_path / "elsewhere" / "exports" / "e1"), "in_run": None,
                      "run": str(real), "beside": "../exports/e1"}


def test_an_export_folder_through_a_symlink_and_dotdot_is_locked_where_the_run_is(tmp_path):
    """`fit --out runs/link/../r6 --export runs/link/../e6` put the run where the link leads
    (Run: text.as_reached) but locked and named the export beside the link (pipeline and
    exportfolder used os.path.abspath, which drops "link/.." textually): every
    path hubensemble makes absolute goes through text.absolute now."""
    from hubensemble.exportfolder import folder_lock
    from hubensemble.rundir import Run
    from hubensemble.text import absolute

    (tmp_path / "runs").mkdir()
    (tmp_path / "elsewhere" / "target").mkdir(parents=True)
    (tmp_path / "runs" / "link").symlink_to(tmp_path / "elsewhere" / "target")
    via = str(tmp_path / "runs" / "link" / "..")
    assert absolute(f"{via}/e6") == str(tmp_path / "elsewhere" / "e6")
    run = Run(f"{via}/r6")
    run.make_folder()
    with folder_lock(f"{via}/e6", run.path, "fit", "--export", "export"):
        assert (tmp_path / "elsewhere" / ".e6.lock").exists()
        assert not (tmp_path / "runs" / ".e6.lock").exists()
    assert sorted(os.listdir(tmp_path / "runs")) == ["link"], os.listdir(tmp_path / "runs")


def test_files_written_through_a_symlink_and_dotdot_land_where_the_system_reaches(tmp_path):
    """`rank --out runs/link/../r5`, link a symlink to a folder elsewhere: atomic_write_bytes
    made its temp file in runs/r5 (os.path.abspath drops "link/.." textually; an empty
    runs/r5 was left) and renamed it across to elsewhere/r5, which failed with "Invalid
    cross-device link" (a traceback) where the link led to another file system. Every
    writer of fileio now builds beside the file or folder the system reaches."""
    (tmp_path / "runs").mkdir()
    (tmp_path / "elsewhere" / "target").mkdir(parents=True)
    (tmp_path / "runs" / "link").symlink_to(tmp_path / "elsewhere" / "target")
    via = str(tmp_path / "runs" / "link" / "..")
    fileio.atomic_write_json(f"{via}/r5/run.json", {"a": 1})
    fileio.atomic_save_npy(f"{via}/r5/labels/train.npy", np.arange(3))
    with fileio.file_lock(f"{via}/r6/.fit.lock", timeout=5):
        pass
    tmp = fileio.temp_dir_for(f"{via}/export")
    os.makedirs(tmp)
    fileio.replace_dir(tmp, f"{via}/export")
    elsewhere = tmp_path / "elsewhere"
    assert fileio.read_json(elsewhere / "r5" / "run.json") == {"a": 1}
    assert (elsewhere / "r5" / "labels" / "train.npy").is_file()
    assert (elsewhere / "r6" / ".fit.lock").exists() and (elsewhere / "export").is_dir()
    assert sorted(os.listdir(tmp_path / "runs")) == ["link"], os.listdir(tmp_path / "runs")


def _text_calls_without_encoding(tree):
    """The calls in `tree` that read or write text in the locale's encoding: open(), io.open()
    and os.fdopen() in a text mode given as a constant, tempfile's files in one, a logging
    FileHandler, Path.read_text/write_text, subprocess with text=True, none of them with an
    `encoding=`."""
    import ast

    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or any(k.arg == "encoding" for k in node.keywords):
            continue
        func, words = node.func, {k.arg: k.value for k in node.keywords}
        if isinstance(func, ast.Name):
            name = func.id
        elif isinstance(func, ast.Attribute):  # Image.open, tarfile.open, os.open: not text
            owner = getattr(func.value, "id", None)
            name = func.attr if (owner, func.attr) in (("io", "open"), ("os", "fdopen")) or (
                func.attr in ("read_text", "write_text", "run", "Popen", "check_output")
                or func.attr.endswith(("TemporaryFile", "FileHandler"))) else ""
        else:
            continue
        if name in ("open", "fdopen"):
            mode = node.args[1] if len(node.args) > 1 else words.get("mode", ast.Constant("r"))
            if isinstance(mode, ast.Constant) and "b" not in mode.value:
                yield node
        elif name.endswith("TemporaryFile"):  # (binary unless a mode says otherwise)
            mode = node.args[0] if node.args else words.get("mode", ast.Constant("w+b"))
            if isinstance(mode, ast.Constant) and "b" not in mode.value:
                yield node
        elif name in ("read_text", "write_text") or name.endswith("FileHandler"):
            yield node
        elif name in ("run", "Popen", "check_output") and any(
                isinstance(words.get(k), ast.Constant) and words[k].value
                for k in ("text", "universal_newlines")):
            yield node


def test_every_text_file_is_read_and_written_with_its_encoding_named():
    """hub/introspect read image_converter.json in the locale's encoding (open() without
    encoding=): under LC_ALL=C PYTHONUTF8=0 a Keras preset whose JSON held "é" lost its image
    size (the UnicodeDecodeError was taken as no file). Every text file hubensemble reads or
    writes names its encoding; the reader of user-written text is text.file_text."""
    import ast
    from pathlib import Path

    package = Path(fileio.__file__).parent
    found = []
    for path in sorted(package.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        if any(word in source for word in ("open(", "_text(", "text=True", "newlines=True")):
            found += [f"{path.relative_to(package.parent)}:{node.lineno}"
                      for node in _text_calls_without_encoding(ast.parse(source))]
    assert not found, "text in the locale's encoding, not UTF-8:\n" + "\n".join(found)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads Linux's /proc")
def test_a_killed_process_not_yet_reaped_is_not_alive():
    """A zombie (killed, its parent not waiting on it yet) counted as running: a chief of a
    chief/worker sweep started by a launcher that waits on its workers first stayed one after
    kill -9, and the workers waited for it (sweeplock.chief_gone)."""
    child = subprocess.Popen(["sleep", "60"])
    try:
        assert fileio.pid_alive(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # it has ended, unreaped
        assert not fileio.pid_alive(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not fileio.pid_alive(child.pid)


# TensorFlow calls given a path, and the argument that is the path (tf.saved_model.save's
# second); tf.io.gfile's every function takes its path first.
_TF_PATH_CALLS = {("saved_model", "load"): 0, ("saved_model", "save"): 1,
                  ("io", "TFRecordWriter"): 0}
# Paths that are URLs (gs://, hub), never a local name in the locale's encoding.
_TF_PATH_URLS = {"hubensemble/hub/remote.py"}


def _tf_calls_without_tf_path(tree):
    """The calls in `tree` that hand TensorFlow a path not made by tf_path(...), directly or
    through a name assigned from it in the same function."""
    def made_by_tf_path(node, names):
        if isinstance(node, ast.Call):
            return getattr(node.func, "id", getattr(node.func, "attr", None)) == "tf_path"
        return isinstance(node, ast.Name) and node.id in names

    scopes = [tree] + [n for n in ast.walk(tree)
                       if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    found = set()
    for scope in scopes:
        names = {t.id for n in ast.walk(scope) if isinstance(n, ast.Assign)
                 and made_by_tf_path(n.value, ()) for t in n.targets if isinstance(t, ast.Name)}
        for node in ast.walk(scope):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Attribute)):
                continue
            pair = (node.func.value.attr, node.func.attr)
            gfile = (pair[0] == "gfile" and isinstance(node.func.value.value, ast.Attribute)
                     and node.func.value.value.attr == "io")
            at = 0 if gfile else _TF_PATH_CALLS.get(pair)
            if at is not None and len(node.args) > at \
                    and not made_by_tf_path(node.args[at], names):
                found.add(node.lineno)
    return sorted(found)


def test_every_path_handed_to_tensorflow_is_in_tensorflows_form():
    """Under LC_ALL=C PYTHONUTF8=0, Python names 'run→c' by lone surrogates, which TensorFlow
    cannot encode: tools/benchmarks/bench_figures.py --export 'run→c/export' (the README's
    command on fit's export there) stopped in tf.saved_model.load with "UnicodeEncodeError:
    … surrogates not allowed". Every path given to tf.saved_model.load/save,
    tf.io.gfile and TFRecordWriter, in the package and in tools/, goes through
    fileio.tf_path, which also refuses a name that is not UTF-8 by its name."""
    from pathlib import Path

    root = Path(fileio.__file__).parent.parent
    found = []
    for folder in ("hubensemble", "tools"):
        for path in sorted((root / folder).rglob("*.py")):
            name = path.relative_to(root).as_posix()
            source = path.read_text(encoding="utf-8")
            words = ("saved_model", "gfile", "TFRecordWriter")
            if name in _TF_PATH_URLS or not any(word in source for word in words):
                continue
            found += [f"{name}:{line}" for line in _tf_calls_without_tf_path(ast.parse(source))]
    assert not found, "a path given to TensorFlow without fileio.tf_path:\n" + "\n".join(found)


def test_a_name_tensorflow_cannot_read_is_refused_naming_the_folder_to_rename():
    """`fit --out $'caf\\xe9'` (a Latin-1 run folder) was refused with "caf\\xe9/tuner: the name
    is not UTF-8 …; rename it in UTF-8" (and, with --sweep probe, "caf\\xe9/export"): tuner/
    and export/ are names hubensemble chose, and renaming them would not help.
    The refusal names the folder whose name holds the byte; a last part keeps "rename it"."""
    run = os.fsdecode(b"/runs/caf\xe9")
    with pytest.raises(fileio.HubensembleError) as said:
        fileio.tf_path(os.path.join(run, "tuner"))
    assert str(said.value) == (
        "/runs/caf\\xe9/tuner: the name is not UTF-8 (a byte of another encoding, e.g. "
        "Latin-1) in its folder /runs/caf\\xe9, which TensorFlow can neither write nor read; "
        "rename that folder in UTF-8")
    with pytest.raises(fileio.HubensembleError, match=r"Latin-1\), which .* rename it in UTF-8"):
        fileio.tf_path(run)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads Linux's /proc")
def test_a_reused_pid_is_not_the_process_a_record_names(tmp_path):
    """A pid is given again to a later process: a lock's record of a killed holder whose pid
    ran again named that other process as the holder (lock_owner), and a worker's watch took
    a killed chief for running (sweeplock.chief_gone). The record's process start
    (/proc/PID/stat field 22), or for an older record its "since", tells them apart."""
    import socket

    from hubensemble import sweeplock

    child = subprocess.Popen(["sleep", "60"])
    try:
        start = fileio.process_start(child.pid)
        assert isinstance(start, int)
        assert fileio.pid_alive(child.pid, start)
        assert not fileio.pid_alive(child.pid, start + 1)  # the pid's earlier process
        now = time.strftime("%Y-%m-%dT%H:%M:%S")
        long_ago = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 3 * 86400))
        assert fileio.pid_alive(child.pid, since=now)
        assert not fileio.pid_alive(child.pid, since=long_ago)
        # A "since" with its offset (text.time_stamp, written since) reads as well.
        from hubensemble.text import time_stamp
        assert fileio.pid_alive(child.pid, since=time_stamp())
        assert not fileio.pid_alive(child.pid, since=long_ago + "+00:00")
        assert not fileio.pid_alive(os.getpid(), start + 1)  # ours, recorded by another
        run = tmp_path / "run"
        lock = sweeplock.member_lock_path(run, "chief")
        run.mkdir()
        lock.touch()
        record = {"command": "tune", "host": socket.gethostname(), "pid": child.pid,
                  "since": now}
        for said, alive in (({"pid_start": start}, True), ({"pid_start": start + 1}, False),
                            ({"since": long_ago}, False), ({}, True)):
            (run / (lock.name + ".holder")).write_text(json.dumps({**record, **said}))
            assert (fileio.lock_owner(lock) is not None) == alive, said
            assert (sweeplock.chief_gone(run, None) is None) == alive, said
        with fileio.owned_lock(tmp_path / "x.lock", {"command": "rank"}, RuntimeError):
            held = json.loads((tmp_path / "x.lock.holder").read_text())
        assert held["pid_start"] == fileio.process_start(os.getpid())
    finally:
        child.kill()
        child.wait()


def test_a_temp_folder_or_download_lock_of_a_reused_pid_is_a_dead_writers(tmp_path,
                                                                          monkeypatch):
    """Temp folder names and tensorflow_hub's download lock recorded a pid alone: once a
    later process was given a killed writer's pid, its leftovers looked alive and stayed
    (sweeplock's records have said the start since 1fc6685). Every place that tests a pid
    now uses the one rule (`fileio.writer_gone`, `pid_alive`): a live pid with another
    start is a dead writer's. And a candidate's temp name on a host whose name has a "-"
    was read with that part of the host as its pid: never removed. (The download lock:
    test_hub::test_a_download_lock_of_a_process_started_after_it_is_a_dead_ones.)"""
    import socket

    from hubensemble import candidate
    from hubensemble.tune.restart import _live_temp

    child = subprocess.Popen(["sleep", "60"])
    try:
        start = fileio.process_start(child.pid)
        final = tmp_path / "export"
        own = fileio.temp_dir_for(final)
        assert os.path.basename(own) == f".tmp-export.{fileio.writer_tag()}"
        host = socket.gethostname()
        reused = tmp_path / f".tmp-export.{child.pid}_{start + 1}@{host}"
        live = tmp_path / f".tmp-export.{child.pid}_{start}@{host}"
        other = tmp_path / f".tmp-export.{child.pid}_{start + 1}@another-host"
        for folder in (reused, live, other):
            folder.mkdir()
        assert fileio.remove_stale_temp_dirs(final) == [str(reused)]
        assert live.exists() and other.exists()

        monkeypatch.setattr(socket, "gethostname", lambda: "my-box")
        dead = subprocess.Popen(["true"])
        dead.wait()
        names = {f".tmp-seeds-0001-m-{child.pid}_{start + 1}@my-box": False,  # reused pid
                 f".tmp-seeds-0002-m-{child.pid}_{start}@my-box": True,
                 f".tmp-seeds-0003-m-{dead.pid}@my-box-old": False,  # an older name, dead
                 f".tmp-seeds-0004-m-{child.pid}@my-box": True,
                 f".tmp-seeds-0005-m-{dead.pid}@other-box": True}
        for name in names:
            (tmp_path / "candidates" / name).mkdir(parents=True)
        assert {n: _live_temp(n) for n in names} == names
        assert sorted(candidate.clean_stale_temps(tmp_path / "candidates")) == sorted(
            n for n, alive in names.items() if not alive)
    finally:
        child.kill()
        child.wait()


def test_a_killed_writers_temp_file_names_it_and_is_removed_what_is_listed_is_gone(
        tmp_path, monkeypatch):
    """atomic_write_bytes' temp file was ".tmp-NAME.XXXXXXXX": it named no writer, so one a
    killed writer left could not be told from a live writer's and stayed for good. It is
    ".tmp-NAME.XXXXXXXX.PID_START@HOST" now (`writer_tag`), and remove_stale_temp_dirs
    removes a dead writer's, a live one's (another thread of ours too) stays. And a FILE of a
    dead writer's temp-folder name was listed as removed but left there (rmtree with
    ignore_errors on a file does nothing): what it lists is gone, candidates' too. A command
    taking a run's lock removes a killed writer's temp files there (`Run.lock`)."""
    import socket

    from hubensemble import candidate

    seen = []
    real = os.replace

    def replace(a, b):
        seen.append(os.path.basename(a))
        real(a, b)

    monkeypatch.setattr(os, "replace", replace)
    fileio.atomic_write_text(tmp_path / "run.json", "{}")
    monkeypatch.undo()
    assert seen and seen[0].startswith(".tmp-run.json.") and seen[0].endswith(
        "." + fileio.writer_tag()), seen
    # A name of up to 255 bytes (the most a file system takes) is written all the same: its
    # part in the temp name is cut (it was refused ENAMETOOLONG past 241 bytes, 195 with the tag).
    for long in ("r" * 250 + ".json", "é" * 126 + ".j"):  # 255, 254 bytes
        fileio.atomic_write_text(tmp_path / long, "{}")
        assert (tmp_path / long).read_text() == "{}"
        (tmp_path / long).unlink()
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname()
    start = fileio.process_start(os.getpid())
    names = {f".tmp-run.json.k2j9x1ab.{dead.pid}_1@{host}": False,  # a killed writer's file
             f".tmp-run.json.k2j9x1ab.{os.getpid()}_{start}@{host}": True,  # another thread's
             f".tmp-run.json.k2j9x1ab.{dead.pid}_1@other.host": True,
             f".tmp-run.json.{dead.pid}_1@{host}": False}  # a file of a temp folder's name
    for name in names:
        (tmp_path / name).write_text("x")
    removed = fileio.remove_stale_temp_dirs(tmp_path / "run.json")
    assert sorted(removed) == sorted(str(tmp_path / n) for n, kept in names.items() if not kept)
    assert {n: (tmp_path / n).exists() for n in names} == names
    # Any command taking a run's lock removes a killed writer's temp files there (a live
    # writer's stay, and temp folders are their writers' to remove).
    from hubensemble.rundir import Run

    run = tmp_path / "run"
    left = {f".tmp-run.json.k2j9x1ab.{dead.pid}_1@{host}": False,
            f".tmp-ranking.json.abcdefgh.{os.getpid()}_{start}@{host}": True,
            f".tmp-cost.json.abcdefgh.{dead.pid}_1@other.host": True}
    run.mkdir()
    for name in left:
        (run / name).write_text("x")
    (run / f".tmp-export.{dead.pid}_1@{host}").mkdir()
    # … and in its folders (RUN/labels/, the tuner's sweeps), which stayed for good: a rank
    # killed mid-write left RUN/labels/.tmp-val.npy.*.TAG past the next report and rank.
    for sub in ("labels", "tuner/sweep-1"):
        (run / sub).mkdir(parents=True)
        for name in left:
            (run / sub / name.replace("run.json", "val.npy")).write_text("x")
    with Run(run).lock("rank"):
        pass
    assert {n: (run / n).exists() for n in left} == left
    for sub in ("labels", "tuner/sweep-1"):
        assert {n: (run / sub / n.replace("run.json", "val.npy")).exists()
                for n in left} == left, sub
    assert (run / f".tmp-export.{dead.pid}_1@{host}").is_dir()
    # Any folder written into atomically (an embedding cache entry's CACHE/ee/, a cost
    # entry's, an export's assets.extra) loses its dead writers' temp files at its next
    # writer, of any name there; a live writer's and another host's stay.
    entry = tmp_path / "cache" / "ee"
    entry.mkdir(parents=True)
    planted = {n.replace("run.json", key): kept
               for n, kept in left.items() for key in ("ee1.npy", "ee2.npy")}
    for name in planted:
        (entry / name).write_text("x")
    fileio.atomic_save_npy(entry / "ee1.npy", np.zeros(2))
    assert {n: (entry / n).exists() for n in planted} == planted
    assert sorted(os.listdir(entry)) == sorted(["ee1.npy", *(n for n, k in planted.items() if k)])
    (tmp_path / "candidates").mkdir()
    (tmp_path / "candidates" / f".tmp-seeds-0001-m-{dead.pid}@{host}").write_text("x")
    assert candidate.clean_stale_temps(tmp_path / "candidates") == [
        f".tmp-seeds-0001-m-{dead.pid}@{host}"]
    assert os.listdir(tmp_path / "candidates") == []


def test_records_stamp_their_times_with_the_utc_offset_and_old_stamps_still_read(
        tmp_path, monkeypatch):
    """run.json's "created", an export's, a lock's "since", a zoo's "built", trials.log's
    lines… were local time without an offset ("2026-12-05T20:35:32"): a reader in another
    zone, or across a change of daylight saving time, could not tell the moment. One helper,
    text.time_stamp, writes them all with the offset; text.stamp_time reads both forms (no
    offset: this machine's local time, as before)."""
    import re

    from hubensemble.exportfolder import kept_export_folder
    from hubensemble.rundir import Run
    from hubensemble.text import shown_time, stamp_time, time_stamp

    monkeypatch.setenv("TZ", "XST-5:30")  # a POSIX zone: no tz database needed
    time.tzset()
    try:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+05:30", time_stamp()), time_stamp()
        created = Run(tmp_path / "run").update(x=1)["created"]
        assert created.endswith("+05:30") and stamp_time(created) <= stamp_time(time_stamp())
        old, new = "2026-12-05T20:35:32", "2026-12-05T20:35:32+05:30"
        assert stamp_time(old) == stamp_time(new) == stamp_time("2026-12-05T15:05:32+00:00")
        assert shown_time(old) == shown_time(new) == "2026-12-05 20:35:32+05:30"
        # The name of a kept export is its stamp's clock time, either form.
        for stamp in (old, new):
            assert kept_export_folder(tmp_path / "export", {"created": stamp}).endswith(
                "export-replaced-20261205T203532"), stamp
    finally:
        monkeypatch.undo()
        time.tzset()
    # Only text.time_stamp writes a stamp: no module formats one of its own.
    from pathlib import Path

    root = Path(fileio.__file__).parent
    own = [f"{p.relative_to(root)}" for p in sorted(root.rglob("*.py")) if p.name != "text.py"
           and re.search(r"strftime\(\"%Y-%m-%dT|\.now\(\)[^\n]*isoformat", p.read_text())]
    # sweeplock.py's "ended": its owner's change this wave (asked of the lead by a helper's
    # report: time.strftime(…) -> text.time_stamp()); then this list is [].
    assert own == [], own


@pytest.mark.parametrize("long", ["e" * 255, "é" * 125])  # 255 bytes; 250 of 2-byte chars
def test_a_name_of_up_to_255_bytes_gets_its_temp_folder_lock_and_kept_export(tmp_path, long):
    """Every name made of a user's name and a suffix (a temp folder ".tmp-NAME.TAG" and its
    "-old", a candidate's temp folder, an export's .NAME.lock and its .holder, a zoo build's
    NAME.lock, a kept export NAME-replaced-STAMP) failed with ENAMETOOLONG for a name the file
    system takes (255 bytes). fileio.fitted_name cuts NAME at a whole character and marks it
    with its hash: two long names that start alike stay apart, and a dead writer's cut temp
    entries are still found by remove_stale_temp_dirs (the other name's are not)."""
    import socket

    from hubensemble import candidate, exportfolder
    from hubensemble.zoo import builder

    final, twin = tmp_path / long, tmp_path / (long[:-1] + "x")
    for folder in (final, twin):  # a build in a temp folder replacing an existing folder
        folder.mkdir()
        tmp = fileio.temp_dir_for(folder)
        os.makedirs(tmp)
        (Path(tmp) / "f").write_text(folder.name[-1])
        fileio.replace_dir(tmp, folder)
        assert (folder / "f").read_text() == folder.name[-1]
    cut = [os.path.basename(fileio.temp_dir_for(f)) for f in (final, twin)]
    assert cut[0] != cut[1] and all(len(os.fsencode(n + "-old")) <= 255 for n in cut)
    assert cut[0].encode("utf-8").decode("utf-8") == cut[0]  # no half character
    dead = subprocess.Popen(["true"])
    dead.wait()
    gone = f"{dead.pid}_1@{socket.gethostname()}"
    left = [fileio.fitted_name(long, f".{gone}", prefix=".tmp-", spare=4),
            fileio.fitted_name(long, f".k2j9x1ab.{gone}", prefix=".tmp-")]
    other = fileio.fitted_name(twin.name, f".{gone}", prefix=".tmp-", spare=4)
    for name in (*left, other):
        (tmp_path / name).mkdir()
    assert sorted(fileio.remove_stale_temp_dirs(final)) == sorted(str(tmp_path / n)
                                                                  for n in left)
    assert (tmp_path / other).is_dir()
    locks = [exportfolder.lock_path(f) for f in (final, twin)]
    assert locks[0] != locks[1]
    with fileio.owned_lock(locks[0], {"command": "fit"}, RuntimeError):
        assert fileio.lock_owner(locks[0])["command"] == "fit"  # its .holder was written
    with fileio.owned_lock(builder.build_lock_path(final), {"command": "zoo"}, RuntimeError):
        assert fileio.lock_owner(builder.build_lock_path(final))["command"] == "zoo"
    kept = exportfolder.kept_export_folder(final, {"created": "2026-12-06T03:00:00"})
    os.makedirs(kept)
    os.makedirs(kept + "-tflite")
    again = exportfolder.kept_export_folder(final, {"created": "2026-12-06T03:00:00"})
    assert again != kept and again.endswith("-replaced-20261206T030000-2")
    candidate.write_candidate(tmp_path / "candidates", {"trial": long, "status": "failed"})
    candidate.write_candidate(tmp_path / "candidates", {"trial": long, "status": "failed"})
    assert os.listdir(tmp_path / "candidates") == [long]


def test_a_stop_between_the_two_renames_of_a_folders_swap_leaves_the_folder_in_place(
        tmp_path, monkeypatch):
    """A folder replaced by another (an export: `fileio.replace_dir`; a candidate a trial run
    again writes: `candidate.write_candidate`) is swapped in two renames: the old one aside,
    the new one in. A Ctrl-C or SIGTERM in between (Python runs its handler after the
    first) stopped there: no folder at the final path, the new one deleted by the caller's
    clean-up and the old one left under a temp name, for the next writer to delete as a dead
    writer's. A RUN/export (or the candidate) was lost, not replaced. The swap now holds the
    stop until both renames are done (`errors.held_stops`): it comes right after, with the
    new folder in place."""
    from hubensemble.candidate import read_candidate, write_candidate

    real = os.replace

    def stopped_after(a, b):
        real(a, b)
        if os.path.basename(b).endswith(fileio.OLD):  # the old folder just moved aside
            os.kill(os.getpid(), signal.SIGINT)  # its handler runs at once: a stop now

    final, tmp = tmp_path / "export", tmp_path / "new"
    for folder, body in ((final, "old"), (tmp, "new")):
        folder.mkdir()
        (folder / "saved_model.pb").write_text(body)
    monkeypatch.setattr(os, "replace", stopped_after)
    with pytest.raises(KeyboardInterrupt):
        fileio.replace_dir(tmp, final)
    assert (final / "saved_model.pb").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
    # A candidate written again over its folder: the same swap.
    monkeypatch.setattr(os, "replace", real)
    record = {"trial": "t-0000", "status": "failed", "error": "first"}
    write_candidate(tmp_path / "candidates", dict(record))
    monkeypatch.setattr(os, "replace", stopped_after)
    with pytest.raises(KeyboardInterrupt):
        write_candidate(tmp_path / "candidates", {**record, "error": "second"})
    monkeypatch.setattr(os, "replace", real)
    assert read_candidate(tmp_path / "candidates", "t-0000").record["error"] == "second"
    assert sorted(p.name for p in (tmp_path / "candidates").iterdir()) == ["t-0000"]


def test_a_stop_during_the_tflite_step_leaves_no_earlier_model_beside_the_new_savedmodel(
        tmp_path):
    """`export --format tflite` puts the new SavedModel at OUT, then converts it to TFLite
    (seconds; minutes for a big ensemble) and swaps OUT-tflite/. Only an error in that step
    removed the earlier OUT-tflite/ (converted from the SavedModel just replaced): a Ctrl-C,
    SIGTERM or kill during it left the earlier model there, its hubensemble.json saying it
    was checked, beside the new SavedModel (seen: `kill -TERM` of `export --run R --out
    served/1 --format tflite` mid-conversion). It is removed before the conversion now, in one
    rename to a temp name first. The stop here: the check images' read, in process."""
    from hubensemble.export.tflite import write_tflite
    from hubensemble.formats import EXPORT_FORMAT, TFLITE_METADATA, TFLITE_MODEL

    out = tmp_path / "served-tflite"
    out.mkdir()
    (out / TFLITE_MODEL).write_bytes(b"the replaced SavedModel's")
    (out / TFLITE_METADATA).write_text(json.dumps({"format": EXPORT_FORMAT + "-tflite"}))

    class Stopped:
        def __array__(self, *args, **kwargs):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_tflite([], ["a", "b"], out, input_hw=(8, 8), check_images=Stopped(),
                     reference=None)
    assert sorted(os.listdir(tmp_path)) == []


def test_a_stop_between_the_two_renames_of_a_module_write_leaves_the_new_module(
        tmp_path, monkeypatch):
    """`hub.write_hub_module` (the zoo's modules, a user's own) replaced a folder with two
    renames of its own, as `fileio.replace_dir` did before it held stops: a Ctrl-C or SIGTERM
    right after the first left no module at the path (the new one deleted by its clean-up,
    the old one under a temp name). It swaps by `replace_dir` now: the stop waits until the
    new module is in place. One tiny module written (0.1 s), the stop sent in process."""
    from conftest import make_tiny_model
    from hubensemble.hub.writer import METADATA_FILE, write_hub_module

    real = os.replace

    def stopped_after(a, b):
        real(a, b)
        if os.path.basename(b).endswith(fileio.OLD):  # the old folder just moved aside
            os.kill(os.getpid(), signal.SIGINT)  # its handler runs at once: a stop now

    path = tmp_path / "mod"
    path.mkdir()
    (path / "saved_model.pb").write_text("old")
    monkeypatch.setattr(os, "replace", stopped_after)
    with pytest.raises(KeyboardInterrupt):
        write_hub_module(make_tiny_model(width=4), str(path), metadata={"v": 2})
    monkeypatch.setattr(os, "replace", real)
    assert json.loads((path / METADATA_FILE).read_text()) == {"v": 2}
    assert (path / "saved_model.pb").read_bytes() != b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mod"]


def test_a_stop_while_fit_moves_an_export_aside_moves_it_with_its_tflite_model(
        tmp_path, monkeypatch):
    """fit moves an export another command wrote into its folder aside
    (`exportfolder.keep_replaced_export`): the export, then its TFLite model OUT-tflite/,
    then run.json's record of it. A Ctrl-C or SIGTERM right after the first rename left the
    TFLite model at OUT-tflite/, apart from its export, for the next export stage to remove
    as an earlier export's, and run.json naming an OUT that no longer held it. The three move
    as one step for a stop now (`errors.held_stops`). Files only, the stop sent in process."""
    from hubensemble.exportfolder import keep_replaced_export
    from hubensemble.formats import TFLITE_METADATA
    from hubensemble.rundir import Run

    run = Run(tmp_path / "run")
    export, created = run.path / "export", "2026-12-04T15:40:01"
    os.makedirs(export / "assets")
    (export / "saved_model.pb").write_bytes(b"pb")
    fileio.atomic_write_json(export / "assets" / "hubensemble.json", {
        "format": "hubensemble-export", "created": created, "members": [{"trial": "t0"}]})
    os.makedirs(f"{export}-tflite")
    (run.path / "export-tflite" / "model.tflite").write_bytes(b"tfl")
    fileio.atomic_write_json(run.path / "export-tflite" / TFLITE_METADATA, {
        "format": "hubensemble-export-tflite", "created": created})
    run.update(data={"args": {"spec": "sklearn:digits"}}, export=run.export_record(export))
    real, kept = os.rename, run.path / "export-replaced-20261204T154001"

    def stopped_after(a, b):
        real(a, b)
        if os.fspath(b) == str(kept.resolve()):  # the export just moved, its TFLite not yet
            os.kill(os.getpid(), signal.SIGINT)  # its handler runs at once: a stop now

    monkeypatch.setattr(os, "rename", stopped_after)
    with pytest.raises(KeyboardInterrupt):
        keep_replaced_export(run, export)
    monkeypatch.setattr(os, "rename", real)
    assert sorted(os.listdir(run.path)) == [kept.name, f"{kept.name}-tflite", "run.json",
                                            "run.json.lock"]
    assert (run.path / f"{kept.name}-tflite" / "model.tflite").read_bytes() == b"tfl"
    assert run.exported_to() == str(kept.resolve())
    # The TFLite model cannot be moved (a full disk, a folder a user holds open): the export
    # is put back, not left apart from it, and the error raised.
    os.rename(kept, export)
    os.rename(f"{kept}-tflite", f"{export}-tflite")

    def refused(a, b):
        if os.fspath(a).endswith("-tflite"):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(a))
        real(a, b)

    monkeypatch.setattr(os, "rename", refused)
    with pytest.raises(PermissionError):
        keep_replaced_export(run, export)
    monkeypatch.setattr(os, "rename", real)
    assert sorted(os.listdir(run.path)) == ["export", "export-tflite", "run.json",
                                            "run.json.lock"]


def test_a_stage_reused_after_an_earlier_stop_says_earlier_runs_not_a_stop_of_this_one():
    """After a resumed run, the next fit's summary said "export 48.4 s (13.3 s of it before it
    stopped) (earlier run, reused)": a stop to read as this run's, where this run
    spent nothing on the stage and the seconds were those of two earlier runs, the one that
    stopped and the one that finished. A stage this run finished after a stop keeps its
    words; the last run's seconds leave out both. The words of run.json records, no run."""
    from hubensemble.report.write import stage_time_line

    line = stage_time_line({
        "export": {"seconds": 48.4, "interrupted_seconds": 13.3, "reused": True},
        "rank": {"seconds": 12.5, "reused": True},
        "tune": {"seconds": 12.0, "interrupted_seconds": 5.1}, "report": 0.8})
    assert line == ("time per stage: rank 12.5 s (earlier run, reused), tune 12.0 s (5.1 s of "
                    "it in earlier runs that stopped in it), export 48.4 s (earlier runs, "
                    "reused), report 0.8 s; "
                    "total 1 min 13.7 s: 7.7 s this command's, 5.1 s earlier runs' that "
                    "stopped in tune (their unfinished work included), 1 min 00.9 s reused "
                    "from earlier runs; report.md's table was written during the report "
                    "stage, before its 0.8 s were known"), line
    assert "stopped" not in stage_time_line({"export": {
        "seconds": 48.4, "interrupted_seconds": 13.3, "reused": True}})


def test_a_lock_file_that_cannot_be_made_is_said_at_once_for_every_caller(tmp_path):
    """filelock reads a lock file it cannot create (ENOENT under /proc, a read-only or
    unwritable folder) as a lock another process holds: `zoo build --out /proc/z` waited its
    3,600 s and `export --out /proc/e` said another hubensemble command was writing there.
    file_lock, the one lock owner, says "cannot create the lock file X: <reason>" at once,
    an OSError (callers that go on without a lock they cannot write still do), for its
    callers too: owned_lock (the run's and export folder's locks) and the zoo's build lock.
    A path under a file bites as root too. Fails before: a TimeoutError ("another
    hubensemble process holds it") or the wait."""
    from hubensemble.exportfolder import folder_lock
    from hubensemble.zoo.builder import build_lock

    blocked = tmp_path / "a-file"
    blocked.write_text("")
    places = [(blocked / "x.lock", f"{blocked} is a file, not a folder", errno.ENOTDIR)]
    if os.path.isdir("/proc/self"):  # the kernel's: no file can be made there, even by root
        places.append((Path("/proc/self/hubensemble-test.lock"),
                       os.strerror(errno.ENOENT), errno.ENOENT))
    shut = tmp_path / "shut"
    shut.mkdir()
    shut.chmod(0o500)
    if not os.access(shut, os.W_OK):  # chmod does not bite for root
        places.append((shut / "x.lock", os.strerror(errno.EACCES), errno.EACCES))
    for lock, why, code in places:
        with pytest.raises(OSError) as refused:
            with fileio.file_lock(lock, timeout=3600):
                pass
        assert not isinstance(refused.value, TimeoutError), refused.value
        assert refused.value.errno == code, refused.value
        assert str(refused.value) == f"cannot create the lock file {lock}: {why}", refused.value
    lock, _, _ = places[0]  # every caller: a path under a file
    with pytest.raises(OSError, match=re.escape(f"cannot create the lock file {lock}")):
        with fileio.owned_lock(lock, {"command": "test"}, RuntimeError):
            pass
    folder = lock.parent / "z"
    with pytest.raises(OSError, match=re.escape("cannot create the lock file")) as refused:
        with build_lock(folder, timeout=3600):
            pass
    assert not isinstance(refused.value, TimeoutError), refused.value
    with pytest.raises(OSError, match=re.escape("cannot create the lock file")) as refused:
        with folder_lock(lock.parent / "e", tmp_path / "run", "export", "--out", "out_dir"):
            pass
    shut.chmod(0o700)
    # A lock file that can be made: taken, and kept on disk after release, as before.
    with fileio.file_lock(tmp_path / "ok.lock", timeout=0):
        assert fileio.lock_is_held(tmp_path / "ok.lock")
    assert (tmp_path / "ok.lock").is_file() and not fileio.lock_is_held(tmp_path / "ok.lock")


def test_an_export_folder_locked_or_unlockable_is_refused_before_tensorflow(tmp_path):
    """`export --out E` (and fit's --export E) outside the run, while another process writes
    E or where E's lock file cannot be made (/proc), was refused by exportfolder.folder_lock
    after TensorFlow's import (24 s, 700 MB). Refused before it now, in folder_lock's words
    (the reference: folder_lock itself while the other process holds the lock). Fails
    before: TensorFlow loaded."""
    from hubensemble.errors import RunError
    from hubensemble.exportfolder import folder_lock
    from hubensemble.lockwords import command_line

    from hubensemble.fileio import atomic_write_json
    from hubensemble.rundir import Run

    out, run = tmp_path / "E", tmp_path / "run"
    Run(run).update(created="2026-12-07")  # a run whose ensemble export would export
    atomic_write_json(Run(run).ensemble_json, {"objective": "ce",
                                               "members": [{"trial": "t0", "weight": 1.0}]})
    hold = ("import sys\nfrom hubensemble.exportfolder import folder_lock\n"
            "with folder_lock(sys.argv[1], sys.argv[2], 'fit', '--export', 'export'):\n"
            "    print('held', flush=True)\n    sys.stdin.read()\n")
    holder = subprocess.Popen([sys.executable, "-c", hold, str(out), str(tmp_path / "other")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with command_line(), pytest.raises(RunError) as refused:
            with folder_lock(out, run, "export", "--out", "out_dir"):
                pass
        argvs = [["export", "--run", str(run), "--out", str(out)]]
        if os.path.isdir("/proc/self"):  # the kernel's: it makes no file, even for root
            argvs.append(["export", "--run", str(run), "--out", "/proc/e"])
        from test_cli import each_in_one_process

        found = each_in_one_process(*argvs)
    finally:
        holder.stdin.close()
        holder.wait()
    assert [(code, tensorflow) for code, _, _, tensorflow in found] == [(2, False)] * len(
        argvs), found
    assert found[0][2] == f"hubensemble: error: {refused.value}\n", found[0][2]
    if len(found) > 1:
        assert found[1][2].startswith("hubensemble: error: cannot create the lock "
                                      "file /proc/.e.lock: No such file or directory"), found
    assert not os.path.exists(tmp_path / ".E.lock")  # the holder removed it; none made here


def test_a_lock_file_that_cannot_be_made_says_its_reason_once_with_a_way_on_that_fits(
        tmp_path, capsys):
    """`export --out /proc/e` said "[Errno 13] cannot create the lock file /proc/.e.lock: No
    such file or directory; fix the permissions": EACCES's number beside ENOENT's text, and
    a way on that does not fit a folder where no file can be made. The lock error keeps its
    reason's errno (`fileio.LockFileError`), shows no "[Errno N]", and the command line's
    way on is its errno's (`exits.WAY_ON`): ENOENT a folder that can hold files, EROFS a
    read-only file system, EACCES the permissions. Fails before: errno 13 and "[Errno 13]"
    for /proc, and "fix the permissions" for each."""
    from hubensemble import exits

    places = []
    if os.path.isdir("/proc/self"):  # the kernel's: no file can be made there, even by root
        places.append((Path("/proc/self/x.lock"), errno.ENOENT, "makes no files (as /proc)"))
    if os.path.isdir("/sys") and not os.access("/sys", os.W_OK):
        places.append((Path("/sys/x.lock"), errno.EACCES, "fix the permissions"))
    shut = tmp_path / "shut"
    shut.mkdir(mode=0o500)
    if not os.access(shut, os.W_OK):  # chmod does not bite for root
        places.append((shut / "x.lock", errno.EACCES, "fix the permissions"))
    errors = []
    for lock, code, _ in places:
        with pytest.raises(OSError) as refused:
            with fileio.file_lock(lock, timeout=0):
                pass
        assert refused.value.errno == code and "[Errno" not in str(refused.value), refused.value
        assert fileio.machine_error(refused.value) is refused.value  # one line, no traceback
        errors.append(refused.value)
    # A read-only file system cannot be made here (tests may not mount): its error as made.
    errors.append(fileio.LockFileError(errno.EROFS, f"cannot create the lock file "
                                                    f"{tmp_path}/x.lock: Read-only file system"))
    places.append((None, errno.EROFS, "its file system is mounted read-only: write elsewhere"))
    for error, (_, code, way) in zip(errors, places):
        capsys.readouterr()
        assert exits.stopped_code(argparse.Namespace(), error) == 2
        line = capsys.readouterr().err
        way_on = exits.WAY_ON.get(code, "fix the permissions")
        assert line == (f"hubensemble: error: {error}; {way_on}, then run the same command "
                        "again to resume\n"), line
        assert way in line and line.count(os.strerror(code)) == 1, line
    shut.chmod(0o700)
