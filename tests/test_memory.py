"""A small machine: the memory a process may use (hubensemble.memory, from a fake /proc and
cgroup tree) and a re-run's words after a command was killed (memory.killed_before, said by
rundir.Run.lock)."""

import argparse
import dataclasses
import json
import logging
import os
import shlex
import shutil
import socket
import subprocess
import sys

import pytest

from hubensemble import memory, memoryroom, preflight
from hubensemble.errors import RunError
from hubensemble.hyperrule import PROFILES
from hubensemble.rundir import Run

GIB = 1 << 30
V1_NO_LIMIT = "9223372036854771712"  # what cgroup v1's memory.limit_in_bytes says unlimited


def _tree(tmp_path, cgroup_lines, files, total=8 * GIB):
    proc, cg = tmp_path / "proc", tmp_path / "cg"
    (proc / "self").mkdir(parents=True)
    (proc / "meminfo").write_text(f"MemTotal:       {total // 1024} kB\n"
                                  f"MemAvailable:   {total // 2048} kB\n")
    (proc / "self" / "cgroup").write_text("\n".join(cgroup_lines) + "\n")
    for rel, text in files.items():
        (cg / rel).parent.mkdir(parents=True, exist_ok=True)
        (cg / rel).write_text(text + "\n")
    return str(proc), str(cg)


def test_the_room_is_the_smallest_of_the_machines_memory_and_every_cgroup_limit(tmp_path):
    # cgroup v1 (this machine's kind): the process's own cgroup 4 GiB, its parent unlimited
    proc, cg = _tree(tmp_path / "v1", ["4:memory:/a/b", "0::/"], {
        "memory/a/b/memory.limit_in_bytes": str(4 * GIB),
        "memory/a/memory.limit_in_bytes": V1_NO_LIMIT,
        "memory/memory.limit_in_bytes": V1_NO_LIMIT})
    room = memory.room(proc, cg)
    assert room.limit == 4 * GIB and room.available == 4 * GIB
    assert room.source.endswith("a/b/memory.limit_in_bytes")
    assert room.words().startswith("4.0 GiB (the cgroup limit in ")
    # cgroup v2: "max" is none, a parent's 2 GiB applies; a container's mount, where the
    # host's path is missing, has the limit at its root
    proc, cg = _tree(tmp_path / "v2", ["0::/user.slice/app"], {
        "user.slice/app/memory.max": "max", "user.slice/memory.max": str(2 * GIB)})
    assert memory.room(proc, cg).limit == 2 * GIB
    proc, cg = _tree(tmp_path / "ctr", ["0::/docker/abc"], {"memory.max": str(GIB)})
    assert memory.room(proc, cg).limit == GIB
    # no limit anywhere: the machine's memory
    proc, cg = _tree(tmp_path / "none", ["4:memory:/", "0::/"], {
        "memory/memory.limit_in_bytes": V1_NO_LIMIT}, total=24 * GIB)
    room = memory.room(proc, cg)
    assert room.limit == 24 * GIB and "MemTotal" in room.source
    assert memory.room(str(tmp_path / "nothing"), str(tmp_path / "nothing")) is None


def _gone_pid():
    p = subprocess.Popen([shutil.which("true") or sys.executable])  # gone once waited for
    p.wait()
    return p.pid


def _holder(run, pid, host=None):
    run.mkdir(exist_ok=True)
    (run / ".fit.lock.holder").write_text(json.dumps({
        "command": "fit", "host": host or socket.gethostname(), "pid": pid,
        "since": "2026-12-06T00:00:01"}))  # local time, as log.txt's


