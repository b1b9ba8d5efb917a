"""The ranking record: ranking.json / ranking.csv (`Ranking`, `load_ranking`) and the selection
rule in the caller's words (`rule_text`)."""

from __future__ import annotations

import dataclasses

from hubensemble import options
from hubensemble.csvcells import csv_text
from hubensemble.errors import RunError, checks_keywords
from hubensemble.fileio import atomic_write_json, atomic_write_text
from hubensemble.knnchance import modules_at_chance
from hubensemble.lockwords import on_command_line, option_word
from hubensemble.rank.rownotes import row_notes
from hubensemble.text import absolute, counted, escaped

#: The columns every ranking row has (other tools read these; never rename them).
ROW_KEYS = ("name", "handle", "status", "reason", "score", "dim", "examples", "seconds",
            "cache_hit")
#: Extra columns written to ranking.csv after ROW_KEYS.
EXTRA_KEYS = ("stage", "family", "architecture", "resolution", "value_range", "fingerprint",
              "index", "notes")


def duplicates_apart(rows) -> tuple[list[dict], list[dict]]:
    """(duplicates, failed): the ranking rows that are not ok (`rows`: a Ranking's
    `failed_rows`) split by stage. An entry refused as a duplicate of an earlier one (stage
    "duplicate": the same files or embeddings, `rank.ranking._duplicate`) was ranked, under
    that entry; the rest could not be ranked. The one rule of rank's table, fit's selection
    line and the report (`report.failures.split_unranked`), which said a duplicate
    "failed"."""
    rows = list(rows)
    return ([r for r in rows if r.get("stage") == "duplicate"],
            [r for r in rows if r.get("stage") != "duplicate"])


def not_ranked_warning(row: dict, name: str) -> str:
    """The warning rank logs as a row that is not ok ends (`name`: its module's name as shown):
    "module NAME failed: REASON", or, for a duplicate (`duplicates_apart`'s rule),
    "module NAME is ranked as an earlier entry (a duplicate): REASON" - the summary under
    rank's table lists it as a duplicate, and the warning said it "failed"."""
    twin = bool(duplicates_apart([row])[0])
    return (f"module {name} {'is ranked as an earlier entry (a duplicate)' if twin else 'failed'}"
            f": {row['reason']}")


def failed_counted(rows) -> list[str]:
    """The count of ranking rows that are not ok (`rows`: a Ranking's `failed_rows`), the
    duplicates apart (`duplicates_apart`): ["1 ranked as an earlier entry (a duplicate)",
    "2 failed"], [] for none. One wording for rank's table, fit's selection line and the
    report's counts."""
    twins, failed = (len(part) for part in duplicates_apart(rows))
    return [f"{n} {what}" for n, what in (
        (twins, "ranked as an earlier entry (a duplicate)" if twins == 1
         else "ranked as earlier entries (duplicates)"),
        (failed, "failed")) if n]


def rule_text(selection: dict, *, empty: str = "?") -> str:
    """A selection record ({"rule": "top_k", "top_k": 2}, as stored: `selection_rule`) in the
    caller's words (`lockwords.on_command_line`): the rank flags that give it on the command
    line ("--top-k 2", "--threshold 0.02 --max-k 15", "--greedy --max-k 15"), the keywords
    from Python ("top_k=2", "threshold=0.02, max_k=15", "greedy=True, max_k=15"); a rule of
    no known kind as stored ("name k=v"); `empty` for an empty one. The rank summary said
    "selected (top_k=1; …)" to a command line's user, who typed --top-k 1."""
    if not selection:
        return empty
    keys = {"top_k": ("top_k",), "threshold": ("threshold", "max_k"),
            "greedy": ("greedy", "max_k")}.get(selection.get("rule"))
    if keys is None or not all(k in selection for k in keys if k != "greedy"):
        rule = ", ".join(f"{k}={v}" for k, v in selection.items() if k != "rule")
        return f"{selection.get('rule', '?')} {rule}".strip()
    values = {**selection, "greedy": True}
    if not on_command_line():
        return ", ".join(f"{key}={values[key]!r}" for key in keys)
    return " ".join(options.get(key).cli_flags[0] if key == "greedy" else
                    f"{options.get(key).cli_flags[0]} {values[key]}" for key in keys)


# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Ranking:
    """ranking.json: one row per module (best first, failed last) and the selected names."""

    metric: str
    k: int
    rows: list[dict]
    selected: list[str]
    selection: dict = dataclasses.field(default_factory=dict)
    shard: tuple[int, int] | None = None
    data_fingerprint: str = ""
    profile: str = ""
    # The profile's definition as ranked (Profile.to_json); None in an older ranking.json.
    profile_definition: dict | None = None
    resolution: tuple[int, int] | None = None  # for entries without their own input_size
    split: str = "train"
    examples: int = 0
    catalogue: dict = dataclasses.field(default_factory=dict)  # {"size", "fingerprint"}
    merged_from: list[str] | None = None
    # kNN metrics: the accuracy of always answering the most common training class; a module
    # scoring no more tells these classes apart no better than its absence would.
    chance: float | None = None

    @property
    def ok_rows(self) -> list[dict]:
        """The rows with status "ok", best first."""
        return [r for r in self.rows if r["status"] == "ok"]

    @property
    def failed_rows(self) -> list[dict]:
        """The rows of modules that could not be ranked (status "failed")."""
        return [r for r in self.rows if r["status"] != "ok"]

    def scores(self) -> dict[str, float]:
        """{module name: proxy score} of the ok rows."""
        return {r["name"]: r["score"] for r in self.ok_rows}

    def row(self, name) -> dict:
        """The row of module `name`; KeyError when it is not in the ranking."""
        for r in self.rows:
            if r["name"] == name:
                return r
        raise KeyError(f"no module {name!r} in the ranking")

    def to_json(self) -> dict:
        """The ranking.json document (rows under "modules")."""
        return {"metric": self.metric, "k": self.k, "modules": self.rows,
                "selected": list(self.selected), "selection": self.selection,
                "shard": list(self.shard) if self.shard else None,
                "data_fingerprint": self.data_fingerprint, "profile": self.profile,
                "profile_definition": self.profile_definition,
                "resolution": list(self.resolution) if self.resolution else None,
                "split": self.split, "examples": self.examples, "catalogue": self.catalogue,
                "merged_from": self.merged_from, "chance": self.chance}

    @classmethod
    def from_json(cls, d) -> "Ranking":
        """The Ranking of a ranking.json document; KeyError/ValueError when it is not one."""
        return cls(metric=d["metric"], k=int(d["k"]), rows=list(d["modules"]),
                   selected=list(d["selected"]), selection=d.get("selection") or {},
                   shard=tuple(d["shard"]) if d.get("shard") else None,
                   data_fingerprint=d.get("data_fingerprint", ""),
                   profile=d.get("profile", ""),
                   profile_definition=d.get("profile_definition"),
                   resolution=tuple(d["resolution"]) if d.get("resolution") else None,
                   split=d.get("split", "train"), examples=int(d.get("examples", 0)),
                   catalogue=d.get("catalogue") or {}, merged_from=d.get("merged_from"),
                   chance=d.get("chance"))

    def __repr__(self) -> str:
        # One line (as Task's and FitResult's): the dataclass repr printed every row, with its
        # handle, fingerprint and source, about 1,000 characters a module (a notebook cell
        # echoing run_rank's result); `summary()` has the table, `rows` the records.
        shard = "" if self.shard is None else f", shard={self.shard!r}"
        return (f"Ranking(metric={self.metric!r}, k={self.k}, {len(self.ok_rows)} ranked, "
                f"{len(self.failed_rows)} failed, selected={self.selected!r}, "
                f"profile={self.profile!r}, examples={self.examples}{shard})")

    def summary(self, limit=20) -> str:
        """A plain-text table for people: the best `limit` modules, then every failure, the
        count ranked and failed, the modules scoring no more than `chance`, and the notes
        of those whose load warned of what their score means (`rownotes`, short)."""
        chosen = set(self.selected)
        lines = [f"{'#':>3}  {'module':<40} {self.metric:>10} {'dim':>6} {'cache':>5} "
                 f"{'sec':>7}"]
        for i, r in enumerate(self.ok_rows[:limit], 1):
            mark = "*" if r["name"] in chosen else " "
            lines.append(f"{i:>3}{mark} {r['name'][:40]:<40} {r['score']:>10.4f} "
                         f"{r['dim']:>6} {'hit' if r['cache_hit'] else 'miss':>5} "
                         f"{r['seconds']:>7.1f}")
        if len(self.ok_rows) > limit:
            lines.append(f"     … {len(self.ok_rows) - limit} more in ranking.json")
        # An entry refused as a duplicate of an earlier one was ranked, under that entry:
        # said apart, not as a module that failed.
        twins, _ = duplicates_apart(self.failed_rows)
        for r in self.failed_rows:
            lines.append(f"  {'duplicate' if r in twins else 'failed'} {_named(r)}: "
                         f"{r['reason']}")
        apart = (f"; {', '.join(failed_counted(self.failed_rows))} (above)"
                 if self.failed_rows else "")
        lines.append(f"ranked {len(self.ok_rows)} of {counted(len(self.rows), 'module')}{apart}")
        useless = modules_at_chance(self)  # the one rule (`knnchance`), as fit's words use
        if useless:
            picked = [n for n in useless if n in chosen]
            lines.append(
                f"at chance level (score <= {self.chance:.4f}, always the most common class): "
                f"{', '.join(useless[:10])}{' …' if len(useless) > 10 else ''}; their "
                "embeddings do not separate these classes" + (
                    f"; the selection rule took {', '.join(picked)} all the same (leave "
                    f"it out with {option_word('--modules', 'modules')}, or a tighter "
                    f"{option_word('--top-k', 'top_k')})" if picked else ""))
        noted = [f"{r['name']}: {'; '.join(row_notes(r, short=True))}" for r in self.ok_rows
                 if row_notes(r)]  # said once as each module loaded, far above the table
        if noted:
            lines.append(f"notes (ranking.json \"notes\", with their fix): {'; '.join(noted)}")
        lines.append(f"selected ({rule_text(self.selection)}; * above): "
                     f"{', '.join(self.selected) or 'none'}")
        return "\n".join(lines)

    def to_csv(self) -> str:
        """ranking.csv: ROW_KEYS then EXTRA_KEYS, one line per row, resolution as HxW, the
        notes (`rownotes.row_notes`) joined by "; "; by
        `csvcells.csv_text`, so the text starts with `csvcells.BOM` (read the file with
        `csvcells.ENCODING`) and a catalogue's name or handle starting with "=", "+", "-" or
        "@" is written with a "'" before it, shown as text by a spreadsheet program
        (`csvcells.read_rows` / `read_cell` read it back)."""
        rows = []
        for row in self.rows:
            out = dict(row)
            if isinstance(out.get("resolution"), (list, tuple)):
                out["resolution"] = "x".join(str(v) for v in out["resolution"])
            out["notes"] = "; ".join(row_notes(row)) or None  # a list: one cell
            rows.append([out.get(k) for k in ROW_KEYS + EXTRA_KEYS])
        return csv_text(ROW_KEYS + EXTRA_KEYS, rows)

    def write(self, out_dir):
        """Writes ranking.json and ranking.csv into the run folder `out_dir`, atomically."""
        from hubensemble.rundir import Run

        run = Run(out_dir)
        atomic_write_json(run.ranking_json, self.to_json())
        atomic_write_text(run.ranking_csv, self.to_csv())

    def selection_words(self, named=3) -> str:
        """One line for fit's log and terminal once its rank stage has run ("rank: selected by
        --top-k 1: a 0.9312; left out 1: b 0.8870; 1 failed (warned above)"): the selected
        modules with their scores (`metric`, as in ranking.json: higher is better), the rule
        that took them (`rule_text`, in the caller's words), the ok modules it left out, the
        first `named` (int >= 0) by name and score, best first, and the count of failed ones,
        which rank warned of one by one, then the modules at chance (`knnchance.chance_words`:
        "…; all 2 ranked modules are at chance level (score <= 0.9494, …)"). `summary()` is
        rank's own table."""
        chosen = set(self.selected)
        scores = self.scores()

        def scored(name):
            return f"{name} {scores[name]:.4f}" if name in scores else name

        left = [r["name"] for r in self.ok_rows if r["name"] not in chosen]
        words = (f"rank: selected by {rule_text(self.selection)} ({self.metric}): "
                 f"{', '.join(scored(n) for n in self.selected) or 'none'}")
        if left:
            more = len(left) - named
            words += (f"; left out {len(left)}: {', '.join(scored(n) for n in left[:named])}"
                      + (f", … {more} more in ranking.csv" if more > 0 else ""))
        if self.failed_rows:
            words += f"; {', '.join(failed_counted(self.failed_rows))} (warned above)"
        from hubensemble.knnchance import chance_words

        at_chance = chance_words(self, named)  # as summary() says it; fit shows no table
        return words + (f"; {at_chance}" if at_chance else "")


