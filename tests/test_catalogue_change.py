"""A catalogue entry edited in place (same name and handle, another field that changes what
its module computes) is seen by fit: refused unless --restart, named per module; a
descriptive edit and a run recorded before fit kept the entries' fingerprint resume."""

import json
import shutil

import pytest

import hubensemble
from hubensemble.errors import RunError

# One trial (a seeds sweep of budget 1: one fine-tuning, one member to export; the default
# sweep's four trials cost `fitted` three more fine-tunings and exported members): the
# refusals and reuses checked here are of the catalogue's entries, not of the sweep.
FIT = dict(profile="quick", top_k=1, seed=0, corruptions=False, sweep="seeds", budget=1)


@pytest.fixture(scope="module")
def catalogue_lines(module_factory, tmp_path_factory):
    root = tmp_path_factory.mktemp("catchange")
    lines = {}
    for i in range(2):
        path = root / f"m{i}"
        shutil.copytree(module_factory(f"catchange{i}", seed=i, width=6 + 2 * i), path)
        lines[f"m{i}"] = f"name: m{i}, handle: {path}"
    return lines


def write_catalogue(path, lines, **extra):
    """cat.yaml of `lines` ({name: "name: .., handle: .."}), `extra` ({name: "field: value"})
    appended to an entry."""
    path.write_text("modules:\n" + "".join(
        f"  - {{{line}{', ' + extra[n] if n in extra else ''}}}\n" for n, line in lines.items()))
    return str(path)


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HUBENSEMBLE_CACHE_DIR", str(tmp_path_factory.mktemp("emb")))
        yield


@pytest.fixture(scope="module")
def fitted(catalogue_lines, tmp_path_factory):
    work = tmp_path_factory.mktemp("catchangefit")
    out = work / "run"
    hubensemble.fit(write_catalogue(work / "cat.yaml", catalogue_lines), "sklearn:digits", out,
                    progress=False, **FIT)
    return out


