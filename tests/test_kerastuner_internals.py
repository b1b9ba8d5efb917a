"""The Keras Tuner internals (and implicit behaviours) hubensemble.tune relies on, one by one.

setup.cfg pins keras-tuner to the tested range; these tests make a release outside it (or a
change inside it) fail loudly, naming the internal that moved. The list lives in
`hubensemble.tune.tuner.KERAS_TUNER_INTERNALS`; docs/tune.md says why each is used.
"""

import configparser
import importlib
import inspect
import json
import os
import re
import socket
from pathlib import Path

import keras_tuner as kt
import pytest

from hubensemble.tune import distributed
from hubensemble.tune import tuner as glue

ROOT = Path(__file__).resolve().parents[1]
HINT = ("hubensemble.tune relies on it (docs/tune.md, 'Keras Tuner internals'); adapt "
        "hubensemble/tune/tuner.py to this keras-tuner release or install one in the range "
        "setup.cfg pins")


def resolve(path):
    """The object at a dotted path, importing the longest module prefix."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(path)


def internal(path):
    try:
        return resolve(path)
    except (ImportError, AttributeError) as e:
        pytest.fail(f"keras-tuner {kt.__version__} has no {path} ({type(e).__name__}: {e}); "
                    f"{HINT}")


class ListOracle(kt.Oracle):
    """Hands out i = 0, 1, … n - 1 through the public hook; records every call."""

    def __init__(self, n):
        hp = kt.HyperParameters()
        hp.Int("i", 0, 1000)
        super().__init__(objective=kt.Objective("val_ce", "min"), max_trials=None,
                         hyperparameters=hp, max_consecutive_failed_trials=100)
        self.n = n
        self.asked, self.calls = [], []
        self.verbose = 0

    def populate_space(self, trial_id):
        self.asked.append(trial_id)
        if len(self.asked) > self.n:
            return {"status": kt.engine.trial.TrialStatus.STOPPED, "values": None}
        return {"status": kt.engine.trial.TrialStatus.RUNNING,
                "values": {"i": len(self.asked) - 1}}

    def save(self):
        self.calls.append("save")
        super().save()

    def _save_trial(self, trial):
        self.calls.append(("save_trial", trial.trial_id))
        super()._save_trial(trial)


class Minimal(kt.Tuner):
    """A tuner that overrides run_trial and has no hypermodel, as FineTuneTuner."""

    def run_trial(self, trial, *args, **kwargs):
        i = trial.hyperparameters.get("i")
        if i == 1:
            raise kt.errors.FailedTrialError("i is 1")
        return {"val_ce": float(i)}


@pytest.fixture
def no_kt_env(monkeypatch):
    for k in distributed.KT_VARS:
        monkeypatch.delenv(k, raising=False)


def test_the_installed_keras_tuner_is_in_the_tested_range():
    specifiers = pytest.importorskip("packaging.specifiers")
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    line = next(x.strip() for x in cfg["options"]["install_requires"].splitlines()
                if x.strip().startswith("keras-tuner"))
    spec = specifiers.SpecifierSet(line[len("keras-tuner"):].strip())
    assert "<" in str(spec), f"setup.cfg must bound keras-tuner from above ({line}): {HINT}"
    assert kt.__version__ in spec, (f"keras-tuner {kt.__version__} is outside the tested "
                                    f"range {spec}; {HINT}")


@pytest.mark.parametrize("path", glue.KERAS_TUNER_INTERNALS)
def test_each_internal_exists(path):
    assert callable(internal(path)), f"{path} is not callable any more; {HINT}"


@pytest.mark.parametrize("path,params", [
    ("keras_tuner.engine.oracle.Oracle._get_oracle_fname", ["self"]),
    ("keras_tuner.engine.oracle.Oracle._get_trial_dir", ["self", "trial_id"]),
    ("keras_tuner.engine.oracle.Oracle._save_trial", ["self", "trial"]),
    ("keras_tuner.engine.base_tuner.BaseTuner._get_tuner_fname", ["self"]),
    ("keras_tuner.src.distribute.oracle_chief.OracleServicer.__init__", ["self", "oracle"]),
])
def test_internal_signatures(path, params):
    got = list(inspect.signature(internal(path)).parameters)
    assert got == params, f"{path} now takes {got}, hubensemble calls it with {params}; {HINT}"


def test_state_is_written_only_through_save_and_save_trial_in_its_layout(tmp_path, no_kt_env):
    """PlanOracle/FineTuneTuner make Keras Tuner's writes atomic by overriding Oracle.save,
    Oracle._save_trial and BaseTuner.save; search.drop_damaged_tuner_state knows the layout."""
    oracle = ListOracle(2)
    tuner = Minimal(oracle, None, directory=str(tmp_path), project_name="p")
    project = tmp_path / "p"
    assert oracle._get_oracle_fname() == str(project / "oracle.json"), \
        f"Oracle._get_oracle_fname moved; {HINT}"
    assert tuner._get_tuner_fname() == str(project / f"{tuner.tuner_id}.json"), \
        f"BaseTuner._get_tuner_fname moved; {HINT}"
    trial = oracle.create_trial("tuner0")
    assert oracle._get_trial_dir(trial.trial_id) == str(project / f"trial_{trial.trial_id}")
    oracle.update_trial(trial.trial_id, {"val_ce": 1.0})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    saves = [c for c in oracle.calls if c == "save"]
    trial_saves = [c for c in oracle.calls if c != "save"]
    assert len(saves) >= 2, f"Oracle.create_trial/end_trial no longer call Oracle.save; {HINT}"
    assert len(trial_saves) >= 3 and {c[1] for c in trial_saves} == {trial.trial_id}, \
        f"Oracle no longer writes trials through Oracle._save_trial; {HINT}"
    tuner.save()
    names = sorted(os.listdir(project))
    assert {"oracle.json", f"{tuner.tuner_id}.json", f"trial_{trial.trial_id}"} <= set(names)
    for path in (project / "oracle.json", project / f"trial_{trial.trial_id}" / "trial.json"):
        json.loads(path.read_text())


def test_create_trial_serves_the_retry_queue_first_then_populate_space(tmp_path, no_kt_env):
    """PlanOracle relies on: Oracle.reload queues trials that were running for retry, and
    create_trial hands those out (without asking populate_space) before new ones; a STOPPED
    answer from populate_space ends that tuner (tuner_ids); ongoing_trials maps tuner id to
    its running Trial; the same tuner asking again gets its running trial."""
    oracle = ListOracle(3)
    tuner = Minimal(oracle, None, directory=str(tmp_path), project_name="p")
    first = oracle.create_trial("tuner0")
    assert oracle.create_trial("tuner0") is first
    assert oracle.ongoing_trials == {"tuner0": first} and "tuner0" in oracle.tuner_ids
    assert oracle.trials[first.trial_id] is first and first.hyperparameters.get("i") == 0
    tuner.save()
    # a new process on the same project: the running trial comes back first
    again = ListOracle(3)
    Minimal(again, None, directory=str(tmp_path), project_name="p")
    assert first.trial_id in again.trials, f"Oracle.reload no longer reads trials; {HINT}"
    retried = again.create_trial("tuner0")
    assert retried.trial_id == first.trial_id and again.asked == [], \
        f"Oracle.create_trial no longer serves the retry queue first; {HINT}"
    assert retried.status == "RUNNING" and retried.hyperparameters.get("i") == 0
    retried.status = "COMPLETED"
    again.update_trial(retried.trial_id, {"val_ce": 0.5})
    again.end_trial(retried)
    for i in range(3):
        new = again.create_trial("tuner0")
        assert len(again.asked) == i + 1 and new.trial_id != first.trial_id
        assert new.hyperparameters.get("i") == i  # the values populate_space returned
        new.status = "COMPLETED"
        again.update_trial(new.trial_id, {"val_ce": 1.0})
        again.end_trial(new)
    stopped = again.create_trial("tuner0")
    assert stopped.status == "STOPPED" and "tuner0" not in again.tuner_ids
    assert again.ongoing_trials == {}


def test_a_tuner_without_hypermodel_builds_nothing_and_records_failures(tmp_path, no_kt_env):
    """FineTuneTuner passes hypermodel=None (allowed when run_trial is overridden) so Keras
    Tuner does not build a model at start-up; FailedTrialError fails one trial, the search
    goes on; FatalError stops it."""
    oracle = ListOracle(3)
    tuner = Minimal(oracle, None, directory=str(tmp_path), project_name="p")
    assert tuner.hypermodel is None
    tuner.search(verbose=0)
    statuses = [oracle.trials[t].status for t in oracle.start_order]
    assert statuses == ["COMPLETED", "FAILED", "COMPLETED"]

    class Fatal(Minimal):
        def run_trial(self, trial, *args, **kwargs):
            raise kt.errors.FatalError("stop")

    with pytest.raises(kt.errors.FatalError):
        Fatal(ListOracle(1), None, directory=str(tmp_path), project_name="q").search(verbose=0)


def test_distributed_roles_follow_keras_tuners_environment_rule(tmp_path, monkeypatch,
                                                                no_kt_env):
    """distributed_role() and FineTuneTuner.search/save decide chief and worker as Keras
    Tuner does (KERASTUNER_ORACLE_IP set; "chief" in KERASTUNER_TUNER_ID): a worker's tuner
    talks to the chief through an OracleClient, the chief's keeps the real oracle."""
    assert distributed.distributed_role() is None
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "1")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner0")
    assert distributed.distributed_role() == "worker"
    worker = Minimal(ListOracle(1), None, directory=str(tmp_path), project_name="w")
    assert type(worker.oracle).__name__ == "OracleClient", \
        f"keras-tuner no longer wraps a worker's oracle by its environment rule; {HINT}"
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    assert distributed.distributed_role() == "chief"
    oracle = ListOracle(1)
    chief = Minimal(oracle, None, directory=str(tmp_path), project_name="c")
    assert chief.oracle is oracle


