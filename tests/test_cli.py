"""The command line: exit codes, messages without tracebacks, stage commands over files."""

import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import bounded_by_cpu

ROOT = Path(__file__).resolve().parent.parent


def hubensemble(*args, env=None, cwd=None, cpu=600):
    out = bounded_by_cpu([sys.executable, "-m", "hubensemble", *args], capture_output=True,
                         text=True, env=env, cwd=cwd, cpu=cpu)
    return out.returncode, out.stdout, out.stderr


#: `hubensemble ARGV` for each ARGV of the JSON list argv[1], one after another in this one
#: process, each followed on stdout by a line [exit code, whether TensorFlow is imported by
#: then], and on stdout and stderr by a NUL line that ends its words.
EACH_ARGV = """if True:
    import json, sys
    from hubensemble.cli import main
    for argv in json.loads(sys.argv[1]):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse's usage errors
            code = e.code
        print(json.dumps([code, "tensorflow" in sys.modules]), flush=True)
        print("\\0", flush=True)
        print("\\0", file=sys.stderr, flush=True)
"""


def each_in_one_process(*argvs, cpu=120, **kwargs):
    """[(exit code, stdout, stderr, whether TensorFlow is imported by then)] of `hubensemble
    ARGV` for each of `argvs`, run one after another in one new process: the refusals made
    before TensorFlow loads, each in the words a process of its own shows (stdout and stderr
    are the command's alone), for one Python start-up rather than one each."""
    listed = json.dumps([[str(a) for a in argv] for argv in argvs])
    run = bounded_by_cpu([sys.executable, "-c", EACH_ARGV, listed], capture_output=True,
                         text=True, cpu=cpu, **kwargs)
    assert run.returncode == 0, run.stderr[-3000:]
    outs, errs = run.stdout.split("\0\n")[:-1], run.stderr.split("\0\n")[:-1]
    assert len(outs) == len(errs) == len(argvs), (run.stdout, run.stderr[-3000:])
    said = []
    for out, err in zip(outs, errs):
        out, _, last = out.rstrip("\n").rpartition("\n")
        code, tensorflow = json.loads(last)
        said.append((code, out + "\n" if out else "", err, tensorflow))
    return said


def two_modules_and_data(tmp_path, module_factory, prefix):
    """(catalogue, npz) in `tmp_path`: two tiny modules of widths 4 and 6 (m0, m1, made by
    `module_factory` under `prefix`) and 64 training / 32 validation 8x8 images of 4
    classes, on which a probe trains in a fraction of a second."""
    cat = tmp_path / "c.yaml"
    cat.write_text("modules:\n" + "".join(
        f"  - {{name: m{i}, handle: {module_factory(f'{prefix}{i}', seed=i, width=4 + 2 * i)}}}"
        "\n" for i in range(2)))
    rng = np.random.default_rng(0)
    data = tmp_path / "d.npz"
    np.savez(data, x_train=rng.integers(0, 256, (64, 8, 8, 3), np.uint8),
             y_train=np.arange(64) % 4, x_val=rng.integers(0, 256, (32, 8, 8, 3), np.uint8),
             y_val=np.arange(32) % 4)
    return cat, data


def stand_in(tmp_path, name):
    """A catalogue handle that fails in rank, after TensorFlow's import: a file that is there
    but holds no module (a missing path is refused before it: `commands._missing_modules`)."""
    path = tmp_path / name
    path.write_text("not a module\n")
    return path


@pytest.fixture
def env(tmp_path):
    return dict(os.environ, HUBENSEMBLE_CACHE_DIR=str(tmp_path / "cache"))


@pytest.fixture
def in_process(in_process, monkeypatch, env):
    """conftest's `in_process` with `env`'s cache folder (that of the `hubensemble` calls)."""
    monkeypatch.setenv("HUBENSEMBLE_CACHE_DIR", env["HUBENSEMBLE_CACHE_DIR"])
    return in_process


def test_help_lists_every_stage():
    # Both in one process (`each_in_one_process`), each in its own words.
    (code, out, _, _), (code2, out2, _, _) = each_in_one_process(["--help"], ["rank", "--help"])
    assert code == 0
    for command in ("catalogue", "rank", "tune", "ensemble", "export", "predict", "evaluate",
                    "report", "fit", "demo", "zoo", "cost", "distill"):
        assert command in out
    code, out = code2, out2  # rank --help: merge was listed twice, once bare
    positional = out.split("positional arguments:")[1].split("options:")[0]
    assert code == 0 and positional.split() == "merge combine `rank --shard` outputs".split()


@pytest.mark.parametrize("argv, said", [
    # rank took the flag's value for its sub-command: "argument merge: invalid choice: '3'".
    (("rank", "--topk", "3", "--out", "r"), "unrecognized arguments: --topk 3 (did you mean "
                                            "--top-k?)\n"),
    (("rank", "-Top_K", "3"), "unrecognized arguments: -Top_K 3 (did you mean --top-k?)\n"),
    (("fit", "--topk", "3", "--budgt=4", "--catalogue", "c", "--data", "d", "--out", "r"),
     "unrecognized arguments: --topk 3 --budgt=4 (did you mean --top-k for --topk, --budget "
     "for --budgt?)\n"),
    (("zoo", "build", "--out", "z", "--size=3", "--seeds", "2"),
     "unrecognized arguments: --size=3 --seeds 2 (did you mean --seed for --seeds?)\n"),
    (("tune", "--run", "r", "--zzzz"), "unrecognized arguments: --zzzz\n"),
    (("fit", "--catalogue", "c", "--data", "d", "--out", "r", "--max-trails", "3"),
     "unrecognized arguments: --max-trails 3\n"),  # no far-fetched --max-failures
    (("tune", "--rn", "r"), "the following arguments are required: --run; unrecognized "
                            "arguments: --rn r (did you mean --run?)\n"),
    # From a second check: the other unknown flags kept their values; letters swapped; a
    # stray word (an unquoted path with a space) was "argument merge: invalid choice".
    (("rank", "--metirc", "knn", "--kk", "2", "--topk", "3"),
     "unrecognized arguments: --metirc knn --kk 2 --topk 3 (did you mean --metric for "
     "--metirc, --k for --kk, --top-k for --topk?)\n"),
    (("rank", "--data", "folder:/my", "dir", "--out", "r"), "unrecognized arguments: dir\n"),
    # Another command's flag (with "=value" too): no hint at all, though the README promised
    # one; now the commands that take it, and this command's nearest flag.
    (("predict", "--model", "m", "--top-k", "2", "x.png"), "unrecognized arguments: --top-k "
     "(did you mean --top?; demo, fit, rank, rank merge take --top-k, predict does not)\n"),
    (("predict", "--model", "m", "--top-k=2", "x.png"), "unrecognized arguments: --top-k=2 "
     "(did you mean --top?; demo, fit, rank, rank merge take --top-k, predict does not)\n"),
    (("predict", "--model", "m", "x.png", "--corruptions=jpeg"), "unrecognized arguments: "
     "--corruptions=jpeg (evaluate takes --corruptions, predict does not)\n"),
    (("evaluate", "--model", "m", "--tpo", "3"), "unrecognized arguments: --tpo 3 (predict "
     "takes --top, evaluate does not)\n"),
    # A flag for what a command does under other flags (INTENT_FLAGS): `tune --chief` had
    # no hint, `tune --worker` pointed at zoo build's --workers.
    (("tune", "--run", "r", "--chief"), "unrecognized arguments: --chief (a distributed "
     "sweep's chief takes `--tuner-id chief --oracle HOST:PORT`; see docs/tune.md "
     "'Distributed sweeps') "
     "[read it offline: hubensemble docs tune#distributed-sweeps-chief--workers]\n"),
    (("tune", "--run", "r", "--worker"), "unrecognized arguments: --worker (each worker of a "
     "distributed sweep takes `--tuner-id tunerN --oracle HOST:PORT`; see docs/tune.md "
     "'Distributed sweeps') "
     "[read it offline: hubensemble docs tune#distributed-sweeps-chief--workers]\n"),
    (("tune", "--run", "r", "--workers", "2"), "(each of a distributed sweep's worker "
     "processes takes `--tuner-id tunerN --oracle HOST:PORT`; see docs/tune.md 'Distributed "
     "sweeps'; zoo build takes --workers, tune does not) "
     "[read it offline: hubensemble docs tune#distributed-sweeps-chief--workers]\n"),
    (("rank", "--chief"), "(a distributed sweep's chief takes `hubensemble tune --tuner-id "
     "chief --oracle HOST:PORT`; see docs/tune.md 'Distributed sweeps') "
     "[read it offline: hubensemble docs tune#distributed-sweeps-chief--workers]\n"),
    # A learning rate or steps as Keras' fit takes them: "(catalogue add takes --layer, tune
    # does not)" for --lr, nothing for --steps; a command with its own (distill) names it.
    (("tune", "--run", "r", "--lr", "0.01"), "unrecognized arguments: --lr 0.01 (learning "
     "rates and training steps are a sweep's, scaled by a profile: `--sweep SWEEP --profile "
     "paper|cpu|quick`; see docs/tune.md 'Sweeps', 'Profiles') "
     "[read them offline: hubensemble docs tune#sweeps, hubensemble docs tune#profiles]\n"),
    (("rank", "--epochs=3"), "(learning rates and training steps are a sweep's, scaled by a "
     "profile: `hubensemble tune --sweep SWEEP --profile paper|cpu|quick`; see docs/tune.md "
     "'Sweeps', 'Profiles') "
     "[read them offline: hubensemble docs tune#sweeps, hubensemble docs tune#profiles]\n"),
    (("distill", "--run", "r", "--lr", "1", "--steps", "2"), "unrecognized arguments: --lr 1 "
     "--steps 2 (did you mean --distill-lr for --lr, --distill-steps for --steps?; --distill-lr "
     "is the student's learning rate as a multiple of its module's best candidate's; "
     "--distill-steps is the student's training steps as a multiple of its module's best "
     "candidate's)\n"),
    # In any case, Keras' own spelling, singular: --LR was "(catalogue add takes --layer, tune
    # does not)", --step "did you mean --sweep?", --learning_rate nothing (a new user's
    # check); the note is said once for all of them.
    (("tune", "--run", "r", "--LR", "0.1", "--learning_rate=0.1", "--step", "3"),
     "unrecognized arguments: --LR 0.1 --learning_rate=0.1 --step 3 (learning rates and "
     "training steps are a sweep's, scaled by a profile: `--sweep SWEEP --profile "
     "paper|cpu|quick`; see docs/tune.md 'Sweeps', 'Profiles') "
     "[read them offline: hubensemble docs tune#sweeps, hubensemble docs tune#profiles]\n"),
    # An epoch count is distill's --distill-steps, a multiple (it was sent to tune's sweeps).
    (("distill", "--run", "r", "--LR", "1", "--Epoch", "2"), "unrecognized arguments: --LR 1 "
     "--Epoch 2 (did you mean --distill-lr for --LR, --distill-steps for --Epoch?; --distill-lr "
     "is the student's learning rate as a multiple"),
    # A command's flag typed before the command: "invalid choice: '3'", or no hint.
    (("--top-k", "3", "fit"), "unrecognized arguments: --top-k 3 (--top-k goes after the "
     "command: demo, fit, rank, rank merge take it)\n"),
    (("-q", "--corruptions"), "unrecognized arguments: --corruptions (--corruptions goes after "
     "the command: evaluate takes it)\n"),
    # A mistyped sub-command stays one, whatever flags come before or after it.
    (("zoo", "bild", "--out", "z"), "'bild' is not a zoo command (did you mean build?)"),
    (("catalogue", "valdate", "c.yaml", "--verbose"), "'valdate' is not a catalogue command "
                                                      "(did you mean validate?)"),
    (("rank", "-q", "mrege", "a"), "'mrege' is not a rank command (did you mean merge?)"),
    # A case alone: difflib's ratio took it for a stray word ("unrecognized arguments: MERGE").
    (("rank", "-q", "MERGE", "a"), "'MERGE' is not a rank command (did you mean merge?)"),
    # A mistyped choice VALUE (a slip, or a case alone: refused, and now said): the options'
    # said "must be one of …, got 'quik'", argparse's "invalid choice: 'dmeo' (choose from …)".
    (("zoo", "build", "--out", "z", "--preset", "dmeo"), "argument --preset: invalid choice: "
     "'dmeo' (did you mean demo?); choose from: demo, quick\n"),
    (("zoo", "build", "--out", "z", "--preset", "Demo"), "'Demo' (did you mean demo?)"),
    (("zoo", "build", "--out", "z", "--preset", "zzz"), "invalid choice: 'zzz'; choose from: "
                                                        "demo, quick\n"),
    (("fit", "--catalogue", "c", "--data", "d", "--out", "r", "--profile", "quik"),
     "argument --profile: must be one of paper, cpu, quick, got 'quik' (did you mean "
     "quick?)\n"),
    (("fit", "--catalogue", "c", "--data", "d", "--out", "r", "--profile", "QUICK"),
     "got 'QUICK' (did you mean quick?)\n"),
    (("rank", "--metric", "knn-cosin"), "got 'knn-cosin' (did you mean knn-cosine?)\n"),
    (("fit", "--catalogue", "c", "--data", "d", "--out", "r", "--strategy", "cpus"),
     "got 'cpus' (did you mean cpu?)\n"),
    (("tune", "--run", "r", "--sweep", "defualt"), "got 'defualt' (did you mean default?)\n"),
    (("tune", "--run", "r", "--sweep", "defualt+prob"), "got 'defualt+prob' (did you mean "
                                                        "default+probe?)\n"),
    (("tune", "--run", "r", "--sweep", "zzz+probe"), "got 'zzz+probe'\n"),
    # A prefix of a flag was taken as the flag without a word (argparse's abbreviations:
    # --max-member 3 as --max-members, rank --top 3 as --top-k), yet called unrecognized
    # when another argument was missing; it is refused, naming the flags it begins.
    (("ensemble", "--run", "r", "--max-member", "3"), "unrecognized arguments: --max-member 3 "
                                                      "(did you mean --max-members?)\n"),
    (("rank", "--catalogue", "c", "--data", "d", "--out", "r", "--top", "3"),
     "unrecognized arguments: --top 3 (did you mean --top-k?)\n"),
    (("fit", "--cat", "c", "--data", "d"), "the following arguments are required: --catalogue, "
     "--out; unrecognized arguments: --cat c (did you mean --catalogue?)\n"),
    (("ensemble", "--run", "r", "--max", "3"), "unrecognized arguments: --max 3 (did you mean "
     "--max-gflops or --max-latency-ms or --max-members?)\n"),
    (("--vers",), "unrecognized arguments: --vers (did you mean --version?)\n"),
])
def test_a_mistyped_flag_is_named_with_the_closest_one(argv, said, in_process):
    code, out, err = in_process(*argv)
    misread = " command" in err and " command" not in said
    assert code == 2 and said in err and not misread, err


@pytest.mark.parametrize("argv, said", [
    # argparse named the sub-commands' metavar, a word the user never typed: "argument
    # build: invalid choice: 'bogus' (choose from 'build')", "argument merge: …".
    (("zoo", "bogus"), "hubensemble zoo: error: 'bogus' is not a zoo command; choose from: "
                       "build\n"),
    (("rank", "bogus"), "hubensemble rank: error: 'bogus' is not a rank command; choose from: "
                        "merge\n"),
    (("catalogue", "bogus"), "hubensemble catalogue: error: 'bogus' is not a catalogue command; "
                             "choose from: validate, list, add\n"),
    (("bogus",), "hubensemble: error: 'bogus' is not a hubensemble command; choose from: "
                 "catalogue, rank, ensemble, cost, distill, zoo, tune, export, predict, "
                 "evaluate, report, fit, demo, docs\n"),
])
def test_an_unknown_sub_command_is_named_as_typed_with_the_commands_there(argv, said,
                                                                          in_process):
    code, _, err = in_process(*argv)
    assert code == 2 and err.endswith(said) and "argument" not in err, err


@pytest.mark.parametrize("argv, typed, near", [
    (("-q", "fitt", "--out", "r"), "fitt", "fit"), (("zoo", "bild", "--out", "z"), "bild", "build"),
    (("catalogue", "valdate", "c.yaml", "--verbose"), "valdate", "validate"),
    (("rank", "-q", "mrege", "a"), "mrege", "merge"), (("xyzzy",), "xyzzy", None),
    (("catalogue", "ad", "c.yaml"), "ad", "add"), (("catalogue", "lst"), "lst", "list")])
def test_a_mistyped_command_is_named_with_the_closest_one(argv, typed, near, in_process):
    """A new user's `hubensemble fitt` listed the 13 commands, not the one meant; a mistyped
    sub-command now ends as a mistyped flag does: "(did you mean fit?)" (none when no
    command is close)."""
    code, _, err = in_process(*argv)
    assert code == 2 and f"{typed!r} is not a " in err and "invalid choice" not in err, err
    assert (f" (did you mean {near}?); choose from: " in err) == bool(near), err


def test_a_flag_before_the_command_is_named_as_typed_on_the_command_line():
    # main() without argv reads sys.argv: Parser.error saw no command line then, so
    # `hubensemble --top-k 3 fit` said "argument COMMAND: invalid choice: '3'".
    code, _, err = hubensemble("--top-k", "3", "fit")
    assert code == 2 and err.endswith("unrecognized arguments: --top-k 3 (--top-k goes after "
                                      "the command: demo, fit, rank, rank merge take it)\n"), err


