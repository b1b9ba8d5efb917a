"""A run folder on other data: the refusals say what differs and what to do (datachange).

Before, `rank --out OLD` said only "OLD holds a run on other data (folder:x, fingerprint a…)
than folder:x (fingerprint b…)": the same source twice and no reason, for changed files and
for a run that an older hubensemble recorded alike; a record without a fingerprint was a
KeyError.
"""

import contextlib
import json
import os
import re
import shlex
import shutil

import numpy as np
import pytest
from PIL import Image

from hubensemble import lockwords
from hubensemble.data import pixel_key
from hubensemble.errors import RunError
from hubensemble.rundir import DataArgs, Run


def draw(root, *, seed=0, classes=("a", "b", "c"), n=10, size=(8, 8)):
    rng = np.random.default_rng(seed)
    for c in classes:
        os.makedirs(root / c, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (*size, 3), np.uint8)).save(root / c / f"{i}.png")


def attached(path, spec, **kw):
    args = DataArgs(spec=spec, **kw)
    task = args.load()
    Run(path).attach_task(task, args)
    return task


def refusal(path, spec, *, command_line=True, command="rank", **kw):
    """The refusal's text, in a command line's words (`lockwords.command_line`) unless not
    `command_line` (a Python caller's)."""
    args = DataArgs(spec=spec, **kw)
    with pytest.raises(RunError) as err, (
            lockwords.command_line() if command_line else contextlib.nullcontext()):
        Run(path).attach_task(args.load(), args, command=command)
    return str(err.value)


def edit_record(path, change):
    meta = json.loads((path / "run.json").read_text())
    change(meta)
    (path / "run.json").write_text(json.dumps(meta))


def test_other_options_or_another_spec_are_named_with_what_to_pass(tmp_path):
    run = tmp_path / "run"
    attached(run, "sklearn:digits")
    assert refusal(run, "sklearn:digits", seed=1) == (
        f"{run} holds a run on other data than sklearn:digits as loaded now: its data options "
        "differ (--data-seed 0 -> 1); use a new --out folder, or pass the data options it "
        "recorded: --data-seed 0")
    draw(tmp_path / "d")
    spec = f"folder:{tmp_path / 'd'}"
    said = refusal(run, spec, val_fraction=0.3)
    assert said == (
        f"{run} holds a run on other data: its data options differ (--data sklearn:digits -> "
        f"{spec}; --val-fraction 0.2 -> 0.3); use a new --out folder, or pass the data "
        "options it recorded: --data sklearn:digits --val-fraction 0.2")
    assert said.count(spec) == 1
    # An option an older run.json does not record was its default then; a fit's folder can
    # also be discarded.
    edit_record(run, lambda m: (m["data"]["args"].pop("seed"), m.update(fit={})))
    assert refusal(run, "sklearn:digits", seed=2).endswith(
        "its data options differ (--data-seed 0 -> 2); use a new --out folder, or pass the "
        "data options it recorded: --data-seed 0; or fit it again from the start, discarding "
        "its results: `hubensemble fit --restart --catalogue FILE --data sklearn:digits "
        f"--data-seed 2 --out {run}` with your other fit options")


def test_a_python_caller_is_told_keywords_and_calls_not_flags(tmp_path):
    """From Python (`run_rank`, `fit`: attach_task outside `lockwords.command_line`) the
    refusal of other data named flags and commands the caller never typed: "--data-seed 0 ->
    1", "use a new --out folder", "`hubensemble fit --restart … --out R`"."""
    run = tmp_path / "run"
    attached(run, "sklearn:digits")
    said = refusal(run, "sklearn:digits", seed=1, command_line=False)
    assert said == (
        f"{run} holds a run on other data than sklearn:digits as loaded now: its data options "
        "differ (seed=0 -> 1); use a new out_dir folder, or pass the data options it "
        "recorded: seed=0")
    assert refusal(run, "sklearn:digits", seed=1, command_line=False, command="fit").endswith(
        "use a new out folder, or pass the data options it recorded: seed=0; or pass "
        f"restart=True to discard the results in {run}")
    # A fit's folder: the fit call that starts it again, with the fit's own options.
    edit_record(run, lambda m: m.update(fit={"options": {"profile": "quick", "top_k": 2}}))
    said = refusal(run, "sklearn:digits", seed=2, command_line=False)
    assert said.endswith(
        "or fit it again from the start, discarding its results: "
        f"hubensemble.fit(out={str(run)!r}, catalogue=FILE, data='sklearn:digits', "
        "data_args=DataArgs('sklearn:digits', seed=2), restart=True, top_k=2, profile='quick')")
    assert "--" not in said and "hubensemble " not in said, said
    # The command line still gets its flags and the command.
    assert refusal(run, "sklearn:digits", seed=2).endswith(
        "`hubensemble fit --restart --catalogue FILE --data sklearn:digits --data-seed 2 "
        f"--top-k 2 --profile quick --out {run}`")


