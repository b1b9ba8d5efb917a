"""The stages after rank as a hand edit or a Python caller meets them: run.json's catalogue
entries read as ModuleSpecs (`runspecs`), its tune record's profile (`runprofile.run_profile`)
and stage records, each refused in one line naming run.json, the field (the module, the trial)
and the way on; a stage function's unknown keyword named with the function."""

import json
import re

import pytest

from hubensemble.catalogue import ModuleSpec
from hubensemble.errors import RunError
from hubensemble.rundir import Run
from hubensemble.runspecs import catalogue_entries, module_spec, module_specs

ENTRY = {"name": "m", "handle": "/modules/m", "output_dim": 8}


def run_with(tmp_path, modules):
    (tmp_path / "run.json").write_text(json.dumps({"modules": modules}))
    return Run(tmp_path)


def test_entries_read_as_the_catalogue_reads_them(tmp_path):
    run = run_with(tmp_path, {"m": ENTRY})
    assert module_specs(run) == {"m": ModuleSpec.from_json(ENTRY)}
    assert module_spec(run, "m", "t1") == ModuleSpec.from_json(ENTRY)
    assert catalogue_entries(Run(tmp_path / "none")) == {}


@pytest.mark.parametrize("modules, name, said", [
    ({"m": "m"}, "m", r"the catalogue entry of module 'm' \(trial t1\) is damaged \(a JSON "
                      r"string, expected an object\)"),
    ({"m": {**ENTRY, "colour": 1}}, "m", r"the catalogue entry of module 'm' \(trial t1\) is "
                                         r"damaged \(unknown ModuleSpec field 'colour'"),
    ({"m": {**ENTRY, "output_dim": "eight"}}, "m", r"module 'm' \(trial t1\) is damaged"),
    ([ENTRY], "m", r"its \"modules\" record is a JSON array, expected an object"),
    ({"m": ENTRY}, "n", r"has no catalogue entry for module 'n' \(trial t1\)"),
])
def test_a_hand_edit_is_named_with_the_file_and_the_way_on(tmp_path, modules, name, said):
    """Before, each stage parsed the entries itself: a string entry was a ValueError
    traceback, and "modules" a list an AttributeError (tune) or "no entry" (export)."""
    run = run_with(tmp_path, modules)
    where = re.escape(str((tmp_path / "run.json").resolve()))
    with pytest.raises(RunError, match=rf"^{where}.*{said}.*; (restore run\.json from a copy, "
                                       r"or )?.*rank.* again$"):
        module_spec(run, name, "t1")
    if name == "m":
        with pytest.raises(RunError, match=where):
            module_specs(run)


@pytest.mark.parametrize("tune, said", [
    ({"profile": "quick"}, r'the "profile" of its "tune" record is a JSON string'),
    (["x"], r'"tune" is a JSON array')])
def test_a_hand_edited_tune_record_names_run_json_for_the_runs_profile(tmp_path, tune, said):
    """runprofile.run_profile, which tune, rank and fit ask for the run's profile, raised
    AttributeError on "tune": {"profile": "quick"} or "tune": ["x"]: it names run.json and the
    field now, as it did a profile record it could not read. Fails before: AttributeError."""
    from hubensemble.runprofile import run_profile

    (tmp_path / "run.json").write_text(json.dumps({"tune": tune}))
    with pytest.raises(RunError, match=rf"run\.json: {said}, expected an object; restore "):
        run_profile(Run(tmp_path))


@pytest.mark.parametrize("meta", [{"stages": "x"}, {"stages": {"export": ["x"]}},
                                  {"stages": {"export": {"done": True}}, "export": "y"}])
def test_fits_check_of_an_older_export_reads_a_hand_edited_record_as_none(tmp_path, meta):
    """fit's check whether the export it finds is its own older one read run.json's
    "stages" and "export" without asking their kind: a hand edit stopped it with
    AttributeError. It reads them as the stage records' one reader does (not read, said) and
    finds no export of its own. Fails before: AttributeError."""
    from hubensemble.exportfolder import older_fits_own_export

    (tmp_path / "run.json").write_text(json.dumps(meta))
    assert older_fits_own_export(Run(tmp_path), str(tmp_path / "export"),
                                 {"members": [], "created": "x"}) is None


