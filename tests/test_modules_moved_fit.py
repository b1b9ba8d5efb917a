"""A module folder moved after a fit, and the catalogue's handle pointed at its new place: the
same module (its files' content fingerprint) is no change, every stage is reused and loads
it from there; a different module at the new place is still a changed catalogue."""

import json
import re
import shutil

FIT = ("--data", "sklearn:digits", "--profile", "quick", "--sweep", "probe", "--budget", "4",
       "--top-k", "1", "--no-corruptions")


def _fitted(tmp_path, module_factory, in_process, monkeypatch):
    """A run fitted on one tiny module at ./mods/m0 (catalogue c.yaml): (run, fit's args)."""
    shutil.copytree(module_factory("moved0", seed=0, width=6), tmp_path / "mods" / "m0")
    shutil.copytree(module_factory("moved1", seed=1, width=7), tmp_path / "other")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text("modules:\n  - {name: m0, handle: ./mods/m0}\n")
    run = tmp_path / "run"
    args = ("fit", "--catalogue", "c.yaml", "--out", run, *FIT)
    code, _, err = in_process(*args)
    assert code == 0, err
    return run, args


def test_a_module_moved_and_pointed_at_is_the_same_module_and_every_stage_is_reused(
        tmp_path, module_factory, in_process, monkeypatch):
    # User 479: the MobileNet folder renamed after a fit, the catalogue's handle pointed at
    # the new place: "the catalogue (m0's handle … -> …) changed since run was fitted".
    # Fails before: exit 2, that refusal.
    run, args = _fitted(tmp_path, module_factory, in_process, monkeypatch)
    candidates = sorted(p.name for p in (run / "candidates").iterdir())
    shutil.move(tmp_path / "mods" / "m0", tmp_path / "new_m0")
    (tmp_path / "c.yaml").write_text("modules:\n  - {name: m0, handle: ./new_m0}\n")
    # Other data too: the data named, the moved module not (it named the catalogue).
    code, _, err = in_process(*args, "--data-seed", "1")
    assert code == 2 and "the data (" in err and "catalogue" not in err, err
    code, summary, err = in_process(*args)
    assert code == 0, err
    was, now = tmp_path / "mods" / "m0", tmp_path / "new_m0"
    assert f"m0 moved: {was} -> {now}, the same module (fingerprint " in err, err
    assert f"the run now loads it from {now}" in err
    meta = json.loads((run / "run.json").read_text())
    assert meta["modules"]["m0"]["handle"] == str(now)
    assert meta["modules"]["m0"]["written"] == "./new_m0"
    assert all(meta["stages"][s]["reused"] for s in ("rank", "tune", "ensemble")), meta
    assert sorted(p.name for p in (run / "candidates").iterdir()) == candidates
    # Said once: the next fit reuses every stage without a word of it.
    code, summary, err = in_process(*args)
    assert code == 0 and "moved" not in err, err
    # The export loads it from there: a new export of the run, the old folder gone.
    code, _, err = in_process("export", "--run", run, "--out", tmp_path / "exp", "-q")
    assert code == 0, err


def test_a_different_module_at_the_new_place_is_still_a_changed_catalogue(
        tmp_path, module_factory, in_process, monkeypatch):
    run, args = _fitted(tmp_path, module_factory, in_process, monkeypatch)
    shutil.move(tmp_path / "mods" / "m0", tmp_path / "new_m0")
    (tmp_path / "c.yaml").write_text("modules:\n  - {name: m0, handle: ./other}\n")
    code, _, err = in_process(*args)
    assert code == 2 and "changed since" in err and "m0's handle" in err, err
    assert "moved:" not in err
    # Said to be another module, not a move refused (new user 492). Fails before: the words
    # of a plain handle change.
    other = tmp_path / "other"
    assert re.search(f"m0's handle {re.escape(str(tmp_path / 'mods' / 'm0'))} -> "
                     f"{re.escape(str(other))}: the files at {re.escape(str(other))} are another "
                     r"module \(fingerprint [0-9a-f]{12}…, where m0 was ranked with "
                     r"[0-9a-f]{12}…\), not m0 moved", err), err


