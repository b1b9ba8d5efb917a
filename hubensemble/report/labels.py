"""The report's "Labels to check" section: the training images whose given label none of their
nearest training images carries in the best ranked modules' embeddings (or, for a knn.npz
written before rank kept neighbours, every module's 1-NN prediction contradicts:
`hubensemble.labelcheck`), worst first, with the label the modules suggest; then the
validation images whose given label the best tuned candidates all find unlikely
(`labelcheck.check_validation`)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from hubensemble import ensemble as ens
from hubensemble.errors import RunError
from hubensemble.labelcheck import (CSV_COLUMNS, LOW_PROBABILITY, MAJORITY, MIN_GIVEN_SHARE,
                                    SHOWN, LabelCheck, run_label_check, run_validation_check,
                                    write_labels_to_check)
from hubensemble.labelcheck import labels_to_check_file as to_check_path
from hubensemble.report.datarows import _folder_source, _short_path, isolated_block, rtl_isolated
from hubensemble.report.checks import note
from hubensemble.report.render import Code, Inline, Name, Section, Strong, Table
from hubensemble.rundir import Run
from hubensemble.text import absolute, escaped

TITLE = "Labels to check"

#: The label checks computed so far within `checks_kept` ({(kind, run folder): (check,
#: error)}), else None: each is computed once per call.
_KEPT: dict | None = None


@contextlib.contextmanager
def checks_kept():
    """Within it, each run's training and validation label checks (`run_label_check`,
    `run_validation_check`: the nearest-neighbour votes and the candidates' probabilities
    over every image) are computed once, and the section (`labels_section`) and the file
    (`write_list`) share them: `write_report` computed them twice (4.7 s of a 19 s report at
    1,000 classes). An error raised the first time is raised again. Nested: the outer one's."""
    global _KEPT
    outer = _KEPT
    _KEPT = {} if outer is None else outer
    try:
        yield
    finally:
        _KEPT = outer


def _kept(kind: str, run_dir, compute):
    """`compute()`, or within `checks_kept` its first result (or error) for `kind` and run
    `run_dir`."""
    if _KEPT is None:
        return compute()
    key = (kind, str(absolute(run_dir)))
    if key not in _KEPT:
        try:
            _KEPT[key] = (compute(), None)
        except Exception as e:  # noqa: BLE001 - raised again to each caller, as it was
            _KEPT[key] = (None, e)
    check, error = _KEPT[key]
    if error is not None:
        raise error
    return check


def labels_section(files) -> Section:
    """The section: of the training labels a table of up to labelcheck.SHOWN images (example:
    its file when RUN/labels/train_paths.json has them, else train[i]; given label, suggested
    label, the neighbours or modules agreeing), or a sentence saying why there is none (no
    ranking, another metric, too few modules, modules too weak to tell, no image to check);
    then the same of the validation labels (`_validation_part`)."""
    sec = Section(TITLE)
    _training_part(files, sec)
    _validation_part(files, sec)
    # A right-to-left path or name in its sentences (a run folder, a reason) isolated in
    # report.html, as the data rows' are (`datarows.isolated_block`).
    sec.blocks = [isolated_block(b) for b in sec.blocks]
    return sec


