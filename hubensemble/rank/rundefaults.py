"""What `rank` of a run folder keeps of that run when its options are not given: the recorded
proxy and selection rule (`kept_options`) and the run's profile (`run_defaults`), for the
command line and Python alike (`keeps_run_defaults` wraps `run_rank`). No TensorFlow at
import; below rank.ranking, which it does not import."""

from __future__ import annotations

import functools
import os
from types import SimpleNamespace
from typing import Callable, ParamSpec, TypeVar, cast

from hubensemble import options
from hubensemble.lockwords import on_command_line, option_word
from hubensemble.text import escaped

_P = ParamSpec("_P")
_R = TypeVar("_R")

#: The rank options ranking.json records that `rank` of a run folder keeps when none of its
#: group is typed: the proxy (metric, k) and the selection rule (its four flags).
_KEPT_GROUPS = (("metric", "k"), ("top_k", "threshold", "max_k", "greedy"))


def kept_options(ranking: dict, given) -> dict:
    """{option name: value} of the rank options the run folder's ranking.json (`ranking`, its
    dict; {} for none) records and `rank` of that folder keeps: per group (the proxy: --metric
    and -k; the selection: --top-k, --threshold, --max-k, --greedy), the recorded values when
    the user typed no option of that group (`given`: the names typed, argparse's
    given_options), only those that differ from the options table's defaults. {} when nothing
    is recorded or nothing differs. Without it, `rank` of a folder fitted with --top-k 2 selected
    the default 15 modules, which a later `tune --run` would tune (a new-user check)."""
    from hubensemble.rerun import recorded_rank_options

    recorded = recorded_rank_options(ranking)
    kept = {}
    for group in _KEPT_GROUPS:
        if any(name in given for name in group):
            continue
        kept.update({name: recorded[name] for name in group if recorded[name] is not None
                     and recorded[name] != options.default(name)})
    # A k recorded beside a metric without neighbours (a ranking written before such a k was
    # refused: it was ignored) is not kept: rank would refuse its own run's options.
    for name, _ in options.misapplied(kept, list(kept)):
        del kept[name]
    return kept


def run_defaults(out_dir, given, profile) -> tuple[dict, list[str]]:
    """({option name: value}, [lines to say]) for `rank` of the folder `out_dir`: for a run
    folder, the options it keeps (`kept_options`: the recorded proxy and selection rule), and
    without --profile typed (`given`: the names typed) the run's profile, as tune takes it
    (`runprofile.run_profile`: its last tune's, else its ranking's) when it is not `profile`
    (the default's name) by name or by definition (a built-in profile redefined since the run
    recorded it: `runprofile.training_changes`); ({}, []) for a new folder. The default (cpu)
    re-ranked a folder fitted at quick at another resolution than its pool's, without a word (a
    new-user check). A ranking.json that cannot be read keeps nothing (a line says so: rank
    writes it anew, the way its refusal named; `rank --out RUN` refused it, naming itself as the
    way on) and is not read when every kept option is given (fit gives all of its own). RunError
    when run.json is unreadable (`Run.meta`)."""
    from hubensemble.candidate import scan
    from hubensemble.rundir import Run
    from hubensemble.runprofile import as_profile, run_profile, training_changes

    from hubensemble.errors import RunError

    run = Run(out_dir)
    if not run.started():
        return {}, []
    values, lines = {}, []
    if not all(name in given for group in _KEPT_GROUPS for name in group):  # fit gives all
        try:
            values = kept_options(run.ranking() or {}, given)
        except RunError:  # rank writes it anew: the way on its own refusal named
            lines.append(f"rank: {escaped(os.fspath(run.ranking_json))} is unreadable or "
                         "damaged, so none of its options is kept: ranking again with the "
                         "options given")
    if values:
        lines.append(f"rank: {kept_words(values)} (the run's ranking, {run.ranking_json}; "
                     "not the defaults): a run folder is ranked again by its own rule; "
                     + option_word("type the options for another", "pass the keywords for "
                                   "another"))
    if "profile" in given:
        return values, lines
    (kept, source) = run_profile(run)
    # By definition, not name: a profile redefined since the run recorded it is kept as
    # recorded, as tune's pool check and retraining read it (runprofile.training_changes).
    redefined = kept.name == profile and training_changes(kept, as_profile(profile))
    if kept.name != profile or redefined:
        values["profile"] = kept  # run_rank takes a Profile: a custom one recorded too
        said = option_word(f"--profile {kept.name}", f"profile={kept.name!r}")
        lines.append(f"rank: {said} ({source}; not the default " + (
            f"{profile} as this version defines it" if redefined else profile) + "): " + (
            "its candidates were tuned at that profile's resolution, and the ranking embeds at "
            "it too; for another profile, rank into a new "
            f"{option_word('--out', 'out_dir')} folder" if scan(
                run.candidates)[0] else "the ranking embeds at the resolution tune goes on at; "
            f"{option_word('--profile', 'profile')} chooses another"))
    return values, lines


def kept_words(kept: dict) -> str:
    """`kept_options`' result in the caller's words: on the command line the flags that give
    it ("--metric knn-cosine --top-k 2": `rerun.option_flags`, the one rendering of
    recorded options as flags), from Python run_rank's keywords ("metric='knn-cosine',
    top_k=2": `rerun.option_keywords`; run_rank(RUN, …) was told the flags)."""
    from hubensemble.rerun import option_flags, option_keywords

    table = [options.get(name) for name in kept]
    return (option_flags if on_command_line() else option_keywords)(kept, table)


def keeps_run_defaults(run_rank: Callable[_P, _R]) -> Callable[_P, _R]:
    """Decorates `run_rank(out_dir, specs, task, **keywords)`: for a run folder (`out_dir`
    holds a run), the rank options not passed as keywords take the run's (`run_defaults`:
    its recorded proxy and selection rule, and without `profile` its profile), each said as
    `rank` says it (`terminal.say`: on stderr with `progress`, and in RUN/log.txt). The
    command line passes the options typed (argparse's given_options) and `fit` all of its
    own, so one code path decides: run_rank(RUN, specs, task) on a folder fitted with
    top_k=2 selected the default 15 modules, where `rank --out RUN` kept 2 (a notebook
    user's check). A keyword passed with the default's value counts as given, as the flag
    typed does. The signature stays run_rank's, for `inspect` and for type checkers."""
    names = set(options.defaults_for("rank"))

    @functools.wraps(run_rank)
    def call(out_dir, specs, task, **keywords):
        from hubensemble.terminal import say

        if isinstance(out_dir, (str, os.PathLike)) and os.fspath(out_dir):  # else refused
            given = names & set(keywords)
            values, lines = run_defaults(out_dir, given, keywords.get(
                "profile", options.default("profile")))
            for line in lines:
                say(SimpleNamespace(quiet=not keywords.get("progress", True)), line)
            keywords.update({options.get(name).kw: value for name, value in values.items()})
        return run_rank(out_dir, specs, task, **keywords)

    return cast(Callable[_P, _R], call)  # run_rank's own signature (functools.wraps)
