"""What this process may use (`room`: the machine's memory, its cgroup limits and its
address-space limit `ulimit -v`), read from files only (no TensorFlow, no psutil), and the
refusal of a need well above a limit that ends the process (`refusal`); split out of
memory.py, whose rules say how much memory a stage needs."""

from __future__ import annotations

import dataclasses
import os


GIB = 1 << 30

#: Where the kernel shows the process's files (proc(5)) and the cgroup file systems
#: (cgroups(7)); tests pass a tree of their own.
PROC, CGROUP = "/proc", "/sys/fs/cgroup"


@dataclasses.dataclass(frozen=True)
class Room:
    """What the process may use: `limit` bytes (the smallest of the machine's MemTotal,
    every cgroup limit over the process and its address-space limit less what TensorFlow
    reserves: `room`), `source` the file or limit that set it, `available` the machine's
    MemAvailable in bytes (None when /proc/meminfo lacks it), `hard` True when a limit
    ends the process that outgrows it (a cgroup's: the OOM killer's SIGKILL; `ulimit -v`'s:
    std::bad_alloc, an abort): a need well above it is refused (`REFUSE_FACTOR`)."""

    limit: int
    source: str
    available: int | None = None
    hard: bool = False

    def words(self) -> str:
        """"2.0 GiB (the cgroup limit in /sys/fs/cgroup/memory/x/memory.limit_in_bytes)"."""
        return f"{gib(self.limit)} ({self.source})"


class Note(str):
    """A memory note's words (`memory_note`, `stage_memory_note`), with `ratio` (float: the
    largest need it says over the room's limit, > 1) and `hard` (the room's: a limit that
    ends the process, `Room.hard`), for `refusal`."""

    def __new__(cls, words: str, ratio: float, hard: bool, address: bool = False):
        note = super().__new__(cls, words)
        note.ratio, note.hard, note.address = ratio, hard, address  # address: `ulimit -v`'s
        return note


#: How many times a hard limit's room (`Room.hard`) a rule's need must be to be refused
#: before TensorFlow loads rather than warned of (`refusal`). Measured
#: (tools/benchmarks/bench_memory.py, rank at 224 px, batch 32 and 64): the rank rule is
#: 1.14-1.22x the peak of the lightest modules (MobileNet V1's VmHWM 0.82-0.85x the rule,
#: EfficientNet-Lite0's 0.88x) and short for heavy ones (VGG16's 1.38-1.68x the rule): a
#: need 1.25x the room is more than the room for every module measured, so the command
#: would die (SIGKILL, or std::bad_alloc under `ulimit -v`) after minutes; below it a light
#: module may fit, so that is only warned of.
REFUSE_FACTOR = 1.25


def refusal(note) -> str | None:
    """The words of a refusal for memory note `note` (a `Note`) when its need is more than
    REFUSE_FACTOR x a hard limit's room, else None (a warning: the note alone)."""
    if not isinstance(note, Note) or not note.hard or note.ratio <= REFUSE_FACTOR:
        return None
    address = getattr(note, "address", False)  # its ratio: to the limit less AS_RESERVED
    return (f"refused before loading TensorFlow, as it would "
            f"{'abort' if address else 'be killed'}: {note} (it needs {note.ratio:.1f}x "
            f"{'the room left under the limit' if address else 'the limit'}; a need more than "
            f"{REFUSE_FACTOR}x a limit's room is refused, as the rule is at most 1.22x a "
            "measured module's peak)")


def _more(room, words: str = "free memory, or use a machine with more", *, ends=False) -> str:
    """The way on past the room `room` (`ends`: how a process ends that outgrows it): under
    `ulimit -v` (its source) raising it, and an allocation that fails (an abort), as the
    machine's memory is not what runs out; else `words`, and Linux's OOM killer's SIGKILL."""
    if room is not None and room.source.startswith(_ADDRESS_WORDS):
        return ("A process that outgrows `ulimit -v` aborts where an allocation fails "
                "(std::bad_alloc, or TensorFlow's \"OOM when allocating tensor\")" if ends else
                "raise the shell's `ulimit -v` (`ulimit -v unlimited`), which sets this room")
    return ("A process that runs out of memory is killed by Linux's OOM killer without a word "
            "(the shell says \"Killed\")" if ends else words)


def gib(n_bytes: float) -> str:
    """`n_bytes` as "1.7 GiB" (one decimal, GiB = 2**30 bytes)."""
    return f"{n_bytes / GIB:.1f} GiB"


def _read(path) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