def test_a_runs_module_moved_is_said_by_fit_and_export_refuses_before_loading_it(
        tmp_path, module_factory, in_process, monkeypatch):
    # User 479: the folder renamed, the catalogue not: fit reused every stage without a word,
    # export failed after TensorFlow and the whole data folder (1 min 03 s) at the member's
    # build. Fails before: no warning; export's words were the member build's, after the load.
    import pytest

    from hubensemble.errors import RunError
    from hubensemble.export import export_ensemble

    run, args = _fitted(tmp_path, module_factory, in_process, monkeypatch)
    shutil.move(tmp_path / "mods" / "m0", tmp_path / "new_m0")
    code, _, err = in_process(*args)
    assert code == 0, err
    log = (run / "log.txt").read_text()
    said = f"module 'm0' cannot load from where {run} ranked it: './mods/m0' ("
    assert said in err and said in log, err
    assert "or point the catalogue's handle at its new place and run `hubensemble fit " \
           "--catalogue " in err and "again (the same module is no change); fit reuses the " \
           "stages done before" in err
    assert log.rindex(said) < log.rindex("tune: done before, reused")
    code, _, err = in_process("export", "--run", run, "--out", tmp_path / "exp")
    refused = (f"export of {run} rebuilds each member it exports from its module, but its "
               "module cannot load here, so nothing was written: module 'm0': './mods/m0' (")
    assert code == 2 and refused in err and err.rstrip().endswith("then export again"), err
    assert "rebuild members" not in err and not (tmp_path / "exp").exists()
    assert "loading TensorFlow" not in err, err  # refused by the check before it (492)
    with pytest.raises(RunError, match="export_ensemble\\(\\) of .* nothing was written: "
                                       "module 'm0'.*call hubensemble.fit\\(out=.*\\) again"):
        export_ensemble(str(run), str(tmp_path / "exp"), progress=False)
    assert not (tmp_path / "exp").exists()


def test_a_changed_catalogue_is_refused_before_the_data_loads(
        tmp_path, module_factory, in_process, monkeypatch):
    # User 479: the refusal came after the data folder was read (and TensorFlow: 50 s). Fails
    # before: the data's summary said first. A possible move (something at the new path) is
    # judged by content after the load: the test above.
    run, args = _fitted(tmp_path, module_factory, in_process, monkeypatch)
    logged = len((run / "log.txt").read_text())
    (tmp_path / "c.yaml").write_text(
        "modules:\n  - {name: m0, handle: ./mods/m0, value_range: [-1, 1]}\n")
    code, _, err = in_process(*args)
    assert code == 2 and "the catalogue (m0's value_range" in err and "changed since" in err, err
    assert "Task 'digits'" not in err + (run / "log.txt").read_text()[logged:]
    shutil.move(tmp_path / "mods" / "m0", tmp_path / "new_m0")
    (tmp_path / "c.yaml").write_text("modules:\n  - {name: m0, handle: ./nowhere}\n")
    code, _, err = in_process(*args)
    assert code == 2 and "m0's handle" in err and "Task 'digits'" not in err, err


def test_the_way_on_of_a_moved_module_is_the_runs_whole_fit_and_pasted_it_reuses_every_stage(
        tmp_path, module_factory, in_process, monkeypatch):
    # New user 492: "point the catalogue's handle at its new place and run `hubensemble fit …`
    # again"; retyped without --budget 4 --profile quick it was refused as other options, and
    # that refusal's way on (--restart) discarded every trial. Fails before: the `…`.
    import re
    import shlex

    import pytest

    from hubensemble.errors import RunError
    from hubensemble.export import export_ensemble

    run, args = _fitted(tmp_path, module_factory, in_process, monkeypatch)
    candidates = sorted(p.name for p in (run / "candidates").iterdir())
    shutil.move(tmp_path / "mods" / "m0", tmp_path / "new_m0")
    said = []
    for refused in (["tune", "--run", run, "--restart"],
                    ["export", "--run", run, "--out", tmp_path / "exp"], list(args)):
        code, _, err = in_process(*refused)
        found = re.findall(r"at its new place and run `(hubensemble fit [^`]*)` again \(the same "
                           r"module is no change\)", err)
        assert found and "…" not in found[0], (refused, err)
        said.append(found[0])
    assert len(set(said)) == 1 and "--restart" not in said[0], said
    assert sorted(p.name for p in (run / "candidates").iterdir()) == candidates
    words = shlex.split(said[0])
    assert words[:2] == ["hubensemble", "fit"] and str(tmp_path / "c.yaml") in words, words
    (tmp_path / "c.yaml").write_text("modules:\n  - {name: m0, handle: ./new_m0}\n")
    monkeypatch.chdir(tmp_path / "mods")  # pasted in another folder: every path absolute
    code, _, err = in_process(*words[1:])
    assert code == 0 and "m0 moved: " in err, err
    meta = json.loads((run / "run.json").read_text())
    assert all(meta["stages"][s]["reused"] for s in ("rank", "tune", "ensemble")), meta
    assert sorted(p.name for p in (run / "candidates").iterdir()) == candidates
    # From Python: the call, with the run's own options (a fit's restart refused alike).
    from hubensemble.catalogue import load_catalogue
    from hubensemble.restartcheck import check_fit_restart

    shutil.move(tmp_path / "new_m0", tmp_path / "newer_m0")
    for refuse in (lambda: export_ensemble(str(run), str(tmp_path / "exp"), progress=False),
                   lambda: check_fit_restart(run, load_catalogue(tmp_path / "c.yaml"), None)):
        with pytest.raises(RunError) as refused:
            refuse()
        call = re.search(r"and call (hubensemble\.fit\(.*?\)) again", str(refused.value))
        assert call and "…" not in call.group(1), str(refused.value)
        assert f"out={str(run)!r}" in call.group(1) and "profile='quick'" in call.group(1) \
            and "budget=4" in call.group(1) and "restart" not in call.group(1), call.group(1)