def _training_part(files, sec) -> Section:
    """The training labels' part of the section, added to `sec`."""
    if files.ranking is None:
        return sec.add(files.ranking_ref or files.ranking_note)
    try:
        check = _kept("train", files.path, lambda: run_label_check(files.path, files.ranking))
    except RunError as e:  # its commands as code spans, as the other sections' readers
        return sec.add(Inline("Not known: ", note(e)))
    if check.skipped:
        return sec.add(f"No list: {check.skipped}.")
    if not check.suspects and check.split:
        k = check.split
        return sec.add(f"None to check: {_mixed(check)}. No neighbour of {k} training "
                       f"image{'s' if k != 1 else ''} carries {'their' if k != 1 else 'its'} "
                       f"given label{'s' if k != 1 else ''}, but {'none' if k != 1 else 'it'}"
                       f" has {MAJORITY:.0%} or more of them on one other label.")
    if not check.suspects:
        return sec.add(f"Every training image's label is carried by {_voters(check)}: none "
                       "to check.")
    names = [str(n) for n in (files.task.get("class_names") or [])]

    def name(c):
        return Name(names[c]) if 0 <= c < len(names) else str(c)

    n = len(check.suspects)
    # One image: its sentence, not "for each"; the order and "each image" only for a list.
    lead = f"{n} training images: for each, " if n != 1 else "1 training image: "
    if check.neighbours:
        agree, why, k = "", "", check.split
        if check.mixed:  # only a majority on one other label is listed: say why
            agree = f" and {MAJORITY:.0%} or more of them carry one other label"
            why = f"{_mixed(check)}; {k} more image{'s' if k != 1 else ''} left out so; "
        rule = (f"none of its {check.neighbours} nearest training images in any of the "
                f"{check.modules} best ranked modules' embeddings (leave-one-out, as ranked) "
                f"carries its given label{agree} ({why}measured with the demo zoo on "
                "signdigits10 with 5 % of the training labels flipped: 23 of the 24 images "
                "listed so were flipped ones; ")
        order, col = ("Listed with the most neighbours agreeing on one other label first. ",
                      "neighbours")
    else:
        rule = (f"every one of the {check.modules} ranked modules predicts another label "
                "than the given one from its nearest training image (leave-one-out kNN, as "
                "ranked; this run's knn.npz predates the neighbours of each image that rank "
                "keeps now, and ranking again lists by them: 0.96 instead of 0.62 of the "
                "images listed were flipped ones on the demo's signdigits10 with 5 % flipped, ")
        order, col = "Listed with the most modules agreeing on one other label first. ", "modules"
    # The files, when the run recorded them (folder: data ranked since 2026-12-06), shown
    # as the data rows show a file: under the data's folder, relative to it.
    paths = Run(files.path).train_paths(len(ens.load_labels(files.path, "train")))
    src = _folder_source(files.task)
    where = _named_how(paths, src, n, "train[i]", "training",
                       f"hubensemble.labelcheck.training_image({str(files.path)!r}, i)", (
                           " gives its pixels (uint8 H×W×3; ",
                           Code("PIL.Image.fromarray(…).show()"), " shows it)."))
    sec.add(Inline(
        lead + rule, Code("hubensemble.labelcheck"),
        f"). {'Such an image' if n != 1 else 'It'} is mislabelled or hard to tell apart: look "
        "at it. ", order if n != 1 else "", *where))

    def example(i):
        return rtl_isolated(_short_path(paths[i], src)) if paths else f"train[{i}]"

    rows = [[example(s.index), name(s.given), name(s.suggested),
             f"{s.votes} of {s.modules * s.neighbours}"] for s in check.suspects[:SHOWN]]
    sec.add(Table(["example", "given label", "suggested label", f"{col} suggesting it"],
                  rows))
    # What `class_limited` kept out of the list (lone images, crowded classes): said here too,
    # not only when it leaves no list, in the check's own words.
    left_out = check.left_out(names)
    if left_out:
        sec.add(f"Left out of the list: {left_out}.")
    # The whole list, for a spreadsheet or a script: write_report writes it (`write_list`).
    them = "them all" if n > SHOWN else "them too" if n != 1 else "it too"
    sec.add(Inline(f"… and {n - SHOWN} more: " if n > SHOWN else "The file ",
                   Code(str(to_check_path(files.path))), f" lists {them} (CSV columns "
                   f"{', '.join(CSV_COLUMNS)}: ", Code("hubensemble.labelcheck."
                                                       "write_labels_to_check"),
                   " says what each holds)."))
    return sec