def meminfo(proc=PROC) -> dict[str, int]:
    """/proc/meminfo's fields in bytes ({"MemTotal": …, "MemAvailable": …}); {} when it
    cannot be read (macOS, Windows)."""
    out = {}
    for line in (_read(os.path.join(proc, "meminfo")) or "").splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[name.strip()] = int(parts[0]) * (1024 if parts[1:2] == ["kB"] else 1)
    return out


def _cgroup_paths(proc) -> tuple[str | None, str | None]:
    """(v1 memory controller's path, v2 path) of this process, from /proc/self/cgroup
    (lines "ID:CONTROLLERS:PATH"; v2's is "0::PATH", cgroups(7))."""
    v1 = v2 = None
    for line in (_read(os.path.join(proc, "self", "cgroup")) or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2 = parts[2]
        elif "memory" in parts[1].split(","):
            v1 = parts[2]
    return v1, v2


def _up(base: str, path: str):
    """`base`/`path`, then each parent up to `base` itself: a limit of any of them applies
    (the hierarchy's), and in a container `path` (the host's name for it) may not exist
    under its own mount, whose root is then the process's cgroup."""
    parts = [p for p in path.split("/") if p and p not in (".", "..")]
    for n in range(len(parts), -1, -1):
        yield os.path.join(base, *parts[:n])


def cgroup_limits(proc=PROC, cgroup=CGROUP) -> list[tuple[int, str]]:
    """Each memory limit over this process as (bytes, file): cgroup v2's `memory.max`
    ("max": none) under `cgroup` (or `cgroup`/unified, a hybrid mount) and v1's
    `memory.limit_in_bytes` under `cgroup`/memory, for its cgroup and each parent. v1's
    "no limit" is a huge number, kept here (`room` drops it against MemTotal)."""
    v1, v2 = _cgroup_paths(proc)
    found = []
    for base, rel, name in ((cgroup, v2, "memory.max"),
                            (os.path.join(cgroup, "unified"), v2, "memory.max"),
                            (os.path.join(cgroup, "memory"), v1, "memory.limit_in_bytes")):
        if rel is None:
            continue
        for folder in _up(base, rel):
            path = os.path.join(folder, name)
            text = _read(path)
            if text and text.isdigit():
                found.append((int(text), path))
    return found


#: Address space TensorFlow's process reserves beyond the memory it touches, measured
#: (tools/benchmarks/bench_memory.py: /proc/PID/status VmPeak - VmHWM of `hubensemble rank`,
#: 224 px, 2 cores): 1.97 GiB at --batch-size 32 and 2.19 at 64 with MobileNet V1, 1.95 and
#: 2.16 with EfficientNet-Lite0, 2.01 and 2.08 with VGG16 (its threads' stacks, malloc's
#: per-thread arenas: more with more cores). `ulimit -v` (RLIMIT_AS) counts it, so its room
#: is the limit less this much (the least measured: a refusal errs towards running).
AS_RESERVED = 2.0 * GIB


_ADDRESS_WORDS = "the address-space limit `ulimit -v`"


def address_limit() -> int | None:
    """This process's address-space limit in bytes (`ulimit -v`, RLIMIT_AS's soft limit:
    getrlimit(2)), None when there is none (RLIM_INFINITY) or it cannot be read (Windows)."""
    try:
        import resource
    except ImportError:  # (not on Windows)
        return None
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    return None if soft == resource.RLIM_INFINITY or soft < 0 else int(soft)


def room(proc=PROC, cgroup=CGROUP, address=None) -> Room | None:
    """What this process may use (`Room`): the smallest of /proc/meminfo's MemTotal, the
    cgroup limits over it (`cgroup_limits`) and its address-space limit (`address`, bytes;
    None: `address_limit()`, `ulimit -v`) less `AS_RESERVED`; None when none can be read (not
    Linux and no limit). Before, `ulimit -v` was not read: a rank under `ulimit -v 3000000`
    that needed more died of std::bad_alloc, an abort no handler sees."""
    info = meminfo(proc)
    best = None
    if "MemTotal" in info:
        best = Room(info["MemTotal"], "the machine's memory, MemTotal in "
                    + os.path.join(proc, "meminfo"), info.get("MemAvailable"))
    for limit, path in cgroup_limits(proc, cgroup):
        if best is None or limit < best.limit:
            best = Room(limit, f"the cgroup limit in {path}", info.get("MemAvailable"),
                        hard=True)
    address = address_limit() if address is None else address
    if address is not None and (best is None or address - AS_RESERVED < best.limit):
        best = Room(max(int(address - AS_RESERVED), 0),
                    f"{_ADDRESS_WORDS} {gib(address)} (RLIMIT_AS), less "
                    f"the {gib(AS_RESERVED)} TensorFlow's process reserves beyond what it "
                    "uses", info.get("MemAvailable"), hard=True)
    return best