@pytest.fixture
def run(fitted, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(fitted, out)
    return out


def fit_again(cat, out):
    """fit `cat` into `out` again: the lines it added to out/log.txt."""
    before = len((out / "log.txt").read_text())
    hubensemble.fit(cat, "sklearn:digits", out, progress=False, **FIT)
    return (out / "log.txt").read_text()[before:]


def all_reused(log):
    return all(f"{stage}: done before, reused" in log
               for stage in ("rank", "tune", "cost", "ensemble", "export"))


def test_an_entry_edited_in_place_is_refused_unless_restart_and_named(
        run, catalogue_lines, tmp_path):
    """Fails before: fit reused every stage of the old entries (exit 0, no refusal). A
    value_range is said as the catalogue writes it ([0, 1] -> [-1, 1], as input_size's
    null -> [16, 16]), not in its stored shorthand (0,1 -> -1,1)."""
    selected = json.loads((run / "ranking.json").read_text())["selected"][0]
    other = next(n for n in catalogue_lines if n != selected)
    recorded = json.loads((run / "run.json").read_text())["modules"]  # values said of these
    cat = tmp_path / "cat.yaml"
    for extra, words in (({selected: "value_range: [-1, 1]"},
                          f"{selected}'s value_range [0, 1] -> [-1, 1]"),
                         ({other: "input_size: [16, 16]"}, f"{other}'s input_size " + (
                             "null -> [16, 16]" if other in recorded else "changed"))):
        with pytest.raises(RunError) as refused:
            hubensemble.fit(write_catalogue(cat, catalogue_lines, **extra), "sklearn:digits",
                            run, progress=False, **FIT)
        assert str(refused.value) == (
            f"the catalogue ({words}) changed since {run} was fitted; use a new out folder, "
            "or pass restart=True to discard the old results")
    # A descriptive field (rank.pool.DESCRIPTIVE_FIELDS) changes nothing computed: reused.
    assert all_reused(fit_again(write_catalogue(cat, catalogue_lines,
                                                **{selected: "license: MIT"}), run))


def test_a_run_recorded_before_the_entries_fingerprint_resumes_and_is_still_checked(
        run, catalogue_lines, tmp_path):
    """An older run.json ("fit" fingerprints of (name, handle) only): the same catalogue
    resumes with every stage reused, and the record gains the entries' fingerprint; an entry
    edited in place is named from ranking.json's per-entry digests. Fails before: the edit
    was reused."""
    meta = json.loads((run / "run.json").read_text())
    assert set(meta["fit"]["fingerprints"]) == {"catalogue", "data", "entries"}
    del meta["fit"]["fingerprints"]["entries"]
    (run / "run.json").write_text(json.dumps(meta))
    cat = tmp_path / "cat.yaml"
    assert all_reused(fit_again(write_catalogue(cat, catalogue_lines), run))
    assert "entries" in json.loads((run / "run.json").read_text())["fit"]["fingerprints"]

    meta = json.loads((run / "run.json").read_text())
    del meta["fit"]["fingerprints"]["entries"]
    (run / "run.json").write_text(json.dumps(meta))
    with pytest.raises(RunError, match=r"the catalogue \(m1's native_size (null -> \[8, 8\]|"
                                       r"changed)\) changed since"):
        hubensemble.fit(write_catalogue(cat, catalogue_lines, m1="native_size: [8, 8]"),
                        "sklearn:digits", run, progress=False, **FIT)


def test_a_ranking_of_a_version_that_knew_fewer_fields_is_no_change(run, catalogue_lines,
                                                                    tmp_path):
    """ranking.json's digests and run.json's "modules" as a version without the `signature`
    field wrote them (a run.json "fit" record without the entries' fingerprint): the same
    catalogue is no change, an entry edited in place is. Fails before: the first (the
    digests differ) would refuse an unedited run."""
    import hashlib

    from hubensemble.catalogue import load_catalogue
    from hubensemble.rank.pool import DESCRIPTIVE_FIELDS
    from hubensemble.resume import _entries_changed
    from hubensemble.rundir import Run

    meta = json.loads((run / "run.json").read_text())
    del meta["fit"]["fingerprints"]["entries"]
    for entry in meta["modules"].values():
        del entry["signature"]
    (run / "run.json").write_text(json.dumps(meta))
    ranking = json.loads((run / "ranking.json").read_text())
    specs = load_catalogue(write_catalogue(tmp_path / "cat.yaml", catalogue_lines))
    old = {s.name: {f: v for f, v in s.to_json().items()
                    if f not in DESCRIPTIVE_FIELDS and f != "signature"} for s in specs}
    ranking["catalogue"]["entries"] = {n: hashlib.sha256(json.dumps(
        e, sort_keys=True).encode()).hexdigest()[:16] for n, e in old.items()}
    (run / "ranking.json").write_text(json.dumps(ranking))
    assert set(meta["modules"]) == set(old)  # every entry's record: compared field by field
    assert not _entries_changed(Run(run), meta["fit"], {}, specs)
    edited = load_catalogue(write_catalogue(tmp_path / "cat.yaml", catalogue_lines,
                                            m0="value_range: [-1, 1]"))
    assert _entries_changed(Run(run), meta["fit"], {}, edited)


def test_a_ranking_of_an_entry_edited_since_is_named_per_module_by_fit(
        catalogue_lines, tmp_path):
    """rank into a folder, an entry edited in place, then fit on that folder: refused (the
    ranking is not the one fit would write) in "m1, m3 added, dropped or changed" words of its
    own, not the per-module words fit's own refusal says (found in a review). One rule
    (rank.reuse.catalogue_changes) for both. Fails before: "added, dropped or changed"."""
    from hubensemble.rank import run_rank

    out = tmp_path / "run"
    specs = hubensemble.load_catalogue(write_catalogue(tmp_path / "cat.yaml", catalogue_lines))
    run_rank(out, specs, hubensemble.load_task("sklearn:digits"), top_k=1, profile="quick",
             progress=False)
    selected = json.loads((out / "ranking.json").read_text())["selected"][0]
    edited = write_catalogue(tmp_path / "edited.yaml", catalogue_lines,
                             **{selected: "value_range: [-1, 1]"})
    with pytest.raises(RunError) as refused:
        hubensemble.fit(edited, "sklearn:digits", out, progress=False, **FIT)
    assert (f"the catalogue ({selected}'s value_range [0, 1] -> [-1, 1]) (ranked -> this fit)"
            in str(refused.value)), refused.value


def older_catalogue_record(catalogue, specs, field):
    """ranking.json's "catalogue" record `catalogue` as a hubensemble without ModuleSpec
    field `field` wrote it for `specs`: each entry's digest, and the per-field digests,
    without it (sha256 of the sorted JSON, 16 hex digits: the record's rule, written out)."""
    import hashlib

    from hubensemble.rank.pool import DESCRIPTIVE_FIELDS

    def digest(value):
        return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]

    old = [{f: v for f, v in s.to_json().items() if f not in DESCRIPTIVE_FIELDS and f != field}
           for s in specs]
    return {**catalogue, "entries": {e["name"]: digest(e) for e in old},
            "fields": {f: digest([e.get(f) for e in old])
                       for f in sorted({f for e in old for f in e} - {"name"})}}