def test_changed_files_name_the_classes_counts_labels_or_images_that_differ(tmp_path):
    d, run = tmp_path / "d", tmp_path / "run"
    draw(d)
    spec = f"folder:{d}"
    task = attached(run, spec)
    head = f"{run} holds a run on other data than {spec} as loaded now: "
    restore = "; use a new --out folder, or restore the data the run was recorded on"
    # Class a's images drawn again: the same classes, counts and labels, other pixels.
    draw(d, seed=1, classes=("a",))
    n = {s: int((getattr(task, s).labels == 0).sum()) for s in ("train", "val")}
    size = {s: len(getattr(task, s)) for s in ("train", "val")}
    assert refusal(run, spec) == head + "; ".join(
        f"{n[s]} of the {size[s]} {s} images are new or changed" for s in ("train", "val")
    ) + restore
    # A later stage on the changed folder says the same.
    with pytest.raises(RunError, match=rf"is not what the run started on \({n['train']} of the "
                                       rf"{size['train']} train images are new or changed;"):
        Run(run).task()
    draw(d, classes=("a",))  # as recorded again
    Run(run).task()
    # Classes a and b swapped: the same images, under the other labels.

    def swap():
        os.rename(d / "a", d / "x")
        os.rename(d / "b", d / "a")
        os.rename(d / "x", d / "b")

    swap()
    said = refusal(run, spec)
    assert said.startswith(head) and said.endswith(restore)
    assert "images have other labels" in said
    swap()
    Run(run).task()
    # A class and a file more.
    draw(d, classes=("d",), n=3)
    (d / "a" / "9.png").unlink()
    assert refusal(run, spec).startswith(
        head + "the classes differ (new: d); files read: 30 -> 32; train: ")


def test_a_run_recorded_by_an_older_hubensemble_says_so_and_not_to_restore(tmp_path):
    d, run = tmp_path / "d", tmp_path / "run"
    draw(d)
    spec = f"folder:{d}"
    attached(run, spec)
    head = f"{run} holds a run on other data than {spec} as loaded now: "
    new_out = ("use a new --out folder (this hubensemble does not decode the files as the one "
               "that recorded the run did)")

    def older(meta):  # as a version of 2026-11-30 wrote it, whose decoding differed
        for key in ("oriented", "turned", "coverage"):
            meta["data"]["task"].pop(key)
        meta["data"]["task"]["fingerprint"] = "0" * 64

    edit_record(run, older)
    Run(run).pixel_keys_path.unlink()
    assert refusal(run, spec) == head + (
        "the classes, the counts of files and examples and the labels are the same, so the "
        "images' pixels differ (the run recorded no pixel keys to tell which); the run was "
        "recorded by an older hubensemble (its data record has no oriented, turned, coverage; "
        "no "
        "RUN/labels/pixel_keys.npz), and decoding has changed since (docs/data.md, "
        f"Decoding); {new_out}")
    # A record without the fingerprint: refused with the reason (a KeyError before).
    edit_record(run, lambda m: m["data"]["task"].pop("fingerprint"))
    assert "its data record has no fingerprint, oriented, turned, coverage" in refusal(run, spec)


def test_a_deleted_or_damaged_pixel_keys_file_is_named_as_such_not_as_an_older_run(tmp_path):
    # A run of this version whose RUN/labels/pixel_keys.npz was deleted: the refusal said
    # "the run was recorded by an older hubensemble (no RUN/labels/pixel_keys.npz), and
    # decoding has changed since" and not to restore the data. Its run.json tells the two
    # apart (pixelkeys.keys_expected).
    d, run = tmp_path / "d", tmp_path / "run"
    draw(d)
    spec = f"folder:{d}"
    attached(run, spec)
    keys = Run(run).pixel_keys_path
    kept = keys.read_bytes()
    draw(d, seed=1, classes=("a",))  # other pixels, the same classes, counts and labels
    head = (f"{run} holds a run on other data than {spec} as loaded now: the classes, the "
            "counts of files and examples and the labels are the same, so the images' pixels "
            f"differ (which cannot be told: {keys} ")
    way = ("; `fit` or `rank` on this run's data writes it again); use a new --out folder, or "
           "restore the data the run was recorded on")
    keys.unlink()
    said = refusal(run, spec)
    assert said == head + ("is missing, though the hubensemble that wrote its run.json writes "
                           "it (deleted since)" + way)
    assert "older hubensemble" not in said
    keys.write_bytes(kept[:40])  # damaged
    said = refusal(run, spec)
    assert said.startswith(head + "is unreadable (") and said.endswith(way)
    assert "older hubensemble" not in said
    keys.write_bytes(b"x\n")  # other bytes: numpy's "load it unsafely" advice, quoted before
    assert refusal(run, spec).startswith(head + "is unreadable (not a NumPy .npy or .npz file)")
    np.savez(keys, fingerprint=np.array("2" * 64))  # another run's
    said = refusal(run, spec)
    assert said == head + f"records other data (fingerprint {'2' * 12}…) than its run.json" + way


