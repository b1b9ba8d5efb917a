"""The cost pass: the `Cost` of every usable candidate of a run, cached, in RUN/cost.json."""

from __future__ import annotations

import dataclasses
import logging
import os
import time

import numpy as np

from hubensemble import candidate
from hubensemble.cost.records import (COUNT_VERSION, LATENCY_BATCHES, Cost, CostFileDamaged,
                                      RunCosts, cache_folder, cache_get, cache_key, cache_put,
                                      cost_command, cost_path, figure, machine_info,
                                      read_run_costs, write_run_costs)
from hubensemble.cost.recordcheck import set_aside
from hubensemble.environment import cache_unwritable
from hubensemble.errors import HubensembleError, RunError, first_line, reraise_stop
from hubensemble.formats import CANDIDATES_DIR
from hubensemble.runspecs import catalogue_entries, module_spec
from hubensemble.cost.entries import check_modules  # noqa: F401 (its home before)
from hubensemble.runwriter import writes_run
from hubensemble.sweepstate import unfinished_warning
from hubensemble.lockwords import run_words
from hubensemble.text import absolute, counted, escaped
from hubensemble.kerasenv import with_stage_settings

log = logging.getLogger(__name__)


@dataclasses.dataclass
class CostSummary:
    """What `run_cost` did: `path` of RUN/cost.json (absolute); `costs` {trial: Cost} of every
    usable candidate that could be costed; `counted` / `cached`: distinct (module, size,
    classes) computed now / read from the cache; `failed`: [{"module", "size", "trials",
    "reason"}] of modules that could not be costed at "size" px (their candidates have no cost);
    `machine`: the machine record; `seconds`: wall time of the stage's work, from its start as
    run.json's "stages" records it (`Run.work_started`) to cost.json written, without the report
    written again after it (the summary said 2.0 s where run.json and the report said 0.9 s);
    `skipped`: [(trial, reason)] of the candidate folders that are not usable
    (`candidate.load_pool`: a damaged trial.json, probabilities of another shape), not costed; a
    trial whose record says it failed is not listed."""

    path: str
    costs: dict
    counted: int
    cached: int
    failed: list
    machine: dict
    seconds: float
    skipped: list = dataclasses.field(default_factory=list)
    kept: list = dataclasses.field(default_factory=list)

    @property
    def none_costed(self) -> bool:
        """Whether no candidate could be costed: every module failed (`failed` not empty,
        `costs` empty) and no candidate keeps an earlier pass's cost (`kept`). `format_costs`
        then says so and the way on (`none_costed_words`); fit's and distill's cost stage
        warn in those words and go on; `hubensemble cost` exits 1."""
        return bool(self.failed) and not self.costs and not self.kept


