"""Cost records without TensorFlow: a candidate's `Cost`, RUN/cost.json, the cache, budgets.

Everything the TensorFlow-free commands (`ensemble`, `report`) need to read, add up and
check inference costs lives here; measuring them (`hubensemble.cost.graph`) and the pass
over a run (`hubensemble.cost.stage`) need TensorFlow and are imported only by the commands
that run it (`cost`, `fit`, `export`, `distill`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import logging
from typing import Iterable, Mapping, Sequence

from hubensemble import fileio
from hubensemble.fileio import json_kind
from hubensemble.errors import RunError
from hubensemble.formats import COST_FILE, versions
from hubensemble.optionrecord import POSITIVE_FINITE, positive_finite
from hubensemble.weightsfile import HEAD_KERNEL, dataset_shape
from hubensemble.text import value_shown
from hubensemble.cost.recordcheck import record_fault

log = logging.getLogger(__name__)

#: RUN/cost.json's format name and version. `read_run_costs` reads every version up to this
#: one and refuses a later one in words (the writer's version named): raise it when a file
#: this version writes cannot be read by the reader of the version before, e.g. a new field
#: it requires. Not raised when a count became nullable (`Cost.macs` None with
#: "macs_not_counted", 16d6996, 2026-12-07): no release before it checked the number (a
#: 0.3.0 of 16d6996~ read such a file as "malformed cost record ... delete it first" with
#: format_version 1 or 2 alike), so a new number would have told no reader anything; every
#: file of format 1 without a null count is read by every release as it was.
COST_FORMAT = "hubensemble-cost"
COST_FORMAT_VERSION = 1
#: Batch sizes latency is measured at (images per call): by `cost` for every candidate, and
#: by `export` for the SavedModel and the TFLite model (one definition, so they compare).
LATENCY_BATCHES = (1, 64)
#: What the numbers mean (recorded in RUN/cost.json, ensemble.json and the export).
DEFINITION = {
    "flops": "2 x the multiply-accumulates of the convolutions (Conv2D, DepthwiseConv2dNative, "
             "Conv3D, transposed) and matrix products (MatMul, BatchMatMul, Einsum) of one "
             "image at the member's serving resolution, counted on its frozen graph at batch "
             "1; element-wise ops (normalisation, activations, the resize) are not counted",
    "params": "every weight of the classifier (module + head)",
    "latency_ms": "median wall time in milliseconds of one call of the compiled classifier on "
                  "a batch of 1 and of 64 images at its serving resolution, on this machine "
                  "(machine-dependent: compare numbers measured on the same machine only)",
    "ensemble": "flops and params are the sums over the distinct members (each runs once per "
                "image, whatever its weight); latency is the sum of the members' latencies "
                "(they run one after another on a CPU), an estimate: the export measures the "
                "whole model; members that share a frozen backbone (probes of one module at "
                "one size, which the export runs once) count it once: after the first, a "
                "member adds its head only (D x C multiply-adds, D x C + C weights, 0 ms), "
                "in the budget of greedy selection, ensemble.json and the export alike",
    "head_macs": "the head's own multiply-accumulates (D x C on the module's D-wide "
                 "embedding): what a member adds whose frozen backbone another runs",
}
#: Bumped when the counting rule changes, so cached counts are not reused and a RUN/cost.json
#: of an older rule is counted again (2: a signature module's captured variables are counted
#: in `params`, 84f88eb, 2026-12-04). RUN/cost.json records it as "count_version".
COUNT_VERSION = 2
#: The budget dimensions of greedy selection and the options that set them.
BUDGET_OPTIONS = {"gflops": "max_gflops", "latency_ms": "max_latency_ms",
                  "members": "max_members"}


@dataclasses.dataclass
class Cost:
    """The inference cost of one candidate (its module with a head) at its serving resolution.

    `module`: the catalogue name; `fingerprint`: the module's content key (None when unknown);
    `size`: the square serving resolution in pixels (the member's evaluation size, what the
    export resizes every image to); `num_classes`: C of the head; `macs`: multiply-accumulates
    per image (int >= 0), or None when they could not be counted (`macs_not_counted` says
    why: e.g. a TensorFlow without the freezing they are counted on, `graph.frozen_graph`;
    the parameters and latency are measured all the same); `params`: the classifier's
    weights (int >= 0); `latency_ms`:
    {"1": ms, "64": ms} medians per call at those batch sizes ({} when not measured);
    `machine`: the id of the machine the latency was measured on (`machine_info`);
    `head_macs`: the head's own multiply-accumulates, D x C on the module's D-wide embedding
    (what a probe adds when another runs its frozen backbone: `cost.sharing.head_cost`;
    None in a cost.json of an older hubensemble, unless `read_run_costs` found it in the
    candidate's weights file).
    """

    module: str
    fingerprint: str | None
    size: int
    num_classes: int
    macs: int | None
    params: int
    latency_ms: dict = dataclasses.field(default_factory=dict)
    machine: str | None = None
    head_macs: int | None = None
    macs_not_counted: str | None = None

    @property
    def flops(self) -> int | None:
        """Floating-point operations per image: 2 x `macs`; None when not counted."""
        return None if self.macs is None else 2 * int(self.macs)

    @property
    def gflops(self) -> float | None:
        """`flops` / 1e9; None when not counted (`macs_not_counted` says why)."""
        return None if self.macs is None else self.flops / 1e9

    def not_counted(self) -> str:
        """Why `macs` is None, in words ("" when they were counted)."""
        if self.macs is not None:
            return ""
        return self.macs_not_counted or "no reason recorded"

    def latency(self, batch: int = 1) -> float | None:
        """The median latency in ms at `batch` images per call, or None when not measured."""
        value = self.latency_ms.get(str(int(batch)))
        return None if value is None else float(value)

    def to_json(self) -> dict:
        """A JSON-ready dict (with the derived "flops" and "gflops"; those three null, and
        "macs_not_counted" the reason, when the multiply-accumulates were not counted)."""
        out = {"module": self.module, "fingerprint": self.fingerprint, "size": int(self.size),
               "num_classes": int(self.num_classes),
               "macs": None if self.macs is None else int(self.macs),
               "flops": self.flops, "gflops": self.gflops, "params": int(self.params),
               "latency_ms": {str(k): float(v) for k, v in self.latency_ms.items()},
               "machine": self.machine, "head_macs": self.head_macs}
        if self.macs is None:  # only then: a counted record (and its digest) stays as it was
            out["macs_not_counted"] = self.not_counted()
        return out

    @classmethod
    def from_json(cls, d: Mapping) -> "Cost":
        """The Cost of a `to_json` dict; ValueError naming the field, what it holds and what
        it must (`recordcheck.record_fault`) when one is malformed. "macs" null is a count
        not made, with "macs_not_counted" its reason or without one (a hand edit: "not
        counted, no reason recorded"), as this version writes it."""
        fault = record_fault(d)
        if fault:
            raise ValueError(f"malformed cost record: {fault}")
        macs = d.get("macs")
        return cls(module=d.get("module") or "", fingerprint=d.get("fingerprint"),
                   size=int(d["size"]), num_classes=int(d["num_classes"]),
                   macs=None if macs is None else int(macs), params=int(d["params"]),
                   latency_ms={str(k): float(v) for k, v in (d.get("latency_ms") or {}).items()},
                   machine=d.get("machine"),
                   head_macs=None if d.get("head_macs") is None else int(d["head_macs"]),
                   macs_not_counted=None if macs is not None else d.get("macs_not_counted"))

    def summary(self) -> dict:
        """What ensemble.json and the export metadata list per candidate: gflops (None, with
        "gflops_not_counted" the reason, when not counted), params and latency_ms at each
        measured batch size."""
        out = {"gflops": self.gflops, "params": int(self.params),
               "latency_ms": dict(self.latency_ms), "size": int(self.size)}
        if self.macs is None:
            out["gflops_not_counted"] = self.not_counted()
        return out


def figure(value, decimals: int = 2, digits: int = 3) -> str:
    """A measured or counted figure (ms, GFLOPs; a float >= 0, or None) as text for a table
    or a line: `decimals` decimals, more when fewer would show under `digits` significant
    digits, never an exponent; "–" for None. 60.82, 5.69, then 0.351 and 0.0149 ms where
    ".2f" printed 0.35 and 0.01 (a TFLite call of tiny modules: read back 33 % low), and
    0.00412 where it printed 0.00. Shown this way, a figure reads back within 0.5 % of the
    one recorded (`digits` 3)."""
    if value is None:
        return "–"
    value = float(value)
    places = int(decimals)
    if math.isfinite(value) and value != 0:
        places = max(places, int(digits) - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{places}f}"


def total_cost(costs: Iterable[Cost]) -> dict:
    """The cost of an ensemble of `costs` (its distinct members): {"members": M, "flops",
    "gflops", "params" (sums), "latency_ms": {batch: sum} for the batch sizes every member
    has (a sequential-run estimate)}; "flops" and "gflops" None, with "gflops_not_counted"
    saying whose and why, when a member's multiply-accumulates were not counted (a sum
    without them would read as the ensemble's). Raises ValueError for no members."""
    costs = list(costs)
    if not costs:
        raise ValueError("an ensemble needs at least one member")
    batches = set.intersection(*(set(c.latency_ms) for c in costs))
    missing = [c for c in costs if c.macs is None]
    flops = None if missing else sum(c.flops for c in costs)
    out = {"members": len(costs), "flops": flops,
           "gflops": None if flops is None else flops / 1e9,
           "params": sum(int(c.params) for c in costs),
           "latency_ms": {b: float(sum(c.latency_ms[b] for c in costs))
                          for b in sorted(batches, key=int)}}
    if missing:
        out["gflops_not_counted"] = not_counted_words(missing, len(costs))
    return out


def not_counted_words(missing: Sequence[Cost], of: int) -> str:
    """"the multiply-accumulates of 1 of its 3 members (module m) were not counted: WHY"
    for the Costs `missing` (macs None) of `of` members, each distinct reason once; "of its
    one member", "of all 2 of its members" (it said "1 of its 1 member")."""
    modules = ", ".join(dict.fromkeys(c.module for c in missing))
    reasons = "; ".join(dict.fromkeys(c.not_counted() for c in missing))
    return (f"the multiply-accumulates of {part_of(len(missing), of, 'member')} ({modules}) "
            f"were not counted: {reasons}")


def part_of(part: int, of: int, noun: str) -> str:
    """"its one member" (1 of 1), "all 2 of its members", "1 of its 3 members": `part` of
    the `of` (>= `part`) NOUNs of a whole, in words (it said "1 of its 1 member")."""
    from hubensemble.text import counted

    if of == 1:
        return f"its one {noun}"
    if part == of:
        return f"all {of} of its {noun}s"
    return f"{part} of its {counted(of, noun)}"


# ---------------------------------------------------------------------------------------------
# Budgets
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Limits:
    """An inference budget of greedy selection: at most `gflops` GFLOPs per image, at most
    `latency_ms` ms per image at batch 1 (the sum of the members' latencies), at most
    `members` distinct members. None = no limit on that dimension. Raises ValueError for a
    limit that is not a number > 0 and finite (`optionrecord.positive_finite`, the options
    table's rule of --max-gflops; members: not an integer >= 1)."""

    gflops: float | None = None
    latency_ms: float | None = None
    members: int | None = None

    def __post_init__(self):
        for name in ("gflops", "latency_ms"):
            value = getattr(self, name)
            if value is not None and not positive_finite(value):
                raise ValueError(f"the {name} limit must be {POSITIVE_FINITE}, got "
                                 f"{value_shown(value)}")
        if self.members is not None and (isinstance(self.members, bool)
                                         or int(self.members) != self.members
                                         or int(self.members) < 1):
            raise ValueError(f"the members limit must be an integer >= 1, got {self.members!r}")

    @property
    def active(self) -> bool:
        """Whether any dimension is limited."""
        return any(v is not None for v in (self.gflops, self.latency_ms, self.members))

    @property
    def needs_costs(self) -> tuple[str, ...]:
        """The measured dimensions the limits need ("gflops", "latency_ms")."""
        return tuple(n for n in ("gflops", "latency_ms") if getattr(self, n) is not None)

    def fits(self, cost: Mapping) -> bool:
        """Whether a total {"gflops", "latency_ms", "members"} (numbers) is within every
        limit (a tiny relative slack absorbs float rounding of sums); a limited figure that
        is None (not counted) never fits."""
        for name in ("gflops", "latency_ms", "members"):
            limit = getattr(self, name)
            if limit is not None and (cost[name] is None or cost[name] > limit * (1 + 1e-9)):
                return False
        return True

    def flags(self) -> str:
        """The limits in the caller's words (`lockwords.on_command_line`): command-line
        flags, "--max-gflops 0.05 --max-members 3", or from Python keywords,
        "max_gflops=0.05, max_members=3"."""
        from hubensemble.lockwords import on_command_line

        cli = on_command_line()
        parts = [f"--{option.replace('_', '-')} {getattr(self, name):g}" if cli
                 else f"{option}={getattr(self, name):g}"
                 for name, option in BUDGET_OPTIONS.items() if getattr(self, name) is not None]
        return (" " if cli else ", ").join(parts)

    def to_json(self) -> dict:
        """{"max_gflops", "max_latency_ms", "max_members"} (None where unlimited)."""
        return {option: getattr(self, name) for name, option in BUDGET_OPTIONS.items()}


# ---------------------------------------------------------------------------------------------
# The machine
# ---------------------------------------------------------------------------------------------

def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """What latency depends on: {"id" (12 hex digits of the rest), "host", "cpu", "cores",
    "tensorflow", "note"}; no TensorFlow import (versions from package metadata)."""
    info = {"host": platform.node(), "cpu": _cpu_model(), "cores": os.cpu_count(),
            "tensorflow": versions().get("tensorflow")}
    digest = hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()[:12]
    return {"id": digest, **info,
            "note": "latency is machine-dependent: measured on this machine, which may be "
                    "shared with other work"}


# ---------------------------------------------------------------------------------------------
# RUN/cost.json
# ---------------------------------------------------------------------------------------------

def cost_path(run_dir) -> str:
    """RUN/cost.json, absolute (`text.absolute`): every message that names it named it as
    the run was given ("rc/cost.json") beside the absolute paths of the same lines."""
    from hubensemble.text import absolute

    return absolute(os.path.join(os.fspath(run_dir), COST_FILE))


def cost_command(run_dir) -> str:
    """The command that computes a run's costs, in the caller's words
    (`lockwords.command_words`: `run_cost(run_dir=…)` from Python)."""
    from hubensemble.lockwords import command_words

    return command_words("cost", run_dir)


@dataclasses.dataclass
class RunCosts:
    """RUN/cost.json as read: `costs` {trial: Cost}; `machine` the machine record (latency
    was measured there); `failed` {trial: why its module could not be costed}; `stale`
    {trial: why its recorded cost is not of the trial RUN/candidates holds now (redone at
    another serving size or with other module files since: `_stale_cost`)}, which are not
    in `costs`. Empty when the file does not exist."""

    costs: dict = dataclasses.field(default_factory=dict)
    machine: dict = dataclasses.field(default_factory=dict)
    failed: dict = dataclasses.field(default_factory=dict)
    count_version: int | None = COUNT_VERSION
    stale: dict = dataclasses.field(default_factory=dict)

    def outdated(self) -> str | None:
        """Why these counts are not this version's counting rule's (COUNT_VERSION), or are
        missing multiply-accumulates another TensorFlow than theirs may count
        (`_uncounted_elsewhere`), in words; None when neither (or there are none). A file
        without "count_version" was written before RUN/cost.json named its rule, by rule 1 or
        2: counted again too."""
        if not (self.costs or self.failed):
            return None
        if self.count_version == COUNT_VERSION:
            return self._uncounted_elsewhere()
        rule = (f"counting rule {self.count_version}" if self.count_version is not None else
                "no counting rule (written before cost files named theirs, maybe by rule 1)")
        # A version a user can check (`hubensemble --version`), not the commit that changed it.
        return (f"its counts are of {rule}, this version's is rule {COUNT_VERSION} (a "
                "signature module's own variables count in params, as from hubensemble 0.2.0)")

    def _uncounted_elsewhere(self) -> str | None:
        """Why costs whose multiply-accumulates were not counted (`Cost.macs_not_counted`)
        may be counted now: the TensorFlow installed (package metadata, no import) is not
        the one they were measured under (the machine record's); None otherwise. The cost
        stage counts them again then; the same TensorFlow would fail the same way."""
        missing = sorted(t for t, c in self.costs.items() if c.macs is None)
        recorded, now = self.machine.get("tensorflow"), versions().get("tensorflow")
        if not missing or recorded == now:
            return None
        whose = part_of(len(missing), len(self.costs), "candidate")
        return (f"the multiply-accumulates of {whose} "
                f"({', '.join(missing[:3])}{', …' if len(missing) > 3 else ''}) were not "
                f"counted under TensorFlow {recorded or 'unknown'}, and this is TensorFlow "
                f"{now or 'not installed'}, which may count them")


def read_run_costs(run_dir, *, say_outdated: bool = True) -> RunCosts:
    """RUN/cost.json as a RunCosts (empty when it does not exist). Raises RunError naming the
    command that rewrites it when it is unreadable or of another format; counts of an older
    counting rule (`RunCosts.outdated`) are returned with a warning naming that command, once
    per file and process unless not `say_outdated` (`run_cost`, and `fit`'s cost stage,
    count them again). A head size the file lacks (an older hubensemble's) is taken from the
    candidate's weights file when it has one (`Cost.head_macs`). A cost of a trial tuned
    again since at another serving size (trial.json "eval_size") or with other module files
    is not returned as its cost (`RunCosts.stale` says why): the ensemble's budget, the
    report and distill took the old trial's GFLOPs for the new one."""
    path = cost_path(run_dir)
    if not os.path.exists(path):
        return RunCosts()
    try:
        data = fileio.read_json(path)
    except (OSError, ValueError) as e:
        raise CostFileDamaged(run_dir, f"{path} is unreadable ({e})")
    if not isinstance(data, dict) or data.get("format") != COST_FORMAT:
        raise CostFileDamaged(run_dir, f"{path} is not a cost file written by hubensemble")
    _check_format_version(run_dir, path, data)
    # Valid JSON of another shape (a hand edit, another tool's file) is damage too: every
    # reader (ensemble, cost, export, distill, report) stops on this line, not a traceback.
    # Every version writes all three; "candidates" missing or null was read as none costed
    # (a budget then said "run cost" of a file cost wrote), the others as empty.
    faults = [f"its {key!r} is {'missing' if key not in data else json_kind(data[key])}, "
              "expected an object" for key in ("candidates", "failed", "machine")
              if (key == "candidates" or data.get(key) is not None)
              and not isinstance(data.get(key), dict)]
    if faults:
        raise CostFileDamaged(run_dir, f"{path} is damaged: {', and '.join(faults)}")
    out = {}
    for trial, record in data["candidates"].items():
        try:
            out[str(trial)] = Cost.from_json(record)
        except ValueError as e:
            raise CostFileDamaged(run_dir, f"{path}: candidate {trial}: {e}")
    failed = {str(t): str(r) for t, r in (data.get("failed") or {}).items()}
    out, stale = _checked_against_trials(run_dir, out)
    rule = data.get("count_version")
    recorded = RunCosts(costs=out, machine=dict(data.get("machine") or {}), failed=failed,
                        count_version=rule if isinstance(rule, int) else None, stale=stale)
    if say_outdated and (why := recorded.outdated()) and path not in _SAID_OUTDATED:
        _SAID_OUTDATED.add(path)  # once per file and process: every stage reads it
        log.warning("%s: %s; %s counts them again", path, why, cost_command(run_dir))
    return recorded


class CostFileDamaged(RunError):
    """RUN/cost.json cannot be read: damaged (`what` names the field and what it holds) or of
    a newer format (`newer_format`, its number). The message adds the way on: `cost` on the
    run moves it aside (`recordcheck.set_aside`, which it names) and writes it again."""

    def __init__(self, run_dir, what: str, newer_format: int | None = None):
        self.what, self.newer_format = what, newer_format
        kept = (f"cost.json.format-{newer_format}-<time>, for the newer hubensemble"
                if newer_format else
                "cost.json.damaged-<time>")
        way = f"{cost_command(run_dir)} writes it again (it moves this one aside to {kept})"
        super().__init__(f"{what}; {way}" if newer_format is None else
                         f"{what}: upgrade hubensemble to read it, or {way}")


def _check_format_version(run_dir, path: str, data: dict) -> None:
    """Raises CostFileDamaged when RUN/cost.json's "format_version" is one this version
    cannot read: later than COST_FORMAT_VERSION (a newer hubensemble's, named by its
    "written_by"), or no whole number >= 1 or a later one "written_by" this version (damage:
    an edit). A file without one is of format 1 (none was ever written without it; a
    hand-written file may lack it)."""
    version = data.get("format_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CostFileDamaged(run_dir, f"{path} is damaged: its 'format_version' is "
                              f"{value_shown(version)}, expected a whole number >= 1")
    writer, ours = data.get("written_by"), versions()["hubensemble"]
    if version > COST_FORMAT_VERSION and writer == ours:  # an edit: this version wrote it
        raise CostFileDamaged(run_dir, f"{path} is damaged: its 'format_version' is "
                              f"{version}, and hubensemble {ours}, which wrote it, writes "
                              f"format {COST_FORMAT_VERSION}")
    if version > COST_FORMAT_VERSION:
        raise CostFileDamaged(run_dir, f"{path} is of cost file format {version}, written by "
                              + (f"hubensemble {writer}" if isinstance(writer, str) and writer
                                 else "a newer hubensemble")
                              + f"; this hubensemble ({ours}) reads format "
                              f"{COST_FORMAT_VERSION} and older", newer_format=version)


def head_macs_in(weights_path, num_classes: int) -> int | None:
    """D x C, the head's multiply-accumulates, from the shape of its kernel in a candidate's
    weights file (`weightsfile.HEAD_KERNEL`: its shape only, no TensorFlow); None when
    the file is None, missing or unreadable, or its kernel is not [D, `num_classes`]. A
    RUN/cost.json of an older hubensemble has no head sizes: `read_run_costs` takes them
    from here."""
    shape = dataset_shape(weights_path, HEAD_KERNEL) or ()
    if len(shape) != 2 or shape[1] != int(num_classes) or shape[0] < 1:
        return None
    return int(shape[0]) * int(shape[1])


def _checked_against_trials(run_dir, costs: dict) -> tuple[dict, dict]:
    """(`costs` without those `_stale_cost` finds of another trial than RUN/candidates holds
    now, each head size a file of an older hubensemble lacks (`Cost.head_macs`, added without
    a new counting rule: the counts are the same) taken from the candidate's weights file
    (`head_macs_in`; a candidate without one keeps None); {trial: why} of those left out).
    A candidate folder without a readable trial.json keeps its cost: the readers say so
    where it matters."""
    from hubensemble import candidate
    from hubensemble.formats import CANDIDATES_DIR

    out, stale = dict(costs), {}
    for trial, cost in costs.items():
        folder = os.path.join(os.fspath(run_dir), CANDIDATES_DIR, trial)
        try:
            record = fileio.read_json(os.path.join(folder, candidate.TRIAL_FILE))
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict):
            continue
        why = _stale_cost(cost, record)
        if why:
            stale[trial] = why
            del out[trial]
            continue
        if cost.head_macs is not None:
            continue
        name = record.get("weights")
        macs = head_macs_in(os.path.join(folder, name), cost.num_classes) \
            if isinstance(name, str) and name else None
        if macs is not None:
            out[trial] = dataclasses.replace(cost, head_macs=macs)
    return out, stale


def _stale_cost(cost: Cost, record: dict) -> str | None:
    """Why `cost` (RUN/cost.json's record of a trial) is not the cost of the trial whose
    trial.json is `record` now, or None: the trial serves at another size ("eval_size": it
    was redone under another profile or on other data since cost ran, and the ensemble's
    budget took the old size's GFLOPs), or its module's files are others ("module_fingerprint"
    beside the cost's `fingerprint`). A record without them (an older tune's) is not
    checked."""
    size = record.get("eval_size")
    if isinstance(size, int) and not isinstance(size, bool) and size != cost.size:
        return (f"its cost is of the trial at {cost.size} px, and the trial now serves at "
                f"{size} px (tuned again since cost ran)")
    print_ = record.get("module_fingerprint")
    if isinstance(print_, str) and print_ and cost.fingerprint and print_ != cost.fingerprint:
        return ("its cost is of other files of module "
                f"{cost.module} (fingerprint {cost.fingerprint[:12]}, the trial's "
                f"{print_[:12]}: tuned again since cost ran)")
    return None


def figures_digest(run_dir) -> str | None:
    """sha256 (hex) of RUN/cost.json's figures as every reader takes them (`read_run_costs`:
    each candidate's `Cost`, a head size an older file lacks taken from its weights file,
    the machine record and the modules not costed), without the counting rule's labels
    ("count_version", "written_by"), which no stage after `cost` copies; None when the file
    is missing, unreadable or damaged. A recount under a newer rule that gives the same
    figures has the same digest, so fit keeps the ensemble, export and evaluation made from
    them (pipeline._run_stages: they were redone, minutes on a real ensemble)."""
    if not os.path.exists(cost_path(run_dir)):
        return None
    try:
        recorded = read_run_costs(run_dir, say_outdated=False)
    except RunError:
        return None
    figures = {"costs": {t: c.to_json() for t, c in recorded.costs.items()},
               "machine": recorded.machine, "failed": recorded.failed}
    return hashlib.sha256(json.dumps(figures, sort_keys=True).encode()).hexdigest()


#: The RUN/cost.json files whose older counting rule `read_run_costs` has warned of.
_SAID_OUTDATED: set = set()


def write_run_costs(run_dir, costs: Mapping[str, Cost], machine: Mapping,
                    failed: Mapping[str, str] | None = None) -> str:
    """Writes RUN/cost.json atomically ({trial: Cost}, the machine record and {trial: why it
    could not be costed}, with its counting rule "count_version" and "written_by", the
    hubensemble version); returns its path. Trials are written in the order given."""
    path = cost_path(run_dir)
    fileio.atomic_write_json(path, {
        "format": COST_FORMAT, "format_version": COST_FORMAT_VERSION,
        "count_version": COUNT_VERSION, "written_by": versions()["hubensemble"],
        "definition": DEFINITION, "machine": dict(machine),
        "candidates": {t: c.to_json() for t, c in costs.items()},
        "failed": dict(failed or {})})
    return path


def add_run_costs(run_dir, costs: Mapping[str, Cost], machine: Mapping) -> str | None:
    """Adds `costs` ({trial: Cost} of candidates of RUN/candidates counted outside the cost
    pass: `export` counts a member that RUN/cost.json lacks) to RUN/cost.json, as `run_cost`
    would record them (a trial listed as not costed is costed now; the others' records
    kept; trials in natural order), written atomically (`write_run_costs`); returns its path.
    The caller holds the run's lock (every stage that writes the file does). None, and
    nothing written, when the file's counts are of an older counting rule
    (`RunCosts.outdated`: `cost` counts every candidate again) or its latencies were measured
    on another machine than `machine` (the record its costs were measured under), as a
    file of one machine's latencies compares them. An export's cost of a member and a
    later `cost`'s then differed: the export's was in its metadata alone. Raises RunError as
    `read_run_costs` for a damaged file."""
    from hubensemble.candidate import natural_key

    recorded = read_run_costs(run_dir, say_outdated=False)
    if not costs or recorded.outdated() or (
            recorded.machine and recorded.machine.get("id") != machine.get("id")):
        return None
    merged = {**recorded.costs, **costs}
    failed = {t: why for t, why in recorded.failed.items() if t not in costs}
    return write_run_costs(run_dir, {t: merged[t] for t in sorted(merged, key=natural_key)},
                           recorded.machine or machine, failed)


# ---------------------------------------------------------------------------------------------
# The cache (outside runs, keyed by module content + resolution + classes)
# ---------------------------------------------------------------------------------------------

def default_cache_dir() -> str:
    """$HUBENSEMBLE_COST_CACHE, else $XDG_CACHE_HOME/hubensemble/cost (~/.cache/…), `~`
    expanded (environment.path_from_environment)."""
    return cache_folder(None).path


def cache_folder(cache_dir=None):
    """The cost cache's environment.CacheFolder: `cache_dir` when given, else
    default_cache_dir's, with what named it (for the warning when it cannot be written)."""
    from hubensemble import environment

    return environment.cache_folder(cache_dir, what="cost cache",
                                    variable="HUBENSEMBLE_COST_CACHE",
                                    default=("hubensemble", "cost"))


def cache_key(fingerprint: str, size: int, num_classes: int, *, input_size=None,
              output_key=None, count: int = COUNT_VERSION) -> str:
    """sha256 (64 hex digits) of what determines a count: the module's content fingerprint,
    the serving resolution, the module's own input size and output key (catalogue entry),
    the head's classes and the counting rule's version (`count`, 1..COUNT_VERSION: an older
    rule's key finds that rule's entry, whose latencies `module_cost` still takes)."""
    what = {"module": fingerprint, "size": int(size), "classes": int(num_classes),
            "input_size": list(input_size) if input_size else None, "output_key": output_key,
            "count": int(count)}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


def _cache_file(cache_dir, key) -> str:
    return os.path.join(os.fspath(cache_dir), key[:2], key + ".json")


def cache_get(cache_dir, key) -> dict | None:
    """The cached entry {"macs", "params", "head_macs" (when known), "latency": {machine id:
    {batch: ms}}, "written_by": the hubensemble version (since 0.2.0)} of `key`, or
    None (absent or unreadable: it is then computed again). A damaged entry (valid JSON of
    another shape: a count that is no whole number >= 0) is unreadable too, and a machine's
    latency that is not a finite ms >= 0 at each of LATENCY_BATCHES is left out (measured
    again): each was a traceback (ValueError, AttributeError, TypeError, OverflowError) in
    `cost` and fit's cost stage, as a damaged cost.json was in every reader."""
    try:
        entry = fileio.read_json(_cache_file(cache_dir, key))
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or not all(
            _is_count(entry.get(f)) for f in ("macs", "params")) or (
            "head_macs" in entry and not _is_count(entry["head_macs"])):
        return None
    latency = entry.get("latency")
    kept = {str(m): {str(b): float(ms[str(b)]) for b in LATENCY_BATCHES}
            for m, ms in (latency.items() if isinstance(latency, dict) else ())
            if isinstance(ms, dict) and all(_is_ms(ms.get(str(b))) for b in LATENCY_BATCHES)}
    return {**entry, "latency": kept}


def _is_count(value) -> bool:
    """Whether `value` (from JSON) is a whole number >= 0 (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_ms(value) -> bool:
    """Whether `value` (from JSON) is a finite number of milliseconds >= 0 (not a bool)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value >= 0)


def cache_put(cache_dir, key, *, macs: int, params: int, machine: str | None = None,
              latency_ms: Mapping | None = None, head_macs: int | None = None) -> None:
    """Stores a count (with the head's own `head_macs` when given, and a machine's latency)
    under `key`, keeping other machines' latencies; atomic, under a lock, so concurrent
    writers lose nothing."""
    path = _cache_file(cache_dir, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with fileio.file_lock(path + ".lock"):
        entry = cache_get(cache_dir, key) or {}
        entry.update(macs=int(macs), params=int(params),
                     written_by=versions()["hubensemble"])
        if head_macs is not None:
            entry["head_macs"] = int(head_macs)
        latency = dict(entry.get("latency") or {})
        if machine and latency_ms:
            latency[machine] = {str(k): float(v) for k, v in latency_ms.items()}
        entry["latency"] = latency
        fileio.atomic_write_json(path, entry)