def test_catalogue_validate_shipped_and_broken(tmp_path):
    # Every file is written first and each `catalogue validate` runs in one process, one
    # after another (`each_in_one_process`: each command's own words and exit code, for one
    # Python start-up rather than twelve); a file whose contents change between two calls
    # is two files.
    files = sorted(str(p) for p in (ROOT / "catalogue").glob("*.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("modules:\n  - name: a\n    handel: ./x\n")
    far = tmp_path / "far.yaml"  # valid, with a handle missing here: a warning, not an error
    far.write_text(f"modules:\n  - {{name: a, handle: {tmp_path / 'elsewhere'}}}\n")
    # A folder that exists but holds no module: a warning too (a new-user check: validate
    # passed it without a word, and rank failed it).
    near = tmp_path / "near.yaml"
    near.write_text(f"modules:\n  - {{name: a, handle: {tmp_path / 'notes'}}}\n")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "notes.txt").write_text("not a model")
    # Each file valid on its own, one name in both: the set is refused, and says so.
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    for path in (a, b):
        path.write_text("modules:\n  - {name: same, handle: ./m}\n")
    # A third file with its own error does not hide the clash of the other two (a new-user
    # check: only the third file's error was reported).
    broken = tmp_path / "broken.yaml"
    broken.write_text("modules:\n  - {name: x, handle: ./m}\n  - {name: x, handle: ./n}\n")
    # A local handle that does not exist here is valid, with a warning naming file and line
    # (and the URL a mistyped scheme meant).
    (tmp_path / "there").mkdir()
    (tmp_path / "there" / "saved_model.pb").write_bytes(b"\x12\x00")  # one empty meta graph:
    paths = tmp_path / "paths.yaml"  # a module's folder as far as validate reads it
    paths.write_text("modules:\n  - {name: a, handle: 'htps//tfhub.dev/x/1'}\n"
                     "  - {name: b, handle: ./there}\n  - {name: c, handle: ./nowhere}\n")
    # A zoo handle must name a preset and one of its modules (checked without building it).
    zoo = tmp_path / "zoo.yaml"
    zoo.write_text("modules:\n  - {name: a, handle: 'zoo:demo/r8x2-generalist-0'}\n"
                   "  - {name: b, handle: 'zoo:dmeo/r8x2-generalist-0'}\n"
                   "  - {name: c, handle: 'zoo:demo/r8x2-generalist-9'}\n")
    # With other problems in the file, all at once and by line (the zoo's came only after
    # the others were fixed).
    zoo2 = tmp_path / "zoo2.yaml"
    zoo2.write_text(zoo.read_text() + "  - {name: d, handle: ./x, family: nonsense}\n"
                    "  - {name: e}\n")
    said = iter(each_in_one_process(
        ["catalogue", "validate", *files], ["catalogue", "validate", bad],
        ["catalogue", "validate", files[0], bad, "-q"], ["catalogue", "validate", "-q", files[0]],
        ["catalogue", "validate", far], ["catalogue", "validate", far, "-q"],
        ["catalogue", "validate", near], ["catalogue", "validate", a, b],
        ["catalogue", "validate", a, b, broken], ["catalogue", "validate", paths],
        ["catalogue", "validate", zoo], ["catalogue", "validate", zoo2]))
    code, out, err, _ = next(said)
    assert code == 0, err
    assert out.count(": ok (") == len(files)
    code, out, err, _ = next(said)
    assert code == 1
    assert f"{bad}:3: field 'handel'" in err and "'handle'" in err
    assert "Traceback" not in err
    # -q leaves the errors only (the catalogue commands took no -q or -v after them).
    code, out, err, _ = next(said)
    assert code == 1 and out == "" and f"{bad}:3: field 'handel'" in err, (out, err)
    code, out, _, _ = next(said)
    assert code == 0 and out == ""
    code, out, err, _ = next(said)
    assert code == 1 and f"warning: {far}:2: handle" in err and "rank will skip it" in err
    code, out, err, _ = next(said)
    assert (code, out) == (1, "") and "warning: " not in err, err  # the exit line alone
    code, out, err, _ = next(said)
    assert code == 1 and f"warning: {near}:2: handle" in err and "holds no module" in err, err
    code, out, err, _ = next(said)
    assert code == 1 and out.count(": valid; rank would skip 1 here (1 module, 1 warning)") == 2
    assert "the 2 catalogues together are not valid" in err and f"{b}:2:" in err
    assert "together: ok" not in out
    code, out, err, _ = next(said)
    assert code == 1 and f"{broken}:3:" in err and f"{b}:2:" in err, err
    assert "the 2 valid catalogues together are not valid" in err
    code, out, err, _ = next(said)
    assert code == 1 and ": valid; rank would skip 2 here (3 modules, 2 warnings)" in out
    assert f"warning: {paths}:2: handle " in err and "write https://tfhub.dev/" in err
    assert f"warning: {paths}:4: handle './nowhere' ({tmp_path / 'nowhere'}, relative to the " \
        "catalogue's folder) does not exist" in err
    assert f"{paths}:3" not in err
    code, out, err, _ = next(said)
    assert code == 1 and ": ok" not in out
    assert f"{zoo}:3: module 'b': 'zoo:dmeo/r8x2-generalist-0' names no zoo preset (did " \
           "you mean zoo:demo/r8x2-generalist-0?); write one of demo, quick" in err
    assert (f"{zoo}:4: module 'c': the demo zoo has no module 'r8x2-generalist-9'; did you "
            "mean zoo:demo/r8x2-generalist-") in err
    assert f"{zoo}:2" not in err
    code, out, err, _ = next(said)
    lines = [line.split(": ", 1)[0] for line in err.splitlines()]
    # d's handle is checked too, its family refused or not (its warning came only after).
    assert code == 1 and lines == [f"{zoo2}:{n}" for n in (3, 4, 5)] + [
        "warning", f"{zoo2}:6"], err
    assert f"warning: {zoo2}:5: handle './x' ({tmp_path / 'x'}, relative to the catalogue's " \
        "folder) does not exist" in err, err


def test_catalogue_validate_warns_with_the_errors_in_line_order(tmp_path):
    # A new-user check: a file's warnings (a local handle missing, a folder holding no
    # module, a module listed twice) came only once its errors were fixed, a second pass.
    (tmp_path / "empty").mkdir()
    cat = tmp_path / "cat.yaml"
    cat.write_text("modules:\n"
                   "  - {name: a, handle: ./nowhere}\n"           # 2: warning, missing
                   "  - {name: b, handle: ./x, famly: expert}\n"  # 3: error
                   "  - {name: c, handle: ./empty}\n"             # 4: warning, no module
                   "  - {name: d}\n"                              # 5: error
                   "  - {name: e, handle: ./nowhere}\n")          # 6: warning, same as 'a'
    # Both calls in one process (`each_in_one_process`), each in its own words.
    (code, out, err, _), (code_q, out_q, err_q, _) = each_in_one_process(
        ["catalogue", "validate", cat], ["catalogue", "validate", cat, "-q"])
    assert code == 1 and ": ok" not in out, (out, err)
    said = [(line.startswith("warning: "), line.removeprefix("warning: ").split(": ", 1)[0])
            for line in err.splitlines()]
    assert said == [(True, f"{cat}:2"), (False, f"{cat}:3"), (True, f"{cat}:3"),
                    (True, f"{cat}:4"), (False, f"{cat}:5"), (True, f"{cat}:6"),
                    (True, f"{cat}:6")], err  # 3's handle too, though its field is refused
    assert "holds no module" in err and "loads the same module as entry 'a'" in err
    # -q: errors only
    assert code_q == 1 and out_q == "" and "warning" not in err_q and err_q.count(f"{cat}:") == 2


def test_unknown_data_spec_is_one_clear_line(tmp_path, tiny_module, in_process):
    cat = tmp_path / "c.yaml"
    cat.write_text(f"modules:\n  - {{name: t, handle: {tiny_module}}}\n")
    code, _, err = in_process("rank", "--catalogue", str(cat), "--data", "nope:x", "--out",
                              str(tmp_path / "r"))
    assert code == 2
    assert "hubensemble: error:" in err and "folder:" in err and "Traceback" not in err


def test_rank_shards_merge_and_ensemble_commands(tmp_path, module_factory, env, in_process):
    cat = tmp_path / "c.yaml"
    cat.write_text("modules:\n" + "".join(
        f"  - {{name: m{i}, handle: {module_factory(f'cli{i}', seed=i)}}}\n" for i in range(3)))
    common = ["--catalogue", str(cat), "--data", "sklearn:digits", "--profile", "quick", "-q",
              "--top-k", "2"]
    # The first in a process of its own (TensorFlow's C++ notices included), the rest in
    # this one (`in_process`: the same code without a TensorFlow import each).
    for i, call in enumerate((lambda *a: hubensemble(*a, env=env), in_process)):
        code, out, err = call("rank", *common, "--shard", f"{i}/2", "--out",
                              str(tmp_path / f"s{i}"))
        assert (code, out, err) == (0, "", ""), err  # -q: nothing but errors
    code, out, err = in_process("rank", "merge", str(tmp_path / "s0"), str(tmp_path / "s1"),
                                "--out", str(tmp_path / "run"), "--top-k", "2")
    assert code == 0, err
    merged = json.loads((tmp_path / "run" / "ranking.json").read_text())
    code, _, err = in_process("rank", *common, "--out", str(tmp_path / "whole"))
    assert code == 0, err
    whole = json.loads((tmp_path / "whole" / "ranking.json").read_text())
    assert [(r["name"], r["score"]) for r in merged["modules"]] == [
        (r["name"], r["score"]) for r in whole["modules"]]
    assert merged["selected"] == whole["selected"] and len(whole["selected"]) == 2
    # Without a selection flag the merge keeps the shards' own rule (top-k 2), not the
    # default top-k 15 (which kept all 3 modules: a new-user check).
    code, _, err = in_process("rank", "merge", str(tmp_path / "s0"), str(tmp_path / "s1"),
                              "--out", str(tmp_path / "run2"))
    assert code == 0, err
    again = json.loads((tmp_path / "run2" / "ranking.json").read_text())
    assert again["selected"] == whole["selected"] and again["selection"] == whole["selection"]
    # A flag given wins over the shards' rule (a new-user check: --top-k was not noted as
    # given, so the merge kept the shards' top-k 2 whatever K it was given).
    code, _, err = in_process("rank", "merge", str(tmp_path / "s0"), str(tmp_path / "s1"),
                              "--out", str(tmp_path / "run3"), "--top-k", "1")
    assert code == 0, err
    one = json.loads((tmp_path / "run3" / "ranking.json").read_text())
    assert one["selected"] == whole["selected"][:1] and one["selection"]["top_k"] == 1
    code, _, err = in_process("ensemble", "--run", str(tmp_path / "whole"))
    assert code == 2 and "Traceback" not in err
    assert f"{tmp_path / 'whole' / 'candidates'} is missing; `hubensemble tune --run " in err
    # -q silences the terminal, not the log: rank's data summary and its table are there.
    rank_log = (tmp_path / "whole" / "log.txt").read_text()
    assert "Task 'digits' from sklearn:digits" in rank_log and "train 800" in rank_log
    assert "selected" in rank_log and "m0" in rank_log and "m2" in rank_log

    # Issue 13, example 8: ranked on another machine, only run.json and ranking.json copied.
    copied = tmp_path / "copied"
    copied.mkdir()
    for name in ("run.json", "ranking.json"):
        (copied / name).write_bytes((tmp_path / "whole" / name).read_bytes())
    code, out, err = in_process("ensemble", "--run", str(copied), "-q")
    assert code == 2 and out == "" and "Traceback" not in err
    assert (f"{copied / 'labels' / 'val.npy'} is missing; `hubensemble tune --run {copied}` "
            "writes it") in err
    code, out, err = in_process("tune", "--run", str(copied), "--sweep", "seeds", "--budget",
                                "1", "--profile", "quick", "--strategy", "cpu", "-q")
    assert (code, out, err) == (0, "", ""), err
    for split in ("train", "val", "test"):  # tune wrote the labels the copy lacked
        assert (np.load(copied / "labels" / f"{split}.npy").tolist()
                == np.load(tmp_path / "whole" / "labels" / f"{split}.npy").tolist())
    code, out, err = in_process("ensemble", "--run", str(copied), "-q")
    assert (code, out, err) == (0, "", ""), err  # -q silences the summary too
    assert json.loads((copied / "ensemble.json").read_text())["n_candidates"] == 1
    code, out, err = in_process("ensemble", "--run", str(copied))
    assert code == 0 and out.startswith("ensemble of 1 member (objective ce, 1 candidate):")
    assert "note:" not in out  # digits: every class has validation and test examples
    code, out, err = in_process("export", "--run", str(copied), "-q")
    assert (code, out, err) == (0, "", ""), err
    assert (copied / "export" / "saved_model.pb").exists()
    log = (copied / "log.txt").read_text()
    assert "labels" in log and "val.npy" in log  # tune's note that it wrote them


# --------------------------------------------------------------------------- the options table


def help_of(*argv):
    """`hubensemble ARGV --help` as one line of single-spaced words (argparse wraps lines)."""
    import contextlib
    import io

    from hubensemble.cli import build_parser

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        build_parser().parse_args([*argv, "--help"])
    return " ".join(out.getvalue().split())


@pytest.mark.parametrize("command, flag, says, not_says", [
    ("tune", "--seed S", "seed of the sweep", "bootstrap"),
    ("ensemble", "--seed S", "seed of the ensemble's bootstrap", "sweep"),
    ("evaluate", "--seed S", "seed of the corruptions' noise", "bootstrap"),
    ("fit", "--seed S", "seed of the sweep, the ensemble's bootstrap and the corruptions", ""),
    ("distill", "--max-gflops G", "largest student cost", "ensemble cost"),
    ("ensemble", "--max-gflops G", "largest ensemble cost", "student"),
    ("fit", "--max-gflops G", "largest ensemble cost", "distill"),
])
def test_a_shared_option_says_what_it_does_in_each_command(command, flag, says, not_says):
    text = help_of(command)
    text = text[text.index("options:"):]  # the option list, not the usage line
    after = text[text.index(flag) + len(flag):]
    entry = after[:after.index(" --")] if " --" in after else after
    assert says in entry and (not not_says or not_says not in entry), entry


def test_rank_usage_gives_merge_as_its_other_form_not_a_required_argument():
    # argparse's own usage ended in "merge ...", as if every rank needed it.
    # It was "rank [options]", which named none of the three flags a rank needs.
    assert help_of("rank").startswith("usage: hubensemble rank --catalogue FILE... --data SPEC "
                                      "--out RUN [options] hubensemble rank merge RUN_SHARD... "
                                      "--out RUN [options] Embed")
    assert help_of("rank", "merge").startswith("usage: hubensemble rank merge [-h] [-q] [-v] "
                                               "--out")


def test_export_usage_says_it_needs_run_or_add_warmup(in_process):
    # Since --add-warmup, argparse's usage showed "[--run RUN]" as optional, and
    # "[--add-warmup MODEL]" among the other flags. Its refusals stay export's own.
    usage = help_of("export").split(" Writes ")[0]
    assert usage.startswith("usage: hubensemble export [-h] [-q] [-v] (--run RUN | "
                            "--add-warmup MODEL) [--out DIR] "), usage
    assert "[--run" not in usage and "[--add-warmup" not in usage, usage
    code, out, err = in_process("export")
    assert code == 2 and "hubensemble export: error: export needs --run RUN (the run folder" in err
    code, out, err = in_process("export", "--run", "r", "--add-warmup", "m")
    assert code == 2 and "--add-warmup MODEL works on the export folder MODEL alone: leave " \
        "out --run" in err


@pytest.mark.parametrize("argv, prog, bad", [
    (["rank", "--catalogue", "c", "--bogus"], "hubensemble rank", "--bogus"),
    (["rank", "merge", "--catalogue", "x", "--out", "r", "DIR"], "hubensemble rank merge",
     "--catalogue"),
    (["tune", "--run", "r", "--top-k", "3"], "hubensemble tune", "--top-k 3"),
    (["zoo", "build", "--preset", "quick", "--bogus"], "hubensemble zoo build", "--bogus"),
    (["catalogue", "validate", "--bogus"], "hubensemble catalogue validate", "--bogus"),
    (["--bogus", "report", "--run", "r"], "hubensemble", "--bogus"),  # before any command
])
def test_an_unknown_argument_is_refused_by_the_command_it_was_given_to(
        argv, prog, bad, in_process):
    # argparse left a sub-command's leftovers to the top parser: "usage: hubensemble [-h]
    # [--version] [-v] COMMAND ..." and "hubensemble: error: ...", naming no command.
    code, out, err = in_process(*argv)
    assert (code, out) == (2, ""), err
    assert err.startswith(f"usage: {prog} ")
    assert f"\n{prog}: error: unrecognized arguments: {bad}" in err, err


@pytest.mark.parametrize("argv, message", [
    # numpy's range, and the zoo's seeds derived from S (S + 1, ..., about 1000 S): these
    # started the build and stopped with numpy's traceback, exit 1.
    (["zoo", "build", "--seed", "-1"], "argument --seed: must be an integer in [0, 4294965], "
                                       "got '-1' (a build trains with seeds S, S + 1, ... and "
                                       "about 1000 times each; numpy takes at most 2**32 - 1)"),
    (["zoo", "build", "--seed", "4294967296"],
     "argument --seed: must be an integer in [0, 4294965], got "),
    (["zoo", "build", "--seed", "4294967295"],
     "argument --seed: must be an integer in [0, 4294965], got "),
    (["zoo", "build", "--seed", "4294966"],
     "argument --seed: must be an integer in [0, 4294965], got "),
    # 0 and -1 trained one module at a time without a word.
    (["zoo", "build", "--workers", "0"], "argument --workers: must be an integer >= 1, got '0'"),
    (["zoo", "build", "--workers", "-1"], "argument --workers: must be an integer >= 1, got "),
    # sklearn:digits' split stopped with sklearn's traceback: the same range everywhere.
    (["fit", "--catalogue", "c", "--data", "d", "--out", "o", "--data-seed", "4294967296"],
     "argument --data-seed: must be an integer in [0, 4294967295], got '4294967296'"),
    (["tune", "--run", "r", "--seed", "4294967296"],
     "argument --seed: must be an integer in [0, 4294967295], got '4294967296'"),
    (["evaluate", "--model", "m", "--data", "d", "--seed", "-1"], "argument --seed: must be "),
])
def test_a_seed_or_worker_count_out_of_range_is_a_usage_error(argv, message, in_process):
    code, out, err = in_process(*argv)
    assert (code, out) == (2, ""), err
    assert f"error: {message}" in err, err


@pytest.mark.parametrize("argv", [["rank", "--catalogue", "c", "--data", "d", "--out", "o"],
                                  ["rank", "merge", "s0", "--out", "o"],
                                  ["fit", "--catalogue", "c", "--data", "d", "--out", "o"]])
def test_selection_rules_are_alternatives_on_the_command_line(argv, capsys):
    from hubensemble.cli import build_parser

    # --top-k beside --threshold was silently ignored (the threshold rule wins).
    for extra, said in ((["--threshold", "0.02", "--top-k", "3"],
                         "argument --top-k: not allowed with argument --threshold"),
                        (["--greedy", "--threshold", "0.1"],
                         "argument --threshold: not allowed with argument --greedy")):
        with pytest.raises(SystemExit) as stop:
            build_parser().parse_args(argv + extra)
        assert stop.value.code == 2 and said in capsys.readouterr().err
    args = build_parser().parse_args(argv + ["--threshold", "0.02", "--max-k", "4"])
    # rank merge's --top-k default is None: the shards' rule when no rule is given.
    top_k = None if "merge" in argv else 15
    assert (args.threshold, args.max_k, args.top_k, args.greedy) == (0.02, 4, top_k, False)


def test_run_files_that_are_not_json_objects_are_one_line_naming_them(tmp_path, tiny_module,
                                                                      in_process):
    from hubensemble.errors import RunError
    from hubensemble.rundir import Run

    # They were tracebacks (json.decoder.JSONDecodeError) in every stage that reads them.
    cat = tmp_path / "c.yaml"
    cat.write_text(f"modules:\n  - {{name: t, handle: {tiny_module}}}\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / "ranking.json").write_text('{"modules": []}')
    for content, why in (("{garbage", "JSONDecodeError: "), (b"\xff\xfe", "UnicodeDecodeError"),
                         ("[1, 2]", "a JSON list, not an object")):
        target = run / "run.json"
        target.write_bytes(content) if isinstance(content, bytes) else target.write_text(content)
        said = f"{target} is unreadable ({why}"
        for argv in (["rank", "--catalogue", str(cat), "--data", "sklearn:digits", "--out"],
                     ["tune", "--run"]):
            code, out, err = in_process(*argv, str(run), "-q")
            assert code == 2 and "Traceback" not in err and err.count(said) == 1, (argv, err)
        # report degrades instead (docs/report.md): written, naming the damaged file.
        code, out, err = in_process("report", "--run", str(run), "-q")
        assert code == 0 and "Traceback" not in err, err
        assert "run.json" in (run / "report.md").read_text() and "unreadable" in (
            run / "report.md").read_text()
        with pytest.raises(RunError, match="restore it from a copy, or start the run again"):
            Run(run).meta()
    # The way out the message names: fit --restart clears the folder without reading it (it
    # refused with the same message). Its one module is missing, so fit stops in rank.
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"modules:\n  - {{name: gone, handle: {stand_in(tmp_path, 'nowhere')}}}\n")
    saved = (run / "run.json").read_bytes()
    code, out, err = in_process("fit", "--catalogue", str(bad), "--data", "sklearn:digits",
                                "--out", str(run), "--profile", "quick", "--restart", "-q")
    assert code == 2 and "unreadable" not in err and "gone" in err, err
    assert Run(run).meta()["data"]["args"]["spec"] == "sklearn:digits"
    (run / "run.json").write_bytes(saved)
    (run / "ranking.json").write_text('{"modules": []}')
    Run(run / "x").update(data=None)  # a readable run.json, for the ranking.json refusals
    (run / "run.json").write_bytes((run / "x" / "run.json").read_bytes())
    for content, why in (("{garbage", "JSONDecodeError"), ("{}", "not a ranking"),
                         ('{"modules": [1, 2]}', 'module 1 of "modules": a JSON number'),
                         ('{"modules": [{"name": 3, "status": "ok"}]}', 'its "name" is a')):
        (run / "ranking.json").write_text(content)
        code, out, err = in_process("tune", "--run", str(run), "-q")
        assert code == 2 and "Traceback" not in err, err
        assert f"{run / 'ranking.json'} is " in err and why in err and "writes it again" in err
    (run / "ensemble.json").write_text("[]")
    code, out, err = in_process("export", "--run", str(run), "-q")
    assert code == 2 and f"{run / 'ensemble.json'} is unreadable (not a JSON object)" in err
    # The report shows what it can and says what it cannot, on the terminal too (a new
    # user's report: exit 0, and the reason only inside report.md).
    (run / "ranking.json").write_text('{"modules": []}')
    code, out, err = in_process("report", "--run", str(run))
    assert code == 0 and err.count("the report cannot show the ensemble: ") == 1, err
    assert "is unreadable (not a JSON object)" in (run / "report.md").read_text()


def test_bad_data_and_catalogues_are_refused_before_tensorflow_and_the_run_folder(tmp_path):
    from hubensemble.data import load_task, load_test_set
    from hubensemble.errors import HubensembleError
    from hubensemble.lockwords import command_line

    # Each was refused after TensorFlow's 6-11 s import, fit's after it had made the folder.
    (tmp_path / "notnpz.npz").write_text("x")
    (tmp_path / "afolder").mkdir()
    cat = tmp_path / "c.yaml"
    cat.write_text(f"modules:\n  - {{name: t, handle: {tmp_path / 'm'}}}\n")
    specs = [f"npz:{tmp_path / 'missing.npz'}", f"folder:{tmp_path / 'notnpz.npz'}",
             f"npz:{tmp_path / 'afolder'}", f"npz:{tmp_path / 'notnpz.npz'}", "nosuch:x",
             "sklearn:iris", "tfds:cifar-10", f"{tmp_path / 'afolder'}",
             f"folder:{tmp_path / 'afolder'}"]  # no class folders (only a file, below)
    out = tmp_path / "run"
    argvs = []
    for spec in specs:
        argvs += [["rank", "--catalogue", str(cat), "--data", spec, "--out", str(out)],
                  ["fit", "--catalogue", str(cat), "--data", spec, "--out", str(out)],
                  ["evaluate", "--model", str(tmp_path / "afolder"), "--data", spec]]
    broken = tmp_path / "broken.yaml"
    broken.write_text("modules:\n  - {name: t}\n")
    argvs.append(["fit", "--catalogue", str(broken), "--data", "sklearn:digits", "--out",
                  str(out)])
    # Fractions that leave no training data, for a folder that carves both splits.
    for name in ("a", "b"):
        (tmp_path / "flat" / name).mkdir(parents=True)
    argvs.append(["fit", "--catalogue", str(cat), "--data", f"folder:{tmp_path / 'flat'}",
                  "--out", str(out), "--val-fraction", "0.6", "--test-fraction", "0.5"])
    # A folder whose listing breaks the task rules: one class (fit and rank), no file in its
    # class folders (evaluate too). Refused after TensorFlow and the data (11 s), leaving
    # RUN/log.txt.
    from PIL import Image

    (tmp_path / "one" / "cat").mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (4, 4), (i, 0, 0)).save(tmp_path / "one" / "cat" / f"{i}.png")
    for name in ("a", "b"):
        (tmp_path / "bare" / name).mkdir(parents=True)
    argvs += [["fit", "--catalogue", str(cat), "--data", f"folder:{tmp_path / 'one'}", "--out",
               str(out)], ["rank", "--catalogue", str(cat), "--data",
                           f"folder:{tmp_path / 'one'}", "--out", str(out)],
              ["evaluate", "--model", str(tmp_path / "afolder"), "--data",
               f"folder:{tmp_path / 'bare'}"],
              # fit without validation examples (it ranked, then failed every trial).
              ["fit", "--catalogue", str(cat), "--data", f"folder:{tmp_path / 'one'}",
               "--out", str(out), "--val-fraction", "0"]]
    # catalogue add's handles and --name (a traceback after TensorFlow's seconds).
    argvs += [["catalogue", "add", "keras:mobilenetv3small", "--to", str(tmp_path / "k.yaml")],
              ["catalogue", "add", str(tmp_path / "afolder"), "--name", "bad name", "--to",
               str(tmp_path / "k.yaml")],
              ["catalogue", "add", str(tmp_path / "nowhere"), "--to", str(tmp_path / "k.yaml")],
              ["catalogue", "add", str(tmp_path / "afolder"), "--to", str(broken)]]
    # A fraction the data would not use (npz with x_val: it was ignored without a word).
    import numpy as np

    npz = tmp_path / "v.npz"
    np.savez(npz, x_train=np.zeros((4, 2, 2, 3), np.uint8), y_train=[0, 0, 1, 1],
             x_val=np.zeros((2, 2, 2, 3), np.uint8), y_val=[0, 1])
    argvs.append(["rank", "--catalogue", str(cat), "--data", f"npz:{npz}", "--out", str(out),
                  "--val-fraction", "0.3"])
    # tfds-only options for other data (they were ignored without a word).
    argvs += [["fit", "--catalogue", str(cat), "--data", "sklearn:digits", "--out", str(out),
               "--label-key", "y", "--data-dir", str(tmp_path)],
              ["evaluate", "--model", str(tmp_path / "afolder"), "--data", f"npz:{npz}",
               "--data-dir", str(tmp_path)]]
    # A budget that cannot hold one group of the sweep (tune refused it after 7.7 s).
    argvs += [["fit", "--catalogue", str(cat), "--data", "sklearn:digits", "--out", str(out),
               "--sweep", "aug", "--budget", "3"], ["tune", "--run", str(out), "--budget", "2"]]
    # predict reads its image files before TensorFlow loads (the folder only looks like an
    # export: the model is never loaded).
    from evaluatefakes import fake_saved_model_pb  # (one that parses: an empty one is damaged)

    (tmp_path / "afolder" / "saved_model.pb").write_bytes(b"")
    (tmp_path / "anexport" / "assets").mkdir(parents=True)
    (tmp_path / "anexport" / "saved_model.pb").write_bytes(fake_saved_model_pb())
    (tmp_path / "anexport" / "assets" / "hubensemble.json").write_text('{"class_names": []}')
    missing = tmp_path / "missing.jpg"
    argvs.append(["predict", "--model", str(tmp_path / "anexport"), str(missing)])
    argvs.append(["predict", "--model", str(tmp_path / "anexport"), str(tmp_path / "afolder")])
    dangling = tmp_path / "gone.png"  # named as the folder loader names it
    dangling.symlink_to(tmp_path / "nonexistent.png")
    argvs.append(["predict", "--model", str(tmp_path / "anexport"), str(dangling)])
    notes = tmp_path / "notes.txt"  # not an image: its decoder needs no TensorFlow (11 s)
    notes.write_text("hello\n")
    argvs.append(["predict", "--model", str(tmp_path / "anexport"), str(notes)])
    # evaluate's options, which it checked only after loading TensorFlow and the data.
    evaluate = ["evaluate", "--model", str(tmp_path / "afolder"), "--data", "sklearn:digits"]
    argvs += [evaluate + ["--corruptions", "bogus"], evaluate + ["--split", "bogus"],
              evaluate + ["--corruptions", "jpeg", "--severities", "4"]]
    code = ("import json, sys; from hubensemble.cli import main; "
            "codes = [main(a) for a in json.loads(sys.argv[1])]; "
            "print(json.dumps([codes, 'tensorflow' in sys.modules]))")
    run = bounded_by_cpu([sys.executable, "-c", code, json.dumps(argvs)], capture_output=True,
                         text=True, cpu=120)
    assert run.returncode == 0, run.stderr
    codes, tensorflow = json.loads(run.stdout.splitlines()[-1])
    assert codes == [2] * len(argvs) and not tensorflow, run.stderr
    assert not out.exists() and "Traceback" not in run.stderr
    # In the words of the loaders themselves (the Python API, which reads the data).
    for spec in specs:  # rank, fit and evaluate each say it once
        for load in (load_task, load_test_set):
            with pytest.raises(HubensembleError) as e:
                load(spec)
            assert run.stderr.count(f"error: {e.value}\n") == 3, (spec, run.stderr)
    assert f"{broken}:2: " in run.stderr and "'handle'" in run.stderr, run.stderr
    # The command line's words (`lockwords.command_line`): its flags, not the keywords it
    # was told before ("val_fraction + test_fraction (--val-fraction, --test-fraction; …)").
    with pytest.raises(HubensembleError) as e, command_line():
        load_task(f"folder:{tmp_path / 'flat'}", val_fraction=0.6, test_fraction=0.5)
    assert str(e.value).startswith("--val-fraction + --test-fraction (0.2 each by default) "
                                   "must leave some training data, got 0.6 + 0.5; lower one")
    assert run.stderr.count(f"error: {e.value}\n") == 1
    with pytest.raises(HubensembleError) as e:
        load_task(f"folder:{tmp_path / 'one'}")
    assert "task 'one' has 1 class (['cat']); classification needs at least 2" in str(
        e.value) and run.stderr.count(f"error: {e.value}\n") == 2
    assert (f"error: --val-fraction 0 leaves folder:{tmp_path / 'one'} "
            "without validation examples") in run.stderr
    with pytest.raises(HubensembleError) as e:
        load_task("sklearn:digits", label_key="y", data_dir=str(tmp_path))
    assert str(e.value).startswith("--data-dir and --label-key only apply to tfds: specs, not "
                                   "sklearn:; leave them out") and run.stderr.count(
        f"error: {e.value} [read it offline: hubensemble docs data]\n") == 1  # it cites it
    with pytest.raises(HubensembleError) as e:
        load_test_set(f"npz:{npz}", data_dir=str(tmp_path))
    assert str(e.value).startswith("--data-dir only applies to tfds: specs, not npz:; leave "
                                   "it out") and run.stderr.count(
        f"error: {e.value} [read it offline: hubensemble docs data]\n") == 1
    with pytest.raises(HubensembleError) as e:
        load_test_set(f"folder:{tmp_path / 'bare'}")
    assert str(e.value).startswith("no files under") and run.stderr.count(
        f"error: {e.value}\n") == 1
    assert ("error: 'keras:mobilenetv3small' is not a keras.applications architecture; "
            f"run `hubensemble catalogue add --to {tmp_path / 'k.yaml'} keras:MobileNetV3Small` "
            "instead\n") in run.stderr
    assert (f"error: cannot add '{tmp_path / 'afolder'}': argument --name: 'bad name' may only "
            "contain letters, digits") in run.stderr and not (tmp_path / "k.yaml").exists()
    assert (f"error: cannot add '{tmp_path / 'nowhere'}': {tmp_path / 'nowhere'} does not "
            "exist\n") in run.stderr
    assert run.stderr.count(f"{broken}:2: ") == 2, run.stderr  # fit's, and add's --to file
    with pytest.raises(HubensembleError) as e, command_line():
        load_task(f"npz:{npz}", val_fraction=0.3)
    assert str(e.value).startswith("--val-fraction 0.3 would not be used") and \
        run.stderr.count(f"error: {e.value}\n") == 1
    for said in ("the aug sweep runs 4 trials per augmentation family; budget 3 cannot hold "
                 "one augmentation family's 4 trials: run `hubensemble fit --catalogue "
                 f"{cat} --data sklearn:digits --sweep aug --budget 4 --out {out}` (or more; "
                 "K augmentation families need 4×K), or a sweep of single trials",
                 # tune without --sweep reads the run's: a missing one is said first
                 f"{out} does not exist; pass a run directory made by `hubensemble fit`",
                 # evaluate's refusals name their flag alone (--severities 4 named none,
                 # then "severities (--severities)", a keyword the command line never typed)
                 "--corruptions: unknown corruption 'bogus'; choose from gaussian_noise",
                 "--split: unknown split 'bogus'; use one of train, val, test",
                 "--severities: severity must be one of 1, 2, 3, got 4"):
        assert run.stderr.count(f"error: {said}") == 1, run.stderr
    # A folder is read as the files under it (here one empty file, no image by its name or
    # first bytes, which the folder loader does not read): no image in it, before TensorFlow.
    assert (f"error: {tmp_path / 'afolder'}: a folder with no image in it (1 file that is not "
            f"an image by name or first bytes, e.g. saved_model.pb); leave the folder out or put "
            f"images in it (or pass --skip-unreadable)") in run.stderr, run.stderr
    # A path that names nothing is a typo to fix, not a file to remove (a new-user check).
    assert (f"error: {missing}: cannot read it: No such file or directory; check the path "
            "(or pass --skip-unreadable") in run.stderr, run.stderr
    assert (f"error: {dangling}: a broken link (to {tmp_path / 'nonexistent.png'}); "
            in run.stderr)
    assert (f"error: {notes}: not a JPEG, PNG, GIF, BMP or WebP file (it starts with bytes 68 "
            "65 6c 6c 6f 0a); neither TensorFlow nor Pillow can decode it") in run.stderr


def test_evaluate_without_data_outside_a_run_is_refused_before_tensorflow_naming_its_spec(
        tmp_path):
    """`evaluate -q --model OUT` without --data on an export outside a run spent 8.5 s and
    664 MB (TensorFlow loaded) before "pass --data SPEC"; its metadata names the spec."""
    from evaluatefakes import fake_saved_model_pb  # (one that parses: no refusal of it)
    from hubensemble.errors import DataError
    from hubensemble.evaluate import load_evaluation_task, metadata_spec

    imgs = tmp_path / "my (photos)"
    sources = {"folder": f"folder:{imgs} (class folders; val 0.2 / test 0.2 of each class "
                         "split off (seed 0))", "digits": "sklearn:digits (scikit-learn's 1,797 "
                         "8x8 handwritten digits; 800 / 200 / 797 stratified, seed 0)",
               "arrays": "arrays"}
    argvs = []
    for name, source in sources.items():
        model = tmp_path / name
        (model / "assets").mkdir(parents=True)
        (model / "saved_model.pb").write_bytes(fake_saved_model_pb())  # (parses: no refusal)
        (model / "assets" / "hubensemble.json").write_text(json.dumps(
            {"task": {"name": name, "source": source}}))
        argvs.append(["-q", "evaluate", "--model", str(model)])
    code = ("import json, sys; from hubensemble.cli import main; "
            "codes = [main(a) for a in json.loads(sys.argv[1])]; "
            "print(json.dumps([codes, 'tensorflow' in sys.modules]))")
    run = bounded_by_cpu([sys.executable, "-c", code, json.dumps(argvs)], capture_output=True,
                         text=True, cpu=120)
    codes, tensorflow = json.loads(run.stdout.splitlines()[-1])
    assert codes == [2, 2, 2] and not tensorflow, run.stderr
    said = "is not inside a run directory that records its data; pass --data SPEC"
    assert (f"{said}: its metadata says it was made from folder:{imgs}, e.g. --data "
            f"'folder:{imgs}'\n") in run.stderr, run.stderr
    assert (f"{said}: its metadata says it was made from sklearn:digits, e.g. --data "
            "sklearn:digits\n") in run.stderr
    assert f"{said} (the data the model was trained for)\n" in run.stderr  # "arrays": none
    # From Python, the same words (load_evaluation_task).
    with pytest.raises(DataError, match="made from sklearn:digits"):
        load_evaluation_task(tmp_path / "digits")
    assert metadata_spec({}) is None and metadata_spec({"task": {"source": "tfds:beans"}}) == (
        "tfds:beans")


def test_tfds_only_flags_typed_at_their_default_are_refused_for_other_data(tmp_path):
    """`--label-key label` or `--image-key image` with a folder: or npz: was accepted without
    a word, where `--label-key y` is refused (5fcde3e): the flag was typed, so it is refused
    whatever its value; left out, or from Python at the default, it is not given."""
    from hubensemble.cli import build_parser
    from hubensemble.data import load_task
    from hubensemble.errors import DataError
    from hubensemble.preflight import check_inputs

    for name in ("a", "b"):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(3):
            (tmp_path / "imgs" / name / f"{i}.png").write_bytes(b"")
    np.savez(tmp_path / "d.npz", x_train=np.zeros((4, 2, 2, 3), np.uint8), y_train=[0, 1] * 2)
    cat = tmp_path / "c.yaml"
    cat.write_text(f"modules:\n  - {{name: t, handle: {tmp_path / 'm'}}}\n")
    out = str(tmp_path / "run")
    for argv, said in (
            (["rank", "--data", f"folder:{tmp_path / 'imgs'}", "--label-key", "label"],
             "--label-key only applies to tfds: specs, not folder:; leave it out"),
            (["fit", "--data", f"npz:{tmp_path / 'd.npz'}", "--image-key", "image",
              "--label-key", "label"],
             "--label-key and --image-key only apply to tfds: specs, not npz:; leave them out"),
            (["fit", "--data", "sklearn:digits", "--image-key=image"],
             "--image-key only applies to tfds: specs, not sklearn:")):
        args = build_parser().parse_args([*argv, "--catalogue", str(cat), "--out", out])
        with pytest.raises(DataError) as e:
            check_inputs(args)
        assert str(e.value).startswith(said), (argv, str(e.value))
    # A tfds: spec takes them; left out (the default), nothing is said of them.
    for argv in (["rank", "--data", "tfds:mnist", "--label-key", "label"],
                 ["fit", "--data", f"folder:{tmp_path / 'imgs'}"]):
        args = build_parser().parse_args([*argv, "--catalogue", str(cat), "--out", out])
        try:
            check_inputs(args)
        except DataError as e:
            assert "only appl" not in str(e), str(e)
    with pytest.raises(DataError, match="^--data-dir only applies to tfds: specs"):
        check_inputs(build_parser().parse_args([
            "evaluate", "--model", str(tmp_path), "--data", f"npz:{tmp_path / 'd.npz'}",
            "--data-dir", os.path.expanduser("~/tensorflow_datasets")]))  # its default text
    assert load_task(f"npz:{tmp_path / 'd.npz'}", label_key="label").num_classes == 2