def test_the_rank_to_fit_check_reads_a_ranking_of_a_version_that_knew_fewer_fields(
        run, catalogue_lines, tmp_path):
    """The rank -> fit check (rank.reuse.catalogue_changes: fit on a folder `rank` wrote)
    compared ranking.json's per-entry digests, which hold every field: a ranking.json (and
    run.json's "modules") as a version without the `signature` field wrote them read as
    "the catalogue (m0's entry changed; m1's entry changed)" though nobody edited it, where
    fit's own check (computed_fields) finds no change. It compares as fit does, with run.json's
    record or without it (a module rank did not select: the per-field digests, a field the
    record lacks at its default); an edit is still named, alone. Fails before: both
    entries said changed."""
    from hubensemble.catalogue import load_catalogue
    from hubensemble.rank.reuse import catalogue_changes

    specs = load_catalogue(write_catalogue(tmp_path / "cat.yaml", catalogue_lines))
    modules = json.loads((run / "run.json").read_text())["modules"]
    for entry in modules.values():
        del entry["signature"]
    ranking = json.loads((run / "ranking.json").read_text())
    older = older_catalogue_record(ranking["catalogue"], specs, "signature")
    assert older["entries"] != ranking["catalogue"]["entries"]  # as a newer version reads it
    for recorded in (modules, None):
        assert catalogue_changes(older, specs, recorded) == [], recorded
    edited = load_catalogue(write_catalogue(tmp_path / "e.yaml", catalogue_lines,
                                            m1="native_size: [8, 8]"))
    assert catalogue_changes(older, edited, modules) == [
        "m1's native_size null -> [8, 8]" if "m1" in modules else "m1's native_size changed"]
    assert catalogue_changes(older, edited, None) == ["m1's native_size changed"]


def test_an_output_dim_equal_to_the_ranked_width_is_no_change_to_fit_or_rank(
        run, catalogue_lines, tmp_path):
    """`output_dim: W` added to an entry whose module ranking.json measured W wide declares
    the width only: fit reuses every stage, and a new ranking over the run's candidates
    (`check_tuned_modules`, the same rule) keeps them; another width is still refused by
    both. Fails before: fit said "the catalogue (m1's output_dim null -> W) changed" and
    rank "the entry of m1 changed (output_dim)"."""
    from hubensemble.rank.pool import check_tuned_modules

    rows = json.loads((run / "ranking.json").read_text())["modules"]
    widths = {r["name"]: r["dim"] for r in rows}
    recorded = json.loads((run / "run.json").read_text())["modules"]
    held = len(list((run / "candidates").glob("*/trial.json")))
    cat = tmp_path / "cat.yaml"
    tuned = json.loads((run / "ranking.json").read_text())["selected"][0]  # the candidates'
    same = {**recorded, tuned: {**recorded[tuned], "output_dim": widths[tuned]}}
    assert check_tuned_modules(run, same, warn=False) == held > 0
    other = {**recorded, tuned: {**recorded[tuned], "output_dim": widths[tuned] + 1}}
    with pytest.raises(RunError, match=rf"the entry of {tuned} changed \(output_dim\)"):
        check_tuned_modules(run, other, warn=False)
    wide = {n: f"output_dim: {widths[n]}" for n in catalogue_lines}
    assert all_reused(fit_again(write_catalogue(cat, catalogue_lines, **wide), run))
    assert all_reused(fit_again(write_catalogue(cat, catalogue_lines), run))  # and back
    name = next(iter(catalogue_lines))
    with pytest.raises(RunError, match=rf"\({name}'s output_dim null -> {widths[name] + 1} "
                                       rf"\(ranked at {widths[name]}\)\) changed since"):
        hubensemble.fit(write_catalogue(cat, catalogue_lines,
                                        **{name: f"output_dim: {widths[name] + 1}"}),
                        "sklearn:digits", run, progress=False, **FIT)


