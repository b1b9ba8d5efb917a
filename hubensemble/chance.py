"""Candidates at chance on validation: the one rule and the one advice for every place that
shows them (tune's end-of-sweep summary, the ensemble stage's warning on a member, the
report's members table and candidates).

A candidate is at chance when `metrics.at_chance` says so of its val_probs.npy against the
run's RUN/labels/val.npy: its accuracy is not significantly above the majority class's rate
(one-sided binomial test, `metrics.CHANCE_ALPHA`) and its cross-entropy no better than
predicting the class frequencies. Every profile but `quick` fails such a trial as it ends
(`hubensemble.tune.train.chance_reason`); under `quick` it is kept, so it is flagged here,
from the files, which also covers runs written before the flag. NumPy and SciPy only.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from hubensemble import metrics
from hubensemble.lockwords import option_word
from hubensemble.text import counted


def candidate_at_chance(cand, labels) -> str | None:
    """Why the candidate `cand` (`candidate.Candidate`, its val_probs loaded or loadable) is
    at chance on validation (`metrics.at_chance` of val_probs, float32 [N, C], against
    `labels`, int [N] in [0, C)), in words, or None when it is not, or when its table cannot
    be read or does not fit the labels (the pool's checks say that elsewhere)."""
    if labels is None:
        return None
    labels = np.asarray(labels)
    if cand.val_probs is None and cand.load_probs(n_val=len(labels)):
        return None
    probs = cand.val_probs
    if probs is None or probs.ndim != 2 or len(probs) != len(labels) or not len(labels):
        return None
    if labels.min() < 0 or labels.max() >= probs.shape[1]:
        return None
    return metrics.at_chance(probs, labels, probs.shape[1])


def at_chance_candidates(cands: Iterable, labels) -> dict[str, str]:
    """{trial: why} of the candidates of `cands` at chance on validation
    (`candidate_at_chance`), in their order; {} without `labels`."""
    found = {}
    for cand in cands:
        why = candidate_at_chance(cand, labels)
        if why:
            found[cand.trial] = why
    return found


def is_probe(record: dict) -> bool:
    """Whether a trial.json record (or ensemble.json member) is a probe's: "kind": "probe" at
    the top or in its hparams."""
    hparams = record.get("hparams") if isinstance(record.get("hparams"), dict) else {}
    return "probe" in (record.get("kind"), hparams.get("kind"))


def chance_advice(records: Iterable[dict]) -> str:
    """What to do about candidates at chance, from their trial.json records (their "kind" and
    "profile"): for fine-tunes of the `quick` profile, train longer (its 5-10 steps leave a
    module near its start); for other fine-tunes, another learning rate or more steps; for
    probes, other modules or a larger validation split. One sentence, no trailing period,
    in the caller's words (flags on the command line, keywords from Python)."""
    records = list(records)
    probes = [r for r in records if is_probe(r)]
    tunes = [r for r in records if not is_probe(r)]
    # The caller's words (`lockwords.option_word`): run_tune(profile="quick") was told of
    # "--profile cpu" and "fit --restart".
    quick, cpu, probe, hyper, paper = (option_word(f"--{o} {v}", f"{o}={v!r}") for o, v in (
        ("profile", "quick"), ("profile", "cpu"), ("sweep", "probe"), ("sweep", "hyper"),
        ("profile", "paper")))
    restart = option_word("fit --restart", "fit(restart=True)")
    ways = []
    if any(r.get("profile") == "quick" for r in tunes):
        # "{quick}'s" gave "profile='quick''s" from Python: the profile after its steps.
        ways.append(f"train longer: the 5-10 steps of {quick} leave a module near where it "
                    f"started; {cpu} trains 40-200 (a new run, or {restart}), and "
                    f"{probe} (head-only candidates, fitted to convergence) needs no "
                    "steps at all")
    elif tunes:
        ways.append(f"try another learning rate or more steps ({hyper} draws the lr "
                    f"from 1e-4 to 0.1; {paper} trains longest), or {probe}")
    if probes:
        ways.append("for a probe: its module's embeddings do not separate these classes, or "
                    "the validation split is too small to show it (other modules, more "
                    "validation images)")
    return "; ".join(ways)


def sweep_chance_text(found: dict[str, str], records: dict[str, dict]) -> str:
    """The end of a sweep's warning on its candidates `found` ({trial: why},
    `at_chance_candidates`), with their trial.json `records` ({trial: record}): how many,
    which, and what to do (`chance_advice`). tune's summary lists each with its why."""
    verb = "is" if len(found) == 1 else "are"
    return (f"{counted(len(found), 'candidate')} {verb} at chance on validation, so "
            f"{'it adds' if len(found) == 1 else 'they add'} next to "
            f"nothing to an ensemble: {', '.join(found)}; "
            f"{chance_advice(records.get(t) or {} for t in found)}")


def members_chance_text(found: dict[str, str], records: dict[str, dict]) -> str:
    """The ensemble stage's warning on members at chance on validation (`found`: {trial:
    why}; `records`: {trial: trial.json record}): which (with their modules), the first one's
    numbers, that their weight buys nothing, and what to do (`chance_advice`)."""
    which = ", ".join(f"{t} ({(records.get(t) or {}).get('module') or '?'})" for t in found)
    first, why = next(iter(found.items()))
    one = len(found) == 1
    return (f"{counted(len(found), 'ensemble member')} {'is' if one else 'are'} at chance on "
            f"validation, so {'its' if one else 'their'} weight averages in next to nothing "
            f"learned: {which} ({first}: {why}); "
            f"{chance_advice(records.get(t) or {} for t in found)}")