def module_cost(spec, num_classes: int, size: int, *, fingerprint: str | None = None,
                cache_dir=None, machine: dict | None = None, latency: bool = True,
                use_cache: bool = True) -> tuple[Cost, bool]:
    """(Cost, whether it came from the cache) of `spec`'s module with a `num_classes` head at
    serving resolution `size` (square, pixels).

    The count (multiply-accumulates of the frozen graph at batch 1, parameters, and the
    head's own D x C multiply-adds, `Cost.head_macs`: an entry of an older hubensemble without
    them loads the module for them) is cached by
    the module's content fingerprint with its layer and signature, resolution, input size,
    output key and classes (a written-out default layer, signature or output key keyed as
    left out: `hub.locate.default_call`); the
    latency (`graph.measure_latency` at LATENCY_BATCHES) additionally by machine, so it is
    measured again on another machine. The classifier is `tune.build_classifier` (weights do
    not change the cost, so the pre-trained module with a fresh head is counted). A cache
    that cannot be written (any OSError: read-only, a file in the way, a full disk) is said
    once (`environment.cache_unwritable`, naming HUBENSEMBLE_COST_CACHE) and the cost is
    returned all the same. Multiply-accumulates that cannot be counted (graph.CostError: a
    TensorFlow without its freezing, a shape unknown at batch 1) leave `Cost.macs` None with
    the reason (`Cost.macs_not_counted`), the parameters and latency measured all the same;
    such a cost is not cached (counted again next time: another TensorFlow may count it).
    Raises ModuleLoadError when the module cannot load.
    """
    from hubensemble import tune
    from hubensemble.cost import graph

    machine = machine or machine_info()
    folder = cache_folder(cache_dir)
    cache_dir = folder.path
    model = None
    module_key, output_key = fingerprint, spec.output_key
    calls = []  # (fingerprint, output key) of the same call as keyed before (`_as_written`)
    if fingerprint is None or any(getattr(spec, f, None) is not None
                                  for f in ("layer", "signature", "output_key")):
        # The entry's own call (its layer and signature: another layer is another count),
        # keyed with each written-out default left out (`default_call`), as the embedding
        # cache keys it: `signature: serving_default` and none share one entry.
        from hubensemble.hub.locate import default_call, locate_spec

        files = locate_spec(spec)
        fingerprint = fingerprint or files.fingerprint
        module_key, output_key = default_call(files, spec.output_key)
        if (fingerprint, spec.output_key) != (module_key, output_key):
            calls.append((fingerprint, spec.output_key))
    calls.insert(0, (module_key, output_key))
    key = cache_key(module_key, size, num_classes, input_size=spec.input_size,
                    output_key=output_key)
    entry = _as_written(cache_dir, calls, size, num_classes, spec.input_size, COUNT_VERSION,
                        machine["id"]) if use_cache else None
    if use_cache and latency and not (entry or {}).get("latency", {}).get(machine["id"]):
        # A latency is a measurement, not a count: an older counting rule's entry of the same
        # module, size and classes on this machine holds a valid one (re-timing it changed
        # RUN/cost.json, and fit then redid the ensemble, export and evaluation).
        entry = _with_older_latency(entry, cache_dir, machine["id"], calls, size,
                                    num_classes, spec.input_size)
    have_latency = entry is not None and machine["id"] in (entry.get("latency") or {})
    # An entry of an older hubensemble has no head size: the module is loaded for it.
    if entry is not None and (have_latency or not latency) and "head_macs" in entry:
        lat = (entry.get("latency") or {}).get(machine["id"], {}) if latency else {}
        return Cost(module=spec.name, fingerprint=fingerprint, size=int(size),
                    num_classes=int(num_classes), macs=int(entry["macs"]),
                    params=int(entry["params"]), latency_ms=dict(lat),
                    machine=machine["id"] if lat else None,
                    head_macs=int(entry["head_macs"])), True
    model = tune.build_classifier(spec, int(num_classes), name="cost_probe")
    # The head on the D-wide embedding: D x C multiply-adds (cost.sharing.head_cost).
    head_macs = int(np.prod(model.head.kernel.shape))
    why = None
    if entry is None or "macs" not in entry:  # none, or an older rule's latency alone
        try:
            macs, _ = graph.count_macs(graph.image_function(model, size))
        except graph.CostError as e:  # only MACs need the frozen graph: the rest is measured
            macs, why = None, first_line(e)
        params = graph.count_params(model)
    else:
        macs, params = int(entry["macs"]), int(entry["params"])
    lat = {}
    if latency:
        lat = ((entry.get("latency") or {}).get(machine["id"]) if have_latency else None) or \
            graph.measure_latency(model, size, LATENCY_BATCHES)
    if use_cache and macs is not None:
        try:
            cache_put(cache_dir, key, macs=macs, params=params, machine=machine["id"],
                      latency_ms=lat, head_macs=head_macs)
        except TimeoutError:  # another process holds the entry: not the cache's fault
            raise
        except OSError as e:  # a cache only costs speed: the count and latency stand
            cache_unwritable(folder, e, "the costs are measured and the command goes on")
    return Cost(module=spec.name, fingerprint=fingerprint, size=int(size),
                num_classes=int(num_classes), macs=None if macs is None else int(macs),
                params=int(params), latency_ms=dict(lat),
                machine=machine["id"] if lat else None, head_macs=head_macs,
                macs_not_counted=why), False


