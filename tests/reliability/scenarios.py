"""Fault-injection scenarios: plain functions of a Workspace returning (name, survived, detail).

The pytest suite (tests/reliability/test_*.py) and tools/benchmarks/faults.py call the very
same functions, so the figures and the tests cannot drift. Every scenario runs the real
command line on real files: tiny SavedModels written here, a local http.server on 127.0.0.1,
SIGKILL at an observed moment. Nothing of TensorFlow is mocked. A command runs in a process
of its own (`Workspace.run`) where the process is part of what is checked (kills, signals,
downloads, bad modules); the data path's scenarios and the commands run on a copy of a
completed fit (export, ensemble, tune) check what the command reads, writes and says, and run
it through cli.main in this process (`Workspace.here`): the same code and words, without the
seconds each new process spent importing TensorFlow.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import io
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TEMP_MARKER = ".tmp-"  # hubensemble.fileio.TEMP_MARKER, spelled out: a reader's view
#: One module's default sweep (4 trials): enough for a kill between finished and running
#: trials, and half the tune and export time of two. No evaluate stage (--no-corruptions):
#: no scenario of a fit reads robustness.json, and it cost each completed fit seconds.
FIT_ARGS = ("--profile", "quick", "--top-k", "1", "--no-corruptions")
#: Seconds a scenario's command may take before it counts as hung.
CLI_TIMEOUT = 420
#: A completed fit's report with its figures built but not drawn (as conftest's
#: figures_not_drawn, lazily: matplotlib loads when the report makes its first figure):
#: matplotlib's tight layout and savefig were 3-5 of a quick fit's 33-45 s (its report stage),
#: in every process that completes a fit; no scenario reads a figure. Each is a real 1 x 1 PNG.
FIGURES_NOT_DRAWN = """
import io as _io

from PIL import Image as _Image

from hubensemble.report import figures as _figures

_blank = _io.BytesIO()
_Image.new("L", (1, 1), 128).save(_blank, format="PNG")
_made = _figures._figure


def _undrawn(width, height):
    fig = _made(width, height)
    fig.tight_layout = lambda *args, **kwargs: None
    return fig


