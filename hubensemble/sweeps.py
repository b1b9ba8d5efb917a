"""The tune sweeps' configurations as pure functions (paper 2.2, 2.3, 2.3.1, A.1-A.2, and the
head-only probe sweep): which sweeps exist, how a --sweep value splits, the budget each needs
(and the words for modules a budget leaves without a trial: `untuned_reason`, run.json's
neutral `untuned_record`, `untuned_words`), the default grid, the probe strengths and the
A.2 random space."""

from __future__ import annotations

import math

from hubensemble.errors import HubensembleError
from hubensemble.lockwords import call_verb, command_words, option_word
from hubensemble.optionerror import OptionError
from hubensemble.text import closest_names, counted, shell, shell_word

#: The tune sweeps (paper 2.2, 2.3, 2.3.1, A.1-A.3, and head-only probes); a --sweep value is
#: one of them or two joined by "+" (`sweep_parts`).
SWEEPS = ("default", "seeds", "hyper", "aug", "combined", "probe")


def sweep_parts(text: str) -> tuple[str, ...]:
    """a sweep (default, seeds, hyper, aug, combined, probe) or two joined by +, e.g. default+probe

    'default+probe' -> ("default", "probe"): the sweeps of one tune run's pool, in order.
    ValueError naming the known sweeps for anything else (unknown, repeated, more than two).
    """
    parts = tuple(str(text).split("+"))
    unknown = [p for p in parts if p not in SWEEPS]
    if unknown or len(parts) > 2 or len(set(parts)) != len(parts):
        raise ValueError(f"{text!r}: write one of {', '.join(SWEEPS)}, or two of them joined "
                         "by + (e.g. default+probe)")
    return parts


#: The one sweep whose trials hubensemble fits itself (`tune.probe`: L-BFGS on the frozen
#: module's embeddings); Keras Tuner runs every other one's, in RUN/tuner.
UNTUNED_BY_KERAS_TUNER = "probe"


#: Sweeps whose trials come in groups of 4: a module's A.1 grid, its probes, an aug family.
GROUPED_SWEEPS = ("default", "probe", "aug")


def check_budget(sweep: str, budget: int | None, *, again=None, modules=None) -> None:
    """OptionError (a usage error on the command line, wherever it is raised) when `budget`
    (trials, never exceeded: paper 2; None = the default)
    cannot hold one group of a part of `sweep` (one module's 4 trials; aug: one augmentation
    family's), in the caller's words
    (`lockwords.option_word`: "pass --budget 4 or more" on the command line, "pass budget=4
    or more" from Python; both were told "a budget of 4"): "the default sweep runs 4 trials
    per module; budget 2 cannot hold one module's 4 trials: pass --budget 4 or more (K
    modules need 4×K), …" (it said "cannot hold one", one what only at its end). `again`
    (None: the flag alone, as above): a function of a budget (int) to the whole command,
    or Python call, that runs with it, in the caller's words (`tune_again`, `fit_again`),
    said as the way on (`sweepagain`): "… cannot hold one module's 4 trials: run `hubensemble
    tune --run RUN --sweep default --budget 4` (or more; K modules need 4×K), or a sweep of
    single trials …", "call run_tune(run_dir='…', sweep='default', budget=4) (or more; …)". The
    command line checks it before TensorFlow loads; `tune.plan_sweep` checks each part the
    same way. `modules` (None: not known before the plan selects them): the modules the
    sweep will tune (--modules, whose "A,B" counts two; `tune.plan_sweep`'s pool): a module
    sweep's budget said is 4×K for their K, not 4, which the plan then warned left K-1
    without a trial ("m2 gets no trial: … pass budget=8"; a new user, stop 68)."""
    count = len(dict.fromkeys(p.strip() for m in (modules or ()) for p in str(m).split(",")
                              if p.strip()))
    for part in sweep_parts(sweep):
        if part in GROUPED_SWEEPS and budget is not None and int(budget) < 4:
            group = "augmentation family" if part == "aug" else "module"
            groups = "augmentation families" if part == "aug" else "modules"
            need = 4 * count if part != "aug" and count > 1 else 4
            more = (f"4 trials for each of its {count} modules" if need > 4 else
                    f"K {groups} need 4×K")
            way = (f"pass {option_word(f'--budget {need}', f'budget={need}')} or more ({more})"
                   if again is None else f"{call_verb()} {again(need)} (or more; {more})")
            raise OptionError(f"the {part} sweep runs 4 trials per {group}; budget "
                              f"{budget} cannot hold one {group}'s 4 trials: {way}, or a "
                              "sweep of single trials (seeds, hyper, combined)")