def _validation_part(files, sec) -> Section:
    """The validation labels' part of the section, added to `sec`: a table of up to SHOWN
    validation images (example: its file when RUN/labels/val_paths.json has them, else
    val[i]; given label, suggested label, the candidates agreeing) whose given label each
    of the best candidates of the best modules finds unlikely (`labelcheck.check_validation`
    of the report's candidates and RUN/labels/val.npy), or a sentence saying why there is
    none."""
    head = Strong("Validation labels.")
    if files.y_val is None or not files.candidates:
        return sec  # no validation split, or not tuned yet: the sections after say so
    try:
        check = _kept("val", files.path, lambda: run_validation_check(
            files.path, files.candidates, files.y_val))
    except ValueError as e:  # tables of different class counts: the pool keeps one count
        return sec.add(Inline(head, f" Not checked: {e}."))
    if check.skipped:
        return sec.add(Inline(head, f" No list: {check.skipped}."))
    who = (f"the best candidate of each of the {check.modules} modules of the lowest "
           "validation cross-entropy (")
    trials = Inline(*[q for i, t in enumerate(check.voters)
                      for q in ((", " if i else ""), Code(t))])
    if not check.suspects:
        return sec.add(Inline(head, " None to check: " + who, trials, ") gives every "
                              f"validation image's given label {LOW_PROBABILITY} or more, or "
                              "they do not agree on one other label."))
    names = [str(n) for n in (files.task.get("class_names") or [])]

    def name(c):
        return Name(names[c]) if 0 <= c < len(names) else str(c)

    n = len(check.suspects)
    lead = f" {n} validation images: for each, " if n != 1 else " 1 validation image: "
    # Named by their files as the training part names its images (val_paths.json: folder:
    # data of a run written since; else, or a stale list, val[i] and the way to its pixels).
    paths = Run(files.path).val_paths(len(files.y_val))
    src = _folder_source(files.task)
    where = _named_how(paths, src, n, "val[i]", "validation",
                       f"hubensemble.labelcheck.validation_image({str(files.path)!r}, i)",
                       (" gives its pixels.",))
    sec.add(Inline(
        head, lead, who, trials, f") gives its given label a probability below "
        f"{LOW_PROBABILITY}, and most of them predict one same other label (",
        Code("hubensemble.labelcheck.check_validation"), "; their weights were trained on "
        "the training images alone, so each such probability is out of sample). "
        f"{'Such an image' if n != 1 else 'It'} is mislabelled or hard to tell apart: look "
        "at it. A wrong validation label weighs on every choice made on validation (the "
        "ensemble's members and size are picked by validation cross-entropy, which one "
        "image given a probability near 0 moves by several hundredths on 200 images). "
        + ("Listed with the most candidates agreeing on one other label first. " if n != 1
           else ""), *where))

    def example(i):
        return rtl_isolated(_short_path(paths[i], src)) if paths else f"val[{i}]"

    rows = [[example(s.index), name(s.given), name(s.suggested),
             f"{s.votes} of {s.modules}"] for s in check.suspects[:SHOWN]]
    sec.add(Table(["example", "given label", "suggested label", "candidates suggesting it"],
                  rows))
    them = "them all" if n > SHOWN else "them too" if n != 1 else "it too"
    return sec.add(Inline(f"… and {n - SHOWN} more: " if n > SHOWN else "The file ",
                          Code(str(to_check_path(files.path))), f" lists {them} (its ",
                          Code("split"), " column ", Code("val"), ")."))


def _named_how(paths, src, n: int, index: str, words: str, call: str, pixels: tuple) -> tuple:
    """How a part names its `n` images (Inline items): by their files, relative to the
    data's folder `src` when there is one, when the run recorded them (`paths`: the split's
    files, or None); else as `index` ("train[i]", "val[i]"), the i-th `words` ("training",
    "validation") example of the run's data as it loaded, with `call`, the Python call that
    gives its pixels, and `pixels` (Inline items) after it. Data without files (sklearn:,
    npz:) has no file to open, and load_task(SPEC) at its default seed orders it otherwise
    than the run's --data-seed: the run's own call is given."""
    if paths:
        under = ", relative to the data's folder (as the Data section names files)"
        return (f"{'Each image' if n != 1 else 'It'} is named by its file"
                f"{under if src else ''}.",)
    return (Code(index), f" is the i-th {words} example of this run's data, as it loaded; "
            "from Python ", Code(call), *pixels)