def test_a_fits_failed_trials_are_said_reused_by_fit_whose_command_redoes_them(run):
    """In a fit's folder whose fit plans the trials, the way on of a failed (or finished but
    unusable) trial names fit as the command that reuses it, the one it names after
    (`candidate._reuser`, `sweepwords.redone_by_fit`). Fails before: "a failed trial is done
    (tune reuses it) … then call fit(…)", the ensemble's and `reused_redo`'s words alike."""
    from hubensemble.candidate import read_candidate, reused_redo

    trials = sorted(p.parent.name for p in (run / "candidates").glob("*/trial.json"))
    for trial in trials:
        path = run / "candidates" / trial / "trial.json"
        record = json.loads(path.read_text())
        path.write_text(json.dumps({**record, "status": "failed", "reason": "at chance"}))
    cand = read_candidate(run / "candidates", trials[0])
    fit = "call hubensemble.fit(…) with the arguments the run was fitted with"
    assert reused_redo(cand, failed=True).startswith(
        f"; running fit again does not retry a failed trial: to retry it once its cause is "
        f"fixed, delete {cand.folder.resolve()}, then {fit} (it redoes the trial)")
    assert reused_redo(cand).startswith("; fit reuses a finished trial's folder, so delete ")
    with pytest.raises(RunError) as refused:
        hubensemble.run_ensemble(run)
    assert f"{len(trials)} failed, which running fit again does not retry: " in str(
        refused.value) and str(refused.value).endswith(f"then {fit}"), refused.value


def test_fit_goes_on_from_a_rankings_folder_with_an_output_dim_of_the_ranked_width(
        run, catalogue_lines, tmp_path, in_process):
    """A folder `rank` made, then fit with `output_dim: W` added where W is the width ranked:
    fit goes on from the ranking (the rule of `rank.pool.entry_changes`), and another width
    is still named. Fails before: "holds a ranking by `hubensemble rank` that this fit would
    not write: the catalogue (m1's output_dim null -> 8)"."""
    widths = {r["name"]: r["dim"] for r in
              json.loads((run / "ranking.json").read_text())["modules"]}
    ranked = tmp_path / "ranked"
    code, _, err = in_process("rank", "--catalogue", write_catalogue(
        tmp_path / "rank.yaml", catalogue_lines), "--data", "sklearn:digits", "--out", ranked,
        "--profile", "quick", "--top-k", "1")
    assert code == 0, err
    name = next(iter(catalogue_lines))
    with pytest.raises(RunError, match=rf"\({name}'s output_dim null -> {widths[name] + 1} "
                                       rf"\(ranked at {widths[name]}\)\)"):
        hubensemble.fit(write_catalogue(tmp_path / "c.yaml", catalogue_lines,
                                        **{name: f"output_dim: {widths[name] + 1}"}),
                        "sklearn:digits", ranked, progress=False, **FIT)
    wide = {n: f"output_dim: {widths[n]}" for n in catalogue_lines}
    hubensemble.fit(write_catalogue(tmp_path / "c.yaml", catalogue_lines, **wide),
                    "sklearn:digits", ranked, progress=False, **FIT)
    assert "rank: done before, reused" in (ranked / "log.txt").read_text()