def untuned_reason(sweep: str, budget: int, reached: int, of: int, *,
                   given: bool = False, tau: float | None = None) -> str:
    """Why a budget leaves modules of a sweep without a trial, and what to pass instead, in
    the caller's words (`lockwords.option_word`: "pass --budget 8" on the command line,
    "pass budget=8" from Python): `reached` of the sweep's `of` modules get trials (default
    and probe: 4 each; combined: 1 each, those within `tau` of the best score); `given`: the
    modules came from --modules, not the ranking's selection. One way on wherever it is said
    (fit's plan said "pass --budget 8 (or no --budget)", its closing line "pass --budget 8":
    `tune --run RUN` without --budget resumes the budget that left them out). The plan's
    warning says it; run.json stores its facts (`untuned_record`) and each reader words them
    (`untuned_words`)."""
    if sweep == "combined":
        return (f"budget {budget} deals one trial to each of the first {reached} (by kNN "
                f"score) of the combined sweep's {of} modules within tau {tau:g} of the best "
                f"score; pass {option_word(f'--budget {of}', f'budget={of}')} or more to tune "
                "every one")
    what = (option_word("modules given by --modules", "modules given in modules") if given
            else "selected modules")
    return (f"budget {budget} gives the {sweep} sweep's 4 trials per module to the first "
            f"{reached} of the {of} {what} (best-ranked first); pass "
            f"{option_word(f'--budget {4 * of}', f'budget={4 * of}')} to tune "
            "every one")


def untuned_record(modules, *, budget: int, reached: int, given: bool,
                   tau: float | None) -> dict:
    """run.json's record of a sweep's modules its budget gives no trial
    (tune.sweeps.<sweep>.untuned): {"modules": the names, in rank order, and the facts
    `untuned_reason` words, "budget", "reached", "of", "given", "tau"}, neutral: no flag nor
    keyword (it stored the words of whoever ran tune, "pass budget=8" read from the command
    line's report and closing table)."""
    return {"modules": list(modules), "budget": int(budget), "reached": int(reached),
            "of": int(reached) + len(modules), "given": bool(given), "tau": tau}


def untuned_words(sweep: str, record: dict) -> str:
    """Why sweep `sweep`'s budget gave run.json's `untuned` record's modules no trial
    (`untuned_record`), worded for the reader now (`untuned_reason`: flags on the command
    line and in the report, keywords from Python); a record written before the facts were
    stored shows its stored "reason" as it is, one without either "no reason recorded"."""
    try:
        return untuned_reason(sweep, int(record["budget"]), int(record["reached"]),
                              int(record["of"]), given=bool(record.get("given")),
                              tau=record.get("tau"))
    except (KeyError, TypeError, ValueError):
        return str(record.get("reason") or "no reason recorded")


DEFAULT_SWEEP_LRS = (0.1, 0.01)
DEFAULT_SWEEP_STEPS = (2500, 10_000)

#: A.2 random search space (from BiT): LogUniform ranges, a Uniform range and a choice.
WEIGHT_DECAY_RANGE = (1e-6, 1e-1)
DROPOUT_RANGE = (0.0, 0.5)
LR_RANGE = (1e-4, 1e-1)
STEPS_CHOICES = (500, 1000, 2000, 5000, 8000, 16_000)


