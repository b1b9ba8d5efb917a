"""Strategies: which tf.distribute strategy a trial trains under (CPU, GPUs, multi-worker, TPU)."""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys

import tensorflow as tf

import hubensemble
from hubensemble import environment, options
from hubensemble.errors import HubensembleError, checks_keywords, first_line
from hubensemble.lockwords import option_word
from hubensemble.preflight import check_strategy
from hubensemble.text import absolute
from hubensemble.threads import caller_thread

log = logging.getLogger(__name__)

STRATEGIES = options.get("strategy").choices
#: A command line that splits the CPU into two logical devices before TensorFlow starts, so
#: that `mirrored` trains two replicas without a GPU (for trying the path only: no flag does
#: it; docs/tune.md "Strategies"). TensorFlow is imported by hubensemble's one import
#: (`_tf.import_tensorflow`, whose `setup` splits the CPU before the devices start): with its
#: own `import tensorflow` first, the recipe's process ran at TensorFlow's log level 0, not
#: the command line's TF_CPP_MIN_LOG_LEVEL 2, and the terminal got TensorFlow's INFO and
#: WARNING lines raw: its start-up notices (the absl banner twice) and, in each mirrored trial,
#: "W… local_rendezvous.cc:412] Local rendezvous is aborting with status: INVALID_ARGUMENT:
#: assertion failed: [Trying to access a placeholder … cross-replica context …]" (a module
#: call that hub.layer's output probe made, and caught, in the cross-replica context, until
#: a2bb035 ran it in a replica).
SPLIT_CPU_RECIPE = (
    "python -c \"import sys; from hubensemble._tf import import_tensorflow; import_tensorflow("
    "lambda tf: tf.config.set_logical_device_configuration(tf.config.list_physical_devices("
    "'CPU')[0], [tf.config.LogicalDeviceConfiguration()] * 2)); "
    "from hubensemble.cli import main; sys.exit(main())\" tune --run RUN --strategy mirrored …")
#: Seconds to connect to and initialise a TPU before giving up ($HUBENSEMBLE_TPU_TIMEOUT).
TPU_TIMEOUT = environment.seconds_from_environment("HUBENSEMBLE_TPU_TIMEOUT")