def test_the_chief_servicer_round_trip_and_exit_rule(tmp_path, no_kt_env):
    """serve_oracle = grpc server + oracle_chief.OracleServicer (its stop_triggered flag)
    + protos.get_service_grpc().add_OracleServicer_to_server, until oracle_chief.exit_chief
    (no trial running, no tuner left)."""
    import grpc
    from concurrent import futures

    protos = internal("keras_tuner.src.protos")
    chief = internal("keras_tuner.src.distribute.oracle_chief")
    oracle = ListOracle(1)
    Minimal(oracle, None, directory=str(tmp_path), project_name="p")
    servicer = chief.OracleServicer(oracle)
    assert servicer.stop_triggered is False
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert server.add_insecure_port(f"127.0.0.1:{port}") == port
    server.start()
    try:
        stub = protos.get_service_grpc().OracleStub(
            grpc.insecure_channel(f"127.0.0.1:{port}"))
        request = protos.get_service().CreateTrialRequest
        reply = stub.CreateTrial(request(tuner_id="tuner0"), timeout=30)
        running = kt.engine.trial.Trial.from_proto(reply.trial)
        assert running.status == "RUNNING" and not servicer.stop_triggered
        assert chief.exit_chief(oracle) is False  # a trial is running
        running.status = "COMPLETED"
        oracle.update_trial(running.trial_id, {"val_ce": 1.0})
        oracle.end_trial(running)
        reply = stub.CreateTrial(request(tuner_id="tuner0"), timeout=30)
        assert kt.engine.trial.Trial.from_proto(reply.trial).status == "STOPPED"
        assert servicer.stop_triggered, f"OracleServicer.stop_triggered changed; {HINT}"
        assert chief.exit_chief(oracle) is True
    finally:
        server.stop(grace=None)


