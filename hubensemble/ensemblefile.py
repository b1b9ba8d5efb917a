"""RUN/ensemble.json's one reader (`read_ensemble`): every stage and the report read the file
through it, so a file edited or damaged by hand is refused (or, for what only shows it,
passed over) in one set of words naming the file, the member and the command that writes it
again. Kept apart from `hubensemble.ensemble` so the run folder's own readers
(`runexports`, which `rundir.Run` takes its export methods from) may use it too."""

import math
import os

from hubensemble import candidate, fileio
from hubensemble.candidate import TRIAL_FILE
from hubensemble.errors import RunError
from hubensemble.formats import CANDIDATES_DIR, ENSEMBLE_FILE
from hubensemble.sweepwords import ensemble_words, sweep_command
from hubensemble.text import escaped, json_shown


def read_ensemble(run_dir) -> dict:
    """RUN/ensemble.json as a dict (see `EnsembleResult`); RunError naming the command when
    it does not exist (and `tune` before it when RUN/candidates holds no usable candidate, so a
    ranked run is not sent to `ensemble` only to be sent on to `tune`), cannot be read, or
    its members are not what the stages that read them need (`_members_problem`: edited or
    damaged) or a record they read as an object is not one (`_sections_problem`), naming the
    file, the member or record and the command that writes it again."""
    # Absolute: its words (missing, unreadable, a member) follow a relative --run too
    path = os.path.abspath(os.path.join(os.fspath(run_dir), ENSEMBLE_FILE))
    if not os.path.exists(path):
        first = ""
        found, _ = candidate.scan(os.path.join(os.fspath(run_dir), CANDIDATES_DIR))
        if not any(c.ok for c in found):
            first = (f", from the candidates that {sweep_command(run_dir)} writes "
                     "first (the run has no usable one yet)")
        raise RunError(f"{path} is missing; {ensemble_words(run_dir)} writes "
                       f"it{first}")
    try:
        record = fileio.read_json(path)
    except (OSError, ValueError) as e:  # JSONDecodeError, UnicodeDecodeError
        record = e
    if not isinstance(record, dict):
        why = record if isinstance(record, Exception) else "not a JSON object"
        raise RunError(f"{path} is unreadable ({why}); {ensemble_words(run_dir)} "
                       "writes it again")
    candidates_dir = os.path.abspath(os.path.join(os.fspath(run_dir), CANDIDATES_DIR))
    problem = (_members_problem(record.get("members"), candidates_dir)
               or _sections_problem(record))
    if problem:  # the words of the report's check of the file's kinds (report.checks)
        raise RunError(f"{path} is damaged ({problem}); {ensemble_words(run_dir)} "
                       "writes it again")
    return record


#: ensemble.json's records that the stages read as JSON objects, each when present and not
#: null (`_sections_problem`; the report checks these and more, report.checks.ENSEMBLE_KINDS).
OBJECT_RECORDS = (("val",), ("val", "best_single"), ("val", "best_single_in_budget"),
                  ("test",), ("test", "ensemble"), ("test", "best_single"),
                  ("test", "best_single_in_budget"), ("cost",), ("cost", "ensemble"),
                  ("limits",), ("size_rule",))


def _sections_problem(record: dict) -> str | None:
    """What in ensemble.json (`record`) is no JSON object of the records the stages read as
    one (`OBJECT_RECORDS`), outer first, as the report's check words it ('its "test" is a
    JSON string, expected an object'), or None. They read them with `.get(...) or {}`: a hand
    edit was an AttributeError traceback in distill, and in export --retrain-full only after
    its members were retrained."""
    for path in OBJECT_RECORDS:
        value = record
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None and not isinstance(value, dict):
            return f"its \"{'.'.join(path)}\" is {fileio.json_kind(value)}, expected an object"
    return None


def _weight_fits(weight) -> bool:
    """Whether a member's "weight" (from JSON) is a number >= 0 and finite: not a bool, and
    an integer past a float's range (10**400: math.isfinite's OverflowError) is not."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        return False
    try:
        return math.isfinite(weight) and weight >= 0
    except OverflowError:
        return False


def _members_problem(members, candidates_dir) -> str | None:
    """What is wrong with ensemble.json's "members" for the stages that read them (export,
    distill, report), or None: a list of objects, each "trial" a folder name of
    RUN/candidates (no path, distinct), "module" (when there) a name that, when the trial's
    record exists, is its trial.json's (else export built one module with another's head),
    "weight" (when there: read as 1 otherwise) a number >= 0 and finite, not all 0. No list
    or an empty one is the export's to refuse. A hand edit gave tracebacks (AttributeError,
    float()) or, with "trial": "../x", export advice to delete RUN/candidates/../x."""
    if members is None:
        return None  # none listed: as an empty list, the export's to refuse
    if not isinstance(members, list):
        return f'its "members" is {fileio.json_kind(members)}, expected an array'
    seen, weights = {}, []
    for i, m in enumerate(members):
        if not isinstance(m, dict):
            return f"its member {i} is {fileio.json_kind(m)}, expected an object"
        trial, module, weight = m.get("trial"), m.get("module"), m.get("weight", 1)
        if (not isinstance(trial, str) or trial in ("", ".", "..")
                or any(sep and sep in trial for sep in ("/", "\\", os.sep, os.altsep))):
            return (f"member {i}'s \"trial\" {trial!r} is not the name of a folder of "
                    f"{escaped(candidates_dir)}")
        if trial in seen:
            return f"member {i}'s \"trial\" {trial!r} is member {seen[trial]}'s too"
        seen[trial] = i
        if "module" in m and (not isinstance(module, str) or not module):
            return f"member {i}'s \"module\" is {fileio.json_kind(module)}, expected a module name"
        if not _weight_fits(weight):  # the options table's words for a number's rule
            return (f"member {i}'s \"weight\" is {json_shown(weight)}, expected a number >= 0 "
                    "and finite")
        weights.append(weight)
        cand = candidate.read_candidate(candidates_dir, trial)
        if module is not None and cand is not None and cand.module and cand.module != module:
            return (f"member {i}'s \"module\" {module!r} is not {cand.module!r}, which "
                    f"{escaped(os.path.join(candidates_dir, trial, TRIAL_FILE))} records")
    if weights and not sum(weights) > 0:
        return "every member's \"weight\" is 0"
    return None