def _as_written(cache_dir, calls, size, num_classes, input_size, count, machine_id):
    """The cache entry of counting rule `count` of the first of `calls` ((fingerprint, output
    key) pairs of one call: as keyed now, then as hubensemble before 5adff17 keyed an entry
    that wrote out a default, `signature: serving_default`, a Keras file's default `layer:`
    or a SavedModel's only `output_key`, with the fields as written) that has one, its
    latencies completed from the others' (an entry keyed now without this machine's, an
    older one with it); None when none has one. Before, an older version's entry of such a
    call was missed: the module was counted and timed again."""
    found = None
    for module_key, output_key in calls:
        entry = cache_get(cache_dir, cache_key(module_key, size, num_classes,
                                               input_size=input_size, output_key=output_key,
                                               count=count))
        if entry is None:
            continue
        if found is None:
            found = dict(entry)
        elif machine_id not in (found.get("latency") or {}) and (
                (entry.get("latency") or {}).get(machine_id)):
            found["latency"] = {**(found.get("latency") or {}),
                                machine_id: entry["latency"][machine_id]}
        if "head_macs" not in found and "head_macs" in entry:
            found["head_macs"] = entry["head_macs"]
    return found


def _with_older_latency(entry, cache_dir, machine_id, calls, size, num_classes, input_size):
    """`entry` (the cache entry of this counting rule, or None) with this machine's latency
    taken from the newest older rule's entry that has one (of any of `calls`, the call's
    keys: `_as_written`); `entry` as given when none has.
    The counts stay this rule's: an entry that is None gets only {"latency"} (no "macs", so
    the module is still counted)."""
    for count in range(COUNT_VERSION - 1, 0, -1):
        older = _as_written(cache_dir, calls, size, num_classes, input_size, count,
                            machine_id)
        lat = ((older or {}).get("latency") or {}).get(machine_id)
        if lat:
            found = dict(entry or {})
            found["latency"] = {**(found.get("latency") or {}), machine_id: lat}
            return found
    return entry