def test_other_counts_in_an_older_record_name_the_older_hubensemble_as_a_cause(tmp_path):
    # A folder: run of hubensemble 679fffb on a folder with a byte-identical copy and 3
    # unreadable files: that version split the same files otherwise, and fit said only "the
    # data (train: 73 -> 72 examples; test: 24 -> 25 examples) changed since", as if they
    # had changed; a clean folder's upgrade named the older hubensemble.
    from hubensemble.resume import _data_change

    d, run = tmp_path / "d", tmp_path / "run"
    draw(d)
    shutil.copy(d / "a" / "0.png", d / "a" / "copy.png")
    for i in range(3):
        (d / "b" / f"bad{i}.png").write_bytes(b"not an image")
    spec = f"folder:{d}"
    attached(run, spec)
    written = ("name", "source", "fingerprint", "class_names", "num_classes", "sizes",
               "image_size", "same_size", "synthetic", "flip", "skipped")  # 679fffb's record

    def older(meta):  # one test example in train, as that version's split had it
        meta["data"]["task"] = {k: v for k, v in meta["data"]["task"].items() if k in written}
        meta["data"]["task"]["fingerprint"] = "0" * 64
        meta["data"]["args"].pop("dedupe")
        meta["data"]["task"]["sizes"]["train"] += 1
        meta["data"]["task"]["sizes"]["test"] -= 1

    edit_record(run, older)
    labels = Run(run).labels
    train, test = np.load(labels / "train.npy"), np.load(labels / "test.npy")
    np.save(labels / "train.npy", np.append(train, test[-1]))
    np.save(labels / "test.npy", test[:-1])
    Run(run).pixel_keys_path.unlink()
    sizes = json.loads((run / "run.json").read_text())["data"]["task"]["sizes"]
    counts = (f"train: {sizes['train']} -> {sizes['train'] - 1} examples; test: "
              f"{sizes['test']} -> {sizes['test'] + 1} examples")
    cause = ("the run was recorded by an older hubensemble (its data record has no spec, files, "
             "dropped, ignored, oriented, turned, unservable, dark, not_images, shrunk, "
             "duplicates, coverage, option dedupe; "
             "no RUN/labels/pixel_keys.npz), which may have read or split the same files "
             "otherwise (docs/data.md, Splits and Duplicates)")
    assert refusal(run, spec) == (
        f"{run} holds a run on other data than {spec} as loaded now: {counts}; {cause}; use a "
        "new --out folder, or restore the data the run was recorded on if it changed since")
    # fit's refusal ("the data (…) changed since RUN was fitted") says it too.
    args = DataArgs(spec=spec)
    meta = json.loads((run / "run.json").read_text())
    assert _data_change(meta["data"], args.load(), args, run=Run(run)) == (
        f"data ({counts}; {cause})")
    # The same counts, other labels (that version's split of the same sizes): said too.
    edit_record(run, lambda m: m["data"]["task"]["sizes"].update(
        train=sizes["train"] - 1, test=sizes["test"] + 1))
    assert (train[::-1] != train).any()
    np.save(labels / "train.npy", train[::-1])
    np.save(labels / "test.npy", test)
    assert cause in refusal(run, spec)


def test_images_this_version_shrinks_are_named_as_the_cause(tmp_path):
    # A run recorded before large images were shrunk (2026-12-03) holds them whole: other
    # pixel keys for them, the same for every other image.
    d, run = tmp_path / "d", tmp_path / "run"
    draw(d, n=4)
    draw(d, seed=3, classes=("a", "b", "c"), n=1, size=(1040, 1100))  # 0.png of each class
    spec = f"folder:{d}"
    task = attached(run, spec)
    big = {s: [min(im.shape[:2]) == 1024 for im in getattr(task, s).images]
           for s in ("train", "val")}
    assert sum(map(sum, big.values())) >= 1
    keys = dict(np.load(Run(run).pixel_keys_path))
    for s, flags in big.items():  # the keys of the images whole
        keys[s] = np.stack([np.frombuffer(pixel_key(np.zeros((1040, 1100, 3), np.uint8))
                                          if b else bytes(k), np.uint8)
                            for k, b in zip(keys[s], flags)])
    keys["fingerprint"] = np.array("1" * 64)
    np.savez(Run(run).pixel_keys_path, **keys)
    edit_record(run, lambda m: m["data"]["task"].update(fingerprint="1" * 64))
    said = refusal(run, spec)
    shrunk = sum(map(sum, big.values()))
    assert (f"{shrunk} of them now {'has' if shrunk == 1 else 'have'} a shorter side of 1024 "
            "px: since 2026-12-03 hubensemble shrinks larger images to that (docs/data.md, "
            "Decoding), and a run recorded before holds them whole; use a new --out folder "
            "(this hubensemble does not decode the files as the one that recorded the run "
            "did)") in said
    assert "restore" not in said