def test_a_stage_functions_unknown_keyword_names_the_function(tmp_path):
    """merge_rankings(shards, out, k=3) and run_tune(run, bogus=1) said only "got an
    unexpected keyword argument 'k'": the stage decorators bind the call first and bind's
    words name no function, where Python's own call does. Fails before: no name."""
    from hubensemble.rank import merge_rankings
    from hubensemble.tune import run_tune

    with pytest.raises(TypeError, match=r"^merge_rankings\(\) got an unexpected keyword "
                                        r"argument 'k'; it takes shard_dirs, out_dir, top_k, "
                                        r"threshold, max_k, greedy$"):
        merge_rankings([str(tmp_path / "s")], str(tmp_path / "o"), k=3)
    with pytest.raises(TypeError, match=r"^run_tune\(\) got an unexpected keyword argument "
                                        r"'bogus'; it takes run_dir, sweep, budget, "):
        run_tune(str(tmp_path), bogus=1)
    assert not (tmp_path / "o").exists()


# A run as tune and ensemble leave it (test_report's writers: no module, no TensorFlow), its
# catalogue entries in run.json and a cost record per candidate, edited by hand below.
DAMAGE = {"an array": ([], r'its "modules" record is a JSON array, expected an object'),
          "a string": ("x", r'its "modules" record is a JSON string, expected an object'),
          "an entry": ({"alpha": 3}, r"the catalogue entry of module 'alpha' is damaged "
                                     r"\(a JSON number, expected an object\)")}


@pytest.fixture(scope="module")
def ensembled(tmp_path_factory):
    from test_report import C, MODULES, make_full_run

    from hubensemble.candidate import scan
    from hubensemble.cost import Cost, machine_info, write_run_costs

    path = tmp_path_factory.mktemp("runspecs") / "run"
    make_full_run(path, robustness=False)
    run = Run(path)
    run.update(modules={n: {"name": n, "handle": f"/zoo/{n}", "output_dim": 8}
                        for n in MODULES})
    write_run_costs(path, {c.trial: Cost(c.module, None, 32, C, macs=10 ** 8, params=1000)
                           for c in scan(run.candidates)[0] if c.ok}, machine_info())
    return path


def edited(ensembled, tmp_path, damage):
    """A copy of the `ensembled` run whose run.json "modules" a hand edit made `damage`
    (a DAMAGE key): a whole record of another kind, or alpha's entry (a member's) a number."""
    import shutil

    path = tmp_path / "run"
    shutil.copytree(ensembled, path)
    meta = json.loads((path / "run.json").read_text())
    modules = DAMAGE[damage][0]
    meta["modules"] = {**meta["modules"], **modules} if isinstance(modules, dict) else modules
    (path / "run.json").write_text(json.dumps(meta))
    return path


def _tune(path):  # tune.stage._load_inputs, without importing TensorFlow
    run = Run(path)
    _, modules, _ = run.tune_inputs()  # the command line's check before TensorFlow too
    module_specs(run, modules)


def _ensemble(path):
    from hubensemble.ensemble import run_ensemble

    run_ensemble(path, budget=6)


def _distill_student(path):
    from hubensemble.distillchoice import check_student

    check_student(path, "alpha")


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("stage", [_tune, _ensemble, _distill_student],
                         ids=["tune", "ensemble", "distill-student"])