@writes_run("cost")
@with_stage_settings
def run_cost(run_dir, *, task=None, cache_dir=None, use_cache: bool = True,
             latency: bool = True, progress: bool = True) -> CostSummary:
    """Costs every usable candidate of RUN/candidates and writes RUN/cost.json.

    Candidates are read through `hubensemble.candidate.load_pool` (the ensemble's pool);
    each distinct (module, serving size, classes) is costed once by `module_cost` (cached
    outside the run). The serving size is trial.json's "eval_size" (else recomputed from
    the task and profile); the module's catalogue entry comes from run.json. A module that
    cannot be loaded or counted is logged and listed in `failed`; its candidates get no cost
    (a budget then refuses to select them, by name). Returns a CostSummary. A RUN/cost.json
    it cannot read (damaged, or a newer format: the readers name this command as the way on)
    is moved aside, said in a warning, and written again (`_recorded_or_set_aside`).

    Reads no data (a cost depends on the module, the size and the classes, not on images),
    so it does not check the run's data as tune and export do; only a candidate without
    "eval_size" (an older tune's) loads the task, through `Run.task` and its data check.

    Raises RunError when the run has no usable candidate or run.json lacks a candidate's
    catalogue entry, or the data such a candidate needs changed since the run started;
    TypeError for a `run_dir`, `cache_dir` or `task` of another type and OptionError for an
    empty folder path (`stageargs`).
    """
    from hubensemble import stageargs
    from hubensemble.catalogue import ModuleSpec
    from hubensemble.ensemble import load_candidates, with_way_on
    from hubensemble.rundir import Run

    run_dir = stageargs.folder("run_cost", "run_dir", run_dir)
    cache_dir = stageargs.folder("run_cost", "cache_dir", cache_dir, optional=True)
    stageargs.task("run_cost", task, optional=True)
    run = Run(run_dir)
    start = run.work_started() or time.time()  # run.json's stage time starts here too
    run.require_started()  # an empty or mistyped folder: say so, not "run tune"
    cands, skipped = load_candidates(run.path)
    candidate.require_pool(os.path.join(run.path, CANDIDATES_DIR), run.path, cands, skipped)
    folder = os.path.join(run.path, CANDIDATES_DIR)
    # A damaged candidate was left out without a word (the ensemble names it); a trial that
    # failed (its status recorded: tune said it) has nothing to cost and is not said again.
    # Inside fit the ensemble stage, next, names each with its way on (`left_out_words`):
    # cost's warning said the same candidate a second time on the terminal.
    skipped = with_way_on(run.path, [
        (t, r) for t, r in skipped
        if getattr(candidate.read_candidate(folder, t), "status", "ok") == "ok"],
        then="this cost again")
    if skipped and not run.fit_here():  # inside fit, the ensemble's line says them once
        log.warning("cost: %s", skipped_words(folder, skipped))
    elif skipped:  # RUN/log.txt keeps cost's own words of them
        log.info("cost: %s", skipped_words(folder, skipped))
    unfinished = unfinished_warning(run.path, what="this cost table")
    if unfinished:  # the pool an interrupted sweep left: its other candidates get no cost
        log.warning("%s", unfinished)
    specs = catalogue_entries(run)  # run.json's one reader: a hand edit named (runspecs)
    # A damaged cost.json: said before minutes of work. Counts of an older counting rule are
    # counted again here, so the warning that tells a user to run this is not said (it was,
    # in the middle of the recount, by this command and by fit's cost stage), nor are they
    # kept for candidates outside the pool.
    recorded = _recorded_or_set_aside(run.path)
    if recorded.outdated():
        log.info("%s: %s; counting them again", cost_path(run.path), recorded.outdated())
    old = {} if recorded.outdated() else recorded.costs
    machine = machine_info()
    groups: dict[tuple, list[candidate.Candidate]] = {}
    parsed: dict[str, ModuleSpec] = {}
    for c in cands:
        if c.module not in parsed:  # missing or damaged: said before any module is costed
            parsed[c.module] = module_spec(run, c.module, c.trial, modules=specs)
        size = c.record.get("eval_size")
        if not size:
            size = _eval_size(run, parsed[c.module], c, task)
        groups.setdefault((c.module, int(size), int(c.val_probs.shape[1])), []).append(c)

    bar = None
    if progress:
        from hubensemble.terminal import progress_bar

        bar = progress_bar(total=len(groups), desc="cost", unit="module")
    costs, failed, counted, cached = {}, [], 0, 0
    try:
        for (module, size, classes), members in groups.items():
            spec = parsed[module]
            fingerprint = next((c.record.get("module_fingerprint") for c in members
                                if c.record.get("module_fingerprint")), None)
            try:
                cost, hit = module_cost(spec, classes, size, fingerprint=fingerprint,
                                        cache_dir=cache_dir, machine=machine,
                                        latency=latency, use_cache=use_cache)
            except HubensembleError as e:  # ModuleLoadError, graph.CostError
                reraise_stop(e)  # a Ctrl-C / SIGTERM that came out as this error
                reason = first_line(e)
                log.warning("cost: module %s (%d px) cannot be costed: %s", module, size,
                            reason)
                failed.append({"module": module, "size": size,
                               "trials": [c.trial for c in members], "reason": reason})
                continue
            finally:
                if bar is not None:
                    bar.update(1)
            cached += hit
            counted += not hit
            if cost.macs is None:  # costed, but its GFLOPs are unknown: said, not hidden
                log.warning("cost: module %s (%d px): its multiply-accumulates are not "
                            "counted (%s); its parameters and latency are", module, size,
                            cost.not_counted())
            for c in members:
                costs[c.trial] = cost
    finally:
        if bar is not None:
            bar.close()
    # Keep the costs of candidates costed before on this run that are not in the pool now
    # (e.g. a run whose candidates were trimmed), unless they were costed again.
    merged = {t: c for t, c in old.items() if t not in costs}
    merged.update(costs)
    order = sorted(merged, key=candidate.natural_key)
    why = {t: f["reason"] for f in failed for t in f["trials"] if t not in merged}
    # A candidate whose module fails now keeps the cost an earlier pass counted for the same
    # trial (a cost of other module files is left out by read_run_costs' stale rule): said
    # as kept, not as "no candidate could be costed" over a cost.json holding its cost.
    kept = sorted((t for f in failed for t in f["trials"] if t in merged),
                  key=candidate.natural_key)
    path = write_run_costs(run.path, {t: merged[t] for t in order}, machine, why)
    from hubensemble.refresh import refresh_report

    seconds = time.time() - start  # the stage's work, as run.json's, not the report's after
    refresh_report(run.path, "the costs")
    summary = CostSummary(path=absolute(path), costs=costs, counted=counted, cached=cached,
                          failed=failed, machine=machine, seconds=seconds,
                          skipped=list(skipped), kept=kept)
    if summary.none_costed and _held_by(run) != "cost":
        # fit's (or distill's) cost stage, whose summary is not printed: it goes on without
        # costs, as a run without a budget needs none (fit's budget was checked before its
        # sweep; the ensemble refuses a budget without costs, naming cost).
        # Each module's reason was its own warning above: named once, not again here.
        words = none_costed_words(summary, run.path)
        log.warning("%s", escaped(f"{words[0].rstrip(':')} (each said above); {words[-1]}"))
    return summary