@pytest.mark.parametrize("value", ["abc", "-1", "0", "nan"])
def test_a_bad_seconds_variable_is_named_before_tensorflow(tmp_path, value):
    # "abc" was a float() traceback in `catalogue add` and a failure of every module in rank
    # ("ValueError: could not convert string to float: 'abc'", the variable never named).
    code = ("import sys; from hubensemble.cli import main; "
            "code = main(sys.argv[1:]); print('tensorflow' in sys.modules); sys.exit(code)")
    out = bounded_by_cpu([sys.executable, "-c", code, *FIT_ARGV[:-1], str(tmp_path / "run")],
                         capture_output=True, text=True, cpu=120,
                         env={**os.environ, "HUBENSEMBLE_DOWNLOAD_DEADLINE": value})
    assert out.returncode == 2 and out.stdout.strip() == "False", out.stderr
    assert (f"error: HUBENSEMBLE_DOWNLOAD_DEADLINE={value!r} must be a number > 0 and finite, "
            "in seconds (it bounds a whole download); set e.g. "
            "HUBENSEMBLE_DOWNLOAD_DEADLINE=3600") in out.stderr, out.stderr
    assert not (tmp_path / "run").exists()


def test_a_class_folder_not_named_in_utf8_is_refused_before_tensorflow(tmp_path):
    # A new-user check: fit ranked, tuned and ensembled the class dr\\xe9i (Latin-1), then
    # export died in a TensorFlow traceback (UnicodeEncodeError in serve_bytes).
    data = os.path.join(os.fsencode(str(tmp_path / "data")), b"dr\xe9i")
    try:
        os.makedirs(data)
    except OSError:
        pytest.skip("this file system refuses a name that is not UTF-8")
    for folder in (data, *(os.fsencode(str(tmp_path / "data" / c)) for c in ("eins", "zwei"))):
        os.makedirs(folder, exist_ok=True)
        for name in (b"x.jpg", b"y.jpg"):  # no image: anything past the listing reads one
            with open(os.path.join(folder, name), "wb") as f:
                f.write(b"x")
    cat = tmp_path / "c.yaml"
    cat.write_text(f"modules:\n  - {{name: t, handle: {tmp_path / 'm'}}}\n")
    spec = f"folder:{tmp_path / 'data'}"
    argvs = [["fit", "--catalogue", str(cat), "--data", spec, "--out", str(tmp_path / "run")],
             ["evaluate", "--model", str(tmp_path / "export"), "--data", spec]]
    code = ("import json, sys; from hubensemble.cli import main; "
            "codes = [main(a) for a in json.loads(sys.argv[1])]; "
            "print(json.dumps([codes, 'tensorflow' in sys.modules]))")
    out = bounded_by_cpu([sys.executable, "-c", code, json.dumps(argvs)], capture_output=True,
                         text=True, cpu=120)
    assert json.loads(out.stdout.splitlines()[-1]) == [[2, 2], False], out.stderr
    assert out.stderr.count(f"error: class folder {tmp_path / 'data'}/dr\\xe9i/ has a name "
                            "that is not UTF-8 (invalid continuation byte at byte 2); ") == 2
    assert "Traceback" not in out.stderr and not (tmp_path / "run").exists()


def test_a_run_folder_tensorflow_cannot_reach_is_refused_before_the_work(
        tmp_path, in_process):
    """A new-user check: `fit --out $'run\\xff' --sweep probe` ranked, tuned, costed and
    ensembled, then its export refused RUN/export (TensorFlow can neither write nor read a
    name that is not UTF-8: fileio.tf_path); without --sweep probe tune refused RUN/tuner
    after the rank. Both are refused first, by the same words, from Python's fit too; a
    probe sweep with --export elsewhere, which works, is not."""
    raw = os.fsencode(str(tmp_path)) + b"/run\xff"
    try:
        os.mkdir(raw)
        os.rmdir(raw)
    except OSError:
        pytest.skip("this file system refuses a name that is not UTF-8")
    for c in ("a", "b"):
        (tmp_path / "data" / c).mkdir(parents=True)
        for name in ("x.jpg", "y.jpg"):  # no image: anything past the listing reads one
            (tmp_path / "data" / c / name).write_bytes(b"x")
    cat = tmp_path / "c.yaml"
    cat.write_text(f"modules:\n  - {{name: t, handle: {tmp_path / 'm'}}}\n")
    bad, spec = os.fsdecode(raw), f"folder:{tmp_path / 'data'}"
    words = (f"the name is not UTF-8 (a byte of another encoding, e.g. Latin-1) in its folder "
             f"{tmp_path}/run\\xff, which TensorFlow can neither write nor read; rename that "
             f"folder in UTF-8")
    for extra, where in (((), "tuner"), (("--sweep", "probe"), "export"),
                         (("--sweep", "seeds+probe"), "tuner")):
        code, _, err = in_process("fit", "--catalogue", cat, "--data", spec, "--out", bad,
                                  *extra)
        assert code == 2 and (f"error: {tmp_path}/run\\xff/{where}: {words}, or choose "
                              "another --out folder\n") in err, err
        assert not os.path.lexists(raw)
    from hubensemble.errors import HubensembleError
    from hubensemble.formats import check_export_target, check_tuner_folder
    from hubensemble.pipeline import fit

    with pytest.raises(HubensembleError, match=re.escape(f"run\\xff/tuner: {words}, or choose "
                                                         "another out folder")):
        fit(str(cat), spec, bad)

    check_tuner_folder(bad, "probe")  # the probe's trials are hubensemble's own: not refused
    check_export_target(tmp_path / "elsewhere", "--export", run_dir=bad)
    assert not os.path.lexists(raw)
    # evaluate and predict --model $'exp\xff' read the data (or images), then their load
    # refused the folder: now refused first (formats.check_saved_model_folder), as is
    # distill's teacher (formats.unloadable_path)
    model = os.fsencode(str(tmp_path)) + b"/exp\xff"
    os.mkdir(model)
    (tmp_path / os.fsdecode(model) / "saved_model.pb").write_bytes(b"x")
    for command in (("evaluate", "--model", os.fsdecode(model), "--data", spec),
                    ("predict", "--model", os.fsdecode(model), tmp_path / "data")):
        code, _, err = in_process(*command)
        assert code == 2 and (f"error: {tmp_path}/exp\\xff: the name is not UTF-8 (a byte "
                              "of another encoding, e.g. Latin-1), which TensorFlow can "
                              "neither write nor read; rename it in UTF-8") in err, err
        assert "reading" not in err, err


def test_what_a_run_folder_lacks_is_refused_before_tensorflow_loads(tmp_path, monkeypatch):
    from hubensemble.candidate import write_candidate
    from hubensemble.errors import HubensembleError
    from hubensemble.rundir import Run

    # Each was the same one line, after TensorFlow's 6-11 s import.
    damaged, ranked = tmp_path / "damaged", tmp_path / "ranked"
    Run(ranked).update(modules={})
    for run in (damaged, ranked):
        (run / "ranking.json").parent.mkdir(exist_ok=True)
        (run / "ranking.json").write_text('{"modules": []}')
    (damaged / "run.json").write_text("{garbage")
    cat = tmp_path / "c.yaml"
    cat.write_text(f"modules:\n  - {{name: t, handle: {stand_in(tmp_path, 'm')}}}\n")
    fit = ["fit", "--catalogue", str(cat), "--data", "sklearn:digits", "--out", str(damaged)]
    commands = [[c, "--run", str(damaged)] for c in ("tune", "export", "cost", "distill")]
    commands += [fit, ["export", "--run", str(ranked)], ["cost", "--run", str(ranked)],
                 ["export", "--run", str(ranked), "--quantize", "float16"]]  # flags first
    # What tune reads from rank: ranking.json (missing, garbled), run.json's data.
    unranked, garbled = tmp_path / "unranked", tmp_path / "garbled"
    for run in (unranked, garbled):
        Run(run).update(modules={}, data={"task": {}})
    (garbled / "ranking.json").write_text("{garbage")
    commands += [["tune", "--run", str(run)] for run in (unranked, garbled, ranked)]
    # A worker of a chief/worker sweep whose chief stopped with an error (its end record,
    # sweeplock.chief_end_path), here that it could not listen at the worker's address (the
    # worker too needs another; after other errors it waits, warned): it stopped so only
    # once TensorFlow had loaded.
    worker = tmp_path / "worker"
    Run(worker).update(modules={}, data={"task": {}})
    (worker / "ranking.json").write_text('{"modules": []}')
    with pytest.raises(HubensembleError):
        with Run(worker).lock("tune", "chief", {"sweep": "hyper", "oracle": "127.0.0.1:9"}):
            from hubensemble.sweeplock import chief_cannot_listen

            raise chief_cannot_listen("127.0.0.1:9")
    commands += [["tune", "--run", str(worker), "--tuner-id", "tuner0", "--oracle",
                  "127.0.0.1:9", "--sweep", "hyper"]]
    # Not a refusal: workers with nothing left (their chief done, failed, or none recorded)
    # print the sweep's summary and exit 0, which took TensorFlow's import (13 s, 724 MB).
    # test_tune::test_a_finished_worker_says_what_run_tune_says: the same words.
    from sweepfiles import WORKER, finished_sweep

    finished = [finished_sweep(tmp_path / f"finished {chief}", chief=chief)
                for chief in ("done", "error", None)]
    code = ("import json, sys; from hubensemble.cli import main; "
            "codes = [main(a) for a in json.loads(sys.argv[1])]; "
            "print(json.dumps([codes, 'tensorflow' in sys.modules]))")

    def refusals(argvs):
        out = bounded_by_cpu([sys.executable, "-c", code, json.dumps(argvs)],
                             capture_output=True, text=True, cpu=120)
        assert out.returncode == 0, out.stderr
        refusals.out = out.stdout
        return json.loads(out.stdout.splitlines()[-1]), out.stderr

    (codes, tensorflow), err = refusals(commands + [WORKER + ["--run", str(f)]
                                                    for f in finished])
    assert codes == [2] * len(commands) + [0] * 3 and not tensorflow, err
    for run in finished:
        assert (f"sweep seeds: 1 ok (1 at chance on validation), 1 failed, 0 not finished, of "
                f"2 planned (2 finished before this run, reused); candidates in "
                f"{run / 'candidates'}\n  failed seeds-0001-m: diverged\n") in refusals.out
    assert refusals.out.count("  at chance seeds-0000-m: accuracy 0.500 is not ") == 3
    assert err.count("tune seeds: all 2 planned trials finished before, reused\n") == 3, err
    assert err.count(f"{damaged / 'run.json'} is unreadable (JSONDecodeError") == 5, err
    assert err.count(f"{ranked / 'ensemble.json'} is missing; `hubensemble ensemble --run "
                     f"{ranked}` writes it, from the candidates that `hubensemble tune --run "
                     f"{ranked}` writes first") == 1, err
    assert err.count(f"{ranked / 'candidates'} is missing; `hubensemble tune --run {ranked}` "
                     "writes the candidates") == 1, err
    assert err.count("--quantize applies only to the TFLite model; add --format tflite") == 1
    assert err.count(f"{unranked / 'ranking.json'} is missing; `hubensemble rank --catalogue "
                     f"FILE --data SPEC --out {unranked}` writes it\n") == 1, err
    assert err.count(f"{garbled / 'ranking.json'} is unreadable (JSONDecodeError") == 1, err
    assert err.count(f"{ranked / 'run.json'} records no data") == 1, err
    assert len(re.findall(r"tune --tuner-id tuner0 on \S+worker: its chief \(pid \d+ on host "
                          r"\S+, since \S+ \S+\) stopped with an error at \S+ \S+: the chief "
                          r"cannot listen on 127\.0\.0\.1:9; pick a free port or an address of "
                          r"this machine; this worker stops rather than wait for it to "
                          r"listen", err)) == 1, err
    assert "Traceback" not in err
    assert (damaged / "log.txt").read_text().count("run.json is unreadable") == 5  # as before
    # Candidates that are not usable are named, as `ensemble` names them.
    (ranked / "labels").mkdir()
    np.save(ranked / "labels" / "val.npy", np.zeros(4, np.int64))
    write_candidate(ranked / "candidates", {"trial": "default-0000-t", "module": "t",
                                            "status": "failed", "reason": "diverged"})
    (codes, tensorflow), err = refusals([["cost", "--run", str(ranked)],
                                         ["ensemble", "--run", str(ranked)]])
    said = f"no usable candidates in {ranked / 'candidates'} (default-0000-t: "
    assert codes == [2, 2] and not tensorflow and err.count(said) == 2, err
    assert (ranked / "log.txt").read_text().count(said) == 2


def test_restart_removes_the_knn_folder_an_older_version_wrote(tmp_path, in_process):
    # A run of hubensemble before 5b1259d (679fffb) holds RUN/knn/<module>.npy (int64 [N]
    # kNN predictions, now RUN/knn.npz); `fit --restart` kept it as "an entry that no stage
    # writes", and rank.load_knn_predictions reads it while the run has no knn.npz.
    from hubensemble.rundir import Run

    run = tmp_path / "run"
    Run(run).update(modules={})
    (run / "knn").mkdir()
    for name in ("m0", "m1"):
        np.save(run / "knn" / f"{name}.npy", np.zeros(800, np.int64))
    (run / "ranking.json").write_text("{}")
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"modules:\n  - {{name: gone, handle: {stand_in(tmp_path, 'nowhere')}}}\n")
    code, out, err = in_process("fit", "--catalogue", str(bad), "--data", "sklearn:digits",
                                "--out", str(run), "--restart", "-q")
    assert code == 2 and "gone" in err, err  # its one module is missing: it stops in rank
    assert not (run / "knn").exists() and "kept" not in (run / "log.txt").read_text()
    # A knn/ folder holding a file of the user's is refused by name, as labels/ is.
    (run / "knn").mkdir()
    np.save(run / "knn" / "m0.npy", np.zeros(800, np.int64))
    (run / "knn" / "notes.txt").write_text("mine")
    (run / "ranking.json").write_text("{}")
    code, out, err = in_process("fit", "--catalogue", str(bad), "--data", "sklearn:digits",
                                "--out", str(run), "--restart", "-q")
    assert code == 2 and (run / "knn" / "notes.txt").exists() and (run / "knn" / "m0.npy").exists()
    assert "holds files or folders that no hubensemble stage wrote (knn/notes.txt)" in err


def test_a_folder_of_the_users_is_never_a_run_and_restart_removes_only_what_stages_wrote(
        tmp_path, in_process):
    from hubensemble.formats import RUN_ENTRIES
    from hubensemble.rundir import Run

    # A new user's report: `rank --out` took a folder of class folders and a text file, and
    # `fit --restart` on it then deleted all of them.
    mine = tmp_path / "images"
    for name in ("class_0", "class_1"):
        (mine / name).mkdir(parents=True)
        (mine / name / "a.png").write_bytes(b"png")
    (mine / "important.txt").write_text("keep me")
    before = sorted(p.relative_to(mine) for p in mine.rglob("*"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"modules:\n  - {{name: gone, handle: {stand_in(tmp_path, 'nowhere')}}}\n")
    common = ["--catalogue", str(bad), "--data", "sklearn:digits", "--out", str(mine), "-q"]
    said = (f"{mine} holds files or folders (class_0, class_1, important.txt) and no run (no "
            "run.json, no ranking.json); pass a new or empty --out folder")
    for argv in (["rank", *common], ["fit", *common], ["fit", *common, "--restart"]):
        code, out, err = in_process(*argv)
        assert code == 2 and err.count(said) == 1, (argv, err)
    from hubensemble.catalogue import load_catalogues
    from hubensemble.data import load_task
    from hubensemble.ensemble import run_ensemble
    from hubensemble.errors import HubensembleError, RunError
    from hubensemble.rank import run_rank

    with pytest.raises(RunError) as e:  # the Python API wrote its run into it
        run_rank(mine, load_catalogues([str(bad)]), load_task("sklearn:digits"))
    assert str(e.value) == said.replace("--out", "out_dir") + (
        ", so that the run's files never mix with yours")
    with pytest.raises(HubensembleError, match=" is a file, not a folder; pass another "
                                               "out_dir$"):  # it raised NotADirectoryError
        run_rank(mine / "important.txt", load_catalogues([str(bad)]), load_task("sklearn:digits"))
    assert sorted(p.relative_to(mine) for p in mine.rglob("*")) == before  # no log.txt either
    # A run with a file of the user's in it: --restart removes the stages' entries only.
    run = tmp_path / "run"
    Run(run).update(modules={})
    for name in ("candidates", "tuner", "export"):
        (run / name).mkdir()
    (run / "ensemble.json").write_text("{}")
    (run / "notes.txt").write_text("mine")
    code, out, err = in_process("fit", *common[:4], "--out", str(run), "--restart", "-q")
    assert code == 2 and "gone" in err, err  # its one module is missing: it stops in rank
    left = set(os.listdir(run))
    assert "notes.txt" in left and not left & {"candidates", "tuner", "export", "ensemble.json"}
    assert left - {"notes.txt"} <= RUN_ENTRIES
    assert "--restart kept 1 entry that no stage writes: notes.txt" in (run / "log.txt").read_text()

    # A folder of the user's whose only entries are named like a run's (labels/,
    # candidates/, report.md) was taken for a run: `fit --restart` deleted
    # labels/classes.csv, and rank overwrote a labels/train.npy of the user's. Without
    # run.json or ranking.json, nothing says they are a run's: such a folder is refused.
    for layout_of in ({"labels/train.npy": b"\x93NUMPY their labels"},
                      {"labels/classes.csv": b"cat,dog", "labels/train.npy": b"x",
                       "candidates/alice/cv.pdf": b"%PDF", "candidates/notes.md": b"x"},
                      {"candidates/run-1/trial.json": b"{}"}, {"report.md": b"# mine"}):
        theirs = tmp_path / f"project{len(layout_of)}{sorted(layout_of)[0][0]}"
        for rel, content in layout_of.items():
            (theirs / rel).parent.mkdir(parents=True, exist_ok=True)
            (theirs / rel).write_bytes(content)
        layout = sorted((p.relative_to(theirs), p.is_file() and p.read_bytes())
                        for p in theirs.rglob("*"))
        tops = ", ".join(sorted({rel.split("/")[0] for rel in layout_of}))
        said = (f"{theirs} holds files or folders ({tops}) and no run (no run.json, no "
                "ranking.json); pass a new or empty --out folder, so that the run's files never "
                "mix with yours")
        for argv in (["fit", *common[:4], "--out", str(theirs), "--restart", "-q"],
                     ["rank", *common[:4], "--out", str(theirs), "-q"]):
            code, out, err = in_process(*argv)
            assert code == 2 and err.count(said) == 1, (argv, err)
        code, out, err = in_process("tune", "--run", str(theirs), "-q")  # not a run to tune
        assert code == 2 and (f"{theirs} is not a hubensemble run (no run.json, no "
                              "ranking.json)" in err or "run-1" in str(layout_of)), err
        # (A pool-like candidates/run-1/trial.json is a copied sweep to `tune`: it says
        # ranking.json is missing and logs that in log.txt, holding the run's lock, an empty
        # .fit.lock, as it does; it rewrites nothing.)
        assert sorted((p.relative_to(theirs), p.is_file() and p.read_bytes())
                      for p in theirs.rglob("*") if p.name not in ("log.txt", ".fit.lock")
                      ) == layout
    # Inside a run, the run's labels/ and candidates/ hold only what stages write there: a
    # file of the user's in them is refused too, and nothing goes.
    (theirs / "labels").mkdir()
    (theirs / "labels" / "notes.txt").write_text("mine")
    Run(theirs).update(modules={})
    code, out, err = in_process("fit", *common[:4], "--out", str(theirs), "--restart", "-q")
    assert code == 2 and f"{theirs} is a run but holds files or folders that no hubensemble " \
        "stage wrote (labels/notes.txt); move them out, or pass another --out folder" in err, err
    assert (theirs / "labels" / "notes.txt").exists() and (theirs / "report.md").exists()
    code, out, err = in_process("ensemble", "--run", str(theirs), "-q")  # its own flag
    assert code == 2 and "(labels/notes.txt); move them out, or pass another --run folder" in err
    with pytest.raises(RunError, match=r"notes.txt\); move them out, or pass another run_dir "
                                       "folder"):  # from Python, its keyword
        run_ensemble(theirs)
    # A folder named run.json is no run: fit --restart deleted the file inside it, and the
    # stages stopped with IsADirectoryError's traceback. A .gitkeep alone is no reason to refuse.
    odd = tmp_path / "odd"
    (odd / "run.json").mkdir(parents=True)
    (odd / "run.json" / "x").write_text("mine")
    code, out, err = in_process("fit", *common[:4], "--out", str(odd), "--restart", "-q")
    assert code == 2 and f"{odd} holds files or folders (run.json) and no run" in err, err
    for argv in (["ensemble", "--run", str(odd)], ["tune", "--run", str(odd)]):
        code, out, err = in_process(*argv, "-q")
        assert code == 2 and f"{odd / 'run.json'} is a folder, not a run's run.json" in err, err
        assert "Traceback" not in err
    assert (odd / "run.json" / "x").read_text() == "mine"
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / ".gitkeep").write_text("")
    assert Run(kept).check_folder_is_ours() is None
    # A copied pool (no run.json) is still a stage's to read, a damaged trial (no
    # trial.json) too: the ensemble reports it. It is not a folder to rank into.
    copied = tmp_path / "copied"
    (copied / "candidates" / "default-0000-m").mkdir(parents=True)
    (copied / "candidates" / "default-0000-m" / "trial.json").write_text("{}")
    (copied / "candidates" / "default-0001-m").mkdir()
    (copied / "candidates" / "default-0001-m" / "val_probs.npy").write_bytes(b"")
    (copied / "labels").mkdir()
    (copied / "labels" / "val.npy").write_bytes(b"")
    assert Run(copied).holds_results()
    assert Run(copied).check_folder_is_ours(creating=False) is None
    with pytest.raises(RunError, match=r"\(candidates, labels\) and no run"):
        Run(copied).check_folder_is_ours()


def test_catalogue_add_says_what_it_added_unless_quiet_without_tensorflows_notices(
        tmp_path, tiny_module):
    # `catalogue add` printed TensorFlow's start-up notices (oneDNN, CUDA probing) that
    # every other command hides unless --verbose, and its summary with -q.
    target = tmp_path / "c.yaml"
    code, out, err = hubensemble("catalogue", "add", str(tiny_module), "--to", str(target), "-q")
    assert (code, out) == (0, "") and "oneDNN" not in err and "cuInit" not in err, err
    assert "  - name: " in target.read_text()
    code, out, err = hubensemble("catalogue", "add", str(tiny_module), "--name", "again",
                                 "--to", str(target))
    assert code == 0 and out.startswith(f"{target}: added 1 module\n  - name: again\n")
    assert "oneDNN" not in err and "cuInit" not in err, err
    # The same module twice: appended (the entries may differ in what they describe), with a
    # warning naming the new entry's line (validate's FILE:LINE) and the earlier entry, as
    # rank ranks it once.
    line = target.read_text().splitlines().index("  - name: again") + 1
    assert err.count(f"{target}:{line}: entry 'again' loads the same module as ") == 1, err
    assert f"({target}:2)" in err and "ranked once, as " in err, err


