"""The one line tune says of the finished trials it runs again: their count, why, and each
trial's problem (`redone_line`). A caller that said some of them already (fit's damage
line, `said`) leaves them out, so a changed trial is said once."""

from __future__ import annotations

from hubensemble import candidate
from hubensemble.text import counted

#: What each file of a candidate is called in the line of a trial redone.
_FILE_WORDS = {candidate.WEIGHTS_FILE: "weights file", candidate.VAL_PROBS_FILE:
               "validation table", candidate.TEST_PROBS_FILE: "test table"}


def redone_line(candidates_dir, trials, sweep: str, said=()) -> str | None:
    """The line tune says before it runs again the planned `trials` (ids) of `sweep` whose
    folder in `candidates_dir` holds a finished trial that is no longer whole
    (`candidate.Candidate.problems`: a file missing or damaged, or changed since tune wrote
    it), but those in `said` (ids its caller said already, "…; running tune again"):
    "tune probe: 1 trial redone, its weights file changed since tune wrote it:
    candidates/probe-0001-m1: weights.weights.h5 is not the one tune wrote (sha256 …)";
    several: "tune probe: 2 trials redone, whose files changed since tune wrote them or are
    missing or damaged: candidates/A: …; candidates/B: …". None when there is none (a trial
    never run, killed, or without a readable trial.json: said by its own reader). It was
    a line per trial and a count (three lines of one trial in a fit, with fit's)."""
    shown, why = [], []
    for trial in trials:
        if trial in said:
            continue
        found = candidate.read_candidate(candidates_dir, trial)
        if found is None or not found.problems:
            continue
        shown.append(f"candidates/{trial}: {'; '.join(found.problems)}")
        firsts = [p.split(" ", 1)[0] for p in found.changed]
        # A "written" record edited by hand is said of trial.json, not taken for a file name
        # ("its trial.json's changed since tune wrote it", 399's check).
        record = any(f.startswith(candidate.TRIAL_FILE) for f in firsts)
        names = [_FILE_WORDS.get(f, f) for f in firsts if not f.startswith(candidate.TRIAL_FILE)]
        if found.faults or not (names or record):
            why.append("its files are missing or damaged")
        elif record:
            why.append(f"its {candidate.TRIAL_FILE}'s \"written\" record is damaged (edited by "
                       "hand?)")
        else:
            why.append(f"its {' and '.join(names)} changed since tune wrote "
                       f"{'it' if len(names) == 1 else 'them'}")
    if not shown:
        return None
    what = (why[0] if len(why) == 1 else
            "whose files changed since tune wrote them or are missing or damaged")
    return f"tune {sweep}: {counted(len(shown), 'trial')} redone, {what}: {'; '.join(shown)}"