def default_sweep() -> list[dict]:
    """The paper's default sweep: lr in {0.1, 0.01} x steps in {2500, 10000}, no wd/dropout."""
    return [{"lr": lr, "steps": steps, "weight_decay": 0.0, "dropout": 0.0}
            for lr in DEFAULT_SWEEP_LRS for steps in DEFAULT_SWEEP_STEPS]


#: The probe sweep's L2 strengths lambda (mean cross-entropy + lambda / 2 * ||W||^2 on
#: standardised embeddings; scikit-learn's C = 1 / (lambda * n)): four decades around the
#: C ~ 0.1 the linear-probe baseline of tools/benchmarks/bench_method.py picks on 800 images.
PROBE_L2 = (1e-4, 1e-3, 1e-2, 1e-1)
#: L-BFGS iterations of a probe (the `steps` of a probe's HParams).
PROBE_MAX_ITER = 1000
#: An LP-FT head (head_init "probe"; Kumar et al. 2022: the probe first, its regulariser picked
#: on validation, then everything) starts from the PROBE_L2 probe of lowest validation CE
#: (`tune.probe.pick_probe`); this fixed strength is for a fit that trains on val as well and
#: whose trial recorded no "head_l2" (trials before the pick, which all started from it).
PROBE_HEAD_L2 = 1e-2


def probe_sweep() -> list[dict]:
    """The probe sweep's configurations, one per L2 strength of PROBE_L2 (keys of HParams:
    kind "probe", lr 0, steps PROBE_MAX_ITER, weight_decay = lambda, the module frozen)."""
    return [{"kind": "probe", "lr": 0.0, "steps": PROBE_MAX_ITER, "weight_decay": l2,
             "dropout": 0.0, "batchnorm": "inference", "head_init": "zero"}
            for l2 in PROBE_L2]


def _log_uniform(rng, low: float, high: float) -> float:
    return float(10.0 ** rng.uniform(math.log10(low), math.log10(high)))


def sample_hparams(rng) -> dict:
    """One draw from the HyperEnsembles space (paper A.2), keys as in `default_sweep`.

    Draw order (fixed, so a seeded generator reproduces a sweep): weight decay to the initial
    weights ~ LogUniform(1e-6, 1e-1), dropout ~ U(0, 0.5), lr ~ LogUniform(1e-4, 1e-1),
    steps ~ Choice(500, 1k, 2k, 5k, 8k, 16k).
    """
    weight_decay = _log_uniform(rng, *WEIGHT_DECAY_RANGE)
    dropout = float(rng.uniform(*DROPOUT_RANGE))
    lr = _log_uniform(rng, *LR_RANGE)
    steps = int(STEPS_CHOICES[int(rng.integers(len(STEPS_CHOICES)))])
    return {"lr": lr, "steps": steps, "weight_decay": weight_decay, "dropout": dropout}


#: What `check_modules`' `source` names in its refusal: the rows' origin.
_SOURCES = {"ranking": "ranking", "catalogue": "catalogue", "demo": "demo's zoo"}

#: How many usable module names a --modules refusal lists.
MODULES_LISTED = 20