@checks_keywords
def load_ranking(run_dir) -> Ranking:
    """The Ranking of a run directory `run_dir` (str or os.PathLike; `Run.ranking` reads
    ranking.json, as tune does). TypeError for another type, OptionError for ""
    (`stageargs.folder`, as every stage function's folder); RunError naming the file and the
    rank command that writes it when it is missing, unreadable or not a ranking hubensemble
    wrote."""
    from hubensemble import stageargs
    from hubensemble.rundir import Run

    run = Run(stageargs.folder("load_ranking", "run_dir", run_dir))
    document = run.ranking()
    # Named absolute (its rank command beside it is) and on one line (`text.escaped`).
    named = escaped(absolute(run.ranking_json))
    if document is None:
        raise RunError(f"{named} is missing; {run.rank_command()} writes it")
    try:
        return Ranking.from_json(document)
    except (ValueError, KeyError, TypeError) as e:
        raise RunError(f"{named} is unreadable (not a ranking hubensemble wrote: "
                       f"{type(e).__name__}: {e}); {run.rank_command()} writes it again (its "
                       "embeddings are cached)") from None


def _named(row):
    # A failed module's name with its catalogue entry's file:line (rows of rankings written
    # before `source` was recorded have none), so "fix these catalogue entries" says where.
    return f"{row['name']} ({row['source']})" if row.get("source") else row["name"]