_figures._figure = _undrawn
_figures._png = lambda fig, _png=_blank.getvalue(): _png
"""


# ---------------------------------------------------------------------------------------------
# The workspace: a folder, an environment for the commands, memoised shared inputs
# ---------------------------------------------------------------------------------------------

@dataclass
class Proc:
    """A finished command: exit code, output, wall time."""

    args: list
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def tail(self, n=1500):
        return f"exit {self.returncode}; stderr: …{self.stderr[-n:]}; stdout: …{self.stdout[-300:]}"

    def went_on_past_modules(self) -> bool:
        """rank's or fit's exit of a run that went on past modules that failed: 1, its last
        line saying they were left out and the others kept (README, exit statuses; it was 0
        with nothing a script could see before 2026-12-08)."""
        return (self.returncode == 1 and "of the catalogue failed and" in self.stderr
                and "left out" in self.stderr)


class Workspace:
    """A scratch folder for the scenarios, with the environment their commands run in.

    Caches (embeddings, TF Hub downloads, the zoo) live inside it, never in the user's home.
    `memo(key, fn)` shares an expensive input (modules, a fitted run) between scenarios.
    """

    def __init__(self, root, *, http_timeout: float = 2.0):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.http_timeout = float(http_timeout)
        self._memo = {}
        self._count = itertools.count()

    def fresh(self, name) -> Path:
        """A new, empty folder path under the workspace (not created)."""
        return self.root / f"{name}-{next(self._count):02d}"

    def memo(self, key, fn):
        if key not in self._memo:
            self._memo[key] = fn()
        return self._memo[key]

    def env(self, cache=None, **extra) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KERASTUNER_")}
        env.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1",
                   HUBENSEMBLE_CACHE_DIR=str(cache or self.root / "cache"),
                   TFHUB_CACHE_DIR=str(self.root / "tfhub"),
                   XDG_CACHE_HOME=str(self.root / "xdg"),
                   HUBENSEMBLE_HTTP_TIMEOUT=str(self.http_timeout))
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def _logs(self, args):
        folder = self.root / "logs"
        folder.mkdir(exist_ok=True)
        stem = f"{next(self._count):02d}-{args[0]}"
        return folder / f"{stem}.out", folder / f"{stem}.err"

    def start(self, *args, cache=None, env=None, prelude=None):
        """Starts `python -m hubensemble ARGS`; output goes to files (a pipe nobody reads
        could fill up and stall the process at the moment it is to be killed). `prelude`:
        Python run in the process first (fault injection, figures not drawn), then the
        program `python -m hubensemble` runs (runpy: its __main__, signal handlers, exit)."""
        args = [str(a) for a in args]
        out, err = self._logs(args)
        command = [sys.executable, "-m", "hubensemble"]
        if prelude:
            command = [sys.executable, "-c", prelude + "\nimport runpy\n"
                       "runpy.run_module('hubensemble', run_name='__main__', alter_sys=True)"]
        with open(out, "w") as o, open(err, "w") as e:
            proc = subprocess.Popen([*command, *args], stdout=o,
                                    stderr=e, cwd=self.root, env=env or self.env(cache))
        proc.logs = (out, err)
        proc.args_ = args
        proc.started = time.monotonic()
        return proc

    def finish(self, proc, timeout=CLI_TIMEOUT) -> Proc:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        seconds = time.monotonic() - proc.started
        out, err = (p.read_text(errors="replace") for p in proc.logs)
        return Proc(proc.args_, proc.returncode, out, err, seconds)

    def run(self, *args, cache=None, env=None, prelude=None, timeout=CLI_TIMEOUT) -> Proc:
        return self.finish(self.start(*args, cache=cache, env=env, prelude=prelude), timeout)

    def here(self, *args, cache=None) -> Proc:
        """`hubensemble ARGS` through cli.main in this process, in `run`'s environment
        (`env`: the workspace's caches, no KERASTUNER_ variable) and folder, its stdout and
        stderr captured (Python's streams: TensorFlow's C++ lines are not in them). For
        commands whose process is not what a scenario checks; an exception out of main is
        the scenario's (`scenario`: lost, with its last line), as a traceback would be."""
        from hubensemble.cli import main

        args = [str(a) for a in args]
        env, saved = self.env(cache), dict(os.environ)
        streams = [io.TextIOWrapper(io.BytesIO(), encoding="utf-8", newline="",
                                    write_through=True) for _ in range(2)]
        started = time.monotonic()
        for key in set(saved) - set(env):
            del os.environ[key]
        os.environ.update(env)
        folder = os.getcwd()  # not contextlib.chdir: Python 3.11's, and 3.10 is supported
        try:
            os.chdir(self.root)
            with contextlib.redirect_stdout(streams[0]), contextlib.redirect_stderr(streams[1]):
                try:
                    code = main(args)
                except SystemExit as e:  # argparse's usage errors
                    code = e.code
        finally:
            os.chdir(folder)
            os.environ.clear()
            os.environ.update(saved)
        out, err = (s.buffer.getvalue().decode("utf-8", "replace") for s in streams)
        return Proc(args, code, out, err, time.monotonic() - started)


# ---------------------------------------------------------------------------------------------
# Inputs: tiny modules (some broken on purpose), data sets, catalogues
# ---------------------------------------------------------------------------------------------

def _poison(kind, target):
    import keras
    import tensorflow as tf

    class Poison(keras.layers.Layer):
        """What a broken or hostile module does on top of honest features."""

        def call(self, x, training=None):
            if kind == "nan":
                return x + float("nan")
            if kind == "diverge":  # fine at inference; explodes once fine-tuning starts
                return x * 1e30 if training else x
            if kind == "read":
                data = tf.io.read_file(target)
                return x + tf.cast(tf.strings.length(data), x.dtype) * 0.0
            if kind == "write":
                tf.io.write_file(target, tf.strings.as_string(tf.reduce_sum(x)))
                return x
            raise ValueError(kind)

    return Poison()


def build_module(path, *, seed=0, width=8, kind=None, target=None) -> str:
    """A one-conv reusable SavedModel: [N, H, W, 3] in [0, 1] -> [N, width] features.

    kind: None (honest), "four_d" (returns the conv map), "nan", "diverge" (x 1e30 only in
    training mode), "read" / "write" (touches the file `target` in __call__).
    """
    import keras

    from hubensemble.hub import write_hub_module

    keras.utils.set_random_seed(seed)
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(width, 3, padding="same", activation="relu")(inp)
    if kind != "four_d":
        x = keras.layers.GlobalAveragePooling2D()(x)
    if kind in ("nan", "diverge", "read", "write"):
        x = _poison(kind, target)(x)
    return write_hub_module(keras.Model(inp, x), str(path))


def module(ws, name, **kwargs) -> str:
    """A module folder built once per workspace (kwargs as build_module)."""
    return ws.memo(("module", name), lambda: build_module(ws.root / "modules" / name, **kwargs))


def damaged_copy(ws, source, name, damage) -> str:
    """A copy of a module folder with `damage` ("truncate": half of each variables.data-*
    file; "no_pb": saved_model.pb deleted)."""
    dst = ws.root / "modules" / name
    if dst.exists():
        return str(dst)
    shutil.copytree(source, dst)
    if damage == "truncate":
        truncate_variables(dst)
    elif damage == "no_pb":
        (dst / "saved_model.pb").unlink()
    return str(dst)


def truncate_variables(folder):
    for data in Path(folder, "variables").glob("variables.data-*"):
        size = data.stat().st_size
        with open(data, "r+b") as f:
            f.truncate(size // 2)


def catalogue(ws, name, entries) -> str:
    """A catalogue YAML (JSON flow mappings are YAML) with one line per entry."""
    path = ws.root / "catalogues" / f"{name}.yaml"
    path.parent.mkdir(exist_ok=True)
    lines = ["modules:"] + [f"  - {json.dumps(e)}" for e in entries]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def rgb_npz(ws, *, per_class=30, size=16, seed=0) -> str:
    """npz: spec of a 3-class task a one-conv module learns at once (the class is the
    brightest colour channel): `per_class` training and per_class / 3 test images a class;
    validation is split off the training images."""
    def make():
        rng = np.random.default_rng(seed)

        def images(n):
            y = np.repeat(np.arange(3), n)
            x = rng.uniform(0.0, 0.5, (len(y), size, size, 3))
            x[np.arange(len(y)), :, :, y] += 0.4
            return np.round(x * 255).astype(np.uint8), y

        (x, y), (xt, yt) = images(per_class), images(per_class // 3)
        path = ws.root / "data" / "rgb.npz"
        path.parent.mkdir(exist_ok=True)
        np.savez(path, x_train=x, y_train=y, x_test=xt, y_test=yt,
                 class_names=np.array(["red", "green", "blue"]))
        return f"npz:{path}"

    return ws.memo(("data", "rgb", per_class, size, seed), make)


def small_catalogue(ws) -> str:
    """Three honest modules (one generalist)."""
    entries = [{"name": f"m{i}", "handle": module(ws, f"m{i}", seed=i, width=6 + 2 * i),
                "family": "generalist" if i == 0 else "expert"} for i in range(3)]
    return ws.memo(("cat", "small"), lambda: catalogue(ws, "small", entries))


def wide_catalogue(ws, n=10) -> str:
    """`n` distinct honest modules: a rank stage long enough to be caught in the act."""
    entries = [{"name": f"w{i:02d}", "handle": module(ws, f"w{i:02d}", seed=100 + i,
                                                      width=8 + 2 * i),
                "family": "generalist" if i == 0 else "expert"} for i in range(n)]
    return ws.memo(("cat", "wide", n), lambda: catalogue(ws, f"wide{n}", entries))


# ---------------------------------------------------------------------------------------------
# A local HTTP server and tarballs (as tests/test_hub.py's, kept here on purpose)
# ---------------------------------------------------------------------------------------------

class Server:
    """http.server on 127.0.0.1, port 0, serving registered bodies; logs request paths.

    mode "hang" never answers (within `hang` seconds), "truncate" sends half the body with the
    full Content-Length and closes the connection, "trickle" sends 256 bytes every 0.25 s,
    "redirect" answers `status` with the body as its Location.
    """

    def __init__(self, hang=60.0):
        self.routes, self.requests = {}, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                route = server.routes.get(self.path.split("?")[0])
                if route is None:
                    self.send_error(404)
                    return
                status, body, mode = route
                if mode == "redirect":  # body: the Location
                    self.send_response(status)
                    self.send_header("Location", body.decode())
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if mode == "hang":
                    time.sleep(hang)
                    return
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if mode == "truncate":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.close()
                    return
                if mode == "trickle":
                    for i in range(0, len(body), 256):
                        self.wfile.write(body[i:i + 256])
                        self.wfile.flush()
                        time.sleep(0.25)
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        class Quiet(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a client that was killed or timed out: expected here

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def add(self, path, body, status=200, mode=None):
        self.routes[path] = (status, body, mode)
        return self.url + path

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def tarball(folder, extra=()):
    """The contents of `folder` as a .tar.gz (members relative to it, as TF Hub serves),
    plus `extra` (TarInfo, bytes or None) members."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in sorted(os.listdir(folder)):
            tar.add(os.path.join(folder, name), arcname=name)
        for info, data in extra:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------
# What must hold in a run directory
# ---------------------------------------------------------------------------------------------

def is_temp(name) -> bool:
    return os.path.basename(str(name)).startswith(TEMP_MARKER)


def trial_starts(run) -> dict:
    """{trial: number of 'start' lines} over every sweep's trials.log."""
    counts = {}
    for log in Path(run, "tuner").glob("*/trials.log"):
        for row in (line.split("\t") for line in log.read_text().splitlines()):
            if len(row) > 5 and row[5] == "start":
                counts[row[4]] = counts.get(row[4], 0) + 1
    return counts


def planned(run, sweep="default") -> list:
    return [e["trial"] for e in json.loads(Path(run, "tuner", sweep, "plan.json").read_text())]


def done_candidates(run) -> set:
    folder = Path(run, "candidates")
    if not folder.is_dir():
        return set()
    return {d.name for d in folder.iterdir()
            if not is_temp(d.name) and (d / "trial.json").exists()}


def temp_entries(root) -> list:
    """Paths (relative) of temp files and folders anywhere below `root`."""
    found = []
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            if is_temp(name):
                found.append(os.path.relpath(os.path.join(dirpath, name), root))
        dirs[:] = [d for d in dirs if not is_temp(d)]
    return sorted(found)


def bad_json(root) -> list:
    """JSON files below `root` (temp ones excepted) that do not parse."""
    bad = []
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not is_temp(d)]
        for name in files:
            if name.endswith(".json") and not is_temp(name):
                path = os.path.join(dirpath, name)
                try:
                    with open(path, encoding="utf-8") as f:
                        json.load(f)
                except (OSError, ValueError) as e:
                    bad.append(f"{os.path.relpath(path, root)} ({type(e).__name__})")
    return bad


def temps_taken_as_results(run) -> list:
    """Temp names that any result of the run lists: ranking rows, candidates, members."""
    from hubensemble.ensemble import load_candidates

    run = Path(run)
    found = []
    if (run / "ranking.json").exists():
        for row in json.loads((run / "ranking.json").read_text()).get("modules", []):
            if is_temp(row.get("name", "")) or TEMP_MARKER in str(row.get("handle", "")):
                found.append(f"ranking row {row.get('name')}")
    if (run / "labels" / "val.npy").exists():
        cands, skipped = load_candidates(run)
        found += [f"candidate {c.trial}" for c in cands
                  if is_temp(c.trial) or TEMP_MARKER in str(c.folder)]
        found += [f"skipped candidate {t}" for t, _ in skipped if is_temp(t)]
    if (run / "ensemble.json").exists():
        for m in json.loads((run / "ensemble.json").read_text()).get("members", []):
            if TEMP_MARKER in f"{m.get('trial')}{m.get('path')}":
                found.append(f"ensemble member {m.get('trial')}")
    if (run / "run.json").exists():
        export = json.loads((run / "run.json").read_text()).get("export") or {}
        if TEMP_MARKER in str(export.get("path", "")):
            found.append(f"export {export['path']}")
    return found


def disk_problems(run) -> list:
    """What a kill may never leave: unreadable JSON, temp files listed as results."""
    return [f"unreadable JSON {p}" for p in bad_json(run)] + [
        f"temp taken as result: {p}" for p in temps_taken_as_results(run)]


@functools.lru_cache(maxsize=8)
def _test_images(spec):
    from hubensemble.data import load_task

    task = load_task(spec)
    return np.asarray(task.test.images, np.float32) / 255.0


def export_difference(run, spec, export=None, weights=None) -> float:
    """max |export probabilities - ensemble.json-weighted candidates' test_probs| on the
    test images; `weights` ({trial: w}) overrides ensemble.json's."""
    import tensorflow as tf

    run = Path(run)
    export = Path(export or run / "export")
    x = tf.constant(_test_images(spec))
    probs = tf.saved_model.load(str(export)).signatures["serving_default"](
        images=x)["probabilities"].numpy()
    if weights is None:
        members = json.loads((run / "ensemble.json").read_text())["members"]
        weights = {m["trial"]: m["weight"] for m in members}
    total = sum(weights.values())
    expected = sum(w / total * np.load(run / "candidates" / t / "test_probs.npy")
                   for t, w in weights.items())
    return float(np.abs(probs - expected).max())


def short_reason(row) -> str:
    """"[stage] what went wrong", without the module and handle the reason starts with."""
    reason = str(row.get("reason") or "")
    return f"[{row.get('stage')}] " + reason.split("': ", 1)[-1][:100]


def no_traceback(proc) -> bool:
    return "Traceback" not in proc.stderr and "Traceback" not in proc.stdout


# ---------------------------------------------------------------------------------------------
# Scenario bookkeeping
# ---------------------------------------------------------------------------------------------

class Outcome:
    """Collects a scenario's checks; survived = every check held."""

    def __init__(self, name):
        self.name = name
        self.failed, self.notes = [], []

    def check(self, condition, what):
        if not condition:
            self.failed.append(what)
        return bool(condition)

    def note(self, text):
        self.notes.append(text)

    def result(self):
        if self.failed:
            return self.name, False, "; ".join(self.failed)
        return self.name, True, "; ".join(self.notes)


SCENARIOS = []


def scenario(fn):
    """Registers a scenario; an exception inside it counts as 'lost', with its last line."""
    name = fn.__name__.replace("_", "-")

    @functools.wraps(fn)
    def wrapper(ws):
        out = Outcome(name)
        try:
            fn(ws, out)
        except Exception as e:  # noqa: BLE001 - a crash of the scenario is a lost scenario
            tb = traceback.format_exc().strip().splitlines()
            out.check(False, f"scenario raised {type(e).__name__}: {e} ({tb[-3:]})")
        return out.result()

    wrapper.scenario_name = name
    SCENARIOS.append(wrapper)
    return wrapper


def kill_when(proc, ready, *, timeout=CLI_TIMEOUT, poll=0.01) -> bool:
    """Polls `ready()` and SIGKILLs `proc` as soon as it holds; False when the process ended
    (or the timeout passed) first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if ready():
            proc.send_signal(signal.SIGKILL)
            proc.wait(60)
            return True
        time.sleep(poll)
    if proc.poll() is None:
        proc.kill()
        proc.wait(60)
    return False


def _lock_owner_alive(path) -> bool:
    """Whether some live process holds the lock on `path` (hubensemble's locks are kernel
    flocks: a dead holder holds nothing, and the empty lock file may stay)."""
    from hubensemble.fileio import lock_is_held

    return Path(path).exists() and lock_is_held(path)


def fit_args(ws, cat, data, run, *extra):
    return ["fit", "-q", "--catalogue", cat, "--data", data, "--out", run, *FIT_ARGS, *extra]


def check_completed_fit(out, proc, run, data, *, once=None, sweep="default"):
    """A finished fit: exit 0, every planned trial (of `sweep`) has one candidate, `once`
    (default: all) started exactly once, the export answers like the weighted candidates,
    clean disk."""
    if not out.check(proc.returncode == 0, f"the re-run failed: {proc.tail()}"):
        return
    trials = planned(run, sweep)
    starts = trial_starts(run)
    out.check(done_candidates(run) == set(trials),
              f"candidates {sorted(done_candidates(run))} != plan {trials}")
    out.check(all(starts.get(t, 0) >= 1 for t in trials), f"trials never started: {starts}")
    for t in (trials if once is None else once):
        out.check(starts.get(t) == 1, f"{t} started {starts.get(t)} times, not once")
    try:
        diff = export_difference(run, data)
        out.check(diff <= 1e-5, f"export differs from the weighted candidates by {diff:.2e}")
    except Exception as e:  # noqa: BLE001
        out.check(False, f"the export does not load or answer: {type(e).__name__}: {e}")
    out.check(not temp_entries(Path(run, "candidates")),
              f"temp candidates left: {temp_entries(Path(run, 'candidates'))}")
    out.check(not [p for p in os.listdir(run) if p.startswith(TEMP_MARKER + "export")],
              "a temp export folder was left in the run")
    for p in disk_problems(run):
        out.check(False, p)


# ---------------------------------------------------------------------------------------------
# Kills
# ---------------------------------------------------------------------------------------------

@scenario
def kill_fit_during_rank(ws, out):
    """SIGKILL while rank embeds module after module; the re-run reuses what was cached."""
    cat, data = wide_catalogue(ws), rgb_npz(ws)
    run, cache = ws.fresh("kill-rank"), ws.fresh("cache-kill-rank")
    # One trial (not the default sweep's 4): what follows rank is not what is checked here.
    args = fit_args(ws, cat, data, run, "--sweep", "seeds", "--budget", "1")

    def entries():
        return [p for p in cache.rglob("*.npy") if not is_temp(p.name)] if cache.exists() \
            else []

    proc = ws.start(*args, cache=cache)
    killed = kill_when(proc, lambda: entries() and not (run / "ranking.json").exists())
    if not out.check(killed, f"rank ended before it could be killed: "
                             f"{ws.finish(proc).tail()}"):
        return
    cached = entries()
    out.note(f"killed with {len(cached)} of 10 modules cached")
    out.check(not (run / "ranking.json").exists(), "a ranking was written before rank ended")
    for p in disk_problems(run):
        out.check(False, f"after the kill: {p}")
    for p in cached:
        emb = np.load(p, allow_pickle=False)
        out.check(emb.ndim == 2 and np.isfinite(emb).all(), f"cache entry {p.name} is broken")
    again = ws.run(*args, cache=cache, prelude=FIGURES_NOT_DRAWN)
    check_completed_fit(out, again, run, data, sweep="seeds")
    log = (run / "log.txt").read_text(encoding="utf-8", errors="replace")  # (-q: not stderr)
    out.check("ended without a word in its rank stage" in log and "OOM killer" in log,
              "the re-run's log does not say the last fit was killed in rank "
              "(memory.killed_before)")
    if again.returncode == 0:
        rows = json.loads((run / "ranking.json").read_text())["modules"]
        hits = sum(1 for r in rows if r["cache_hit"])
        out.check(all(r["status"] == "ok" for r in rows), "a module failed in the re-run")
        out.check(hits == len(cached), f"{hits} cache hits in the re-run, {len(cached)} "
                                       "entries were complete at the kill")
        out.check(len(entries()) == len(rows), f"{len(entries())} cache entries for "
                                               f"{len(rows)} modules")
        # Lock files stay beside their entries (filelock keeps them); what matters is that
        # the killed writer holds none: the kernel released its flock when it died.
        locks = list(cache.rglob("*.lock"))
        held = [p.name for p in locks if _lock_owner_alive(p)]
        out.check(not held, f"cache locks still held: {held}")
        if locks and not held:
            out.note(f"{len(locks)} lock file(s) beside the entries, none held")


def _killed_in_tune(ws):
    """A fit SIGKILLed in tune with every trial but the last finished and the last running,
    made once: (folder, None), or (None, why it could not be killed). Both tune scenarios
    resume a copy of it (`_kill_during_tune`): the kill is the same, what they damage before
    resuming is not; each re-run trains the one interrupted trial (the trials this process
    finishes, it finishes once for both)."""
    def make():
        run = ws.fresh("killed-in-tune")

        def ready():
            done = done_candidates(run)
            if not (done and set(trial_starts(run)) - done):
                return False
            return len(done) >= len(planned(run)) - 1

        proc = ws.start(*fit_args(ws, small_catalogue(ws), rgb_npz(ws), run))
        if not kill_when(proc, ready):
            return None, f"tune ended before it could be killed: {ws.finish(proc).tail()}"
        return run, None

    return ws.memo("killed-in-tune", make)


def _kill_during_tune(ws, out, run, *, damage_tuner_state=False):
    source, why = _killed_in_tune(ws)
    if not out.check(source is not None, why):
        return None
    # A copy keeps the files' mtimes (copy2), so "never written again" still compares them.
    shutil.copytree(source, run, symlinks=True)
    data = rgb_npz(ws)
    args = fit_args(ws, small_catalogue(ws), data, run)
    finished = {d: os.path.getmtime(run / "candidates" / d / "trial.json")
                for d in done_candidates(run)}
    out.check(finished, f"the kill left no finished trial: {trial_starts(run)}")
    out.note(f"killed with {len(finished)} of {len(planned(run))} trials finished")
    for p in disk_problems(run):
        out.check(False, f"after the kill: {p}")
    if damage_tuner_state:
        project = run / "tuner" / "default"
        damaged = []
        # What a kill between open("w") and write() leaves of Keras Tuner's JSON state.
        for path in [project / "oracle.json", *sorted(project.glob("trial_*/trial.json"))[:1],
                     *sorted(project.glob("tuner*.json"))[:1]]:
            if path.exists():
                size = path.stat().st_size
                with open(path, "r+b") as f:
                    f.truncate(size // 2 if "trial_" in str(path) else 0)
                damaged.append(str(path.relative_to(run)))
        out.note(f"damaged {', '.join(damaged)}")
    again = ws.run(*args, prelude=FIGURES_NOT_DRAWN)
    starts = trial_starts(run)
    check_completed_fit(out, again, run, data, once=list(finished))
    for trial, mtime in finished.items():
        path = run / "candidates" / trial / "trial.json"
        out.check(path.exists() and os.path.getmtime(path) == mtime,
                  f"finished trial {trial} was written again")
    if again.returncode == 0:
        out.check(sum(starts.values()) <= len(planned(run)) + 1,
                  f"more than the one interrupted trial ran twice: {starts}")
    return again


@scenario
def kill_fit_during_tune(ws, out):
    """SIGKILL mid-sweep: finished trials are never re-run, the interrupted one is."""
    _kill_during_tune(ws, out, ws.fresh("kill-tune"))


@scenario
def kill_while_keras_tuner_writes_state(ws, out):
    """Keras Tuner's JSON state half-written by a kill: the sweep still resumes."""
    _kill_during_tune(ws, out, ws.fresh("kill-state"), damage_tuner_state=True)


# Keras Tuner's own JSON writer, replaced by one that is SIGKILLed half-way through the write:
# any state written in place by Keras Tuner kills the process at the worst moment.
KILL_IN_KERAS_TUNER_WRITE = """
import json, os, signal
import keras_tuner.src.utils as _kt_utils


def _save_json_then_die(path, obj):
    text = json.dumps(obj)
    with open(path, "w") as f:
        f.write(text[: len(text) // 2])
    os.kill(os.getpid(), signal.SIGKILL)


_kt_utils.save_json = _save_json_then_die
"""


@scenario
def kill_inside_keras_tuner_json_write(ws, out):
    """Every in-place JSON write of Keras Tuner is a SIGKILL half-way: the sweep must never
    write its state that way, so the fit completes at the first attempt."""
    cat, data = small_catalogue(ws), rgb_npz(ws)
    run = ws.fresh("kt-write")
    args = fit_args(ws, cat, data, run)
    attempts = []
    for _ in range(3):
        attempts.append(ws.run(*args, prelude=KILL_IN_KERAS_TUNER_WRITE + FIGURES_NOT_DRAWN))
        if attempts[-1].returncode == 0:
            break
    killed = sum(1 for p in attempts if p.returncode == -signal.SIGKILL)
    out.check(killed == 0, f"killed {killed} time(s) inside Keras Tuner's in-place JSON write")
    check_completed_fit(out, attempts[-1], run, data)
    out.note("no in-place Keras Tuner write: completed at the first attempt")
    if not out.failed:
        ws.memo("fitted-run", lambda: run)  # _completed_fit's: the same command line


def _completed_fit(ws):
    """A completed fit of the small catalogue (FIT_ARGS), made once: the one
    kill-inside-keras-tuner-json-write completed, when it ran first, else its own. Scenarios
    that change it work on a copy (copying a run folder takes milliseconds, a fit seconds)."""
    def make():
        run = ws.fresh("fitted")
        proc = ws.run(*fit_args(ws, small_catalogue(ws), rgb_npz(ws), run),
                      prelude=FIGURES_NOT_DRAWN)
        if proc.returncode != 0:
            raise RuntimeError(f"the fit to export from failed: {proc.tail()}")
        return run

    return ws.memo("fitted-run", make)


@scenario
def kill_fit_during_export(ws, out):
    """SIGKILL while the SavedModel is being written next to RUN/export."""
    data = rgb_npz(ws)
    run = ws.fresh("kill-export")
    # A completed fit without its export: fit again has the export (and what follows it) to
    # do, so the process killed in it has not ranked and tuned all over again first.
    shutil.copytree(_completed_fit(ws), run, symlinks=True)
    shutil.rmtree(run / "export")
    args = fit_args(ws, small_catalogue(ws), data, run)
    log = run / "log.txt"
    logged = log.stat().st_size if log.exists() else 0  # the earlier fit's lines say "done"
    seen = []

    def ready():
        temps = [p for p in os.listdir(run) if p.startswith(TEMP_MARKER + "export")]
        if temps:
            seen.extend(temps)
            return True
        if not log.exists():
            return False
        with open(log, "rb") as f:
            f.seek(logged)
            # Missed the temp folder's short life: kill at once all the same.
            return b"export: done" in f.read()

    proc = ws.start(*args)
    if not out.check(kill_when(proc, ready, poll=0.005),
                     f"fit ended before export: {ws.finish(proc).tail()}"):
        return
    out.note("killed while the export was in its temp folder" if seen else
             "killed just after the export (temp folder not seen)")
    before = trial_starts(run)
    out.check(before and all(n == 1 for n in before.values()), f"trial starts {before}")
    if (run / "export").exists():
        try:
            export_difference(run, data)
        except Exception as e:  # noqa: BLE001
            out.check(False, f"a half export is in RUN/export: {type(e).__name__}: {e}")
    for p in disk_problems(run):
        out.check(False, f"after the kill: {p}")
    again = ws.run(*args, prelude=FIGURES_NOT_DRAWN)
    check_completed_fit(out, again, run, data)
    out.check(trial_starts(run) == before, "the re-run started trials again")


# ---------------------------------------------------------------------------------------------
# Concurrency
# ---------------------------------------------------------------------------------------------

@scenario
def concurrent_rankers_share_the_cache(ws, out):
    """Two `rank` processes on the same data and catalogue at once, one shared cache."""
    cat, data = wide_catalogue(ws), rgb_npz(ws)
    cache = ws.fresh("cache-concurrent")
    runs = [ws.fresh("concurrent-a"), ws.fresh("concurrent-b")]
    stop = threading.Event()
    reads = {"ok": 0, "bad": []}

    def reader():
        # Anything visible under a result name must be complete, at every instant.
        while not stop.is_set():
            for p in cache.rglob("*.npy") if cache.exists() else []:
                if is_temp(p.name):
                    continue
                try:
                    emb = np.load(p, allow_pickle=False)
                except FileNotFoundError:
                    continue
                except Exception as e:  # noqa: BLE001 - a partial file fails to parse
                    reads["bad"].append(f"{p.name}: {type(e).__name__}")
                    continue
                if emb.ndim == 2 and emb.shape[0] > 0 and np.isfinite(emb).all():
                    reads["ok"] += 1
                else:
                    reads["bad"].append(f"{p.name}: shape {emb.shape}")
            time.sleep(0.005)

    watcher = threading.Thread(target=reader, daemon=True)
    watcher.start()
    procs = [ws.start("rank", "-q", "--catalogue", cat, "--data", data, "--out", r,
                      "--profile", "quick", cache=cache) for r in runs]
    done = [ws.finish(p) for p in procs]
    stop.set()
    watcher.join(10)
    for p in done:
        if not out.check(p.returncode == 0, f"a ranker failed: {p.tail()}"):
            return
    rankings = [json.loads((r / "ranking.json").read_text()) for r in runs]
    key = [[(row["name"], row["status"], row["score"], row["dim"]) for row in rk["modules"]]
           for rk in rankings]
    out.check(key[0] == key[1], "the two rankings differ")
    out.check(rankings[0]["selected"] == rankings[1]["selected"], "selections differ")
    names = [row["name"] for row in rankings[0]["modules"]]
    for name in names:
        hits = [next(r for r in rk["modules"] if r["name"] == name)["cache_hit"]
                for rk in rankings]
        out.check(hits.count(False) == 1, f"{name} was computed {hits.count(False)} times")
    npy = list(cache.rglob("*.npy"))
    out.check(len(npy) == len(names), f"{len(npy)} cache entries for {len(names)} modules")
    held = [p for p in cache.rglob("*.lock") if _lock_owner_alive(p)]
    out.check(not temp_entries(cache) and not held,
              f"left in the cache: temp {temp_entries(cache)}, held locks {held}")
    out.check(not reads["bad"], f"partial cache files were visible: {reads['bad'][:3]}")
    out.check(reads["ok"] > 0, "the reader never saw an entry")
    out.note(f"{len(names)} modules computed once each; {reads['ok']} concurrent reads, "
             "all complete")


# ---------------------------------------------------------------------------------------------
# Broken modules
# ---------------------------------------------------------------------------------------------

BAD_MODULES = {"truncated": "savedmodel", "no-pb": "savedmodel", "four-d": "output",
               "nan": "output"}


def _bad_modules_fit(ws):
    """One fit over two good modules, the four broken ones, a module that diverges once
    fine-tuned ("wild") and one that is damaged only later ("later"); tuned: good0 and wild."""
    def make():
        data = rgb_npz(ws)
        good = [{"name": f"good{i}", "handle": module(ws, f"m{i}", seed=i, width=6 + 2 * i),
                 "family": "generalist" if i == 0 else "expert"} for i in range(2)]
        bad = {
            "truncated": damaged_copy(ws, module(ws, "t", seed=41), "t-truncated", "truncate"),
            "no-pb": damaged_copy(ws, module(ws, "p", seed=42), "p-no-pb", "no_pb"),
            "four-d": module(ws, "four-d", seed=43, kind="four_d"),
            "nan": module(ws, "nan", seed=44, kind="nan"),
            "wild": module(ws, "diverge", seed=7, kind="diverge"),
            "later": module(ws, "later", seed=45),
        }
        cat = catalogue(ws, "bad", good + [{"name": n, "handle": h} for n, h in bad.items()])
        run = ws.fresh("bad-modules")
        proc = ws.run(*fit_args(ws, cat, data, run, "--modules", "good0", "wild"),
                      prelude=FIGURES_NOT_DRAWN)
        return run, proc, data

    return ws.memo("bad-modules-fit", make)


def _check_bad_module(ws, out, name):
    run, proc, _ = _bad_modules_fit(ws)
    if not out.check(proc.went_on_past_modules(),
                     f"fit with broken modules failed: {proc.tail()}"):
        return
    rows = {r["name"]: r for r in json.loads((run / "ranking.json").read_text())["modules"]}
    row = rows[name]
    out.check(row["status"] == "failed", f"{name} has status {row['status']}")
    out.check(row["stage"] == BAD_MODULES[name], f"{name} failed at stage {row['stage']}, "
                                                 f"expected {BAD_MODULES[name]}")
    out.check(bool(row["reason"]) and name in row["reason"], f"reason {row['reason']!r}")
    out.check(all(rows[g]["status"] == "ok" for g in ("good0", "good1", "wild", "later")),
              "a good module failed to rank")
    members = json.loads((run / "ensemble.json").read_text())["members"]
    out.check(members and all(m["module"] == "good0" for m in members),
              f"ensemble members {[m['module'] for m in members]}")
    out.check((run / "export" / "saved_model.pb").exists(), "no export")
    out.note(short_reason(row))


@scenario
def truncated_variables_file(ws, out):
    _check_bad_module(ws, out, "truncated")


@scenario
def missing_saved_model_pb(ws, out):
    _check_bad_module(ws, out, "no-pb")


@scenario
def module_output_is_4d(ws, out):
    _check_bad_module(ws, out, "four-d")


@scenario
def module_output_is_nan(ws, out):
    _check_bad_module(ws, out, "nan")


@scenario
def module_truncated_after_it_was_cached(ws, out):
    """A module ranked once (its embeddings cached), then damaged on disk: the warm cache
    must not vouch for it."""
    run0, first, data = _bad_modules_fit(ws)
    if not out.check(first.went_on_past_modules(), f"the first fit failed: {first.tail()}"):
        return
    row = next(r for r in json.loads((run0 / "ranking.json").read_text())["modules"]
               if r["name"] == "later")
    out.check(row["status"] == "ok", "the module was not good to begin with")
    later = module(ws, "later", seed=45)
    truncate_variables(later)
    cat = catalogue(ws, "later", [
        {"name": "good0", "handle": module(ws, "m0", seed=0, width=6), "family": "generalist"},
        {"name": "later", "handle": later}])
    run = ws.fresh("later")
    again = ws.run("rank", "-q", "--catalogue", cat, "--data", data, "--out", run,
                   "--profile", "quick")  # the same (default) embedding cache as the fit
    if not out.check(again.went_on_past_modules(),
                     f"the second rank failed: {again.tail()}"):
        return
    rows = {r["name"]: r for r in json.loads((run / "ranking.json").read_text())["modules"]}
    out.check(rows["good0"]["cache_hit"], "the intact module was not read from the cache")
    row = rows["later"]
    out.check(row["status"] == "failed", f"the damaged module ranked {row['status']} "
                                         f"(cache hit: {row['cache_hit']})")
    out.check(row["stage"] == "savedmodel", f"stage {row['stage']}")
    out.note(short_reason(row))


# ---------------------------------------------------------------------------------------------
# Unsafe modules and broken downloads: one `rank` over a catalogue that mixes them all
# ---------------------------------------------------------------------------------------------

#: Downloads tried again at once: `hub.remote.RETRY_WAITS` (1 + 4 s before the second and
#: third try) made of the network rank's three failing downloads 15 s of sleep. The tries
#: themselves, each within HUBENSEMBLE_HTTP_TIMEOUT, are as a user's; what the scenarios check
#: (the stage, the reason, the hang's bound) holds with any waits.
NO_RETRY_WAITS = """
from hubensemble.hub import remote

remote.RETRY_WAITS = (0.0, 0.0)
"""

NETWORK_CASES = {"http-500": "network", "http-truncated": "network", "http-hang": "network",
                 "tar-dotdot": "archive", "tar-symlink": "archive", "wrong-sha256": "checksum",
                 "reader": "unsafe", "writer": "unsafe"}


def _network_rank(ws):
    def make():
        data = rgb_npz(ws)
        base = module(ws, "m1", seed=1, width=8)
        touched = ws.root / "touched"
        touched.mkdir(exist_ok=True)
        secret = touched / "secret.txt"
        secret.write_text("secret")
        reader = module(ws, "reader", seed=5, kind="read", target=str(secret))
        writer = module(ws, "writer", seed=6, kind="write", target=str(touched / "written.txt"))
        server = Server(hang=4 * ws.http_timeout + 10)
        good_tar = tarball(base)
        dotdot = tarfile.TarInfo("../escaped.txt")
        dotdot.size = 5
        link = tarfile.TarInfo("variables/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        entries = [
            {"name": "local", "handle": module(ws, "m0", seed=0, width=6),
             "family": "generalist"},
            {"name": "served", "handle": server.add("/good.tar.gz", good_tar),
             "sha256": sha256(good_tar)},
            {"name": "http-500", "handle": server.add("/500.tar.gz", b"oops", status=500)},
            {"name": "http-truncated", "handle": server.add("/trunc.tar.gz", good_tar,
                                                            mode="truncate")},
            {"name": "http-hang", "handle": server.add("/hang.tar.gz", b"", mode="hang")},
            {"name": "tar-dotdot", "handle": server.add(
                "/dotdot.tar.gz", tarball(base, [(dotdot, b"owned")]))},
            {"name": "tar-symlink", "handle": server.add(
                "/link.tar.gz", tarball(base, [(link, None)]))},
            # The genuine archive under another URL, with a checksum it does not have.
            {"name": "wrong-sha256", "handle": server.add("/sha.tar.gz", good_tar),
             "sha256": "0" * 64},
            {"name": "reader", "handle": reader},
            {"name": "writer", "handle": writer},
            {"name": "reader-trusted", "handle": reader, "trust": True},
        ]
        cat = catalogue(ws, "network", entries)
        run = ws.fresh("network")
        try:
            proc = ws.run("rank", "-q", "--catalogue", cat, "--data", data, "--out", run,
                          "--profile", "quick", cache=ws.fresh("cache-network"),
                          prelude=NO_RETRY_WAITS)
        finally:
            server.close()
        return run, proc, touched

    return ws.memo("network-rank", make)


def _check_network(ws, out, name):
    run, proc, _ = _network_rank(ws)
    if not out.check(proc.went_on_past_modules(),
                     f"rank did not go on past the failures: {proc.tail()}"):
        return None
    rows = {r["name"]: r for r in json.loads((run / "ranking.json").read_text())["modules"]}
    row = rows[name]
    out.check(row["status"] == "failed", f"{name} has status {row['status']}")
    out.check(row["stage"] == NETWORK_CASES[name],
              f"{name} failed at stage {row['stage']}, expected {NETWORK_CASES[name]}")
    out.check(bool(row["reason"]) and name in row["reason"], f"reason {row['reason']!r}")
    out.check(rows["local"]["status"] == "ok" and rows["served"]["status"] == "ok",
              "the good local or served module did not rank")
    out.check(no_traceback(proc), "a traceback was printed")
    out.note(short_reason(row))
    return row


@scenario
def module_reading_files_refused_unless_trusted(ws, out):
    row = _check_network(ws, out, "reader")
    if row is not None:
        run = _network_rank(ws)[0]
        rows = {r["name"]: r for r in json.loads((run / "ranking.json").read_text())["modules"]}
        out.check("ReadFile" in row["reason"] and "trust" in row["reason"], row["reason"])
        out.check(rows["reader-trusted"]["status"] == "ok",
                  f"the trusted copy did not rank: {rows['reader-trusted']['reason']}")


@scenario
def module_writing_files_refused(ws, out):
    row = _check_network(ws, out, "writer")
    if row is not None:
        touched = _network_rank(ws)[2]
        out.check("WriteFile" in row["reason"], row["reason"])
        out.check(not (touched / "written.txt").exists(), "the refused module wrote its file")


@scenario
def tarball_member_escaping_refused(ws, out):
    if _check_network(ws, out, "tar-dotdot") is not None:
        escaped = [p for p in (ws.root.rglob("escaped.txt"))]
        out.check(not escaped, f"the ../ member was written: {escaped}")


@scenario
def tarball_symlink_refused(ws, out):
    if _check_network(ws, out, "tar-symlink") is not None:
        links = [p for p in (ws.root / "tfhub").rglob("*") if p.is_symlink()]
        out.check(not links, f"a symlink landed in the hub cache: {links}")


@scenario
def wrong_sha256_refused(ws, out):
    if _check_network(ws, out, "wrong-sha256") is not None:
        out.check("sha256" in _network_rank(ws)[0].joinpath("ranking.json").read_text(),
                  "the reason does not name the checksum")
        run = _network_rank(ws)[0]
        handle = next(r["handle"] for r in json.loads((run / "ranking.json").read_text())[
            "modules"] if r["name"] == "wrong-sha256")
        # tensorflow_hub caches a handle in TFHUB_CACHE_DIR/sha1(handle).
        kept = ws.root / "tfhub" / hashlib.sha1(handle.encode("utf8")).hexdigest()
        out.check(not kept.exists(), "the refused module stayed in the hub cache")


@scenario
def http_500(ws, out):
    row = _check_network(ws, out, "http-500")
    if row is not None:
        out.check("500" in row["reason"], row["reason"])


@scenario
def http_truncated_archive(ws, out):
    _check_network(ws, out, "http-truncated")


@scenario
def http_server_hangs(ws, out):
    row = _check_network(ws, out, "http-hang")
    if row is not None:
        bound = 3 * ws.http_timeout + 5
        out.check(row["seconds"] <= bound, f"the hanging download took {row['seconds']:.1f} s "
                                           f"(HUBENSEMBLE_HTTP_TIMEOUT {ws.http_timeout} s)")
        out.note(f"gave up after {row['seconds']:.1f} s (timeout {ws.http_timeout:g} s)")


@scenario
def kill_rank_during_download(ws, out):
    """SIGKILL while a module downloads: the re-run must not wait out tensorflow_hub's
    10-minute lock of the dead download, and no half download is taken as the module."""
    data = rgb_npz(ws)
    body = tarball(module(ws, "m2", seed=2, width=10))
    server = Server()
    try:
        url = server.add("/slow.tar.gz", body, mode="trickle")
        cat = catalogue(ws, "download", [
            {"name": "local", "handle": module(ws, "m0", seed=0, width=6),
             "family": "generalist"},
            {"name": "slow", "handle": url, "sha256": sha256(body)}])
        hub = ws.fresh("tfhub-download")
        env = ws.env(cache=ws.fresh("cache-download"), TFHUB_CACHE_DIR=hub)
        run = ws.fresh("download")
        args = ["rank", "-q", "--catalogue", cat, "--data", data, "--out", run, "--profile",
                "quick"]
        proc = ws.start(*args, env=env)
        killed = kill_when(proc, lambda: hub.is_dir() and any(
            p.name.endswith(".lock") for p in hub.iterdir()))
        if not out.check(killed, f"the download ended before the kill: "
                                 f"{ws.finish(proc).tail()}"):
            return
        out.note(f"killed mid-download, leaving {sorted(p.name[-8:] for p in hub.iterdir())}")
        server.routes["/slow.tar.gz"] = (200, body, None)
        again = ws.run(*args, env=env, timeout=120)
        if not out.check(again.returncode == 0, f"the re-run failed or hung: {again.tail()}"):
            return
        row = next(r for r in json.loads((run / "ranking.json").read_text())["modules"]
                   if r["name"] == "slow")
        out.check(row["status"] == "ok", f"the module did not rank: {row['reason']}")
        out.check(row["seconds"] < 30, f"the re-run waited {row['seconds']:.0f} s for the lock")
        left = [p.name for p in hub.iterdir() if p.name.endswith((".lock", ".tmp"))]
        out.check(not left, f"left in the hub cache: {left}")
        out.note(f"re-run resolved it in {row['seconds']:.1f} s")
    finally:
        server.close()


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------

def _png(array):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _class_folders(root, counts, size=12, seed=0):
    rng = np.random.default_rng(seed)
    for c, n in counts.items():
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            (root / c / f"{i:02d}.png").write_bytes(
                _png(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)))


ODD_FILES = {"corrupt.jpg": ("a", "skipped"), "empty.png": ("b", "skipped"),
             "one-pixel.png": ("a", "used"), "deep.png": ("b", "used"),
             "cmyk.jpg": ("c", "used")}


def _odd_folder_rank(ws):
    def make():
        from PIL import Image

        root = ws.root / "data" / "odd"
        _class_folders(root, {"a": 6, "b": 6, "c": 6})
        good_jpeg = io.BytesIO()
        Image.fromarray(np.full((12, 12, 3), 128, np.uint8)).save(good_jpeg, format="JPEG")
        (root / "a" / "corrupt.jpg").write_bytes(good_jpeg.getvalue()[:40])
        (root / "b" / "empty.png").write_bytes(b"")
        (root / "a" / "one-pixel.png").write_bytes(_png(np.array([[[9, 99, 199]]], np.uint8)))
        deep = Image.fromarray(np.arange(144, dtype=np.uint16).reshape(12, 12) * 400)
        buf = io.BytesIO()
        deep.save(buf, format="PNG")
        (root / "b" / "deep.png").write_bytes(buf.getvalue())
        buf = io.BytesIO()
        Image.new("CMYK", (12, 12), (30, 180, 60, 20)).save(buf, format="JPEG")
        (root / "c" / "cmyk.jpg").write_bytes(buf.getvalue())
        run = ws.fresh("odd-data")
        proc = ws.here("rank", "--catalogue", small_catalogue(ws), "--data", f"folder:{root}",
                       "--out", run, "--profile", "quick")
        return root, run, proc

    return ws.memo("odd-folder-rank", make)


def _check_odd_file(ws, out, filename):
    root, run, proc = _odd_folder_rank(ws)
    if not out.check(proc.returncode == 0, f"rank on the folder failed: {proc.tail()}"):
        return
    out.check(no_traceback(proc), "a traceback was printed")
    klass, fate = ODD_FILES[filename]
    task = json.loads((run / "run.json").read_text())["data"]["task"]
    skipped = {os.path.basename(p): why for p, why in task["skipped"]}
    splits = [run / "labels" / f"{split}.npy" for split in ("train", "val", "test")]
    labels = np.concatenate([np.load(p) for p in splits if p.exists()])
    counts = dict(zip(task["class_names"], np.bincount(labels, minlength=3).tolist()))
    expected = 6 + sum(1 for f, (c, how) in ODD_FILES.items() if c == klass and how == "used")
    out.check(counts[klass] == expected, f"class {klass} has {counts[klass]} examples, "
                                         f"expected {expected}")
    if fate == "skipped":
        out.check(filename in skipped, f"{filename} is not reported as skipped: {skipped}")
        out.check(filename in proc.stderr, f"{filename} is not in the task summary on stderr")
        out.note(f"skipped and reported: {skipped.get(filename, '')[:80]}")
    else:
        out.check(filename not in skipped, f"{filename} was skipped: {skipped.get(filename)}")
        out.note("decoded and used")


@scenario
def corrupt_jpeg(ws, out):
    _check_odd_file(ws, out, "corrupt.jpg")


@scenario
def zero_byte_image(ws, out):
    _check_odd_file(ws, out, "empty.png")


@scenario
def one_pixel_image(ws, out):
    _check_odd_file(ws, out, "one-pixel.png")


@scenario
def sixteen_bit_png(ws, out):
    _check_odd_file(ws, out, "deep.png")


@scenario
def cmyk_jpeg(ws, out):
    _check_odd_file(ws, out, "cmyk.jpg")


def _clear_data_error(ws, out, command, data, *must_say):
    """`command` on bad data: exit 2, one clear 'hubensemble: error:' line, no traceback."""
    run = ws.fresh("bad-data")
    args = [command, "-q", "--catalogue", small_catalogue(ws), "--data", data, "--out", run,
            "--profile", "quick"]
    if command == "fit":
        args += ["--top-k", "2"]
    proc = ws.here(*args)
    out.check(proc.returncode == 2, f"exit code {proc.returncode}, expected 2: {proc.tail()}")
    out.check(no_traceback(proc), f"a traceback was printed: {proc.stderr[-800:]}")
    out.check("hubensemble: error:" in proc.stderr, f"no clear error line: {proc.stderr[-500:]}")
    for words in must_say:
        out.check(words in proc.stderr, f"the message does not say {words!r}: "
                                        f"{proc.stderr[-500:]}")
    out.check(not (run / "ranking.json").exists(), "a ranking was written from bad data")
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("hubensemble: error:")]
    out.note(lines[0][len("hubensemble: error: "):][:120] if lines else "")


@scenario
def class_with_one_example(ws, out):
    root = ws.root / "data" / "lonely"
    if not root.exists():
        _class_folders(root, {"a": 6, "b": 6, "lonely": 1}, seed=1)
    _clear_data_error(ws, out, "rank", f"folder:{root}", "'lonely' has 1", "at least 2")


@scenario
def one_class_only(ws, out):
    root = ws.root / "data" / "single"
    if not root.exists():
        _class_folders(root, {"only": 8}, seed=2)
    _clear_data_error(ws, out, "rank", f"folder:{root}", "1 class", "at least 2")


@scenario
def labels_out_of_range(ws, out):
    path = ws.root / "data" / "out-of-range.npz"
    if not path.exists():
        rng = np.random.default_rng(3)
        y = np.repeat(np.arange(3), 10)
        y[4] = 7
        np.savez(path, x_train=rng.integers(0, 256, (30, 8, 8, 3), dtype=np.uint8),
                 y_train=y, class_names=np.array(["a", "b", "c"]))
    _clear_data_error(ws, out, "fit", f"npz:{path}", "out of range", "7")


# ---------------------------------------------------------------------------------------------
# The data path: what training reads is what serving reads, and no file vanishes
# ---------------------------------------------------------------------------------------------

def _encode(image, fmt, **kwargs):
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _recorded_task(run):
    """run.json's data.task and the labels per class over every split."""
    task = json.loads((run / "run.json").read_text())["data"]["task"]
    splits = [run / "labels" / f"{s}.npy" for s in ("train", "val", "test")]
    labels = np.concatenate([np.load(p) for p in splits if p.exists()])
    counts = dict(zip(task["class_names"],
                      np.bincount(labels, minlength=len(task["class_names"])).tolist()))
    return task, counts


@scenario
def linked_folder_inside_a_class(ws, out):
    """circle/ with 6 PNGs and more -> ../../pool/circle with 6 more, a link loop and OS
    litter: `rank` counts 12 circles, reports the loop, counts the litter."""
    root = ws.fresh("linked") / "shapes"
    _class_folders(root, {"circle": 6, "square": 6}, seed=4)
    _class_folders(root.parent / "pool", {"circle": 6}, seed=5)
    os.symlink("../../pool/circle", root / "circle" / "more")
    os.symlink("..", root / "square" / "up")
    for junk in ("circle/.DS_Store", "square/Thumbs.db", "__MACOSX/x"):
        (root / junk).parent.mkdir(parents=True, exist_ok=True)
        (root / junk).write_bytes(b"litter")
    run = ws.fresh("linked-run")
    proc = ws.here("rank", "--catalogue", small_catalogue(ws), "--data", f"folder:{root}",
                   "--out", run, "--profile", "quick")
    if not out.check(proc.returncode == 0, f"rank failed: {proc.tail()}"):
        return
    task, counts = _recorded_task(run)
    out.check(counts == {"circle": 12, "square": 6}, f"counted {counts}, expected 12 / 6")
    skipped = {os.path.relpath(p, root): why for p, why in task["skipped"]}
    out.check(list(skipped) == ["square/up"] and "loop" in skipped.get("square/up", ""),
              f"the loop is not reported alone: {skipped}")
    out.check(task["ignored"]["count"] == 3, f"ignored: {task['ignored']}")
    out.check(task["files"] == 19, f"files {task['files']}, expected 18 examples + 1 loop")
    out.check("3 hidden or system entries ignored" in proc.stderr,
              f"the summary does not count the litter: {proc.stderr[-400:]}")
    out.note("12 circles through the link; loop skipped; 3 OS entries counted")


def _on_white_export(ws):
    """An export that tells grey shapes on white from shapes on black by mean brightness,
    and RGBA queries of shapes whose transparent background stores black."""
    def make():
        import keras
        import tensorflow as tf  # noqa: F401 - the export needs it loaded
        from PIL import Image

        from hubensemble.export import ExportMember, save_export

        side = 12
        keras.utils.set_random_seed(0)
        clf = keras.Sequential([keras.Input((side, side, 3)),
                                keras.layers.GlobalAveragePooling2D(),
                                keras.layers.Dense(2, activation="softmax")])
        clf.layers[-1].set_weights([np.array([[-20.0, 20.0]] * 3, np.float32) / 3,
                                    np.array([10.0, -10.0], np.float32)])
        folder = ws.fresh("on-white")
        model = folder / "model"
        yy, xx = np.mgrid[:side, :side]
        shapes = []
        for s in range(6):
            disc = (yy - 5.5 - s % 2) ** 2 + (xx - 5.5 + s % 3 - 1) ** 2 <= (3 + s % 2) ** 2
            shapes.append(disc)
        train = np.stack([np.repeat(np.where(d, 128, bg)[..., None], 3, -1).astype(np.uint8)
                          for bg in (0, 255) for d in shapes])
        save_export([ExportMember(clf, side, 1.0, {"trial": "t0"})], ["on_black", "on_white"],
                    model, check_images=train.astype(np.float32) / 255)
        queries = folder / "queries"
        for cls in ("on_black", "on_white"):
            (queries / cls).mkdir(parents=True)
        (queries / "on_black" / "plain.png").write_bytes(_png(train[0]))
        for s, disc in enumerate(shapes):
            rgba = np.zeros((side, side, 4), np.uint8)
            rgba[disc] = (128, 128, 128, 255)  # the background: RGB 0, 0, 0, alpha 0
            (queries / "on_white" / f"q{s}.png").write_bytes(
                _encode(Image.fromarray(rgba), "PNG"))
        return model, queries

    return ws.memo("on-white-export", make)


def _evaluate_json(ws, out, model, folder):
    """`hubensemble evaluate -q --out` on a test folder: the result, or None (a failed
    check) when the command failed."""
    path = ws.fresh("evaluation").with_suffix(".json")
    proc = ws.here("evaluate", "-q", "--model", model, "--data", f"folder:{folder}",
                   "--out", path)
    if not out.check(proc.returncode == 0 and path.exists(), f"evaluate: {proc.tail()}"):
        return None
    return json.loads(path.read_text())


@scenario
def rgba_queries_served_as_trained(ws, out):
    """RGBA PNGs whose transparent background stores black: `evaluate` (the loader) and
    `predict` / `serve_bytes` (the export) see the same white background."""
    import tensorflow as tf

    model, queries = _on_white_export(ws)
    files = sorted((queries / "on_white").glob("q*.png"))
    proc = ws.here("predict", "--model", model, "--json", *files)
    if not out.check(proc.returncode == 0, f"predict failed: {proc.tail()}"):
        return
    names = [r["top"][0]["class_name"] for r in json.loads(proc.stdout)]
    out.check(names == ["on_white"] * 6, f"predict says {names}")
    result = _evaluate_json(ws, out, model, queries)
    if result is not None:
        accuracy = result["clean"]["ensemble"]["accuracy"]
        out.check(accuracy == 1.0, f"evaluate scores {accuracy}, not 1.0")
    loaded = tf.saved_model.load(str(model))
    served = loaded.signatures["serve_bytes"](
        image_bytes=tf.constant([f.read_bytes() for f in files]))["class_names"].numpy()
    out.check(served.tolist() == [b"on_white"] * 6, f"serve_bytes says {served.tolist()}")
    out.note("evaluate 1.0; predict and serve_bytes: on_white x 6")


def _predict_json(ws, model, files):
    proc = ws.here("predict", "--model", model, "--json", "--top", "2",
                   "--skip-unreadable", *files)
    return proc, json.loads(proc.stdout) if proc.stdout.strip().startswith("[") else []


def _probabilities(row):
    return {t["class_name"]: t["probability"] for t in row.get("top", [])}


@scenario
def palette_bmp_decoded_as_colours(ws, out):
    """A 16-colour palette BMP is its colours (not the indices 0..15) for training, and
    predict gives it the probabilities of a PNG of the same colours."""
    from PIL import Image

    from hubensemble.data import load_task

    model, _ = _on_white_export(ws)
    root = ws.fresh("palette")
    picture = np.full((12, 12, 3), 230, np.uint8)
    picture[3:9, 3:9] = (40, 90, 200)
    palette = Image.fromarray(picture).quantize(16)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            (root / cls / f"p{i}.bmp").write_bytes(_encode(palette, "BMP"))
    (root / "a" / "same.png").write_bytes(_png(np.asarray(palette.convert("RGB"))))
    task = load_task(f"folder:{root}", val_fraction=0.0, test_fraction=0.0)
    pixels = task.train.images[0]  # a/p0.bmp
    want = np.asarray(palette.convert("RGB"))
    out.check(np.array_equal(pixels, want), f"the BMP decodes to values "
                                            f"{int(pixels.min())}..{int(pixels.max())}")
    proc, rows = _predict_json(ws, model, [root / "a" / "p0.bmp", root / "a" / "same.png"])
    if not out.check(proc.returncode == 0 and len(rows) == 2, f"predict: {proc.tail()}"):
        return
    a, b = _probabilities(rows[0]), _probabilities(rows[1])
    out.check(a and max(abs(a[k] - b[k]) for k in a) <= 1e-6,
              f"BMP {a} vs PNG {b}")
    out.note(f"palette colours decoded; predict equal to the PNG ({rows[0]['top'][0]})")


@scenario
def one_bit_bmp_and_tiff_with_reasons(ws, out):
    """A 1-bit BMP and a TIFF: used for training and by predict alike (same probabilities
    as PNGs of the same pixels); a file no decoder reads is refused with its real reason,
    the same in the loader and in predict; serve_bytes names the TIFF."""
    import tensorflow as tf
    from PIL import Image

    from hubensemble.data import load_task

    model, _ = _on_white_export(ws)
    root = ws.fresh("bmp-tiff")
    rng = np.random.default_rng(7)
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    bits = Image.fromarray(rng.integers(0, 2, (12, 12)).astype(bool))
    tiff = Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8))
    (root / "a" / "bits.bmp").write_bytes(_encode(bits, "BMP"))
    (root / "a" / "bits.png").write_bytes(_png(np.asarray(bits.convert("RGB"))))
    (root / "b" / "scan.tif").write_bytes(_encode(tiff, "TIFF"))
    (root / "b" / "scan.png").write_bytes(_png(np.asarray(tiff)))
    (root / "b" / "fake.jpg").write_bytes(b"<html>not an image</html>")
    task = load_task(f"folder:{root}", val_fraction=0.0, test_fraction=0.0)
    skipped = {os.path.basename(p): why for p, why in task.skipped}
    out.check(list(skipped) == ["fake.jpg"], f"skipped: {skipped}")
    files = [root / "a" / "bits.bmp", root / "a" / "bits.png", root / "b" / "scan.tif",
             root / "b" / "scan.png", root / "b" / "fake.jpg"]
    proc, rows = _predict_json(ws, model, files)
    if not out.check(len(rows) == 5, f"predict: {proc.tail()}"):
        return
    out.check(proc.returncode == 1, f"exit {proc.returncode}, expected 1 (one unreadable)")
    for i, j in ((0, 1), (2, 3)):
        a, b = _probabilities(rows[i]), _probabilities(rows[j])
        out.check(a and max(abs(a[k] - b[k]) for k in a) <= 1e-6,
                  f"{files[i].name} {a} vs {files[j].name} {b}: {rows[i].get('error')}")
    reason = rows[4].get("error", "")
    out.check(reason == skipped.get("fake.jpg") and reason.startswith("an HTML file"),
              f"predict says {reason!r}, the loader {skipped.get('fake.jpg')!r}")
    loaded = tf.saved_model.load(str(model))
    try:
        loaded.signatures["serve_bytes"](image_bytes=tf.constant([files[2].read_bytes()]))
        out.check(False, "serve_bytes decoded a TIFF")
    except tf.errors.InvalidArgumentError as e:
        out.check("TIFF" in e.message, f"serve_bytes' reason: {e.message[-300:]}")
    out.note(f"1-bit BMP and TIFF predicted as their PNGs; refused: {reason[:60]}")


