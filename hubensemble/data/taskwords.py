"""The data summary's words: `Task.summary`'s paragraph, for people, on where a task came from,
its counts, classes and size, and the files skipped, shrunk, turned or copied (docs/data.md).

Split from data/task.py, which keeps the records and calls these: `task` is a `data.task.Task`
throughout, not imported here, so that the two modules make no import cycle."""

from __future__ import annotations

import contextvars

from hubensemble.data.names import SPLIT_NAMES, split_key
from hubensemble.data.sniff import MAX_SHORT_SIDE, by_reason, named_skips, skipped_count
from hubensemble.lockwords import option_word
from hubensemble.text import counted, names_shown, paths_shown

#: How many skipped files `Task.summary` names (with their reasons) before "and N more": a
#: log that names every skipped file names only the others after it (dataargs.log_skips).
SKIPS_NAMED = 3


def summary(task, *, skipped_in: str | None = None, scored: str | None = None) -> str:
    """`Task.summary`'s paragraph for `task` (its docstring says what each argument does);
    DataError for a `scored` naming no split `task` has."""
    key = None if scored is None else split_key(scored)
    shown = task.present_splits() if task.one_split else SPLIT_NAMES
    counts = ", ".join(f"{s} {len(getattr(task, s))}" if getattr(task, s) is not None
                       else f"no {s}" for s in shown)
    # A name holding a comma quotes them all (`text.names_shown`): "4 classes (four, the
    # "one", zero, …)" read as 5.
    names = (", ".join(names_shown(task.class_names)[:8])
             + (", …" if task.num_classes > 8 else ""))
    h, w = task.image_size
    size = f"{h}x{w}" if task.train.same_size else f"median {h}x{w} (sizes vary)"
    flags = []
    if task.synthetic:
        flags.append("synthetic (no colour augmentation)")
    if not task.flip:
        flags.append("no left/right flips")
    text = (f"Task {task.name!r} from {task.source}: {counts} examples; "
            f"{task.num_classes} classes ({names}); images {size}")
    if flags:
        text += "; " + ", ".join(flags)
    text += accounting(task, skipped_in, key)
    if key is not None:
        from hubensemble.data.coverage import scored_note
        text += "; " + scored_note(task.split(key).labels, key)
    else:
        text += class_notes(task)
    return text + "."


def skipped_detail(task, skipped_in: str | None = None) -> str:
    """The first SKIPS_NAMED skipped files with their reasons, then "and N more" and where the
    whole list is (`skipped_in`); "" when none was skipped. Files of one reason are named
    together with it said once (`sniff.named_skips`: "A, B: not a JPEG; C: …"): three
    files of a folder unreadable alike repeated the same words three times."""
    shown = named_skips(task.skipped[:SKIPS_NAMED])
    more = skipped_beyond(task.skipped)
    return shown + (more + (f", {skipped_in}" if skipped_in else "") if more else "")


def skipped_beyond(skipped) -> str:
    """"; and N more (K other reasons)" for the skipped files (a list of (path, reason)) past
    the first SKIPS_NAMED that `skipped_detail` and the report's "files read" row name; "" for
    SKIPS_NAMED or fewer. The reasons the first ones do not show are counted: 3 empty files
    after 40 unreadable alike were hidden in "and 60 more"."""
    if len(skipped) <= SKIPS_NAMED:
        return ""
    others = len(by_reason(skipped)) - len(by_reason(skipped[:SKIPS_NAMED]))
    return (f"; and {len(skipped) - SKIPS_NAMED} more"
            + (f" ({others} other reason{'s' if others > 1 else ''})" if others else ""))


