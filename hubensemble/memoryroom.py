"""What this process may use (`room`: the machine's memory, its cgroup limits and its
address-space limit `ulimit -v`), read from files only (no TensorFlow, no psutil), and the
refusal of a need well above a limit that ends the process (`refusal`); split out of
memory.py, whose rules say how much memory a stage needs."""

from __future__ import annotations

import dataclasses
import os

from hubensemble.errors import HubensembleError


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
    std::bad_alloc, an abort): a need well above it is refused (`REFUSE_FACTOR`). Under
    `ulimit -v`, `cap` is the limit and `reserve` what TensorFlow and Python reserve of it
    (bytes; both None for other rooms)."""

    limit: int
    source: str
    available: int | None = None
    hard: bool = False
    cap: int | None = None
    reserve: int | None = None

    def words(self) -> str:
        """"2.0 GiB (the cgroup limit in /sys/fs/cgroup/memory/x/memory.limit_in_bytes)"; under
        `ulimit -v` with less than `TINY` left, "no room is left under the limit `ulimit -v` (N
        GiB, of which TensorFlow and Python take M)" (a
        room of "0.0 GiB" said nothing of why)."""
        if self.none_left():
            return (f"no room is left under the limit `ulimit -v` ({gib(self.cap)}, of which "
                    f"TensorFlow and Python take {gib(self.reserve)})")
        return f"{gib(self.limit)} ({self.source})"

    def none_left(self) -> bool:
        """True under `ulimit -v` (`cap` set) when less than `TINY` bytes are left under it."""
        return self.cap is not None and self.limit < TINY


#: A room under `ulimit -v` below this many bytes (0.1 GiB) is said as "no room is left", not
#: as a room and a ratio to it: at 0 bytes the ratio was 1713877248.0x, and no rule's need
#: (the embedding's fixed 0.96 GB alone) comes near it.
TINY = GIB // 10


class Note(str):
    """A memory note's words (`memory_note`, `stage_memory_note`), with `ratio` (float: the
    largest need it says over the room's limit, > 1), `hard` (the room's: a limit that
    ends the process, `Room.hard`) and `room` (that Room, or None), for `refusal`."""

    def __new__(cls, words: str, ratio: float, hard: bool, address: bool = False,
                room=None):
        note = super().__new__(cls, words)
        note.ratio, note.hard, note.address = ratio, hard, address  # address: `ulimit -v`'s
        note.room = room  # the Room it was said of (None: not known)
        return note


#: How many times a cgroup limit's room (`Room.hard`) a rule's need must be to be refused
#: before TensorFlow loads rather than warned of (`refusal`; under `ulimit -v`
#: ADDRESS_REFUSE_FACTOR). Measured
#: (tools/benchmarks/bench_memory.py, rank at 224 px, batch 32 and 64): the rank rule is
#: 1.14-1.22x the peak of the lightest modules (MobileNet V1's VmHWM 0.82-0.85x the rule,
#: EfficientNet-Lite0's 0.88x) and short for heavy ones (VGG16's 1.38-1.68x the rule): a
#: need 1.25x the room is more than the room for every module measured, so the command
#: would die (SIGKILL, or std::bad_alloc under `ulimit -v`) after minutes; below it a light
#: module may fit, so that is only warned of.
REFUSE_FACTOR = 1.25

#: `REFUSE_FACTOR` under `ulimit -v`: any need above the room left under the limit is refused.
#: The room there is counted from VmPeak (the limit less `address_reserve`), not VmHWM, and a
#: process past the limit aborts at once, no handler seeing it: MobileNet V1's rank at
#: --batch-size 8 under 2.38 GiB ("cannot allocate memory for thread-local data", exit 127),
#: 2.10 GiB (pthread_create failed, exit -6), at 32 under 2.81 GiB (SIGSEGV); at 8 under
#: `ulimit -v 3000000` it was only warned of (its need 1.14x the room then) and aborted.
#: The rank rule plus the reserve is above every VmPeak measured of MobileNet V1 and
#: EfficientNet-Lite0 (2.84-3.61 GiB at batch 8-64 on 2 cores, the rule and reserve
#: 3.21-3.83; 2.57-2.86 on 1 core, 2.71-2.97), so what is let through does not abort.
ADDRESS_REFUSE_FACTOR = 1.0


class MemoryRefused(HubensembleError):
    """A command refused before TensorFlow loads as its need is well above a limit that ends
    the process (`refusal`'s words: a cgroup's, `ulimit -v`'s). The command line is fine:
    said as the machine's refusals are (a full disk: "hubensemble: error: …", exit 2,
    `exits.stopped_code`), not as a usage error (`arguments.is_usage_error`: a plain
    HubensembleError of the command line's checks printed the usage line first)."""


def refusal(note) -> str | None:
    """The words of a refusal for memory note `note` (a `Note`) when its need is more than
    REFUSE_FACTOR x a hard limit's room (ADDRESS_REFUSE_FACTOR x under `ulimit -v`), else
    None (a warning: the note alone)."""
    address = getattr(note, "address", False)  # its ratio: to the limit less the reserve
    factor = ADDRESS_REFUSE_FACTOR if address else REFUSE_FACTOR
    if not isinstance(note, Note) or not note.hard or note.ratio <= factor:
        return None
    why = ("any need above the room left under `ulimit -v` is refused, as an allocation past "
           "it aborts the process" if address else f"a need more than {REFUSE_FACTOR}x a "
           "limit's room is refused, as the rule is at most 1.22x a measured module's peak")
    room = getattr(note, "room", None)
    if room is not None and room.limit < TINY:  # no ratio to a room of (about) nothing
        return (f"refused before loading TensorFlow, as it would "
                f"{'abort' if address else 'be killed'} ({why}):\n{note}")
    return (f"refused before loading TensorFlow, as it would "
            f"{'abort' if address else 'be killed'} (it needs {note.ratio:.1f}x "
            f"{'the room left under the limit' if address else 'the limit'}; {why}):\n{note}")


def arenas_saved(room) -> int:
    """Bytes of room MALLOC_ARENA_MAX=2 would add under `ulimit -v` (`room` a Room whose
    source is the address-space limit: `address_reserve` with it, less without), 0 for any
    other room or when it is set already."""
    if room is None or not room.source.startswith(_ADDRESS_WORDS):
        return 0
    return max(address_reserve() - address_reserve({"MALLOC_ARENA_MAX": "2"}), 0)


def arenas_way(room, then: str = "") -> str:
    """"run it with MALLOC_ARENA_MAX=2 in its environment{then} (glibc's malloc then reserves
    0.9 GiB less address space)" (`then`: " and --batch-size 32 (about 1.2 GiB)", what then
    fits), or "" where it saves nothing (`arenas_saved`)."""
    saved = arenas_saved(room)
    return (f"run it with MALLOC_ARENA_MAX=2 in its environment{then} (glibc's malloc then "
            f"reserves {gib(saved)} less address space)" if saved > 0 else "")


def _more(room, words: str = "free memory, or use a machine with more", *, ends=False,
          with_arenas: str = "", need: float | None = None) -> str:
    """The way on past the room `room` (`ends`: how a process ends that outgrows it): under
    `ulimit -v` (its source) raising it, and an allocation that fails (an abort), as the
    machine's memory is not what runs out, or MALLOC_ARENA_MAX=2 (`arenas_saved`), with
    `with_arenas` after it (" and --batch-size 32 (about 1.3 GiB)": what then fits), only
    where that covers `need` (bytes: the room plus `arenas_saved` at least `need`, or
    `with_arenas` given; None: not known, offered whenever it saves any); else `words`, and
    Linux's OOM killer's SIGKILL. Before, MALLOC_ARENA_MAX=2 was offered wherever it saved
    any room, also where the need stayed above the room with it."""
    if room is not None and room.source.startswith(_ADDRESS_WORDS):
        if ends:
            return ("A process that outgrows `ulimit -v` aborts where an allocation fails "
                    "(std::bad_alloc, \"cannot allocate memory for thread-local data\", or "
                    "TensorFlow's \"OOM when allocating tensor\")")
        arenas = arenas_way(room, with_arenas)
        if not with_arenas and need is not None and room.limit + arenas_saved(room) < need:
            arenas = ""  # fewer arenas would not make room enough: not a way on
        return ("raise the shell's `ulimit -v` (`ulimit -v unlimited`), which sets this room"
                + (f", or {arenas}" if arenas else ""))
    return ("A process that runs out of memory is killed by Linux's OOM killer without a word "
            "(the shell says \"Killed\")" if ends else words)


def gib(n_bytes: float) -> str:
    """`n_bytes` as "1.7 GiB" (one decimal, GiB = 2**30 bytes); below 0.05 GiB, where that
    would say "0.0 GiB" of a room of 1 MiB, as "1 MiB" (MiB = 2**20 bytes; "0 MiB" for 0 or
    less)."""
    if n_bytes < GIB / 20:
        return f"{max(n_bytes, 0) / (1 << 20):.0f} MiB"
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


#: Address space TensorFlow's process reserves beyond the memory it touches (VmPeak - VmHWM:
#: its threads' stacks, libraries, and glibc malloc's per-thread arenas), which `ulimit -v`
#: (RLIMIT_AS) counts. Measured (tools/benchmarks/bench_memory.py: /proc/PID/status of
#: `hubensemble rank`, 224 px, 2 cores): 1.96-2.24 GiB with MobileNet V1 at --batch-size 8-64,
#: 1.95-2.20 with EfficientNet-Lite0, 2.01-2.14 with VGG16, 1.69-1.84 on 1 core; with
#: MALLOC_ARENA_MAX=2 1.22-1.34 (MobileNet V1, batch 8 and 32), so the arenas take
#: 0.68-0.74 GiB of it. Its
#: part besides the arenas after the first two (the most measured with two, 1.34 GiB):
AS_BASE = int(1.35 * GIB)
#: What each malloc arena reserves: HEAP_MAX_SIZE, 64 MiB on a 64-bit glibc (mallopt(3),
#: M_ARENA_MAX: at most 8 arenas a core by default, or MALLOC_ARENA_MAX).
ARENA_BYTES = 64 << 20


def cpus() -> int:
    """The cores this process may run on (`os.sched_getaffinity`, else `os.cpu_count`), >= 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def malloc_arenas(env=None) -> int:
    """How many malloc arenas glibc may make in this process: MALLOC_ARENA_MAX of `env`
    (default os.environ) when a positive integer, else 8 x `cpus()` (mallopt(3), M_ARENA_MAX's
    default on 64-bit)."""
    text = str((os.environ if env is None else env).get("MALLOC_ARENA_MAX", "")).strip()
    return int(text) if text.isdigit() and int(text) > 0 else 8 * cpus()


def address_reserve(env=None) -> int:
    """Bytes of address space TensorFlow's process reserves beyond what it touches, for
    `ulimit -v`'s room: AS_BASE + ARENA_BYTES x (`malloc_arenas(env)` - 2), at least AS_BASE
    (2.2 GiB on 2 cores, where 1.96-2.24 GiB was measured; 1.7 GiB on 1 core, where
    1.69-1.84; 1.35 GiB with MALLOC_ARENA_MAX=2, where 1.22-1.34; the rule's slack over
    VmHWM covers the rest)."""
    return AS_BASE + ARENA_BYTES * max(malloc_arenas(env) - 2, 0)


#: This process's `address_reserve` (its cores and MALLOC_ARENA_MAX when imported).
AS_RESERVED = address_reserve()


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
    None: `address_limit()`, `ulimit -v`) less `address_reserve()` (its cores' and
    MALLOC_ARENA_MAX's); None when none can be read (not Linux and no limit). Before,
    `ulimit -v` was not read: a rank under `ulimit -v 3000000` that needed more died of
    std::bad_alloc, an abort no handler sees."""
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
    reserve = address_reserve()
    if address is not None and (best is None or address - reserve < best.limit):
        best = Room(max(int(address - reserve), 0),
                    f"{_ADDRESS_WORDS} {gib(address)} (RLIMIT_AS), less "
                    f"the {gib(reserve)} TensorFlow's process reserves beyond what it "
                    f"uses with {malloc_arenas()} malloc arenas", info.get("MemAvailable"),
                    hard=True, cap=int(address), reserve=int(reserve))
    return best


def process_status(proc=PROC) -> dict[str, int]:
    """This process's VmRSS (resident now), VmHWM (peak resident) and VmPeak (peak address
    space) from `proc`/self/status (proc(5)), in bytes; {} when it cannot be read (not
    Linux)."""
    out = {}
    for line in (_read(os.path.join(proc, "self", "status")) or "").splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if name in ("VmRSS", "VmHWM", "VmPeak") and parts and parts[0].isdigit():
            out[name] = int(parts[0]) * 1024
    return out


class PeakMeter:
    """The peak resident memory of the work inside ``with PeakMeter() as meter:``: on entry
    it reads VmRSS (`held`, bytes) and resets VmHWM to it (writing "5" to /proc/self/clear_refs,
    proc(5), Linux 4.0+); on exit `peak` is VmHWM (bytes: the most resident during the work,
    at least `held`) and `address` VmPeak (the process's peak address space so far: it cannot
    be reset). `peak` stays None where either cannot be done (not Linux, clear_refs not
    writable): an earlier, larger peak must not be taken for this work's. Rank measures each
    module it embeds so (`record`), and later stages' rules take it (`memory.measured_factor`)."""

    def __init__(self, proc=PROC):
        self.proc, self.held, self.peak, self.address = proc, None, None, None

    def __enter__(self) -> "PeakMeter":
        self.held = process_status(self.proc).get("VmRSS")
        try:
            with open(os.path.join(self.proc, "self", "clear_refs"), "w",
                      encoding="ascii") as f:
                f.write("5")
        except OSError:
            self.held = None
        return self

    def __exit__(self, *exc) -> None:
        now = process_status(self.proc)
        if self.held is not None and "VmHWM" in now:
            self.peak, self.address = max(now["VmHWM"], self.held), now.get("VmPeak")

    def record(self, batch_size: int, resolution) -> dict | None:
        """{"batch_size", "pixels" (of one image at `resolution`, (height, width)),
        "held_bytes", "peak_bytes", "address_bytes"}: what rank's row of a module keeps of
        its embedding in batches of `batch_size` images; None when nothing was measured (a
        cache hit is no measurement: the caller passes none then)."""
        if self.peak is None or not resolution:
            return None
        return {"batch_size": int(batch_size),
                "pixels": int(resolution[0]) * int(resolution[1]),
                "held_bytes": int(self.held), "peak_bytes": int(self.peak),
                "address_bytes": int(self.address) if self.address else None}