def test_a_stage_that_reads_the_entries_refuses_a_hand_edit_in_runspecs_words(
        ensembled, tmp_path, stage, damage):
    """Before, each read `meta.get("modules") or {}`: "modules": [] was a run without modules
    to tune (its refusal: "no catalogue entry for alpha, …"), the ensemble counted every
    member as sharing a backbone with no one (all three edits, silently), and distill's
    --student check said 'alpha' was no module of the run ([], "x") or let a damaged entry
    by to fail after TensorFlow had loaded. Now each refuses before TensorFlow, naming run.json
    (absolute) and the way on, as export does. Fails before: no RunError, or other words."""
    path = edited(ensembled, tmp_path, damage)
    where = re.escape(str((path / "run.json").resolve()))
    with pytest.raises(RunError, match=rf"^{where}:? .*{DAMAGE[damage][1]}.*; restore run\.json "
                                       r"from a copy, or .*rank.* again$"):
        stage(path)


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_rank_merge_refuses_a_shards_hand_edited_entries(tmp_path, damage):
    """rank merge copied each shard's "modules" into the merged run.json as it found it:
    [] merged as no entries, "x" was a ValueError traceback (dict.update), and a damaged entry
    was copied on for tune and export to refuse. It refuses the shard's run.json now, before
    --out is made, its way on the shard's rank with its shard (without, it ranked a whole
    ranking, which the merge refuses). Fails before: no RunError (or ValueError)."""
    from test_report import data_section

    from hubensemble.rank import Ranking
    from hubensemble.rank.merge import check_shards

    shards = [tmp_path / f"s{i}" for i in range(2)]
    for i, (d, name) in enumerate(zip(shards, ("alpha", "beta"))):
        row = {"name": name, "handle": f"/zoo/{name}", "status": "failed", "reason": "gone",
               "score": None, "dim": None, "examples": None, "seconds": 0.1, "index": i}
        Ranking(metric="knn", k=1, rows=[row], selected=[], shard=(i, 2),
                selection={"rule": "top_k", "top_k": 1}, examples=90).write(d)
        Run(d).update(data=data_section(), modules={name: {**ENTRY, "name": name}})
    meta = json.loads((shards[0] / "run.json").read_text())
    modules = DAMAGE[damage][0]
    meta["modules"] = {**meta["modules"], **modules} if isinstance(modules, dict) else modules
    (shards[0] / "run.json").write_text(json.dumps(meta))
    where = re.escape(str((shards[0] / "run.json").resolve()))
    with pytest.raises(RunError, match=rf"^{where}:? .*{DAMAGE[damage][1]}.*; restore run\.json "
                                       r"from a copy, or call run_rank\(.*shard=\(0, 2\)\) again$"):
        check_shards(shards, tmp_path / "merged")
    assert not (tmp_path / "merged").exists()


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_the_readers_that_go_on_read_a_hand_edit_as_no_entry_and_say_so(
        ensembled, tmp_path, caplog, damage):
    """The readers that go on past a hand edit read run.json's entries through
    `runspecs.readable_entries`: the command words of a refusal (start again: a list or a
    string was an AttributeError traceback in place of the refusal's own words) give
    FILE for the catalogue; a new ranking of the folder (`check_tuned_modules`: an
    AttributeError, a TypeError on a number) warns, naming run.json, that it cannot compare
    the entries the candidates were tuned from, and goes on. Fails before: AttributeError /
    TypeError."""
    import logging

    from test_report import MODULES

    from hubensemble.rank.pool import check_tuned_modules
    from hubensemble.rerun import fit_command, start_again

    path = edited(ensembled, tmp_path, damage)
    meta = json.loads((path / "run.json").read_text())
    assert "specs=load_catalogue(FILE)" in start_again(path, meta, "tune")
    assert "--catalogue FILE " in fit_command(path, meta, restart=True)
    now = {n: {"name": n, "handle": f"/zoo/{n}", "output_dim": 8}  # as ranked: unchanged
           for n in MODULES}
    with caplog.at_level(logging.WARNING, logger="hubensemble.rank.pool"):
        held = check_tuned_modules(path, now)
    assert held == len([d for d in (path / "candidates").iterdir() if d.is_dir()])
    said = DAMAGE[damage][1].replace(r"is damaged \(", "is ").replace(r"\)", "")
    where = re.escape(str((path / "run.json").resolve()))
    assert [r.getMessage() for r in caplog.records if re.fullmatch(
        rf"{where}: {said}, so the new ranking cannot compare it with the entries the {held} "
        "candidates were tuned from; it replaces it", r.getMessage())], caplog.text
    # The command line's check before TensorFlow says nothing: run_rank says it (a new-user
    # check saw it twice on the terminal).
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hubensemble.rank.pool"):
        assert check_tuned_modules(path, now, warn=False) == held
    assert not caplog.records


def test_the_report_says_a_members_damaged_entry_and_goes_on(
        ensembled, tmp_path, figures_not_drawn):
    """The report's cost section read run.json's entries for the members that share a
    backbone (`report.costs`): a member's entry edited into a number counted it as sharing
    with no one, without a word, where export refuses it. It says so now, in runspecs' words
    (run.json, the module, the way on), and shows the rest. ("modules" of another kind as a
    whole is run.json's note, `report.runfiles`.) Fails before: no such sentence."""
    from hubensemble import report

    path = edited(ensembled, tmp_path, "an entry")
    members = json.loads((path / "ensemble.json").read_text())["members"]
    assert "alpha" in {m["module"] for m in members}
    md = report.write_report(path)[0].read_text()
    section = md[md.index("Inference cost"):]
    where = str((path / "run.json").resolve())
    assert (f"Whether the members of alpha share a frozen backbone is not known, and export "
            f"refuses them: {where}: the catalogue entry of module 'alpha' is damaged (a JSON "
            "number, expected an object); restore run.json from a copy, or ") in section.replace(
                "\\", ""), section
    assert "| ensemble |" in section  # the rest of the section is there


