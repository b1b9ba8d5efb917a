"""The locks of a chief/worker sweep's processes (hubensemble.sweeplock): writers of the run
and sweep processes refuse each other; the processes of one sweep do not."""

import contextlib
import os
import re
import signal

import pytest

from hubensemble import formats
from hubensemble.errors import RunError
from hubensemble.fileio import lock_is_held
from hubensemble.rundir import Run
from hubensemble.text import shell

SWEEP = {"sweep": "hyper", "oracle": "127.0.0.1:8000"}


@pytest.fixture
def run(tmp_path):
    path = tmp_path / "my run"
    path.mkdir()
    (path / "run.json").write_text("{}")  # the sweep's run
    return path


def test_a_writer_is_refused_while_a_sweep_runs_naming_the_sweep_and_its_chief(
        run, monkeypatch, capsys, run_lock_holder):
    """The left-alone fault (docs/reliability.md): the processes of `tune --tuner-id
    chief|tunerN --oracle HOST:PORT` held no lock, so `ensemble --run R`, `fit --restart` on
    R, a stand-alone `tune` or a second chief ran beside the sweep, each rewriting its files."""
    import hubensemble
    from hubensemble.cli import main

    chief = run_lock_holder(run, "tune", "chief", SWEEP)
    worker = run_lock_holder(run, "tune", "tuner0", SWEEP)
    monkeypatch.chdir(run.parent)
    for command in ("ensemble", "cost", "report"):
        assert main([command, "--run", "my run"]) == 2
        err = capsys.readouterr().err
        assert (f"a chief/worker tune sweep is running on {run} (sweep hyper, oracle "
                f"127.0.0.1:8000; its chief: pid {chief.pid}, since ") in err, err
        assert f"worker tuner0 (pid {worker.pid}, since " in err, err
        # Its times in text.shown_time's form, as the report's (it said 2026-12-05T21:30:54).
        assert re.search(rf"pid {worker.pid}, since [0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}} "
                         r"[0-9]{2}:[0-9]{2}:[0-9]{2}[+-][0-9]{2}:[0-9]{2}\)", err), err
        assert str(run / ".sweep-chief.lock") in err, err
        assert (f"wait for it to end, then run `hubensemble {command} --run {shell(run)}` "
                "again") in err, err
    for call in (lambda: hubensemble.run_ensemble("my run"),
                 lambda: Run(run).lock("tune").__enter__(),  # a stand-alone tune
                 lambda: Run(run).lock("fit").__enter__()):  # fit --restart on R
        with pytest.raises(RunError, match="a chief/worker tune sweep is running on"):
            call()
    assert not lock_is_held(run / formats.FIT_LOCK)  # a refused writer let it go again
    with pytest.raises(RunError) as second:  # a second chief
        Run(run).lock("tune", "chief", SWEEP).__enter__()
    # From Python, run_tune's keyword (it was told "pass another --tuner-id").
    assert (f"another run_tune(tuner_id='chief') is running on {run} (pid {chief.pid}, since "
            in str(second.value)), second.value
    assert str(second.value).endswith("pass another tuner_id") and "--" not in str(
        second.value), second.value


def test_a_second_chief_is_refused_from_the_command_line_before_tensorflow(
        run, capsys, run_lock_holder):
    from hubensemble.cli import main

    chief = run_lock_holder(run, "tune", "chief", SWEEP)
    assert main(["tune", "--run", str(run), "--tuner-id", "chief", "--oracle",
                 "127.0.0.1:8000"]) == 2
    err = capsys.readouterr().err
    assert f"another tune --tuner-id chief is running on {run} (pid {chief.pid}" in err, err


def test_the_processes_of_a_sweep_do_not_refuse_each_other(run, run_lock_holder):
    run_lock_holder(run, "tune", "tuner0", SWEEP)
    run_lock_holder(run, "tune", "chief", SWEEP)
    Run(run).check_unlocked("tune", member="tuner1")  # the command line's check
    with Run(run).lock("tune", "tuner1", SWEEP):
        Run(run).check_unlocked()  # a stage's check inside a sweep process
        assert lock_is_held(run / ".sweep-tuner1.lock")


