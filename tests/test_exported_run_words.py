"""The run an export's metadata names and the command that writes that export again, where
they are said: each reader goes through `formats.exported_run` (a "run" edited into a
string, a list or left out is no run, not an AttributeError) and each way on through
`formats.export_command` (--out DIR for an export written elsewhere than RUN/export)."""

import logging
import os

from hubensemble.text import absolute, shell


def test_an_old_exports_warning_names_the_folder_it_writes_again(tmp_path, caplog):
    """predict's warning about an export whose serve_bytes names no failed image gives the
    command that writes that folder again: for an export written with --out DIR, DIR (it
    named the run alone, whose command writes RUN/export and leaves DIR as it was)."""
    from hubensemble.prediction import _OldExport

    run, out = tmp_path / "run", tmp_path / "elsewhere"
    run.mkdir()
    for folder, named in ((out, True), (run / "export", False)):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            warn = _OldExport(folder, {"run": {"path": str(run)}})
            warn()
            warn()  # said once
        said = [r.getMessage() for r in caplog.records]
        assert len(said) == 1, said
        assert f"export_ensemble(run_dir={absolute(run)!r}" in said[0], said
        assert (f"out_dir={absolute(out)!r}" in said[0]) == named, said


def test_the_reports_ensemble_only_line_drops_an_earlier_versions_way_on(tmp_path,
                                                                         figures_not_drawn):
    """A robustness.json written by an earlier version, whose "best_single_missing" ended in
    its own way on, is shown as evaluate shows it (`evaluationtext.ensemble_only_note`): the
    note, then this run's commands once (it said the way on twice in one line)."""
    from test_report import fake_robustness, make_full_run, shown

    from hubensemble import report
    from hubensemble.evaluate import write_evaluation
    from hubensemble.evaluationtext import EXPORT_AGAIN
    from hubensemble.report.runfiles import load_run

    run = tmp_path / "run"
    make_full_run(run, robustness=False, seed=1)
    note = "the export has no serve_members signature"
    files = load_run(run)
    for legacy in (" (export it again with this hubensemble to compare with the best single "
                   "member)", " (export it again to compare with it)"):  # as they were stored
        write_evaluation({**fake_robustness(with_single=False), "best_single_way": EXPORT_AGAIN,
                          "best_single_missing": note + legacy}, run / "robustness.json")
        md = shown(report.write_report(run)[0].read_text())
        assert (f"Ensemble only: {note}. To compare with the best single member, run "
                f"`{files.cmd('export')}`, then `{files.cmd('evaluate')}`.") in md, md
        assert "export it again" not in md, md


#: Export metadata "run" records no reader may take for a run: edited by hand, or of another
#: maker (a string, a list, a number, a dict whose "path" is no string), or none at all.
NO_RUN = ("/some/run", ["/some/run"], 3, {"path": ["/some/run"], "created": "then"},
          {"path": 7}, {}, None)


def _with_run(record: dict, run) -> dict:
    """`record` with its "run" replaced by `run` (None: left out)."""
    record = {k: v for k, v in record.items() if k != "run"}
    return record if run is None else {**record, "run": run}


def test_evaluates_memory_note_is_said_whatever_run_the_metadata_names(tmp_path):
    """evaluate's memory note counts the export's members by the rule alone when its metadata
    names no readable run: a "run" edited into a string raised AttributeError, which the
    note took for a damaged file and said nothing (a 5-member export on a 2 GiB machine)."""
    import json

    from test_memory import GIB, _run_of

    from hubensemble import memory

    run = _run_of(tmp_path)
    metadata = run / "export" / "assets" / "hubensemble.json"
    members = {"members": [{"trial": f"t{i}", "module": "mobilenet", "input_size": [224, 224]}
                           for i in range(5)]}
    room = memory.Room(2 * GIB, "the cgroup limit in X")
    for named in NO_RUN:
        metadata.write_text(json.dumps(_with_run(members, named)))
        words = memory.stage_memory_note("evaluate", run / "export", {}, room=room)
        assert words and "evaluate runs the export's 5 members" in words, (named, words)