def test_the_hyperparameter_classes_tensorboard_reads():
    """tensorboard_hparams reads Choice.values, Fixed.value, Int/Float min_value and
    max_value and HyperParameters.space/get (public classes, attributes not documented)."""
    hp = kt.HyperParameters()
    hp.Fixed("a", 3)
    hp.Choice("b", ["x", "y"])
    hp.Int("c", 1, 5)
    hp.Float("d", 0.1, 0.5, sampling="log")
    got = {h.name: (type(h.domain).__name__, v) for h, v in glue.tensorboard_hparams(hp).items()}
    assert got == {"a": ("Discrete", 3), "b": ("Discrete", "x"), "c": ("IntInterval", 1),
                   "d": ("RealInterval", 0.1)}
    domains = {h.name: h.domain for h in glue.tensorboard_hparams(hp)}
    assert domains["b"].values == ["x", "y"]
    assert (domains["c"].min_value, domains["c"].max_value) == (1, 5)
    assert (domains["d"].min_value, domains["d"].max_value) == (0.1, 0.5)


def test_docs_name_every_internal():
    text = (ROOT / "docs" / "tune.md").read_text(encoding="utf-8")
    section = text.split("## Keras Tuner internals", 1)[-1]
    for path in glue.KERAS_TUNER_INTERNALS:
        short = re.sub(r"^keras_tuner\.(src\.)?(engine\.)?", "", path)
        assert short in section, f"docs/tune.md does not list {path}"


