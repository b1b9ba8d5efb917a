"""Progress bars where stderr is a terminal, a notebook kernel's stream, or a file / pipe
(`terminal.progress_bar`, `terminal.live_bars`)."""

import io
import os
import re
import subprocess
import sys

from hubensemble import terminal

#: A bar of 5 steps, each with a postfix and a note through tqdm.write, on sys.stderr.
BAR_SCRIPT = """
import sys
from hubensemble.terminal import progress_bar
bar = progress_bar(range(5), desc="work", unit="step")
for i in bar:
    bar.set_postfix_str(f"item {i}")
    bar.write(f"note {i}", file=sys.stderr)
"""


def _kernel_stream(buffer):
    """A stream of the kind a Jupyter kernel puts on sys.stderr: ipykernel's OutStream (by
    its module; ipykernel is not a dependency), which says it is no terminal."""
    stream_type = type("OutStream", (), {
        "__module__": "ipykernel.iostream", "isatty": lambda self: False,
        "write": lambda self, s: buffer.write(s), "flush": lambda self: None})
    return stream_type()


def _pty(columns, rows=24):
    """(leader, follower) descriptors of a new pseudo-terminal of `columns` columns and `rows`
    rows (0: a terminal whose size nobody set)."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    return leader, follower


def _on_a_pty(argv, *, columns, term="xterm-256color"):
    """The output of `argv` run with its stdin, stdout and stderr on a pseudo-terminal of
    `columns` columns, with TERM=`term` (a terminal that redraws, unless told)."""
    leader, follower = _pty(columns)
    try:
        proc = subprocess.Popen(argv, stdin=follower, stdout=follower, stderr=follower,
                                env=dict(os.environ, TERM=term))
    finally:
        os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed its side
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    assert proc.wait(timeout=120) == 0, out
    return out.decode()


def test_live_bars_follows_the_stream(tmp_path, monkeypatch):
    """The one rule of every bar: live on a terminal and in a notebook kernel; lines on a
    file, a pipe, a closed stream, and on a terminal of 0 columns or 0 rows (where tqdm drew
    nothing)."""
    monkeypatch.setenv("TERM", "xterm-256color")
    with open(tmp_path / "log", "w") as f:
        assert not terminal.live_bars(f)
    assert not terminal.live_bars(f)  # closed
    read, write = os.pipe()
    with os.fdopen(read) as r, os.fdopen(write, "w") as w:
        assert not terminal.live_bars(w) and not terminal.live_bars(r)
    assert not terminal.live_bars(None) and not terminal.live_bars(io.StringIO())
    assert terminal.live_bars(_kernel_stream(io.StringIO()))
    # 0 rows: `stty cols 120` on a new pty (script -c), where tqdm drew nothing either
    for columns, rows, live in ((80, 24, True), (0, 24, False), (120, 0, False)):
        leader, follower = _pty(columns, rows)
        with os.fdopen(follower, "w") as stream:
            assert terminal.live_bars(stream) is live, (columns, rows)
        os.close(leader)


def test_a_dumb_terminal_gets_the_lines_a_file_gets(monkeypatch):
    """TERM=dumb (Emacs' shell-mode, some CI runners) or unknown: a terminal that cannot
    redraw got tqdm's carriage-return bar (each redraw a "^M" in Emacs); it now gets the
    plain lines of a file, as rich shows no live display there. A notebook kernel's stream
    stays live whatever TERM says; a terminal of another TERM, or none, stays live."""
    for term, live in (("dumb", False), ("DUMB", False), ("unknown", False),
                       ("xterm", True), ("", True)):
        monkeypatch.setenv("TERM", term)
        leader, follower = _pty(80)
        with os.fdopen(follower, "w") as stream:
            assert terminal.live_bars(stream) is live, term
        os.close(leader)
        assert terminal.live_bars(_kernel_stream(io.StringIO())), term

    dumb = _on_a_pty([sys.executable, "-c", BAR_SCRIPT], columns=100, term="dumb")
    assert "\r" not in dumb.replace("\r\n", "\n") and "|" not in dumb, dumb
    assert "work:   0% 0/5 [" in dumb and "work: 100% 5/5 [" in dumb, dumb


def test_a_bar_on_a_file_is_lines_at_most_one_per_interval_and_the_last(monkeypatch):
    """Where stderr is a file, a bar is plain lines (no carriage return, no cursor move, no
    meter): its first state, its last, and between them at most one per LINE_SECONDS
    however often it is updated, given a postfix or written through; notes stay on lines of
    their own. A leave=False bar keeps its last line; a delayed bar closed within its delay,
    and a bar not shown, write nothing."""
    out = io.StringIO()
    bar = terminal.progress_bar(range(50), desc="rank", unit="module", file=out)
    for i in bar:
        bar.set_postfix_str(f"m{i}")
        if i == 10:
            bar.write("a note", file=out)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue(), out.getvalue()
    assert len(lines) == 3 and lines[1] == "a note", lines
    assert lines[0].startswith("rank:   0% 0/50 [00:00<?"), lines
    assert lines[2].startswith("rank: 100% 50/50 [") and lines[2].endswith(", m49]"), lines

    monkeypatch.setattr(terminal, "LINE_SECONDS", 0.0)  # a line per state
    out = io.StringIO()
    bar = terminal.progress_bar(total=4, desc="read", unit="file", leave=False, file=out)
    for _ in range(4):
        bar.update(1)
    bar.close()
    lines = out.getvalue().splitlines()
    assert [line.split(" [")[0] for line in lines] == [
        f"read: {p:3d}% {n}/4" for n, p in enumerate((0, 25, 50, 75, 100))], lines

    out = io.StringIO()
    terminal.progress_bar(total=9, desc="download", delay=60, file=out).close()
    terminal.progress_bar(total=9, desc="quiet", shown=False, file=out).close()
    assert out.getvalue() == ""


def test_a_bar_on_a_file_writes_a_line_when_its_description_names_a_new_phase():
    """A new description names a new phase (zoo build's "pre-training M", "fine-tuning M"):
    it is written at once, within the interval; a postfix or count alone is not."""
    out = io.StringIO()
    bar = terminal.progress_bar(total=2, desc="zoo", unit="module", file=out)
    for name in ("g0", "e1"):
        bar.set_description(f"zoo: training {name}")
        bar.set_postfix_str("step 10/50")
        bar.update(1)
    bar.close()
    lines = [line.split(" [")[0] for line in out.getvalue().splitlines()]
    assert lines == ["zoo:   0% 0/2", "zoo: training g0:   0% 0/2", "zoo: training e1:  50% 1/2",
                     "zoo: training e1: 100% 2/2"], out.getvalue()  # the last: at close


def test_a_bar_stays_live_on_a_terminal_and_in_a_notebook_kernel():
    """On a pseudo-terminal the bar is redrawn in place (carriage returns, its meter), as
    before; a notebook kernel's stream, which says it is no terminal, gets the same live bar
    (its front end renders the redraws)."""
    argv = [sys.executable, "-c", BAR_SCRIPT]
    live = _on_a_pty(argv, columns=100)
    assert live.count("\r") > 5 and "|" in live and "work: 100%|" in live, live
    unsized = _on_a_pty(argv, columns=0)  # tqdm's live bar drew nothing at all there
    assert "work:   0% 0/5 [" in unsized and "work: 100% 5/5 [" in unsized, unsized
    assert "\r" not in unsized.replace("\r\n", "\n"), unsized

    buffer = io.StringIO()
    bar = terminal.progress_bar(total=3, desc="fit", file=_kernel_stream(buffer),
                                mininterval=0)
    for _ in range(3):
        bar.update(1)
    bar.close()
    assert buffer.getvalue().count("\r") >= 3 and "fit: 100%|" in buffer.getvalue(), buffer


#: A bar on a Jupyter kernel's stream, in a process that looks like a notebook's kernel to
#: tqdm (ipykernel.zmqshell imported, IPython's shell a ZMQInteractiveShell) but has no
#: ipywidgets; prints the warnings given and what the kernel's stream got.
KERNEL_SCRIPT = """
import io, sys, types, warnings
sys.modules["ipywidgets"] = None  # not installed: import fails
shell = type("ZMQInteractiveShell", (), {})()
sys.modules["IPython"] = types.SimpleNamespace(get_ipython=lambda: shell)
sys.modules["ipykernel.zmqshell"] = types.ModuleType("ipykernel.zmqshell")
buffer = io.StringIO()
stream = type("OutStream", (), {"__module__": "ipykernel.iostream",
                                "isatty": lambda self: False, "write": lambda self, s:
                                buffer.write(s), "flush": lambda self: None})()
from hubensemble.terminal import progress_bar
with warnings.catch_warnings(record=True) as given:
    warnings.simplefilter("always")
    for _ in range(2):
        bar = progress_bar(total=3, desc="fit", file=stream, mininterval=0)
        bar.update(3)
        bar.close()
print([str(w.message) for w in given])
print(repr(buffer.getvalue()))
"""


def test_a_notebook_kernel_without_ipywidgets_gets_the_text_bar_and_no_warning():
    """A Jupyter kernel without ipywidgets: tqdm.auto warned "IProgress not found. Please
    update jupyter and ipywidgets" at the first bar, then drew its text bar. progress_bar
    decides the bar itself: the text bar, live (redrawn), with no warning."""
    out = subprocess.run([sys.executable, "-c", KERNEL_SCRIPT], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    given, drawn = out.stdout.splitlines()
    assert given == "[]", out.stdout
    assert drawn.count("\\r") >= 2 and "fit: 100%|" in drawn, out.stdout


def test_rank_with_stderr_to_a_file_writes_progress_lines_not_bar_redraws(tmp_path,
                                                                          module_factory):
    """`hubensemble rank … 2>log` left 5 carriage-return-joined bar states on one line of
    `log` (a CI log, `nohup`, `| tee`, a Slurm .err file got the same). The log now has the
    bar's first and last states as lines of their own, with what, k/n and elapsed (the last
    module's note went as it ended). RUN/log.txt has no bar state, as before."""
    cat = tmp_path / "c.yaml"
    cat.write_text(f"modules:\n  - {{name: tiny-a, handle: {module_factory('a', seed=1)}}}\n"
                   f"  - {{name: tiny-b, handle: {module_factory('b', seed=2)}}}\n")
    run = tmp_path / "run"
    err = tmp_path / "err.log"
    with open(err, "w") as f:
        out = subprocess.run([sys.executable, "-m", "hubensemble", "rank", "--catalogue",
                              str(cat), "--data", "sklearn:digits", "--out", str(run),
                              "--profile", "quick"],
                             stdout=subprocess.PIPE, stderr=f, text=True, timeout=300,
                             env=dict(os.environ,
                                      HUBENSEMBLE_CACHE_DIR=str(tmp_path / "cache")))
    raw = err.read_bytes()  # not read_text: its universal newlines read "\r" as "\n"
    text = raw.decode()
    assert out.returncode == 0, text
    assert b"\r" not in raw and b"\x1b" not in raw, raw
    bars = [line for line in text.splitlines() if line.startswith("rank:")]
    assert len(bars) == 2, text
    assert bars[0].startswith("rank:   0% 0/2 [00:00<?"), text
    assert bars[1].startswith("rank: 100% 2/2 [") and "tiny-" not in bars[1], text
    log_text = (run / "log.txt").read_bytes()
    assert b"\r" not in log_text and b"0/2 [" not in log_text and b"2/2 [" not in log_text


def test_tqdm_mininterval_in_the_environment_sets_the_interval_of_the_lines(tmp_path):
    """tqdm's own setting, TQDM_MININTERVAL (seconds), replaces LINE_SECONDS: 0 writes a
    line for every state of a bar on a file."""
    err = tmp_path / "err.log"
    with open(err, "w") as f:
        out = subprocess.run([sys.executable, "-c", BAR_SCRIPT], stderr=f, timeout=120,
                             env=dict(os.environ, TQDM_MININTERVAL="0"))
    raw = err.read_bytes()
    assert out.returncode == 0 and b"\r" not in raw, raw
    starts = {line.split(" [")[0] for line in raw.decode().splitlines()
              if line.startswith("work:")}
    assert {f"work: {20 * n:3d}% {n}/5" for n in range(6)} <= starts, raw


def test_tqdm_mininterval_set_after_tqdm_was_imported_still_sets_a_line_bars_interval(
        monkeypatch):
    """tqdm reads TQDM_MININTERVAL once, as it is imported: set later (a notebook's cell, a
    test), a line bar took tqdm's 0.1 s. progress_bar reads it at each bar; unset or not a
    number: LINE_SECONDS."""
    import tqdm  # noqa: F401 (imported before the variable is set)

    for value, seconds in (("3600", 3600.0), ("0", 0.0), ("soon", terminal.LINE_SECONDS)):
        monkeypatch.setenv("TQDM_MININTERVAL", value)
        assert terminal.progress_bar(total=1, file=io.StringIO()).mininterval == seconds
    monkeypatch.delenv("TQDM_MININTERVAL")
    assert terminal.progress_bar(total=1, file=io.StringIO()).mininterval == terminal.LINE_SECONDS


def test_a_note_inside_a_long_unit_draws_at_most_once_per_interval():
    """`bar_note`, said at every batch of a long unit: a file gets a line with the note at
    most every interval (here 0: each), a live bar redraws at most every `mininterval` (tqdm's
    set_postfix_str redrew at every call), a bar not shown and None get nothing."""
    out = io.StringIO()
    bar = terminal.progress_bar(total=2, desc="rank", unit="module", file=out, mininterval=0)
    note = terminal.counting_note(bar, "m1", "images")
    for done in (64, 128, 1200):
        note(done, 3000)
    bar.close()
    lines = out.getvalue().splitlines()
    assert [line.rsplit(", ", 1)[-1] for line in lines[1:]] == [
        "m1: 64/3,000 images]", "m1: 128/3,000 images]", "m1: 1,200/3,000 images]"], lines
    assert all(" 0/2 [" in line for line in lines), lines

    buffer = io.StringIO()
    bar = terminal.progress_bar(total=2, desc="tune", file=_kernel_stream(buffer),
                                mininterval=3600)
    drawn = buffer.getvalue().count("\r")
    for step in range(100):
        terminal.bar_note(bar, f"step {step}/100")
    assert buffer.getvalue().count("\r") == drawn + 1 and "step 0/100" in buffer.getvalue()
    terminal.bar_note(bar, "loading the module", at_once=True)  # a phase: drawn now
    assert buffer.getvalue().count("\r") == drawn + 2 and "loading the module" in buffer.getvalue()
    bar.close()

    out = io.StringIO()
    bar = terminal.progress_bar(total=2, desc="quiet", shown=False, file=out)
    terminal.bar_note(bar, "step 1/5")
    terminal.bar_note(None, "step 1/5")
    bar.close()
    assert out.getvalue() == ""


def test_rank_says_the_images_embedded_inside_a_module(tmp_path, module_factory):
    """`rank 2>log` said nothing while a module embedded (minutes for a 224 px module over a
    few thousand images): with TQDM_MININTERVAL=0 its lines count the module's images
    before the module ends (the bar still at 0/1)."""
    cat = tmp_path / "c.yaml"
    cat.write_text(f"modules:\n  - {{name: tiny-a, handle: {module_factory('a', seed=1)}}}\n")
    err = tmp_path / "err.log"
    with open(err, "w") as f:
        out = subprocess.run([sys.executable, "-m", "hubensemble", "rank", "--catalogue",
                              str(cat), "--data", "sklearn:digits", "--out",
                              str(tmp_path / "run"), "--profile", "quick", "--batch-size",
                              "256"], stdout=subprocess.PIPE, stderr=f, text=True,
                             timeout=300, env=dict(os.environ, TQDM_MININTERVAL="0",
                                                   HUBENSEMBLE_CACHE_DIR=str(tmp_path / "c")))
    text = err.read_text()
    assert out.returncode == 0, text
    inside = [line for line in text.splitlines()
              if line.startswith("rank:   0% 0/1 [") and " images]" in line]
    counts = [line.rsplit("tiny-a: ", 1)[1].split(" images]")[0] for line in inside]
    done = [int(c.split("/")[0].replace(",", "")) for c in counts]
    assert len(done) >= 3 and done[0] == 256 and done == sorted(done), text
    assert counts[-1].split("/")[0] == counts[-1].split("/")[1], text  # every image


def test_ranks_bar_drops_a_modules_note_when_the_module_ends(tmp_path, module_factory,
                                                             in_process, monkeypatch):
    """rank's bar kept the last module's note at its end (`rank: 100% 2/2 [..., tiny-b:
    miss]`), where tune's drops a trial's note as the trial ends: the note is cleared as
    each module ends, so a line at a module's count names no module that is done."""
    cat = tmp_path / "c.yaml"
    cat.write_text("modules:\n" + "".join(
        f"  - {{name: tiny-{n}, handle: {module_factory(n, seed=i)}}}\n"
        for i, n in enumerate("ab")))
    monkeypatch.setenv("TQDM_MININTERVAL", "0")  # a line per draw (read at each bar)
    monkeypatch.setenv("HUBENSEMBLE_CACHE_DIR", str(tmp_path / "cache"))
    code, out, err = in_process("rank", "--catalogue", cat, "--data", "sklearn:digits",
                                "--out", tmp_path / "run", "--profile", "quick")
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("rank: ")]
    assert any("tiny-a: " in line for line in lines), err  # the notes were there
    for done in (1, 2):  # every line at a module's end count names no module
        at = [line for line in lines if f" {done}/2 [" in line]
        assert at and not any("tiny-" in line for line in at[:1]), lines
    assert re.match(r"^rank: 100% 2/2 \[[^,\]]*, *[0-9.?]+(module/s|s/module)\]$",
                    lines[-1]), lines


def test_a_download_bar_gives_the_recent_speed_and_a_trial_bar_the_mean(capsys):
    """The mean-rate time left (ETA_SMOOTHING) applied to every bar, so a download that
    slowed after a fast start showed the mean since it began: 10 MiB at one per 40 s, then 10
    at one per 400 s said ~36 min left for the last 10 MiB, not the ~67 the last speed needs.
    A bar of bytes follows the recent speed (BYTE_SMOOTHING); a bar of trials keeps the mean."""
    def seconds(text):
        parts = [int(p) for p in text.split(":")]
        return sum(p * 60 ** i for i, p in enumerate(reversed(parts)))

    def run(bar, chunk):
        clock = [0.0]
        bar._time = lambda: clock[0]
        bar.start_t = bar.last_print_t = 0.0
        for gap in [40.0] * 10 + [400.0] * 10:
            clock[0] += gap
            bar.update(chunk)
        left = seconds(re.search(r"<([^,\]]+)", str(bar)).group(1))
        bar.close()
        return left

    mib = 1024 * 1024
    with terminal.library_progress(True):
        left = run(terminal.download_bar("https://example.org/m.tar.gz", total=30 * mib), mib)
    assert left >= 0.9 * 10 * 400, left  # the last speed: 400 s per MiB
    trials = terminal.progress_bar(total=30, desc="tune", unit="trial", file=io.StringIO())
    assert run(trials, 1) == round(10 * 4400 / 20)  # the mean: 220 s per trial
    capsys.readouterr()


def test_a_bars_time_left_grows_while_a_long_unit_runs_and_is_unknown_before_one():
    """tune's bar said 01:19 left for the 7 minutes a VGG probe embedded: tqdm's moving-average
    rate changes only at an update, and the embedding's notes redrew the bar without one.
    The time left is the units left x the mean time per unit so far, to the redraw's moment
    (a fake clock, tqdm's own `_time`); before the first unit it is "?"."""
    clock = [0.0]
    out = io.StringIO()
    bar = terminal.progress_bar(total=10, desc="tune probe", unit="trial", file=out,
                                mininterval=0)
    bar._time = lambda: clock[0]
    bar.start_t = bar.last_print_t = 0.0

    def left():
        return re.search(r"<([^,\]]+)", str(bar)).group(1)

    clock[0] = 30.0
    bar.set_postfix_str("m1 train: 100/3,000 images")
    assert left() == "?"  # no trial done: nothing to estimate from
    clock[0] = 60.0
    bar.update(1)
    assert left() == "09:00"  # 9 trials left x 60 s
    clock[0] = 60.0 + 7 * 60  # a long embedding: notes, no trial ends
    bar.set_postfix_str("vgg16 train: 1,200/3,000 images")
    assert left() == "1:12:00", str(bar)  # 9 x 480 s: it grew, not 09:00 still
    bar.close()


def test_text_reaches_a_stream_that_cannot_encode_it_readable():
    """`text.readable`: hubensemble's typographic characters become ASCII stand-ins, any other
    character (a letter of a name, a file name's byte that is not UTF-8) its escape."""
    from hubensemble.text import readable

    said = "10 classes (0, 1, …); 3×3 – a → b ≥ 2 · café 猫 x\udce9"
    assert said.encode("ascii", readable()) == (
        b"10 classes (0, 1, ...); 3x3 - a -> b >= 2 . caf\\xe9 \\u732b x\\xe9")
    assert said.encode("latin-1", readable()).decode("latin-1") == (
        "10 classes (0, 1, ...); 3×3 - a -> b >= 2 · café \\u732b x\\xe9")  # what it has stays


def test_a_command_writes_on_an_ascii_or_latin1_stream_without_a_traceback(tmp_path):
    """A new-user check: with PYTHONIOENCODING=ascii (or latin-1, a C locale with
    PYTHONUTF8=0) Python's stdout is strict, and `catalogue validate` of a file named
    'caté→.yaml' (as `predict` of 'café.png') stopped with a UnicodeEncodeError traceback
    after its work. Now the `hubensemble` process writes '→' as '->' and 'é' as '\\xe9'
    where the stream has no such character (`stdio.readable_streams`); on stderr too ("…",
    not "\\u2026"). An error handler the user chose that never fails is kept."""
    catalogue = tmp_path / "caté→.yaml"
    catalogue.write_text(f"modules:\n  - {{name: a, handle: {tmp_path}}}\n", encoding="utf-8")
    missing = tmp_path / "gone…→.yaml"

    def run(encoding, *files):
        env = dict(os.environ, PYTHONIOENCODING=encoding)
        out = subprocess.run([sys.executable, "-m", "hubensemble", "catalogue", "validate",
                              *map(str, files)], capture_output=True, env=env, timeout=300)
        return out.returncode, out.stdout, out.stderr

    code, out, err = run("ascii", catalogue)
    assert b"Traceback" not in err and code == 1, err  # rank would skip its handle
    # (its handle, a folder that is no module, is warned of: 5757511 counts the warning)
    verdict = ".yaml: valid; rank would skip 1 here (1 module, 1 warning)"  # exit 1: not "ok"
    assert f"{tmp_path}/cat\\xe9->{verdict}".encode() in out, out
    code, out, err = run("latin-1", catalogue, missing)
    assert b"Traceback" not in err and code == 1, err
    assert f"{tmp_path}/caté->{verdict}".encode("latin-1") in out, out
    assert f"{tmp_path}/gone...->.yaml".encode() in err, err
    code, out, err = run("ascii:replace", catalogue)  # the user's choice
    assert code == 1 and f"{tmp_path}/cat??{verdict}".encode() in out, out  # its handle


def test_advice_on_an_ascii_stream_pasted_into_bash_names_the_folder(tmp_path):
    """A new-user check: under PYTHONIOENCODING=ascii, `ensemble --run 'runs/café s'` advised
    "`hubensemble fit … --out '/…/runs/caf\\xe9 s'`": the stream's stand-in for 'é' inside
    the shell quotes, which bash reads as another folder; Latin-1's 'é' (0xe9) too. A command
    of advice now gives the name's bytes in $'…' (`text.readable`, `text.commands_as_named`),
    the prose as before; on a UTF-8 stream the name stays as it is."""
    folder = tmp_path / "runs" / "café s"
    folder.mkdir(parents=True)
    for encoding in ("ascii", "latin-1", "utf-8"):
        out = subprocess.run([sys.executable, "-m", "hubensemble", "ensemble", "--run",
                              "runs/café s"], capture_output=True, cwd=tmp_path, timeout=300,
                             env=dict(os.environ, PYTHONIOENCODING=encoding))
        err = out.stderr.decode(encoding)
        assert out.returncode != 0 and "Traceback" not in err, err
        word = re.search(r"--out (.+?)` first", err)
        assert word, err
        listed = subprocess.run(["bash", "-c", f"ls -d {word.group(1)}"], capture_output=True,
                                cwd="/", timeout=60)
        assert listed.stdout == os.fsencode(folder) + b"\n", (encoding, err)
        if encoding == "utf-8":
            assert f"--out '{folder}'" in err, err
        prose = "runs/caf\\xe9 s" if encoding == "ascii" else "runs/café s"
        assert f"{prose} is not a hubensemble run" in err, err  # prose: as before


def test_a_name_in_each_quoting_of_a_command_of_advice_reaches_bash_as_its_bytes(tmp_path):
    """`text.readable` inside "`hubensemble …`": unquoted, in '…', in "…" and in $'…' (a
    name with a newline, `text.shell_word`), each name written on an ASCII stream gives
    back the very folder to bash; outside backticks, and in a Python snippet, 'é' is
    '\\xe9' as before."""
    from hubensemble.text import readable, shell_word

    names = ["café", "café s", "a\nb→é"]
    for name in names:
        (tmp_path / name).mkdir()
    words = [shell_word(tmp_path / names[0]), shell_word(tmp_path / names[1]),
             f'"{tmp_path}/café s"', shell_word(tmp_path / names[2])]
    said = " ".join(f"`hubensemble fit … --out {w}`" for w in words[:3]) + (
        f" `cp -r --out {words[3]} COPY` café `x = 'é'`")  # (cp: "--out" to find the word)
    written = said.encode("ascii", readable()).decode("ascii")
    pasted = re.findall(r"--out (.+?)(?: COPY)?`", written)
    assert written.endswith(" caf\\xe9 `x = '\\xe9'`") and "fit ... --out" in written, written
    for word, name in zip(pasted, names[:2] + names[1:]):
        listed = subprocess.run(["bash", "-c", f"ls -d {word}"], capture_output=True, timeout=60)
        assert listed.stdout == os.fsencode(tmp_path / name) + b"\n", (word, listed)


def test_a_legacy_catalogues_character_is_named_on_an_ascii_stream(tmp_path):
    """A new-user check: the refusal of a Windows-1252 catalogue said "(in Windows-1252,
    '\\xf6': …" under PYTHONIOENCODING=ascii, which does not say which character it is; it
    now gives its Unicode name too (`text.file_text`)."""
    legacy = tmp_path / "legacy.yaml"
    legacy.write_bytes("modules:\n  - name: a  # Größe\n    handle: ./m\n".encode("cp1252"))
    out = subprocess.run([sys.executable, "-m", "hubensemble", "catalogue", "validate",
                          str(legacy)], capture_output=True, timeout=300,
                         env=dict(os.environ, PYTHONIOENCODING="ascii"))
    assert out.returncode == 1 and b"Traceback" not in out.stderr, out.stderr
    assert (b"column 18: byte 0xf6 is not UTF-8 (in Windows-1252, '\\xf6', LATIN SMALL LETTER O "
            b"WITH DIAERESIS: the file was saved") in out.stderr, out.stderr


def test_a_shell_word_gives_bash_the_name_under_any_locale(tmp_path):
    """`text.shell_word` gave a character that shows as nothing as bash's \\uXXXX in $'…'
    ($'cat\\ufe0f.png'), which bash turns into bytes by its own locale: under LC_ALL=C it
    gave back the six characters "\\uFE0F", another name. Each non-ASCII character in $'…'
    is now the name's bytes, \\xHH: bash under the C locale and under UTF-8 reads the very
    name back, with and without a stream encoding."""
    from hubensemble.text import shell_word

    names = ["cat\ufe0f.png", "a\u202eb \u2192.png", "new\nl\u00e9.png", "a\u00adb\u200b.png",
             "x\U000e0001y.png"]
    words = [shell_word(tmp_path / n, e) for n in names for e in (None, "ascii", "utf-8")]
    expected = [os.fsencode(tmp_path / n) for n in names for _ in range(3)]
    for locale in ("C", "C.UTF-8"):
        said = subprocess.run(["bash", "-c", "printf '%s\\0' " + " ".join(words)],
                              capture_output=True, check=True, timeout=60,
                              env=dict(os.environ, LC_ALL=locale)).stdout.split(b"\0")[:-1]
        assert said == expected, (locale, words)


def test_a_chiefs_bar_polled_every_second_redraws_at_most_once_per_interval(tmp_path):
    """A chief/worker sweep's chief polls its bar every second (serve_oracle's on_poll:
    `FineTuneTuner._refresh_progress`), which called tqdm's refresh() each time: a live bar
    redrew every second whatever its interval (as the zoo build's bar did). It
    keeps the interval now, and the note beside the count."""
    import io
    import types

    from hubensemble.terminal import progress_bar
    from hubensemble.tune.tuner import FineTuneTuner

    buffer = io.StringIO()
    bar = progress_bar(total=2, desc="tune", file=_kernel_stream(buffer), mininterval=3600)
    bar.set_postfix_str("trial 1/2 m: step 3/10", refresh=False)
    chief = types.SimpleNamespace(progress=bar, run_dir=types.SimpleNamespace(
        candidates=tmp_path / "candidates"), plan=[types.SimpleNamespace(trial_id="t1")])
    drawn = buffer.getvalue().count("\r")
    for _ in range(5):  # five polls, no trial ended: one draw at most (the first)
        FineTuneTuner._refresh_progress(chief)
    assert buffer.getvalue().count("\r") <= drawn + 1, buffer.getvalue()
    assert bar.n == 0 and bar.postfix == "trial 1/2 m: step 3/10"
    bar.close()


def test_tunes_time_left_follows_the_steps_left_not_the_trials_left():
    """tune's bar took its time left from the trials' mean: after a 40-step trial of 195 s it
    said 03:46 for the next of 200 steps, and a resumed sweep (its first trial reused) said
    "?" for 8 minutes. With a `StepClock` it is the steps left x the measured seconds per
    step (a fake clock read: `now`), "?" before the first step; read from tqdm's own
    format_dict / format_meter. Fails before: progress_bar took no clock."""
    from tqdm import tqdm

    from hubensemble.stepclock import StepClock

    now = [0.0]
    clock = StepClock(2 + 10, now=lambda: now[0])  # two trials: 2 steps, then 10
    bar = terminal.progress_bar(total=2, desc="tune default", unit="trial", file=io.StringIO(),
                                clock=clock)

    def left():
        return re.search(r"<([^,\]]+)", tqdm.format_meter(**bar.format_dict)).group(1)

    assert left() == "?"
    clock.begin(2)
    for _ in range(2):
        now[0] += 1.5
        clock.step()
    clock.end()
    bar.update(1)
    assert left() == tqdm.format_interval(10 * 1.5)  # 10 steps left x 1.5 s, not 1 trial's 3 s
    clock.begin(10)
    for _ in range(4):
        now[0] += 1.5
        clock.step()
    assert left() == tqdm.format_interval(6 * 1.5)
    for _ in range(6):  # its steps done, the trial predicts: a second at least, not "1000
        now[0] += 1.5   # trial/s" and 00:00 while it is still running
        clock.step()
    assert left() == tqdm.format_interval(1) and "1000" not in str(bar), str(bar)
    bar.close()
    # Resumed: its first trial reused (initial 1), no step of this process timed yet.
    resumed = StepClock(10, now=lambda: now[0])
    bar = terminal.progress_bar(total=2, initial=1, unit="trial", file=io.StringIO(),
                                clock=resumed)
    assert left() == "?"
    resumed.begin(10)
    for _ in range(3):
        now[0] += 2.0
        resumed.step()
    assert left() == tqdm.format_interval(7 * 2.0)
    bar.close()


def test_tunes_time_left_counts_the_time_between_one_trials_steps_and_the_next():
    """The steps alone ran 3-5x short (a new user's check: "25% 2/8 [00:02<00:01]" where the
    rest took 5 s; a trial's 0.85 s held 0.2 s of steps, and a real test split takes
    minutes to predict): each trial left also costs the measured time between one trial's
    last step and the next one's first (predicting, writing, loading the next module). And
    a stop in that time said nothing of the trial, whose steps are all lost: it says them
    now, until the trial has ended (`stepclock.trial_ended`). A fake clock read. Fails
    before: 2 s left where 8 s are (and no words of the trial that predicts)."""
    from tqdm import tqdm

    from hubensemble.stepclock import StepClock, running_loss, trial_ended

    now = [0.0]
    clock = StepClock(4 + 4, now=lambda: now[0])
    bar = terminal.progress_bar(total=2, desc="tune default", unit="trial", file=io.StringIO(),
                                clock=clock)

    def left():
        return re.search(r"<([^,\]]+)", tqdm.format_meter(**bar.format_dict)).group(1)

    clock.begin(4)
    for _ in range(4):
        now[0] += 0.5
        clock.step()
    clock.end()  # its steps done: it predicts its val and test splits
    assert running_loss() == "the running trial, its 4 steps done, restarts from its start"
    assert running_loss() is None  # said once
    now[0] += 6.0  # predicting, writing, loading the next module
    trial_ended()
    bar.update(1)
    clock.begin(4)
    assert left() == tqdm.format_interval(4 * 0.5 + 1 * 6.0), str(bar)
    now[0] += 0.5
    clock.step()
    assert left() == tqdm.format_interval(3 * 0.5 + 1 * 6.0), str(bar)
    clock.end()
    trial_ended()  # written: a stop now loses nothing of it
    assert running_loss() is None
    clock.close()
    bar.close()


def test_a_trials_keras_steps_reach_the_sweeps_clock_through_every_copy():
    """tune's callback (`tune.search._StepsOnClock`) counts a trial's steps on the sweep's
    clock from Keras' own hooks, through the deep copy each trial gets
    (`tune.tuner.trial_callbacks`); a trial that ends early no longer counts its unrun steps.
    A tiny real Keras fit: 2 chunks of 3 steps. Fails before: no such callback."""
    import copy

    import keras
    import numpy as np

    from hubensemble.stepclock import StepClock
    from hubensemble.tune.search import _StepsOnClock

    clock = StepClock(6 + 8)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.zeros((12, 4), "float32"), np.zeros((12, 2), "float32")
    model.fit(x, y, batch_size=2, epochs=2, steps_per_epoch=3, verbose=0,
              callbacks=copy.deepcopy([_StepsOnClock(clock)]))
    assert (clock.left, clock.timed) == (8, 6)
    stop = keras.callbacks.Callback()
    stop.on_train_batch_end = lambda batch, logs=None: setattr(model, "stop_training", True)
    model.fit(x, y, batch_size=2, epochs=4, steps_per_epoch=2, verbose=0,
              callbacks=[copy.deepcopy(_StepsOnClock(clock)), stop])
    assert (clock.left, clock.timed) == (0, 7)  # 1 step run, its 7 others not waited for


def test_a_stop_during_a_trial_says_the_steps_the_trial_loses(capsys):
    """"interrupted; run the same command again to resume" did not say that the running
    trial starts again from step 0 (docs/tune.md). A tiny real Keras fit with tune's step
    callback, stopped by a KeyboardInterrupt after its 3rd step (as Ctrl-C / SIGTERM come
    out of a trial's training): the stop's line names the step it was at and its planned
    steps, once; SIGTERM's line alike. Fails before: the line ended at "to resume"."""
    from types import SimpleNamespace

    import keras
    import numpy as np
    import pytest

    from hubensemble.errors import Terminated
    from hubensemble.exits import stopped_code
    from hubensemble.stepclock import StepClock
    from hubensemble.tune.search import _StepsOnClock

    class StopAt3(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 2:
                raise KeyboardInterrupt

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.zeros((40, 4), "float32"), np.zeros((40, 2), "float32")
    for stop, code in ((KeyboardInterrupt(), 130), (Terminated(), 143)):
        clock = StepClock(20)
        with pytest.raises(KeyboardInterrupt):
            model.fit(x, y, batch_size=2, epochs=1, steps_per_epoch=20, verbose=0,
                      callbacks=[_StepsOnClock(clock), StopAt3()])
        capsys.readouterr()
        assert stopped_code(SimpleNamespace(), stop) == code
        assert capsys.readouterr().err.rstrip("\n").endswith(
            "; run the same command again to resume (the running trial, at step 3/20, "
            "restarts from its start)")
        assert stopped_code(SimpleNamespace(), stop) == code  # said once
        assert capsys.readouterr().err.rstrip("\n").endswith("again to resume")


def test_a_chiefs_bar_keeps_the_trials_mean_time_and_a_workers_takes_its_steps(tmp_path):
    """A chief/worker sweep's chief runs no step: a bar on its `StepClock` said "?" for the
    whole sweep. The chief's bar keeps tqdm's mean time per trial (its workers' trials
    counted as they end: `FineTuneTuner._refresh_progress`), a worker's bar its clock's.
    Fails before: no `sweep_bar`; the chief's bar had the clock."""
    from types import SimpleNamespace

    from tqdm import tqdm

    from hubensemble.tune.search import sweep_bar

    run = SimpleNamespace(candidates=tmp_path / "candidates")
    plan = [SimpleNamespace(trial_id=f"t{i}", hparams=SimpleNamespace(steps=10 * (i + 1)))
            for i in range(3)]
    for chief in (True, False):
        bar, clock = sweep_bar(run, plan, "default", chief=chief, progress=True)
        assert clock.left == 10 + 20 + 30 and bar.total == 3
        now = [0.0]
        bar._time = lambda: now[0]
        bar.start_t = bar.last_print_t = 0.0
        now[0] = 40.0
        bar.update(1)  # a trial ended (a worker's, for the chief), no step timed here
        shown = re.search(r"<([^,\]]+)", tqdm.format_meter(**bar.format_dict)).group(1)
        assert shown == (tqdm.format_interval(2 * 40.0) if chief else "?"), (chief, shown)
        bar.close()


def test_a_command_given_restart_is_told_to_resume_without_it(capsys):
    """A `tune … --restart` (or `fit … --restart`) stopped midway said "run the same command
    again to resume", which started over again, discarding what the stopped one had done (a
    new user's check): it says "without --restart". A command's own words (its parser's
    `interrupted`) and a command without the flag are as before; the machine's OSError
    alike. Fails before: "the same command again"."""
    import errno
    from types import SimpleNamespace

    from hubensemble.exits import stopped_code

    cases = ((SimpleNamespace(restart=True), KeyboardInterrupt(),
              "interrupted; run the same command without --restart to resume"),
             (SimpleNamespace(restart=False), KeyboardInterrupt(),
              "interrupted; run the same command again to resume"),
             (SimpleNamespace(restart=True, interrupted="its own words"), KeyboardInterrupt(),
              "interrupted; its own words"),
             (SimpleNamespace(restart=True), OSError(errno.ENOSPC, "No space left on device"),
              "free disk space, then run the same command without --restart to resume"))
    for args, stop, ending in cases:
        stopped_code(args, stop)
        assert capsys.readouterr().err.rstrip("\n").endswith(ending), (args, ending)