def test_whose_export_is_read_whatever_run_its_metadata_names(tmp_path):
    """The readers of whose an export is (exportfolder.other_run, owning_run_words,
    repoint_other_run, exportrun.export_not_run, export.adopt.fit_would_write) take a "run"
    record edited into a string, a list, a number, a path that is no string, or none, for
    no run: their words, not AttributeError or TypeError (a path edited into a list raised
    TypeError from os.path). A "task" edited into a string is no data, as "run" is no run."""
    import json

    from hubensemble.export.adopt import fit_would_write
    from hubensemble.exportfolder import other_run, owning_run_words, repoint_other_run
    from hubensemble.exportrun import export_not_run
    from hubensemble.formats import EXPORT_FORMAT, metadata_path
    from hubensemble.rundir import Run

    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"created": "now"}))
    export = tmp_path / "exp"
    os.makedirs(os.path.dirname(metadata_path(export)))
    members = [{"trial": "t", "module": "m"}]
    for named in NO_RUN:
        for task in ({"fingerprint": "f", "source": "npz:x"}, "npz:x"):
            record = _with_run({"format": EXPORT_FORMAT, "members": members, "task": task,
                                "made_from": {"ensemble": "sha"}}, named)
            created = isinstance(named, dict) and "created" in named
            # its "created" is not this run's: another run's, of which it names no path
            assert other_run(record, run, {"created": "now"}) == (
                "an export of the same data (its metadata names no run)" if created else None)
            word, _, supply = owning_run_words(record, Run(run), " --data SPEC")
            assert word == "RUN" and "RUN is the run folder that made it (its metadata " \
                "names none)" in supply, (named, supply)
            assert repoint_other_run(record, Run(run), str(export), str(tmp_path / "k")) == ""
            assert not fit_would_write(record, {"created": "then"}, "sha",
                                       {"members": members}, False)
            with open(metadata_path(export), "w") as f:
                json.dump(record, f)
            assert export_not_run(export) == (
                f"{absolute(export)} is a hubensemble export, not a run; pass the folder of "
                "the run it was exported from"), named


def test_a_runs_export_command_is_formats_rule_with_its_student(tmp_path):
    """Run.export_words and Run.export_command are `formats.export_command` of an export of
    the run: --out only for a folder other than the run's own (RUN/export; a student's,
    --student MODULE, RUN/export-student), in the caller's words (export_command: always
    the command line's, without backquotes, as the report gives commands). They had their
    own copy of the --out rule, without --student: a student export in RUN/export-student
    was told `--out RUN/export-student`, its callers adding --student by hand."""
    from hubensemble.formats import export_command
    from hubensemble.lockwords import command_line
    from hubensemble.rundir import Run

    run, out = tmp_path / "a run", tmp_path / "elsewhere"
    ensemble = {"run": {"path": str(run)}}
    student = {**ensemble, "student": {"module": "small net"}}
    for folder in (None, run / "export", run / "export-student", out):
        for meta, module in ((ensemble, None), (student, "small net")):
            with command_line():
                said = export_command(meta, folder, flags="--format tflite")
                assert Run(run).export_words(folder, student=module,
                                             flags="--format tflite") == said, (folder, module)
            assert Run(run).export_command(folder, "--format", "tflite", student=module) == (
                said.strip("`")), (folder, module)  # the command line's, called from Python
            assert Run(run).export_words(folder, student=module) == export_command(
                meta, folder)  # from Python: export_ensemble(run_dir=…, student=…, out_dir=…)
    with command_line():
        assert Run(run).export_words(run / "export-student", student="small net") == (
            f"`hubensemble export --run {shell(run)} --student 'small net'`")
    assert Run(run).export_command(out, "--retrain-full") == (
        f"hubensemble export --run {shell(run)} --out {shell(out)} --retrain-full")


def test_an_evaluation_follows_only_an_export_made_from_this_ensemble(tmp_path):
    """fit's reuse of an evaluation of its earlier export for the one it kept
    (`export.adopt.follow_evaluation`) reads the kept metadata's "made_from" as
    `fit_would_write` does: an export made from this very ensemble.json is followed, one
    whose "made_from" was edited into a string is not (it raised AttributeError there)."""
    import json

    from hubensemble.export.adopt import follow_evaluation
    from hubensemble.fileio import file_sha256
    from hubensemble.formats import metadata_path
    from hubensemble.rundir import Run
    from hubensemble.stagerecords import file_digest

    run, out = tmp_path / "run", tmp_path / "run" / "export"
    os.makedirs(os.path.dirname(metadata_path(out)))
    (run / "ensemble.json").write_text(json.dumps({"members": [{"trial": "t"}]}))
    sha, earlier = file_sha256(run / "ensemble.json"), "e" * 64
    evaluation = run / "robustness.json"
    members = [{"trial": "t", "module": "m", "weight": 1.0}]
    for made, followed in (({"ensemble": sha}, True), ("sha", False), (None, False)):
        evaluation.write_text(json.dumps({"export": {"metadata_sha256": earlier}}))
        (run / "run.json").write_text(json.dumps({"stages": {"evaluate": {
            "done": True, "digests": {"export": earlier, "evaluate": file_digest(evaluation)}}}}))
        with open(metadata_path(out), "w") as f:
            json.dump({"members": members, "made_from": made}, f)
        before = {"digests": {"export": earlier, "ensemble": sha}, "record": {"members": members}}
        assert follow_evaluation(Run(run), str(out), before, evaluation) is followed, made
