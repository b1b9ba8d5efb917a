"""Keras Tuner's distributed mode: its environment variables, the chief's oracle server, a
worker's wait for the chief.

Keras Tuner runs one sweep on many machines when each process has KERASTUNER_TUNER_ID,
KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT set: the chief serves the oracle over gRPC,
the workers ask it for trials. `kerastuner_env` sets them from tune's arguments, `serve_oracle`
is the chief's serving loop, `wait_for_chief` a worker's wait for it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time

from hubensemble import environment
from hubensemble._tf import native_notices
from hubensemble.errors import HubensembleError, held_stops
from hubensemble.lockwords import command_words, option_word
from hubensemble.stageargs import check_distributed, oracle_host_port
from hubensemble.sweeplock import (chief_cannot_listen, chief_start_watch,
                                   say_stale_chief, starting_chief_ended,
                                   worker_without_chief)
from hubensemble.threads import sweep_block
from hubensemble.text import counted

log = logging.getLogger(__name__)

#: Seconds a worker waits for the chief's port before giving up ($HUBENSEMBLE_CHIEF_TIMEOUT).
CHIEF_TIMEOUT = environment.seconds_from_environment("HUBENSEMBLE_CHIEF_TIMEOUT")
#: Keras Tuner's distributed mode is configured by these variables (its public interface).
KT_VARS = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
#: Seconds the chief's server gives a worker's call still running as it stops (gRPC's grace:
#: then the call is cancelled).
STOP_GRACE = 5.0
#: Seconds `serve_oracle` waits, in all, for its port to close and its last call to return.
STOP_WAIT = 10.0


def distributed_role() -> str | None:
    """"chief", "worker" or None (not distributed), from Keras Tuner's variables: a process
    is part of a distributed sweep when KERASTUNER_ORACLE_IP is set, and the chief when its
    KERASTUNER_TUNER_ID contains "chief" (Keras Tuner's own rule)."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return None
    return "chief" if "chief" in os.environ.get("KERASTUNER_TUNER_ID", "") else "worker"


def chief_address() -> tuple[str, int, str]:
    """(host, port, "HOST:PORT") of the chief from $KERASTUNER_ORACLE_IP and
    $KERASTUNER_ORACLE_PORT: the host as sockets take it (an IPv6 address without brackets),
    the address as gRPC and Keras Tuner take it ("[::1]:8000"). `kerastuner_env` sets an IPv6
    host in brackets: Keras Tuner's chief and client join f"{ip}:{port}", and gRPC reads
    "::1:8000" as another address (measured: the chief could not listen, a worker's call
    failed); one set by hand without them is taken too."""
    ip, port = os.environ["KERASTUNER_ORACLE_IP"], int(os.environ["KERASTUNER_ORACLE_PORT"])
    host = ip.strip("[]")
    return host, port, f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def serve_oracle(oracle, *, on_poll=None, poll=1.0):
    """Serves `oracle` over gRPC at $KERASTUNER_ORACLE_IP:$KERASTUNER_ORACLE_PORT until a
    worker was told to stop and no trial or tuner is left (as Keras Tuner's chief), calling
    `on_poll()` every `poll` seconds. Returns (or raises what stopped it) once the server has
    closed its port and its last call has returned (`_stop_serving`, at most STOP_WAIT
    seconds; past that it warns and returns).

    Internals: keras_tuner.src.distribute.oracle_chief (OracleServicer, exit_chief) and
    keras_tuner.src.protos.get_service_grpc. Raises HubensembleError when the address cannot
    be bound.
    """
    import grpc
    from concurrent import futures
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    address = chief_address()[2]
    executor = futures.ThreadPoolExecutor(max_workers=1)
    server = grpc.server(executor)
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    try:
        _bind(server, address)
    except HubensembleError:
        executor.shutdown(wait=False)
        raise
    server.start()
    try:
        while not (servicer.stop_triggered and oracle_chief.exit_chief(oracle)):
            time.sleep(poll)
            if on_poll is not None:
                on_poll()
    finally:  # whole (errors.held_stops): a Ctrl-C here left the server serving on its port
        with held_stops():  # in the process
            _stop_serving(server, executor, address)


def _bind(server, address: str) -> None:
    """Binds gRPC `server` to `address` ("HOST:PORT"), or raises HubensembleError
    (`sweeplock.chief_cannot_listen`: its port taken, or not this machine's). gRPC's C++
    line of the failure ("E1205 … add_port.cc:83] Failed to add port to server: … Address
    already in use") reached the terminal before that error, which says it in its own
    words: it goes to RUN/log.txt at INFO (`_tf.native_notices`), as other native lines."""
    with native_notices("the chief's gRPC server"):
        try:
            bound = server.add_insecure_port(address)
        except RuntimeError:  # grpcio >= 1.60 raises where older versions returned 0
            bound = 0
    if bound == 0:
        raise chief_cannot_listen(address)


def _stop_serving(server, executor, address: str) -> None:
    """Stops the chief's gRPC `server` and waits (STOP_WAIT seconds in all) until its port is
    closed and the last call its `executor` (one thread) ran has returned; warns, naming
    `address` and what follows, when either has not in time.

    `server.stop(grace)` returns at once: a worker's call still running goes on behind it, up
    to the grace (measured: a 1 s call returned 1 s after stop had), and the port closes a
    moment later (open right after the return in 1 of 5 first servers of a process; helper
    191, 192). gRPC sets the Event it returns once the port is closed and every call has
    ended or been cancelled; a cancelled call's Python code still runs to its end, so the
    Event alone does not say it has returned: a no-op given to the executor after the stop
    runs after every call it was given (one thread, in order). Before, the chief returned
    with a call still using the oracle after `tune.search` had taken it out of Keras Tuner's
    lock maps (LOCKS, THREADS), which put it back, and possibly writing its oracle.json.
    """
    from concurrent import futures

    deadline = time.monotonic() + STOP_WAIT
    closed = server.stop(grace=STOP_GRACE).wait(STOP_WAIT)
    try:
        executor.submit(lambda: None).result(timeout=max(0.0, deadline - time.monotonic()))
        returned = True
    except futures.TimeoutError:
        returned = False
    if closed:  # (not before: gRPC may still hand it a call) its thread ends, at once when
        executor.shutdown(wait=returned)  # every call has returned, else after the last
    if not closed:
        log.warning("the chief's oracle server at %s had not closed its port %g s after it "
                    "was told to stop (a worker's call was still running in it); the port "
                    "closes by itself: wait a few seconds before a chief serves on it again, "
                    "or give that one another port (%s)", address, STOP_WAIT,
                    option_word("--oracle HOST:PORT", "oracle_address='HOST:PORT'"))
    elif not returned:
        log.warning("a worker's call to the chief's oracle (at %s) was still running %g s "
                    "after the server was told to stop; it ends by itself, and may still write "
                    "the sweep's Keras Tuner state (its oracle.json) meanwhile", address,
                    STOP_WAIT)


def parse_address(address: str) -> tuple[str, str]:
    """(host, port) of "HOST:PORT" (IPv6 in brackets allowed; port 1..65535): the one rule,
    `stageargs.oracle_host_port`; OptionError (a HubensembleError and ValueError) otherwise."""
    return oracle_host_port(address)


@contextlib.contextmanager
def kerastuner_env(tuner_id: str | None, oracle_address: str | None):
    """Sets Keras Tuner's distributed-mode variables from `tuner_id` / `oracle_address`
    (when given; an IPv6 host, given or set, in brackets: `chief_address`) for the duration
    of the block and restores them after; yields
    (distributed, chief). Raises what `stageargs.check_distributed` raises (the one rule,
    which run_tune applies before it reads or writes anything): OptionError for an address
    that is not HOST:PORT or a malformed tuner id, HubensembleError for an incomplete
    combination (an id without an address, …)."""
    role = (tuner_id or "?") if tuner_id or oracle_address else None
    with sweep_block(role, _sweep_refused):  # Keras Tuner reads them from the process
        saved = {k: os.environ.get(k) for k in KT_VARS}
        try:
            check_distributed(tuner_id, oracle_address)  # the one rule, before any is set
            if oracle_address:
                host, port = parse_address(oracle_address)
                os.environ["KERASTUNER_ORACLE_IP"] = host
                os.environ["KERASTUNER_ORACLE_PORT"] = port
            ip = os.environ.get("KERASTUNER_ORACLE_IP", "").strip("[]")
            if ":" in ip:  # IPv6, in brackets (given so or not): Keras Tuner joins f"{ip}:{port}"
                os.environ["KERASTUNER_ORACLE_IP"] = f"[{ip}]"  # (chief_address)
            if tuner_id:
                os.environ["KERASTUNER_TUNER_ID"] = str(tuner_id)
            role = distributed_role()
            yield role is not None, role == "chief"
        finally:  # whole (errors.held_stops): a Ctrl-C here left KERASTUNER_* set, the next
            with held_stops():  # sweep of the process a distributed one
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v


def _sweep_refused(held, plain: int) -> HubensembleError:
    """`threads.sweep_block`'s refusal: a distributed sweep beside another in a thread."""
    if held is None:
        return HubensembleError(
            f"a distributed sweep sets Keras Tuner's variables (KERASTUNER_*) for the whole "
            f"process, and {counted(plain, 'other sweep')} {'runs' if plain == 1 else 'run'} "
            "in it now (threads): each would take "
            "its role as its own. Run the distributed sweep "
            f"({option_word('--tuner-id', 'tuner_id')}) in a process of its own, or after "
            "they end")
    return HubensembleError(
        f"a distributed sweep (tuner id {held[0]!r}, thread {held[1]!r}) runs in this "
        "process, and Keras Tuner reads its role from the process's variables "
        "(KERASTUNER_*): this sweep would take it as its own. Run it in another process, "
        "or after that sweep ends")


def wait_for_chief(timeout: float | None = None, poll: float = 0.25, *, run_dir=None,
                   sweep: str | None = None, pending=None) -> None:
    """Waits until the chief's port ($KERASTUNER_ORACLE_IP:$KERASTUNER_ORACLE_PORT) accepts a
    TCP connection; HubensembleError after `timeout` seconds (default CHIEF_TIMEOUT).

    gRPC backs off exponentially (to minutes) while the chief is not up yet; polling the
    port ourselves lets a worker start its first trial as soon as the chief listens.

    With `run_dir` (the run of this worker's `sweep`) it also watches the chief's lock there
    (`sweeplock.chief_start_watch`): a chief it has seen start that is killed, or that ends,
    before it listens stops the wait with RunError (`sweeplock.worker_without_chief`: the
    chief's pid and host, the commands that resume) once two looks in a row say so, where
    the worker waited the whole time-out (3600 s by default) before it said anything. A
    chief's lock left by a killed one as the wait begins is warned of
    (`sweeplock.stale_chief_note`) and the wait goes on: a chief being started again takes
    it over, and is simply used. A chief of this `sweep` that stopped with an error (bad
    module, bad data), was stopped (Ctrl-C, SIGTERM), or ended normally with this worker's
    `pending` trial ids (those without a complete candidate) all in its plan, left its end
    (`sweeplock.chief_ended`): left before the wait, it is said the same way at once and
    the wait goes on, for a chief started again in any order (an error's stopped the worker
    at once, a normal end's after a 5 s grace: a worker started before the fixed chief
    stopped, and the chief served nobody); left by a chief started and ended during the
    wait, the worker stops with it (RunError): no chief hands those trials out until one is
    started again. So does one whose chief could not listen at this address (its port
    taken: the worker too needs another; `sweeplock.starting_chief_ended`). A worker with
    a trial that chief did not have (a larger --budget) waits for its own in silence.
    """
    timeout = CHIEF_TIMEOUT if timeout is None else timeout
    host, port, address = chief_address()
    member = os.environ.get("KERASTUNER_TUNER_ID", "tuner0")
    look = None
    if run_dir is not None:
        ended = starting_chief_ended(run_dir, sweep, pending, address)  # the last chief
        if ended:  # could not listen here
            raise worker_without_chief(run_dir, member, sweep, address, ended,
                                       listen_wait=timeout)
        stale, look = chief_start_watch(run_dir, address, sweep, pending)
        if stale:  # killed, stopped, failed, or ended with our trials: said, and waited on
            say_stale_chief(log, run_dir, member, sweep, address, stale, timeout)
    deadline = time.monotonic() + timeout
    logged, seen = False, 0  # seen: looks in a row that found the chief gone
    while True:
        try:
            with socket.create_connection((host, port), timeout=5):
                return
        except OSError:
            gone = look() if look is not None else None
            seen = seen + 1 if gone else 0
            if seen >= 2:
                raise worker_without_chief(run_dir, member, sweep, address, gone,
                                           listen_wait=timeout) from None
            if time.monotonic() > deadline:
                chief = command_words("tune", flags="… --tuner-id chief --oracle HOST:PORT",
                                      keywords="…, tuner_id='chief', "
                                      "oracle_address='HOST:PORT'")
                raise HubensembleError(
                    f"the chief at {address} did not answer within {timeout:g} s; start "
                    f"{chief} there") from None
            if not logged:  # (after the first look at the chief)
                log.info("waiting for the chief at %s", address)
                logged = True
            time.sleep(poll)
