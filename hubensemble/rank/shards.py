"""Which part of a catalogue a process ranks: `--shard I/N`, or `--shard auto` from the
environment of a cluster array job (Kubernetes Indexed Job, Slurm job array). TF-free."""

from __future__ import annotations

import os

from hubensemble.lockwords import option_word
from hubensemble.optionerror import OptionError
from hubensemble.text import counted

#: Kubernetes Indexed Jobs give every pod its index (0 … completions-1) in this variable; the
#: count (the Job's `completions`) is not in the environment: pass --shards N.
K8S_INDEX = "JOB_COMPLETION_INDEX"
#: Slurm job arrays: the task's id, how many tasks, and the first id and step of the range.
SLURM_ID = "SLURM_ARRAY_TASK_ID"
SLURM_COUNT = "SLURM_ARRAY_TASK_COUNT"
SLURM_MIN = "SLURM_ARRAY_TASK_MIN"
SLURM_STEP = "SLURM_ARRAY_TASK_STEP"


def _auto() -> str:
    """"--shard auto" on the command line; from Python the function that reads the job's
    environment (`lockwords.option_word`: run_rank and shard_from_environment's callers
    typed no flag)."""
    return option_word("--shard auto", "shard_from_environment()")


def _shards(count="N") -> str:
    """"--shards N" on the command line, "shards=N" from Python."""
    return option_word(f"--shards {count}", f"shards={count}")


def _shard(index="I", count="N") -> str:
    """"--shard I/N" on the command line, "shard=(I, N)" from Python."""
    return option_word(f"--shard {index}/{count}", f"shard=({index}, {count})")


def check_shard(shard) -> tuple[int, int] | None:
    """`shard` as (index, count) with 0 <= index < count (None stays None);
    OptionError (a HubensembleError; on the command line a usage error) otherwise."""
    if shard is None:
        return None
    if isinstance(shard, str):
        raise OptionError(f"shard {shard!r}: pass (index, count), e.g. shard=(0, 4), "
                          "or shard=shard_from_environment() in a cluster array job "
                          "(the command line's --shard auto)")
    try:
        i, n = (int(v) for v in shard)
    except (TypeError, ValueError):
        raise OptionError(f"shard must be (index, count), got {shard!r}") from None
    if n < 1 or not 0 <= i < n:
        raise OptionError(f"shard {i}/{n}: need 0 <= index < count (e.g. "
                          f"{_shard(0, 4)} … {option_word('3/4', '(3, 4)')})")
    return i, n


def shard_members(size, shard) -> list[int]:
    """Catalogue positions (0 … size-1) that shard (i, n) ranks: those with position % n ==
    i; all of them for None. Every position is in exactly one of the n shards."""
    if shard is None:
        return list(range(size))
    i, n = check_shard(shard)
    return list(range(i, size, n))


def check_shard_size(size, shard) -> None:
    """Refuses shard (i, n) of a catalogue of `size` modules (an int, or the ModuleSpec list
    itself, whose `source` names the catalogue files given: `given_words`) when it holds
    none (i >= size): OptionError (a usage error on the command line, also where `--shard
    auto` resolves to it in the stage). None and "auto" (resolved later) pass."""
    specs = None if isinstance(size, int) else list(size)
    size = len(specs) if specs is not None else size
    if isinstance(shard, (tuple, list)) and not shard_members(size, shard):
        given, several = given_words(specs) if specs else ("the catalogue has", False)
        # The count's noun after the words the command line's tests quote ("has 4; use").
        raise OptionError(f"shard {shard[0]}/{shard[1]} holds no module: {given} {size}" + (
            " between them" if several else "") + (
            f"; use fewer shards (at most {size}, one for each of "
            f"{'their' if several else 'its'} {counted(size, 'module')})" if size else ""))


def given_words(specs) -> tuple[str, bool]:
    """(words before the count, whether they name several sources) of the ModuleSpecs
    `specs`, by their `source` ("FILE:LINE"): "the catalogue has" for one file; "the
    catalogues A (3) and B (4) have" for several, and "N ModuleSpecs given in Python" among
    them for those without a source; "specs holds" for those alone. "the catalogue has 7"
    named one catalogue where `rank --catalogue A B` gave two."""
    files: dict[str, int] = {}
    for spec in specs:
        file = spec.source.rpartition(":")[0] if ":" in (spec.source or "") else ""
        files[file] = files.get(file, 0) + 1
    loose = files.pop("", 0)
    if not files:
        return option_word("the catalogue has", "specs holds"), False
    if len(files) == 1 and not loose:
        return "the catalogue has", False
    parts = [f"{f} ({n})" for f, n in files.items()]
    parts += [counted(loose, "ModuleSpec") + " given in Python"] if loose else []
    word = "catalogues" if len(files) > 1 else "catalogue"
    return f"the {word} {' and '.join([', '.join(parts[:-1]), parts[-1]])} have", True