def pasted(message, **values):
    """The `hubensemble …` command lines in backticks in `message`, as argv lists for
    cli.main, with its placeholders (NEW, FILE, …) replaced by `values`."""
    return [[values.get(word, word) for word in shlex.split(line)]
            for line in re.findall(r"`hubensemble ([^`]*)`", message)]


def test_a_later_stage_on_a_ranks_folder_names_a_rank_command_that_runs(
        tmp_path, module_factory, in_process):
    """Before, `tune --run R` on a folder that `rank` made said "restore the data, or rerun
    from the start with --restart": tune takes no --restart, and no command discards a rank's
    folder. Each way out now is a whole command; pasted, it runs."""
    module = tmp_path / "m"
    shutil.copytree(module_factory("again", seed=0, width=6), module)
    cat = tmp_path / "cat.yaml"
    cat.write_text(f"modules:\n  - {{name: m, handle: {module}}}\n")
    d, run = tmp_path / "d", tmp_path / "run"
    draw(d)
    spec = f"folder:{d}"
    rank = ["rank", "--catalogue", cat, "--data", spec, "--profile", "quick", "-q"]
    assert in_process(*rank, "--out", run)[0] == 0
    draw(d, seed=1, classes=("a",))  # the files changed
    code, out, err = in_process("tune", "--run", run, "--profile", "quick", "-q")
    assert code == 2 and "--restart" not in err, err
    assert "is not what the run started on" in err and err.rstrip().endswith(
        f"restore the data, or rank into a new folder and go on from there: `hubensemble rank "
        f"--catalogue {cat} --data {spec} --out NEW` with your other rank options")
    [argv] = pasted(err, NEW=str(tmp_path / "new"))
    assert in_process(*argv, "--profile", "quick", "-q")[0] == 0
    assert (tmp_path / "new" / "ranking.json").exists()

    # A rank without a val split: tune names the rank that gives one (no --val-fraction 0).
    assert in_process(*rank, "--val-fraction", "0", "--data-seed", "2", "--out",
                      tmp_path / "noval")[0] == 0
    code, out, err = in_process("tune", "--run", tmp_path / "noval", "--profile", "quick", "-q")
    assert code == 2 and "has no validation examples" in err and "--restart" not in err, err
    [argv] = pasted(err, NEW=str(tmp_path / "val"))
    assert argv == ["rank", "--catalogue", str(cat), "--data", spec, "--data-seed", "2",
                    "--out", str(tmp_path / "val")]
    assert in_process(*argv, "--profile", "quick", "-q")[0] == 0
    assert Run(tmp_path / "val").meta()["data"]["task"]["sizes"]["val"] > 0

    # The module's files changed in place: tune and distill say the same way out.
    shutil.rmtree(module / "variables")
    shutil.copytree(module_factory("again-other", seed=5, width=6) + "/variables",
                    module / "variables")
    code, out, err = in_process("tune", "--run", tmp_path / "new", "--profile", "quick", "-q")
    assert code == 2 and "the files of module m changed" in err and "--restart" not in err, err
    assert pasted(err) == [["rank", "--catalogue", str(cat), "--data", spec, "--out", "NEW"]]

    # A run.json damaged by hand: every command names the fit that discards the folder.
    (tmp_path / "new" / "run.json").write_text("{")
    code, out, err = in_process("tune", "--run", tmp_path / "new", "-q")
    assert code == 2 and (f"`hubensemble fit --restart --catalogue FILE --data SPEC --out "
                          f"{tmp_path / 'new'}`") in err, err