def check_modules(modules, rows, *, source: str = "ranking", again=None,
                  rank_command: str | None = None) -> list[str]:
    """The names of `modules` (--modules; None or empty: []) in the order of `rows`, or
    HubensembleError naming, in one refusal, every fault (`_module_faults`): a name that
    joins names with a comma, each name (or comma-joined part) `rows` lacks (with the
    closest names, `text.closest_names`) or has with a status other than "ok"; then the
    usable names (the first MODULES_LISTED: catalogues hold thousands), then the way on in
    the caller's words (`_modules_way`: the --modules to pass, or what to rank first). It
    named the first fault only, and its way on was refused for the next: `demo --modules
    r8x2-generalist-0,zz` was told to run `… --modules r8x2-generalist-0 zz`, then that
    "module 'zz' is not in the demo's zoo" (a new user, stop 68).

    `rows`: the ranking's module rows (dicts with "name", "status") for `tune`, or for `fit`
    before it ranks, rows made from the catalogue's entries (`source` "catalogue", all ok;
    "demo": demo's, of its zoo, which takes no catalogue to add one to).
    `again` (None: the --modules to pass alone): a function of modules=[names] to the whole
    command, or Python call, that runs with them (`sweepagain.fit_again`, `tune_again`), said
    as the way on when the names meant are known (each known name, the one closest name of
    an unknown one; one without a single close name, or that failed, left out; no way on
    naming modules when none is left) and no module failed (from fit's tune, run_tune's
    call would skip the fit's other stages): "run `hubensemble fit --catalogue … --modules
    a --out /abs/run`", as `check_budget`'s refusal says its whole command; fit said the flag
    alone.
    `rank_command` (None: `hubensemble rank` named alone): the whole command that ranks the
    run again (`Run.rank_command`), for a name the ranking lacks: it said "run `hubensemble
    rank` (or fit) again", which, pasted, lacked --catalogue, --data and --out (a new user,
    stop 68).
    """
    usable = [r["name"] for r in rows if r.get("status", "ok") == "ok"]
    everything = {r["name"]: r for r in rows}
    wanted = list(dict.fromkeys(modules or ()))
    faults, meant, failed, left_out = _module_faults(wanted, everything, usable, source)
    if not faults:
        return [n for n in usable if n in wanted]  # the rows' order, not the command line's
    listed = ", ".join(usable[:MODULES_LISTED]) or "(none)"
    if len(usable) > MODULES_LISTED:
        listed += f" and {len(usable) - MODULES_LISTED} more"
    what = ("usable modules" if failed else "ranked modules" if source == "ranking"
            else "its modules")
    raise HubensembleError("; ".join(faults) + f"; {what}: {listed}; " + _modules_way(
        meant, "failed" if failed else source, None if failed else again, left_out,
        rank_command))


def _module_faults(wanted: list[str], everything: dict, usable: list[str],
                   source: str) -> tuple[list[str], list[str] | None, bool, list[str]]:
    """(the faults of `wanted` (--modules) against the rows `everything` ({name: row}), each
    one clause; the names meant in their place, in order, None when no name is known; whether
    a module failed; the unknown names without one close name, left out of the way on) for
    `check_modules`. A name with a comma is split first (its parts are
    checked each: "A,zz" is two faults, the comma and zz)."""
    faults: list[str] = []
    meant: list[str] = []
    left_out: list[str] = []  # names meaning no one module: the way on runs without them
    failed = False
    for name in wanted:
        parts = ([p.strip() for p in name.split(",") if p.strip()]
                 if "," in name and name not in everything else [name])
        if parts != [name]:
            # In the caller's words: a Python caller's list was told of --modules A B.
            faults.append(f"module {name!r} is not in the {_SOURCES[source]} (separate the "
                          "names{})".format(option_word(
                              " with spaces: --modules A B, not A,B",
                              ": modules=['A', 'B'], not ['A,B']")))
        for part in parts:
            if part not in everything:
                # git's rule and its ties, among the usable: a failed one meant is refused
                close = closest_names(part, usable)
                hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
                faults.append(f"module {part!r} is not in the {_SOURCES[source]}{hint}")
                if len(close) == 1:
                    meant.append(close[0])
                else:
                    left_out.append(part)
            elif part not in usable:
                failed = True
                faults.append(f"module {part!r} has status "
                              f"{everything[part].get('status')!r} in the ranking (it could "
                              "not be embedded)")
            else:
                meant.append(part)
    meant = list(dict.fromkeys(meant))
    return faults, (None if left_out and not meant else meant), failed, left_out