def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path):
    """A new-user check: `hubensemble catalogue list | head -5` ended with a BrokenPipeError
    traceback (every command that writes to stdout could). A real pipe: the reader takes a
    line and closes it while the command still writes (far more than a pipe holds)."""
    cat = tmp_path / "big.yaml"
    cat.write_text("modules:\n" + "".join(
        f"  - name: m{i}\n    handle: https://tfhub.dev/google/bit/m-r50x1/{i + 1}\n"
        for i in range(3000)))
    proc = subprocess.Popen([sys.executable, "-m", "hubensemble", "catalogue", "list", str(cat)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline().split()[0] == b"NAME"
        proc.stdout.close()
        err = proc.stderr.read().decode()
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == 141 and err == "", err  # 128 + SIGPIPE, as a shell says


def test_a_stopped_command_says_why_once(tmp_path):
    # Outside the terminal's log handler, logging's last resort printed it a second time (in
    # a process of its own: pytest's log capture is a handler, so in-process it was once).
    # Both commands in one process without pytest's handler (`each_in_one_process`).
    for code, out, err, _ in each_in_one_process(  # with and without TensorFlow; refused
            *[[command, "--run", tmp_path / "nowhere"] for command in ("export", "ensemble")]):
        assert (code, out) == (2, "") and err.count(f"{tmp_path / 'nowhere'} does not exist") == 1


def test_rank_merge_refuses_what_is_not_a_set_of_shards_before_it_makes_out(tmp_path):
    from hubensemble.rundir import Run

    Run(tmp_path / "whole").update(modules={})
    (tmp_path / "whole" / "ranking.json").write_text(json.dumps(
        {"metric": "knn", "k": 1, "modules": [], "selected": [], "shard": None}))
    cases = ((tmp_path / "nowhere", f"{tmp_path / 'nowhere'} does not exist"),
             (tmp_path / "whole", "a whole ranking, not a shard"))
    for (_, said), (code, out, err, tensorflow) in zip(cases, each_in_one_process(
            *[["rank", "merge", shard, "--out", tmp_path / "merged"] for shard, _ in cases])):
        assert (code, out, tensorflow) == (2, "", False), err
        assert err.count(said) == 1, err
    assert not (tmp_path / "merged").exists()  # no folder, no log.txt in it


def test_strategy_and_modules_are_refused_before_tensorflow_and_fits_ranking(tmp_path):
    from hubensemble.rundir import Run

    # fit --strategy tpu (no TPU named) and fit --modules with a typo ranked every module
    # first and stopped at tune; tune and export said it after TensorFlow's seconds.
    cat = tmp_path / "c.yaml"
    cat.write_text(f"modules:\n  - {{name: t, handle: {tmp_path / 'm'}}}\n"
                   f"  - {{name: u, handle: {tmp_path / 'm'}}}\n")
    out, ranked = tmp_path / "run", tmp_path / "ranked"
    Run(ranked).update(modules={}, data={"task": {}})
    (ranked / "ranking.json").write_text(json.dumps({"modules": [
        {"name": "a", "status": "ok"}, {"name": "b", "status": "failed"}]}))
    fit = ["fit", "--catalogue", str(cat), "--data", "sklearn:digits", "--out", str(out)]
    argvs = [fit + ["--strategy", "tpu"], fit + ["--strategy", "multiworker"],
             ["tune", "--run", str(ranked), "--strategy", "tpu"],
             ["export", "--run", str(ranked), "--strategy", "tpu"],
             fit + ["--modules", "u", "tt"], ["tune", "--run", str(ranked), "--modules", "c"],
             ["tune", "--run", str(ranked), "--modules", "a", "b"],
             ["demo", "--out", str(out), "--modules", "nosuch"]]  # it built its zoo first
    code = ("import json, sys; from hubensemble.cli import main; "
            "codes = [main(a) for a in json.loads(sys.argv[1])]; "
            "print(json.dumps([codes, 'tensorflow' in sys.modules]))")
    env = {k: v for k, v in os.environ.items() if k not in ("TPU_NAME", "TF_CONFIG")}
    run = bounded_by_cpu([sys.executable, "-c", code, json.dumps(argvs)], capture_output=True,
                         text=True, cpu=120, env=env)
    assert run.returncode == 0, run.stderr
    codes, tensorflow = json.loads(run.stdout.splitlines()[-1])
    assert codes == [2] * len(argvs) and not tensorflow and not out.exists(), run.stderr
    for said, count in (("strategy tpu needs a TPU: pass --tpu NAME|grpc://HOST:8470|local or "
                         "set TPU_NAME", 3),
                        ("strategy multiworker is refused: Keras 3's Model.fit", 1),
                        ("module 'tt' is not in the catalogue (did you mean 't'?); its "
                         "modules: t, u", 1),
                        ("module 'c' is not in the ranking; ranked modules: a", 1),
                        ("module 'b' has status 'failed' in the ranking (it could not be "
                         "embedded); usable modules: a", 1),
                        ("module 'nosuch' is not in the demo's zoo; its modules: r8x2-", 1)):
        assert run.stderr.count(f"error: {said}") == count, (said, run.stderr)
    # A TPU named by the environment is enough to start (whether it answers is tune's to
    # find out), and fit from Python refuses before the data and the ranking as well.
    from hubensemble.errors import HubensembleError
    from hubensemble.pipeline import fit as fit_run
    from hubensemble.lockwords import command_line
    from hubensemble.preflight import check_strategy

    check_strategy("tpu", None, environ={"TPU_NAME": "my-tpu"})
    check_strategy("auto", "grpc://10.0.0.2:8470", environ={})
    for strategy in ("cpu", "mirrored"):  # --tpu was ignored without a word
        # From Python, the keywords (it was told "--tpu … --strategy tpu"), else the flags.
        with pytest.raises(HubensembleError, match=f"tpu='grpc://h:1' is only used with "
                                                   f"strategy='tpu' .*instead of {strategy}"):
            check_strategy(strategy, "grpc://h:1", environ={})
        with command_line(), pytest.raises(
                HubensembleError, match=f"--tpu grpc://h:1 is only used with --strategy tpu "
                                        f".*instead of {strategy}"):
            check_strategy(strategy, "grpc://h:1", environ={})
    with pytest.raises(HubensembleError, match=re.escape(
            "strategy tpu needs a TPU: pass tpu='NAME'|'grpc://HOST:8470'|'local' or set "
            "TPU_NAME")):
        check_strategy("tpu", None, environ={})
    from hubensemble.preflight import check_modules

    rows = [{"name": f"resnet-{i}"} for i in range(30)]  # a catalogue is not listed whole
    with pytest.raises(HubensembleError) as e:
        check_modules(["resnet-7", "resnet-7x"], rows, source="catalogue")
    # git's rule (text.closest_names): the one name a slip away; difflib's ratio also
    # offered 'resnet-27' or 'resnet-17', two slips away.
    assert str(e.value) == ("module 'resnet-7x' is not in the catalogue (did you mean "
                            "'resnet-7'?); its modules: " + ", ".join(
                                f"resnet-{i}" for i in range(20)) + " and 10 more; pass "
                            "modules=['resnet-7']")
    assert check_modules(["resnet-9", "resnet-2", "resnet-9"], rows) == ["resnet-2", "resnet-9"]
    with pytest.raises(HubensembleError, match=r"module 'resnet-1,resnet-2' is not in the "
                                               r"ranking \(separate the names: modules=\['A', "
                                               r"'B'\], not \['A,B'\]\); ranked modules"):
        check_modules(["resnet-1,resnet-2"], rows)  # from Python: its list, not a flag
    with command_line(), pytest.raises(HubensembleError, match=(
            r"\(separate the names with spaces: --modules A B, not A,B\); ranked modules")):
        check_modules(["resnet-1,resnet-2"], rows)
    with pytest.raises(HubensembleError, match="module 'x' is not in the catalogue"):
        fit_run([str(cat)], "sklearn:nosuch", str(tmp_path / "py"), modules=["x"])


def test_rank_refuses_to_orphan_a_runs_candidates_before_tensorflow_loads(
        tmp_path, tiny_module):
    from hubensemble.candidate import write_candidate

    cat = tmp_path / "c.yaml"
    cat.write_text(f"modules:\n  - {{name: t, handle: {tiny_module}}}\n")
    run = tmp_path / "run"  # a pool copied without run.json: its module is still named
    write_candidate(run / "candidates", {"trial": "default-0000-gone", "module": "gone",
                                         "status": "failed", "reason": "diverged"})
    code = ("import sys; from hubensemble.cli import main; c = main(sys.argv[1:]); "
            "print('tensorflow' in sys.modules); sys.exit(c)")
    out = bounded_by_cpu([sys.executable, "-c", code, "rank", "--catalogue", str(cat), "--data",
                          "sklearn:digits", "--out", str(run)], capture_output=True, text=True,
                         cpu=120)
    assert out.returncode == 2 and out.stdout.strip() == "False", out.stderr
    assert out.stderr.count(f"{run} holds 1 candidate tuned from its modules, and gone is "
                            "not in the catalogue") == 1, out.stderr
    assert sorted(os.listdir(run)) == ["candidates"]  # no ranking, no run.json, no log.txt


def test_distill_refuses_an_unknown_student_before_tensorflow_loads(tmp_path):
    from hubensemble.catalogue import ModuleSpec
    from hubensemble.rundir import Run

    Run(tmp_path / "run").update(modules={"small": ModuleSpec(name="small", handle="h")
                                          .to_json()})
    # The second: a mistyped --run is named as such, not as a run without that module.
    (code, out, err, tensorflow), (code2, _, err2, _) = each_in_one_process(
        ["distill", "--run", tmp_path / "run", "--student", "nope"],
        ["distill", "--run", tmp_path / "nowhere", "--student", "nope"])
    assert (code, out, tensorflow) == (2, "", False), err
    assert err.count("--student 'nope' is not a module of this run; its modules that "
                     "loaded are: small") == 1
    assert code2 == 2 and err2.count(f"{tmp_path / 'nowhere'} does not exist") == 1


def test_predict_and_evaluate_name_a_wrong_model_folder_before_tensorflow_loads(tmp_path):
    (tmp_path / "run" / "export").mkdir(parents=True)
    (tmp_path / "run" / "export" / "saved_model.pb").write_bytes(b"")
    (tmp_path / "run" / "export-tflite").mkdir()
    (tmp_path / "run" / "export-tflite" / "model.tflite").write_bytes(b"")
    cases = [(argv + [model], said) for argv in (["evaluate", "--model"],
                                                 ["predict", "x.png", "--model"])
             for model, said in ((tmp_path / "nowhere", f"{tmp_path / 'nowhere'} does not exist"),
                                 (tmp_path / "run" / "export-tflite",
                                  "it is the TFLite model of `export --format tflite`"),
                                 (tmp_path / "run" / "export-tflite" / "model.tflite",
                                  "model.tflite is a file (a TFLite model), not a SavedModel "
                                  "folder"),
                                 (tmp_path / "run", "is not a SavedModel folder (no "
                                                    "saved_model.pb); it is a run folder: pass "
                                                    f"--model {tmp_path / 'run' / 'export'}"))]
    for (argv, said), (code, out, err, tensorflow) in zip(
            cases, each_in_one_process(*[argv for argv, _ in cases])):
        assert (code, out, tensorflow) == (2, "", False), (argv, err)
        assert err.count(said) == 1, (argv, err)


def test_predict_names_a_plain_saved_model_and_an_empty_image_before_tensorflow_loads(tmp_path):
    """A new-user check: `predict` on another SavedModel said "has no serve_bytes signature
    (it has none)" and on a 0-byte image file "an empty file", each after 7-8 s."""
    from evaluatefakes import fake_saved_model_pb  # (one that parses: an empty one is damaged)

    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "saved_model.pb").write_bytes(fake_saved_model_pb())
    export = tmp_path / "export"
    (export / "assets").mkdir(parents=True)
    (export / "saved_model.pb").write_bytes(fake_saved_model_pb())
    (export / "assets" / "hubensemble.json").write_text('{"format": "x", "class_names": []}')
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    said = each_in_one_process(*[["predict", empty, "--model", model]
                                 for model in (plain, export)])
    for (code, out, err, tensorflow), words in zip(said, (
            f"{plain} is a SavedModel that `hubensemble export` did not write (no export "
            "metadata in assets/hubensemble.json)", f"{empty}: an empty file (0 bytes)")):
        assert (code, out, tensorflow) == (2, "", False), err
        assert words in err, err


def test_a_fit_on_a_folder_a_fit_is_running_on_is_refused_before_tensorflow(tmp_path):
    """A new-user check: the second of two fits on one folder was refused only after
    TensorFlow and the data had loaded (5.2 s); --restart would have cleared the folder."""
    from hubensemble.rundir import Run

    run = tmp_path / "run"
    cat = tmp_path / "c.yaml"
    cat.write_text(f"modules:\n  - {{name: t, handle: {stand_in(tmp_path, 'm')}}}\n")
    fits = [["fit", "--catalogue", cat, "--data", "sklearn:digits", "--out", run, *extra]
            for extra in ([], ["--restart"])]
    # A second new-user check: a `rank --out RUN` during the fit rewrote its ranking.json;
    # every command on a run folder is refused while a fit runs on it.
    others = [["rank", "--catalogue", cat, "--data", "sklearn:digits", "--out", run],
              ["tune", "--run", run], ["ensemble", "--run", run], ["report", "--run", run]]
    # A fit in its first seconds (log.txt only, no run.json yet): a stage command said the
    # folder "is not a hubensemble run; pass the folder that fit made" (a third check).
    starting = tmp_path / "starting"
    stages = [[command, "--run", starting]
              for command in ("tune", "ensemble", "cost", "export", "distill")]
    with Run(run).lock("fit"), Run(starting).lock("fit"):  # as the running fits hold them
        (run / "run.json").write_text("{}")  # the running fit's
        (starting / "log.txt").write_text("")
        said = each_in_one_process(*fits, *others, *stages)
    folders = [run] * (len(fits) + len(others)) + [starting] * len(stages)
    for argv, folder, (code, out, err, tensorflow) in zip(fits + others + stages, folders, said):
        assert (code, out, tensorflow) == (2, "", False), (argv, err)
        assert f"another fit is running on {folder}" in err, (argv, err)
    assert (run / "run.json").read_text() == "{}"


def test_fit_holds_its_lock_before_tensorflow_loads(tmp_path, monkeypatch):
    """A second new-user check: a fit took RUN/.fit.lock only after TensorFlow loaded, so a
    second fit started in those 5-10 s was refused only then, after its own import."""
    import hubensemble.cli
    import hubensemble.commands
    from hubensemble.cli import main
    from hubensemble.fileio import lock_is_held

    run = tmp_path / "run"
    cat = tmp_path / "c.yaml"
    cat.write_text(f"modules:\n  - {{name: t, handle: {stand_in(tmp_path, 'm')}}}\n")
    held = []

    def importing_tensorflow(*args, **kwargs):
        held.append(lock_is_held(run / ".fit.lock"))
        raise KeyboardInterrupt  # the user gives up while TensorFlow loads

    # fit's command imports it (after run.json's check), not the command line's runner
    for module in (hubensemble.cli, hubensemble.commands):
        monkeypatch.setattr(module, "_import_tensorflow", importing_tensorflow)
    argv = ["fit", "--catalogue", str(cat), "--data", "sklearn:digits", "--out", str(run)]
    assert main(argv) == 130
    assert held == [True] and not lock_is_held(run / ".fit.lock")  # released as it stopped


def test_a_command_writing_into_a_run_folder_holds_its_lock_and_a_second_is_refused(
        tmp_path, monkeypatch):
    """A new-user check: two `rank --out SAME` (--top-k 1 and 3) both exited 0, each printed
    its own selection, and ranking.json and run.json kept the last to finish; only fit took
    the run folder's lock. Every command that writes into a run folder holds it now, and
    records which command it is: a second is refused at once (before TensorFlow), naming the
    lock and the command that holds it."""
    import hubensemble.cli
    import hubensemble.commands
    from hubensemble.cli import main
    from hubensemble.fileio import lock_is_held, lock_owner
    from hubensemble.rundir import Run

    run = tmp_path / "run"
    cat = tmp_path / "c.yaml"
    cat.write_text(f"modules:\n  - {{name: t, handle: {stand_in(tmp_path, 'm')}}}\n")
    rank = ["rank", "--catalogue", str(cat), "--data", "sklearn:digits", "--out", str(run)]
    lock = run / ".fit.lock"
    held = []

    def importing_tensorflow(*args, **kwargs):
        held.append((lock_is_held(lock), (lock_owner(lock) or {}).get("command")))
        raise KeyboardInterrupt  # the user gives up while TensorFlow loads

    for where in (hubensemble.cli, hubensemble.commands):  # rank's command imports it itself
        monkeypatch.setattr(where, "_import_tensorflow", importing_tensorflow)
    assert main([*rank, "--top-k", "1"]) == 130
    assert held == [(True, "rank")] and not lock_is_held(lock)  # released as it stopped
    assert not (run / ".fit.lock.holder").exists()  # its record goes with it

    argvs = ([*rank, "--top-k", "3"], ["report", "--run", str(run)], ["fit", *rank[1:]],
             ["tune", "--run", str(run)])
    with Run(run).lock("rank"):  # as a running `rank --out RUN --top-k 1` holds it
        (run / "run.json").write_text("{}")  # the running rank's
        said = each_in_one_process(*argvs)
    for argv, (code, out, err, tensorflow) in zip(argvs, said):
        assert (code, out, tensorflow) == (2, "", False), (argv, err)
        assert (f"hubensemble: error: another rank is running on {run} (pid {os.getpid()}, "
                f"since ") in err, (argv, err)
        assert f"; it holds {lock}); wait for it to end" in err, (argv, err)
    assert (run / "run.json").read_text() == "{}"


def test_rank_names_the_flags_it_lacks_and_rank_merge_needs_none_of_them(tmp_path, capsys):
    from hubensemble.cli import main

    # argparse cannot require them (rank merge shares the parser): it exited 1 with a fixed
    # sentence naming all three.
    with pytest.raises(SystemExit) as stop:
        main(["rank", "--data", "sklearn:digits"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.startswith("usage: hubensemble rank --catalogue FILE")
    assert "error: the following arguments are required: --catalogue, --out (or use" in err
    assert main(["rank", "merge", str(tmp_path / "s0"), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 's0'} does not exist" in err and "required" not in err


@pytest.mark.parametrize("command", ["rank", "rank merge", "tune", "ensemble", "export",
                                     "predict", "evaluate", "report", "fit", "demo", "cost",
                                     "distill", "zoo build"])
def test_every_stage_command_describes_itself_and_takes_quiet(command):
    text = help_of(*command.split())
    head = text[text.index("]") if "]" in text else 0:text.index("options:")]
    # usage, then a sentence of description before the option list
    assert ". " in head or head.rstrip().endswith("."), head
    assert "-q, --quiet" in text


def parse(*argv):
    from hubensemble.cli import build_parser

    return build_parser().parse_args(list(argv))


FIT_ARGV = ("fit", "--catalogue", "c.yaml", "--data", "sklearn:digits", "--out", "run")


def test_verbose_and_quiet_go_before_or_after_the_command(tmp_path, capsys):
    # `predict … --verbose` was "unrecognized arguments" (only `hubensemble -v predict` worked);
    # `hubensemble -q catalogue validate` was too (only `… validate -q` worked).
    for argv in (["predict", "--model", "m", "x.png"], [*FIT_ARGV], ["evaluate", "--model", "m"],
                 ["rank", "merge", "s0", "--out", "o"], ["zoo", "build"],
                 ["catalogue", "validate"], ["catalogue", "list", "c.yaml"],
                 ["catalogue", "add", "h", "--to", "c.yaml"]):
        for flag in ("verbose", "quiet"):  # also between a group and its action (a check)
            if argv[0] in ("catalogue", "zoo"):
                assert getattr(parse(argv[0], f"--{flag}", *argv[1:]), flag) is True, argv
            assert getattr(parse(*argv), flag) is False, argv
            assert getattr(parse(*argv, f"--{flag}"), flag) is True, argv
            assert getattr(parse(f"-{flag[0]}", *argv), flag) is True, argv
    from hubensemble.cli import main

    catalogue = tmp_path / "c.yaml"  # a warning and a summary line, both silenced by -q
    catalogue.write_text(f"modules:\n  - name: a\n    handle: {tmp_path / 'gone'}\n")
    said = {}
    for argv in (["-q"], ["-v", "-q"], ["-q", "-v"], []):
        assert main([*argv, "catalogue", "validate", str(catalogue)]) == 1  # rank skips it
        said[" ".join(argv)] = capsys.readouterr().err
    assert said["-q"] == ("hubensemble catalogue validate: exit status 1: rank would skip 1 "
                          "module or weights file on this machine (without -q, its warnings "
                          "say with the fix)\n")  # why it exits 1, as errors are said
    assert "does not exist on this machine" in said[""]
    assert said["-v -q"] == said["-q -v"] == said[""]  # -v wins: its notes too, not only logs


@pytest.mark.parametrize("argv, dest", [
    (("rank", "--catalogue=~/c.yaml", "--data", "d", "--out=~/run"), ("catalogue", "out")),
    (("rank", "merge", "~/s0", "~/s1", "--out=~/run"), ("shards", "out")),
    (("tune", "--run=~/run"), ("run",)),
    (("rank", "--data", "tfds:x", "--data-dir=~/tfds", "--out", "r"), ("data_dir",)),
    (("export", "--run=~/run", "--out=~/exp"), ("run", "out")),
    (("predict", "--model=~/exp", "~/a.png"), ("model", "images")),
    (("evaluate", "--model=~/exp", "--out=~/e.json"), ("model", "out")),
    (("fit", "--catalogue=~/c.yaml", "--data", "d", "--out=~/run", "--export=~/exp",
      "--cache-dir=~/cache"), ("catalogue", "out", "export", "cache_dir")),
    (("zoo", "build", "--out=~/zoo"), ("out",)),
    (("catalogue", "add", "h", "--to=~/c.yaml"), ("to",)),
])
def test_file_and_folder_flags_expand_a_tilde(argv, dest, monkeypatch, tmp_path):
    # `--out=~/x` made a folder named "~" in the working folder: the shell expands a tilde
    # only at the start of a word, not after "=".
    monkeypatch.setenv("HOME", str(tmp_path))
    args = parse(*argv)
    for name in dest:
        value = getattr(args, name)
        for v in value if isinstance(value, list) else [value]:
            assert v.startswith(str(tmp_path) + os.sep) and "~" not in v, (name, v)


@pytest.mark.parametrize("argv, flag", [
    (("evaluate", "--model", "exp", "--data-dir", ""), "--data-dir"),
    (("evaluate", "--model", "exp", "--data", "tfds:x", "--data-dir="), "--data-dir"),
    (("rank", "--catalogue", "c", "--data", "tfds:x", "--out", "r", "--cache-dir", ""),
     "--cache-dir"),
    (("rank", "--catalogue", "", "--data", "d", "--out", "r"), "--catalogue"),
    (("rank", "merge", "s0", "", "--out", "r"), "RUN_SHARD"),
    (("tune", "--run", ""), "--run"),
    (("export", "--run", "r", "--out", ""), "--out"),
    (("predict", "--model", "exp", ""), "IMAGE"),
    (("evaluate", "--model", "", "--out", "e.json"), "--model"),
    (("fit", "--catalogue", "c", "--data", "d", "--out", "r", "--export", ""), "--export"),
    (("fit", "--catalogue", "c", "--data", "d", "--out", ""), "--out"),
    (("zoo", "build", "--out="), "--out"),
    (("catalogue", "add", "h", "--to", ""), "--to"),
    # A data spec too: `rank --data ""` said --data was required, `evaluate --data ""` scored
    # the run's own data. A spec is no path: it is named as what it is (it said "must be a
    # path", a new-user check).
    (("rank", "--catalogue", "c", "--data", "", "--out", "r"), "--data"),
    (("fit", "--catalogue", "c", "--data=", "--out", "r"), "--data"),
    (("evaluate", "--model", "exp", "--data", ""), "--data"),
])
def test_an_empty_path_is_refused_naming_its_flag(argv, flag, capsys):
    # `evaluate --data-dir ""` read the default folder, `tune --run ""` the working folder
    # (Path("") is "."), `fit --out ""` wrote a run there: all without a word.
    with pytest.raises(SystemExit) as exit_:
        parse(*argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    why = ("must not be empty: a data spec such as folder:DIR, npz:FILE or tfds:NAME"
           if flag == "--data" else "must be a path, not empty")
    assert f"argument {flag}: {why}" in err and err.rstrip().endswith("got ''"), err


def test_every_empty_text_option_names_what_leaving_it_out_gives(capsys):
    """A new-user check: `tune --modules ''` said "(without it: the default)", which names no
    default. Every text option of every command names the default or behaviour it falls
    back to, its command's own (export's --strategy is cpu, tune's auto)."""
    from hubensemble import options

    for o in options.options_for():
        for command in (None, *o.commands):
            if o.type is str:
                assert o.show_default(command), (o.name, command)
    for argv, said in ((("tune", "--run", "r", "--modules", ""),
                        "the modules the ranking selected"),
                       (("export", "--run", "r", "--strategy", ""), "cpu"),
                       (("tune", "--run", "r", "--strategy", ""), "auto")):
        with pytest.raises(SystemExit):
            parse(*argv)
        assert f"must not be empty (without it: {said}), got ''" in capsys.readouterr().err


def test_an_empty_path_option_is_refused_from_python(tmp_path):
    from hubensemble import options
    from hubensemble.lockwords import command_line
    from hubensemble.evaluate import load_evaluation_task
    from hubensemble.rundir import DataArgs

    for name, flag in (("data_dir", "--data-dir"), ("cache_dir", "--cache-dir")):
        with pytest.raises(options.OptionError, match=(
                rf"^{name} must be a path, not empty \(without it: .+\), got ''")):
            options.check(name, "")
        with command_line(), pytest.raises(options.OptionError, match=f"^{flag} must be a "):
            options.check(name, "")
    with pytest.raises(options.OptionError, match="data_dir"):
        DataArgs(spec="tfds:beans", data_dir="")
    with pytest.raises(options.OptionError, match="data_dir"):
        load_evaluation_task(tmp_path / "export", data_dir="")
    with pytest.raises(options.OptionError, match="data must not be empty: a data spec such as "
                       "folder:DIR, npz:FILE or tfds:NAME, got ''; or None for the data of"):
        load_evaluation_task(tmp_path / "export", data="")
    # A run recorded with "" before (tfds read its default folder for it) loads as then.
    assert DataArgs.from_json({"spec": "tfds:beans", "data_dir": ""}).data_dir is None


@pytest.mark.parametrize("argv, flag", [
    (("tune", "--run", "r", "--tpu", ""), "--tpu"),
    (("export", "--run", "r", "--tpu="), "--tpu"),
    (("tune", "--run", "r", "--tuner-id", ""), "--tuner-id"),
    (("tune", "--run", "r", "--oracle", ""), "--oracle"),
    (("tune", "--run", "r", "--modules", "a", ""), "--modules"),
    (("distill", "--run", "r", "--student", ""), "--student"),
    (("evaluate", "--model", "exp", "--split", ""), "--split"),
    (("rank", "--catalogue", "c", "--data", "tfds:x", "--out", "r", "--label-key", ""),
     "--label-key"),
    (("fit", "--catalogue", "c", "--data", "tfds:x", "--out", "r", "--image-key="),
     "--image-key"),
    (("catalogue", "add", "h", "--to", "c.yaml", "--layer", ""), "--layer"),
    (("catalogue", "add", "h", "--to", "c.yaml", "--output-key", ""), "--output-key"),
    (("catalogue", "add", "", "--to", "c.yaml"), "HANDLE"),
])
def test_an_empty_value_of_a_text_flag_is_refused_naming_it(argv, flag, capsys):
    """`tune --tuner-id ""` (or `--oracle ""`) ran a sweep of its own where a worker was
    meant, `--tpu ""` took $TPU_NAME or nothing, `distill --student ""` and `--split ""` were
    refused later as no module, no split; `catalogue add --layer ""` wrote an entry. "" names
    nothing: a usage error naming the flag, from the options table (and the Python API)."""
    from hubensemble import options

    with pytest.raises(SystemExit) as exit_:
        parse(*argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: must not be empty" in err and err.rstrip().endswith("got ''"), err
    for name in ("tpu", "tuner_id", "student"):
        with pytest.raises(options.OptionError, match=(
                rf"^{name} must not be empty \(without it: .+\), got ''")):
            options.check(name, "")


def test_a_flag_of_several_values_given_twice_adds_to_its_list():
    # `--modules a --modules b` tuned b alone, without a word (argparse keeps the last).
    args = parse(*FIT_ARGV, "--modules", "a", "b", "--modules", "c", "--catalogue", "d.yaml")
    assert args.modules == ["a", "b", "c"] and args.catalogue == ["c.yaml", "d.yaml"]
    assert parse(*FIT_ARGV).modules is None and parse(*FIT_ARGV, "--modules", "x").modules == ["x"]
    assert parse("tune", "--run", "r", "--modules", "a", "--modules", "b").modules == ["a", "b"]
    args = parse("rank", "merge", "s0", "s1", "--out", "o")  # positionals as before
    assert args.shards == ["s0", "s1"]
    # One of a single value given twice is refused (test_a_flag_of_one_value_given_twice_...).
    assert parse("fit", "--catalogue", "c", "--data", "d", "--out", "r", "--out", "r").out == "r"


def test_severities_are_refused_without_corruptions(capsys):
    # `evaluate --severities 4` evaluated clean images only, without a word.
    with pytest.raises(SystemExit) as stop:
        parse("evaluate", "--model", "m", "--severities", "2")
    err = capsys.readouterr().err
    assert stop.value.code == 2 and ("hubensemble evaluate: error: argument --severities: only "
                                     "applies with --corruptions; add it or leave --severities "
                                     "out") in err, err
    args = parse("evaluate", "--model", "m", "--corruptions", "--severities", "2")
    assert args.severities == (2,)


@pytest.mark.parametrize("argv", [("rank", "--catalogue", "c", "--data", "d", "--out", "o"),
                                  ("rank", "merge", "s0", "--out", "o"), FIT_ARGV, ("demo",)])
def test_max_k_is_refused_without_the_rules_it_applies_to(argv, capsys):
    from hubensemble.pipeline import FitOptions

    # --max-k beside --top-k, or alone (top-K is the default rule), was silently ignored.
    # (Parsed only: were it taken, main would run the command.)
    prog = "hubensemble " + ("rank merge" if "merge" in argv else argv[0])
    for extra in (["--max-k", "4"], ["--top-k", "3", "--max-k", "4"], ["--max-k", "15"]):
        with pytest.raises(SystemExit) as stop:
            parse(*argv, *extra)
        err = capsys.readouterr().err
        assert stop.value.code == 2 and err.startswith(f"usage: {prog} "), err
        assert (f"{prog}: error: argument --max-k: only applies with --threshold or --greedy"
                in err), err
    # Its default is no flag; with the rules it caps, it is taken as before.
    for extra, max_k in (([], 15), (["--top-k", "3"], 15),
                         (["--threshold", "0.02", "--max-k", "4"], 4),
                         (["--max-k", "4", "--greedy"], 4)):
        args = parse(*argv, *extra)
        assert args.max_k == max_k and not [k for k in vars(args) if k.startswith("_")]
    # From Python (and in run records) it is not refused: the other rules ignore it.
    assert FitOptions(top_k=3, max_k=4).max_k == 4


def test_a_refused_max_k_loads_no_tensorflow(tmp_path):
    code = ("import sys; from hubensemble.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n"
            "    print('tensorflow' in sys.modules); sys.exit(e.code)")
    out = bounded_by_cpu([sys.executable, "-c", code, *FIT_ARGV[:-1], str(tmp_path / "run"),
                          "--max-k", "4"], capture_output=True, text=True, cpu=120)
    assert out.returncode == 2 and out.stdout.strip() == "False", out.stderr
    assert "argument --max-k: only applies with --threshold or --greedy" in out.stderr


def test_every_fit_option_is_in_fit_help_with_its_default():
    from hubensemble import options

    text = help_of("fit")
    rows = options.options_for(command="fit")
    assert len(rows) > 30
    for o in rows:
        for flag in o.cli_flags:
            assert flag in text, o.name
        shown = o.show_default("fit")
        if shown is not None:
            assert f"{o.cli_flags[0]}" in text and f"(default: {shown})" in text, o.name
        for choice in o.choices or ():
            assert choice in text, (o.name, choice)
    # Groups per stage, with the paper sections, as before.
    for title in ("data:", "rank (paper 2.3, C.4-C.8):", "selection (paper 2.3, 2.3.1, C.6):",
                  "tune (paper 2.2, 2.3, 2.3.1, A.1-A.3):", "ensemble (paper 2.3, C.9):",
                  "export:"):
        assert title in text
    # A few defaults spelled out, against the paper/README rather than the table.
    for piece in ("--top-k K keep the K best modules (unless --threshold or --greedy) "
                  "(default: 15)",
                  "--ensemble-budget N largest ensemble (greedy picks; paper: 15) (default: 15)",
                  "--profile {paper,cpu,quick}", "(default: cpu)", "--no-corruptions"):
        assert piece in text


def test_every_option_taking_a_value_shows_what_leaving_it_out_gives_in_every_help():
    """--help showed no default for the options whose default is None (--threshold,
    --bootstrap, --max-gflops, --max-latency-ms, --max-members, --shard, --shards): nothing
    said what leaving them out does. Every table option that takes a value names it, in the
    help of every command that takes it."""
    from hubensemble import options
    from hubensemble.arguments import help_text

    for o in options.OPTIONS:
        for command in o.commands:
            s = o.settings(command)
            if s["nargs"] == "?" or s["action"] in ("store_true", "store_false", "boolean"):
                continue
            assert "(default: " in help_text(o, command), (o.name, command)
    assert "--max-members K most distinct members (default: no limit)" in help_of("fit")


def test_parsed_defaults_are_the_tables_and_fit_options():
    from hubensemble import options
    from hubensemble.cli import _options_from
    from hubensemble.cliargs import data_args_from
    from hubensemble.pipeline import FitOptions
    from hubensemble.rundir import DataArgs

    args = parse(*FIT_ARGV)
    for o in options.options_for(command="fit"):
        assert getattr(args, o.name) == o.default, o.name
    assert _options_from(args) == FitOptions()
    assert data_args_from(args) == DataArgs(spec="sklearn:digits")
    fields = {f.name: f.default for f in dataclasses.fields(FitOptions)}
    assert fields == {o.name: o.default for o in options.options_for(record="fit")}
    # The demo's own default, shown by its help.
    assert parse("demo").top_k == 4 and "(default: 4)" in help_of("demo")


def test_one_default_profile_everywhere():
    from hubensemble import options
    from hubensemble.pipeline import FitOptions

    readme = (ROOT / "README.md").read_text()
    assert "`cpu` (the default)" in readme
    assert options.default("profile") == "cpu"
    assert FitOptions().profile == "cpu"
    assert parse(*FIT_ARGV).profile == "cpu"
    assert parse("rank").profile == "cpu"
    # The tune command's default is the run's profile (run_tune's profile=None), so a sweep
    # added to a run continues it; run_tune called from Python does the same.
    assert parse("tune", "--run", "r").profile is None
    # rank of a run folder keeps the run's profile too (cli._run_profile), and says so.
    for command in ("tune", "rank"):
        assert ("(default: the run's: that of its last tune, else of its rank, else cpu)"
                in help_of(command)), command
    assert options.defaults_for("rank")["profile"] == "cpu"
    assert options.defaults_for("tune")["profile"] is None


def stage_functions():
    from hubensemble.data import load_task
    from hubensemble.ensemble import run_ensemble
    from hubensemble.evaluate import evaluate_model
    from hubensemble.export import export_ensemble, predict
    from hubensemble.rank import merge_rankings, run_rank
    from hubensemble.distill import run_distill
    from hubensemble.tune import run_tune

    return {"data": load_task, "rank": run_rank, "merge": merge_rankings, "tune": run_tune,
            "ensemble": run_ensemble, "export": export_ensemble, "evaluate": evaluate_model,
            "predict": predict, "distill": run_distill}


@pytest.mark.parametrize("function", [
    "data", "rank", "merge", "tune", "ensemble", "export", "evaluate", "predict", "distill"])
def test_stage_functions_take_the_tables_defaults(function):
    import inspect

    from hubensemble import options

    params = inspect.signature(stage_functions()[function]).parameters
    for keyword, default in options.defaults_for(function).items():
        assert keyword in params, (function, keyword)
        assert params[keyword].default == default, (function, keyword)


@pytest.mark.parametrize("function, args, keywords, flag", [
    ("rank", ("RUN", [], None), {"batch_size": 0}, "--batch-size"),
    ("rank", ("RUN", [], None), {"greedy": "no"}, "--greedy"),
    ("merge", (["S0", "S1"], "RUN"), {"greedy": "no"}, "--greedy"),
    ("tune", ("RUN",), {"cache_dir": ""}, "--cache-dir"),
    ("tune", ("RUN",), {"max_failures": 1.5}, "--max-failures"),
    ("ensemble", ("RUN",), {"budget": 0}, "--budget"),  # the ensemble command's
    ("ensemble", ("RUN",), {"with_replacement": "no"}, "--with-replacement"),
    ("evaluate", ("RUN", None), {"batch_size": 0}, "--batch-size"),
    ("predict", ("RUN", []), {"skip_unreadable": "no"}, "--skip-unreadable"),
    ("export", ("RUN",), {"cache_dir": ""}, "--cache-dir"),
    ("export", ("RUN",), {"retrain_full": "no"}, "--retrain-full"),
    ("distill", ("RUN",), {"mixup": -1.0}, "--distill-mixup"),
    ("distill", ("RUN",), {"steps_scale": 0.0}, "--distill-steps"),
])
def test_stage_functions_refuse_from_python_what_the_command_line_refuses(
        tmp_path, function, args, keywords, flag):
    """A stage function called from Python took values its command-line flag refuses (e.g.
    run_tune(cache_dir="") read the default cache; greedy="no" selected greedily): each now
    checks its keywords by the options table (`options.check_keywords`), with the table's
    OptionError naming the option, before it reads or writes anything: its keyword to
    Python, the flag of that command on the command line (`lockwords.option_word`; each
    was told both, "budget (--budget)")."""
    from hubensemble import options
    from hubensemble.lockwords import command_line

    run = tmp_path / "run"
    args = [run if a == "RUN" else a for a in args]
    with pytest.raises(options.OptionError, match=f"^{next(iter(keywords))} must be "):
        stage_functions()[function](*args, **keywords)
    with command_line(), pytest.raises(options.OptionError, match=f"^{flag} must be "):
        stage_functions()[function](*args, **keywords)
    assert not run.exists()


@pytest.mark.parametrize("argv, flag, allowed", [
    (("--budget", "0"), "--budget", "an integer >= 1"),
    (("--profile", "gpu"), "--profile", "one of paper, cpu, quick"),
    (("--val-fraction", "1"), "--val-fraction", "a number in [0, 1)"),
    (("--bootstrap", "0"), "--bootstrap", "a number > 0"),
    (("--k", "2.5"), "--k", "an integer >= 1"),
    (("--split", "everything"), "--split", "NAME train, val or test"),
])
def test_an_invalid_value_is_an_error_naming_the_option(argv, flag, allowed, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse(*FIT_ARGV, *argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}:" in err and allowed in err


def test_invalid_python_values_are_refused_before_anything_runs(tmp_path):
    import hubensemble
    from hubensemble import options
    from hubensemble.pipeline import FitOptions
    from hubensemble.rundir import DataArgs

    # Python's own word: the keyword alone ("budget (--budget)" named a flag it never typed)
    with pytest.raises(options.OptionError, match=r"^budget must be an integer >= 1"):
        FitOptions(budget=0)
    with pytest.raises(options.OptionError, match="one of paper, cpu, quick"):
        hubensemble.fit("c.yaml", "sklearn:digits", tmp_path / "run", profile="gpu")
    with pytest.raises(TypeError, match="top_k"):
        hubensemble.fit("c.yaml", "sklearn:digits", tmp_path / "run", topk=3)
    assert not (tmp_path / "run").exists()
    with pytest.raises(options.OptionError, match="^test_fraction must be"):
        DataArgs(spec="sklearn:digits", test_fraction=-0.1)
    assert FitOptions(threshold=0.02, modules=["a", "b"], corruptions=False).threshold == 0.02


def test_a_mistyped_choice_from_python_is_named_with_the_closest_one(tmp_path):
    """profile='quik' said "must be one of paper, cpu, quick, got 'quik'", and 'Quick' the
    same without a word of case: each now ends "(did you mean quick?)" (`options.meant`)."""
    import hubensemble
    from hubensemble import options
    from hubensemble.pipeline import FitOptions

    with pytest.raises(options.OptionError, match=re.escape(
            "profile must be one of paper, cpu, quick, got 'quik' (did you mean "
            "quick?)")):
        hubensemble.fit("c.yaml", "sklearn:digits", tmp_path / "run", profile="quik")
    with pytest.raises(options.OptionError, match=re.escape("got 'KNN' (did you mean knn?)")):
        FitOptions(metric="KNN")
    with pytest.raises(options.OptionError, match=re.escape("(did you mean aug+probe?)")):
        options.check("sweep", "Aug+prob")
    with pytest.raises(options.OptionError, match=r"got 'fast'$"):  # none close: no guess
        FitOptions(profile="fast")
    # One letter from cpu, but a GPU's user means the strategy for GPUs (options.MEANT).
    with pytest.raises(options.OptionError, match=re.escape("got 'GPU' (did you mean "
                                                            "mirrored?)")):
        options.check("strategy", "GPU")
    assert not (tmp_path / "run").exists()


def test_stage_fields_are_the_invalidation_map():
    from hubensemble.pipeline import FitOptions

    # The map stage keys were computed from before the table, plus the ensemble-size rule
    # (which redoes the ensemble stage of older runs, as a changed default must) and the
    # inference budget (issue 17), and the BatchNorm policy and head start of issue 15 (the
    # tune stage of older runs is redone: "auto" changes how BatchNorm modules fine-tune), and
    # the training batch (which keys tune only when given: Option.keyed_at_default).
    before = {
        "rank": {"metric", "k", "top_k", "threshold", "max_k", "greedy", "profile"},
        "tune": {"sweep", "budget", "modules", "profile", "seed", "keep_weights", "batchnorm",
                 "head_init", "train_batch_size"},
        "ensemble": {"objective", "ensemble_budget", "size_rule", "with_replacement",
                     "bootstrap", "seed", "max_gflops", "max_latency_ms", "max_members"},
        "export": {"retrain_full", "skip_missing"},
        "evaluate": {"corruptions", "seed"},
        "report": set(),
    }
    assert {k: set(v) for k, v in FitOptions.STAGE_FIELDS.items()} == before


def test_command_lines_map_to_stage_keywords():
    from hubensemble import options
    from hubensemble.cliargs import data_args_from

    args = parse("ensemble", "--run", "r", "--budget", "3", "--objective", "accuracy")
    assert options.kwargs_for("ensemble", args) == {
        "objective": "accuracy", "budget": 3, "size_rule": "one-se", "with_replacement": False,
        "bootstrap": None, "seed": 0, "max_gflops": None, "max_latency_ms": None,
        "max_members": None}
    args = parse("ensemble", "--run", "r", "--max-gflops", "0.5", "--max-members", "3")
    assert (args.max_gflops, args.max_members) == (0.5, 3)
    args = parse("distill", "--run", "r", "--student", "m", "--max-gflops", "0.1")
    assert options.kwargs_for("distill", args) == {
        "max_gflops": 0.1, "student": "m", "steps_scale": 2.0, "mixup": 0.2, "init": "best",
        "lr_scale": 1.0, "train_batch_size": None}
    args = parse("distill", "--run", "r", "--distill-init", "module", "--distill-lr", "0.5")
    assert (args.distill_init, args.distill_lr) == ("module", 0.5)
    args = parse("export", "--run", "r", "--format", "tflite", "--quantize", "float16")
    assert options.kwargs_for("export", args) == {
        "retrain_full": False, "skip_missing": False, "export_format": "tflite",
        "quantize": "float16", "tflite_size": None, "cache_dir": None, "student": None,
        "train_batch_size": None}
    assert options.kwargs_for("export", parse("export", "--run", "r", "--student"))[
        "student"] is True
    assert options.kwargs_for("export", parse("export", "--run", "r", "--student", "m"))[
        "student"] == "m"
    args = parse("export", "--run", "r", "--retrain-full", "--cache-dir", "emb")
    assert (args.retrain_full, options.kwargs_for("export", args)["cache_dir"]) == (True, "emb")
    args = parse("tune", "--run", "r", "--oracle", "h:1", "--modules", "a", "b")
    kw = options.kwargs_for("tune", args)
    assert kw["oracle_address"] == "h:1" and kw["modules"] == ["a", "b"]
    assert parse("export", "--run", "r").strategy == "cpu"  # export retrains on the CPU
    args = parse("evaluate", "--model", "m", "--corruptions", "--severities", "1,3")
    assert options.kwargs_for("evaluate", args) == {
        "corruptions": True, "split": "test", "severities": (1, 3), "seed": 0,
        "batch_size": 64}
    assert parse("evaluate", "--model", "m").corruptions is False
    assert parse(*FIT_ARGV, "--no-corruptions").corruptions is False
    args = parse(*FIT_ARGV, "--split", "test=test[:10]", "--split", "val=none",
                 "--data-seed", "3", "--no-flip")
    data = data_args_from(args)
    assert data.splits == {"test": "test[:10]", "val": "none"}
    assert data.seed == 3 and data.flip is False and data.synthetic is None
    assert parse("rank", "--shard", "1/4").shard == (1, 4)


# --------------------------------------------------------------------------- TensorFlow-free


@pytest.mark.parametrize("argv,logged", [(["fit"], True), (["rank"], True), (["tune"], True),
                                         (["evaluate"], False), (["zoo", "build"], False)])
def test_quiet_help_names_the_run_log_only_where_there_is_one(argv, logged, capsys):
    from hubensemble.cli import main

    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "-q, --quiet only errors on the terminal" in text
    assert ("RUN/log.txt still gets the full log" in text) is logged


def test_help_version_and_catalogue_commands_never_import_tensorflow():
    code = """
import sys
from hubensemble.cli import main
for argv in (["--help"], ["--version"], ["fit", "--help"], ["rank", "--help"],
             ["tune", "--help"], ["evaluate", "--help"], ["catalogue", "list", "--help"]):
    try:
        main(argv)
    except SystemExit as e:
        assert e.code == 0, (argv, e.code)
assert main(["catalogue", "validate"]) == 0
assert main(["catalogue", "list"]) == 0
assert main([]) == 2
heavy = sorted(m for m in ("tensorflow", "keras", "tensorflow_hub", "keras_tuner")
               if m in sys.modules)
assert not heavy, heavy
print("TF-FREE")
"""
    out = bounded_by_cpu([sys.executable, "-c", code], capture_output=True, text=True,
                         cpu=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "TF-FREE" in out.stdout and ": ok (" in out.stdout


def test_an_empty_or_missing_run_folder_is_named_not_sent_to_the_previous_stage(tmp_path,
                                                                                capsys):
    from hubensemble.cli import main

    empty, missing, file = tmp_path / "empty", tmp_path / "nope", tmp_path / "a-file"
    other = tmp_path / "an-export"  # not a run: e.g. RUN/export given as --run
    empty.mkdir()
    other.mkdir()
    (other / "saved_model.pb").write_bytes(b"")
    file.write_text("x")
    not_run = "is not a hubensemble run (no run.json, no ranking.json)"
    says = {empty: f"{not_run}; run `hubensemble fit --catalogue FILE --data SPEC --out",
            other: f"{not_run}; pass the folder that `hubensemble fit --out RUN`",
            missing: "does not exist", file: "is not a folder"}
    for folder in (empty, other, missing, file):
        for command in ("tune", "ensemble", "cost", "export", "distill", "report"):
            assert main([command, "--run", str(folder)]) == 2, (command, folder)
            err = capsys.readouterr().err
            assert f"{folder} {says[folder]}" in err, (command, err)
            assert "hubensemble fit" in err and "hubensemble tune --run" not in err, err
    # Nothing was created, not even a log.txt in the folders that are not runs.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "an-export", "empty"]
    assert [p.name for p in empty.iterdir()] == [] and [p.name for p in other.iterdir()] == [
        "saved_model.pb"]
    # --quantize without --format tflite would do nothing: refused before anything runs.
    started = tmp_path / "started"
    started.mkdir()
    (started / "run.json").write_text("{}")
    assert main(["export", "--run", str(started), "--quantize", "float16"]) == 2
    err = capsys.readouterr().err
    assert "--quantize applies only to the TFLite model; add --format tflite" in err


def test_a_failed_command_says_why_in_its_log_and_a_file_in_the_way_is_named(tmp_path,
                                                                             tiny_module,
                                                                             capsys):
    from hubensemble.cli import main

    cat = tmp_path / "c.yaml"
    cat.write_text(f"modules:\n  - {{name: t, handle: {tiny_module}}}\n")
    # An .npz file without the arrays a task needs: refused once the run folder is open (a
    # missing file is refused before it, with nothing made: test_bad_data_and_catalogues…).
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, images=np.zeros((2, 4, 4, 3), np.uint8))
    out = tmp_path / "run"
    out.mkdir()  # a folder the command did not make stays, with its log (a new one is removed,
    (out / "log.txt").write_text("")  # and an empty one's new log: test_data_runs)
    argv = ["rank", "-q", "--catalogue", str(cat), "--data", f"npz:{wrong}"]
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    said = f"npz:{wrong} needs arrays x_train and y_train"
    assert said in err, err
    # -q silences the terminal, not the log: the run folder says why the command stopped.
    assert f"ERROR hubensemble.cli: hubensemble: error: {said}" in (out / "log.txt").read_text()
    assert main([*argv, "--out", str(tmp_path / "new")]) == 2 and said in capsys.readouterr().err
    assert not (tmp_path / "new").exists()  # made by the refused command: removed
    # A file where the run folder would go: one line naming it, no traceback.
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("")
    for target in (in_the_way, in_the_way / "run"):
        assert main([*argv, "--out", str(target)]) == 2
        err = capsys.readouterr().err
        assert f"{in_the_way} is a file, not a folder" in err and "--out" in err, err
    # fit --export and export --out: refused before any work, not after the sweep.
    fit = ["fit", "-q", "--catalogue", str(cat), "--data", "sklearn:digits", "--out",
           str(tmp_path / "fit")]
    started = tmp_path / "started"  # a run folder, as far as export's first check goes
    started.mkdir()
    (started / "run.json").write_text("{}")
    for argv, flag in ((fit + ["--export", str(in_the_way / "x")], "--export"),
                       (fit + ["--export", str(in_the_way)], "--export"),
                       (["export", "-q", "--run", str(started), "--out", str(in_the_way / "x")],
                        "--out"),
                       (["zoo", "build", "-q", "--preset", "quick", "--out",
                         str(in_the_way / "z")], "--out")):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert f"{in_the_way} is a file, not a folder" in err, err
        assert f"choose another {flag} folder" in err, err
    # fit --out a file is named as itself: it said "(in FILE/export)", of a folder the user
    # never named (a new-user check).
    assert main(fit[:-1] + [str(in_the_way)]) == 2
    assert (f"{in_the_way} is a file, not a folder; choose another --out folder"
            in capsys.readouterr().err)
    # fit from Python runs the same check: its keyword, not the flag it never typed.
    from hubensemble.errors import HubensembleError
    from hubensemble.formats import check_export_target

    with pytest.raises(HubensembleError, match=re.escape(
            f"{in_the_way} is a file, not a folder; choose another out folder")):
        check_export_target(in_the_way / "export", "export", run_dir=in_the_way)
    # A name with no room for its NAME-tflite folder (255 bytes at most): refused up front,
    # where export --format tflite failed with ENAMETOOLONG after its work (read by that
    # name in export/stage.py, adopt.py, runexports.py: not cut as its lock's name is).
    from hubensemble.formats import EXPORT_NAME_MAX

    assert EXPORT_NAME_MAX == 255 - len("-tflite")
    for name in ("e" * 249, "\u00e9" * 125):  # 249 and 250 bytes
        long = tmp_path / name
        for argv, flag in ((fit + ["--export", str(long)], "--export"),
                           (["export", "-q", "--run", str(started), "--format", "tflite",
                             "--out", f"{long}/"], "--out")):
            assert main(argv) == 2, argv
            assert (f"the folder's name is {len(name.encode())} bytes; an export's name may "
                    f"have at most 248 (the longest file name, 255 bytes, less 7 for the "
                    f"-tflite folder of its TFLite model beside it): choose another {flag} "
                    "folder with a shorter name") in capsys.readouterr().err
        with pytest.raises(HubensembleError, match="choose another export folder with a "):
            check_export_target(long, "export", run_dir=tmp_path / "fit")
    for name in ("e" * 248, "\u00e9" * 124):  # 248 bytes: its -tflite fits
        check_export_target(tmp_path / name, "--out", tflite=True)
    assert not (tmp_path / "fit").exists()
    # A folder of the user's files as fit's --export: refused before TensorFlow and before
    # the run folder is made (a new-user check: 7.8 s, and it left run.json and log.txt).
    mine = tmp_path / "myfiles"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    assert main(fit + ["--export", str(mine)]) == 2
    assert "is not an export made by hubensemble" in capsys.readouterr().err
    assert not (tmp_path / "fit").exists() and (mine / "notes.txt").read_text() == "mine"
    # Another run's export: replacing it changed that run's export under it (a new-user
    # check: both runs' summaries then named one folder). Its own run's export is fine.
    other = tmp_path / "other"
    other.mkdir()
    (other / "run.json").write_text("{}")
    for argv, flag in ((fit + ["--export", str(other / "export")], "--export"),
                       (["export", "-q", "--run", str(started), "--out",
                         str(other / "export" / "v2")], "--out")):
        assert main(argv) == 2, argv
        assert (f"{other / 'export'}{'/v2' if flag == '--out' else ''} is inside the run "
                f"folder {other} of another run (its export, or files its commands own): "
                f"choose another {flag} folder outside it") in capsys.readouterr().err
    assert not (tmp_path / "fit").exists() and sorted(os.listdir(other)) == ["run.json"]
    # evaluate --out is a file: refused before the model is even loaded.
    for target, says in ((in_the_way / "r.json", f"{in_the_way} is a file, not a folder"),
                         (tmp_path, f"{tmp_path} is a folder, not a file")):
        assert main(["evaluate", "-q", "--model", str(tmp_path / "no-model"), "--out",
                     str(target)]) == 2
        err = capsys.readouterr().err
        assert says in err and "choose another --out file" in err, err
    assert in_the_way.read_text() == ""
    # A file of the user's was replaced by the results without a word (a new-user check:
    # `--out notes.txt`); so was a run's run.json. Refused, and the file is kept.
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    for target in (notes, other / "run.json"):
        kept = target.read_bytes()
        assert main(["evaluate", "-q", "--model", str(tmp_path / "no-model"), "--out",
                     str(target)]) == 2
        assert (f"{target} exists and is not an evaluation written by hubensemble; refusing "
                "to replace it: choose another --out file, or delete it first"
                in capsys.readouterr().err)
        assert target.read_bytes() == kept


def test_a_quiet_rank_logs_every_skipped_file(tmp_path, tiny_module, in_process):
    from PIL import Image

    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    for c in ("a", "b"):
        (data / c).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (12, 12, 3), np.uint8)).save(
                data / c / f"{i}.png")
    bad = [data / "a" / f"notes{i}.jpg" for i in range(5)]
    for path in bad:
        path.write_text("not an image")
    cat = tmp_path / "c.yaml"
    cat.write_text(f"modules:\n  - {{name: t, handle: {tiny_module}}}\n")
    out = tmp_path / "run"
    code, stdout, err = in_process("rank", "-q", "--catalogue", str(cat), "--data",
                                   f"folder:{data}", "--out", str(out))
    assert (code, stdout, err) == (0, "", ""), err
    log = (out / "log.txt").read_text()
    assert "5 skipped (unreadable; " in log and "and 2 more" in log  # the summary names three...
    for path in bad:  # ...the log every one, with its reason, once (the summary's three
        assert log.count(str(path)) == 1, log  # were named again, each on a line of its own)
    assert f"skipped 2 files ({bad[3]}, {bad[4]}): not a JPEG" in log, log  # one reason: a line
    # ...and says where the whole list is kept (it did not: a new-user check).
    assert f"and 2 more, all listed in {out / 'run.json'} (data.task.skipped)" in log
    recorded = json.loads((out / "run.json").read_text())["data"]["task"]["skipped"]
    assert sorted(p for p, _ in recorded) == sorted(map(str, bad))
    # On other data the run is refused and run.json keeps the old list: the summary printed
    # before the refusal pointed at it all the same (a new-user check). No pointer now.
    Image.fromarray(rng.integers(0, 255, (12, 12, 3), np.uint8)).save(data / "b" / "new.png")
    (data / "a" / "notes5.jpg").write_text("not an image either")
    code, stdout, err = in_process("rank", "--catalogue", str(cat), "--data", f"folder:{data}",
                                   "--out", str(out))
    assert code == 2 and "holds a run on other data" in err, err
    assert "6 skipped (unreadable; " in err and "; and 3 more)" in err, err
    assert "all listed in" not in err, err
    assert len(json.loads((out / "run.json").read_text())["data"]["task"]["skipped"]) == 5


def test_ctrl_c_says_whether_running_again_resumes(tmp_path, capsys, monkeypatch):
    import hubensemble.ensemble
    import hubensemble.zoo
    from hubensemble.cli import build_parser, main

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    # A zoo build keeps the modules it finished (zoo/parts.py): the same build resumes. It
    # said "the partial zoo was removed … starts over", untrue since an interrupted build
    # keeps them (test_zoo's interrupted-build tests).
    monkeypatch.setattr(hubensemble.zoo, "build_zoo", interrupt)
    assert main(["zoo", "build", "--preset", "quick", "--out", str(tmp_path / "z")]) == 130
    err = capsys.readouterr().err
    assert ("interrupted; the modules it finished are kept (an older zoo stays); run the same "
            "command again to resume") in err and "starts over" not in err
    # A run stage resumes from what it wrote.
    (tmp_path / "run.json").write_text("{}")
    monkeypatch.setattr(hubensemble.ensemble, "run_ensemble", interrupt)
    assert main(["ensemble", "--run", str(tmp_path)]) == 130
    assert "interrupted; run the same command again to resume" in capsys.readouterr().err
    assert "interrupted; run the same command again" in (tmp_path / "log.txt").read_text()
    # distill keeps no unfinished student (a new-user check: it said "to resume", then a
    # second run trained from step 0).
    import hubensemble.distill

    monkeypatch.setattr(hubensemble.distill, "run_distill", interrupt)
    (tmp_path / "ensemble.json").write_text('{"members": []}')  # its preflight reads it
    assert main(["distill", "--run", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert "interrupted; an unfinished student is not kept" in err and "resume" not in err
    # A command that writes its results at its end has nothing to resume (a new-user check:
    # evaluate said "run the same command again to resume").
    import hubensemble.report

    monkeypatch.setattr(hubensemble.report, "write_report", interrupt)
    assert main(["report", "--run", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert "interrupted; it had written no result yet; run the same command again" in err
    assert "resume" not in err
    # evaluate keeps each pass it finished (evaluationcells): it said "no result yet".
    assert build_parser().parse_args(["evaluate", "--model", str(tmp_path)]).interrupted == (
        "the passes over the test set it finished are kept; run the same command again to go "
        "on from them")
    # A Ctrl-C as the command leaves its log's block, its work done: once in 68 tries after
    # predict's whole output, it said "it had written no result yet" (a new-user check).
    import contextlib

    import hubensemble.cli

    @contextlib.contextmanager
    def stopped_as_it_closes(args):
        yield
        raise KeyboardInterrupt

    monkeypatch.setattr(hubensemble.cli, "_run_log", stopped_as_it_closes)
    catalogue = tmp_path / "c.yaml"
    catalogue.write_text("modules:\n  - {name: a, handle: keras:MobileNet}\n")
    assert main(["catalogue", "validate", str(catalogue)]) == 130
    err = capsys.readouterr().err
    assert "interrupted as the command finished: its work is complete" in err, err


def test_a_full_disk_stops_a_command_with_one_line(tmp_path, tiny_module, env):
    """A write the machine refuses (here: no file may exceed 512 bytes, so run.json cannot
    be written; a full disk or a quota is the same) gave a traceback and exit 1."""
    import resource

    cat = tmp_path / "c.yaml"
    cat.write_text(f"modules:\n  - {{name: m, handle: {tiny_module}}}\n")

    def small_files():  # Python ignores SIGXFSZ: a larger write raises OSError (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (512, 512))

    out = bounded_by_cpu([sys.executable, "-m", "hubensemble", "rank", "--catalogue", str(cat),
                          "--data", "sklearn:digits", "--profile", "quick", "--out",
                          str(tmp_path / "run"), "-q"], capture_output=True, text=True,
                         cpu=600, env=env, preexec_fn=small_files)
    assert out.returncode == 2, out.stderr[-3000:]
    # One error line: RUN/log.txt refused by the same limit is not a second one.
    assert out.stderr.count("hubensemble: error:") == 1, out.stderr[-3000:]
    last = out.stderr.strip().splitlines()[-1]
    # The file is named (a new-user check: the line named none).
    assert last.startswith(f"hubensemble: error: [Errno 27] File too large: "
                           f"'{tmp_path / 'run'}/"), out.stderr[-3000:]
    assert last.endswith("raise the file size limit (`ulimit -f`) or write elsewhere, then "
                         "run the same command again to resume")


def test_a_log_txt_the_machine_cannot_write_is_one_line_not_a_traceback_per_record(tmp_path):
    """RUN/log.txt over a 512-byte file size limit: logging printed "--- Logging error ---"
    with a traceback for every record, then the OSError escaped as a traceback (exit 1);
    then a second error line named log.txt after the one that stopped the command."""
    import resource

    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    (run / "log.txt").write_text("x" * 600)

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (512, 512))

    out = bounded_by_cpu([sys.executable, "-m", "hubensemble", "ensemble", "--run", str(run)],
                         capture_output=True, text=True, cpu=120, preexec_fn=small_files)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    # One line: why the command stopped, and that its log could not be written (a second
    # "error: … log.txt" line followed it, a new-user check on a full 100 KB tmpfs).
    [line] = out.stderr.strip().splitlines()
    assert line.startswith("hubensemble: error: ") and "labels/val.npy is missing" in line
    assert line.endswith(f" ({run / 'log.txt'} could not be written either: File too large)")


def test_a_file_name_not_in_utf8_reaches_the_terminal_and_log_txt_escaped(tmp_path, capsys):
    """A new-user check: a file named caf\\xe9.jpg (Latin-1) is read as 'caf\\udce9.jpg'; each
    line naming it printed "--- Logging error ---" with a traceback and never reached
    RUN/log.txt (a UTF-8 stream refuses a lone surrogate). capsys's streams are strict UTF-8,
    as stdout is under en_US.UTF-8; every line shows the byte escaped instead."""
    import argparse
    import logging

    from hubensemble.rundir import Run
    from hubensemble.terminal import say, stopped, summary, terminal_log

    name = os.fsdecode(b"caf\xe9.jpg")
    args = argparse.Namespace(quiet=False, verbose=False)
    # A new or empty folder holding only its log would be removed, or emptied, at the end.
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "log.txt").write_text("")
    with terminal_log(args), Run(tmp_path / "run").log_file():
        logging.getLogger("hubensemble.data").warning("%s: a damaged JPEG file; skipped", name)
        logging.getLogger("hubensemble.rundir").info("skipped %s: an empty file", name)
        say(args, f"a note on {name}")
        summary(args, f"the summary: {name}")
        stopped(f"stopped at {name}")
    out, err = capsys.readouterr()
    assert "Logging error" not in err and "Traceback" not in err, err
    assert out == "the summary: caf\\xe9.jpg\n"
    for line in ("WARNING hubensemble.data: caf\\xe9.jpg: a damaged JPEG file; skipped",
                 "a note on caf\\xe9.jpg", "stopped at caf\\xe9.jpg"):
        assert line + "\n" in err, err
    log = (tmp_path / "run" / "log.txt").read_text(encoding="utf-8")
    for line in ("WARNING hubensemble.data: caf\\xe9.jpg: a damaged JPEG file; skipped",
                 "INFO hubensemble.rundir: skipped caf\\xe9.jpg: an empty file",
                 "a note on caf\\xe9.jpg", "the summary: caf\\xe9.jpg", "stopped at caf\\xe9.jpg"):
        assert line + "\n" in log, log


def test_main_called_again_in_one_process_prints_each_warning_once(tmp_path, capsys,
                                                                   monkeypatch):
    """`main` undoes its terminal logging (a notebook or a test calls it again): each call
    added a root handler and left -q's warnings capture and -v's root level behind."""
    import logging
    import warnings

    import hubensemble.ensemble
    from hubensemble.cli import main
    from hubensemble.errors import RunError

    def warn_then_stop(*args, **kwargs):
        logging.getLogger("hubensemble.ensemble").warning("careful")
        raise RunError("stopped here")

    monkeypatch.setattr(hubensemble.ensemble, "run_ensemble", warn_then_stop)
    (tmp_path / "run.json").write_text("{}")
    root = logging.getLogger()
    before = (list(root.handlers), root.level, warnings.showwarning)
    run = ["ensemble", "--run", str(tmp_path)]
    for argv, shown in ((run, 1), (["-v", *run], 1), (run + ["-q"], 0), (run, 1)):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("careful") == shown and err.count("stopped here") == 1, (argv, err)
        assert (list(root.handlers), root.level, warnings.showwarning) == before, argv


def test_a_verbose_command_leaves_tensorflows_notices_filtered_after_it(tmp_path, capsys,
                                                                        monkeypatch,
                                                                        tiny_module):
    """`main -v` sets whether TensorFlow's native notices are filtered (_tf.QUIET_ENV, read
    by its workers too) for its own work only: it left "0" for good, and every later library
    call in that process (a notebook's) put them raw on stderr (a new user's check)."""
    import hubensemble.pipeline
    from hubensemble import _tf
    from hubensemble.cli import main
    from hubensemble.errors import RunError

    def stop(*args, **kwargs):
        assert not _tf.filtering()  # -v: the command itself shows them all
        raise RunError("stopped here")

    monkeypatch.setattr(hubensemble.pipeline, "fit", stop)
    monkeypatch.delenv(_tf.QUIET_ENV, raising=False)
    catalogue = tmp_path / "c.yaml"
    catalogue.write_text(f"modules:\n  - {{name: t, handle: {tiny_module}}}\n")
    fit = ["-v", "fit", "--catalogue", str(catalogue), "--data", "sklearn:digits", "--out",
           str(tmp_path / "run")]
    assert main(fit) == 2
    assert "stopped here" in capsys.readouterr().err
    assert _tf.QUIET_ENV not in os.environ and _tf.filtering()
    monkeypatch.setenv(_tf.QUIET_ENV, "1")
    assert main(fit) == 2
    assert os.environ[_tf.QUIET_ENV] == "1"


def test_lines_printed_while_a_bar_runs_start_their_own_line(capsys):
    """A log record, a note (`say`), a stop message and a Python warning printed while a
    progress bar is on stderr each start a line of their own, not inside the bar's line
    (`predict  40%|████ …WARNING …`), and only the log record and warning are hidden by -q."""
    import argparse
    import logging
    import re
    import warnings

    from tqdm.auto import tqdm

    from hubensemble.terminal import say, stopped, terminal_log

    for quiet in (False, True):
        args = argparse.Namespace(quiet=quiet, verbose=False)
        with terminal_log(args):
            bar = tqdm(total=4, desc="predict", unit="file", file=sys.stderr, mininterval=0)
            bar.update(1)
            logging.getLogger("hubensemble.prediction").warning("a logged warning")
            bar.update(1)
            say(args, "a note")
            warnings.warn("a python warning", UserWarning)
            stopped("a stop")
            bar.update(2)
            bar.close()
        err = capsys.readouterr().err
        segments = re.split(r"[\r\n]", err)
        shown = ("a stop",) if quiet else (
            "WARNING hubensemble.prediction: a logged warning", "a note", "a stop")
        for text in shown:
            assert any(s.startswith(text) for s in segments), (text, err)
        if not quiet:
            assert any(s.startswith("WARNING py.warnings:") and "a python warning" in s
                       for s in segments), err
        else:
            assert "a logged warning" not in err and "a python warning" not in err, err
            assert "a note" not in err, err


def test_sigterm_stops_a_command_as_ctrl_c_does_and_says_so(tmp_path, capsys, monkeypatch):
    import signal

    import hubensemble.ensemble
    from hubensemble.cli import main

    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # what `kill`, `timeout` or a scheduler sends
        time.sleep(30)  # the handler raises before this ends
        raise AssertionError("SIGTERM did not stop the command")

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(hubensemble.ensemble, "run_ensemble", terminated)
    (tmp_path / "run.json").write_text("{}")
    assert main(["ensemble", "--run", str(tmp_path)]) == 143
    line = "terminated (SIGTERM); run the same command again to resume"
    assert line in capsys.readouterr().err
    assert line in (tmp_path / "log.txt").read_text()
    assert signal.getsignal(signal.SIGTERM) == before  # the process's own handler is back


def test_a_stop_python_ignored_after_the_work_says_the_work_is_done(tmp_path, capsys, monkeypatch):
    """A new-user check: a Ctrl-C that landed in a weakref callback printed Python's
    "Exception ignored in: …" traceback, and one during a fit's last stage let it finish, then
    said "interrupted; run the same command again to resume" with nothing left to resume."""
    import signal

    import hubensemble.cli
    from hubensemble.cli import main

    seen = []

    def finishes_after_a_signal_in_a_destructor(args):
        class Dying:
            def __del__(self):
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(30)  # the handler raises in here, and Python ignores it

        Dying()
        try:
            raise ValueError("not a stop")  # another unraisable error still reaches the hook
        except ValueError as e:
            sys.unraisablehook(type("Info", (), {"exc_value": e, "exc_type": ValueError,
                                                 "exc_traceback": None, "err_msg": None,
                                                 "object": None})())
        return 0

    monkeypatch.setattr(sys, "unraisablehook", seen.append)  # what Python would print
    monkeypatch.setattr(hubensemble.cli, "cmd_ensemble", finishes_after_a_signal_in_a_destructor)
    (tmp_path / "run.json").write_text("{}")
    assert main(["ensemble", "--run", str(tmp_path)]) == 143
    line = "hubensemble: terminated (SIGTERM) as the command finished: its work is complete"
    assert line in capsys.readouterr().err
    assert [type(info.exc_value) for info in seen] == [ValueError]
    assert sys.unraisablehook == seen.append  # the hook from before is back


def test_tensorflows_retracing_notice_from_a_model_per_trial_is_logged_at_info():
    # TensorFlow warns at most twice per traced function's code in a process: a process of
    # its own, so that no earlier test has used them up.
    code = """if True:
        import logging, numpy as np, keras, tensorflow as tf
        from hubensemble import _tf
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        x = tf.data.Dataset.from_tensor_slices(np.zeros((8, 4), np.float32)).batch(4)
        with _tf.retracing_notice_at_info():  # as a sweep: a new model per trial
            for _ in range(8):
                keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]).predict(
                    x, verbose=0)
            logging.getLogger("tensorflow").warning("another warning passes")
        print(logging.getLogger("tensorflow").filters)
    """
    out = bounded_by_cpu([sys.executable, "-c", code], capture_output=True, text=True,
                         cpu=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    moved = [line for line in lines if line.startswith("INFO hubensemble.tf: ")]
    assert moved and all("triggered tf.function retracing" in line for line in moved), lines
    assert not [line for line in lines if "tensorflow: " in line and "retracing" in line]
    assert "WARNING tensorflow: another warning passes" in lines
    assert out.stdout.strip() == "[]"  # the block took its filter away


def test_tensorflows_retracing_notice_reaches_the_terminal_only_with_verbose(capsys):
    """A new-user check: "WARNING tensorflow: 5 out of the last 13 calls to <function …>
    triggered tf.function retracing" split the tune bar (a model per trial, each traced
    once). Other TensorFlow warnings still show."""
    import argparse
    import logging

    from hubensemble.terminal import terminal_log

    notice = ("5 out of the last 13 calls to <function TensorFlowTrainer.make_predict_function."
              "<locals>.one_step_on_data_distributed> triggered tf.function retracing.")
    for verbose in (False, True):
        with terminal_log(argparse.Namespace(quiet=False, verbose=verbose)):
            logging.getLogger("tensorflow").warning(notice)
            logging.getLogger("tensorflow").warning("another warning")
        err = capsys.readouterr().err
        assert ("triggered tf.function retracing" in err) == verbose
        assert "WARNING tensorflow: another warning" in err


def test_a_stop_while_the_process_tears_down_ends_it_with_the_line(tmp_path):
    """A new-user check: a Ctrl-C or SIGTERM in the second after the summary (Python's
    teardown, TensorFlow's atexit work) ended the process with 130 / 143 and no word. Here
    the signal comes from an atexit function, as late as a real one can."""
    import signal

    for signum, code, said in ((signal.SIGTERM, 143, "terminated (SIGTERM)"),
                               (signal.SIGINT, 130, "interrupted")):
        program = ("import atexit, os, time\n"
                   "from hubensemble.errors import exit_process\n"
                   f"atexit.register(lambda: (os.kill(os.getpid(), {int(signum)}), "
                   "time.sleep(30)))\n"
                   "print('the summary')\n"
                   "exit_process(0)\n")
        out = bounded_by_cpu([sys.executable, "-c", program], capture_output=True, text=True,
                             cpu=60)
        assert out.returncode == code and out.stdout == "the summary\n", out
        assert out.stderr == (f"hubensemble: {said} as the command finished: its work is "
                              "complete\n"), out.stderr
    # After the atexit functions, the interpreter frees its modules (TensorFlow's C++ objects:
    # most of the second), with the default handlers back: a signal there killed the process
    # silently (a second new-user check, rc -2 / -15). That teardown is skipped: an object
    # freed in it (its __del__ sends the signal) never runs, the command's code stands.
    program = ("import os, signal, time\n"
               "from hubensemble.errors import exit_process\n"
               "class Late:\n"
               "    def __del__(self):\n"
               "        os.kill(os.getpid(), signal.SIGTERM)\n"
               "        time.sleep(30)\n"
               "late = Late()\n"
               "print('the summary')\n"
               "exit_process(3)\n")
    out = bounded_by_cpu([sys.executable, "-c", program], capture_output=True, text=True,
                         cpu=60)
    assert (out.returncode, out.stdout, out.stderr) == (3, "the summary\n", ""), out


def test_an_unexpected_error_is_kept_in_the_runs_log_and_a_path_error_is_one_line(
        tmp_path, monkeypatch, in_process):
    """A new-user check: an error no rule expected (a bug) stopped a command with
    Python's traceback on the terminal, and RUN/log.txt, which the README says keeps "the error
    … that stopped a command", ended at the stage's start line. Its traceback is now there
    too (the terminal still gets Python's). An OSError of a path (ENOTDIR: a file where a
    folder is needed) is one line, exit 2, as a full disk is, with its own advice."""
    import errno

    import hubensemble.ensemble as ens

    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")

    def bug(*args, **kwargs):
        raise RuntimeError("boom: a bug")

    monkeypatch.setattr(ens, "run_ensemble", bug)
    with pytest.raises(RuntimeError, match="boom: a bug"):
        in_process("ensemble", "--run", run)
    logged = (run / "log.txt").read_text()
    assert "stopped by an unexpected error (a bug: please report it with this log)" in logged
    assert "Traceback" in logged and "RuntimeError: boom: a bug" in logged

    def not_a_folder(*args, **kwargs):
        raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(tmp_path / "afile" / "0b"))

    monkeypatch.setattr(ens, "run_ensemble", not_a_folder)
    code, _, err = in_process("ensemble", "--run", run)
    assert code == 2 and "Traceback" not in err, err
    assert err.strip() == (f"hubensemble: error: [Errno 20] Not a directory: "
                           f"'{tmp_path / 'afile' / '0b'}'; a file is in the way of a folder "
                           "there, or the reverse: fix the path, then run the same command "
                           "again to resume"), err
    assert "Not a directory" in (run / "log.txt").read_text()


def test_a_path_with_a_control_character_stays_on_one_line_in_advice_and_warnings(
        tmp_path, caplog):
    """A run or cache folder named with a newline broke a warning's line in two: text.shell
    quoted it with shlex, which keeps the newline, and warnings printed paths with a bare
    %s (ensemble's earlier-export warning, the embedding cache's, catalogue
    add's, export's). Advice is bash's $'…' (it gives the path back), other paths escaped."""
    import logging

    from hubensemble.rank.embeddings import _read_cache
    from hubensemble.text import shell

    assert shell("/tmp/a\nb") == "$'/tmp/a\\nb'"
    assert shell(b"/tmp/caf\xe9") == "$'/tmp/caf\\xe9'"
    assert shell("/tmp/My runs/a") == "'/tmp/My runs/a'" and shell("/tmp/x") == "/tmp/x"
    folder = tmp_path / "cache\nx"
    folder.mkdir()
    (folder / "ab.npy").write_bytes(b"not an array")
    with caplog.at_level(logging.WARNING):
        assert _read_cache(str(folder / "ab.npy"), 3) is None
    said = [r.getMessage() for r in caplog.records]
    assert said and all("\n" not in m for m in said), said
    assert "cache\\nx" in said[0]


def test_an_error_naming_a_path_with_a_newline_is_one_line_and_a_list_keeps_its_lines(
        tmp_path, in_process):
    """`hubensemble ensemble --run $'a\\nb'` printed "hubensemble: error: …/a" and "b is not a
    hubensemble run …" on two lines (a new-user check): the error line shows the message
    escaped (errors.shown), in RUN/log.txt too, while a message that lists problems one a
    line (HubensembleError.of_lines: an unknown data spec's schemes, a catalogue's problems)
    keeps its lines, each escaped."""
    folder = tmp_path / "a\nb"
    folder.mkdir()
    code, _, err = in_process("ensemble", "--run", folder)
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"hubensemble: error: {tmp_path}/a\\nb is not a hubensemble run"), err
    started = tmp_path / "s\nt"
    started.mkdir()
    (started / "run.json").write_text("{}")
    code, _, err = in_process("ensemble", "--run", started)
    assert code == 2 and err.count("\n") == 1 and "s\\nt" in err, err
    logged = [line for line in (started / "log.txt").read_text().splitlines() if "error:" in line]
    assert len(logged) == 1 and "s\\nt" in logged[0], logged
    cat = tmp_path / "c.yaml"
    cat.write_text("modules:\n  - name: x\n")
    code, _, err = in_process("rank", "--catalogue", folder / "c.yaml", cat,
                              "--data", "sklearn:digits", "--out", tmp_path / "r")
    assert code == 2 and err.startswith(f"hubensemble: error: {tmp_path}/a\\nb/c.yaml: "), err
    code, _, err = in_process("rank", "--catalogue", cat, "--data", "no\x1bscheme",
                              "--out", tmp_path / "r")
    lines = err.splitlines()
    assert code == 2 and lines[0].startswith("hubensemble: error: data spec 'no\\x1bscheme' "
                                             "has no scheme"), err
    assert [line.split(":")[0] for line in lines[1:]] == [
        "  tfds", "  folder", "  npz", "  sklearn"], err
    from hubensemble.errors import DataError, shown

    listed = DataError.of_lines(["two problems:", "  a\tb", "  c"])
    assert str(listed) == "two problems:\n  a\tb\n  c"
    assert shown(listed) == "two problems:\n  a\\tb\n  c"
    assert shown(DataError("one\nline")) == "one\\nline"


def test_a_refusal_on_a_locked_run_gives_the_way_on_of_the_refused_command(
        tmp_path, monkeypatch, capsys, run_lock_holder):
    """A new-user check: `export --run R &` then `ensemble --run R` (or run_ensemble(R) from
    Python) was refused with "wait for it to end, or use another --out folder", a flag
    ensemble does not take, and with R as typed (relative). A command that takes --run is
    told to run again on the same run, named absolute; one that makes its run (--out), to
    pass another --out folder."""
    import hubensemble
    from hubensemble.cli import main
    from hubensemble.errors import RunError
    from hubensemble.text import shell

    run = tmp_path / "my run"
    run.mkdir()
    (run / "run.json").write_text("{}")  # the running export's run
    monkeypatch.chdir(tmp_path)
    holder = run_lock_holder(run, "export")
    for command in ("ensemble", "cost", "report"):
        assert main([command, "--run", "my run"]) == 2
        err = capsys.readouterr().err
        assert f"another export is running on {run} (pid {holder.pid}" in err, err
        assert (f"wait for it to end, then run `hubensemble {command} --run {shell(run)}` "
                "again") in err and "--out" not in err, err
    # From Python, the function and its keyword, not a command and flags it never typed.
    with pytest.raises(RunError) as refused:
        hubensemble.run_ensemble("my run")
    assert (f"wait for it to end, then call run_ensemble(run_dir={str(run)!r}) again"
            in str(refused.value) and "--" not in str(refused.value)), refused.value
    with pytest.raises(RunError) as refused:
        hubensemble.write_report("my run")
    assert f"then call write_report(run_dir={str(run)!r}) again" in str(refused.value)
    cat = tmp_path / "c.yaml"
    cat.write_text(f"modules:\n  - {{name: t, handle: {stand_in(tmp_path, 'm')}}}\n")
    assert main(["rank", "--catalogue", str(cat), "--data", "sklearn:digits",
                 "--out", "my run"]) == 2
    err = capsys.readouterr().err
    assert "wait for it to end, or pass another --out folder (a new run)" in err, err
    from hubensemble.catalogue import load_catalogue
    from hubensemble.data import load_task
    with pytest.raises(RunError) as refused:
        hubensemble.run_rank("my run", load_catalogue(str(cat)), load_task("sklearn:digits"))
    assert ("wait for it to end, or pass run_rank() another out_dir folder (a new run)"
            in str(refused.value)), refused.value


#: What TensorFlow 2.21 wrote on fd 2 while it was imported and its devices probed, on a
#: machine without a CUDA driver (measured; times and thread ids shortened, lines cut).
TF_START_UP = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1.1 1 port.cc:153] oneDNN custom operations are on. You may see slightly different
I0000 00:00:1.2 1 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will
I0000 00:00:1.3 1 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use available CPU
To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1.4 1 port.cc:153] oneDNN custom operations are on. You may see slightly different
I0000 00:00:1.5 1 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will
E0000 00:00:1.6 1 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call to \
cuInit: UNKNOWN ERROR (303)
"""


def test_tensorflows_start_up_lines_follow_the_log_level_and_a_gpu_set_up_error_shows():
    """TensorFlow writes its start-up notices before absl logging starts, at every
    TF_CPP_MIN_LOG_LEVEL (oneDNN's and cudart_stub's at level 3 too), and its cuInit failure
    at ERROR: _tf applies the level to them, and logs the cuInit line only where TensorFlow
    found no CUDA driver (with one, it is a GPU set-up error, shown as TensorFlow shows it)."""
    from hubensemble import _tf

    lines = TF_START_UP.splitlines()
    cuinit = lines[-1]
    for level in (1, 2):
        assert _tf.startup_lines(TF_START_UP, level) == ([], [cuinit])
    assert _tf.startup_lines(TF_START_UP, 0) == (lines, [])  # the user asked for all
    # With a driver, cuInit's failure is named (here: no device), a GPU set-up error.
    named = cuinit.replace("UNKNOWN ERROR (303)", "CUDA_ERROR_NO_DEVICE: no CUDA-capable "
                           "device is detected")
    with_driver = "\n".join([*(line for line in lines[:-1] if "cudart_stub" not in line), named])
    for level in (1, 2):
        assert _tf.startup_lines(with_driver, level) == ([lines[5], named], [])
    assert _tf.startup_lines(with_driver, 3) == ([], [])  # as TensorFlow at level 3
    fatal = "F0000 00:00:1.7 1 cuda_dnn.cc:1] could not create cudnn handle"
    assert _tf.startup_lines(f"{TF_START_UP}{fatal}\nnot TensorFlow's", 3) == (
        [lines[5], fatal, "not TensorFlow's"], [])
    assert _tf.startup_lines("Python's own line\n" + TF_START_UP, 2) == (
        ["Python's own line"], [cuinit])
    # After a hidden notice, a line that continues none (a Python warning, an import error's
    # words) was dropped with it; it shows.
    warned = f"{lines[1]}\nx.py:1: UserWarning: the numpy here is too new\n  warnings.warn(m)"
    assert _tf.startup_lines(warned, 2) == (
        ["x.py:1: UserWarning: the numpy here is too new", "  warnings.warn(m)"], [])
    # absl's banner goes with absl's lines: not before a Python logging line (matplotlib's
    # warning of a HOME it cannot write, logged while TensorFlow imports it).
    mpl = "WARNING matplotlib: mkdir -p failed for path /nohome/.config/matplotlib"
    assert _tf.startup_lines(f"{lines[0]}\n{mpl}\n{lines[1]}", 2) == ([mpl], [])


#: TensorFlow 2.20's start-up on this machine, without a CUDA driver, at TF_CPP_MIN_LOG_LEVEL 0
#: (measured; lines cut): its own log format, not absl's. At level 2 it writes the last
#: line alone (it drops its INFO lines itself, "Could not find cuda drivers" among them).
TF_2_20_START_UP = """\
2026-12-05 19:25:01.219917: I external/local_xla/xla/tsl/cuda/cudart_stub.cc:31] Could not find \
cuda drivers on your machine, GPU will not be used.
2026-12-05 19:25:01.269701: I tensorflow/core/platform/cpu_feature_guard.cc:210] This TensorFlow
To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow
2026-12-05 19:25:03.498524: E external/local_xla/xla/stream_executor/cuda/cuda_platform.cc:51] \
failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)
"""


def test_tensorflow_2_20s_start_up_lines_are_read_as_its_own_log_format():
    """TensorFlow 2.20 (setup.cfg's lower bound) heads its lines with a date, not absl's
    letter and MMDD: its cuInit failure was taken for no TensorFlow line and shown, so a quiet
    `tune` on a machine without a GPU ended in it (two test_tune failures). At
    level 2 the line comes alone: that there is no driver is in its own words."""
    from hubensemble import _tf

    lines = TF_2_20_START_UP.splitlines()
    for level in (1, 2):
        assert _tf.startup_lines(TF_2_20_START_UP, level) == ([], [lines[-1]])
        assert _tf.startup_lines(lines[-1], level) == ([], [lines[-1]])
    assert _tf.startup_lines(TF_2_20_START_UP, 0) == (lines, [])
    assert _tf.startup_lines(TF_2_20_START_UP, 3) == ([], [])
    named = lines[-1].replace("UNKNOWN ERROR (303)", "CUDA_ERROR_NO_DEVICE: no device")
    assert _tf.startup_lines(named, 2) == ([named], [])  # a driver's error: shown


def test_a_status_source_location_trace_goes_with_its_tensorflow_line():
    """TensorFlow 2.22.0rc0 ends its cuInit line with the absl status's source location trace
    (below, as it wrote it at TF_CPP_MIN_LOG_LEVEL 2 on this machine, without a driver): the
    two lines were shown as Python's own after the logged cuInit line, so a quiet `tune`
    ended in three lines, not its one. They go where the line they end goes."""
    from hubensemble import _tf

    trace = ["=== Source Location Trace: === ",
             "external/xla/xla/stream_executor/cuda/cuda_status.cc:50"]
    lines = TF_START_UP.splitlines()
    text = "\n".join([*lines, *trace, ""])
    for level in (1, 2):
        assert _tf.startup_lines(text, level) == ([], [lines[-1], *trace])
    assert _tf.startup_lines(text, 0) == ([*lines, *trace], [])
    named = lines[-1].replace("UNKNOWN ERROR (303)", "CUDA_ERROR_NO_DEVICE: no device")
    kept = [line for line in text.splitlines() if "cudart_stub" not in line]
    with_driver = "\n".join(named if line == lines[-1] else line for line in kept)
    assert _tf.startup_lines(with_driver, 2) == ([lines[5], named, *trace], [])
    assert _tf.startup_lines(with_driver, 3) == ([], [])
    # The trace ends at a line that is no "file:line": a Python warning after it shows.
    warned = f"{text}x.py:1: UserWarning: old numpy\n  warnings.warn(m)\n"
    assert _tf.startup_lines(warned, 2) == (
        ["x.py:1: UserWarning: old numpy", "  warnings.warn(m)"], [lines[-1], *trace])


def test_the_python_api_imports_tensorflow_without_its_start_up_notices(tmp_path):
    """A notebook user's check: load_task (and fit) from Python printed TensorFlow's
    oneDNN/CUDA notices and a cuInit ERROR line in the middle of the folder's reading bar,
    which the command line hid. TF_CPP_MIN_LOG_LEVEL is set (to 2) only when the user has
    not set it."""
    from PIL import Image

    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
        for i in range(3):
            Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(tmp_path / c / f"{i}.png")
    code = ("import os, sys\nfrom hubensemble.data import load_task\n"
            f"load_task({f'folder:{tmp_path}'!r}, val_fraction=0)\n"
            "print('tensorflow' in sys.modules, os.environ['TF_CPP_MIN_LOG_LEVEL'])\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "HUBENSEMBLE_QUIET_TF")}
    out = bounded_by_cpu([sys.executable, "-c", code], capture_output=True, text=True,
                         cpu=300, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "2"], out.stdout
    assert "reading folder:" in out.stderr, out.stderr
    for notice in ("oneDNN", "cuda", "cuInit", "absl", "cpu_feature_guard"):
        assert notice not in out.stderr, out.stderr


def test_a_stages_advice_names_commands_on_the_command_line_and_functions_in_python(
        tmp_path, in_process):
    """run_ensemble(R) with no usable candidate was told to run `hubensemble tune --run R`,
    export_ensemble(R, student=True) to run `hubensemble distill --run R` first: commands
    its caller never typed. The command line keeps its words; Python is told the function
    and its keywords (lockwords.command_words / run_words), one refusal per stage."""
    import hubensemble
    from hubensemble.cost.stage import run_cost
    from hubensemble.errors import HubensembleError
    from hubensemble.lockwords import command_words
    from hubensemble.text import shell

    run = tmp_path / "my run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "notes.txt").write_text("mine\n")
    r = repr(str(run))
    cases = [  # (command line, its words, the Python call, its words)
        (["ensemble", "--run", run], f"`hubensemble tune --run {shell(run)}` writes it",
         lambda: hubensemble.run_ensemble(run), f"run_tune(run_dir={r}) writes it"),
        (["cost", "--run", run], f"`hubensemble tune --run {shell(run)}` writes the candidates",
         lambda: run_cost(run), f"run_tune(run_dir={r}) writes the candidates"),
        (["export", "--run", run, "--student"],
         f"run `hubensemble distill --run {shell(run)}` first",
         lambda: hubensemble.export_ensemble(run, student=True, progress=False),
         f"call run_distill(run_dir={r}) first"),
        (["export", "--run", run], f"`hubensemble ensemble --run {shell(run)}` writes it",
         lambda: hubensemble.export_ensemble(run, progress=False),
         f"run_ensemble(run_dir={r}) writes it"),
        (["tune", "--run", run],
         f"`hubensemble rank --catalogue FILE --data SPEC --out {shell(run)}` writes it",
         lambda: hubensemble.run_tune(run, progress=False),
         f"run_rank(out_dir={r}, specs=load_catalogue(FILE), task=load_task(SPEC)) writes it"),
        (["report", "--run", tmp_path / "theirs"],
         "pass the folder that `hubensemble fit --out RUN` or `hubensemble rank --out RUN` made",
         lambda: hubensemble.write_report(tmp_path / "theirs"),
         "pass the folder that hubensemble.fit(out=RUN) or run_rank(out_dir=RUN) made"),
        (["rank", "merge", tmp_path / "s0", tmp_path / "s1", "--out", tmp_path / "m"],
         "pass the run folders that `hubensemble rank --shard I/N --out FOLDER` wrote",
         lambda: hubensemble.merge_rankings([tmp_path / "s0", tmp_path / "s1"], tmp_path / "m"),
         "pass the run folders that run_rank(shard=(I, N), out_dir=FOLDER) wrote"),
        (["predict", "--model", tmp_path / "none", tmp_path],
         "pass the folder `hubensemble export` wrote",
         lambda: hubensemble.predict(tmp_path / "none", [tmp_path]),
         "pass the folder export_ensemble() wrote")]
    for argv, said, call, words in cases:
        code, out, err = in_process(*argv)
        assert code == 2 and said in err, (argv, err)
        with pytest.raises(HubensembleError) as e:
            call()
        told = str(e.value).replace(str(tmp_path), "T")
        assert words in str(e.value) and "`hubensemble " not in told and "--" not in told, told
    assert command_words("tune") == "run_tune()"  # outside a command, without a run


@pytest.mark.parametrize("typed, names, meant", [
    # A one-letter slip in a short name found nothing (difflib ratio 'ad'/'add' 0.8 < 0.85).
    ("ad", ("add", "list", "validate"), "add"), ("ls", ("add", "list"), "list"),
    ("fti", ("fit", "demo"), "fit"), ("--sed", ("--seed", "--out"), "--seed"),
    ("--budgt=4", ("--budget",), "--budget"), ("--Top_K", ("--top-k",), "--top-k"),
    ("tpo", ("top",), "top"),
    ("--max-trails", ("--max-failures", "--max-trials"), "--max-trials"),
    # ... and no nonsense: a word not one slip from a short name, nor far from a long one.
    ("x", ("fit", "add"), None), ("--size", ("--seed",), None), ("--kk", ("--top-k",), None),
    ("--max-trails", ("--max-failures",), None), ("x_dev", ("x_val", "x_train"), None),
    ("--zzzz", ("--seed", "--run"), None), ("c", ("a", "b"), None)])
def test_the_closest_name_takes_one_slip_in_a_short_word_and_no_far_one(typed, names, meant):
    """git's rule (help.c: weighted Damerau-Levenshtein, SIMILARITY_FLOOR 7), bounded by
    the word's length; the one rule of flags, commands and fit's options."""
    from hubensemble.text import closest_name

    assert closest_name(typed, names) == meant


def test_the_closest_names_are_those_tied_at_the_best_distance():
    """git lists every command at its best distance; the rest are not said."""
    from hubensemble.text import closest_names

    assert closest_names("expert-digits", ("r8x2-expert-digits", "r6x1-expert-digits",
                                           "r8x2-expert-shapes")) == [
        "r6x1-expert-digits", "r8x2-expert-digits"]
    assert closest_names("resnet-7x", [f"resnet-{i}" for i in range(30)]) == ["resnet-7"]
    assert closest_names("zzz", ("fit", "add")) == []


def test_catalogue_validate_says_a_files_warnings_before_its_ok_and_counts_them(
        tmp_path, monkeypatch):
    """"FILE: ok (2 modules)" came before the file's warning lines: a user stops reading at
    "ok". The warnings now come first and the verdict counts them, for a file and the set.
    The verdict names the file by its absolute path, as its warnings do: given as
    "one.yaml", it said "one.yaml: ok" under "warning: /abs/one.yaml:2: …"."""
    from hubensemble.zoo.config import validate_catalogues

    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    one.write_text("modules:\n  - {name: a, handle: ./nowhere}\n  - {name: b, handle: ./else}\n")
    two.write_text("modules:\n  - {name: c, handle: ./nowhere}\n")
    monkeypatch.chdir(tmp_path)
    said = []
    assert validate_catalogues(["one.yaml", "two.yaml"],
                               lambda line, ok: said.append((line, ok)))
    verdicts = [i for i, (_, ok) in enumerate(said) if ok]
    skips = "valid; rank would skip"  # not "ok": validate exits 1 (commands.py)
    assert said[verdicts[0]][0] == f"{one}: {skips} 2 here (2 modules, 2 warnings)", said
    assert said[verdicts[1]][0] == f"{two}: {skips} 1 here (1 module, 1 warning)", said
    assert said[verdicts[2]][0] == "the 2 catalogues together: ok (1 warning)", said
    assert [ok for _, ok in said] == [None, None, True, None, True, None, True], said


def test_usage_errors_found_after_parsing_have_argparses_shape_in_every_command(tmp_path):
    """`hubensemble export` (no --run), --tpu without --strategy tpu, a --budget its --sweep
    cannot hold, --quantize without --format tflite, a student's --skip-missing: refused
    after argparse parsed, each said only "hubensemble: error: …" where argparse's own errors
    show the command's usage line and "hubensemble export: error: …". Each is checked
    against argparse's own error for the same command (an unknown flag): the same usage
    lines, the same prefix, exit 2; nothing is written. (A --run that holds no run is said
    before them: `test_a_missing_run_folder_is_said_before_the_flags_that_do_not_go_together`.)"""
    from hubensemble.rundir import Run

    run, ranked = tmp_path / "run", tmp_path / "ranked"
    Run(ranked).update(modules={})  # a run: its flags are what is refused
    made = sorted(os.listdir(ranked))
    cases = [(["export"], "export needs --run RUN"),
             (["export", "--run", run, "--add-warmup", tmp_path], "leave out --run"),
             (["export", "--run", ranked, "--quantize", "float16"], "only to the TFLite"),
             (["export", "--run", ranked, "--student", "--skip-missing"], "--skip-missing"),
             (["tune", "--run", ranked, "--strategy", "cpu", "--tpu", "x"], "--strategy tpu"),
             (["tune", "--run", ranked, "--sweep", "aug", "--budget", "1"], "--budget 4"),
             (["demo", "--out", run, "--strategy", "cpu", "--tpu", "x"], "--strategy tpu")]
    argvs = [argv for argv, _ in cases]
    argvs += [[argv[0], "--bogus-flag", *argv[1:]] for argv in argvs]  # argparse's own
    said = each_in_one_process(*argvs)
    for (argv, words), ours, theirs in zip(cases, said, said[len(cases):]):
        command = f"hubensemble {argv[0]}"
        assert theirs[0] == 2 and "--bogus-flag" in theirs[2], theirs  # the reference
        usage = theirs[2].splitlines()[:-1]
        lines = ours[2].splitlines()
        assert ours[0] == 2 and lines[:-1] == usage and lines[0].startswith(f"usage: {command}"
                                                                            ), ours[2]
        assert lines[-1].startswith(f"{command}: error: ") and words in lines[-1], ours[2]
        assert not ours[3], argv  # before TensorFlow
    assert not run.exists() and sorted(os.listdir(ranked)) == made


def test_a_missing_run_folder_is_said_before_the_flags_that_do_not_go_together(tmp_path):
    """`export --run MISSING --quantize float16` was told to add --format tflite (then, once
    it did, that the folder does not exist), `tune --run MISSING --sweep probe --budget 2`
    to run a command on that folder, `tune --run MISSING --tuner-id w1` to add --oracle:
    the run folder is the first fault named, as a tune without --sweep and distill said it.
    Before TensorFlow; no usage line (the folder is no flag's combination); nothing made.
    Fails before: the flags' usage errors."""
    missing = tmp_path / "nope"
    argvs = [["export", "--run", missing, "--quantize", "float16"],
             ["export", "--run", missing, "--tflite-size", "8"],
             ["tune", "--run", missing, "--sweep", "probe", "--budget", "2"],
             ["tune", "--run", missing, "--tuner-id", "w1"],
             ["export", "--run", missing, "--strategy", "cpu", "--tpu", "x"]]
    for argv, (code, out, err, tensorflow) in zip(argvs, each_in_one_process(*argvs)):
        assert (code, out, tensorflow) == (2, "", False), (argv, err)
        assert err == (f"hubensemble: error: {missing} does not exist; pass a run directory "
                       "made by `hubensemble fit` or `hubensemble rank`\n"), (argv, err)
    assert not missing.exists()


def refused(capsys, *argv) -> str:
    """The last line argparse says refusing `argv` (exit 2)."""
    with pytest.raises(SystemExit) as stop:
        parse(*argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2, err
    return err.strip().splitlines()[-1]


def commands_of() -> dict:
    """{command: its parser} of every command (`rank merge` too) of `hubensemble`."""
    import argparse

    from hubensemble.cli import build_parser

    todo, found = [build_parser()], {}
    while todo:
        for a in todo.pop()._actions:
            if isinstance(a, argparse._SubParsersAction):
                for p in a.choices.values():
                    if p.command not in found:
                        found[p.command] = todo.append(p) or p
    return found


SWEEP_NOTE = "learning rates and training steps are a sweep's, scaled by a profile"


@pytest.mark.parametrize("flag", [
    "--stpes", "--setps", "--stepps", "--epcohs", "--Epcohs", "--learnign-rate",
    "--learningrate", "--learning_rate", "--lr_rate", "--lr-rate", "--LR", "--LearningRate",
    "--base-lr", "--num_epochs", "--Train-Steps", "--max-iters"])
def test_a_learning_rate_or_a_length_spelled_any_way_or_mistyped_gets_the_sweeps_note(
        flag, capsys):
    """`tune --stpes 5` (a swap), --stepps (a doubled letter), `--learningrate` and
    `--lr_rate` had no word: only --lr, --learning-rate, --steps, … as typed were known, and
    no command takes --steps, so git's rule had nothing to be near. Distill, which has its
    own, is pointed at it."""
    said = refused(capsys, "tune", "--run", "r", flag, "1")
    assert said.startswith(f"hubensemble tune: error: unrecognized arguments: {flag} 1 (")
    assert SWEEP_NOTE in said and "did you mean" not in said, said
    said = refused(capsys, "distill", "--run", "r", flag, "1")
    assert "did you mean --distill-" in said or SWEEP_NOTE in said, said
    if "lr" in flag.lower() or "learn" in flag.lower():
        assert "did you mean --distill-lr?" in said, said
    else:  # a length, epochs too: distill's own, said to be a multiple (a new user's check)
        assert "did you mean --distill-steps?; --distill-steps is the student's training " \
               "steps as a multiple of its module's best candidate's" in said, said


def test_no_flag_of_any_command_and_no_near_miss_is_taken_for_a_learning_rate():
    """The near misses of the spellings above (--eps, --stem, --rate: a letter or two off a
    short word) and every flag any command takes, given to a command that lacks it, get no
    sweep note, but for the flags INTENT_FLAGS names (--workers: zoo build's)."""
    from hubensemble.arguments import INTENT_FLAGS, _intent

    by_command = commands_of()
    flags = {f for p in by_command.values() for f in p._option_string_actions
             if f.startswith("--")}
    assert SWEEP_NOTE in by_command["tune"]._unrecognized(["--stpes"])  # (the reference)
    for flag in ["--eps", "--stem", "--rate", "--lrs", "--sleep", "--step-size", "--lr-decay",
                 "--learner", "--warmup", "--tests", "--seeds", "--strat"]:
        assert SWEEP_NOTE not in by_command["tune"]._unrecognized([flag]), flag
    for p in map(by_command.get, ("tune", "distill", "fit", "predict")):  # (`_intent`: what
        known = [f for f in p._option_string_actions if f.startswith("--")]
        for flag in sorted(flags - set(known) - set(INTENT_FLAGS)):
            assert _intent(flag, known) is None, (p.command, flag)  # `_unrecognized`'s note
    assert _intent("--stpes", ["--run"]) and _intent("--stpes", ["--stpes"]) is None


def test_a_flag_whose_twin_another_command_names_otherwise_is_named():
    """`ensemble --ensemble-budget 4` said "(demo, fit take --ensemble-budget, ensemble does
    not)" and no more: ensemble's own flag for it is --budget. Every option of the table with
    another flag in another command (Option.variants), both ways, and the run folder (fit's
    --out is tune's --run)."""
    from hubensemble import options
    from hubensemble.cli import build_parser

    root = build_parser()
    by_command = {p.command: p for p in root._commands()}
    pairs = [("tune", "--out", "--run"), ("report", "--out", "--run"),
             ("fit", "--run", "--out"), ("rank", "--run", "--out"), ("demo", "--run", "--out"),
             ("rank merge", "--run", "--out")]
    for o in options.options_for():
        flags = {c: o.settings(c)["flags"][-1] for c in o.commands}
        pairs += [(c, f, flags[c]) for c in flags for f in set(flags.values()) - {flags[c]}]
    assert ("ensemble", "--ensemble-budget", "--budget") in pairs
    assert ("evaluate", "--no-corruptions", "--corruptions") in pairs
    assert ("fit", "--corruptions", "--no-corruptions") in pairs
    for command, typed, own in pairs:
        if typed in by_command[command]._option_string_actions:  # fit --budget: tune's
            continue
        said = by_command[command]._unrecognized([typed])
        assert said.endswith(f"{command}'s own flag for this is {own})") or said.endswith(
            f"'s {typed} is {own})"), said
        assert "did you mean" not in said, said
    assert "own flag" not in by_command["predict"]._unrecognized(["--out"])  # none: no word


def test_a_run_or_an_export_given_under_another_commands_flag_names_the_flag_meant():
    """`predict --export DIR` said "(fit takes --export, predict does not)" without
    --model, and `evaluate --run run3` listed the commands taking --run without `--model
    run3/export`, the run's export it meant (report --model R/export: no --run R). Each
    names its own flag, with the folder meant; fit's --export and --out are folders it
    writes: `fit --model X` is not sent to them."""
    from hubensemble.cli import build_parser

    by_command = {p.command: p for p in build_parser()._commands()}
    cases = [("predict", ["--export", "run 3/export"], "predict's own flag for this is --model"),
             ("evaluate", ["--run", "run 3"], "evaluate takes the run's export: --model "
              "'run 3/export'"),
             ("evaluate", ["--run=r3"], "evaluate takes the run's export: --model r3/export"),
             ("predict", ["--run"], "predict takes the run's export: --model RUN/export"),
             ("report", ["--model", "r3/export/"], "report takes the export's run: --run r3"),
             ("distill", ["--model", "served"], "distill takes the export's run: --run RUN")]
    for command, extras, said in cases:
        words = by_command[command]._unrecognized(extras)
        assert words.endswith(f" does not; {said})"), words
    assert "--export" not in by_command["fit"]._unrecognized(["--model", "x"])
    assert "--out" not in by_command["fit"]._unrecognized(["--model", "x"])


def test_a_flag_of_one_value_given_twice_with_another_is_refused_naming_both(capsys):
    """`ensemble --budget 4 --budget 6` kept 6, `--run a --run b` ran b and `--flip
    --no-flip` took the last, without a word: each is refused with both values, in every
    command (a table option, a command's own flag, a choice, a boolean). The same value twice
    is taken; flags of several values add up and --split repeats, as their help says."""
    cases = [(("ensemble", "--run", "r", "--budget", "4", "--budget", "6"), "--budget 4",
              "--budget 6"),
             (("ensemble", "--run", "a", "--run", "b"), "--run a", "--run b"),
             ((*FIT_ARGV, "--flip", "--no-flip"), "--flip", "--no-flip"),
             (("zoo", "build", "--preset", "demo", "--preset=quick"), "--preset demo",
              "--preset quick"),
             (("rank", "merge", "s", "--out", "o", "--top-k", "2", "--top-k", "3"),
              "--top-k 2", "--top-k 3"),
             (("predict", "--model", "m", "--top", "2", "x.png", "--top", "3"), "--top 2",
              "--top 3"),
             (("evaluate", "--model", "m", "--data", "folder:a b", "--data", "npz:c"),
              "--data 'folder:a b'", "--data npz:c")]
    for argv, first, then in cases:
        said = refused(capsys, *argv)
        assert said.endswith(f": given twice, as {first} and then {then}; give it once, "
                             "with the value meant"), said
        assert f"hubensemble {argv[0]}" in said.split(":")[0], said
    assert parse("ensemble", "--run", "r", "--budget", "4", "--budget", "4"
                 ).ensemble_budget == 4
    assert parse(*FIT_ARGV, "--flip", "--flip", "-q", "--quiet").flip is True
    args = parse(*FIT_ARGV, "--split", "train=a", "--split", "val=b", "--modules", "x",
                 "--modules", "y")
    assert args.modules == ["x", "y"] and len(args.splits) == 2, args


def test_flags_that_do_not_go_together_are_usage_errors_wherever_they_are_refused(
        tmp_path, tiny_module, in_process, monkeypatch):
    """--tpu without --strategy tpu, a --budget its --sweep cannot hold and a --shard that
    holds no module were the base HubensembleError: argparse's shape (usage line, "hubensemble
    CMD: error:") held only where the command line checked them before the stage, and `rank
    --shard auto`, resolved in the stage, said "hubensemble: error: shard 2/3 holds no
    module". Each is an options.OptionError, said in that shape wherever it is raised.
    Fails before: rank's bare line; the refusals were no OptionError."""
    from hubensemble import options
    from hubensemble.preflight import check_strategy
    from hubensemble.rank.shards import check_shard_size
    from hubensemble.sweeps import check_budget

    from hubensemble.rundir import Run

    run, ranked = tmp_path / "run", tmp_path / "ranked"
    Run(ranked).update(modules={})  # a run: its flags are refused (a missing one is said first)
    for argv, said in (
            (("tune", "--run", ranked, "--strategy", "cpu", "--tpu", "grpc://h:1"),
             "--tpu grpc://h:1 is only used with --strategy tpu"),
            (("tune", "--run", ranked, "--sweep", "probe", "--budget", "2"),
             "the probe sweep runs 4 trials per module; budget 2 cannot hold one module's 4 "
             "trials")):
        code, out, err = in_process(*argv)
        assert (code, out) == (2, "") and err.startswith("usage: hubensemble tune "), err
        assert f"\nhubensemble tune: error: {said}" in err, err
    cat = tmp_path / "c.yaml"
    cat.write_text(f"modules:\n  - {{name: t, handle: {tiny_module}}}\n")
    for var in ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "2")  # a Kubernetes Indexed Job's third pod
    code, out, err = in_process("rank", "--catalogue", cat, "--data", "sklearn:digits",
                                "--out", run, "--shard", "auto", "--shards", "3", "-q")
    assert code == 2 and err.startswith("usage: hubensemble rank "), err
    assert ("\nhubensemble rank: error: shard 2/3 holds no module: the catalogue has 1; use "
            "fewer shards") in err, err
    for refused in (lambda: check_strategy("cpu", "grpc://h:1", environ={}),
                    lambda: check_strategy("multiworker", None, environ={}),
                    lambda: check_budget("aug", 3), lambda: check_shard_size(1, (2, 3))):
        with pytest.raises(options.OptionError):
            refused()


def test_a_finished_worker_without_a_sweep_says_its_summary_before_tensorflow(tmp_path):
    """A worker of a finished chief/worker sweep prints the sweep's summary before TensorFlow
    loads (sweepend.finished_worker); given no --sweep (tune's default: the run's own) it was
    handed none, so it imported TensorFlow (6-13 s, ~700 MB) to say the same. It resumes the
    run's recorded sweep, with its --budget, says so once, and loads no TensorFlow. Fails
    before: TensorFlow imported, no resuming line."""
    from sweepfiles import WORKER, finished_sweep

    run = finished_sweep(tmp_path / "finished", chief="done")
    argv = [a for i, a in enumerate(WORKER) if a not in ("--sweep", "--budget")
            and WORKER[i - 1] not in ("--sweep", "--budget")] + ["--run", str(run)]
    assert "--sweep" not in argv and "--budget" not in argv, argv
    code = ("import json, sys; from hubensemble.cli import main; "
            "c = main(json.loads(sys.argv[1])); "
            "print(json.dumps([c, 'tensorflow' in sys.modules]))")
    out = bounded_by_cpu([sys.executable, "-c", code, json.dumps(argv)], capture_output=True,
                         text=True, cpu=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1]) == [0, False], out.stderr
    assert out.stderr.count("resuming sweep seeds with --budget 2 (from run.json; --sweep "
                            "chooses another)") == 1, out.stderr
    assert out.stdout.startswith("sweep seeds: 1 ok (1 at chance on validation), 1 failed, "
                                 "0 not finished, of 2 planned"), out.stdout


def test_evaluates_split_and_ranks_shard_auto_are_usage_errors_in_argparses_shape(tmp_path, env):
    """`evaluate --split tst` (a DataError from the split's name check) and `rank --shard auto`
    outside a cluster array job (refused in the stage, not an OptionError) said a bare
    "hubensemble: error: …" where argparse's own errors show the command's usage line and
    "hubensemble CMD: error: …". Each is checked against argparse's own error for the same
    command (an unknown flag): the same usage lines, the same prefix, exit 2; no run folder."""
    model = tmp_path / "M"
    model.mkdir()
    (model / "saved_model.pb").write_bytes(b"")  # the pre-checks look for the file alone
    catalogue = tmp_path / "c.yaml"
    catalogue.write_text("modules:\n  - name: a\n    handle: keras:MobileNetV3Small\n")
    out = tmp_path / "R"
    cases = [(["evaluate", "--model", model, "--data", "sklearn:digits", "--split", "tst"],
              "--split: unknown split 'tst' (did you mean test?)"),
             (["rank", "--catalogue", catalogue, "--data", "sklearn:digits", "--out", out,
               "--shard", "auto"], "--shard auto reads the shard from a cluster array job")]
    argvs = [argv for argv, _ in cases]
    argvs += [[argv[0], "--bogus-flag", *argv[1:]] for argv in argvs]  # argparse's own
    outside = {k: v for k, v in env.items() if not k.startswith(("SLURM_", "JOB_COMPLETION"))}
    said = each_in_one_process(*argvs, env=outside)
    for (argv, words), ours, theirs in zip(cases, said, said[len(cases):]):
        command = f"hubensemble {argv[0]}"
        assert theirs[0] == 2 and "--bogus-flag" in theirs[2], theirs  # the reference
        usage = theirs[2].splitlines()[:-1]
        lines = ours[2].splitlines()
        assert ours[0] == 2 and lines[:-1] == usage and lines[0].startswith(
            f"usage: {command}"), ours[2]
        assert lines[-1].startswith(f"{command}: error: {words}"), ours[2]
    assert not out.exists()


def test_rank_shard_auto_is_refused_or_resolved_before_tensorflow_loads(tmp_path, env):
    """`rank --shard auto` outside a cluster array job, and one whose job index holds no module
    of the catalogue, were refused in argparse's shape only after TensorFlow loaded (7.65 s,
    665 MB): the shard was read from the environment in the stage. Now the pre-checks read it.
    Fails before: TensorFlow imported by the refusal."""
    catalogue = tmp_path / "c.yaml"
    catalogue.write_text("modules:\n  - name: a\n    handle: keras:MobileNetV3Small\n")
    out = tmp_path / "R"
    argv = ["rank", "--catalogue", catalogue, "--data", "sklearn:digits", "--out", out,
            "--shard", "auto"]
    outside = {k: v for k, v in env.items() if not k.startswith(("SLURM_", "JOB_COMPLETION"))}
    [(code, _, err, tensorflow)] = each_in_one_process(argv, env=outside)
    assert code == 2 and not tensorflow, err
    assert "hubensemble rank: error: --shard auto reads the shard from a cluster array job" in err
    [(code, _, err, tensorflow)] = each_in_one_process(
        [*argv, "--shards", "3"], env=dict(outside, JOB_COMPLETION_INDEX="2"))
    assert code == 2 and not tensorflow, err
    assert ("hubensemble rank: error: shard 2/3 holds no module: the catalogue has 1; use "
            "fewer shards") in err, err
    assert not out.exists()


def test_tune_distributed_flags_export_warmup_folders_and_fits_changed_options_before_tf(
        tmp_path, env):
    """Refusals the stage made only after TensorFlow loaded (11-18 s, ~690 MB each), each
    decided by the flags or run.json alone, now in the checks before it, in the same words:
    tune's --oracle that is not HOST:PORT, a malformed --tuner-id, --oracle without
    --tuner-id and --tuner-id without --oracle (on a finished sweep that printed its summary
    as if it were a worker of it); export --add-warmup of a folder that holds no export, or
    of a file ("[Errno 20] Not a directory"); fit on a fitted folder with other tune options
    (run.json's refusal). Fails before: TensorFlow imported by each refusal."""
    from sweepfiles import finished_sweep

    from hubensemble.pipeline import FitOptions
    from hubensemble.stagerecords import stage_keys

    from hubensemble.catalogue import load_catalogue
    from hubensemble.rank.ranking import catalogue_fingerprint

    run = finished_sweep(tmp_path / "run", chief="done")
    fitted = tmp_path / "fitted"
    fitted.mkdir()
    catalogue = tmp_path / "c.yaml"
    catalogue.write_text("modules:\n  - name: a\n    handle: keras:MobileNetV3Small\n")
    # The catalogue the run was fitted with (fit compares it before TensorFlow too, 488):
    # only the options changed.
    c0 = catalogue_fingerprint(load_catalogue(str(catalogue)))
    recorded = FitOptions(profile="quick", top_k=2)
    (fitted / "run.json").write_text(json.dumps({"fit": {
        "fingerprints": {"catalogue": c0, "data": "d0"},
        "keys": {"tune": stage_keys(c0, "d0", recorded)["tune"]},
        "options": json.loads(json.dumps(dataclasses.asdict(recorded), default=str))},
        "stages": {"rank": {"done": True}}}))
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty").mkdir()
    cases = [(["tune", "--run", run, "--oracle", "bad"], "oracle address 'bad' is not HOST:PORT"),
             (["tune", "--run", run, "--tuner-id", "a b"], "tuner id 'a b': use 'chief'"),
             (["tune", "--run", run, "--oracle", "h:1"], "a distributed sweep needs --tuner-id"),
             (["tune", "--run", run, "--tuner-id", "tuner0"],
              "--tuner-id tuner0 needs --oracle HOST:PORT (the chief's address)"),
             (["export", "--add-warmup", tmp_path / "file"],
              f"{tmp_path / 'file'} is not a folder: pass the folder of one to --add-warmup"),
             (["export", "--add-warmup", tmp_path / "empty"],
              f"{tmp_path / 'empty'} holds no export hubensemble wrote"),
             (["fit", "--catalogue", catalogue, "--data", "sklearn:digits", "--out", fitted,
               "--top-k", "2", "--profile", "cpu"],
              "the rank or tune options (--profile quick -> cpu) changed since")]
    outside = {k: v for k, v in env.items() if not k.startswith("KERASTUNER_")}
    said = each_in_one_process(*[argv for argv, _ in cases], env=outside)
    for (argv, words), (code, out, err, tensorflow) in zip(cases, said):
        assert code == 2 and words in err and not tensorflow, (argv, err)
    assert not (tmp_path / "empty" / "assets.extra").exists()


def test_evaluate_refuses_data_dir_for_its_runs_data_before_tensorflow(tmp_path):
    """`evaluate --model RUN/export --data-dir DIR` without --data evaluates the run's data
    (run.json); --data-dir for a spec that is not tfds: was refused for it only after
    TensorFlow loaded (15 s, 650 MB), as --data sklearn:digits --data-dir DIR was at once.
    Now both at once, in the same words. Fails before: TensorFlow imported."""
    run = tmp_path / "run"
    model = run / "export"
    (model / "assets").mkdir(parents=True)
    from evaluatefakes import fake_saved_model_pb  # (one that parses: no refusal of it)

    (model / "saved_model.pb").write_bytes(fake_saved_model_pb())
    (model / "assets" / "hubensemble.json").write_text(json.dumps(
        {"task": {"name": "digits", "source": "sklearn:digits"}}))
    (run / "run.json").write_text(json.dumps({"data": {
        "args": {"spec": "sklearn:digits"}, "task": {"name": "digits"}}}))
    said = each_in_one_process(
        ["evaluate", "--model", model, "--data-dir", tmp_path],
        ["evaluate", "--model", model, "--data", "sklearn:digits", "--data-dir", tmp_path])
    for code, _, err, tensorflow in said:
        assert code == 2 and not tensorflow, err
        assert ("--data-dir only applies to tfds: specs, not sklearn:; leave it out "
                "(docs/data.md lists what each scheme reads)") in err, err


def test_python_values_the_command_line_refuses_are_value_errors_naming_them(tmp_path):
    """run_tune(profile="quik") and build_zoo(workers=0) or build_zoo(seed=-1), values the
    command line's parser refuses (--profile's choices, --workers' and --seed's ranges), raised
    a plain HubensembleError from Python, which `except ValueError` (as for every other option
    value: options.OptionError) let through. Each is now an OptionError, a ValueError, in the
    same words, before any work. Fails before: not a ValueError."""
    from sweepfiles import finished_sweep

    import hubensemble

    run = finished_sweep(tmp_path / "run", chief="done")
    files = lambda: sorted(p.name for p in run.rglob("*")  # noqa: E731
                           if ".lock" not in p.name and p.name != "log.txt")
    before = files()
    with pytest.raises(ValueError, match=r"^unknown profile 'quik' \(did you mean quick\?\)"):
        hubensemble.run_tune(run, profile="quik", progress=False)
    assert files() == before  # (its run folder's lock files and log.txt aside)
    with pytest.raises(ValueError, match=r"^workers must be an integer >= 1, got 0"):
        hubensemble.build_zoo("quick", tmp_path / "zoo", workers=0, progress=False)
    with pytest.raises(ValueError, match="with seed -1 would train with seed -1"):
        hubensemble.build_zoo("quick", tmp_path / "zoo", seed=-1, progress=False)
    assert not (tmp_path / "zoo").exists()


@pytest.mark.parametrize("argv", [("rank", "--catalogue", "c.yaml", "--data", "sklearn:digits",
                                   "--out", "o"), FIT_ARGV])
def test_k_is_refused_with_a_metric_that_has_no_neighbours(argv, capsys):
    # `rank --metric logme --k 3` (and hscore) ignored --k, which still changed rank's key
    # (options.NEEDS_VALUE). Fails before: parsed. (Parsed only: taken, main would run it.)
    prog = "hubensemble " + argv[0]
    for metric in ("logme", "hscore"):
        with pytest.raises(SystemExit) as stop:
            parse(*argv, "--metric", metric, "--k", "3")
        err = capsys.readouterr().err
        assert stop.value.code == 2 and err.startswith(f"usage: {prog} "), err
        assert (f"{prog}: error: argument --k: only applies with --metric knn or knn-cosine, "
                f"not --metric {metric}; leave --k out") in err, err
    # --k with the kNN proxies (the default one too), and the metrics without --k, are taken.
    for extra in ([], ["--metric", "knn-cosine"]):
        assert parse(*argv, *extra, "--k", "3").k == 3
    assert parse(*argv, "--metric", "logme").k == 1


def test_a_shard_past_two_catalogues_names_both_and_their_counts(tmp_path, in_process):
    # "the catalogue has 7" when `--catalogue a.yaml b.yaml` gave two (rank.shards).
    # Fails before: "the catalogue has 3". Python's ModuleSpecs are named as given.
    from hubensemble.catalogue import ModuleSpec
    from hubensemble.optionerror import OptionError
    from hubensemble.rank.shards import check_shard_size

    cats = []
    for name, n in (("a", 1), ("b", 2)):
        cats.append(tmp_path / f"{name}.yaml")
        cats[-1].write_text("modules:\n" + "".join(
            f"  - {{name: {name}{i}, handle: {tmp_path / 'm'}}}\n" for i in range(n)))
    code, out, err = in_process("rank", "--catalogue", *cats, "--data", "sklearn:digits",
                                "--out", tmp_path / "run", "--shard", "4/5")
    assert (code, out) == (2, "") and err.startswith("usage: hubensemble rank "), err
    assert (f"error: shard 4/5 holds no module: the catalogues {cats[0]} (1) and {cats[1]} (2) "
            "have 3 between them; use fewer shards (at most 3, one for each of their 3 "
            "modules)\n") in err, err
    assert not (tmp_path / "run").exists()
    loose = [ModuleSpec(name=f"p{i}", handle=str(tmp_path / "m")) for i in range(2)]
    with pytest.raises(OptionError, match=r"holds no module: specs holds 2; use fewer"):
        check_shard_size(loose, (3, 4))
    with pytest.raises(OptionError, match=re.escape(
            f"the catalogue {cats[0]} (1) and 2 ModuleSpecs given in Python have 3 between")):
        check_shard_size([ModuleSpec(name="a0", handle="x", source=f"{cats[0]}:2"), *loose],
                         (3, 4))


def test_catalogue_add_refuses_a_missing_weights_file_before_tensorflow(tmp_path):
    # `catalogue add keras:X --weights missing.h5` built the architecture with TensorFlow
    # (15 s, 690 MB) to log "the weights file … does not exist" and exit 1. Fails before: 1
    # and TensorFlow loaded. Now a usage refusal in the loader's (and fileio's) words.
    from hubensemble.catalogue_writer import check_add
    from hubensemble.errors import CatalogueError

    to = tmp_path / "k.yaml"
    dead = tmp_path / "dead.h5"
    dead.symlink_to(tmp_path / "nowhere.h5")
    argvs = [["catalogue", "add", "keras:MobileNetV3Small", "--weights", str(w), "--to", str(to)]
             for w in (tmp_path / "missing.h5", dead, f"file://{tmp_path / 'gone.h5'}")]
    said = each_in_one_process(*argvs)
    whys = [f"{tmp_path / 'missing.h5'} does not exist",
            f"{dead} is a broken link (to {tmp_path / 'nowhere.h5'})",
            f"{tmp_path / 'gone.h5'} does not exist"]
    for (code, out, err, tensorflow), why in zip(said, whys):
        assert (code, out, tensorflow) == (2, "", False), err
        assert (f"error: cannot add 'keras:MobileNetV3Small': argument --weights: the weights "
                f"file {why}; pass --weights imagenet or the path of the file its weights were "
                "saved to\n") in err, err
    assert not to.exists()
    with pytest.raises(CatalogueError, match=re.escape(
            f"keyword weights: the weights file {tmp_path / 'missing.h5'} does not exist; pass "
            "weights='imagenet' or")):
        check_add(to, ["keras:MobileNetV3Small"], weights=str(tmp_path / "missing.h5"))
    (tmp_path / "w.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n")  # there: refused no more
    assert check_add(to, ["keras:MobileNetV3Small"], weights=str(tmp_path / "w.weights.h5")) \
        == set()


def test_min_per_class_and_k_past_an_npz_or_folder_are_refused_before_tensorflow(tmp_path):
    # `rank --min-per-class 100000` on an npz and `fit --k 100000` / `rank --k 100000` on an
    # npz or a folder were refused after TensorFlow and the data's load (8-15 s, 660-740 MB):
    # the labels of y_train and a folder's files already count the training examples.
    # Fails before: TensorFlow loaded (the module is no module: each reached the data).
    from types import SimpleNamespace

    from PIL import Image

    from hubensemble.errors import DataError

    npz = tmp_path / "d.npz"
    np.savez(npz, x_train=np.zeros((7, 4, 4, 3), np.uint8), y_train=[0, 0, 0, 1, 1, 1, 1],
             class_names=np.array(["cat", "dog"]))
    for c, n in (("a", 3), ("b", 4)):
        (tmp_path / "f" / c).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (4, 4), (i, 9, 0)).save(tmp_path / "f" / c / f"{i}.png")
    cat = tmp_path / "c.yaml"
    cat.write_text(f"modules:\n  - {{name: t, handle: {stand_in(tmp_path, 'm')}}}\n")
    out = tmp_path / "run"
    npz_what = f"labels in npz:{npz}'s y_train, before a val split is carved off"
    folder_what = f"files in {tmp_path / 'f'}'s class folders, before decoding"
    cases = []
    for spec, what, names in ((f"npz:{npz}", npz_what, ("cat", "dog")),
                              (f"folder:{tmp_path / 'f'}", folder_what, ("a", "b"))):
        common = ["--catalogue", str(cat), "--data", spec, "--out", str(out)]
        drop = ("add images, merge or drop the class" if spec.startswith("npz:") else
                "add images to its folder, move them into another class's folder, or remove "
                "the folder to drop the class")  # a class is a folder there (test_folderwords)
        cases += [(["rank", *common, "--min-per-class", "4"],
                   f"error: every class needs at least 4 training examples (leave-one-out kNN "
                   f"compares each with the others): '{names[0]}' has 3 ({what}); {drop}, or "
                   "keep it with --min-per-class 3\n"),
                  (["fit", *common, "--k", "7"], f"error: leave-one-out 7-NN needs at least 8 "
                   f"training examples; the task has at most 7 ({what}): lower --k\n"),
                  (["rank", *common, "--k", "100000", "--metric", "knn-cosine"],
                   "error: leave-one-out 100000-NN needs at least 100001 training examples; the "
                   f"task has at most 7 ({what}): lower --k\n")]
    said = each_in_one_process(*[argv for argv, _ in cases])
    for (argv, words), (code, printed, err, tensorflow) in zip(cases, said):
        assert (code, printed, tensorflow) == (2, "", False), (argv, err)
        assert err.endswith(f"hubensemble: {words}"), (argv, err)
    assert not out.exists()
    # The bound itself: k = examples - 1 passes, and data whose counts need a load (sklearn:,
    # tfds:) is left to the load's refusal.
    from hubensemble.commands import check_counts

    for spec in (f"npz:{npz}", f"folder:{tmp_path / 'f'}"):
        check_counts(SimpleNamespace(data=spec, min_per_class=3, k=6, metric="knn"))
        with pytest.raises(DataError, match="needs at least 8 training examples"):
            check_counts(SimpleNamespace(data=spec, min_per_class=3, k=7, metric="knn"))
        check_counts(SimpleNamespace(data=spec, min_per_class=2, k=7, metric="logme"))
    check_counts(SimpleNamespace(data="tfds:mnist", min_per_class=10**6, k=10**6,
                                 metric="knn"))