@checks_keywords
def get_strategy(name: str = "auto", tpu: str | None = None) -> tf.distribute.Strategy:
    """A tf.distribute strategy by name.

    cpu: the default strategy. mirrored: MirroredStrategy over all local GPUs, or over all
    logical CPUs when there is no GPU and several are configured. tpu: TPUStrategy on
    ``tpu`` (or $TPU_NAME). multiworker is refused (preflight.MULTIWORKER_REFUSED).
    auto: a TPU when one is named (``tpu`` or $TPU_NAME) and reachable, else mirrored over
    several GPUs, else the default strategy (which uses a single GPU when there is one).

    Raises options.OptionError (a HubensembleError) for a name that is not one of
    STRATEGIES, as the --strategy option says it ("get_strategy() name must be one of auto,
    cpu, …, got None": it said "unknown strategy None"), and HubensembleError for
    multiworker and a TPU that is not named, cannot be resolved or reached, or does not
    initialise within TPU_TIMEOUT seconds (tpu; auto falls back with a warning instead).
    """
    options.check("strategy", name, label="get_strategy() name")
    check_strategy(name, tpu)
    if name == "cpu":
        return tf.distribute.get_strategy()
    if name == "tpu":
        return _tpu_strategy(tpu or os.environ.get("TPU_NAME"))
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored":
        if gpus:
            return tf.distribute.MirroredStrategy([d.name for d in gpus])
        cpus = tf.config.list_logical_devices("CPU")
        if len(cpus) < 2:
            log.warning("mirrored: no GPU and one CPU device; running one replica. No flag "
                        "splits the CPU: to try several replicas without a GPU, run the "
                        "command through Python with the CPU split first: %s", SPLIT_CPU_RECIPE)
        return tf.distribute.MirroredStrategy([d.name for d in cpus])
    # auto
    address = tpu or os.environ.get("TPU_NAME")
    if address:
        try:
            return _tpu_strategy(address)
        except HubensembleError as e:
            log.warning("auto: %s; falling back to %s", e, "GPUs" if gpus else "the CPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy([d.name for d in gpus])
    return tf.distribute.get_strategy()


def check_batch_divides(strategy, batch_size: int, *, by_name: bool = True) -> None:
    """Refuses (HubensembleError) a global training batch of `batch_size` examples that does
    not divide evenly among `strategy`'s replicas (its num_replicas_in_sync), naming the
    multiples around it, or one device, in the caller's words: `--strategy cpu` on the
    command line; from Python `strategy='cpu'` when the caller's function takes a strategy by
    name (`by_name`: run_tune, fit), else `strategy=None` called outside any strategy's scope
    (`export_ensemble` and `run_distill` take a tf.distribute.Strategy or None, the one in
    scope: 'cpu' was advised to run_distill, which cannot take it). Measured with Keras
    3.15.1 and TensorFlow 2.21 (MirroredStrategy over two logical CPUs, --train-batch-size
    7): tf.distribute splits each batch 4 + 3, and every
    step of Keras' fit failed with "Inputs to operation AddN of type AddN must have the same
    size and shape. Input 0: [4,32,32,3] != input 1: [3,32,32,3]", so every trial of the
    sweep was recorded as failed, and reused as done when the command ran again."""
    replicas = int(getattr(strategy, "num_replicas_in_sync", 1) or 1)
    if replicas <= 1 or batch_size % replicas == 0:
        return
    lower = batch_size // replicas * replicas
    fits = " or ".join(str(b) for b in (lower, lower + replicas) if b > 0)
    # Each multiple as the caller gives it: "--train-batch-size 6 or 8", "train_batch_size=6
    # or 8" (Python was told "pass train_batch_size 6 or 8", a flag's form it cannot write).
    flag = option_word(f"--train-batch-size {fits}", f"train_batch_size={fits}")
    one = option_word("--strategy cpu", "strategy='cpu'" if by_name else
                      "strategy=None, called outside any strategy's scope: the default "
                      "strategy")
    raise HubensembleError(
        f"the training batch of {batch_size} does not divide among the {replicas} replicas of "
        f"{type(strategy).__name__}: Keras' fit cannot train a batch split unevenly over "
        "them (TensorFlow fails each step: \"Inputs to operation AddN … must have the same "
        f"size and shape\"); pass {flag} (a "
        f"multiple of {replicas}), or train on one device ({one})")


def _run_with_timeout(fn, timeout, what):
    # Connecting to an address where no TPU answers blocks forever inside TF: run it in a
    # thread and give up with a clear error.
    result, error = [], []

    def target():
        try:
            result.append(fn())
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            error.append(e)

    thread = caller_thread(target, name="hubensemble-tpu-connect")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise HubensembleError(f"{what} did not finish within {timeout:.0f} s")
    if error:
        raise error[0]
    return result[0] if result else None


def _probe_grpc(master, address, timeout=10.0):
    m = re.match(r"^grpc://(\[[^\]]+\]|[^:/]+):(\d+)$", master or "")
    if not m:
        return
    host, port = m.group(1).strip("[]"), int(m.group(2))
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as e:
        raise HubensembleError(
            f"cannot reach the TPU at {address!r} ({master}): {e}; check the address (a TPU "
            "name, grpc://HOST:8470, or 'local' on a TPU VM) and that this machine may connect "
            "to it") from None


def _tpu_strategy(address, timeout=None):
    timeout = TPU_TIMEOUT if timeout is None else timeout  # address: named (check_strategy)
    resolver, master = _resolve(address)
    _probe_grpc(master, address, timeout=min(10.0, timeout))  # all within the time-out
    if master.startswith("grpc://"):  # a remote TPU may accept and never answer
        _check_in_a_fresh_process(address, master, timeout)
    _connect(resolver, address, master, timeout)
    return tf.distribute.TPUStrategy(resolver)


def _resolve(address):
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address)
        return resolver, resolver.master() or ""
    except Exception as e:  # noqa: BLE001 - the resolver raises many types
        raise HubensembleError(f"cannot resolve the TPU {address!r}: {type(e).__name__}: {e}; "
                               "pass its name, grpc://HOST:8470, or 'local' on a TPU "
                               "VM") from None


def _words(address, master):
    """(what connecting is, the way on) for the TPU at `address` (`master`: its gRPC URL)."""
    return (f"connecting to the TPU at {address!r} ({master or 'local'})",
            f"check that a TPU answers at {address!r} (its name, grpc://HOST:8470, or 'local' "
            "on a TPU VM) and that this machine may connect to it")