@pytest.mark.slow
def test_the_reports_evaluate_advice_and_a_fits_restart_command_run_pasted(
        tmp_path, module_factory, in_process, figures_not_drawn):
    """A new-user check: after `ensemble` chose another ensemble, the report's Robustness
    section said "Run `hubensemble export --run RUN`, then `hubensemble evaluate --model
    RUN/export --data SPEC …`", although the run knew its data. Pasted, each command runs;
    evaluate then reads the run's data as the fit did (--data-seed and --val-fraction too,
    which evaluate's --data cannot take), and the report says the evaluation is this one's.

    Then, the data changed: before, `export --run F` said "rerun from the start with
    --restart" (export takes none) and `rank --out F` said "`fit --restart` discards a fit's
    old results" without the rest of the command. (One fit for both checks, the most of this
    test's time; they were two tests of a fit each. Each fit tunes two single-trial
    candidates, `--sweep combined --budget 2`, not the default sweep's four trials: two are
    the fewest that give an ensemble another one can be chosen from, and the options reach
    the advised fit command as well. The report is read for its words only: its figures are
    not drawn, `figures_not_drawn`; two fits and five reports drew them.)"""
    cat = tmp_path / "cat.yaml"
    cat.write_text(f"modules:\n  - {{name: m, handle: {module_factory('fit0', seed=0)}}}\n")
    # A run folder with a space: each pasted command is still one word per path (the export
    # advice split "my runs/run" in two).
    d, run = tmp_path / "d", tmp_path / "my runs" / "run"
    draw(d, n=12)
    fit = ["--profile", "quick", "--top-k", "1", "--data-seed", "1", "--val-fraction", "0.3",
           "--sweep", "combined", "--budget", "2"]
    assert in_process("fit", "--catalogue", cat, "--data", f"folder:{d}", "--out", run, *fit,
                      "-q")[0] == 0
    fitted = json.loads((run / "ensemble.json").read_text())["members"]
    assert len(fitted) >= 2  # so that one member is another ensemble
    assert in_process("ensemble", "--run", run, "--max-members", "1", "-q")[0] == 0
    assert in_process("report", "--run", run, "-q")[0] == 0
    text = (run / "report.md").read_text()
    section = text[text.index("## Robustness"):text.index("## What failed")]
    assert "This evaluation is of an earlier ensemble" in section, section
    commands = pasted(section)
    assert [argv[0] for argv in commands] == ["export", "evaluate"], section
    assert commands[1] == ["evaluate", "--model", str(run / "export"), "--corruptions",
                           "--out", str(run / "robustness.json")]
    for argv in commands:
        assert in_process(*argv, "-q")[0] == 0, argv
    evaluated = json.loads((run / "robustness.json").read_text())
    assert evaluated["task"]["fingerprint"] == json.loads(
        (run / "run.json").read_text())["data"]["task"]["fingerprint"]  # the run's own split
    assert [m["trial"] for m in evaluated["members"]] == [
        m["trial"] for m in json.loads((run / "ensemble.json").read_text())["members"]]
    assert in_process("report", "--run", run, "-q")[0] == 0
    assert "earlier ensemble" not in (run / "report.md").read_text()
    # An export moved away from its run, evaluated on its own folder, is scored on the test
    # split that fit's --data-seed 1 --val-fraction 0.3 held out: it scored every image,
    # the 70 % that trained it too, since only fit's default split was tried. The export is
    # copied there and run.json records it as `export --out` does (Run.export_record): an
    # `export --out` of its own here was 6 s of CPU, and the pasted advice below runs one.
    away = tmp_path / "served"
    shutil.copytree(run / "export", away)
    edit_record(run, lambda m: m["export"].update(Run(run).export_record(away)))
    assert in_process("evaluate", "--model", away, "--data", f"folder:{d}", "--out",
                      tmp_path / "away.json", "-q")[0] == 0
    recorded = json.loads((run / "run.json").read_text())["data"]["task"]
    away_eval = json.loads((tmp_path / "away.json").read_text())
    assert away_eval["task"]["fingerprint"] == recorded["fingerprint"]
    assert away_eval["n"] == recorded["sizes"]["test"] == evaluated["n"]
    assert away_eval["clean"] == evaluated["clean"]
    # That folder, an image added since: its split cannot be drawn, every image is scored,
    # and evaluate says how many files differ by the export's record of them.
    files = json.loads((away / "assets" / "hubensemble.json").read_text())["task"]["files"]
    assert files["count"] == 36 and len(files["train"]) == recorded["sizes"]["train"]
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(d / "b" / "new.png")
    code, _, err = in_process("evaluate", "--model", away, "--data", f"folder:{d}")
    assert code == 0 and (f"{d} holds 36 of the 36 files this export was fit on (by name; "
                          "its metadata's task.files), but 1 file differs") in err, err
    os.unlink(d / "b" / "new.png")
    # The run's export now recorded elsewhere (`export --out`), made stale by another
    # `ensemble`: the advice exported to RUN/export and evaluated the stale --out folder.
    # Now both name the recorded folder, by absolute paths: pasted from another folder
    # they run, and the next report says nothing stale.
    assert in_process("ensemble", "--run", run, "-q")[0] == 0  # the fit's 2+ members again
    assert in_process("report", "--run", run, "-q")[0] == 0
    section = (run / "report.md").read_text()
    section = section[section.index("## Robustness"):section.index("## What failed")]
    commands = pasted(section)
    assert [argv[:5] for argv in commands] == [
        ["export", "--run", str(run), "--out", str(away)],
        ["evaluate", "--model", str(away), "--data", f"folder:{d}"]], section
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cwd = os.getcwd()
    try:
        os.chdir(elsewhere)
        for argv in commands:
            assert in_process(*argv, "-q")[0] == 0, argv
    finally:
        os.chdir(cwd)
    assert list(elsewhere.iterdir()) == []
    assert in_process("report", "--run", run, "-q")[0] == 0
    assert "earlier ensemble" not in (run / "report.md").read_text()
    # An export outside the run names the data as recorded (evaluate cannot find the run).
    from hubensemble.rerun import evaluate_data_flags

    assert evaluate_data_flags({"spec": "folder:/my data", "seed": 1}, in_run=False) == (
        " --data 'folder:/my data'")
    assert evaluate_data_flags({"spec": "tfds:beans", "data_dir": "/tfds"}, in_run=False) == (
        " --data tfds:beans --data-dir /tfds")
    for in_run in (True, False):  # data from Python: only the user can name it
        assert evaluate_data_flags({"spec": None, "reloadable": False},
                                   in_run=in_run) == " --data SPEC"

    # The fit's folder on changed data: each command names the whole fit that discards it,
    # with the fit's own options (pasted without them, a cpu fit of --top-k 15 started).
    spec = f"folder:{d}"
    draw(d, seed=1, classes=("a",))
    command = (f"`hubensemble fit --restart --catalogue {cat} --data {spec} --data-seed 1 "
               "--val-fraction 0.3 --top-k 1 --sweep combined --budget 2 --profile quick "
               f"--out {shlex.quote(str(run))}`")
    for argv in (["export", "--run", run], ["distill", "--run", run],
                 ["evaluate", "--model", run / "export"]):
        code, out, err = in_process(*argv, "-q")
        assert code == 2 and err.rstrip().endswith(
            "restore the data, or fit it again from the start, discarding its results: "
            + command), (argv, err)
    # rank on it: the data it was given now, and fit's command to discard the fit.
    code, out, err = in_process("rank", "--catalogue", cat, "--data", spec, "--data-seed", "2",
                                "--val-fraction", "0.3", "--out", run, "--profile", "quick",
                                "--top-k", "1", "-q")
    assert code == 2 and err.rstrip().endswith(
        "use a new --out folder, or pass the data options it recorded: --data-seed 1; or fit "
        "it again from the start, discarding its results: `hubensemble fit --restart "
        f"--catalogue {cat} --data {spec} --data-seed 2 --val-fraction 0.3 --top-k 1 "
        f"--sweep combined --budget 2 --profile quick --out {shlex.quote(str(run))}`"), err
    # fit itself is told its own flag.
    code, out, err = in_process("fit", "--catalogue", cat, "--data", spec, "--out", run, *fit,
                                "-q")
    assert code == 2 and "pass --restart to discard the old results" in err, err
    [argv] = pasted(command)
    assert in_process(*argv, "-q")[0] == 0
    options = json.loads((run / "run.json").read_text())["fit"]["options"]
    assert (options["profile"], options["top_k"], options["sweep"], options["budget"]) == (
        "quick", 1, "combined", 2)
    # What refused the changed data takes the fit's again (export, distill and evaluate ask
    # the same check, above): evaluate, 1 s, not export, which wrote the fit's export again
    # (5 s of CPU).
    assert in_process("evaluate", "--model", run / "export", "-q")[0] == 0