def _held_by(run) -> str | None:
    """The command this thread holds run `run`'s lock for ("cost" when cost runs on its own,
    from the command line or Python; "fit", "distill" when cost is their stage), or None."""
    from hubensemble import formats
    from hubensemble.fileio import owned_here

    return (owned_here(run.path / formats.FIT_LOCK) or {}).get("command")


def none_costed_words(summary: CostSummary, run_dir) -> list[str]:
    """The lines that say no candidate of run `run_dir` could be costed, from `summary` (a
    CostSummary whose `costs` is empty and `failed` is not): a head naming how many modules
    and candidates, one line per module (its px, its trials and why), and the way on (fix
    the module, then cost again; RUN/cost.json, absolute, records each reason, which a
    budget's refusal names). `hubensemble cost`'s summary read as a table of costs with a
    failure line, and fit's cost stage said only each module's failure."""
    trials = sum(len(f["trials"]) for f in summary.failed)
    modules = len({f["module"] for f in summary.failed})
    lines = [f"no candidate of {escaped(absolute(run_dir))} could be costed: "
             f"{'the' if modules == 1 else 'each of the'} {counted(modules, 'module')} of its "
             f"{counted(trials, 'candidate')} failed:"]
    lines += [f"  {f['module']}{_px(f)} ({counted(len(f['trials']), 'candidate')}: "
              f"{', '.join(f['trials'][:3])}{', …' if len(f['trials']) > 3 else ''}): "
              f"{f['reason']}" for f in summary.failed]
    lines.append(f"{escaped(absolute(summary.path))} records each reason; without a cost the "
                 "ensemble refuses an inference budget and the report has no cost figures. "
                 f"Fix what each reason names, then {run_words('cost', run_dir)} again")
    return lines


def _kept_words(kept: int, of: int) -> str:
    """"its 2 candidates keep …" / "3 of its 4 candidates keep …": of a failed module's `of`
    candidates, `kept` keep the cost an earlier pass recorded (`CostSummary.kept`)."""
    who = (f"its {counted(kept, 'candidate')}" if kept == of else
           f"{kept} of its {counted(of, 'candidate')}")
    return (f"{who} {'keeps' if kept == 1 else 'keep'} the cost an earlier pass counted for "
            "the same trial (in cost.json)")


def _px(failed: dict) -> str:
    """" at 8 px" of a `CostSummary.failed` entry that records its size, else ""."""
    return f" at {failed['size']} px" if failed.get("size") else ""


#: How many unusable candidates `skipped_words` names (the rest are counted).
SHOWN_SKIPPED = 5


def skipped_words(folder, skipped) -> str:
    """"N candidates of FOLDER not costed, not usable: TRIAL: REASON; …" for the unusable
    candidate folders `skipped` ((trial, reason), `candidate.load_pool`'s) of candidates
    folder `folder` (named absolute), each reason with its way on (`ensemble.with_way_on`),
    the first SHOWN_SKIPPED by trial and the rest counted, and that the ensemble leaves them
    out too. It said the ensemble "says how to redo them", which it did for no reason but a
    damaged table and, inside fit, said nothing."""
    named = "; ".join(f"{t}: {r}" for t, r in skipped[:SHOWN_SKIPPED])
    if len(skipped) > SHOWN_SKIPPED:
        named += f"; and {len(skipped) - SHOWN_SKIPPED} more"
    them = "it" if len(skipped) == 1 else "them"
    return (f"{counted(len(skipped), 'candidate')} of {escaped(absolute(folder))} not costed, "
            f"not usable: {named} (the ensemble leaves {them} out too)")