@scenario
def duplicates_across_splits(ws, out):
    """Every noise file copied once: no copy lands in another split than its original;
    copies across given splits (test/ holding a train image) are reported, and --dedupe
    drops them."""
    root = ws.fresh("copies")
    flat = root / "flat"
    _class_folders(flat, {"a": 12, "b": 12, "c": 12}, size=8, seed=6)
    for f in sorted(flat.glob("*/*.png")):
        (f.parent / f"{f.stem} copy.png").write_bytes(f.read_bytes())
    run = ws.fresh("copies-run")
    proc = ws.here("rank", "--catalogue", small_catalogue(ws), "--data", f"folder:{flat}",
                   "--out", run, "--profile", "quick")
    if not out.check(proc.returncode == 0, f"rank failed: {proc.tail()}"):
        return
    task, _ = _recorded_task(run)
    dup = task["duplicates"]
    out.check(dup["copies"] == 36 and not any(dup["across"].values()),
              f"copies {dup['copies']}, across splits {dup['across']}")
    given = root / "given"
    _class_folders(given / "train", {"a": 4, "b": 4}, size=8, seed=7)
    _class_folders(given / "test", {"a": 2, "b": 2}, size=8, seed=8)
    shutil.copy(given / "train" / "a" / "01.png", given / "test" / "a" / "leak.png")
    run = ws.fresh("given-run")

    def rank(out_dir, *extra):
        return ws.here("rank", "--catalogue", small_catalogue(ws), "--data", f"folder:{given}",
                       "--out", out_dir, "--profile", "quick", "--val-fraction", "0", *extra)

    proc = rank(run)
    if not out.check(proc.returncode == 0, f"rank failed: {proc.tail()}"):
        return
    task, _ = _recorded_task(run)
    out.check(task["duplicates"]["across"]["test_in_train"] == 1,
              f"the leak is not reported: {task['duplicates']}")
    out.check("1 test image with a copy in train" in proc.stderr,
              f"the summary does not warn: {proc.stderr[-500:]}")
    run = ws.fresh("given-dedupe")
    proc = rank(run, "--dedupe")
    if not out.check(proc.returncode == 0, f"rank --dedupe failed: {proc.tail()}"):
        return
    task, _ = _recorded_task(run)
    out.check(task["sizes"]["test"] == 4 and len(task["dropped"]) == 1,
              f"--dedupe: test {task['sizes']['test']}, dropped {task['dropped']}")
    out.note("36 copies kept with their originals; a test leak reported, then dropped")