def test_catalogue_add_refuses_a_file_in_the_way_of_its_to_before_tensorflow(tmp_path):
    # `catalogue add H --to cat.yaml/new.yaml` loaded the module with TensorFlow, then
    # failed to write (NotADirectoryError). Fails before: TensorFlow loaded.
    from hubensemble.catalogue_writer import check_add
    from hubensemble.errors import HubensembleError

    (tmp_path / "cat.yaml").write_text("modules:\n")
    to = tmp_path / "cat.yaml" / "new.yaml"
    [(code, out, err, tensorflow)] = each_in_one_process(
        ["catalogue", "add", "keras:MobileNetV3Small", "--to", str(to)])
    assert (code, out, tensorflow) == (2, "", False), err
    assert (f"error: {tmp_path / 'cat.yaml'} is a file, not a folder; --to {to} goes inside "
            "it: pass another --to file\n") in err, err
    with pytest.raises(HubensembleError, match=re.escape(f"path={str(to)!r} goes inside it")):
        check_add(to, ["keras:MobileNetV3Small"])
    assert check_add(tmp_path / "new" / "k.yaml", ["keras:MobileNetV3Small"]) == set()


def test_catalogue_add_refuses_one_handle_given_twice_before_tensorflow(tmp_path):
    # `catalogue add H H` (or mods/m and ./mods/m) loaded the module twice with TensorFlow and
    # appended the second as the first's duplicate, with a warning. Fails before: TensorFlow
    # loaded, exit 1 (here, offline).
    from hubensemble.catalogue_writer import check_add
    from hubensemble.errors import CatalogueError

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "saved_model.pb").write_bytes(b"")  # a module's folder, to its listing
    to = tmp_path / "k.yaml"
    said = each_in_one_process(
        ["catalogue", "add", "keras:MobileNetV3Small", "keras:MobileNetV3Small", "--to", to],
        ["catalogue", "add", "m", "./m/", "--to", to], cwd=tmp_path)
    for (code, out, err, tensorflow), words in zip(said, (
            "'keras:MobileNetV3Small' twice: it was given before,", "'./m/' twice: it was "
            "given before (as 'm'),")):
        assert (code, out, tensorflow) == (2, "", False), err
        assert (f"error: cannot add {words} in this one call; give each HANDLE once\n"
                in err), err
    assert not to.exists()
    with pytest.raises(CatalogueError, match="give each handle once in handles"):
        check_add(to, [str(tmp_path / "m"), str(tmp_path / "m")])
    assert check_add(to, [str(tmp_path / "m"), "keras:MobileNetV3Small"]) == set()