def _modules_way(meant: list[str] | None, source: str, again=None, left_out=(),
                 rank_command: str | None = None) -> str:
    """What to do about the modules `check_modules` refused: `meant` (the names meant in
    their place, `_module_faults`; [] to leave --modules out; None: not known) given instead,
    "pass --modules a b" ("modules=['a', 'b']" from Python); else, by `source`, "ranking":
    rank it first, "catalogue": add it to a catalogue, "demo": one of its zoo's (demo takes
    no catalogue), "failed" (it could not be embedded): rank it again once fixed. With
    `again` (`check_modules`'), the whole command, or call, with those modules (none: without
    --modules) in place of the flag; `left_out`: the unknown names it runs without, said
    ("(without 'zz', found nowhere)"), not dropped without a word; `rank_command`: the
    run's own rank command (`check_modules`')."""
    rank = (f"{call_verb()} {rank_command} again" if rank_command else
            f"{call_verb()} {command_words('rank')} (or fit) again")
    if meant is not None:
        names = meant
        if again is not None:
            way = f"{call_verb()} {again(modules=names or None)}"
        else:
            way = ("pass " + option_word("--modules " + " ".join(map(shell_word, names)),
                                         f"modules={names!r}") if names else
                   "leave out " + option_word("--modules", "modules"))
        if left_out:
            way += f" (without {', '.join(map(repr, left_out))}, found nowhere)"
        if source == "failed":
            way += f", or fix why it failed (ranking.json says it) and {rank} first"
        return way
    given = option_word("--modules NAME …", "modules=[NAME, …]")
    if source == "ranking":
        return (f"pass {given} of ranked modules, or add it to the run's catalogue and {rank} "
                "first, so that it is ranked")
    if source == "demo":  # it takes no catalogue: a module of the user's goes to fit's
        return (f"pass {given} of its modules (demo runs its zoo's modules only; fit "
                "--catalogue FILE takes modules of your own)")
    return f"pass {given} of its modules, or add it to a catalogue file given to fit"


def rerun_failed_words(candidates_dir, failed, *, then: str | None = None,
                       chief_worker: bool = False) -> str:
    """How to run the `failed` trials (ids) of a sweep again: running the same command again
    does not retry them, as a failed trial counts as finished (`sweepsummary.finished_candidate`)
    and Keras Tuner's oracle never hands out a FAILED trial again (keras_tuner 1.4.8
    Oracle.reload re-queues only the trials that were running; `max_retries_per_trial`, 0 by
    default, retries a trial only in the run it failed in); its failure is mostly its
    settings' or its module's, and would repeat. Removing its folder in `candidates_dir`
    makes it run again: "`(cd DIR && rm -r T1 T2)`", then the same command. No TensorFlow:
    tune's summary and fit's closing summary (`report.summary_table`) say them alike, each in
    its own command's words: `then` (e.g. "run `hubensemble fit … --out RUN`") in place of
    tune's "run the same command again", which adds "(a chief/worker sweep: its chief's and
    each worker's)" only with `chief_worker` (the summary of a chief/worker sweep's process:
    a one-process sweep has one command)."""
    before, command, after = rerun_failed_parts(candidates_dir, failed, then=then,
                                                chief_worker=chief_worker)
    return f"{before}`{command}`{after}"


def rerun_failed_parts(candidates_dir, failed, *, then: str | None = None,
                       chief_worker: bool = False) -> tuple[str, str, str]:
    """`rerun_failed_words` as (the words before the command, the shell command that removes
    the `failed` trials' folders, the words after it, ending in `then`, else tune's "run the
    same command again", with `chief_worker` "(a chief/worker sweep: …)"): for a document
    that shows the command as code (the report's `render.Code`)."""
    failed = list(failed)
    one = len(failed) == 1
    them, their = ("it", "its") if one else ("them", "their")
    again = "run the same command again" + (
        " (a chief/worker sweep: its chief's and each worker's)" if chief_worker else "")
    return (f"running the same command again does not retry the "
            f"{counted(len(failed), 'failed trial')} (a failed trial counts as finished). To "
            f"retry {them} once {their} cause is fixed, remove {their} "
            f"{'folder' if one else 'folders'} (",
            f"(cd {shell(candidates_dir)} && rm -r {' '.join(shell_word(t) for t in failed)})",
            "), then " + (then or again))