def test_a_rerun_after_a_killed_command_says_it_ended_without_a_word(tmp_path, caplog):
    run = tmp_path / "run"
    _holder(run, _gone_pid())  # SIGKILL leaves the lock's record; every other ending removes it
    (run / "log.txt").write_text(  # an earlier fit, killed in export, then this one
        "2026-12-05 23:00:06,048 INFO hubensemble.pipeline: export: starting\n"
        "2026-12-06 00:00:06,048 INFO hubensemble.pipeline: rank: starting\n"
        "2026-12-06 00:00:37,315 INFO hubensemble.pipeline: rank: done in 31.3 s\n"
        "2026-12-06 00:00:37,316 INFO hubensemble.pipeline: tune: starting\n"
        "2026-12-06 00:00:39,000 INFO hubensemble.tune: trial 1 …\n")
    words = memory.killed_before(run)
    assert "the last fit on " in words and "ended without a word in its tune stage" in words
    assert "OOM killer" in words and "dmesg" in words
    # a standalone command logs no stage: its own last line, not the earlier fit's export
    (run / "log.txt").write_text(
        "2026-12-05 23:00:06,048 INFO hubensemble.pipeline: export: starting\n"
        "2026-12-06 00:00:32,473 INFO hubensemble.cli: Task 'pbc' from npz:/d.npz\n")
    assert ("ended without a word after its last line in RUN/log.txt (2026-12-06 00:00:32: "
            "'Task 'pbc' from npz:/d.npz')") in memory.killed_before(run)
    # its own last record, not TensorFlow's C++ start-up notice after it (reached the file
    # through stderr; on a CPU machine it read as a CUDA failure), nor a traceback's line
    with open(run / "log.txt", "a", encoding="utf-8") as f:
        f.write("2026-12-06 00:00:33,001 INFO hubensemble.tune.sweep: trial 3 of 8: starting\n"
                "2026-12-06 00:00:33,002 WARNING absl: something of absl's\n"
                "E0000 00:00:1765000000.1 12 cuda_platform.cc:52] failed call to cuInit: "
                "INTERNAL: CUDA error\n  File \"x.py\", line 3\n")
    words = memory.killed_before(run)
    assert ("after its last line in RUN/log.txt (2026-12-06 00:00:33: 'trial 3 of 8: "
            "starting')") in words and "cuda" not in words.lower(), words
    # every writer says it as it takes the run's lock, before its own record replaces the
    # killed one's (Run.lock: the command line's, fit()'s fit_log, run_tune's, export's, …)
    caplog.set_level(logging.WARNING)
    for take in (lambda: Run(run).lock("export"), lambda: Run(run).fit_log()):
        _holder(run, _gone_pid())
        caplog.clear()
        with take():
            pass
        said = [r.getMessage() for r in caplog.records if "without a word" in r.getMessage()]
        assert len(said) == 1 and said[0].startswith("the last fit on "), said
    caplog.clear()
    with Run(run).lock("export"):  # its own record was removed as it ended: nothing
        pass
    assert not [r for r in caplog.records if "without a word" in r.getMessage()]
    # a chief/worker sweep's process holds its own lock: a killed one's record is its own
    (run / ".sweep-tuner0.lock").write_text("")
    (run / ".sweep-tuner0.lock.holder").write_text(json.dumps({
        "command": "tune", "tuner_id": "tuner0", "host": socket.gethostname(),
        "pid": _gone_pid(), "since": "2026-12-06T00:00:01"}))
    with Run(run).lock("tune", "tuner0", {"command": "tune", "sweep": "hyper", "oracle": None}):
        pass
    said = [r.getMessage() for r in caplog.records if "without a word" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("the last tune --tuner-id tuner0 on "), said
    # The sweep's processes share log.txt, whose lines name none: a killed chief was quoted
    # with its worker's last line ("waiting for the chief at …", a new-user check). None is.
    with open(run / "log.txt", "a", encoding="utf-8") as f:
        f.write("2026-12-06 00:00:40,000 INFO hubensemble.tune.sweep: waiting for the chief "
                "at 127.0.0.1:18406\n")
    (run / ".sweep-chief.lock").write_text("")
    (run / ".sweep-chief.lock.holder").write_text(json.dumps({
        "command": "tune", "tuner_id": "chief", "host": socket.gethostname(),
        "pid": _gone_pid(), "since": "2026-12-06T00:00:01"}))
    words = memory.killed_before(run, str(run / ".sweep-chief.lock"))
    assert words.startswith("the last tune --tuner-id chief on ") and (
        "ended without a word: it was likely killed") in words, words
    assert "waiting for the chief" not in words, words
    # a live holder (this process), another host's record, or none: nothing
    _holder(run, __import__("os").getpid())
    assert memory.killed_before(run) is None
    _holder(run, _gone_pid(), host="another-host")
    assert memory.killed_before(run) is None
    (run / ".fit.lock.holder").unlink()
    assert memory.killed_before(run) is None


def test_a_batch_too_large_for_the_memory_is_said_before_with_one_that_fits():
    mobilenet = argparse.Namespace(name="mobilenet", input_size=(224, 224))
    small = argparse.Namespace(name="small", input_size=None)
    # measured: 2.47 GB at --batch-size 128, 224 px (killed under a 2 GiB cgroup)
    words = preflight.memory_note([mobilenet, small], 128,
                                  room=memory.Room(2 * GIB, "the cgroup limit in X"))
    assert words.startswith("this process may use 2.0 GiB (the cgroup limit in X), less ")
    assert "batches of 128 (--batch-size), which needs about 2.3 GiB" in words
    assert 64 <= memory.fitting_batch(2 * GIB, [(224, 224)]) < 128
    assert "pass --batch-size 64 (about 1.6 GiB)" in words and "OOM killer" in words
    assert "tune" not in words  # rank alone
    # fit: tune's batch of 32 at 224 px (2.61 GB measured, --profile cpu) and export's reload
    # check do not fit; quick's (killed at export under 2 GiB) neither; both do in 4 GiB
    words = preflight.memory_note([mobilenet], 64, room=memory.Room(2 * GIB, "X"),
                                  tunes=True)
    assert "--batch-size" not in words
    # ... and --train-batch-size lowers it (no flag did): the largest power of two that fits
    assert "in batches of 32 (--profile cpu's) and export then loads" in words
    assert "about 2.8 GiB in all" in words
    fits = memory.fitting_train_batch(2 * GIB, [(224, 224)], extra=memory.EXPORT_EXTRA)
    assert 4 <= fits < 8 and memory.training_need([(224, 224)], batch=4)[0] + (
        memory.EXPORT_EXTRA) <= 0.9 * 2 * GIB < memory.training_need(
            [(224, 224)], batch=fits + 1)[0] + memory.EXPORT_EXTRA
    assert "pass --train-batch-size 4 (about 1.7 GiB; the learning rate scales with it)" in words
    words = preflight.memory_note([mobilenet], 64, room=memory.Room(2 * GIB, "X"),
                                  tunes=True, train_batch=4)
    assert words is None  # with it, fit fits
    words = preflight.memory_note([mobilenet], 64, room=memory.Room(2 * GIB, "X"),
                                  tunes=True, train_batch=16)
    assert "in batches of 16 (--train-batch-size)" in words and "pass --train-batch-size 4" in words
    assert "about 2.2 GiB in all" in preflight.memory_note(
        [mobilenet], 64, "", "quick", tunes=True, room=memory.Room(2 * GIB, "X"))
    assert preflight.memory_note([mobilenet], 64, tunes=True,
                                 room=memory.Room(4 * GIB, "X")) is None
    # MemAvailable counts when it is less (others use the machine)
    words = preflight.memory_note([mobilenet], 64, room=memory.Room(8 * GIB, "M", GIB))
    assert "1.0 GiB available now (MemAvailable) of 8.0 GiB (M)" in words
    assert preflight.memory_note([mobilenet], 64, room=memory.Room(8 * GIB, "M"),
                                 tunes=True) is None
    # --modules leaves the large module out: the demo's 64 px fit in 1 GiB
    assert preflight.memory_note([mobilenet, small], 64, ["small"], tunes=True,
                                 room=memory.Room(GIB, "M")) is None
    assert "free memory" in preflight.memory_note([mobilenet], 64,
                                                  room=memory.Room(GIB // 2, "M"))


def _run_of(tmp_path, profile=None):
    """A run folder of one MobileNet V1 module (224 px) ranked, tuned and ensembled, as far
    as the memory rules read it (run.json, ranking.json, ensemble.json), and its export's
    metadata."""
    run = tmp_path / "run"
    (run / "export" / "assets").mkdir(parents=True)
    mobilenet = {"name": "mobilenet", "input_size": [224, 224]}
    small = {"name": "small", "input_size": None}
    meta = {"modules": {"mobilenet": mobilenet, "small": small}}
    if profile:
        meta["tune"] = {"profile": profile}
    (run / "run.json").write_text(json.dumps(meta))
    (run / "ranking.json").write_text(json.dumps({"modules": [], "profile": "cpu",
                                                  "selected": ["mobilenet", "small"]}))
    (run / "ensemble.json").write_text(json.dumps({"members": [{"module": "mobilenet"}]}))
    (run / "export" / "assets" / "hubensemble.json").write_text(json.dumps(
        {"members": [{"trial": "t", "input_size": [224, 224]}]}))
    return run


def test_images_held_beside_rank_s_embedding_are_said_once_the_data_is_read(
        tmp_path, caplog, monkeypatch, tiny_module):
    """The note before a command reads its data counts rank's embedding alone: a folder of
    photos (4.2 MB each as held) outgrew the machine during rank without a word. Once the
    task is read, rank says it when the embedding fits alone but not beside the images
    (their bytes as numpy counts them, a folder's splits, views of one array, once)."""
    import numpy as np

    from hubensemble.catalogue import ModuleSpec
    from hubensemble.data import Split, Task
    from hubensemble.rank import run_rank

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (60, 32, 32, 3), dtype=np.uint8)
    y = np.arange(60) % 3
    task = Task(name="t", source="s", class_names=["a", "b", "c"],
                train=Split(x[:40], y[:40]), val=Split(x[40:], y[40:]))
    assert memory.held_bytes(task) == x.nbytes  # two views of one array
    spec = ModuleSpec(name="tiny", handle=tiny_module)
    need = memory.embedding_need(8, [None], "quick")[0]
    tight = memory.Room(int(need + x.nbytes) - 1, "the cgroup limit in X")
    words = memory.data_note(task, [spec], 8, "quick", room=tight)
    assert words.startswith(f"the data's 60 images take {memory.gib(x.nbytes)} in memory as "
                            f"decoded, and rank's embedding needs about {memory.gib(need)} "
                            f"beside them: about {memory.gib(need + x.nbytes)} in all, more "
                            f"than this process may use, {tight.words()}. The way on: ")
    enough = memory.Room(int(need + x.nbytes), "X")
    assert memory.data_note(task, [spec], 8, "quick", room=enough) is None
    # The embedding alone too large: the note before the data was read said it.
    assert memory.data_note(task, [spec], 8, "quick", room=memory.Room(int(need) - 1,
                                                                       "X")) is None
    monkeypatch.setattr(memory, "room", lambda *a, **k: tight)
    with caplog.at_level(logging.WARNING):
        run_rank(str(tmp_path / "run"), [spec], task, profile="quick", batch_size=8,
                 use_cache=False, progress=False)
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [m for m in said if m.startswith("the data's 60 images take")], said


def test_every_stage_of_its_own_says_the_memory_it_needs(tmp_path, caplog, monkeypatch):
    # tune, export and evaluate on their own said nothing (only fit, rank and demo did): a
    # standalone tune of a 224 px module under 2 GiB was killed at its first step without a word
    room = memory.Room(2 * GIB, "the cgroup limit in X")
    run = _run_of(tmp_path)
    words = memory.stage_memory_note("tune", run, {}, room=room)
    assert "tune fine-tunes the modules at 224x224 px in batches of 32 (--profile cpu's" in words
    assert "about 2.4 GiB:" in words and "export" not in words  # tune alone: 2.61 GB measured
    assert memory.stage_memory_note("tune", run, {"modules": ["small"]}, room=room) is None
    assert "pass --train-batch-size 16 (about 1.8 GiB" in words  # tune alone: no export's
    assert memory.stage_memory_note("tune", run, {"train_batch_size": 16}, room=room) is None
    assert "in batches of 64 (--train-batch-size), about 3.7 GiB" in memory.stage_memory_note(
        "tune", run, {"train_batch_size": 64, "profile": "cpu"}, room=room)
    quick = _run_of(tmp_path / "q", PROFILES["quick"].to_json())  # as tune records it
    assert "in batches of 16 (--profile quick's" in memory.stage_memory_note(
        "tune", quick, {}, room=memory.Room(GIB, "X"))  # the run's recorded profile
    words = memory.stage_memory_note("export", run, {"retrain_full": True}, room=room)
    assert words and "export --retrain-full retrains the members at 224x224 px" in words
    assert "about 2.8 GiB in all" in words and "--modules" not in words
    # export --retrain-full takes --train-batch-size: its note names the one that fits, and
    # counts the one given (export's reload check after it, as fit's tune+export)
    assert "pass --train-batch-size 4 (about 1.7 GiB" in words
    assert memory.stage_memory_note("export", run, {"retrain_full": True,
                                                    "train_batch_size": 4}, room=room) is None
    assert ("in batches of 16 (--train-batch-size) and export then loads the ensemble it "
            "wrote back beside it, about 2.2 GiB in all") in memory.stage_memory_note(
        "export", run, {"retrain_full": True, "train_batch_size": 16}, room=room)
    # distill trains its student as tune trains (its input size, its batch), beside the
    # teacher export (fit's reload check's measure): it said nothing, and its student's
    # training is tune's (a 224 px student under 2 GiB)
    words = memory.stage_memory_note("distill", run, {}, room=room)
    assert ("distill trains the student at 224x224 px in batches of 32 (--profile cpu's) "
            "beside the teacher export it loads and runs, at least about 2.8 GiB in all: pass "
            "--train-batch-size 4 (about 1.7 GiB") in words and "--student" in words
    assert memory.stage_memory_note("distill", run, {"train_batch_size": 4}, room=room) is None
    assert memory.stage_memory_note("distill", run, {"student": "small"}, room=room) is None
    assert "224x224 px" in memory.stage_memory_note(  # it may pick any module: the largest
        "distill", run, {"max_gflops": 1.0}, room=room)
    assert "rebuilds the 1 member (of " in memory.stage_memory_note(
        "export", run, {}, room=memory.Room(GIB, "X"))
    assert memory.stage_memory_note("export", run, {}, room=room) is None  # about 1.5 GiB
    words = memory.stage_memory_note("evaluate", run / "export", {"batch_size": 128},
                                     room=room)
    assert ("evaluate runs the export on images of 224x224 px in batches of 128 "
            "(--batch-size)") in words and "pass --batch-size 64" in words
    assert memory.stage_memory_note("tune", tmp_path / "nothing", {}, room=room) is None
    assert memory.stage_memory_note(  # no export's members: no size to say a need of
        "evaluate", tmp_path / "nothing", {"batch_size": 128}, room=memory.Room(GIB // 4, "X")
    ) is None
    # said once per command: by the command line before TensorFlow, or (from Python) by the
    # stage function as it takes the run (runwriter.writes_run: run_tune, export_ensemble, …)
    from hubensemble.runwriter import writes_run

    monkeypatch.setattr(memory, "room", lambda: room)
    caplog.set_level(logging.WARNING)
    stage = writes_run("tune")(lambda run_dir, profile=None, modules=None: None)
    stage(str(run))  # from Python
    preflight.check_inputs(argparse.Namespace(command="tune", run=str(run)))
    stage(str(run))  # the command line's own call of the stage
    said = [r.getMessage() for r in caplog.records if "less than it needs" in r.getMessage()]
    assert len(said) == 1 and "tune fine-tunes" in said[0]
    caplog.clear()
    with pytest.raises(RunError):  # (no data: the stage's refusal, after the words)
        preflight.check_run(run, "tune")  # the command line says it once the run's log is open
    assert [r for r in caplog.records if "tune fine-tunes" in r.getMessage()]
    # distill's too, before TensorFlow (said once the run's log is open; not again by it)
    preflight.check_inputs(argparse.Namespace(command="distill", run=str(run)))
    assert memory.memory_key("distill", str(run)) in preflight._MEMORY_SAID
    assert any("distill trains the student" in n
               for n in preflight._NOTES[os.path.realpath(run)]), preflight._NOTES
    # evaluate takes no run lock: evaluate_model says it itself, once with the command line
    from hubensemble.evaluate import evaluate_model

    caplog.clear()
    for cli in (False, True):
        if cli:
            preflight.check_inputs(argparse.Namespace(
                command="evaluate", model=str(run / "export"), out=None, data=None,
                eval_batch_size=128))
        with pytest.raises(TypeError):  # a data spec, not a Task: refused after the words
            evaluate_model(str(run / "export"), "sklearn:digits", batch_size=128)
    said = [r.getMessage() for r in caplog.records if "less than it needs" in r.getMessage()]
    assert len(said) == 2 and all("pass --batch-size 64" in w for w in said)


def test_fit_from_python_says_the_memory_it_needs_once(tmp_path, caplog, monkeypatch):
    # fit() from Python said nothing (only the command line's check_inputs did): a notebook's
    # fit of 224 px modules under 2 GiB was killed without a word. Said once the run's log is
    # open (RUN/log.txt; a refused fit's folder is removed again), before the data loads
    # (here refused as it loads: a class of unreadable files), and not again when the command
    # line has said it for that folder.
    from PIL import Image

    from hubensemble.errors import DataError
    from hubensemble.pipeline import fit

    (tmp_path / "c.yaml").write_text(
        "modules:\n  - name: big\n    handle: /nowhere/big\n    input_size: [224, 224]\n")
    for name in ("ok", "bad"):
        (tmp_path / "d" / name).mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (8, 8), (i, 0, 0)).save(tmp_path / "d" / "ok" / f"{i}.png")
        (tmp_path / "d" / "bad" / f"{i}.png").write_bytes(b"not an image")
    monkeypatch.setattr(memory, "room", lambda: memory.Room(GIB // 2, "the cgroup limit in X"))
    caplog.set_level(logging.WARNING)
    for cli in (False, True):
        out = tmp_path / f"run{cli}"
        if cli:  # the command line's note, before TensorFlow: fit's own is then not said
            memory._MEMORY_SAID.add(memory.memory_key("fit", str(out)))
        with pytest.raises(DataError):
            fit(str(tmp_path / "c.yaml"), f"folder:{tmp_path / 'd'}", str(out), progress=False)
        said = [r for r in caplog.records if "less than it needs" in r.getMessage()]
        assert len(said) == 1 and "the cgroup limit in X" in said[0].getMessage(), said
        assert "tune fine-tunes the modules at 224x224 px" in said[0].getMessage()
    caplog.clear()  # and at the training batch given (its need, not the profile's)
    with pytest.raises(DataError):
        fit(str(tmp_path / "c.yaml"), f"folder:{tmp_path / 'd'}", str(tmp_path / "run4"),
            progress=False, train_batch_size=4)
    said = [r.getMessage() for r in caplog.records if "less than it needs" in r.getMessage()]
    assert len(said) == 1 and "in batches of 4 (--train-batch-size)" in said[0], said


def test_export_counts_each_member_it_times(tmp_path):
    # A 5-member export of 224 px real modules peaked at 3.42 GB (1 member: 1.82, 2: 2.58),
    # timing the whole ensemble at batch 64; the rule counted one member (1.79 GB), so a
    # 3 GiB machine was not warned of it (measured with ../shared/realmods)
    run = _run_of(tmp_path)
    room = memory.Room(3 * GIB, "the cgroup limit in X")
    assert memory.stage_memory_note("export", run, {}, room=room) is None  # 1 member
    (run / "ensemble.json").write_text(json.dumps({"members": [{"module": "mobilenet"}] * 5}))
    words = memory.stage_memory_note("export", run, {}, room=room)
    assert words and "export rebuilds the 5 members (of mobilenet x5)," in words
    assert "times it at batch 64, at least about 3.2 GiB" in words
    # and the way on: fewer members, each 0.40 GB at 224 px (a new-user check: it said
    # "free memory, or use a machine with more" alone, naming neither members nor flag)
    assert ("keep at most 4 members (--max-members 4: `hubensemble ensemble --run "
            f"{shlex.quote(str(run.resolve()))} --max-members 4` then export again, or fit "
            "with it; about 2.8 GiB)" in words), words
    assert "The way on: free memory" in words, words
    tiny = memory.Room(GIB, "the cgroup limit in X")  # not even one member fits: no count
    assert "--max-members" not in memory.stage_memory_note("export", run, {}, room=tiny)
    assert memory.members_extra([(224, 224)] * 5) == 4 * memory.EXPORT_PER_MEMBER_PIXEL * 50176
    assert memory.members_extra([None, None], "quick") == memory.EXPORT_PER_MEMBER_PIXEL * 32 * 32
    words = memory.stage_memory_note("export", run, {"retrain_full": True,
                                                     "train_batch_size": 4},
                                     room=room)  # and the export after the retraining
    assert words and "export --retrain-full retrains the members" in words


def test_evaluate_counts_each_member_it_runs(tmp_path):
    # evaluate of that 5-member export (--batch-size 64: serve_members runs every member on
    # each batch) peaked at 2.16 GB (1 member: 1.55); the rule said 1.71 GB for both, so a
    # 2 GiB machine was not warned of it
    run = _run_of(tmp_path)
    room = memory.Room(2 * GIB, "the cgroup limit in X")
    assert memory.stage_memory_note("evaluate", run / "export", {}, room=room) is None
    (run / "export" / "assets" / "hubensemble.json").write_text(json.dumps(
        {"members": [{"trial": f"t{i}", "module": "mobilenet", "input_size": [224, 224]}
                     for i in range(5)]}))
    words = memory.stage_memory_note("evaluate", run / "export", {}, room=room)
    assert words and "in batches of 64 (--batch-size), which needs about 2.2 GiB" in words
    # its members named, as export's note names them (a new-user check: "evaluate runs the
    # export on images …" said nothing of the 5 members that made the need)
    assert ("evaluate runs the export's 5 members (of mobilenet x5), each on every batch, on "
            "images of 224x224 px") in words, words
    assert "pass --batch-size 32 (about 1.5 GiB)" in words


def test_ulimit_v_is_room_and_a_need_well_above_a_hard_limit_is_refused_before_tensorflow(
        tmp_path):
    """`ulimit -v` (RLIMIT_AS) was not read: a rank under `ulimit -v 3000000` that needed
    more died of std::bad_alloc, an abort no handler sees. memory.room takes it, less the
    address space TensorFlow reserves beyond what it uses (AS_RESERVED, measured), and the
    command line refuses a need above REFUSE_FACTOR x a hard limit's room before TensorFlow
    loads, naming the limit, the figures and --batch-size; below that it only warns."""
    room = GIB + GIB // 4
    rlimit = int(memory.AS_RESERVED) + room
    probe = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, "
             f"({rlimit}, resource.getrlimit(resource.RLIMIT_AS)[1])); ")
    checked = subprocess.run([sys.executable, "-c", probe + (
        "from hubensemble import memory; r = memory.room(); "
        "print(r.limit, r.hard, 'ulimit -v' in r.source, 'tensorflow' in sys.modules)")],
        capture_output=True, text=True, timeout=120)
    assert checked.stdout.split() == [str(room), "True", "True", "False"], checked
    cat = tmp_path / "c.yaml"
    cat.write_text("modules:\n  - {name: big, handle: /nowhere/big, input_size: [224, 224]}\n")
    run = subprocess.run([sys.executable, "-c", probe + (
        "sys.argv[0] = 'hubensemble'; from hubensemble.__main__ import run; run()"),
        "rank", "--catalogue", str(cat), "--data", "sklearn:digits", "--batch-size", "128",
        "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=300,
        env=dict(os.environ, HOME=str(tmp_path)))
    need = memory.embedding_need(128, [(224, 224)])[0]
    assert run.returncode == 2, run
    said = " ".join(run.stderr.split())
    assert "refused before loading TensorFlow" in said and "ulimit -v" in said, said
    assert f"about {memory.gib(need)}" in said and "pass --batch-size 16 " in said, said
    assert f"{need / room:.1f}x" in said and "raise the shell's `ulimit -v`" in said, said
    assert "Traceback" not in run.stderr and not (tmp_path / "run" / "ranking.json").exists()
    # under `ulimit -v` any need above the room is refused (ADDRESS_REFUSE_FACTOR), a cgroup
    # limit's only above REFUSE_FACTOR x its room
    big = argparse.Namespace(name="big", input_size=(224, 224))
    soft = memory.room(tmp_path / "none", tmp_path / "none",
                       address=int(memory.AS_RESERVED + need / 1.2))
    note = memory.memory_note([big], 128, room=soft)
    assert soft.hard and note and memory.refusal(note)
    cgroup = memory.Room(int(need / 1.2), "the cgroup limit in X", hard=True)
    assert memory.refusal(memory.memory_note([big], 128, room=cgroup)) is None
    hard = memory.room(tmp_path / "none", tmp_path / "none",
                       address=int(memory.AS_RESERVED + need / 1.3))
    assert memory.refusal(memory.memory_note([big], 128, room=hard))
    # the machine's memory (MemTotal, swap may hold the rest) is never refused, only said
    machine = memory.Room(int(need / 3), "the machine's memory")
    note = memory.memory_note([big], 128, room=machine)
    assert note and memory.refusal(note) is None


def test_under_ulimit_v_the_way_on_is_the_limit_and_the_ratio_is_to_the_room_left(tmp_path):
    """Under `ulimit -v` the refusals and warnings said "free memory, use a machine with more"
    and "killed by Linux's OOM killer … the shell says Killed", which is not what happens (an
    allocation fails: an abort), and "{ratio}x the limit" of a ratio to the room left under
    it. The room's way on is the limit (or the batch that fits); the machine's room keeps its
    words."""
    big = argparse.Namespace(name="big", input_size=(224, 224))
    need = memory.embedding_need(4096, [(224, 224)])[0]
    under = memory.room(tmp_path / "none", tmp_path / "none",
                        address=int(memory.AS_RESERVED + 3 * GIB))
    for note in (memory.memory_note([big], 4096, room=under),  # rank: 128 fits
                 memory.memory_note([big], 16, room=under, tunes=True, train_batch=4096)):
        said = memory.refusal(note)
        assert "raise the shell's `ulimit -v` (`ulimit -v unlimited`)" in said, said
        for words in ("free memory", "machine with more", "OOM killer", "Killed", "x the limit"):
            assert words not in said, (words, said)
        assert "as it would abort" in said and "aborts where an allocation fails" in said
        assert f"{note.ratio:.1f}x the room left under the limit" in said
    said = memory.refusal(memory.memory_note([big], 4096, room=under))
    assert f"{need / (3 * GIB):.1f}x the room left" in said
    assert "pass --batch-size 128 (about 2.3 GiB)" in said
    assert "The way on: raise the shell's `ulimit -v`" in said, said
    # The machine's memory and a cgroup's limit: their words as before.
    cgroup = memory.Room(3 * GIB, "the cgroup limit in x", hard=True)
    said = memory.refusal(memory.memory_note([big], 16, room=cgroup, tunes=True,
                                             train_batch=4096))
    assert "The way on: free memory, or use a machine with more" in said and "OOM killer" in said
    assert "x the limit;" in said and "ulimit" not in said
    # Fine-tuning that ran out of memory under the limit (its own room(), in a process
    # started under it, TensorFlow not loaded).
    probe = ("import resource; resource.setrlimit(resource.RLIMIT_AS, "
             f"({int(memory.AS_RESERVED + GIB)}, resource.getrlimit(resource.RLIMIT_AS)[1])); "
             "from hubensemble import memory; "
             "print(memory.training_out_of_memory(4096, (224, 224), 'cpu'))")
    way = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=120).stdout
    assert "pass --train-batch-size" in way and "raise the shell's `ulimit -v`" in way, way
    assert "free memory" not in way


def test_memory_words_count_members_and_images_in_the_singular_for_one(tmp_path):
    """A count of 1 says "member" and "image" (`text.counted`), not "member(s)": the export
    note of 2 members where 1 fits, and the note of images held beside rank's embedding."""
    import numpy as np

    from hubensemble.catalogue import ModuleSpec
    from hubensemble.data import Split, Task

    run = _run_of(tmp_path)
    (run / "ensemble.json").write_text(json.dumps({"members": [{"module": "mobilenet"}] * 2}))
    one = memory._export_need([(224, 224)], "cpu")  # what 1 member needs, the rule's
    words = memory.stage_memory_note("export", run, {}, room=memory.Room(int(one), "X"))
    assert "export rebuilds the 2 members (of mobilenet x2)," in words, words
    assert "keep at most 1 member (--max-members 1: `hubensemble ensemble" in words, words
    assert "(s)" not in words
    x = np.zeros((1, 8, 8, 3), np.uint8)
    task = Task(name="t", source="s", class_names=["a"], train=Split(x, np.zeros(1, int)))
    need = memory.embedding_need(1, [None], "quick")[0]  # (a batch of its 1 image at most)
    said = memory.data_note(task, [ModuleSpec(name="m", handle="h")], 8, "quick",
                            room=memory.Room(int(need) + 1, "X"))
    assert said.startswith("the data's 1 image takes "), said


def test_under_ulimit_v_the_room_is_counted_from_vmpeak_and_a_need_above_it_refused(tmp_path):
    """MobileNet V1 at --batch-size 8 under `ulimit -v 3000000` was only warned of (the rule's
    0.98 GiB, 1.14x the limit less 2.0 GiB, under REFUSE_FACTOR) and aborted ("cannot allocate
    memory for thread-local data", exit 127). Under an address-space limit the reserve is
    counted from VmPeak (AS_BASE and 64 MiB for each malloc arena beyond two, 8 a core) and
    any need above the room left is refused, naming MALLOC_ARENA_MAX=2 as a way on; with it
    set, the same command fits."""
    reserve = memoryroom.address_reserve({"MALLOC_ARENA_MAX": "2"})
    assert reserve == memoryroom.AS_BASE  # two arenas: none beyond them
    cores = memoryroom.cpus()
    assert memoryroom.malloc_arenas({}) == 8 * cores
    assert memoryroom.address_reserve({}) == memoryroom.AS_BASE + (8 * cores - 2) * (64 << 20)
    assert memoryroom.malloc_arenas({"MALLOC_ARENA_MAX": "x"}) == 8 * cores  # not a number
    cat = tmp_path / "c.yaml"
    cat.write_text("modules:\n  - {name: mob, handle: /nowhere/mob, input_size: [224, 224]}\n")
    probe = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, "
             f"({3000000 * 1024}, resource.getrlimit(resource.RLIMIT_AS)[1])); "
             "sys.argv[0] = 'hubensemble'; from hubensemble.__main__ import run; run()")
    argv = [sys.executable, "-c", probe, "rank", "--catalogue", str(cat), "--data",
            "sklearn:digits", "--batch-size", "8", "--out", str(tmp_path / "run")]
    env = dict(os.environ, HOME=str(tmp_path))
    env.pop("MALLOC_ARENA_MAX", None)
    need = memory.embedding_need(8, [(224, 224)])[0]
    room = 3000000 * 1024 - memoryroom.address_reserve({})
    refused = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
    said = " ".join(refused.stderr.split())
    if need > room:  # (2 cores or more: 2.2 GiB reserved, 0.63 GiB left)
        assert refused.returncode == 2 and "refused before loading TensorFlow" in said, said
        assert f"it needs {need / room:.1f}x the room left under the limit" in said, said
        assert "or run it with MALLOC_ARENA_MAX=2 in its environment" in said, said
        assert "thread-local data" in said
    assert need <= 3000000 * 1024 - reserve  # 0.98 GiB of the 1.51 GiB left with two arenas
    env["MALLOC_ARENA_MAX"] = "2"
    probe_room = subprocess.run(
        [sys.executable, "-c", probe.split("sys.argv[0]")[0]
         + "from hubensemble import memory; print(memory.room().limit)"],
        capture_output=True, text=True, timeout=120, env=env)
    assert int(probe_room.stdout) == min(3000000 * 1024 - reserve,
                                         memory.room(address=1 << 60).limit), probe_room


def test_rank_s_measured_peak_of_a_heavier_module_raises_later_stages_rules(tmp_path):
    """The rules are MobileNet V1's: VGG16 at 224 px peaked 1.38-1.68x the rank rule (its
    64-channel maps at full resolution), and tune, export and distill said nothing of it.
    Rank's row of a module keeps what its embedding took (`memoryroom.PeakMeter`: VmHWM reset
    to VmRSS before it, read after), and the later stages' rules count the heaviest measured
    module's bytes per pixel (`memory.measured_factor`) where one is recorded."""
    import numpy as np

    earlier = np.ones((300 << 20) // 8)  # 300 MiB touched, then freed: VmHWM keeps it
    del earlier
    with memoryroom.PeakMeter() as meter:
        work = np.ones((100 << 20) // 8)  # 100 MiB touched inside
        del work
    if meter.peak is None:
        pytest.skip("no /proc/self/clear_refs here (not Linux)")
    assert (100 << 20) * 0.95 <= meter.peak - meter.held < 300 << 20  # not the earlier peak
    assert meter.record(64, (224, 224)) == {
        "batch_size": 64, "pixels": 224 * 224, "held_bytes": meter.held,
        "peak_bytes": meter.peak, "address_bytes": meter.address}
    assert meter.address >= meter.peak and meter.record(64, None) is None
    # VGG16 (tools/benchmarks/bench_memory.py): 1.73 GiB at batch 32, the process holding
    # 0.5 GiB before: its bytes per pixel above the rule's base over the rule's 235
    vgg = {"batch_size": 32, "pixels": 224 * 224, "held_bytes": GIB // 2,
           "peak_bytes": int(1.73 * GIB)}
    expected = (1.73 * GIB - 0.96e9) / (32 * 224 * 224) / 235
    assert memory.measured_factor(vgg) == pytest.approx(expected) and expected > 2.3
    # growth above what an earlier module left held only; never below the rule; malformed: 1
    assert memory.measured_factor(dict(vgg, held_bytes=int(1.7 * GIB))) == 1.0
    assert memory.measured_factor({"batch_size": "x"}) == memory.measured_factor(None) == 1.0
    run = _run_of(tmp_path)
    room = memory.Room(3 * GIB, "the cgroup limit in X")
    assert memory.stage_memory_note("tune", run, {}, room=room) is None  # the rule: 2.4 GiB
    (run / "ranking.json").write_text(json.dumps({
        "profile": "cpu", "selected": ["mobilenet", "small"],
        "modules": [{"name": "mobilenet", "status": "ok", "memory": vgg},
                    {"name": "small", "status": "ok", "memory": None}]}))
    assert memory.measured_factors(run) == (pytest.approx(expected), "mobilenet")
    assert memory.measured_factors(run, ["small"]) is None
    words = memory.stage_memory_note("tune", run, {}, room=room)
    need = 1.25e9 + 847 * expected * 32 * 224 * 224  # training_need, its per-pixel term scaled
    assert f"in batches of 32 (--profile cpu's), about {memory.gib(need)}" in words, words
    assert f"counting mobilenet's {expected:.1f}x its bytes per pixel, as rank measured" in words
    export = memory.stage_memory_note("export", run, {}, room=memory.Room(2 * GIB, "X"))
    assert export and "counting mobilenet's" in export  # 1.6 GiB by the rule alone: it fit
    assert memory.stage_memory_note("export", tmp_path / "none", {}, room=room) is None


def test_rank_records_each_embedded_module_s_peak_and_later_stages_read_it(
        tmp_path, monkeypatch, module_factory):
    """PeakMeter measured nothing: rank never called it, so no row kept a "memory" and the
    later stages' rules stood on MobileNet V1's figures alone. Rank's row of a module it
    embedded keeps its measurement (batch and image size as rank embedded it); a row read
    from the embedding cache keeps none; `memory.measured_factors` reads the rows."""
    from hubensemble import rank
    from hubensemble.catalogue import ModuleSpec
    from hubensemble.data import load_task
    from hubensemble.rank.record import load_ranking
    from hubensemble.rundir import DataArgs

    with memoryroom.PeakMeter() as probe:
        pass
    if probe.peak is None:
        pytest.skip("no /proc/self/clear_refs here (not Linux)")
    monkeypatch.setenv("HUBENSEMBLE_CACHE_DIR", str(tmp_path / "cache"))
    task = load_task("sklearn:digits")
    spec = ModuleSpec(name="tiny", handle=module_factory("memory-tiny", seed=3, width=4))

    def ranked(out):
        rank.run_rank(str(out), [spec], task, profile="quick", batch_size=16, progress=False,
                      data_args=DataArgs(spec="sklearn:digits"))
        return load_ranking(out).row("tiny")

    row = ranked(tmp_path / "run")
    assert row["status"] == "ok" and not row["cache_hit"], row
    mem = row["memory"]
    assert mem["batch_size"] == 16 and mem["pixels"] == row["resolution"][0] * row["resolution"][1]
    assert 0 < mem["held_bytes"] <= mem["peak_bytes"], mem
    # The row is what the stages read: named when its factor is above 1 (a tiny module's is
    # about 1, by the process's noise). The record, made three times the rule's 235 bytes a
    # pixel above its base, is read and named.
    factor = memory.measured_factor(mem)
    assert memory.measured_factors(tmp_path / "run") == (
        None if factor == 1.0 else (pytest.approx(factor), "tiny"))
    doc = json.loads((tmp_path / "run" / "ranking.json").read_text())
    doc["modules"][0]["memory"] = dict(mem, pixels=1, batch_size=1, held_bytes=0,
                                       peak_bytes=int(memory.EMBED_BASE_FIXED) + 235 * 3)
    (tmp_path / "run" / "ranking.json").write_text(json.dumps(doc))
    assert memory.measured_factors(tmp_path / "run") == (pytest.approx(3.0), "tiny")
    # From the cache: nothing measured.
    again = ranked(tmp_path / "run2")
    assert again["cache_hit"] and again["memory"] is None, again


def _largest_fitting(need, room) -> int:
    """The largest power of two b (up to 4096) whose need(b) stays within 90% of `room`
    bytes, by trying each (the rule's own inversion is what is checked); 0 when none."""
    fits = [b for b in (1 << k for k in range(13)) if need(b) <= 0.9 * room]
    return max(fits, default=0)


def test_a_refusal_under_ulimit_v_is_no_usage_error_and_names_the_batch_with_fewer_arenas(
        tmp_path, monkeypatch):
    """The refusal of a need above `ulimit -v`'s room (a cgroup's too) was a plain
    HubensembleError of the command line's checks, printed as a usage error: the usage line,
    "hubensemble rank: error: …", though the command line was fine. It is said as the
    machine's refusals are now ("hubensemble: error: …", exit 2, no usage line). And where
    no --batch-size fits the room, but one does with MALLOC_ARENA_MAX=2, it says that pair
    (--train-batch-size for training alike). Fails before: "usage: hubensemble rank" first,
    and no "and --batch-size" after MALLOC_ARENA_MAX=2."""
    from hubensemble import arguments

    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    saved = memoryroom.address_reserve({}) - memoryroom.address_reserve({"MALLOC_ARENA_MAX": "2"})
    assert not arguments.is_usage_error(memory.MemoryRefused("x"), checks=True)
    cat = tmp_path / "c.yaml"
    cat.write_text("modules:\n  - {name: mob, handle: /nowhere/mob, input_size: [224, 224]}\n")
    limit = 3000000 * 1024
    probe = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, "
             f"({limit}, resource.getrlimit(resource.RLIMIT_AS)[1])); "
             "sys.argv[0] = 'hubensemble'; from hubensemble.__main__ import run; run()")
    env = dict(os.environ, HOME=str(tmp_path))
    env.pop("MALLOC_ARENA_MAX", None)
    refused = subprocess.run(
        [sys.executable, "-c", probe, "rank", "--catalogue", str(cat), "--data",
         "sklearn:digits", "--batch-size", "1024", "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300, env=env)
    said = " ".join(refused.stderr.split())
    assert refused.returncode == 2 and said.startswith("hubensemble: error: refused before "
                                                       "loading TensorFlow"), said
    assert "usage:" not in said and "Traceback" not in said, said
    room = limit - memoryroom.address_reserve({})

    def embed(b):
        return memory.embedding_need(b, [(224, 224)])[0]

    now, fewer = _largest_fitting(embed, room), _largest_fitting(embed, room + saved)
    if saved and not now and fewer:  # (2 cores: 0.6 GiB left, 1.5 with two arenas)
        assert (f"run it with MALLOC_ARENA_MAX=2 in its environment and --batch-size {fewer} "
                f"(about {memory.gib(embed(fewer))}) (glibc's malloc") in said, said
    # training: tune's and export's need at --train-batch-size, no batch fitting without
    # fewer arenas, one with them
    big = argparse.Namespace(name="big", input_size=(224, 224))
    under = memory.room(tmp_path / "none", tmp_path / "none",
                        address=memoryroom.address_reserve({}) + int(1.5 * GIB))

    def train(b):
        return memory.training_need([(224, 224)], "cpu", batch=b)[0] + memory.EXPORT_EXTRA

    note = memory.memory_note([big], 16, room=under, tunes=True, train_batch=4096)
    now = _largest_fitting(train, under.limit)
    fewer = _largest_fitting(train, under.limit + saved)
    assert memory.refusal(note) and not now, note
    if saved and fewer:
        assert (f"MALLOC_ARENA_MAX=2 in its environment and --train-batch-size {fewer} "
                f"(about {memory.gib(train(fewer))}) (glibc") in note, note
    else:
        assert "in its environment and --" not in note, note


def test_rank_and_evaluate_count_the_heavier_module_rank_measured(tmp_path):
    """Tune, export and distill counted the heaviest module an earlier rank measured
    (ranking.json's rows' "memory", `measured_factors`); rank (on a run that holds a
    ranking: a rank again, fit's) and evaluate (its export's members, the run its metadata
    names) still used MobileNet V1's rule, 2.3x short for VGG16. They count it now, in the
    need and in the --batch-size that fits. Fails before: the rule's need alone."""
    from hubensemble.catalogue import ModuleSpec

    run = _run_of(tmp_path)
    vgg = {"batch_size": 32, "pixels": 224 * 224, "held_bytes": GIB // 2,
           "peak_bytes": int(1.73 * GIB)}
    (run / "ranking.json").write_text(json.dumps({
        "profile": "cpu", "selected": ["mobilenet"],
        "modules": [{"name": "mobilenet", "status": "ok", "memory": vgg},
                    {"name": "small", "status": "ok", "memory": None}]}))
    factor = (1.73 * GIB - 0.96e9) / (32 * 224 * 224) / 235  # measured_factor's, by hand
    room = memory.Room(3 * GIB, "the cgroup limit in X")

    def need(b, extra=0.0):  # the rule with its per-pixel term scaled, and evaluate's extra
        return 0.96e9 + (235 * factor + extra) * b * 224 * 224

    def fitting(extra=0.0):
        return max(b for b in (1 << k for k in range(13)) if need(b, extra) <= 0.9 * 3 * GIB)

    specs = [ModuleSpec(name="mobilenet", handle="/m", input_size=(224, 224))]
    words = memory.stage_memory_note("rank", run, {"specs": specs, "batch_size": 128},
                                     room=room)
    assert f"in batches of 128 (--batch-size), which needs about {memory.gib(need(128))}:" in (
        words or ""), words
    assert f"pass --batch-size {fitting()} (about {memory.gib(need(fitting()))})" in words
    assert f"counting mobilenet's {factor:.1f}x its bytes per pixel" in words, words
    # a new run (no ranking): the rule alone, as before (2.3 GiB: it fits)
    assert memory.stage_memory_note("rank", tmp_path / "new", {
        "specs": specs, "batch_size": 128}, room=room) is None
    # evaluate: its members' modules, in the run the export's metadata names
    (run / "export" / "assets" / "hubensemble.json").write_text(json.dumps(
        {"run": {"path": str(run)}, "members": [
            {"trial": f"t{i}", "module": "mobilenet", "input_size": [224, 224]}
            for i in range(2)]}))
    words = memory.stage_memory_note("evaluate", run / "export", {"batch_size": 128},
                                     room=room)  # the rule alone: 2.6 GiB, it fits
    extra = memory.EVALUATE_PER_MEMBER_PIXEL  # the second member's
    assert f"which needs about {memory.gib(need(128, extra))}:" in (words or ""), words
    assert f"pass --batch-size {fitting(extra)} " in words
    assert f"counting mobilenet's {factor:.1f}x" in words


def _refusal_under(limit, argv, tmp_path, arenas="8"):
    """stderr of `hubensemble ARGV` (or, for argv None, of memory.refusal of rank's note at
    --batch-size 8 of a 224 px module) in a process under `ulimit -v` `limit` bytes with
    MALLOC_ARENA_MAX=`arenas` (so the arenas it could save do not depend on the cores)."""
    probe = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, "
             f"({int(limit)}, resource.getrlimit(resource.RLIMIT_AS)[1])); ")
    probe += ("sys.argv[0] = 'hubensemble'; from hubensemble.__main__ import run; run()"
              if argv else "import argparse; from hubensemble import memory; print(memory."
              "refusal(memory.memory_note([argparse.Namespace(name='m', input_size=(224, "
              "224))], 8)), file=sys.stderr)")
    env = dict(os.environ, HOME=str(tmp_path), MALLOC_ARENA_MAX=arenas)
    return subprocess.run([sys.executable, "-c", probe, *(argv or [])], capture_output=True,
                          text=True, timeout=300, env=env)


def test_under_ulimit_v_fewer_arenas_are_offered_only_where_they_make_room_enough(tmp_path):
    """MALLOC_ARENA_MAX=2 was offered whenever it saved any address space (`_more`), also
    where the need stayed above the room with it: rank at --batch-size 8 (about 1.0 GiB by
    the rule) with 0.3 GiB left and 0.375 GiB saved was told to set it, and would still be
    refused. Offered now only where the room plus what it saves covers the need. Fails
    before: "MALLOC_ARENA_MAX=2" in the first refusal."""
    eight = memoryroom.address_reserve({"MALLOC_ARENA_MAX": "8"})
    saved = eight - memoryroom.address_reserve({"MALLOC_ARENA_MAX": "2"})
    assert saved == 6 * (64 << 20)  # 8 arenas, 2 of them counted in AS_BASE
    need = memory.embedding_need(8, [(224, 224)])[0]
    short = _refusal_under(eight + 0.3 * GIB, None, tmp_path)
    said = " ".join(short.stderr.split())
    assert 0.3 * GIB + saved < need and "refused before loading TensorFlow" in said, said
    assert "MALLOC_ARENA_MAX" not in said and "raise the shell's `ulimit -v`" in said, said
    enough = _refusal_under(eight + 0.8 * GIB, None, tmp_path)  # 0.8 + 0.375 GiB: it fits
    said = " ".join(enough.stderr.split())
    assert 0.8 * GIB < need <= 0.8 * GIB + saved and "refused before" in said, said
    assert ("or run it with MALLOC_ARENA_MAX=2 in its environment (glibc's malloc then "
            f"reserves {memory.gib(saved)} less address space)") in said, said


def test_under_ulimit_v_with_no_room_left_the_refusal_says_so_once_in_a_few_short_lines(
        tmp_path):
    """Under `ulimit -v` below what TensorFlow and Python reserve, `fit` said "this process
    may use 0.0 GiB" and "(it needs 1713877248.0x the room left under the limit…)", on one
    line of over 1,000 characters that said the limit's way on for rank and again for tune.
    It says "no room is left under the limit" with the limit and the reserve, no ratio, the
    way on once, then a short line for each stage's need. Fails before: the ratio, "0.0 GiB",
    and one line."""
    cat = tmp_path / "c.yaml"
    cat.write_text("modules:\n  - {name: mob, handle: /nowhere/mob, input_size: [224, 224]}\n")
    eight = memoryroom.address_reserve({"MALLOC_ARENA_MAX": "8"})
    for limit in (eight - GIB // 2, eight + GIB // 20):  # none left, 0.05 GiB left
        run = _refusal_under(limit, ["fit", "--catalogue", str(cat), "--data",
                                     "sklearn:digits", "--out", str(tmp_path / "r")], tmp_path)
        said = " ".join(run.stderr.split())
        assert run.returncode == 2 and said.startswith("hubensemble: error: refused before "
                                                       "loading TensorFlow"), run.stderr
        assert (f"no room is left under the limit `ulimit -v` ({memory.gib(limit)}, of which "
                f"TensorFlow and Python take {memory.gib(eight)})") in said, said
        for wrong in ("x the room", "0.0 GiB", "may use", "MALLOC_ARENA_MAX=2"):
            assert wrong not in said, (wrong, said)
        lines = run.stderr.strip().splitlines()
        assert said.count("raise the shell's `ulimit -v`") == 1, run.stderr
        assert 4 <= len(lines) <= 6 and max(map(len, lines)) < 300, run.stderr
        stages = [line.strip() for line in lines if line.startswith("  ")]
        need = memory.embedding_need(64, [(224, 224)])[0]
        assert stages[0] == ("rank embeds images of 224x224 px in batches of 64 "
                             f"(--batch-size), which needs about {memory.gib(need)}"), stages
        assert stages[1].startswith("tune fine-tunes the modules at 224x224 px"), stages
    assert not (tmp_path / "r").exists()


def test_a_tiny_cgroup_limit_is_said_in_mib_and_refused_without_a_ratio():
    """The other hard limit's edge: a cgroup limit of 1 MiB was "this process may use 0.0 GiB"
    and "it needs 1005.5x the limit" (rank at --batch-size 8). It says 1 MiB (`gib` below
    0.05 GiB) and no ratio below 0.1 GiB (`TINY`), as under `ulimit -v`. Fails before: "0.0
    GiB" and the ratio."""
    big = argparse.Namespace(name="big", input_size=(224, 224))
    tiny = memory.Room(1 << 20, "the cgroup limit in X", hard=True)
    said = memory.refusal(memory.memory_note([big], 8, room=tiny))
    assert said.startswith("refused before loading TensorFlow, as it would be killed ("), said
    assert "this process may use 1 MiB (the cgroup limit in X)" in said, said
    assert "0.0 GiB" not in said and "x the limit" not in said, said
    assert memory.gib(0) == "0 MiB" and memory.gib(-5) == "0 MiB"
    assert memory.gib(GIB / 10) == "0.1 GiB"  # (one decimal from 0.05 GiB up, as before)
    room = memory.Room(GIB // 2, "the cgroup limit in X", hard=True)  # a ratio, as before
    said = memory.refusal(memory.memory_note([big], 8, room=room))
    need = memory.embedding_need(8, [(224, 224)])[0]
    assert f"(it needs {need / (GIB // 2):.1f}x the limit;" in said, said


def test_leaving_out_the_largest_modules_is_offered_only_where_some_module_is_smaller():
    """A fit of one 224 px module refused under `ulimit -v` was told, of tune, "leave out the
    modules of the largest input size (--modules)": there is no other module to keep. It is
    said only where some module is smaller. Fails before: said for the one module."""
    big = argparse.Namespace(name="big", input_size=(224, 224))
    small = argparse.Namespace(name="small", input_size=(96, 96))
    room = memory.Room(GIB // 2, "the cgroup limit in X", hard=True)
    alone = memory.memory_note([big], 8, room=room, tunes=True)
    assert alone and "tune fine-tunes" in alone and "--modules" not in alone, alone
    both = memory.memory_note([big, small], 8, room=room, tunes=True)
    assert "leave out the modules of the largest input size (--modules)" in both, both
    assert "--modules" not in memory.memory_note([big, big], 8, room=room, tunes=True)


def test_the_note_of_images_held_beside_rank_s_embedding_is_a_few_short_lines():
    """`data_note` was one line of some 600 characters (the room, the need and three ways on
    run together). As the refusal (`_note`): the room and its way on once, then a short line
    for each way of the data's own (fewer or smaller images; resized towards the largest
    input size rank embeds at), then how the process ends. Fails before: one line."""
    import numpy as np

    from hubensemble.catalogue import ModuleSpec
    from hubensemble.data import Split, Task

    x = np.zeros((40, 16, 16, 3), np.uint8)
    task = Task(name="t", source="s", class_names=["a", "b"],
                train=Split(x, np.arange(40) % 2))
    specs = [ModuleSpec(name="big", handle="h", input_size=(224, 224)),
             ModuleSpec(name="small", handle="h", input_size=(96, 96))]
    need = memory.embedding_need(8, [(224, 224), (96, 96)], "quick")[0]
    room = memory.Room(int(need) + 1, "the cgroup limit in X", hard=True)
    said = memory.data_note(task, specs, 8, "quick", room=room)
    lines = said.splitlines()
    assert len(lines) == 4 and max(map(len, lines)) < 300, said
    assert lines[0].endswith(f"{room.words()}. The way on: free memory, or use a machine "
                             "with more; or, for the data:"), lines[0]
    assert lines[1].startswith("  use fewer images, or smaller ones: a folder's are held"), said
    assert lines[2] == ("  resize them towards the modules' input size "
                        "(224x224 px, the largest)"), said
    assert lines[3].startswith("A process that runs out of memory is killed"), said
    assert said.count("use a machine with more") == 1, said
    one = memory.data_note(task, specs[1:], 8, "quick", room=memory.Room(
        int(memory.embedding_need(8, [(96, 96)], "quick")[0]) + 1, "X"))
    assert "input size (96x96 px)\n" in one, one


def test_rank_s_batch_is_counted_at_most_the_training_images(tmp_path, monkeypatch):
    """No batch of rank's embedding holds more than the training images it embeds, but the
    rule counted --batch-size as given: `rank --batch-size 65536` on 20 images of a 224 px
    module was said to need 720 GiB, and under a 2 GiB cgroup limit refused before
    TensorFlow loaded, as was --batch-size 512 on 20 images (the rule's 6.4 GiB; 20 images
    need 1.0). The rule counts min(--batch-size, the training images): the command line's
    from the data's listing (`dataargs.listed_counts`, an npz's y_train), rank's note once
    the data is read from the task. Fails before: refused."""
    import numpy as np

    from hubensemble import preflight
    from hubensemble.cli import build_parser
    from hubensemble.data import Split, Task

    big = argparse.Namespace(name="big", input_size=(224, 224))
    room = memory.Room(2 * GIB, "the cgroup limit in X", hard=True)
    twenty = memory.embedding_need(20, [(224, 224)])[0]
    assert twenty < 2 * GIB < memory.embedding_need(512, [(224, 224)])[0] / 1.25
    assert memory.refusal(memory.memory_note([big], 512, room=room))  # the images unknown
    assert memory.memory_note([big], 512, room=room, images=20) is None
    assert memory.memory_note([big], 512, room=room, images=512) == memory.memory_note(
        [big], 512, room=room)
    many = memory.memory_note([big], 65536, room=room, images=2000)
    assert ("rank embeds images of 224x224 px in batches of 2000 (its 2000 training images, "
            "fewer than --batch-size 65536), which needs about "
            f"{memory.gib(memory.embedding_need(2000, [(224, 224)])[0])}: pass --batch-size "
            ) in many, many
    # the command line, before TensorFlow: an npz of 20 training images
    rng = np.random.default_rng(0)
    data = tmp_path / "d.npz"
    np.savez(data, x_train=rng.integers(0, 256, (20, 12, 12, 3), dtype=np.uint8),
             y_train=np.arange(20) % 2)
    cat = tmp_path / "c.yaml"
    cat.write_text("modules:\n  - {name: big, handle: /nowhere/big, input_size: [224, 224]}\n")
    monkeypatch.setattr(memory, "room", lambda *a, **k: room)
    for batch in ("512", "65536"):
        args = build_parser().parse_args(["rank", "--catalogue", str(cat), "--data",
                                          f"npz:{data}", "--out", str(tmp_path / "r"),
                                          "--batch-size", batch])
        preflight.check_inputs(args)  # (MemoryRefused before)
        assert not preflight._NOTES.get(os.path.realpath(tmp_path / "r")), preflight._NOTES
    # rank's note once the data is read counts the task's 20 too
    task = Task(name="t", source="s", class_names=["a", "b"],
                train=Split(np.zeros((20, 8, 8, 3), np.uint8), np.arange(20) % 2))
    spec = argparse.Namespace(name="big", input_size=(224, 224))
    held = memory.held_bytes(task)
    tight = memory.Room(int(twenty + held) - 1, "X")
    said = memory.data_note(task, [spec], 65536, "quick", room=tight)
    assert said and f"rank's embedding needs about {memory.gib(twenty)} beside" in said, said


def test_a_probe_sweep_s_memory_is_its_embedding_at_each_module_s_own_size(tmp_path,
                                                                           monkeypatch):
    """tune's note counted a probe sweep as fine-tuning at the profile's cap: a probe embeds,
    frozen, at the module's own size (`hyperrule.probe_side`) in the profile's batch. 224 px
    modules at quick's 16 were said to need 1.9 GiB (refused under a 1.5 GiB cgroup limit)
    where the probes need 1.1; a module pre-trained at 224 px without an input size was
    counted at quick's 32 px (0.5 GiB) and not said under 0.6 GiB. Fails before: the
    fine-tuning words ('tune fine-tunes') and a note under 1.5 GiB."""
    import math

    from hubensemble import preflight

    run = tmp_path / "run"
    run.mkdir()
    meta = {"modules": {"mob": {"name": "mob", "input_size": [224, 224]},
                        "pre": {"name": "pre", "input_size": None, "native_size": [224, 224]}},
            "data": {"task": {"image_size": [64, 64]}}, "tune": {"call_sweep": "probe"}}
    (run / "run.json").write_text(json.dumps(meta))
    (run / "ranking.json").write_text(json.dumps({"modules": [], "selected": ["mob", "pre"]}))
    probe16 = 0.96e9 + 235 * 16 * 224 * 224  # the embedding rule at 224 px, batch 16
    train16 = 1.25e9 + 847 * 16 * 224 * 224  # the fine-tuning rule's
    assert probe16 < 1.5 * GIB < train16 < 1.25 * 1.5 * GIB
    hard = memory.Room(int(1.5 * GIB), "the cgroup limit in X", hard=True)
    for sweep in ("probe", None):  # given, or the run's last ("call_sweep")
        assert memory.stage_memory_note("tune", run, {"profile": "quick", "sweep": sweep},
                                        room=hard) is None
    limit = int(1.12e9)  # above the rule at batch 4, below it at 16
    said = memory.stage_memory_note("tune", run, {"profile": "quick", "sweep": "probe"},
                                    room=memory.Room(limit, "X"))
    fits = 1 << int(math.log2((0.9 * limit - 0.96e9) // (235 * 224 * 224)))
    assert (f"tune's probes embed images of 224x224 px in batches of 16 (--profile quick's), "
            f"which needs about {memory.gib(probe16)}: pass --train-batch-size {fits} (about "
            f"{memory.gib(0.96e9 + 235 * fits * 224 * 224)})") in said, said
    assert "fine-tunes" not in said, said
    # a module without an input size, pre-trained at 224 px: embedded at 224, not quick's 32
    small = memory.Room(int(0.6 * GIB), "X")
    said = memory.stage_memory_note("tune", run, {"profile": "quick", "sweep": "probe",
                                                  "modules": ["pre"]}, room=small)
    assert "tune's probes embed images of 224x224 px in batches of 16" in said, said
    both = memory.stage_memory_note("tune", run, {"profile": "quick", "sweep": "default+probe",
                                                  "modules": ["pre"]}, room=small)
    assert "tune's probes embed" in both and "tune fine-tunes" not in both, both  # 0.5 GiB
    # the command line passes its --sweep
    monkeypatch.setattr(memory, "room", lambda *a, **k: small)
    preflight.check_inputs(argparse.Namespace(command="tune", run=str(run), sweep="probe",
                                              budget=None, profile="quick", modules=["pre"]))
    assert any("tune's probes embed" in n for n in preflight._NOTES[os.path.realpath(run)])


def test_fit_s_note_before_tensorflow_counts_a_probe_sweep_as_an_embedding(tmp_path):
    """fit's memory note before TensorFlow (catalogue entries, via preflight) counted
    `fit --sweep probe` as fine-tuning: 224 px modules at quick's 16 were said to need 1.9 GiB
    (refused under a 1.5 GiB cgroup limit) though the probes embed, frozen, at each
    module's own size (1.1 GiB), as tune's note already counts them. A module with neither
    an input nor a native size is counted at the least side a probe embeds at (128 px, the
    data's size not read yet), and the note says that bound. Fails before: a refusal
    ('fine-tunes') under 1.5 GiB; no probe words."""
    from hubensemble.catalogue import ModuleSpec

    specs = [ModuleSpec(name="mob", handle="/m/mob", input_size=(224, 224)),
             ModuleSpec(name="pre", handle="/m/pre", native_size=(224, 224))]
    probe16 = 0.96e9 + 235 * 16 * 224 * 224  # the embedding rule at 224 px, batch 16
    train16 = 1.25e9 + 847 * 16 * 224 * 224  # the fine-tuning rule's
    assert probe16 < 1.5 * GIB < train16
    hard = memory.Room(int(1.5 * GIB), "the cgroup limit in X", hard=True)
    values = {"specs": specs, "batch_size": 16, "profile": "quick", "sweep": "probe"}
    assert memory.stage_memory_note("fit", tmp_path / "out", values, room=hard) is None
    said = memory.stage_memory_note("fit", tmp_path / "out", {**values, "sweep": "default"},
                                    room=hard)
    assert said and "fine-tunes" in said, said  # the fine-tuning sweep: as before
    # neither size: 128 px at least, said; 1.02 GB at quick's 16 is over a 1.0 GB room
    bare = [ModuleSpec(name="bare", handle="/m/bare")]
    need = 0.96e9 + 235 * 16 * 128 * 128
    said = memory.stage_memory_note("fit", tmp_path / "out", {
        **values, "specs": bare, "batch_size": 4}, room=memory.Room(int(1.0e9), "X"))
    assert said and (
        "tune's probes embed images of 128x128 px (bare: no input or native size in the "
        "catalogue, so its probes are counted at 128 px, the least, that of images under 96 "
        "px; images of 96 px or more embed at 480, which fit knows once it has loaded the "
        f"data) in batches of 16 (--profile quick's), which needs about {memory.gib(need)}"
    ) in said, said


def test_fit_from_python_gives_its_memory_note_every_option(tmp_path, monkeypatch):
    """fit() handed its memory note a list of five options written out by hand, without the
    sweep, so fit(sweep="probe") from Python was counted as fine-tuning where the command
    line (its namespace, every option) counted the probes' embedding. The note gets every
    option of FitOptions. Fails before: no "sweep" in the values."""
    import hubensemble
    from hubensemble.catalogue import ModuleSpec
    from hubensemble.pipeline import FitOptions

    class Seen(Exception):
        pass

    def note(command, run_dir, values, **_):
        raise Seen(command, values)

    monkeypatch.setattr(memory, "stage_memory_note", note)  # hubensemble's own, not TF's
    spec = ModuleSpec(name="m0", handle=str(tmp_path / "m0"), input_size=(16, 16))
    with pytest.raises(Seen) as seen:
        hubensemble.fit(catalogue=[spec], data="sklearn:digits", out=tmp_path / "run",
                        sweep="probe", budget=4, progress=False)
    command, values = seen.value.args
    assert command == "fit" and values["specs"] == [spec]
    options = {f.name for f in dataclasses.fields(FitOptions)}
    assert options <= set(values) and values["sweep"] == "probe" and values["budget"] == 4


def test_tune_s_note_reads_the_run_s_profile_as_tune_does(tmp_path):
    """The note read run.json's "tune" -> "profile" through a reader of its own: a
    "batch_size": "x" gave no note, and tune refused it (naming the file) only after
    TensorFlow had loaded. One reader (`runprofile.run_profile`): its refusal, from the note
    (before TensorFlow on the command line); export and distill, which read it for the note
    alone, say none. Fails before: no RunError."""
    from hubensemble.runprofile import run_profile

    room = memory.Room(GIB, "X")
    run = _run_of(tmp_path, dict(PROFILES["quick"].to_json(), batch_size="x"))
    with pytest.raises(RunError) as read:
        run_profile(Run(run))
    with pytest.raises(RunError) as said:
        memory.stage_memory_note("tune", run, {}, room=room)
    assert str(said.value) == str(read.value) and "run.json" in str(said.value)
    assert memory.stage_memory_note("export", run, {"retrain_full": True}, room=room) is None
    assert memory.stage_memory_note("distill", run, {}, room=room) is None
    assert "in batches of 64 (--train-batch-size)" in memory.stage_memory_note(
        "tune", run, {"profile": "cpu", "train_batch_size": 64}, room=room)  # not read