def test_min_per_class_and_k_past_sklearn_digits_are_refused_before_tensorflow(tmp_path):
    # `rank --data sklearn:digits --k 100000` and --min-per-class past its counts were refused
    # after TensorFlow's import and the data's load (as an npz's and a folder's were before
    # d84c84e): its training split is drawn from its labels alone. Fails before: TensorFlow
    # loaded (the module is a file, no module: each reached the data's load).
    from types import SimpleNamespace

    from hubensemble.commands import check_counts
    from hubensemble.data import load_task
    from hubensemble.errors import DataError

    (tmp_path / "notes.txt").write_text("not a module")
    cat = tmp_path / "c.yaml"
    cat.write_text("modules:\n  - {name: t, handle: ./notes.txt}\n")
    out = tmp_path / "run"
    # The reference: the split the loader draws with seed 5 (its fewest, in its first class).
    train = np.bincount(load_task("sklearn:digits", seed=5).train.labels)
    fewest, first = int(train.min()), int(np.argmin(train))
    what = "the training split of sklearn:digits, data seed 5"
    common = ["--catalogue", str(cat), "--data", "sklearn:digits", "--data-seed", "5",
              "--out", str(out)]
    cases = [(["rank", *common, "--k", "100000"], "error: leave-one-out 100000-NN needs at "
              f"least 100001 training examples; the task has at most {train.sum()} ({what}): "
              "lower --k\n"),
             (["fit", *common, "--min-per-class", str(fewest + 1)],
              f"error: every class needs at least {fewest + 1} training examples (leave-one-out "
              f"kNN compares each with the others): '{first}' has {fewest} ({what}); add "
              f"images, merge or drop the class, or keep it with --min-per-class {fewest}\n")]
    said = each_in_one_process(*[argv for argv, _ in cases])
    for (argv, words), (code, printed, err, tensorflow) in zip(cases, said):
        assert (code, printed, tensorflow) == (2, "", False), (argv, err)
        assert err.endswith(f"hubensemble: {words}"), (argv, err)
    assert not out.exists()
    # The bounds themselves: k = examples - 1 and --min-per-class at the fewest pass.
    args = dict(data="sklearn:digits", data_seed=5, metric="knn")
    check_counts(SimpleNamespace(**args, min_per_class=fewest, k=int(train.sum()) - 1))
    with pytest.raises(DataError, match=f"needs at least {train.sum() + 1} training"):
        check_counts(SimpleNamespace(**args, min_per_class=fewest, k=int(train.sum())))


