"""What a run folder records of its exports (run.json's "export" section, RUN/export and the
recorded folder): where the last export went, whether it holds the current ensemble, another
run's export or an earlier ensemble's. `rundir.Run` takes these methods from `RunExports`;
they read run.json and ensemble.json through `Run.meta` and the paths `Run` names."""

import os

from hubensemble import formats
from hubensemble.exportfolder import other_run
from hubensemble.exportrecord import export_record, recorded_export
from hubensemble.ensemblefile import read_ensemble
from hubensemble.errors import RunError
from hubensemble.fileio import file_sha256
from hubensemble.text import absolute


def _export_section(meta) -> dict:
    """run.json's (`meta`) "export" section; {} when it holds none, or a value edited by hand
    into no JSON object (read as no export: it stopped `ensemble`, the summary and the report
    with "AttributeError: 'str' object has no attribute 'get'")."""
    record = meta.get("export") if isinstance(meta, dict) else None
    return record if isinstance(record, dict) else {}


class RunExports:
    """The export-record methods of `rundir.Run` (a mixin: it needs Run's `path`, `meta`,
    `ensemble_json` and `export`)."""

    def exported_to(self, meta=None) -> str | None:
        """Where the run's last export went (run.json "export"; `meta`: run.json already
        read): inside this folder when it was the run's own ("in_run"), so a copied run names
        its own export; else the absolute path recorded, unless this run is a copy of the one
        that wrote it (`exportrecord.recorded_export`: the export beside the copy, else
        None); None before any export. Absolute as the run folder was named, a link kept
        (text.absolute, as `export` prints)."""
        record = _export_section(self.meta() if meta is None else meta)
        path = record.get("path")  # (edited by hand into no string: not an older record's)
        if "in_run" not in record and isinstance(path, str) and (
                self._own_export_of_older_record(path)):
            return os.path.join(absolute(self.path), formats.EXPORT_DIR)
        return recorded_export(self.path, record)  # a copy: not the original's outside it

    def _own_export_of_older_record(self, path) -> bool:
        """Whether `path`, the export folder an older run.json records without "in_run"
        (written before c13ec39, 2026-12-03: the absolute path alone), is the RUN/export of
        the folder this run was copied or moved from: named RUN/export there, not here, and
        this run's own export/ holds the same export (the same metadata bytes; or the
        recorded folder is gone). A run of 679fffb copied elsewhere named the original's
        export, and `ensemble` advised `export --run COPY --out ORIGINAL/export`."""
        if not path or os.path.basename(os.path.normpath(path)) != formats.EXPORT_DIR:
            return False
        own = os.path.join(absolute(self.path), formats.EXPORT_DIR)
        if absolute(path) == own or not formats.is_export(own):
            return False
        if not os.path.exists(path):
            return True
        try:
            return (file_sha256(formats.metadata_path(path))
                    == file_sha256(formats.metadata_path(own)))
        except OSError:
            return False

    def current_export(self, meta=None) -> tuple[str | None, str | None]:
        """(PATH, None) for the first export holding ensemble.json's ensemble of the recorded
        one (`exported_to`) and RUN/export, else (None, PATH) for the first of an earlier
        ensemble, else (None, None). What shows "the export" names the current one, or the
        earlier one as such (a new-user check: fit's summary named a hand export of an
        earlier ensemble as the run's). The rule is `formats.export_members_differ`'s:
        members it cannot compare count as the same."""
        stale = None
        for path, differs in self._exports(meta):
            if differs is None:
                return path, None
            stale = stale or path
        return None, stale

    def stale_export(self, meta=None) -> tuple[str, tuple[list, list]] | None:
        """(PATH, (its trials, ensemble.json's)) when `current_export` names no export of this
        ensemble but PATH of an earlier one (`formats.export_members_differ`'s pair), else
        None: what `ensemble` warns of (the same rule as the summary and the report)."""
        stale = None
        for path, differs in self._exports(meta):
            if differs is None:
                return None
            stale = stale or (path, differs)
        return stale

    def _exports(self, meta=None):
        """(PATH, export_members_differ's answer against ensemble.json) for the recorded
        export (`exported_to`) and RUN/export holding a SavedModel, in that order. ensemble.json
        is read by `ensemblefile.read_ensemble`; one it refuses compares as none."""
        meta = self.meta() if meta is None else meta
        try:  # the one reader: a hand edit ("members" as names, no "trial") gave tracebacks
            members = (read_ensemble(self.path).get("members") if self.ensemble_json.exists()
                       else None)
        except RunError:  # none yet, damaged (its reader says so): nothing to compare
            members = None
        for path, skipped, there in (
                (self.exported_to(meta), _export_section(meta).get("skipped"), ""),
                (str(self.export), None, "saved_model.pb")):
            if path and os.path.exists(os.path.join(path, there)):
                done = formats.read_export_metadata(path, strict=False)
                if not other_run(done, self.path, meta, path):  # ours (export's rule)
                    yield path, formats.export_members_differ(done, members, skipped)

    def foreign_export(self, meta=None) -> tuple[str, str] | None:
        """(PATH, what it holds) when the recorded export folder (`exported_to`) now holds
        another run's export (`exportfolder.other_run`: "an export of another run (RUN2,
        other data)"), else None. The summary and the report say so; they called it "of an
        earlier ensemble" and advised evaluating it on this run's data (a new-user check: two
        fits with one --export)."""
        meta = self.meta() if meta is None else meta
        path = self.exported_to(meta)
        if not path or not os.path.exists(os.path.join(path, "saved_model.pb")):
            return None
        words = other_run(formats.read_export_metadata(path, strict=False), self.path, meta,
                          path)  # export's rule, an export copied along with the run its own
        return (path, words) if words else None

    def export_command(self, out=None, *flags: str, student: str | None = None) -> str:
        """The command that exports this run to `out` (a folder; None: its own), then
        `flags`, as the command line says it whoever called (the report gives commands):
        `export_words` on the command line, without its backquotes. It repeated the --out rule
        of `formats.export_command` without --student."""
        from hubensemble.lockwords import command_line

        with command_line():  # the command, not export_ensemble(…): the report's words
            words = self.export_words(out, student=student, flags=" ".join(flags))
        return words.removeprefix("`").removesuffix("`")

    def rank_words(self) -> str:
        """"run `hubensemble rank --catalogue FILE --data SPEC --out RUN`", or from Python
        "call run_rank(out_dir=…, specs=…, task=…)" (`lockwords.run_words`): the way to rank
        this run again, its catalogue and data as run.json records them
        (`rerun.rank_inputs`)."""
        from hubensemble.lockwords import run_words
        from hubensemble.rerun import rank_inputs, ranked_sources

        try:
            meta = self.meta()
        except RunError:  # run.json damaged: the placeholders
            meta = {}
        return run_words("rank", self.path, **rank_inputs(meta, ranked_sources(self.path)))

    def export_words(self, out=None, *, student: str | None = None, flags: str = "",
                     keywords: str = "") -> str:
        """The command that exports this run to `out` (a folder; None: its own) in the
        caller's words: `formats.export_command` of an export of this run (of `student`'s
        module, a student export, when given: --student MODULE, whose own folder is
        RUN/export-student), so --out (out_dir=) is named only for a folder other than the
        run's own, then `flags` (e.g. "--format tflite") on the command line, `keywords`
        (e.g. "export_format='tflite'") from Python. It had its own copy of the --out rule,
        without --student."""
        meta = {"run": {"path": os.fspath(self.path)}}
        if student:
            meta["student"] = {"module": student}
        return formats.export_command(meta, out, flags=flags, keywords=keywords)

    def exported_tflite(self, meta=None) -> str | None:
        """The TFLite model of the run's last export (run.json "export" "tflite"), beside
        `exported_to` as `export` writes it (OUT-tflite/), so a moved run names its own;
        None when that export wrote none."""
        meta = self.meta() if meta is None else meta
        tflite = _export_section(meta).get("tflite")
        model = tflite.get("model") if isinstance(tflite, dict) else None
        if not model or not isinstance(model, str):
            return None
        return os.path.join(f"{self.exported_to(meta)}-tflite", os.path.basename(model))

    def export_record(self, path) -> dict:
        """run.json's "export" record of an export written to `path`
        (`exportrecord.export_record`: "path", "in_run", and outside this folder "run" and
        "beside"), which `exported_to` reads."""
        return export_record(self.path, path)