def test_plan_oracles_reload_leaves_the_oracle_as_keras_tuners_does(tmp_path, no_kt_env):
    """PlanOracle.reload replaces Oracle.reload (whose glob of the project folder missed the
    trials of a run folder named with glob characters) by its steps in keras-tuner 1.4.7:
    the trials, oracle.json, the running trials queued for retry (Oracle._retry_queue). On a
    plain folder both must leave the same oracle; a release whose reload does more fails here."""
    from hubensemble.catalogue import ModuleSpec
    from hubensemble.rundir import Run
    from hubensemble.tune.plans import plan_sweep

    spec = ModuleSpec(name="gen", handle="/nowhere", family="generalist")
    plan = plan_sweep({"modules": [{"name": "gen", "status": "ok", "score": 0.9}],
                       "selected": ["gen"]}, {"gen": spec}, sweep="seeds", budget=3, task={},
                      profile="quick")
    run = Run(tmp_path)

    def tuner(oracle):
        return glue.FineTuneTuner(oracle, glue.FineTuneHyperModel({"gen": spec}, 10, plan),
                                  run=run, task=None, specs={"gen": spec}, profile="quick",
                                  keep_weights="all", directory=str(run.tuner),
                                  project_name="seeds")

    first = glue.PlanOracle(plan, run.candidates)
    made = tuner(first)
    done = first.create_trial("tuner0")
    first.update_trial(done.trial_id, {"val_ce": 1.0})
    done.status = "COMPLETED"
    first.end_trial(done)
    first.create_trial("tuner0")  # running when the process "dies"
    made.save()
    ours, theirs = glue.PlanOracle(plan, run.candidates), glue.PlanOracle(plan, run.candidates)
    tuner(ours)  # its reload: PlanOracle's
    theirs._set_project_dir(str(run.tuner), "seeds")
    kt.Oracle.reload(theirs)
    assert ours._retry_queue == theirs._retry_queue == ["0001"], HINT
    assert ours.ongoing_trials == theirs.ongoing_trials == {}, HINT
    assert ({t: o.get_state() for t, o in ours.trials.items()}
            == {t: o.get_state() for t, o in theirs.trials.items()}), HINT
    assert ours.get_state() == theirs.get_state(), HINT