@pytest.mark.parametrize("edit", [{"batchnorm": "x"}, {"batchnorm": ["train"]}, "fit"])
def test_an_unfinished_sweeps_words_read_a_hand_edited_record_as_absent(
        ensembled, tmp_path, edit):
    """The command that finishes an unfinished sweep (`sweepstate.finish_command`: ensemble's
    warning, the report's "What failed and why") read run.json's tune.sweeps.<sweep>
    "batchnorm" and "fit" with `or {}` (a fault hunt of those readers): "x" or ["train"]
    there was an AttributeError traceback in place of ensemble's words, and the report's
    section could not be drawn. A record of another kind reads as absent: the words equal
    those of the record without it. Fails before: AttributeError."""
    from hubensemble.sweepstate import finish_command, unfinished_sweeps

    path = edited(ensembled, tmp_path, "an entry")
    record = {"trials": ["default-9999-alpha"], "budget": 8}
    meta = {**json.loads((path / "run.json").read_text()),
            "tune": {"sweeps": {"default": record}}}
    [sweep] = unfinished_sweeps(path, meta)
    if edit == "fit":  # a fit's record: its "fit" edited into no object reads as {}
        damaged, meta = {**meta, "fit": "x"}, {**meta, "fit": {}}
    else:
        damaged = {**meta, "tune": {"sweeps": {"default": {**record, **edit}}}}
    assert finish_command(path, damaged, sweep) == finish_command(path, meta, sweep)
    assert ("fit(" if edit == "fit" else "run_tune(") in finish_command(path, meta, sweep)


@pytest.mark.parametrize("field, value, said", [
    ("val", "x", '"val" is a JSON string'),
    ("test", {"best_single": 3}, '"test.best_single" is a JSON number'),
    ("cost", {"ensemble": []}, '"cost.ensemble" is a JSON array'),
    ("limits", [], '"limits" is a JSON array')])
def test_ensemble_jsons_reader_refuses_a_record_the_stages_read_as_an_object(
        ensembled, tmp_path, field, value, said):
    """ensemble.json's one reader (`ensemblefile.read_ensemble`) checked its members only:
    the stages read "val", "test", "cost", … with `.get(...) or {}`, so a hand edit was an
    AttributeError traceback (distill's ensemble cost; export --retrain-full's test figures,
    after its members were retrained; export's metadata). It refuses it in the words the
    report's check uses, naming the file and the command that writes it again (a fault
    hunt of those readers). Fails before: no RunError."""
    from hubensemble.ensemblefile import read_ensemble

    path = edited(ensembled, tmp_path, "an entry")
    record = json.loads((path / "ensemble.json").read_text())
    if isinstance(value, dict):  # a record inside one of the file's own
        value = {**(record.get(field) or {}), **value}
    record[field] = value
    (path / "ensemble.json").write_text(json.dumps(record))
    with pytest.raises(RunError, match=rf"^{re.escape(str(path / 'ensemble.json'))} is damaged "
                                       rf"\(its {re.escape(said)}, expected an object\); "
                                       r"run_ensemble\(run_dir=.*\) writes it again$"):
        read_ensemble(path)


def test_every_reader_of_a_trials_recorded_profile_names_run_json_by_its_path(tmp_path):
    """A damaged sweep record or profile record of run.json was named "run.json" by rank's
    pool check (rank --out RUN) and by recorded_profile itself (it dropped the path it was
    given), whatever folder the run is in; every caller in the package passes run.json's
    path now (export's members, retraining, distill, its student choice, rank's pool
    check). Fails before: "run.json: sweep 'default' …" and "run.json records profile …"."""
    import ast
    from pathlib import Path

    import numpy as np

    from hubensemble import candidate
    from hubensemble.rank.pool import check_pool_profile

    run = tmp_path / "r"
    candidate.write_candidate(run / "candidates", {
        "trial": "default-0000-m", "status": "ok", "profile": "cpu", "module": "m"},
        val_probs=np.eye(2, dtype=np.float32))
    where = str((run / "run.json").resolve())
    for tune in ({"sweeps": {"default": "x"}},
                 {"sweeps": {"default": {"trials": ["default-0000-m"],
                                         "profile": {"name": "cpu", "batch_size": 8}}}}):
        (run / "run.json").write_text(json.dumps({"tune": tune}))
        with pytest.raises(RunError) as refused:
            check_pool_profile(run, "cpu")
        assert str(refused.value).startswith(f"{where}: sweep 'default'" if tune["sweeps"][
            "default"] == "x" else f"{where} records profile 'cpu' unreadably"), refused.value
    # Each call of the two readers in the package gives run.json's path (a third argument).
    package = Path(__file__).resolve().parent.parent / "hubensemble"
    calls = [(str(path.relative_to(package)), node.lineno)
             for path in package.rglob("*.py")
             for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(
                 node.func, "attr", None)) in ("trial_profile", "recorded_profile")
             and len(node.args) < 3 and not any(k.arg == "where" for k in node.keywords)]
    assert calls == [], calls