@scenario
def renamed_test_class(ws, out):
    """evaluate matches classes by name: a renamed class folder is an error naming it; a
    test set of one of the classes is scored in the export's class space."""
    model, queries = _on_white_export(ws)
    renamed = ws.fresh("renamed")
    shutil.copytree(queries, renamed)
    (renamed / "on_white").rename(renamed / "white")
    proc = ws.here("evaluate", "-q", "--model", model, "--data", f"folder:{renamed}")
    out.check(proc.returncode == 2 and "'white'" in proc.stderr and no_traceback(proc),
              f"exit {proc.returncode}: {proc.stderr[-400:]}")
    subset = ws.fresh("subset")
    shutil.copytree(queries, subset)
    shutil.rmtree(subset / "on_black")
    result = _evaluate_json(ws, out, model, subset)
    if result is not None:
        out.check(result["clean"]["ensemble"]["accuracy"] == 1.0 and result["n"] == 6,
                  f"the subset: {result['n']} examples, accuracy "
                  f"{result['clean']['ensemble']['accuracy']}")
        out.check(result["classes"]["absent"] == ["on_black"],
                  f"absent classes: {result['classes']}")
    out.note("a renamed class refused by name; a test set of one class scored 1.0")


# ---------------------------------------------------------------------------------------------
# Training and export
# ---------------------------------------------------------------------------------------------