def test_the_chief_returns_once_the_call_it_was_serving_has_returned(
        no_kt_env, monkeypatch, caplog):
    """serve_oracle's end (a fault hunt of tune): gRPC's server.stop(grace) returns at once, and
    a worker's call still running went on behind it, up to the grace (5 s), using the oracle
    after tune.search had taken it out of Keras Tuner's lock maps; the port closed a moment
    later. Now the chief waits on the Event stop returns, and for the call to return; past
    STOP_WAIT it warns, naming the address, and returns. A real server, a real client."""
    import logging
    import threading

    import grpc

    protos = internal("keras_tuner.src.protos")
    entered, release, returned, calls = threading.Event(), threading.Event(), [], []

    class Slow(ListOracle):  # a worker's GetSpace is in the oracle as the chief stops
        def get_space(self):
            entered.set()
            release.wait(30)
            space = super().get_space()
            returned.append(1)
            return space

    class Stop(Exception):  # what stops the chief (a Ctrl-C, an error)
        pass

    def serve(release_after):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
        monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(port))
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = protos.get_service_grpc().OracleStub(channel)
        entered.clear(), release.clear(), returned.clear(), calls.clear()

        def poll():
            calls.append(stub.GetSpace.future(protos.get_service().GetSpaceRequest(),
                                              timeout=30))
            assert entered.wait(30)
            release_after()
            raise Stop

        with pytest.raises(Stop):
            distributed.serve_oracle(Slow(1), on_poll=poll, poll=0.01)
        with socket.socket() as s:
            listening = s.connect_ex(("127.0.0.1", port)) == 0
        return channel, port, listening

    # The call returns 0.2 s after the stop: the chief returns after it, its port closed.
    channel, _, listening = serve(lambda: threading.Timer(0.2, release.set).start())
    assert returned, "serve_oracle returned while a worker's call was still running"
    assert not listening
    assert calls[0].result(timeout=5).hyperparameters  # and the worker had its answer
    channel.close()
    # A call that does not return in time: said, and the chief returns all the same.
    monkeypatch.setattr(distributed, "STOP_GRACE", 0.05)
    monkeypatch.setattr(distributed, "STOP_WAIT", 0.3)
    with caplog.at_level(logging.WARNING, logger="hubensemble"):
        channel, port, _ = serve(lambda: None)
    assert not returned
    release.set()
    channel.close()
    assert (f"a worker's call to the chief's oracle (at 127.0.0.1:{port}) was still running "
            "0.3 s after the server was told to stop; it ends by itself") in caplog.text


def test_a_chief_and_its_workers_reach_each_other_at_an_ipv6_address(no_kt_env, monkeypatch):
    """--oracle [::1]:PORT: parse_address took the brackets off, and Keras Tuner's chief and
    client (and serve_oracle) join f"{ip}:{port}", "::1:PORT", which gRPC reads as another
    address: the chief stopped with "cannot listen on ::1:PORT" and a worker's call failed.
    kerastuner_env now keeps an IPv6 host in brackets (given so or not)."""
    import grpc

    with socket.socket(socket.AF_INET6) as s:
        try:
            s.bind(("::1", 0))
        except OSError:
            pytest.skip("no IPv6 loopback here")
        port = s.getsockname()[1]
    protos = internal("keras_tuner.src.protos")

    class Stop(Exception):
        pass

    answers = []

    def poll():  # a worker's call as Keras Tuner's client makes it (oracle_client.py)
        ip, at = os.environ["KERASTUNER_ORACLE_IP"], os.environ["KERASTUNER_ORACLE_PORT"]
        with grpc.insecure_channel(f"{ip}:{at}") as channel:
            stub = protos.get_service_grpc().OracleStub(channel)
            answers.append(stub.GetSpace(protos.get_service().GetSpaceRequest(), timeout=30))
        raise Stop

    with distributed.kerastuner_env("chief", f"[::1]:{port}"):
        with pytest.raises(Stop):
            distributed.serve_oracle(ListOracle(1), on_poll=poll, poll=0.01)
        assert distributed.chief_address() == ("::1", port, f"[::1]:{port}")
    assert answers and answers[0].hyperparameters
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "::1")  # set by hand, without brackets
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(port))
    with distributed.kerastuner_env("tuner0", None):
        assert os.environ["KERASTUNER_ORACLE_IP"] == "[::1]"
    assert os.environ["KERASTUNER_ORACLE_IP"] == "::1"