def test_a_sweep_process_is_refused_while_a_writer_runs(run, capsys, run_lock_holder):
    from hubensemble.cli import main

    holder = run_lock_holder(run, "ensemble")
    with pytest.raises(RunError, match=f"another ensemble is running on .*pid {holder.pid}"):
        Run(run).lock("tune", "tuner0", SWEEP).__enter__()
    assert not lock_is_held(run / ".sweep-tuner0.lock")  # let go again
    assert main(["tune", "--run", str(run), "--tuner-id", "tuner0", "--oracle",
                 "127.0.0.1:8000"]) == 2
    assert f"another ensemble is running on {run} (pid {holder.pid}" in capsys.readouterr().err
    from hubensemble.tune import run_tune

    with pytest.raises(RunError, match=f"another ensemble is running on .*pid {holder.pid}"):
        run_tune(run, tuner_id="tuner0", oracle_address="127.0.0.1:8000", progress=False)


def test_a_killed_sweep_process_leaves_no_lock_that_blocks(run, run_lock_holder):
    chief = run_lock_holder(run, "tune", "chief", SWEEP)
    os.kill(chief.pid, signal.SIGKILL)
    chief.wait()
    with Run(run).lock("ensemble"):  # the kernel dropped it with its process
        pass
    with Run(run).lock("tune", "chief", SWEEP):  # and a restarted chief goes on
        pass


def test_a_sweep_leaves_no_lock_files_and_fit_restart_removes_older_ones(
        run, run_lock_holder, caplog):
    """Each sweep process's empty RUN/.sweep-<ID>.lock stayed in the run folder after the
    sweep (one per tuner id), and `fit --restart` kept them as "entries that no stage
    writes". A process removes its own while it still holds it; --restart removes the free
    ones an older version left (taking each first), not one held now."""
    import logging

    from hubensemble.resume import clear_run
    from hubensemble.sweeplock import remove_free_locks

    for member in ("chief", "tuner0"):
        with Run(run).lock("tune", member, SWEEP):
            assert lock_is_held(run / f".sweep-{member}.lock")
    # (the chief's record of how it ended, for a worker started after it: chief_end_path)
    assert [n for n in os.listdir(run) if n.startswith(".sweep-")] == [
        ".sweep-chief.lock.ended"], os.listdir(run)

    for name in (".sweep-chief.lock", ".sweep-tuner0.lock", ".sweep-tuner0.lock.holder",
                 ".sweep-tuner7.lock.holder"):  # an older version's, and stray records
        (run / name).write_text('{"pid": 1}' if name.endswith("holder") else "")
    held = run_lock_holder(run, "tune", "tuner1", SWEEP)
    assert remove_free_locks(run) == [".sweep-chief.lock", ".sweep-chief.lock.ended",
                                      ".sweep-tuner0.lock", ".sweep-tuner0.lock.holder",
                                      ".sweep-tuner7.lock.holder"]
    assert sorted(n for n in os.listdir(run) if n.startswith(".sweep-")) == [
        ".sweep-tuner1.lock", ".sweep-tuner1.lock.holder"]  # held: a sweep process's
    held.kill()
    held.wait()
    (run / "notes.txt").write_text("mine")
    with caplog.at_level(logging.INFO, logger="hubensemble"), Run(run).lock("fit"):
        clear_run(Run(run))
    assert sorted(os.listdir(run)) == [formats.FIT_LOCK, "notes.txt"]
    assert "--restart kept 1 entry that no stage writes: notes.txt" in caplog.text, caplog.text