@scenario
def diverging_trial(ws, out):
    """A module that blows up only once fine-tuning starts ("wild": features x 1e30 in
    training mode): its trials fail with the reason, the sweep and the fit go on."""
    run, proc, data = _bad_modules_fit(ws)
    if not out.check(proc.went_on_past_modules(), f"fit failed: {proc.tail()}"):
        return
    records = {d: json.loads((run / "candidates" / d / "trial.json").read_text())
               for d in done_candidates(run)}
    wild = {t: r for t, r in records.items() if r["module"] == "wild"}
    good = {t: r for t, r in records.items() if r["module"] == "good0"}
    out.check(len(wild) == 4 and len(good) == 4, f"candidates: {sorted(records)}")
    out.check(all(r["status"] == "failed" for r in wild.values()),
              f"statuses of the diverging trials: {[r['status'] for r in wild.values()]}")
    reasons = [str(r.get("reason")) for r in wild.values()]
    out.check(all("nan" in x.lower() or "inf" in x.lower() for x in reasons),
              f"reasons: {reasons}")
    out.check(all(r["status"] == "ok" for r in good.values()), "a good trial failed")
    log = (run / "tuner" / "default" / "trials.log").read_text()
    out.check(log.count("\tfailed\t") == 4, "trials.log does not record the 4 failures")
    diff = export_difference(run, data)
    out.check(diff <= 1e-5, f"export differs by {diff:.2e}")
    out.note(f"4 of 8 trials failed: {reasons[0][:80]}")