def _recorded_or_set_aside(run_dir) -> RunCosts:
    """RUN/cost.json as read (`read_run_costs`), or, when it is damaged or of a newer format
    (`CostFileDamaged`, whose way on names this command), an empty RunCosts after moving the
    file aside (`recordcheck.set_aside`, said with what was wrong and where it went): the
    refusal told the user to run `cost`, which refused in the same words (2026-12-08)."""
    try:
        return read_run_costs(run_dir, say_outdated=False)
    except CostFileDamaged as e:
        try:
            aside = set_aside(cost_path(run_dir), e.newer_format)
        except OSError as moved:
            raise RunError(f"{e.what}, and it cannot be moved aside ({moved}): move or "
                           f"delete it, then {cost_command(run_dir)} writes it again")
        kept = " (kept for the newer hubensemble that wrote it)" if e.newer_format else ""
        log.warning("cost: %s; moved it to %s%s, and costing every candidate again",
                    e.what, aside, kept)
        return RunCosts()


def _eval_size(run, spec, cand, task) -> int:
    """The serving size of a candidate whose trial.json does not record it (older runs)."""
    from hubensemble import tune

    profile = cand.record.get("profile") or ((run.meta().get("tune") or {}).get("profile")
                                             or {}).get("name") or "cpu"
    return int(tune.eval_size(run.task(task), spec, profile))


def format_costs(summary: CostSummary) -> str:
    """The `hubensemble cost` summary: one line per distinct module and size (GFLOPs,
    parameters, latency at batch 1 and 64, trials), the failures, and where it went."""
    rows = {}
    for trial, c in summary.costs.items():
        rows.setdefault((c.module, c.size), [c, []])[1].append(trial)
    # A space before each figure: one of 3 significant digits under 0.001 (`figure`) fills
    # its column.
    # No header over no rows when nothing could be costed (`none_costed_words` says so).
    lines = [] if summary.none_costed else [
        f"{'module':<32}{'px':>5} {'GFLOPs':>9} {'params':>10} {'ms@1':>8} {'ms@64':>8}  "
        "candidates"]
    for (module, size), (c, trials) in sorted(rows.items(),
                                              key=lambda kv: (kv[1][0].macs is None,
                                                              kv[1][0].macs or 0)):
        b1, b64 = c.latency(1), c.latency(64)
        lines.append(f"{module[:31]:<32}{size:>5} {figure(c.gflops, 4):>9} {c.params:>10,} "
                     f"{figure(b1):>8} {figure(b64, 1):>8}  {len(trials)}")
    uncounted = {(c.module, c.size): c for c in summary.costs.values() if c.macs is None}
    by_why: dict = {}  # "–" in the table: say why, each reason once (one per size repeated it)
    for (module, size), c in sorted(uncounted.items()):
        by_why.setdefault(c.not_counted(), []).append(f"{module} at {size} px")
    for why, where in by_why.items():
        lines.append(f"  GFLOPs not counted: {', '.join(where)}: {why}")
    for f in [] if summary.none_costed else summary.failed:
        kept = [t for t in f["trials"] if t in summary.kept]
        lines.append(f"  not costed: {f['module']} ({counted(len(f['trials']), 'candidate')}): "
                     f"{f['reason']}" + (f"; {_kept_words(len(kept), len(f['trials']))}"
                                         if kept else ""))
    if summary.skipped:
        folder = os.path.join(os.path.dirname(summary.path), CANDIDATES_DIR)
        lines.append(f"  {skipped_words(folder, summary.skipped)}")
    if summary.none_costed:  # it read as a table of costs with one failure line
        lines += none_costed_words(summary, os.path.dirname(summary.path))
    lines.append(f"{summary.counted} counted, {summary.cached} from the cache, in "
                 f"{summary.seconds:.1f} s; latency on {summary.machine.get('cpu')} "
                 f"({summary.machine.get('cores')} cores; machine-dependent)")
    lines.append(f"wrote {absolute(summary.path)}")  # from any folder
    return "\n".join(lines)