def test_advice_names_every_path_absolute_and_runs_pasted_in_another_folder(
        tmp_path, module_factory, in_process, monkeypatch):
    """Advice kept --catalogue and --out as typed: after `rank --catalogue cat.yaml --data
    folder:d --out run` from one folder, the way out of a later refusal, pasted in another
    folder, named no catalogue there ("cat.yaml" relative) and another run folder. Every
    path flag of advice is absolute now (text.shell), as the report's already were."""
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    (work / "cat.yaml").write_text(
        f"modules:\n  - {{name: m, handle: {module_factory('abs', seed=0, width=6)}}}\n")
    draw(work / "d")
    monkeypatch.chdir(work)
    rank = ["rank", "--catalogue", "cat.yaml", "--data", "folder:d", "--profile", "quick", "-q"]
    assert in_process(*rank, "--out", "run")[0] == 0
    # A stage that needs candidates names the tune that writes them, by the run's path.
    code, _, err = in_process("ensemble", "--run", "run", "-q")
    assert code == 2 and f"`hubensemble tune --run {work / 'run'}`" in err, err
    draw(work / "d", seed=1, classes=("a",))  # the files changed: the run's data is gone
    code, _, err = in_process("tune", "--run", "run", "--profile", "quick", "-q")
    assert code == 2 and "is not what the run started on" in err, err
    [argv] = pasted(err, NEW="new")
    assert argv == ["rank", "--catalogue", str(work / "cat.yaml"), "--data",
                    f"folder:{work / 'd'}", "--out", "new"], argv
    monkeypatch.chdir(elsewhere)
    assert in_process(*argv, "--profile", "quick", "-q")[0] == 0
    assert (elsewhere / "new" / "ranking.json").exists()
    # A fit's folder: the whole fit command, its --catalogue, --out and --export absolute
    # (its words checked by the parser here, in the other folder: a fit takes minutes).
    from hubensemble.cli import build_parser
    from hubensemble.rerun import fit_command, start_again

    meta = json.loads((work / "run" / "run.json").read_text())
    meta["fit"] = {"options": {"profile": "quick", "top_k": 1},
                   "catalogue": [f"{work / 'cat.yaml'}:2"]}
    meta["stages"] = {"export": {"record": {"path": str(tmp_path / "served"), "in_run": None}}}
    monkeypatch.chdir(work)
    with lockwords.command_line():
        said = start_again("run", meta, "rank")
    [argv] = pasted(said)
    monkeypatch.chdir(elsewhere)
    args = build_parser().parse_args(argv)
    assert (args.catalogue, args.out, args.export) == (
        [str(work / "cat.yaml")], str(work / "run"), str(tmp_path / "served")), argv
    assert (args.profile, args.top_k, args.data) == ("quick", 1, f"folder:{work / 'd'}")
    monkeypatch.chdir(work)
    assert fit_command("run", meta, restart=False).endswith(f"--out {work / 'run'}")
    # From Python, the fit call, its paths absolute as well.
    assert start_again("run", meta, "rank").endswith(
        f"fit(out={str(work / 'run')!r}, catalogue={str(work / 'cat.yaml')!r}, "
        f"data={'folder:' + str(work / 'd')!r}, restart=True, "
        f"export={str(tmp_path / 'served')!r}, top_k=1, profile='quick')")
    # The options of a refused call replace the recorded ones (`tune --profile paper` refused
    # for the pool's quick was told to fit again at quick), in a rank folder's advice too.
    with lockwords.command_line():
        [argv] = pasted(start_again("run", meta, now={"profile": "paper"}))
        assert build_parser().parse_args(argv).profile == "paper" and "quick" not in argv, argv
        ranked = json.loads((work / "run" / "run.json").read_text())
        [argv] = pasted(start_again("run", ranked, now={"profile": "paper"}), NEW="new")
        assert build_parser().parse_args(argv).profile == "paper", argv
    # From Python, the run_rank call with the refused call's options.
    assert start_again("run", ranked, now={"profile": "paper"}).startswith(
        "rank into a new folder and go on from there: run_rank(out_dir=NEW, "
        f"specs=load_catalogue({str(work / 'cat.yaml')!r}), "
        f"task=load_task({'folder:' + str(work / 'd')!r}), profile='paper')")


