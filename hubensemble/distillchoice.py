"""Which module `distill` trains as the student (a named --student checked against the
run's modules, else the cheapest member's, or under --max-gflops the best module whose
student fits), the candidate it starts from, and the costs it is judged by. Split from
distill.py, no behaviour change."""

from __future__ import annotations

import logging

from hubensemble.errors import HubensembleError, RunError, first_line
from hubensemble.lockwords import option_word
from hubensemble.runspecs import catalogue_entries, module_spec

# distill's logger: its warnings read as distill's, as before the split.
log = logging.getLogger("hubensemble.distill")


def _base_candidate(own, cands, ens):
    """The candidate whose hyperparameters (and, with init "member", weights) the student
    starts from: the ensemble member of the student's module with the lowest validation
    cross-entropy, else the module's candidate with the lowest, else the run's best."""
    chosen = {m.get("trial") for m in ens.get("members") or []}
    pool = [c for c in own if c.trial in chosen] or own or cands
    return min(pool, key=lambda c: (c.val_ce if c.val_ce is not None else 1e9, c.trial))


def _costs(run, cands, task) -> dict:
    """{trial: Cost} of the usable candidates: RUN/cost.json, completed by `run_cost` when it
    lacks some."""
    from hubensemble.cost import read_run_costs
    from hubensemble.cost.stage import run_cost

    recorded = read_run_costs(run.path)
    if any(c.trial not in recorded.costs and c.trial not in recorded.failed for c in cands):
        return run_cost(run.path, task=task, progress=False).costs
    return recorded.costs


def _choose_student(student, max_gflops, ens, cands, costs, specs, run, task, meta) -> str:
    """The student's module name (see run_distill). Under `max_gflops` a module fits by its
    student's cost, at the size the student trains and serves at (`tune.eval_size` under
    its base candidate's profile, `_student_cost`), not by its candidates': a probe's is at
    the module's own resolution (128 px for digits' 8 px images, 16 x the student's 32 px),
    so a module whose candidates were probes was refused though its student fitted."""
    if student is not None:
        return _check_student(student, specs, run)
    if max_gflops is not None:
        from hubensemble import tune
        from hubensemble.tune.plans import trial_profile

        best, needs = {}, {}
        for c in cands:
            if c.val_ce is not None and c.module in specs and (
                    c.module not in best or c.val_ce < best[c.module]):
                best[c.module] = c.val_ce
        for module in list(best):
            own = [c for c in cands if c.module == module]
            spec = module_spec(run, module, modules=specs)
            size = int(tune.eval_size(task, spec, trial_profile(
                _base_candidate(own, cands, ens).record, meta, run.meta_path)))
            try:
                cost = _student_cost(spec, task, size, costs, own)
                if cost.gflops is None:  # params and latency alone cannot meet a GFLOPs limit
                    log.warning("distill: the GFLOPs of module %s at %d px were not counted, "
                                "so it is no student under %s: %s", module, size,
                                option_word("--max-gflops", "max_gflops"), cost.not_counted())
                else:
                    needs[module] = cost.gflops
            except HubensembleError as e:  # ModuleLoadError
                log.warning("distill: module %s cannot be costed at %d px, so it is no "
                            "student under %s: %s", module, size,
                            option_word("--max-gflops", "max_gflops"), first_line(e))
            if module not in needs or needs[module] > max_gflops * (1 + 1e-9):
                del best[module]
        if not best:
            cheapest = min(needs, key=lambda m: (needs[m], m)) if needs else None
            raise RunError(f"no module of {run.path} fits "
                           f"{option_word('--max-gflops', 'max_gflops')} {max_gflops:g} as a "
                           "student at its training size"
                           + (f" (the cheapest needs {needs[cheapest]:.4g}); "
                              + student_way(needs[cheapest], cheapest, "name")
                              if needs else f"; name a {option_word('--student', 'student')}"))
        return min(best, key=lambda m: (best[m], m))
    members = [m for m in ens.get("members") or [] if m.get("trial") in costs]
    if not members:
        # No member has a cost (e.g. none could be counted): the first member's module.
        return ens["members"][0]["module"]
    # The fewest MACs; members whose MACs were not counted after, by their parameters.
    return min(members, key=lambda m: (costs[m["trial"]].macs is None,
                                       costs[m["trial"]].macs or 0,
                                       costs[m["trial"]].params))["module"]


def check_student(run_dir, student: str) -> str:
    """`student` when it is a module of the run at `run_dir` that loaded in rank; RunError
    naming the modules that did otherwise, or run.json's catalogue entries (its "modules"
    record, the student's entry) when a hand edit damaged them (`runspecs`: a list was read as
    a run without modules, a string's letters as module names). Reads run.json and
    ranking.json only (no TensorFlow), so the command line refuses at once."""
    from hubensemble.rundir import Run

    run = Run(run_dir)
    run.require_started()  # a mistyped --run: say so, not "not a module of this run"
    specs = catalogue_entries(run)
    _check_student(student, specs, run)
    module_spec(run, student, modules=specs)  # the entry distill builds the student from
    return student


def _check_student(student, specs, run) -> str:
    """`student` when it is a module of the run that loaded in rank, else RunError listing
    the modules that did."""
    failed, flag = _failed_in_rank(run), option_word("--student", "student")
    usable = ", ".join(sorted(n for n in specs if n not in failed)) or "none"
    if student in failed:
        raise RunError(f"{flag} {student!r} failed in rank ({failed[student]}); the "
                       f"modules that loaded are: {usable}")
    if student not in specs:
        raise RunError(f"{flag} {student!r} is not a module of this run; its modules "
                       f"that loaded are: {usable}")
    return student