def test_modules_missing_here_are_said_before_tensorflow_and_all_missing_refused(
        tmp_path, in_process, tiny_module, monkeypatch):
    # A catalogue whose every module is a local path with nothing there was refused after
    # TensorFlow's import and the data's load (6-16 s, ~700 MB); with some missing, they were
    # said only as rank reached each. Fails before: TensorFlow loaded, and the missing module
    # was not said before it.
    import hubensemble.commands
    from hubensemble.catalogue import load_catalogue
    from hubensemble.data import load_task
    from hubensemble.errors import HubensembleError
    from hubensemble.rank import run_rank

    cat = tmp_path / "c.yaml"
    cat.write_text("modules:\n  - {name: a, handle: ./gone}\n"
                   "  - {name: b, handle: \"file://$NO_SUCH_VAR/m.keras\"}\n")
    out = tmp_path / "run"
    # The reference: run_rank's own refusal, its modules loaded by the loader.
    with pytest.raises(HubensembleError) as refused:
        run_rank(tmp_path / "py", load_catalogue(str(cat)), load_task("sklearn:digits"))
    argvs = [[command, "--catalogue", cat, "--data", "sklearn:digits", "--out", out]
             for command in ("rank", "fit")]
    for code, printed, err, tensorflow in each_in_one_process(*argvs):
        assert (code, printed, tensorflow) == (2, "", False), err
        assert err == f"hubensemble: error: {refused.value}\n", err
    assert not out.exists()
    # Some missing: said before TensorFlow, in the loader's words, once; the others ranked.
    both = tmp_path / "both.yaml"
    both.write_text(f"modules:\n  - {{name: a, handle: ./gone}}\n"
                    f"  - {{name: t, handle: {tiny_module}}}\n")
    reason = f"[local path] module 'a', handle '{tmp_path / 'gone'}': './gone' (" \
             f"{tmp_path / 'gone'}, relative to the catalogue's folder) does not exist; check " \
             "the path"
    seen = []

    def importing_tensorflow(verbose, now=True):
        seen.append((out / "log.txt").read_text())
        raise KeyboardInterrupt  # the user stops it as TensorFlow loads

    monkeypatch.setattr(hubensemble.commands, "_import_tensorflow", importing_tensorflow)
    argv = ["rank", "--catalogue", both, "--data", "sklearn:digits", "--out", out, "--k", "1"]
    code, _, err = in_process(*argv)
    assert code == 130 and f"module a ({both}:2) cannot load here, so rank skips it: " \
        f"{reason}" in seen[0], (err, seen)
    monkeypatch.undo()
    code, printed, err = in_process(*argv)
    # Exit 1: it went on past a module left out (491's exit statuses; README).
    assert code == 1 and err.count(reason) == 1, err
    assert "1 module of the catalogue failed and was left out" in err, err
    rows = {r["name"]: r for r in json.loads((out / "ranking.json").read_text())["modules"]}
    assert rows["a"]["reason"] == reason and rows["a"]["stage"] == "local path", rows
    assert rows["t"]["status"] == "ok" and (out / "log.txt").read_text().count(reason) == 2