@pytest.mark.parametrize("edit", [{"data": ["x"]}, {"data": {"task": "x"}},
                                  {"tune": {"call_sweep": "default"}, "data": "x"},
                                  {"tune": "x"}, {"tune": [1]}, {"tune": {"profile": "x"}}])
def test_tunes_memory_note_reads_a_hand_edited_record_as_none(tmp_path, edit):
    """tune's memory note read run.json's "modules", "tune" and "data" as `x or {}`, and a
    record edited by hand into no object was an AttributeError its broad except turned into
    no note at all: a standalone tune of a 224 px module under 2 GiB said nothing. It reads
    them through the readers that go on past a hand edit (`runspecs.readable_entries`,
    `fileio.json_object`): the note is the one of the run without that record (the data's
    image size unknown: 224 px, as before). Fails before: None."""
    from hubensemble import memory

    room = memory.Room(2 * 1024 ** 3, "the cgroup limit in X")
    run = tmp_path / "run"
    run.mkdir()
    modules = {"big": {"name": "big", "input_size": [224, 224]}, "bad": "x"}
    (run / "ranking.json").write_text(json.dumps({"modules": [], "profile": "cpu",
                                                  "selected": ["big", "bad"]}))
    (run / "run.json").write_text(json.dumps({"modules": modules}))
    plain = memory.stage_memory_note("tune", run, {}, room=room)
    assert plain and "at 224x224 px" in plain
    (run / "run.json").write_text(json.dumps({"modules": modules, **edit}))
    if "tune" in edit and ("profile" in edit["tune"] or not isinstance(edit["tune"], dict)):
        # tune's profile record: tune's own reader and refusal (runprofile.run_profile)
        with pytest.raises(RunError, match="restore run.json"):
            memory.stage_memory_note("tune", run, {}, room=room)
        return
    assert memory.stage_memory_note("tune", run, {}, room=room) == plain
    (run / "run.json").write_text(json.dumps({"modules": list(modules.values())}))
    assert memory.stage_memory_note("tune", run, {}, room=room) is None  # no entries


def test_a_shards_way_on_names_its_catalogue_and_data(tmp_path):
    """A shard's hand-edited "modules" record names the shard's rank with the catalogue and
    data the run records (`rerun.rank_inputs`, as a whole ranking's way on says them) and
    its shard. Fails before: "specs=load_catalogue(FILE), task=load_task(SPEC), shard=(0,
    2)", placeholders where the run named both."""
    from test_report import data_section

    from hubensemble.rank import Ranking
    from hubensemble.rank.merge import check_shards

    cat = tmp_path / "c.yaml"
    cat.write_text("modules:\n  - {name: alpha, handle: /zoo/alpha}\n"
                   "  - {name: beta, handle: /zoo/beta}\n")
    shards = [tmp_path / f"s{i}" for i in range(2)]
    for i, (d, name) in enumerate(zip(shards, ("alpha", "beta"))):
        row = {"name": name, "handle": f"/zoo/{name}", "status": "failed", "reason": "gone",
               "score": None, "dim": None, "examples": None, "seconds": 0.1, "index": i,
               "source": f"{cat}:{2 + i}"}
        Ranking(metric="knn", k=1, rows=[row], selected=[], shard=(i, 2),
                selection={"rule": "top_k", "top_k": 1}, examples=90).write(d)
        Run(d).update(data=data_section(), modules={name: {**ENTRY, "name": name}})
    meta = json.loads((shards[0] / "run.json").read_text())
    meta["modules"] = []
    (shards[0] / "run.json").write_text(json.dumps(meta))
    with pytest.raises(RunError) as refused:
        check_shards(shards, tmp_path / "merged")
    said = str(refused.value)
    assert said.endswith(
        f"call run_rank(out_dir={str(shards[0].resolve())!r}, specs=load_catalogue("
        f"{str(cat.resolve())!r}), task=load_task('npz:/data/toy.npz'), shard=(0, 2)) again"
    ), said