def accounting(task, skipped_in: str | None = None, scored: str | None = None) -> str:
    """The summary's clauses on files, skips and duplicates (class coverage: `_class_notes`)."""
    text = ""
    # The skipped files are counted and named in one clause: the count said twice
    # ("6 skipped (unreadable), …; 6 file(s) skipped (…)").
    skips = skipped_count((r for _, r in task.skipped), skipped_detail(task, skipped_in))
    if task.files is not None:
        examples = sum(len(getattr(task, s)) for s in task.present_splits())
        text += (f"; {counted(task.files, 'file')} read: {counted(examples, 'example')}, "
                 f"{skips}, {counted(len(task.dropped), 'duplicate')} dropped")
    elif task.skipped:  # no file count (not a folder's load): the skips alone
        text += f"; files {skips}"
    ours = task.hubensemble_folders()
    hidden = [p for p in task.ignored if p not in ours]
    if hidden:  # each example quoted when it could read as two (`text.paths_shown`)
        text += (f"; {len(hidden)} hidden or system entr"
                 f"{'y' if len(hidden) == 1 else 'ies'} ignored (e.g. "
                 f"{paths_shown(hidden[:1])})")
    if ours:
        text += (f"; {counted(len(ours), 'folder')} hubensemble made (a run or an export) inside "
                 f"the data ignored, not read as classes (e.g. "
                 f"{paths_shown(ours[:1], then=': ')}: move them out)")
    if task.oriented:
        # Phone photos carry the tag; serving clients that honour it (browsers, image
        # pickers) send pixels the model never saw that way (docs/export.md).
        path, tag = task.oriented[0]
        text += (f"; {counted(len(task.oriented), 'image')} with an EXIF or XMP orientation "
                 "tag (e.g. "
                 f"{paths_shown([path], then=': ')}: {tag}) used as stored, not turned "
                 "upright, as serve_bytes reads them")
    if task.turned:
        # Pillow applies a TIFF's tag as it loads it, so these are upright (docs/data.md).
        path, tag = task.turned[0]
        text += (f"; {counted(len(task.turned), 'TIFF image')} turned upright by their orientation "
                 f"tag (e.g. {paths_shown([path], then=': ')}: {tag}), as Pillow reads "
                 "them and predict sends them")
    for note in file_notes(task):  # said here only (`said_unless_summarised`)
        text += f"; {note}"
    record = task._shrunk_record()
    if record["count"]:
        path, (h, w) = record["examples"][0]
        text += (f"; {counted(record['count'], 'image')} above {MAX_SHORT_SIDE} px on their "
                 f"shorter side shrunk to it ("
                 + ", ".join(f"{s} {n}" for s, n in record["splits"].items())
                 + f"; e.g. {paths_shown([path], then=': ')}: {h}x{w})")
    dup = task.duplicates
    if dup["copies"]:
        across = {k: v for k, v in dup["across"].items()  # of the scored split alone
                  if v and (scored is None or k.startswith(f"{scored}_"))}
        text += (f"; {counted(dup['copies'], 'exact duplicate')} in "
                 f"{counted(dup['groups'], 'group')} "
                 f"(e.g. {paths_shown(dup['examples'][0][:2], ' = ')})")
        if across:
            text += (": " + ", ".join(
                f"{counted(v, k.split('_in_')[0] + ' image')} with a copy in {k.split('_in_')[1]}"
                for k, v in across.items())
                     + (" — metrics there are partly measured on training images; "
                        f"{option_word('--dedupe', 'dedupe=True')} keeps one copy"
                        if scored is None else " — if the model was fit on this data, "
                        "these metrics are partly measured on images that trained or chose it"))
    if task.dropped:
        text += (f"; {option_word('--dedupe', 'dedupe')} dropped "
                 f"{counted(len(task.dropped), 'copy', 'copies')}")
    if dup["conflicting_labels"]:
        names, classes = zip(*dup["conflicting_examples"][0][:2])  # two (name, class)
        text += (f"; {counted(dup['conflicting_labels'], 'group')} of copies "
                 f"{'carries' if dup['conflicting_labels'] == 1 else 'carry'} different "
                 f"labels (e.g. {paths_shown(names, ' = ', notes=classes)})")
        if dup.get("conflicting_dropped"):
            text += (f"; --dedupe kept the first copy of {dup['conflicting_dropped']} "
                     f"of them, with its label")
    return text


def file_notes(task) -> list[str]:
    """The summary's notes on the images the kept decoder read, which serve_bytes refuses
    (`sniff.unservable_note` of `task.unservable`), and on the 16-bit files that decode dark
    (`filepixels.dark_note` of `task.dark`), and on the files of class folders that are no
    image, not read (`sniff.not_images_note` of `task.not_images`), those there are."""
    from hubensemble.data.filepixels import dark_note
    from hubensemble.data.sniff import not_images_note, unservable_note

    return [n for n in (unservable_note(task.unservable), dark_note(task.dark),
                        not_images_note(task.not_images)) if n]


#: True while a caller that says the skipped files itself loads (`specs.skips_said`): fit's and
#: the commands' data load (`DataArgs.load`), whose data summary warns of them once. Here, not
#: in specs.py, which imports this module (`said_unless_summarised` reads it).
SKIPS_SAID = contextvars.ContextVar("hubensemble_skips_said", default=False)


def said_unless_summarised(task, log) -> None:
    """Warns `file_notes(task)` on `log` when no data summary will say them: load_task warns
    its summary only when files were skipped, and a caller that says its own (fit, the
    commands: `specs.skips_said`) says them there. A folder of TIFFs loaded from Python
    said nothing of serve_bytes refusing them; a command said them twice (a new-user check)."""
    if task.skipped or SKIPS_SAID.get():
        return
    for note in file_notes(task):
        log.warning("%s", note)


def class_notes(task) -> str:
    """The summary's clauses (fit, rank) on classes a split has none or few examples of,
    in the words of the stages it feeds (`coverage.coverage_note`, `few_note`), or ""."""
    from hubensemble.data.coverage import (coverage_fix, coverage_note, few_note,
                                           split_coverage)

    text = ""
    coverage = task.coverage()
    if not task.one_split:  # evaluate's one split has no training examples to miss
        # A class kept with no training example (--min-per-class 0; once said nowhere).
        coverage["train"] = split_coverage(task.class_names, task.train.labels)
    for s in ("val", "test"):  # a class of 1-4 there: its figures mean little
        split = getattr(task, s)
        note = split is not None and few_note(task.class_names, split.labels, s)
        if note:
            text += f"; {note}"
    for s in ("train", "val", "test"):
        note = coverage_note(coverage, s)
        if note:
            text += f"; {note}"
    lacking = [s for s in ("val", "test") if coverage_note(coverage, s)]
    if lacking:
        scheme = (task.spec or "").split(":", 1)[0] or None
        text += f" ({coverage_fix(lacking, task.carved, scheme)})"
    return text
