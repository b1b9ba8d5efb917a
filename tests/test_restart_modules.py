"""A restart refuses, before it removes anything, when a module it will train is not where
the run ranked it (moved or deleted): it removed every finished candidate, then each trial
failed alike."""

import os
import shutil

from hubensemble.catalogue_here import MOVED_HINT


def test_tune_restart_with_a_module_moved_refuses_and_removes_nothing(
        tmp_path, module_factory, in_process, monkeypatch):
    # User 474: fit, `mv mods/m0 moved_m0`, `tune --run run2 --budget 8 --restart`: all 8
    # candidates removed, then 4 trials failed with "did you mean …/mods/m1?". Fails
    # before: exit 0 (the trials of m0 failed) and m0's candidates gone.
    for i in range(2):
        shutil.copytree(module_factory(f"restart{i}", seed=i, width=6 + i),
                        tmp_path / "mods" / f"m{i}")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text("modules:\n  - {name: m0, handle: ./mods/m0}\n"
                                     "  - {name: m1, handle: ./mods/m1}\n")
    run = tmp_path / "run"
    code, _, err = in_process("rank", "--catalogue", "c.yaml", "--data", "sklearn:digits",
                              "--out", run, "--k", "1")
    assert code == 0, err
    tune = ["tune", "--run", run, "--sweep", "seeds", "--budget", "2", "--profile", "quick",
            "--strategy", "cpu", "--keep-weights", "none"]
    code, _, err = in_process(*tune)
    assert code == 0, err
    before = sorted(os.listdir(run / "candidates"))
    trained = before[0].rsplit("-", 1)[1]  # the seeds sweep trains the first module ranked
    (tmp_path / "mods" / trained).rename(tmp_path / f"moved_{trained}")
    code, printed, err = in_process(*tune, "--restart")
    assert code == 2 and printed == "", err
    assert (f"{tmp_path / 'mods' / trained}, relative to the catalogue's folder) does not "
            f"exist; check the path{MOVED_HINT}, or point the catalogue's handle at its new "
            "place and run `hubensemble fit …` again (the same module is no change)" in err
            and "nothing was removed" in err and "did you mean" not in err), err
    assert sorted(os.listdir(run / "candidates")) == before
    # From Python, after TensorFlow: the same refusal, nothing removed.
    import pytest

    from hubensemble.errors import RunError
    from hubensemble.tune import run_tune

    with pytest.raises(RunError) as refused:
        run_tune(str(run), sweep="seeds", budget=2, profile="quick", strategy="cpu",
                 keep_weights="none", restart=True)
    assert "nothing was removed" in str(refused.value) and MOVED_HINT in str(refused.value)
    assert sorted(os.listdir(run / "candidates")) == before


def _fitted_two(tmp_path, module_factory, in_process, monkeypatch):
    """A run ranked on two tiny modules ./mods/m0, ./mods/m1 whose probe sweep (head-only:
    seconds) trained 4 candidates of each: (run, its tune command line)."""
    for i in range(2):
        shutil.copytree(module_factory(f"restart{i}", seed=i, width=6 + i),
                        tmp_path / "mods" / f"m{i}")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text("modules:\n  - {name: m0, handle: ./mods/m0}\n"
                                     "  - {name: m1, handle: ./mods/m1}\n")
    run = tmp_path / "run"
    code, _, err = in_process("rank", "--catalogue", "c.yaml", "--data", "sklearn:digits",
                              "--out", run, "--k", "1")
    assert code == 0, err
    tune = ["tune", "--run", run, "--sweep", "probe", "--budget", "8", "--profile", "quick",
            "--strategy", "cpu", "--keep-weights", "none"]
    code, _, err = in_process(*tune)
    assert code == 0, err
    return run, tune


def test_tune_restart_leaving_the_moved_module_out_trains_the_others(
        tmp_path, module_factory, in_process, monkeypatch):
    # `tune --restart --modules m1`, leaving the moved m0 out on purpose, was refused (after
    # TensorFlow) for the modules the removed candidates trained: m0. Fails before: exit 2,
    # "module 'm0': … does not exist".
    run, tune = _fitted_two(tmp_path, module_factory, in_process, monkeypatch)
    before = sorted(os.listdir(run / "candidates"))
    assert {name.rsplit("-", 1)[1] for name in before} == {"m0", "m1"}, before
    shutil.move(tmp_path / "mods" / "m0", tmp_path / "moved_m0")
    code, printed, err = in_process(*tune[:5], "--budget", "4", *tune[7:], "--modules", "m1",
                                    "--restart")
    assert code == 0, err
    after = sorted(os.listdir(run / "candidates"))
    assert after and all(name.endswith("-m1") for name in after), after
    # The moved module asked for again: refused, nothing removed, from Python too.
    import pytest

    from hubensemble.errors import RunError
    from hubensemble.tune import run_tune

    with pytest.raises(RunError) as refused:
        run_tune(str(run), sweep="probe", budget=4, modules=["m0"], profile="quick",
                 strategy="cpu", keep_weights="none", restart=True)
    assert "nothing was removed" in str(refused.value) and "'m0'" in str(refused.value)
    assert sorted(os.listdir(run / "candidates")) == after


def test_fit_restart_with_a_module_moved_refuses_and_removes_nothing(
        tmp_path, module_factory, in_process, monkeypatch):
    # fit restart=True cleared the run first (its ranking and every finished candidate), then
    # rank skipped the moved module: the fit another one. Fails before: exit 0, the run
    # ranked again without m0 and its candidates gone.
    run, _ = _fitted_two(tmp_path, module_factory, in_process, monkeypatch)
    before = sorted(os.listdir(run / "candidates"))
    ranking = (run / "ranking.json").read_bytes()
    shutil.move(tmp_path / "mods" / "m0", tmp_path / "moved_m0")
    fit = ["fit", "--catalogue", "c.yaml", "--data", "sklearn:digits", "--out", run,
           "--sweep", "probe", "--budget", "8", "--profile", "quick", "--strategy", "cpu"]
    code, printed, err = in_process(*fit, "--restart")
    assert code == 2 and printed == "", err
    assert (f"{tmp_path / 'mods' / 'm0'}, relative to the catalogue's folder) does not exist; "
            f"check the path{MOVED_HINT}, or point the catalogue's handle at its new place and "
            "run `hubensemble fit …` again" in err
            and "fit --restart would remove the results in" in err
            and "nothing was removed" in err and "leave it out of --modules" in err), err
    assert sorted(os.listdir(run / "candidates")) == before
    assert (run / "ranking.json").read_bytes() == ranking
    import pytest

    import hubensemble
    from hubensemble.catalogue import load_catalogue
    from hubensemble.errors import RunError
    from hubensemble.restartcheck import check_fit_restart

    with pytest.raises(RunError) as refused:
        hubensemble.fit("c.yaml", "sklearn:digits", str(run), restart=True, sweep="probe",
                        budget=8, profile="quick", strategy="cpu")
    assert ("fit(restart=True) would remove" in str(refused.value)
            and "leave it out of modules" in str(refused.value)), refused.value
    assert sorted(os.listdir(run / "candidates")) == before
    # m0 left out on purpose (modules=['m1']), or a folder without results: no refusal.
    specs = load_catalogue("c.yaml")
    check_fit_restart(run, specs, ["m1"])
    check_fit_restart(tmp_path / "new", specs, None)