def test_fits_refusal_names_the_edited_entry_not_one_that_declares_its_ranked_width(
        run, catalogue_lines, tmp_path):
    """A real edit (a value_range) beside an `output_dim:` equal to the width ranking.json
    measured (no change, as fit's own check reads it): fit's refusal names the edit alone.
    Fails before: it named "m0's output_dim null -> 6" beside the edit, a change it does
    not count."""
    widths = {r["name"]: r["dim"] for r in
              json.loads((run / "ranking.json").read_text())["modules"]}
    declared, edited = list(catalogue_lines)
    cat = write_catalogue(tmp_path / "cat.yaml", catalogue_lines, **{
        declared: f"output_dim: {widths[declared]}", edited: "value_range: [-1, 1]"})
    with pytest.raises(RunError) as refused:
        hubensemble.fit(cat, "sklearn:digits", run, progress=False, **FIT)
    assert str(refused.value).startswith(
        f"the catalogue ({edited}'s value_range [0, 1] -> [-1, 1]) changed since "), refused.value


# A fit option of a float type given as a whole number, as Python callers type it
# (threshold=0; the command line's --threshold 0 gives 0.0): `stagerecords.stage_keys`.
# One trial (a seeds sweep of budget 1): one member to export.
AS_INTS = dict(profile="quick", seed=0, corruptions=False, sweep="seeds", budget=1,
               threshold=0, max_gflops=1000)
AS_FLAGS = ("--profile", "quick", "--seed", "0", "--no-corruptions", "--sweep", "seeds",
            "--budget", "1", "--threshold", "0", "--max-gflops", "1000", "-q")


def keys_as_given(catalogue_fp, data_fp, options):
    """(stage keys, reads) as a hubensemble before typed keys made them (the reference): each
    stage's options (`options.for_stage`) digested as given (threshold=0: the int), chained
    on the stage's before, rank's options left out of the reads after rank."""
    from hubensemble.options import STAGES
    from hubensemble.stagerecords import digest

    keys, reads = {}, {}
    key, read = (digest([catalogue_fp, data_fp]),
                 digest(["rank's options left out", catalogue_fp, data_fp]))
    for stage in STAGES:
        key = digest([key, stage, options.for_stage(stage)])
        if stage != "rank":
            read = digest([read, stage, options.for_stage(stage)])
        keys[stage], reads[stage] = key, key if stage == "rank" else read
    return keys, reads


def test_every_float_option_keys_a_whole_number_as_its_float():
    """Each fit option the table declares float (threshold, bootstrap, max_gflops, ...) keys
    every stage and every stage's reads alike given as 1 (Python) or 1.0 (the command line);
    the keys an older hubensemble made of either typing, mixed ones too, are the same keys
    (`same_keys`), another value's are not. Fails before: threshold=1 and 1.0 differed in
    every key."""
    from hubensemble import options as table
    from hubensemble.pipeline import FitOptions
    from hubensemble.stagerecords import read_keys, stage_keys

    floats = [o.name for o in table.options_for(record="fit") if o.type is float]
    assert {"threshold", "bootstrap", "max_gflops", "max_latency_ms"} <= set(floats)
    for name in floats:
        typed, given = FitOptions(**{name: 1.0}), FitOptions(**{name: 1})
        assert isinstance(getattr(given, name), int)  # as given: the key types it
        for keys in (stage_keys, read_keys):
            assert keys("c", "d", typed) == keys("c", "d", given), name
            assert keys("c", "d", typed) != keys("c", "d", FitOptions(**{name: 2.0})), name
    from hubensemble.stagerecords import same_keys

    mixed = dict(threshold=0, max_gflops=2.0, bootstrap=1, max_latency_ms=0.5)
    old = keys_as_given("c", "d", FitOptions(**mixed))
    for now in (FitOptions(**mixed), FitOptions(threshold=0.0, max_gflops=2, bootstrap=1.0,
                                                max_latency_ms=0.5)):
        assert old[0] != stage_keys("c", "d", now)  # keyed otherwise, yet the same keys:
        assert same_keys(old[0], stage_keys("c", "d", now))
        assert same_keys(old[1], read_keys("c", "d", now))
    for other in (dict(mixed, bootstrap=2), dict(mixed, max_latency_ms=1)):
        assert not same_keys(old[0], stage_keys("c", "d", FitOptions(**other)))
        assert not same_keys(old[1], read_keys("c", "d", FitOptions(**other)))