def test_catalogue_sources_are_recorded_absolute_so_later_advice_names_the_file(
        tmp_path, module_factory, in_process, monkeypatch):
    """`rank --catalogue cat.yaml` recorded each entry's source as typed ("cat.yaml:2", in
    run.json and ranking.json), so a later refusal's advice, given in another folder, named
    that folder's cat.yaml, or FILE where it had none. The source is absolute from the load
    on; a run.json of before, with the source as typed, still reads, and what ranking.json's
    catalogue record hashes (the source is not in it) is the same for both."""
    from hubensemble.catalogue import ModuleSpec, load_catalogue
    from hubensemble.rank.ranking import catalogue_record

    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    (work / "cat.yaml").write_text(
        f"modules:\n  - {{name: m, handle: {module_factory('abs', seed=0, width=6)}}}\n")
    (elsewhere / "cat.yaml").write_text("modules: []\n")  # another catalogue, the same name
    draw(work / "d")
    monkeypatch.chdir(work)
    assert in_process("rank", "--catalogue", "cat.yaml", "--data", "folder:d", "--profile",
                      "quick", "-q", "--out", "run")[0] == 0
    source = f"{work / 'cat.yaml'}:2"
    run_json = work / "run" / "run.json"
    meta = json.loads(run_json.read_text())
    assert meta["modules"]["m"]["source"] == source
    ranking = json.loads((work / "run" / "ranking.json").read_text())
    assert [row["source"] for row in ranking["modules"]] == [source]
    draw(work / "d", seed=1, classes=("a",))  # the run's data is gone: tune refuses
    monkeypatch.chdir(elsewhere)
    code, _, err = in_process("tune", "--run", work / "run", "--profile", "quick", "-q")
    assert code == 2 and "is not what the run started on" in err, err
    [argv] = pasted(err, NEW="new")
    assert argv[:3] == ["rank", "--catalogue", str(work / "cat.yaml")], err
    # A run.json of before: the source as typed reads, and names the file from its folder.
    meta["modules"]["m"]["source"] = "cat.yaml:2"
    run_json.write_text(json.dumps(meta))
    old = ModuleSpec.from_json(meta["modules"]["m"])
    assert old.field_source("handle") == "cat.yaml:2"
    assert catalogue_record([old]) == catalogue_record(load_catalogue(work / "cat.yaml"))
    monkeypatch.chdir(work)
    code, _, err = in_process("tune", "--run", "run", "--profile", "quick", "-q")
    assert code == 2 and pasted(err)[0][:3] == ["rank", "--catalogue", str(work / "cat.yaml")]