def _int(environ, name):
    text = environ.get(name)
    try:
        return int(text)
    except (TypeError, ValueError):
        raise OptionError(f"{_auto()}: ${name} is {text!r}, not an integer; "
                          "is this really an array job's task?") from None


def shard_from_environment(shards=None, environ=None) -> tuple[int, int]:
    """(index, count) of this process's shard, from the cluster job's environment.

    * Kubernetes Indexed Job (``completionMode: Indexed``): index ``$JOB_COMPLETION_INDEX``,
      count `shards` (the Job's ``completions``; Kubernetes does not put it in the
      environment, so it is required).
    * Slurm job array (``sbatch --array=…``): index from ``$SLURM_ARRAY_TASK_ID`` — minus
      ``$SLURM_ARRAY_TASK_MIN``, divided by ``$SLURM_ARRAY_TASK_STEP`` when set, so
      ``--array=1-4`` and ``--array=0-30:10`` work too — and count
      ``$SLURM_ARRAY_TASK_COUNT``; `shards`, when given, must equal it.

    `environ` defaults to os.environ. Raises OptionError (a HubensembleError; on the command
    line a usage error in argparse's shape, `arguments.is_usage_error`), saying what to set
    or fix in the caller's words (`lockwords.option_word`: "--shard auto … --shards N" on the
    command line, "shard_from_environment() … shards=N" from Python), when neither job's variables
    are set, when both are, when a value is not an integer, when `shards` is missing
    (Kubernetes) or differs from the Slurm count, or when the index falls outside
    0 … count-1.
    """
    env = os.environ if environ is None else environ
    if shards is not None and (isinstance(shards, bool) or not isinstance(shards, int)
                               or shards < 1):
        raise OptionError(f"{option_word('--shards', 'shards')} must be an integer >= 1, "
                          f"got {shards!r}")
    k8s, slurm = K8S_INDEX in env, SLURM_ID in env or SLURM_COUNT in env
    if k8s and slurm:
        raise OptionError(f"{_auto()}: both ${K8S_INDEX} (Kubernetes) and "
                          f"${SLURM_ID}/${SLURM_COUNT} (Slurm) are set; unset the "
                          f"one that does not describe this job, or pass {_shard()}")
    if k8s:
        index = _int(env, K8S_INDEX)
        if shards is None:
            raise OptionError(f"{_auto()} in a Kubernetes Indexed Job (${K8S_INDEX}="
                              f"{index}) needs {_shards()}, N = the Job's completions")
        count, source = shards, f"${K8S_INDEX}={index}, {_shards(shards)}"
    elif slurm:
        if SLURM_ID not in env or SLURM_COUNT not in env:
            have, missing = ((SLURM_ID, SLURM_COUNT) if SLURM_ID in env
                             else (SLURM_COUNT, SLURM_ID))
            raise OptionError(f"{_auto()}: ${have} is set but ${missing} is not; "
                              "submit the job as an array (sbatch --array=0-3 for 4 "
                              "shards)")
        task, count = _int(env, SLURM_ID), _int(env, SLURM_COUNT)
        first = _int(env, SLURM_MIN) if SLURM_MIN in env else 0
        step = _int(env, SLURM_STEP) if SLURM_STEP in env else 1
        if step < 1 or (task - first) % step:
            raise OptionError(f"{_auto()}: Slurm task {task} is not on the array "
                              f"range {first}, {first + step}, … (${SLURM_MIN}={first}, "
                              f"${SLURM_STEP}={step}); use --array=0-{count - 1}")
        index = (task - first) // step
        source = (f"${SLURM_ID}={task}, ${SLURM_COUNT}={count}"
                  + (f", ${SLURM_MIN}={first}" if first else "")
                  + (f", ${SLURM_STEP}={step}" if step != 1 else ""))
        if shards is not None and shards != count:
            raise OptionError(f"{_auto()}: {_shards(shards)} but the Slurm array has "
                              f"{count} tasks ({source}); drop "
                              f"{option_word('--shards', 'shards')} or make them agree")
    else:
        raise OptionError(
            f"{_auto()} reads the shard from a cluster array job, but neither "
            f"${K8S_INDEX} (Kubernetes Indexed Job, with {_shards()}) nor ${SLURM_ID} and "
            f"${SLURM_COUNT} (Slurm, sbatch --array) is set; outside such a job pass "
            f"{_shard()} (docs/rank.md, \"Cluster array jobs\")")
    if count < 1 or not 0 <= index < count:
        raise OptionError(f"{_auto()}: index {index} is outside 0 … {count - 1} "
                          f"({source}); the job's index and count disagree")
    return index, count