def _fitted_copy(ws, name):
    """A copy of the completed fit of the small catalogue (`_completed_fit`) whose ensemble
    has at least two members."""
    copy = ws.fresh(name)
    shutil.copytree(_completed_fit(ws), copy, symlinks=True)
    widened = _at_least_two_members(copy)
    return copy, rgb_npz(ws), widened


def _at_least_two_members(run) -> bool:
    """When the greedy kept a single member, ensemble.json gets the two best candidates at
    equal weights instead (returns True): the export scenarios need a member to lose and one
    to keep, whatever a few quick training steps gave."""
    path = run / "ensemble.json"
    record = json.loads(path.read_text())
    if len(record["members"]) >= 2:
        return False
    trials = [json.loads((run / "candidates" / d / "trial.json").read_text())
              for d in sorted(done_candidates(run))]
    best = sorted((t for t in trials if t["status"] == "ok"), key=lambda t: t["val"]["ce"])[:2]
    record["members"] = [{"trial": t["trial"], "module": t["module"], "hparams": t["hparams"],
                          "weight": 0.5, "handle": t["handle"], "seed": t["seed"], "picks": 1,
                          "path": f"candidates/{t['trial']}"} for t in best]
    path.write_text(json.dumps(record, indent=2))
    return True


def _drop_member_weights(run):
    members = json.loads((run / "ensemble.json").read_text())["members"]
    victim = members[0]["trial"]
    (run / "candidates" / victim / "weights.weights.h5").unlink()
    return members, victim