def _connect(resolver, address, master, timeout):
    what, way_on = _words(address, master)
    try:
        _run_with_timeout(lambda: tf.config.experimental_connect_to_cluster(resolver),
                          timeout, what)
        _run_with_timeout(lambda: tf.tpu.experimental.initialize_tpu_system(resolver),
                          timeout, what)
    except HubensembleError as e:  # the time-out: say what to check, and how to wait longer
        raise HubensembleError(f"{e}; {way_on}, or give it longer with "
                               "$HUBENSEMBLE_TPU_TIMEOUT (seconds)") from None
    except Exception as e:  # noqa: BLE001 - TensorFlow's gRPC errors: a multi-line dump
        raise HubensembleError(f"{what} failed: {type(e).__name__}: {first_line(e)}; "
                               f"{way_on}") from None


def check_tpu_answers(address: str, timeout: float) -> None:
    """Resolves the TPU at ``address`` and connects to it in this process within ``timeout``
    seconds (a float above 0): what `_check_in_a_fresh_process` runs in a new Python, where no
    TensorFlow op has run yet. Raises HubensembleError naming the address, what to check and
    $HUBENSEMBLE_TPU_TIMEOUT."""
    resolver, master = _resolve(address)
    _connect(resolver, address, master, timeout)


def check_tpu_serves(name: str, tpu: str | None, timeout: float | None = None) -> None:
    """For `fit`, before rank's minutes: that strategy `name`'s TPU (`tpu`, else $TPU_NAME)
    resolves, takes connections (a grpc://HOST:PORT address) and answers within `timeout`
    seconds (default TPU_TIMEOUT), checked in a new Python as `get_strategy` does, which
    tune calls again. Nothing for other strategies, nor for "auto" (it falls back to the
    CPU or GPUs with a warning). Raises HubensembleError as `get_strategy("tpu")` (a TPU not
    named, not resolved, not reachable, or silent), where a fit found out only at its tune
    stage, after rank had run."""
    if name != "tpu":
        return
    check_strategy(name, tpu)
    timeout = TPU_TIMEOUT if timeout is None else timeout
    address = tpu or os.environ.get("TPU_NAME")
    _, master = _resolve(address)
    _probe_grpc(master, address, timeout=min(10.0, timeout))
    if master.startswith("grpc://"):
        _check_in_a_fresh_process(address, master, timeout)


#: Seconds a fresh Python is given to start and import TensorFlow before its TPU_TIMEOUT.
_START_SECONDS = 120.0
_CHECK = ("import sys\nfrom hubensemble.errors import HubensembleError\n"
          "from hubensemble.tune.strategies import check_tpu_answers\ntry:\n"
          "    check_tpu_answers(sys.argv[1], float(sys.argv[2]))\n"
          "except HubensembleError as e:\n    print(e, file=sys.stderr)\n    sys.exit(2)\n")


def _check_in_a_fresh_process(address, master, timeout):
    """`check_tpu_answers` in a new Python, stopped after `timeout` (+ its start-up). Once a
    TensorFlow op has run in a process (a tune or fit has decoded its data), connecting to a
    remote TPU that accepts and never answers blocks inside TensorFlow holding Python's lock:
    `_run_with_timeout`'s thread could not give up, nor Ctrl-C or SIGTERM stop the command
    (a new-user check: `tune --strategy tpu` hung for 12 minutes, until kill -9). A process
    can be stopped."""
    what, way_on = _words(address, master)
    package = os.path.dirname(os.path.dirname(absolute(hubensemble.__file__)))
    # Its words in UTF-8 whatever the locale (PYTHONIOENCODING, read back as such below)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONIOENCODING="utf-8:backslashreplace",
               PYTHONPATH=os.pathsep.join(filter(None, (package, os.environ.get("PYTHONPATH")))))
    try:
        done = subprocess.run([sys.executable, "-c", _CHECK, address, repr(float(timeout))],
                              capture_output=True, encoding="utf-8", errors="replace", env=env,
                              timeout=timeout + _START_SECONDS)
    except subprocess.TimeoutExpired:  # run() has killed it
        raise HubensembleError(f"{what} did not finish within {timeout:.0f} s; {way_on}, or "
                               "give it longer with $HUBENSEMBLE_TPU_TIMEOUT (seconds)") from None
    said = (done.stderr.strip().splitlines() or [""])[-1]
    if done.returncode == 2 and said:  # check_tpu_answers' own one line
        raise HubensembleError(said)
    if done.returncode:
        raise HubensembleError(f"{what} failed: the check in a new Python process exited with "
                               f"{done.returncode}: {said or 'no message'}; {way_on}")


def is_default_strategy(strategy) -> bool:
    """Whether `strategy` is None or TensorFlow's default (no-op) strategy."""
    return strategy is None or type(strategy).__name__ == "_DefaultDistributionStrategy"