def _failed_in_rank(run) -> dict[str, str]:
    """{module: reason} of the modules RUN/ranking.json records as not ranked (the module
    could not load or embed); {} without a ranking (a run assembled by hand)."""
    if not run.ranking_json.exists():
        return {}
    from hubensemble.rank import load_ranking

    return {r["name"]: r.get("reason") or "no reason recorded"
            for r in load_ranking(run.path).failed_rows}


def _student_cost(spec, task, size, costs, own):
    """The student's Cost: a same-size candidate's of its module, else counted now."""
    from hubensemble.cost.stage import module_cost

    for c in own:
        cost = costs.get(c.trial)
        if cost is not None and cost.size == size:
            return cost
    cost, _ = module_cost(spec, task.num_classes, size)
    return cost


def recorded_student_gflops(module, cands, ens, costs) -> float | None:
    """The GFLOPs per image of `module`'s student known from the records alone, before
    TensorFlow loads: its base candidate (`_base_candidate`) is a fine-tuned one (a probe
    trains at the module's own resolution, not the student's) whose trial.json records its
    "eval_size", the size the student trains and serves at (`tune.eval_size` of the same
    task and profile), and RUN/cost.json (`costs`: {trial: Cost}) holds a candidate of the
    module measured at that size: the Cost `_student_cost` takes. None when not known so."""
    from hubensemble.chance import is_probe

    own = [c for c in cands if c.module == module]
    if not own:
        return None
    base = _base_candidate(own, cands, ens)
    size = base.record.get("eval_size")
    if is_probe(base.record) or not isinstance(size, int):
        return None
    known = [costs[c.trial] for c in own if c.trial in costs and costs[c.trial].size == size]
    return known[0].gflops if known else None


def check_gflops_from_records(run, student, max_gflops, ens, specs) -> None:
    """distill's --max-gflops refusal before TensorFlow loads and the data is read (it came
    after both: seconds and hundreds of MB, then "over --max-gflops"), when the records
    decide it (`recorded_student_gflops`): the named `student`'s, or with none named every
    module that could be one (a usable candidate with a validation cross-entropy) over
    `max_gflops`. RunError in the words the later check uses; nothing when `max_gflops` is
    None or a figure is not recorded (the check after the data load decides then)."""
    if max_gflops is None:
        return
    from hubensemble.cost import read_run_costs
    from hubensemble.ensemble import load_candidates

    try:
        costs = read_run_costs(run.path).costs
        cands, _ = load_candidates(run.path)
    except (RunError, OSError, ValueError):  # the stage's own reads say what is wrong
        return
    limit, flag = max_gflops * (1 + 1e-9), option_word("--max-gflops", "max_gflops")
    if student is not None:
        need = recorded_student_gflops(student, cands, ens, costs)
        if need is not None and need > limit:
            raise RunError(f"the student {student} needs {need:.4g} GFLOPs per image (RUN/"
                           f"cost.json's figure at its training size), over {flag} "
                           f"{max_gflops:g}; "
                           + student_way(need, "the student", "choose another"))
        return
    modules = sorted({c.module for c in cands if c.val_ce is not None and c.module in specs})
    needs = {m: recorded_student_gflops(m, cands, ens, costs) for m in modules}
    if modules and all(n is not None and n > limit for n in needs.values()):
        cheapest = min(modules, key=lambda m: (needs[m], m))
        raise RunError(f"no module of {run.path} fits {flag} {max_gflops:g} as a student at "
                       f"its training size (the cheapest needs {needs[cheapest]:.4g}, "
                       "RUN/cost.json's figures); "
                       + student_way(needs[cheapest], cheapest, "name"))


def student_way(gflops: float, whose: str, choose: str) -> str:
    """The way on from a student over distill's --max-gflops: "pass --max-gflops 0.0002212
    or more (WHOSE's student's), or drop the flag, or CHOOSE a --student" (`gflops`: the
    student's GFLOPs per image, rounded up so it passes: `cost.budget.raise_words`; `whose`:
    "the student" or the cheapest module's name; `choose`: "name" or "choose another"). It
    said "raise the limit"."""
    from hubensemble.cost.budget import raise_words

    owner = "the student's" if whose == "the student" else f"{whose}'s student's"
    return (f"{raise_words({'gflops': gflops}, owner)}, or {choose} "
            f"{'a ' if choose == 'name' else ''}{option_word('--student', 'student')}")


def check_distill_budget(run_dir, student=None, max_gflops=None) -> None:
    """`check_gflops_from_records` for the run at `run_dir` (its run.json and ensemble.json
    read here; TensorFlow-free), for a caller that checks distill's options before
    TensorFlow loads (the command line's check). RunError as there; nothing when the files
    cannot say (the stage's own reads say what is wrong)."""
    from hubensemble.ensemble import read_ensemble
    from hubensemble.rundir import Run

    if max_gflops is None:
        return
    run = Run(run_dir)
    try:
        ens, specs = read_ensemble(run.path), catalogue_entries(run)
    except (RunError, OSError, ValueError):
        return
    check_gflops_from_records(run, student, max_gflops, ens, specs)