@scenario
def member_weights_missing_at_export(ws, out):
    run, _, widened = _fitted_copy(ws, "missing-weights")
    members, victim = _drop_member_weights(run)
    target = run / "export-again"
    proc = ws.here("export", "-q", "--run", run, "--out", target)
    out.check(proc.returncode != 0, f"export succeeded without {victim}'s weights")
    out.check(no_traceback(proc), f"a traceback was printed: {proc.stderr[-800:]}")
    out.check(victim in proc.stderr and "missing" in proc.stderr,
              f"the error does not name the missing member: {proc.stderr[-500:]}")
    out.check("--skip-missing" in proc.stderr, "the error does not say how to go on")
    out.check(not target.exists(), "a half export was left")
    out.check(not [p for p in os.listdir(run) if p.startswith(TEMP_MARKER)],
              f"temp entries left: {[p for p in os.listdir(run) if p.startswith(TEMP_MARKER)]}")
    out.note(f"{len(members)}-member ensemble{' (widened)' if widened else ''}; refused, "
             f"naming {victim}")


@scenario
def member_weights_missing_skip_missing(ws, out):
    run, data, widened = _fitted_copy(ws, "skip-missing")
    members, victim = _drop_member_weights(run)
    target = run / "export-skip"
    proc = ws.here("export", "-q", "--run", run, "--out", target, "--skip-missing")
    if not out.check(proc.returncode == 0, f"export --skip-missing failed: {proc.tail()}"):
        return
    meta = json.loads((target / "assets" / "hubensemble.json").read_text())
    out.check([s["trial"] for s in meta["skipped"]] == [victim], f"skipped {meta['skipped']}")
    out.check(victim not in [m["trial"] for m in meta["members"]], "the member is still in")
    weights = {m["trial"]: m["weight"] for m in members if m["trial"] != victim}
    diff = export_difference(run, data, export=target, weights=weights)
    out.check(diff <= 1e-5, f"the export differs from the renormalised members by {diff:.2e}")
    out.note(f"{len(members) - 1} of {len(members)} members exported, weights renormalised"
             + (" (ensemble widened to two)" if widened else ""))