@pytest.fixture(scope="module")
def fitted_from_ints(catalogue_lines, tmp_path_factory):
    work = tmp_path_factory.mktemp("fromints")
    cat = write_catalogue(work / "cat.yaml", catalogue_lines)
    hubensemble.fit(cat, "sklearn:digits", work / "run", progress=False, **AS_INTS)
    return cat, work / "run"


def keyed_as_given(run):
    """Rewrites `run`'s recorded stage keys and reads (run.json's fit.keys, each stage's "key"
    and "reads") as a hubensemble before typed keys made them (`keys_as_given` of the
    options its fit recorded: threshold 0, the int)."""
    from hubensemble.pipeline import FitOptions

    meta = json.loads((run / "run.json").read_text())
    options = FitOptions(**meta["fit"]["options"])
    assert options.threshold == 0 and isinstance(options.threshold, int)
    prints = meta["fit"]["fingerprints"]
    keys, reads = keys_as_given(prints["catalogue"], prints["data"], options)
    assert keys != meta["fit"]["keys"]  # the recorded ones are typed otherwise
    meta["fit"]["keys"] = keys
    for stage, record in meta["stages"].items():
        record["key"] = keys["tune" if stage == "cost" else stage]
        if "reads" in record:
            record["reads"] = reads["tune" if stage == "cost" else stage]
    (run / "run.json").write_text(json.dumps(meta, indent=2))


def fit_command(cat, out, in_process):
    """`hubensemble fit` with AS_INTS' options typed on the command line: what it logged."""
    before = len((out / "log.txt").read_text())
    code, _, err = in_process("fit", "--catalogue", cat, "--data", "sklearn:digits", "--out",
                              out, *AS_FLAGS)
    assert code == 0, err
    return (out / "log.txt").read_text()[before:]


def test_a_fit_of_whole_numbers_from_python_resumes_from_the_command_line_and_back(
        fitted_from_ints, tmp_path, in_process):
    """fit(threshold=0, max_gflops=1000) from Python, then `hubensemble fit --threshold 0
    --max-gflops 1000` on its folder: every stage is reused; then the Python call again on
    the folder the command line recorded. Fails before: the command line refused ("… was
    written by an older hubensemble …: its rank and tune results are keyed otherwise")."""
    cat, fitted = fitted_from_ints
    run = tmp_path / "run"
    shutil.copytree(fitted, run)
    assert all_reused(fit_command(cat, run, in_process))
    assert json.loads((run / "run.json").read_text())["fit"]["options"]["threshold"] == 0.0
    before = len((run / "log.txt").read_text())
    hubensemble.fit(cat, "sklearn:digits", run, progress=False, **AS_INTS)
    assert all_reused((run / "log.txt").read_text()[before:])


def test_a_run_keyed_from_whole_numbers_before_is_reused_by_either_caller(
        fitted_from_ints, tmp_path, in_process):
    """A run whose stages an older hubensemble keyed from threshold=0 and max_gflops=1000 as
    the ints typed: the Python call and the command line alike find every stage done before
    and reuse it (no stage runs again), and the run then records this version's keys. Fails
    before: the keys recorded were those ints' (the rewrite changes none), and the command
    line refused them; a change of keying alone ran every stage again for both callers."""
    from hubensemble.pipeline import FitOptions
    from hubensemble.stagerecords import stage_keys

    cat, fitted = fitted_from_ints
    for caller in ("python", "command line"):
        run = tmp_path / caller
        shutil.copytree(fitted, run)
        keyed_as_given(run)
        if caller == "python":
            before = len((run / "log.txt").read_text())
            hubensemble.fit(cat, "sklearn:digits", run, progress=False, **AS_INTS)
            log = (run / "log.txt").read_text()[before:]
        else:
            log = fit_command(cat, run, in_process)
        assert all_reused(log), (caller, log)
        meta = json.loads((run / "run.json").read_text())
        prints = meta["fit"]["fingerprints"]
        assert meta["fit"]["keys"] == stage_keys(prints["catalogue"], prints["data"],
                                                 FitOptions(**meta["fit"]["options"]))
