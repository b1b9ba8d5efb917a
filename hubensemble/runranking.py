"""What `rank` leaves in a run folder, as `rundir.Run` reads it: ranking.json (`ranking`),
what `tune` reads of it and run.json (`tune_inputs`) and the command that writes them again
(`rank_command`). `rundir.Run` takes these methods from `RunRanking`; split out of rundir.py
(its 700-line bound), no behaviour changed."""

from hubensemble.errors import RunError
from hubensemble.fileio import json_kind, read_json
from hubensemble.lockwords import command_words
from hubensemble.text import absolute, escaped


class RunRanking:
    """The ranking methods of `rundir.Run` (a mixin: it needs Run's `path`, `meta`,
    `meta_path`, `ranking_json` and `data_section`)."""

    def rank_command(self, shard: tuple[int, int] | None = None) -> str:
        """The `hubensemble rank` command line that writes this run's ranking (for errors), in
        the caller's words (`lockwords.command_words`: run_rank(out_dir=…) from Python), its
        catalogue and data as run.json records them (`rerun.rank_inputs`; FILE and SPEC
        where it does not); `shard` (i, n), 0 <= i < n: a shard's, with --shard i/n
        (shard=(i, n)), as `runspecs` names a shard's rank (it said FILE and SPEC there)."""
        from hubensemble.rerun import rank_inputs, ranked_sources

        try:
            meta = self.meta()
        except RunError:  # run.json damaged: the placeholders
            meta = {}
        inputs = rank_inputs(meta, ranked_sources(self.path))
        if shard is not None:
            inputs = dict(flags=f"{inputs['flags']} --shard {shard[0]}/{shard[1]}",
                          keywords=f"{inputs['keywords']}, shard=({shard[0]}, {shard[1]})")
        return command_words("rank", self.path, **inputs)

    def ranking(self) -> dict | None:
        """ranking.json as a dict whose "modules" is a list; None when it is missing. RunError
        naming the file and the rank command when it is unreadable or not a ranking."""
        if not self.ranking_json.exists():
            return None
        try:
            ranking = read_json(self.ranking_json)
        except ValueError as e:
            ranking = e
        rows = ranking.get("modules") if isinstance(ranking, dict) else None
        if not isinstance(rows, list):
            why = (f"{type(ranking).__name__}: {ranking}" if isinstance(ranking, ValueError)
                   else "not a ranking")
            raise RunError(f"{escaped(absolute(self.ranking_json))} is unreadable ({why}); "
                           f"{self.rank_command()} "
                           "writes it again (its embeddings are cached)")
        for i, row in enumerate(rows):  # every stage reads each row's name and status
            kind = (f"{json_kind(row)}, expected an object" if not isinstance(row, dict) else
                    next((f"its \"{k}\" is {json_kind(row.get(k))}, expected a string"
                          for k in ("name", "status") if not isinstance(row.get(k), str)), None))
            if kind:
                raise RunError(f"{escaped(absolute(self.ranking_json))} is damaged (module "
                               f"{i + 1} of \"modules\": "
                               f"{kind}); {self.rank_command()} writes it again (its "
                               "embeddings are cached)")
        return ranking

    def tune_inputs(self) -> tuple[dict, dict, dict]:
        """What `tune` reads, as `rank` left it: (ranking.json, run.json's "modules" {name:
        catalogue entry as JSON}, run.json's data "task" record). JSON only, no TensorFlow:
        the command line checks it first (`preflight`). RunError naming the missing or
        unreadable file and the command that writes it, or "modules" when it is no object
        (`runspecs.catalogue_entries`)."""
        ranking = self.ranking()
        if ranking is None:
            raise RunError(f"{escaped(absolute(self.ranking_json))} is missing; "
                           f"{self.rank_command()} writes it")
        if not self.meta_path.exists():
            raise RunError(f"{escaped(absolute(self.meta_path))} is missing (tune reads the "
                           "data and the modules "
                           f"from it); {self.rank_command()} writes it: copy it along with "
                           "ranking.json")
        meta = self.meta()
        data = self.data_section("task", meta=meta)
        if not data:
            raise RunError(f"{escaped(absolute(self.meta_path))} records no data (its "
                           "\"data\" section); "
                           f"{self.rank_command()} writes it")
        from hubensemble.datachange import require_validation

        require_validation(data["task"], run=self)
        from hubensemble.runspecs import catalogue_entries

        # "modules" edited into a list was read as a run without modules ("no catalogue
        # entry for …"): refused here, before TensorFlow, as every stage's reader refuses it
        return ranking, catalogue_entries(self, meta.get("modules")), data["task"]