# ---------------------------------------------------------------------------------------------
# Disk safety
# ---------------------------------------------------------------------------------------------

def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@scenario
def temp_leftovers_never_taken_as_results(ws, out):
    """What killed writers leave (temp candidate, temp export, temp JSON) is ignored by every
    reader and removed by the next run of the stage that owns it."""
    run, data, _ = _fitted_copy(ws, "leftovers")
    pid, host = _dead_pid(), socket.gethostname()
    cands = run / "candidates"
    real = sorted(done_candidates(run))
    fake = cands / f"{TEMP_MARKER}{real[0]}-{pid}@{host}"
    shutil.copytree(cands / real[0], fake)
    record = json.loads((fake / "trial.json").read_text())
    (fake / "trial.json").write_text(json.dumps({**record, "trial": fake.name}))
    (run / f"{TEMP_MARKER}ensemble.json.x1y2z3").write_text('{"members": [')
    (run / f"{TEMP_MARKER}export.{pid}").mkdir()
    (run / f"{TEMP_MARKER}export.{pid}" / "saved_model.pb").write_bytes(b"half")
    for p in temps_taken_as_results(run):
        out.check(False, f"before any command: {p}")
    ens = ws.here("ensemble", "-q", "--run", run)
    if out.check(ens.returncode == 0, f"ensemble failed: {ens.tail()}"):
        record = json.loads((run / "ensemble.json").read_text())
        out.check(record["n_candidates"] == len(real),
                  f"{record['n_candidates']} candidates counted, {len(real)} real")
        out.check(not any(is_temp(s["trial"]) for s in record["skipped"]), "temp listed")
    tune = ws.here("tune", "-q", "--run", run, "--profile", "quick")
    out.check(tune.returncode == 0, f"tune (nothing to do) failed: {tune.tail()}")
    out.check(not fake.exists(), "the dead writer's temp candidate was not removed")
    exp = ws.here("export", "-q", "--run", run)
    out.check(exp.returncode == 0, f"export failed: {exp.tail()}")
    out.check(not (run / f"{TEMP_MARKER}export.{pid}").exists(),
              "the dead writer's temp export was not removed")
    if exp.returncode == 0:
        diff = export_difference(run, data)
        out.check(diff <= 1e-5, f"the export differs by {diff:.2e}")
    for p in disk_problems(run):
        out.check(False, p)
    out.note("temp candidate and export of a dead pid ignored, then removed")


#: The scenarios of the data path (issue 13's kinds and the odd files before them):
#: `faults.py --data-path` runs these.
DATA_PATH_SCENARIOS = (
    "corrupt-jpeg", "zero-byte-image", "one-pixel-image", "sixteen-bit-png", "cmyk-jpeg",
    "class-with-one-example", "one-class-only", "labels-out-of-range",
    "linked-folder-inside-a-class", "rgba-queries-served-as-trained",
    "palette-bmp-decoded-as-colours", "one-bit-bmp-and-tiff-with-reasons",
    "duplicates-across-splits", "renamed-test-class",
)


def run_all(ws, names=None, *, echo=None):
    """Runs the scenarios (all, or those named) in order; returns their results."""
    results = []
    for fn in SCENARIOS:
        if names and fn.scenario_name not in names:
            continue
        start = time.monotonic()
        name, survived, detail = fn(ws)
        results.append((name, survived, detail, time.monotonic() - start))
        if echo:
            echo(results[-1])
    return results