def write_list(run_dir) -> Path | None:
    """Writes RUN/labels/to_check.csv, every image the section lists (not only its first
    SHOWN), training images and validation ones, with the class names of run.json and the
    files of RUN/labels/train_paths.json and val_paths.json
    (`labelcheck.write_labels_to_check`), and returns its path; None, and an earlier list's
    file removed, when there is no list of either (none, `skipped`, or a file the section
    names as damaged: a stale list must not stay beside a report that has none).
    `write_report` calls it under the run's lock, as it writes the figures. OSError naming
    the file when it cannot be written."""
    run = Run(run_dir)
    check = _check(run_dir) or LabelCheck([])
    val = _val_check(run_dir)
    names, paths, val_paths = [], None, None
    if check.suspects or (val and val.suspects):
        with contextlib.suppress(RunError):  # run.json the Data section names as damaged
            names = run.class_names() or []
    # The checked labels' files were read: their lengths name the paths.
    if check.suspects:
        paths = run.train_paths(len(ens.load_labels(run_dir, "train")))
    if val and val.suspects:
        val_paths = run.val_paths(len(ens.load_labels(run_dir, "val")))
    return write_labels_to_check(run_dir, check, names, paths, validation=val,
                                 val_paths=val_paths)


def _check(run_dir) -> LabelCheck | None:
    """run_label_check(run_dir), or None when its files are damaged: unreadable (RunError)
    or holding a value of an unexpected kind (a ranking.json score "abc": ValueError), which
    the section names (report.sections._guarded catches the same kinds). Outside the
    section, in the closing table and the file write_report writes, they raised."""
    try:
        return _kept("train", run_dir, lambda: run_label_check(run_dir))
    except (RunError, AttributeError, TypeError, KeyError, ValueError, IndexError):
        return None


def _val_check(run_dir) -> LabelCheck | None:
    """run_validation_check(run_dir), or None when RUN/labels/val.npy is unreadable
    (RunError) or the candidates' tables disagree (ValueError), which the report names."""
    try:
        return _kept("val", run_dir, lambda: run_validation_check(run_dir))
    except (RunError, ValueError):
        return None


def _mixed(check) -> str:
    """Why a majority is asked, in words: the given labels' mean share of the neighbours is
    below labelcheck.MIN_GIVEN_SHARE."""
    return (f"this run's neighbourhoods are mixed, the given label's mean share of each "
            f"image's neighbours being {check.given_share:.2f}, below {MIN_GIVEN_SHARE}, as "
            "where classes look alike, so an image whose neighbours split among other labels "
            "is more likely ambiguous than mislabelled")


def _voters(check) -> str:
    """Who votes, in words: "at least one of the 5 best ranked modules' 10 nearest training
    images" or "the leave-one-out kNN prediction of at least one of the 3 ranked modules"."""
    if check.neighbours:
        return (f"at least one of its {check.neighbours} nearest training images in the "
                f"{check.modules} best ranked modules' embeddings")
    return (f"the leave-one-out kNN prediction of at least one of the {check.modules} ranked "
            "modules")


def summary_line(run_dir) -> str | None:
    """fit's closing-table line when some training or validation labels look wrong ("note: 12
    training images' labels look wrong to the ranked modules and 2 validation images' to the
    tuned candidates: see the report's "Labels to check" and RUN/labels/to_check.csv", the
    file named when the report wrote it), else None (none, no list, or a file the report
    names as damaged)."""
    check = _check(run_dir)  # None: the report's section names the file
    n = len(check.suspects) if check else 0
    val = _val_check(run_dir)
    v = len(val.suspects) if val else 0
    if not n and not v:
        return None

    def whose(k, split):
        return f"{k} {split} " + ("image's" if k == 1 else "images'")

    def look(k):
        return "label looks wrong" if k == 1 else "labels look wrong"

    parts = []
    if n:
        parts.append(f"{whose(n, 'training')} {look(n)} to the ranked modules")
    if v:  # "… and 2 validation images' to the tuned candidates": the verb said once,
        # unless its number differs ("1 training image's label looks wrong … and 3 validation
        # images' labels look wrong …", not "… and 3 validation images' …")
        same = n and (n == 1) == (v == 1)
        parts.append(f"{whose(v, 'validation')} " + ("" if same else f"{look(v)} ")
                     + "to the tuned candidates")
    # The file the report wrote (fit writes the report first); named only when it is there,
    # absolute as the closing table's report and export (`write._where`).
    path = to_check_path(run_dir)
    listed = f" and {escaped(absolute(path))}" if path.is_file() else ""
    return (f"note: {' and '.join(parts)}: see the report's \"{TITLE}\"{listed}")