def test_a_writer_refused_by_workers_whose_chief_was_killed_is_told_so_and_the_way_on(
        run, capsys, run_lock_holder, monkeypatch):
    """A worker whose chief died keeps its lock: Keras Tuner's client waits up to an hour
    for the chief each time it asks (measured with a real chief and worker: 120 s after the
    chief's kill -9 the worker still ran and refused writers). The refusal said "no chief
    … wait for it to end": it names the chief that has gone and the way on (start it again,
    or stop the workers by pid), not letting the writer in beside a worker still training."""
    from hubensemble.cli import main

    chief = run_lock_holder(run, "tune", "chief", SWEEP)
    worker = run_lock_holder(run, "tune", "tuner0", SWEEP)
    os.kill(chief.pid, signal.SIGKILL)
    chief.wait()
    monkeypatch.chdir(run.parent)
    assert main(["ensemble", "--run", "my run"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert (f"its chief has gone without ending (pid {chief.pid}, since ") in err, err
    assert f"killed: {run / '.sweep-chief.lock'} is free); worker tuner0 (pid {worker.pid}" \
        in err, err
    assert (f"start the chief again (`hubensemble tune --run {shell(run)} --tuner-id chief "
            "--sweep hyper --oracle 127.0.0.1:8000` with the options it had; the workers go "
            f"on with it), or stop the worker (`kill {worker.pid}`); wait for it to end, "
            f"then run `hubensemble ensemble --run {shell(run)}` again") in err, err
    with pytest.raises(RunError, match="its chief has gone without ending") as err:
        Run(run).lock("fit").__enter__()
    # From Python, run_tune and its keywords (it was told `hubensemble tune … --tuner-id`).
    assert (f"start the chief again (run_tune(run_dir={str(run)!r}, sweep='hyper', "
            "tuner_id='chief', oracle_address='127.0.0.1:8000') with the options it had; "
            "the workers go on with it)") in " ".join(str(err.value).split()), err.value
    worker.kill()
    worker.wait()
    with Run(run).lock("ensemble"):  # the workers stopped: the writer goes on
        pass


def test_the_commands_that_resume_a_sweep_without_its_chief_give_its_recorded_options(
        run, capsys, run_lock_holder, monkeypatch):
    """A worker whose chief has gone, and a writer refused by such workers, were told to start
    the chief again with `hubensemble tune --run R --tuner-id chief --sweep hyper --oracle …`
    "with the options it had": without the sweep's --budget and --profile, which a user who
    followed it literally resumed with other settings (the default budget, the run's
    profile). The commands now give the options run.json records for the sweep, in the
    caller's words: flags on the command line, run_tune's keywords from Python."""
    from hubensemble.cli import main
    from hubensemble.hyperrule import PROFILES
    from hubensemble.lockwords import command_line
    from hubensemble.sweeplock import worker_without_chief

    record = {"sweep": "hyper", "budget": 60, "seed": 3, "profile": PROFILES["paper"].to_json(),
              "requested_modules": None, "keep_weights": "all", "head_init": None,
              "batchnorm": {"requested": "auto", "modules": {}}}
    Run(run).update(tune={**record, "sweeps": {"hyper": record}})
    oracle = SWEEP["oracle"]
    with command_line():
        cli = " ".join(str(worker_without_chief(run, "tuner0", "hyper", oracle, "gone")).split())
    flags = f"--sweep hyper --budget 60 --seed 3 --profile paper --oracle {oracle}"
    assert (f"start the chief again (`hubensemble tune --run {shell(run)} --tuner-id chief "
            f"{flags}`), then this worker (`hubensemble tune --run {shell(run)} --tuner-id "
            f"tuner0 {flags}`), each with any --strategy, --cache-dir or --max-failures it "
            "had") in cli, cli
    python = " ".join(str(worker_without_chief(run, "tuner0", "hyper", oracle, "gone")).split())
    keywords = "sweep='hyper', budget=60, seed=3, profile='paper'"
    assert (f"start the chief again (run_tune(run_dir={str(run)!r}, {keywords}, "
            f"tuner_id='chief', oracle_address={oracle!r})), then this worker "
            f"(run_tune(run_dir={str(run)!r}, {keywords}, tuner_id='tuner0', "
            f"oracle_address={oracle!r})), each with any strategy, cache_dir or max_failures "
            "it had") in python and "--" not in python, python
    # A worker of a "+" sweep (running its first part) resumes the whole sweep: its lock's
    # record names it (it was told `--sweep default`, which never ran the probe part).
    record = dict(record, sweep="default")
    Run(run).update(tune={**record, "sweeps": {"default": record}})
    (run / ".sweep-tuner0.lock.holder").write_text(
        '{"pid": 1, "command": "tune", "sweep": "default+probe", "oracle": "127.0.0.1:8000"}')
    with command_line():
        plus = " ".join(str(worker_without_chief(run, "tuner0", "default", oracle, "gone")
                            ).split())
    assert (f"--tuner-id tuner0 --sweep default+probe --budget 60 --seed 3 --profile paper "
            f"--oracle {oracle}`") in plus, plus
    (run / ".sweep-tuner0.lock.holder").unlink()
    record = dict(record, sweep="hyper")
    Run(run).update(tune={**record, "sweeps": {"hyper": record}})
    # A writer refused by a worker whose chief was killed is told the same command.
    chief = run_lock_holder(run, "tune", "chief", SWEEP)
    run_lock_holder(run, "tune", "tuner0", SWEEP)
    os.kill(chief.pid, signal.SIGKILL)
    chief.wait()
    assert main(["ensemble", "--run", str(run)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert (f"start the chief again (`hubensemble tune --run {shell(run)} --tuner-id chief "
            f"{flags}`, with any --strategy, --cache-dir or --max-failures it had; the "
            "workers go on with it)") in err, err
    with pytest.raises(RunError) as refused:
        Run(run).lock("fit").__enter__()
    said = " ".join(str(refused.value).split())
    assert (f"start the chief again (run_tune(run_dir={str(run)!r}, {keywords}, "
            f"tuner_id='chief', oracle_address={oracle!r}), with any strategy, cache_dir or "
            "max_failures it had; the workers go on with it)") in said, said


def test_a_worker_waiting_for_its_chief_to_listen_stops_when_the_chief_has_gone(
        run, run_lock_holder, caplog, monkeypatch):
    """A worker whose chief was killed, or ended, before it listened waited the whole
    $HUBENSEMBLE_CHIEF_TIMEOUT (3600 s) in wait_for_chief before it said anything (helpers
    191, 192). Now it watches the chief's lock while it waits: a chief it saw running that
    is killed (a real process, kill -9) or ends stops it, naming the chief and the way on;
    a chief's lock a killed chief left before the wait is said at once, and the worker waits
    on (a chief being started again is simply used)."""
    import logging
    import socket
    import threading

    from hubensemble.errors import HubensembleError
    from hubensemble.tune.distributed import kerastuner_env, wait_for_chief

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"  # nothing listens there after this
    sweep, looked, stopped = {"sweep": "hyper", "oracle": address}, threading.Event(), []

    class Looked(logging.Handler):  # the worker has looked at the chief once
        def emit(self, record):
            if record.getMessage().startswith("waiting for the chief at"):
                looked.set()

    def worker(then, pending=None):  # waits for the chief in a thread; `then()` once it has
        looked.clear()  # looked
        stopped.clear()

        def wait():
            try:
                wait_for_chief(timeout=60, poll=0.05, run_dir=run, sweep="hyper",
                               pending=pending)
            except BaseException as e:  # (one it does not raise: said, not waited for)
                stopped.append(e)
                looked.set()
        waiting = threading.Thread(target=wait)
        waiting.start()
        assert looked.wait(30)
        then()
        waiting.join(30)
        assert not waiting.is_alive()
        assert isinstance(stopped[0], RunError), stopped
        return " ".join(str(stopped[0]).split())

    def kill(process):
        os.kill(process.pid, signal.SIGKILL)
        process.wait()

    lock = run / ".sweep-chief.lock"
    handler = Looked()
    logging.getLogger("hubensemble.tune.distributed").addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger="hubensemble"), \
                kerastuner_env("tuner0", address), Run(run).lock("tune", "tuner0", sweep):
            chief = run_lock_holder(run, "tune", "chief", sweep)
            message = worker(lambda: kill(chief))
            assert message.startswith(
                f"run_tune(tuner_id='tuner0') on {run}: its chief (pid {chief.pid} on host "
                f"{socket.gethostname()}, since "), message
            assert (f"has gone without ending (killed: {lock} is free); this worker stops "
                    "rather than wait for it to listen, up to 60 s ($HUBENSEMBLE_CHIEF_TIMEOUT)"
                    ". The trials finished are kept. To resume, start the chief again "
                    f"(run_tune(run_dir={str(run)!r}, sweep='hyper', tuner_id='chief', "
                    f"oracle_address={address!r}) with the options it had), then this worker"
                    ) in message, message
            # The killed chief's lock, there as a wait begins: said at once, waited on.
            caplog.clear()
            with pytest.raises(HubensembleError, match="did not answer within 0.2 s"):
                wait_for_chief(timeout=0.2, poll=0.05, run_dir=run, sweep="hyper")
            said = " ".join(caplog.text.split())
            assert (f"run_tune(tuner_id='tuner0') on {run}: waiting for the chief at {address} "
                    "(up to 0.2 s, $HUBENSEMBLE_CHIEF_TIMEOUT), while the last one has gone: "
                    f"its chief (pid {chief.pid} on host") in said, said
            assert (f"Unless it is being started again, start it (run_tune(run_dir="
                    f"{str(run)!r}, sweep='hyper', tuner_id='chief'") in said, said
            # A chief that ends (here, in this process) before it listens.
            chief_lock = Run(run).lock("tune", "chief", sweep)
            chief_lock.__enter__()
            message = worker(lambda: chief_lock.__exit__(None, None, None))
            assert (f"its chief (pid {os.getpid()} on host {socket.gethostname()}, since "
                    in message), message
            assert (f"has ended before it listened at {address} ({lock} is gone: its own "
                    "output says why it stopped); this worker stops") in message, message
            # A chief that stops with an error leaves its reason (RUN/.sweep-chief.lock.ended,
            # written holding its lock): a worker started after it says it at once (it waited
            # the whole time-out, in silence) and waits for a chief started again after a
            # fix (it stopped at once: a cluster started again worker first served nobody);
            # one waiting while a chief starts and says its stop line (the command line's way:
            # the error is said, not raised, inside the lock) between two looks stops with
            # it; Ctrl-C is said as such.
            from hubensemble import sweeplock, terminal

            with pytest.raises(RunError, match="bad module"):
                with Run(run).lock("tune", "chief", sweep):
                    raise RunError("module 'm' cannot load: bad module")
            caplog.clear()
            with pytest.raises(HubensembleError, match="did not answer within 0.2 s"):
                wait_for_chief(timeout=0.2, poll=0.05, run_dir=run, sweep="hyper")
            message = " ".join(caplog.text.split())
            assert (f"its chief (pid {os.getpid()} on host {socket.gethostname()}, since "
                    in message), message
            when = r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}[+-][0-9]{2}:[0-9]{2}"  # shown_time's
            assert re.search(rf"waiting for the chief at {address} \(up to 0.2 s, "
                             rf"\$HUBENSEMBLE_CHIEF_TIMEOUT\), while the last one has gone: "
                             rf"its chief \(pid \d+ on host \S+, since {when}\) stopped with an "
                             rf"error at {when}: module 'm' cannot load: bad module\. Unless it "
                             r"is being started again, start it", message), message
            caplog.clear()  # said once: not at the next wait of this worker
            with pytest.raises(HubensembleError, match="did not answer within 0.2 s"):
                wait_for_chief(timeout=0.2, poll=0.05, run_dir=run, sweep="hyper")
            assert "bad module" not in caplog.text

            def fails():  # as the command line says it: its stop line, in the except block
                with Run(run).lock("tune", "chief", sweep):
                    try:
                        raise sweeplock.chief_cannot_listen(address)
                    except HubensembleError as e:
                        terminal.stopped(f"hubensemble: error: {e}")

            assert "stopped with an error at " in worker(fails)
            # Its port was taken: the resume commands repeat no taken --oracle (it printed
            # "--oracle 127.0.0.1:PORT" twice, after "pick a free port").
            message = worker(fails)
            assert f"cannot listen on {address}; pick a free port" in message, message
            resume = message.split("To resume")[1]
            assert f"--oracle {address}" not in resume and "oracle_address='HOST:PORT'" in resume
            assert (f"HOST:PORT: a free address of the chief's machine, the same in both (not "
                    f"{address}, where the chief could not listen)") in resume, resume
            with pytest.raises(KeyboardInterrupt):
                with Run(run).lock("tune", "chief", sweep):
                    raise KeyboardInterrupt
            # Ctrl-C is a stop, not an error ("stopped with an error at …: interrupted").
            assert re.search(rf"\) was stopped at {when} \(interrupted\) before its sweep was "
                             r"over$", sweeplock.chief_ended(run, "hyper"))
            assert sweeplock.chief_ended(run, "other") is None  # another sweep's chief
            with Run(run).lock("tune", "chief", sweep):  # a chief starting: it runs now
                assert not sweeplock.chief_end_path(run).exists()
                assert sweeplock.chief_ended(run) is None
            with pytest.raises(KeyboardInterrupt):
                with Run(run).lock("tune", "chief", sweep):
                    raise KeyboardInterrupt
            assert sweeplock.chief_end_path(run).name in sweeplock.remove_free_locks(run)

            # A chief that ends normally leaves that it did, with the trials it served: a
            # worker whose pending trials were all its (a late machine, one started again
            # after the sweep) says so at once and waits for a chief started again (it waited
            # the whole time-out in silence; then it stopped after a 5 s grace, so the cluster
            # started again worker first after a normal end served nobody); one with a trial
            # it did not have (a larger --budget, workers started first) waits silently; one
            # waiting while such a chief starts and ends stops with its words.
            def ends_normally(trials=("hyper-0000-m", "hyper-0001-m")):
                with Run(run).lock("tune", "chief", sweep):
                    sweeplock.chief_serves(run, trials)

            ends_normally()
            caplog.clear()
            with pytest.raises(HubensembleError, match="did not answer within 0.2 s"):
                wait_for_chief(timeout=0.2, poll=0.05, run_dir=run, sweep="hyper",
                               pending=["hyper-0001-m"])
            said = " ".join(caplog.text.split())
            done = (rf"\) ended normally at {when}, its sweep over \(every trial it handed out "
                    r"has ended\), and 1 of its trials has no complete candidate \(e.g. "
                    r"hyper-0001-m: a trial that ended without one\)")
            assert re.search(rf"while the last one has gone: its chief \(pid \d+ on host \S+, "
                             rf"since {when}{done}\. Unless it is being started again, start "
                             r"it \(run_tune\(", said), said
            message = worker(lambda: ends_normally(["hyper-0001-m"]),  # (another record than
                             pending=["hyper-0001-m"])  # the last one's in the same second)
            assert re.search(rf"{done}; this worker stops rather than wait", message), message
            assert "To resume, start the chief again (run_tune(" in message, message
            caplog.clear()
            with pytest.raises(HubensembleError, match="did not answer within 0.2 s"):
                wait_for_chief(timeout=0.2, poll=0.05, run_dir=run, sweep="hyper",
                               pending=["hyper-0001-m", "hyper-0002-m"])
            assert "ended normally" not in caplog.text
            assert sweeplock.chief_ended(run, "hyper") is None  # (nothing pending: no words)
            assert sweeplock.chief_ended(run, "other", ["hyper-0001-m"]) is None
    finally:
        logging.getLogger("hubensemble.tune.distributed").removeHandler(handler)


def test_a_chief_whose_port_is_taken_says_so_in_its_own_words_only(caplog, capfd):
    """gRPC's C++ line of a port it cannot bind ("E1205 … add_port.cc:83] Failed to add port
    to server: … Address already in use") reached the terminal before the chief's own error,
    which says the same (trying a sweep as a user): it goes to RUN/log.txt at
    INFO (`_tf.native_notices`), and the error marks the port taken for the resume words."""
    import logging
    import socket
    from concurrent import futures

    import grpc

    from hubensemble.errors import HubensembleError
    from hubensemble.tune.distributed import _bind

    executor = futures.ThreadPoolExecutor(max_workers=1)
    with socket.socket() as taken, caplog.at_level(logging.INFO, logger="hubensemble"):
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        capfd.readouterr()
        with pytest.raises(HubensembleError, match=f"the chief cannot listen on {address}; "
                           "pick a free port") as error:
            _bind(grpc.server(executor), address)
    executor.shutdown(wait=False)
    assert error.value.oracle_taken
    assert "add_port" not in capfd.readouterr().err
    assert any("the chief's gRPC server: " in r.getMessage() and "add_port" in r.getMessage()
               for r in caplog.records), caplog.records


def test_a_worker_started_after_its_chief_ended_normally_says_so_before_tensorflow_and_waits(
        run, caplog):
    """A worker started after its chief had ended normally, with trials of that chief's
    plan left without a candidate, said so only once TensorFlow had loaded (6-11 s; measured
    9.6 s on 2 busy cores, now 1.9 s): the check of the chief's end record before the import
    (`sweepend.worker_stop`, from `preflight.check_run`) gave up on "done", as only the
    worker's plan tells whether it has trials that chief did not have. It now plans them
    there (`sweepplan`, outside the tune package, which loads TensorFlow first), from the
    options its lock records ("plan"). It warns and goes on to wait for a chief started
    again: it stopped once no chief had taken its lock within a 5 s grace, so the cluster
    started again after a normal end worked chief first only. A worker with a trial that
    chief did not have (a larger --budget), with nothing left, or whose plan is not known
    (from Python) goes on silently, as before. (test_cli::
    test_what_a_run_folder_lacks_is_refused_before_tensorflow_loads: from the command line,
    before TensorFlow loads.)"""
    import json
    import logging

    from hubensemble import sweepend, sweeplock
    from hubensemble.candidate import write_candidate
    from hubensemble.catalogue import ModuleSpec

    spec = ModuleSpec(name="m", handle=str(run / "m"), family="generalist")
    Run(run).update(modules={"m": spec.to_json()}, data={"task": {}})
    (run / "ranking.json").write_text(json.dumps(
        {"modules": [{"name": "m", "status": "ok", "score": 0.9}], "selected": ["m"]}))
    sweep = {"sweep": "seeds", "oracle": "127.0.0.1:9"}
    with Run(run).lock("tune", "chief", sweep):  # it served the plan of --budget 2
        sweeplock.chief_serves(run, ["seeds-0000-m", "seeds-0001-m"])
    write_candidate(run / "candidates", {"trial": "seeds-0000-m", "module": "m",
                                         "status": "failed", "reason": "diverged"})

    def stop(**plan):  # (None: it goes on) and what it warned, in one line
        record = {**sweep, "plan": {"budget": 2, "seed": 0, "profile": "quick",
                                    "modules": None, **plan}} if plan is not None else sweep
        caplog.clear()
        sweeplock._SAID.clear()  # (a worker process says a chief's words once)
        with caplog.at_level(logging.WARNING, logger="hubensemble"), \
                Run(run).lock("tune", "tuner0", record):
            found = sweepend.worker_stop(run, "tuner0")
        return found, " ".join(caplog.text.split())

    found, words = stop()
    assert found is None, found  # it waits for a chief started again
    assert ("tune --tuner-id tuner0 on" in words or "run_tune(tuner_id='tuner0') on" in words)
    assert "waiting for the chief at 127.0.0.1:9" in words and "its chief (pid" in words
    assert ("ended normally at " in words and "its sweep over (every trial it handed out has "
            "ended), and 1 of its trials has no complete candidate (e.g. seeds-0001-m: a "
            "trial that ended without one). Unless it is being started again, start it (")\
        in words, words
    assert stop(budget=3) == (None, "")  # seeds-0002-m: not that chief's; it waits for its own
    assert "ended normally" in stop(profile=None)[1]  # the run's profile (none recorded: cpu's)
    with Run(run).lock("tune", "tuner0", sweep):  # no plan recorded (run_tune from Python)
        assert sweepend.worker_stop(run, "tuner0") is None
    write_candidate(run / "candidates", {"trial": "seeds-0001-m", "module": "m",
                                         "status": "failed", "reason": "diverged"})
    assert stop() == (None, "")  # nothing left: it ends with its summary, as before
    # A chief refused before it planned (no "trials"; run.json's are the last sweep's, of
    # --budget 2): its error is said before TensorFlow to a worker whose own plan has a
    # trial left (--budget 3), which then waits for a chief; none to one with nothing left.
    with pytest.raises(RunError):
        with Run(run).lock("tune", "chief", sweep):
            raise RunError("refused: --seed 0 -> 1")
    Run(run).update(tune={"sweeps": {"seeds": {"trials": ["seeds-0000-m", "seeds-0001-m"]}}})
    assert stop() == (None, "")
    found, words = stop(budget=3)
    assert found is None and "stopped with an error at " in words, words
    assert "refused: --seed 0 -> 1" in words, words


def test_a_worker_started_before_its_chief_after_a_stop_or_an_error_waits_for_it(
        run, monkeypatch, caplog):
    """Ctrl-C on a chief and its worker, then the same two commands again ("run the same
    command again to resume"), the worker first: it read the stopped chief's end record
    before the new chief had taken its lock and stopped ("its chief … was stopped … before
    its sweep was over; this worker stops"), at once, then (a grace) after
    $HUBENSEMBLE_CHIEF_GRACE seconds; after a chief's error it still stopped at once, so a
    cluster started again after the fix, worker first, served nobody. A stopped or failed
    chief's record is now said at once, before TensorFlow loads (`sweepend.worker_stop`,
    warned once: not again at the wait), and the worker waits for a chief, started in any
    order. One whose chief could not listen at the worker's own address stops at once (the
    worker needs another address too). A chief's reason longer than 120 characters (a
    refusal naming its commands: a warning line of ~1,400 characters) is said
    cut, with where it is whole (its end record, which kept only its first line)."""
    import json
    import logging

    from hubensemble import sweepend, sweeplock
    from hubensemble.errors import HubensembleError

    sweep = {"sweep": "hyper", "oracle": "127.0.0.1:9"}

    def start_worker():  # the worker's check before TensorFlow, and what it warned
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="hubensemble"):
            with Run(run).lock("tune", "tuner0", sweep):
                stop = sweepend.worker_stop(run, "tuner0")
        return stop, " ".join(caplog.text.split())

    with pytest.raises(KeyboardInterrupt):  # the chief stopped by Ctrl-C
        with Run(run).lock("tune", "chief", sweep):
            raise KeyboardInterrupt
    stop, said = start_worker()
    assert stop is None, stop  # it goes on to wait for its chief
    assert (f"tune --tuner-id tuner0 on {run}: waiting for the chief at 127.0.0.1:9" in said
            or f"run_tune(tuner_id='tuner0') on {run}: waiting for the chief at 127.0.0.1:9"
            in said), said
    assert "was stopped at " in said and "(interrupted) before its sweep was over" in said
    assert start_worker() == (None, "")  # said once
    with pytest.raises(RunError):  # a chief that stopped with an error (bad module)
        with Run(run).lock("tune", "chief", sweep):
            raise RunError("module 'm' cannot load: bad module")
    stop, said = start_worker()
    assert stop is None and "stopped with an error at " in said, (stop, said)
    assert "module 'm' cannot load: bad module. Unless it is being started again" in said
    long = ["refused: " + "; ".join(f"--option-{i} differs from the sweep's record" for i in
                                    range(30)), "  hint: start again with --restart"]
    with pytest.raises(RunError):  # (of_lines: an error of one problem a line)
        with Run(run).lock("tune", "chief", sweep):
            raise RunError.of_lines(long)
    stop, said = start_worker()
    end = sweeplock.chief_end_path(run)
    # (the run's path, twice, as long as the tmp folder; 671 on one here, host and pid vary)
    assert stop is None and len(said.replace(str(run), "RUN")) < 800, said  # 1,800 before
    assert "--option-3" not in said, said
    assert ("record; --option-2 differs … (its whole words: \"reason\" in "
            f"{end}, and its own output). Unless it is being started again") in said, said
    assert json.loads(end.read_text())["reason"] == "\n".join(long)  # whole, its hint too
    assert sweeplock.starting_chief_ended(run, "hyper") is None
    with pytest.raises(HubensembleError):  # one that could not listen at the worker's address
        with Run(run).lock("tune", "chief", sweep):
            raise sweeplock.chief_cannot_listen("127.0.0.1:9")
    stop, _ = start_worker()
    assert "cannot listen on 127.0.0.1:9; pick a free port" in str(stop), stop
    assert sweeplock.starting_chief_ended(run, "hyper", oracle="127.0.0.1:10") is None


def test_a_command_refused_beside_another_is_told_to_keep_its_own_options(
        tmp_path, run_lock_holder):
    """`tune --run R --sweep hyper --budget 2` refused while another tune ran on R said "wait
    for it to end, then run `hubensemble tune --run R` again": that plain command resumes the
    other tune's sweep (run.json's, sweepwords.resumed_call), not the refused one. The way on
    keeps the refused call's other options (lockwords.locked_advice). Fails before: the plain
    command alone."""
    from hubensemble.lockwords import command_line

    run = Run(tmp_path / "run")
    run.path.mkdir()
    run_lock_holder(run.path, "tune")
    for on_line, ending in ((True, f"run `hubensemble tune --run {run.path}` again with your "
                             "other options"),
                            (False, f"call run_tune(run_dir={str(run.path)!r}) again with your "
                             "other arguments")):
        with contextlib.ExitStack() as stack:
            if on_line:
                stack.enter_context(command_line())
            with pytest.raises(RunError) as refused:
                run.check_unlocked("tune")
        assert str(refused.value).endswith(f"wait for it to end, then {ending}"), refused.value