def test_catalogue_add_of_a_path_that_holds_no_module_is_refused_before_tensorflow(tmp_path):
    # `catalogue add ./notes.txt` (a file that is no model file) and of a folder without a
    # module loaded TensorFlow first and failed in the load (26 s, 685 MB); a missing path was
    # already refused before it. Fails before: TensorFlow loaded, exit 1.
    from hubensemble.localfiles import file_not_module

    (tmp_path / "notes.txt").write_text("not a module")
    (tmp_path / "m.tar.gz").write_bytes(b"\x1f\x8b")
    (tmp_path / "empty").mkdir()
    to = tmp_path / "c.yaml"
    cases = [(tmp_path / "notes.txt", file_not_module(str(tmp_path / "notes.txt"))),
             (tmp_path / "m.tar.gz", file_not_module(str(tmp_path / "m.tar.gz"))),
             (tmp_path / "empty", f"{tmp_path / 'empty'} holds no module (no saved_model.pb, "
                                  ".keras/.h5 file or keras-hub preset)")]
    said = each_in_one_process(*[["catalogue", "add", path, "--to", to] for path, _ in cases])
    for (path, words), (code, printed, err, tensorflow) in zip(cases, said):
        assert (code, printed, tensorflow) == (2, "", False), (path, err)
        assert err == f"hubensemble: error: cannot add '{path}': {words}\n", err
    assert not to.exists()


def test_rank_onto_a_run_of_other_data_options_is_refused_before_tensorflow(tmp_path):
    # `rank --out RUN --data OTHER` on a run recorded with other data options was refused by
    # Run.attach_task after TensorFlow's import and the data's load (25 s, 674 MB). Fails
    # before: TensorFlow loaded.
    from hubensemble.cli import build_parser
    from hubensemble.commands import _other_data_options
    from hubensemble.data import load_task
    from hubensemble.errors import RunError
    from hubensemble.lockwords import command_line
    from hubensemble.rank import run_rank
    from hubensemble.rundir import DataArgs, Run

    run, npz = tmp_path / "run", tmp_path / "d.npz"
    Run(run).attach_task(load_task("sklearn:digits"), DataArgs(spec="sklearn:digits"))
    np.savez(npz, x_train=np.zeros((6, 4, 4, 3), np.uint8), y_train=[0, 1] * 3)
    cat = tmp_path / "c.yaml"
    cat.write_text(f"modules:\n  - {{name: t, handle: {stand_in(tmp_path, 'm')}}}\n")
    with command_line(), pytest.raises(RunError) as refused:  # the reference: the stage's
        run_rank(run, str(cat), load_task(f"npz:{npz}"), data_args=DataArgs(spec=f"npz:{npz}"))
    [(code, printed, err, tensorflow)] = each_in_one_process(
        ["rank", "--catalogue", cat, "--data", f"npz:{npz}", "--out", run])
    assert (code, printed, tensorflow) == (2, "", False), err
    assert err == f"hubensemble: error: {refused.value}\n", err
    # Its own options pass here (the load compares the data itself, as before), and so do
    # options that may load the very data: a --min-per-class, or the recorded npz by another
    # path (fit's rule, datachange.surely_other_data); both were refused as other data.
    _other_data_options(build_parser().parse_args(
        ["rank", "--catalogue", str(cat), "--data", "sklearn:digits", "--out", str(run)]))
    _other_data_options(build_parser().parse_args(
        ["rank", "--catalogue", str(cat), "--data", "sklearn:digits", "--out", str(run),
         "--min-per-class", "3"]))
    on_npz, link = tmp_path / "on_npz", tmp_path / "link.npz"
    link.symlink_to(npz)
    Run(on_npz).attach_task(load_task(f"npz:{npz}"), DataArgs(spec=f"npz:{npz}"))
    _other_data_options(build_parser().parse_args(
        ["rank", "--catalogue", str(cat), "--data", f"npz:{link}", "--out", str(on_npz)]))
    with pytest.raises(RunError, match="holds a run on other data"):  # still: another seed
        _other_data_options(build_parser().parse_args(
            ["rank", "--catalogue", str(cat), "--data", "sklearn:digits", "--out", str(run),
             "--data-seed", "1"]))


def test_sklearn_digits_counts_need_no_import_where_every_split_holds_them(tmp_path):
    # The count check of sklearn:digits (b17af0f) imported scikit-learn (1-3 s, 90 MB) before
    # every refusal that came after it, --out's too (0.7 s became 4 s). Every seed's split
    # holds at least fewest_train() of each digit and 800 in all: only a --min-per-class or
    # --k past those needs the split. Fails before: scikit-learn imported.
    from sklearn.datasets import load_digits

    from hubensemble.data import digits

    counts = np.bincount(load_digits().target)  # the reference: scikit-learn's copy
    assert tuple(counts.tolist()) == digits.CLASS_COUNTS
    assert min(np.bincount(digits.train_labels("digits", seed)).min()
               for seed in range(8)) >= digits.fewest_train()
    probe = ("import sys; from types import SimpleNamespace; "
             "from hubensemble.commands import check_counts; "
             "[check_counts(SimpleNamespace(data='sklearn:digits', data_seed=3, metric='knn', "
             "min_per_class=m, k=k)) for m, k in ((%d, 799), (2, 1))]; "
             "print('sklearn' in sys.modules)" % digits.fewest_train())
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.split() == ["False"], out.stderr


def test_a_refusal_after_the_memory_note_imports_no_scikit_learn_for_digits(tmp_path):
    # A new-user check: `rank --data sklearn:digits --out afile/r` (afile a file) took 137 MB,
    # not e7c24de's 45: the memory note's batch bound (preflight) counted the digits' split
    # with scikit-learn, which only its size needs (every seed's: data.digits.TRAIN_SIZE).
    # Fails before: scikit-learn imported.
    from hubensemble.dataargs import listed_counts, listed_total
    from hubensemble.data import digits

    assert listed_total("sklearn:digits") == digits.TRAIN_SIZE == sum(
        listed_counts("sklearn:digits", 5)[0].values())
    (tmp_path / "m0").mkdir()
    (tmp_path / "afile").write_text("")
    cat = tmp_path / "cat.yaml"
    cat.write_text(f"modules:\n  - {{name: m0, handle: {tmp_path / 'm0'}}}\n")
    probe = ("import sys; from hubensemble.cli import main; "
             f"code = main(['rank', '--catalogue', {str(cat)!r}, '--data', 'sklearn:digits', "
             f"'--out', {str(tmp_path / 'afile' / 'r')!r}]); "
             "print(code, 'sklearn' in sys.modules, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.split() == ["2", "False", "False"], (out.stdout, out.stderr)
    assert "is a file, not a folder" in out.stderr


def test_rank_over_a_probe_sweeps_run_names_the_tune_that_adds_its_selections_trials(
        tmp_path, module_factory, in_process):
    """rank over a run that holds candidates names the tune that adds trials for its new
    selection. It said a plain `hubensemble tune --run RUN`, which resumes the run's recorded
    sweep with its recorded --budget (a probe sweep of one module: 4) and so added no trial
    for the newly selected module. It names the run's sweep and options, its budget the
    sweep's default (4 per selected module). Fails before: the command named leaves 4
    candidates, all of the first module's."""
    import shlex

    cat, data = two_modules_and_data(tmp_path, module_factory, "sel")
    run = tmp_path / "run"
    rank = ["rank", "--catalogue", cat, "--data", f"npz:{data}", "--out", run]
    assert in_process(*rank, "--profile", "quick", "--top-k", "1")[0] == 0
    code, _, err = in_process("tune", "--run", run, "--sweep", "probe", "--budget", "4")
    assert code == 0 and len(os.listdir(run / "candidates")) == 4, err
    code, _, err = in_process(*rank, "--top-k", "2")
    named = re.search(r"and `hubensemble (tune [^`]*)` adds trials for the modules this "
                      r"ranking selects", err)
    assert code == 0 and named, err
    assert named.group(1) == f"tune --run {run} --sweep probe --profile quick", err
    code, _, err = in_process(*shlex.split(named.group(1)))
    trials = sorted(os.listdir(run / "candidates"))
    assert code == 0 and len(trials) == 8, (trials, err)
    assert {t.rsplit("-", 1)[1] for t in trials} == {"m0", "m1"}


def test_a_keras_entrys_missing_weights_file_is_labelled_by_its_own_format(
        tmp_path, in_process, tiny_module):
    """A ``keras:NAME`` entry whose `weights:` file is not there was labelled "[savedmodel]"
    in rank's refusal before TensorFlow and by the loader after it, though no SavedModel is
    read: it is "[keras weights]" in both, the ranking's row too. Fails before: "[savedmodel]
    module 'k'"."""
    from hubensemble.errors import ModuleLoadError
    from hubensemble.hub.locate import locate

    gone = tmp_path / "gone.weights.h5"
    cat = tmp_path / "c.yaml"
    cat.write_text(f"modules:\n  - {{name: k, handle: 'keras:MobileNetV3Small', weights: {gone}}}\n"
                   f"  - {{name: t, handle: {tiny_module}}}\n")
    out = tmp_path / "run"
    code, _, err = in_process("rank", "--catalogue", cat, "--data", "sklearn:digits", "--out",
                              out, "--profile", "quick")
    said = f"[keras weights] module 'k', handle 'keras:MobileNetV3Small': the weights file {gone}"
    assert code == 1 and err.count(said) == 1 and "[savedmodel]" not in err, err
    rows = {r["name"]: r for r in json.loads((out / "ranking.json").read_text())["modules"]}
    assert rows["k"]["stage"] == "keras weights", rows["k"]
    with pytest.raises(ModuleLoadError) as loaded:  # the loader's own, after TensorFlow
        locate("keras:MobileNetV3Small", name="k", weights=str(gone))
    assert loaded.value.stage == "keras weights" and str(loaded.value).startswith(said)


def test_a_damaged_modules_record_names_the_runs_own_catalogue_and_data(tmp_path, tiny_module,
                                                                        in_process):
    """run.json's "modules" edited into no object was refused with "run `hubensemble rank
    --catalogue FILE --data SPEC --out RUN` again" where the run records both (its ranking's
    rows their catalogue lines, run.json its data options): it names them, and the command
    named runs. From Python, the run_rank call with them. Fails before: FILE and SPEC."""
    import shlex

    from hubensemble.errors import RunError

    cat = tmp_path / "c.yaml"
    cat.write_text(f"modules:\n  - {{name: t, handle: {tiny_module}}}\n")
    run = tmp_path / "run"
    assert in_process("rank", "--catalogue", cat, "--data", "sklearn:digits", "--data-seed",
                      "3", "--out", run, "--profile", "quick")[0] == 0
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**meta, "modules": "t"}))
    code, _, err = in_process("tune", "--run", run)
    said = re.search(r"or run `hubensemble (rank [^`]*)` again\n", err)
    assert code == 2 and said, err
    assert said.group(1) == (f"rank --catalogue {cat} --data sklearn:digits --data-seed 3 "
                             f"--profile quick --out {run}"), err  # the rank's own profile
    assert in_process(*shlex.split(said.group(1)))[0] == 0
    assert json.loads((run / "run.json").read_text())["modules"]["t"]["handle"] == tiny_module
    (run / "run.json").write_text(json.dumps({**meta, "modules": ["t"]}))
    import hubensemble

    with pytest.raises(RunError) as python:
        hubensemble.run_tune(run, progress=False)
    assert str(python.value).endswith(
        f"or call run_rank(out_dir={str(run)!r}, specs=load_catalogue({str(cat)!r}), "
        "task=load_task('sklearn:digits', seed=3), profile='quick') again"), python.value


def test_fit_out_inside_another_run_is_said_in_fits_words_before_tensorflow(tmp_path):
    """`fit --out "run a/export"` was told of its export's path ("…/export/export is inside
    the run folder …"), and `fit --out "run a/new" --export elsewhere` passed the command
    line's checks (the export lies outside) and was refused only by fit, after TensorFlow.
    Both now get fit's own words from Python (`fitargs.check_out_of_other_runs`, the
    reference), before TensorFlow, and nothing is written. Fails before: the export's
    path, and TensorFlow imported."""
    from hubensemble.errors import RunError
    from hubensemble.fitargs import check_out_of_other_runs
    from hubensemble.lockwords import command_line

    run = tmp_path / "run a"
    run.mkdir()
    (run / "run.json").write_text("{}")
    catalogue = tmp_path / "c.yaml"
    catalogue.write_text(f"modules:\n  - name: m\n    handle: {tmp_path / 'm'}\n")
    argvs, words = [], []
    for out, export in (("export", None), ("new", None), ("new", tmp_path / "elsewhere")):
        with command_line(), pytest.raises(RunError) as said:
            check_out_of_other_runs(run / out)
        words.append(str(said.value))
        argvs.append(["fit", "--catalogue", catalogue, "--data", "sklearn:digits",
                      "--out", run / out] + (["--export", export] if export else []))
    for (code, _, err, tensorflow), said in zip(each_in_one_process(*argvs), words):
        assert (code, tensorflow) == (2, False), err
        assert err.endswith(f"error: {said}\n"), err
        assert said.startswith(f"--out {run}/") and "export/export" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "run a"]
    assert sorted(p.name for p in run.iterdir()) == ["run.json"]
