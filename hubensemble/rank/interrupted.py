"""A ranking that stopped before it ended (Ctrl-C, SIGTERM, kill -9: the OOM killer), told by
the next ranking of the run folder: what that one kept of it and what it did again.

Nothing of a ranking is in the run folder before its end (ranking.json, written last, says it
is done); the embeddings of the modules it finished are in the embedding cache, which the next
ranking reads. That one reused them and embedded the rest again without a word (the
summary's hit/miss column alone). run.json's RANK_RUNNING record, written as a ranking begins
(`begin`) and removed with its result (`end`), tells the next one that the last stopped;
`kept_words` then says once, with counts, what it reused. No TensorFlow.
"""

from __future__ import annotations

from hubensemble.text import absolute, counted, escaped, names_listed, shown_time, time_stamp

#: run.json's record of a ranking begun and not ended: {"started": its time_stamp,
#: "modules": how many it ranks}.
RANK_RUNNING = "rank_running"


def begin(run, total: int) -> dict | None:
    """Records in run `run`'s run.json (through `Run.modify`, atomic under its lock) that a
    ranking of `total` modules (int >= 0) begins now; returns the RANK_RUNNING record a
    ranking before it left there (it stopped before it ended), else None (a record edited
    into another form: as none)."""
    found = []

    def change(meta):
        old = meta.get(RANK_RUNNING)
        found.append(old if isinstance(old, dict) else None)
        meta[RANK_RUNNING] = {"started": time_stamp(), "modules": int(total)}

    run.modify(change)
    return found[0]


def end(meta: dict) -> None:
    """Removes the RANK_RUNNING record from run.json `meta` (a dict, changed in place), in the
    change that records the ranking's result (`Run.modify`)."""
    meta.pop(RANK_RUNNING, None)


def kept_words(earlier: dict, rows, run_dir, *, use_cache: bool = True) -> str:
    """rank's one line, after its modules, when the ranking before it in folder `run_dir`
    stopped before it ended (`earlier`: its RANK_RUNNING record, `begin`): "rank: the last
    ranking of RUN (5 modules, begun 2026-12-07 12:40:03+00:00) stopped before it ended; this
    one reused the embeddings of 2 modules (a, b) from the embedding cache and embedded 3
    again (c, d, e); every module is scored again". `rows`: this ranking's rows
    (ranking.json's: "name", "cache_hit" True / False, None when it has no embeddings,
    said by its "stage" (`NOT_EMBEDDED`): "; 2 entries not embedded, duplicates of earlier
    ones (m-b, m-c); 1 module not embedded, its local path missing (m-d); 1 module could
    not be embedded (m-e)"; a resumed rank with one handle twice said the duplicate "could
    not be embedded", a new user's check). `use_cache` False (--no-cache): nothing is kept,
    said so. Names are listed up to 5 (`text.names_listed`); RUN absolute
    (`text.absolute`)."""
    total, started = earlier.get("modules"), earlier.get("started")
    what = ", ".join(filter(None, (
        counted(total, "module") if isinstance(total, int) and not isinstance(total, bool)
        else None, f"begun {shown_time(started)}" if isinstance(started, str) else None)))
    said = (f"rank: the last ranking of {escaped(absolute(run_dir))}"
            + (f" ({what})" if what else "") + " stopped before it ended; ")
    reused = [r["name"] for r in rows if r.get("cache_hit") is True]
    again = [r["name"] for r in rows if r.get("cache_hit") is False]
    without = [r for r in rows if r.get("cache_hit") is None]
    if not use_cache:
        said += "this one kept nothing of it (the embedding cache is off)"
    elif reused:
        said += (f"this one reused the embeddings of {counted(len(reused), 'module')} "
                 f"({names_listed(reused, 5)}) from the embedding cache")
    else:
        said += "this one found none of its embeddings in the embedding cache"
    if again:
        said += f" and embedded {len(again)} again ({names_listed(again, 5)})"
    for stage, words in NOT_EMBEDDED.items():
        names = [r["name"] for r in without if r.get("stage") == stage]
        if names:
            noun = ("entry", "entries") if stage == "duplicate" else ("module", None)
            said += (f"; {counted(len(names), *noun)} {words[len(names) > 1]} "
                     f"({names_listed(names, 5)})")
    failed = [r["name"] for r in without if r.get("stage") not in NOT_EMBEDDED]
    if failed:
        said += (f"; {counted(len(failed), 'module')} could not be embedded "
                 f"({names_listed(failed, 5)})")
    return said + "; every module is scored again"


#: What `kept_words` says of the rows without embeddings by their "stage" (singular,
#: plural); any other stage: "could not be embedded" (it failed loading or embedding).
NOT_EMBEDDED = {"duplicate": ("not embedded, a duplicate of an earlier one",
                              "not embedded, duplicates of earlier ones"),
                "local path": ("not embedded, its local path missing",
                               "not embedded, their local paths missing")}