def check_budget_before_tune(specs, task, profile, max_gflops: float | None, *,
                             cache_dir=None, plan=None) -> dict:
    """Refuses, before a sweep, a `max_gflops` that no candidate of the modules `specs` (the
    ModuleSpecs the sweep will tune, e.g. the ranking's selected ones) can fit: each is
    costed by `module_cost` (GFLOPs only, no latency; cached by module, size and classes)
    with a head of `task`'s classes at each size its trials serve at: those of its entries
    of `plan` (the sweep's PlanEntry list, `sweepplan.plan_sweep`'s of every part; each
    entry's `tune.trial_size`: a probe's at the module's own size, `probe.probe_resolution`,
    a fine-tune's at `tune.eval_size` under `profile`), its `eval_size` when `plan` is None
    or names it not; its cheapest size counts, and `budget.no_module_fits` decides. Before,
    every module was costed at `eval_size`, so a probe sweep's modules (224 px by their
    input size or native size) were costed at the profile's cap. Returns {module: (GFLOPs,
    size in px)} of the modules costed, at their cheapest size (a module that cannot be
    costed is left out, with a warning: the ensemble's check decides then); {} without a
    limit. Raises RunError with `no_module_fits`'s words when none fits (`fit --max-gflops
    1e-7` was refused only after the whole tune: 31 s on digits, hours on real data), and
    naming each module's reason when none of them can be costed (their candidates could not
    be either: the ensemble refused the limit after the whole tune, "no candidate has a
    cost")."""
    from hubensemble.cost.budget import no_module_fits
    from hubensemble.tune import trial_size

    if max_gflops is None:
        return {}
    kinds: dict = {}  # module: the kinds of its planned trials, in plan order
    for entry in plan or ():
        kinds.setdefault(entry.module, {})[getattr(entry.hparams, "kind", "finetune")] = None
    gflops, why, uncounted = {}, [], []
    for spec in specs:
        sizes = dict.fromkeys(trial_size(task, spec, profile, kind)
                              for kind in kinds.get(spec.name) or ["finetune"])
        for size in sizes:
            try:
                cost, _ = module_cost(spec, task.num_classes, size, cache_dir=cache_dir,
                                      latency=False)
            except HubensembleError as e:  # ModuleLoadError, graph.CostError
                reraise_stop(e)
                log.warning("cost: module %s (%d px) cannot be costed before the sweep: %s",
                            spec.name, size, first_line(e))
                why.append(f"{spec.name}: {first_line(e)}")
                break  # (its other sizes load the same module)
            if cost.gflops is None:  # counted nowhere else: the same module, the same graph
                log.warning("cost: module %s (%d px): its GFLOPs cannot be counted before "
                            "the sweep: %s", spec.name, size, cost.not_counted())
                why.append(f"{spec.name}: {cost.not_counted()}")
                uncounted.append(spec.name)
                break
            if spec.name not in gflops or cost.gflops < gflops[spec.name][0]:
                gflops[spec.name] = (cost.gflops, size)
    if why and not gflops:  # none costed now: none of their candidates can be after the sweep
        from hubensemble.lockwords import option_word

        flag = option_word(f"--max-gflops {max_gflops:g}", f"max_gflops={max_gflops:g}")
        # A module costed but not counted is no failure to cost: its latency is measured
        # after the sweep, and a latency limit takes it (it said "can be costed" of them).
        what = ("can be costed" if not uncounted else "has GFLOPs that can be counted"
                if len(uncounted) == len(why) else "can be costed with its GFLOPs counted")
        latency = option_word("--max-latency-ms", "max_latency_ms")
        way = ("fix the modules, or drop the limit" if not uncounted else
               f"pass {latency} in place of it (their latency is measured after the sweep), "
               "make them countable (their reason says how), or drop the limit")
        raise RunError(f"{flag} needs the {'GFLOPs' if uncounted else 'cost'} of a candidate, "
                       f"and none of the "
                       f"{counted(len(why), 'module')} to tune {what} ("
                       f"{'; '.join(why[:3])}{'; …' if len(why) > 3 else ''}): the ensemble "
                       f"would refuse the limit after the whole sweep; {way}, before the sweep "
                       "is run")
    refusal = no_module_fits(gflops, max_gflops)
    if refusal:
        raise RunError(refusal)
    return gflops