def test_the_rank_command_that_remakes_a_fits_ranking_keeps_the_fits_rank_options(tmp_path):
    """The rank command a damaged ranking.json or "modules" record names
    (`rerun.rank_inputs`: the report's, `Run.rank_command`'s) passed the run's catalogue and
    data alone, so in a fit's folder of --top-k 2 it wrote a ranking of the default
    selection (3 of 3 modules, a new user's check). The fit's rank options not at their
    default go with it, as flags and as keywords; a run of rank alone (no fit record) names
    none. Reference: the options table's defaults. Fails before: no --top-k."""
    from hubensemble import options
    from hubensemble.rerun import rank_inputs

    data = {"args": {"spec": "sklearn:digits"}}
    (tmp_path / "c.yaml").write_text("modules: []\n")
    fit = {"catalogue": [f"{tmp_path / 'c.yaml'}:2"], "options": {
        **{o.name: o.default for o in options.options_for(record="fit")},
        "top_k": 2, "metric": "knn-cosine", "profile": "quick"}}
    said = rank_inputs({"data": data, "fit": fit})
    assert said["flags"] == (f"--catalogue {tmp_path / 'c.yaml'} --data sklearn:digits "
                             "--metric knn-cosine --top-k 2 --profile quick"), said
    assert said["keywords"].endswith(", metric='knn-cosine', top_k=2, profile='quick'"), said
    assert rank_inputs({"data": data, "fit": {"catalogue": fit["catalogue"]}})["flags"] == (
        f"--catalogue {tmp_path / 'c.yaml'} --data sklearn:digits")
    # A run of rank alone: the options run.json's "rank" section records (a new user's check:
    # `rank --top-k 2 --profile quick`, ranking.json damaged, the named command selected 3
    # of 3); a section edited by hand into no object names none.
    rank = {"metric": "knn", "k": 1, "selection": {"rule": "top_k", "top_k": 2},
            "profile": "quick"}
    said = rank_inputs({"data": data, "fit": {"catalogue": fit["catalogue"]}, "rank": rank})
    assert said["flags"].endswith("--data sklearn:digits --top-k 2 --profile quick"), said
    assert said["keywords"].endswith(", top_k=2, profile='quick'"), said
    assert rank_inputs({"data": data, "rank": "x"})["flags"].endswith("sklearn:digits")


def test_a_field_of_another_kind_in_a_tuned_modules_entry_is_replaced_not_a_change(
        ensembled, tmp_path, caplog):
    """run.json's entry of a tuned module with one field edited into another kind
    ("input_size": "abc") was compared with the catalogue as a change: fit's rank, which
    records the entries anew, and `rank --out RUN` (the way on export and cost name) were
    refused "the entry of alpha changed (input_size)", a dead end (a new user's check). It
    is warned about as an entry edited into no object is, and replaced. Fails before:
    RunError."""
    import logging
    import shutil

    from test_report import MODULES

    from hubensemble.rank.pool import check_tuned_modules

    path = tmp_path / "run"
    shutil.copytree(ensembled, path)
    meta = json.loads((path / "run.json").read_text())
    meta["modules"]["alpha"]["input_size"] = "abc"
    (path / "run.json").write_text(json.dumps(meta))
    with pytest.raises(RunError, match=r'its "input_size" is "abc"'):
        module_specs(Run(path))  # the stages that need it refuse it, as before
    now = {n: {"name": n, "handle": f"/zoo/{n}", "output_dim": 8} for n in MODULES}
    with caplog.at_level(logging.WARNING, logger="hubensemble.rank.pool"):
        held = check_tuned_modules(path, now)
    assert held == len([d for d in (path / "candidates").iterdir() if d.is_dir()])
    where = str((path / "run.json").resolve())
    assert (f"{where}: the catalogue entry of module 'alpha' is damaged (its \"input_size\" is "
            "\"abc\", which is not a pair of positive integers), so the new ranking cannot "
            f"compare it with the entries the {held} candidates were tuned from; it replaces "
            "it") in caplog.text, caplog.text
    # A real change of another module's entry is still refused.
    with pytest.raises(RunError, match=r"the entry of gamma changed \(handle\)"):
        check_tuned_modules(path, {**now, "gamma": {**now["gamma"], "handle": "/zoo/other"}},
                            warn=False)