def test_no_val_split_from_copies_of_one_image_says_so_not_raise_the_fraction(
        tmp_path, in_process):
    """A new-user check: 3 class folders of 20 copies of one PNG were refused with "give the
    data a validation split (a val/ folder, or --val-fraction above 0 …)" at --val-fraction
    0.2: exact copies go to one split together, so the carve saw one image. The refusal says
    that, with the count per class, and no --val-fraction; classes of two different images
    each are named as too few the same way."""
    from hubensemble.data import load_task
    from hubensemble.datachange import require_validation

    one = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    for c in "abc":
        (tmp_path / "same" / c).mkdir(parents=True)
        for i in range(20):
            Image.fromarray(one).save(tmp_path / "same" / c / f"{i}.png")
    cat = tmp_path / "c.yaml"
    cat.write_text("modules:\n  - {name: m, handle: zoo:demo/none}\n")
    code, _, err = in_process("fit", "--catalogue", cat, "--data", f"folder:{tmp_path / 'same'}",
                              "--out", tmp_path / "run", "-q")
    assert code == 2 and "every image is a copy of one (exact copies go to one split" in err, err
    assert "distinct images per class: a 1, b 0, c 0" in err and "--val-fraction" not in err, err
    draw(tmp_path / "two", n=2)
    with pytest.raises(RunError) as e:
        require_validation(load_task(f"folder:{tmp_path / 'two'}", progress=False))
    assert "it has 6 images: a class gives the validation split an image only once it has 3 " \
           "distinct ones (2 stay for training); distinct images per class: a 2, b 2, c 2" \
           in str(e.value) and "--val-fraction" not in str(e.value), str(e.value)


def test_the_spec_an_exports_source_names_keeps_parentheses_and_spaces_of_its_path(tmp_path):
    """A folder `imgs (2)` was suggested as `folder:…/imgs`: metadata_spec cut the source's
    last parenthesis, which was the path's own when no "(how)" followed (a Task made in
    Python, named by its spec), or the cut missed when the "how" held a parenthesis of its
    own (an npz key). The spec whose path is there is taken, from any of its cut places."""
    from hubensemble.datachange import metadata_spec

    how = " (class folders; val 0.2 / test 0.2 of each class split off (seed 0))"
    for name in ("imgs (2)", "im(gs", "im)gs", "a (b) c", "x (", ") y"):
        (tmp_path / name).mkdir()
        spec = f"folder:{tmp_path / name}"
        for source in (spec + how, spec + " (train/, val/)", spec):
            assert metadata_spec({"task": {"source": source}}) == spec, source
    (tmp_path / "b (2).npz").write_bytes(b"")
    spec = f"npz:{tmp_path / 'b (2).npz'}"
    for source in (f"{spec} (x_tr(ain (as train), y_train)", f"{spec} (x), y_train)", spec):
        assert metadata_spec({"task": {"source": source}}) == spec, source
    # Gone from this machine: the loaders' "SPEC (how)" cut, as before; no spec: None.
    gone = f"folder:{tmp_path / 'gone (1)'}"
    assert metadata_spec({"task": {"source": gone + how}}) == gone
    assert metadata_spec({"task": {"source": "arrays"}}) is None
    assert metadata_spec({"task": {"source": "tfds:x (train 5; its 'im(' pixels)"}}) == "tfds:x"


def test_an_exports_metadata_records_its_data_spec_and_metadata_spec_reads_it_first(
        tmp_path, monkeypatch):
    """With its folder gone, an export of `folder:…/imgs (2)` was said to be made from
    `folder:…/imgs` when a folder `imgs` was there (the guess takes the cut whose path
    exists), so evaluate's advice named other data. The spec itself is recorded (the
    export's metadata and run.json's task, "spec") and read first; an older export's
    source is still guessed from."""
    from hubensemble.data import Split, Task, load_task
    from hubensemble.datachange import metadata_spec
    from hubensemble.export.metadata import export_metadata

    data = tmp_path / "imgs (2)"
    draw(data, classes=("a", "b"), n=5)
    task = load_task(f"folder:{data}", progress=False)
    spec = f"folder:{data}"
    assert task.spec == spec and task.to_json()["spec"] == spec  # run.json's record
    meta = export_metadata({}, [], [], task, retrain_full=False)
    assert meta["task"]["spec"] == spec
    data.rename(tmp_path / "moved")
    (tmp_path / "imgs").mkdir()  # another folder, which the guess took
    assert metadata_spec(json.loads(json.dumps(meta))) == spec
    old = {"task": {k: v for k, v in meta["task"].items() if k != "spec"}}
    assert metadata_spec(old) == f"folder:{tmp_path / 'imgs'}"  # older exports: the guess
    (tmp_path / "imgs").rmdir()
    assert metadata_spec(old) == spec
    # A relative spec is recorded absolute; a Task made in Python records none.
    monkeypatch.chdir(tmp_path)
    assert load_task("folder:moved", progress=False).spec == f"folder:{tmp_path / 'moved'}"

    made = Task(name="m", source="arrays", class_names=["a", "b"],
                train=Split(np.zeros((4, 8, 8, 3), np.uint8), np.array([0, 1, 0, 1])))
    assert made.spec is None and "spec" not in export_metadata({}, [], [], made,
                                                               retrain_full=False)["task"]
