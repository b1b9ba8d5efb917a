"""The report's rows on what became of a data load's files (the Data section, and the
Robustness section for data other than the run's): files read, hidden or system entries,
orientation tags, images serve_bytes refuses, dark 16-bit images, shrunk images, skipped
files, duplicates; and the cell formatting they share with the other sections."""

from __future__ import annotations

import os
import re

import numpy as np

from hubensemble.data.loading import _visible
from hubensemble.data.sniff import skipped_count
from hubensemble.report.render import Bullets, Details, Inline, Name, Table, right_to_left
from hubensemble.text import counted, names_shown, paths_shown

#: Longest failure reason shown in a table cell (the full text is in the failures section).
SHORT_REASON = 90
#: Longest file path shown in a cell: the tail is kept, so the file name always shows.
SHORT_PATH = 60


def short(text, limit=SHORT_REASON) -> str:
    """`text` (any object, str() of it) on one line, cut to `limit` characters with "…": a
    reason in a table cell (the whole text is in "What failed and why")."""
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _folder_source(task) -> str | None:
    """"PATH (how it was split)" from a folder: load's record (`Task.files_record`, whose
    "source" is "folder:PATH (how…)"), else None. PATH may itself hold " (": `_short_path`
    tells it by the paths under it."""
    source = str(task.get("source") or "")
    return source[len("folder:"):] if source.startswith("folder:") else None


def _short_path(path, source=None, limit=SHORT_PATH) -> str:
    """`path` as the data rows show an example, by one rule: under the data's folder (of
    `_folder_source`, which the rows' table names), relative to it ("cat/x.jpg",
    "train/cat/x.jpg"), then, still longer than `limit`, cut at the front ("…/cat/x.jpg":
    the file name is what identifies it). The report showed one row's example whole and
    the next's cut in the middle of the data folder's path, by their lengths."""
    path = str(path)
    if source:
        # The folder is the longest part of source before a " (" (or all of it) holding path.
        ends = [i for i in range(len(source)) if source.startswith(" (", i)] + [len(source)]
        under = [source[:i].rstrip("/" + os.sep) for i in ends]
        under = [d for d in under if d and path.startswith((d + "/", d + os.sep))]
        if under:
            path = path[len(max(under, key=len)) + 1:]
    return path if len(path) <= limit else "…" + path[-(limit - 1):]


def _shown(paths, root=None, joiner=", ", then="", notes=None) -> str:
    """Example `paths` as the rows show them: each as `_short_path` shows it, all quoted when
    one could be read as two (`text.paths_shown`: a comma, `joiner` or `then` in one), as
    the data summary quotes them, each followed by its note of `notes` (a class) outside
    its quotes; not escaped (Markdown, as `names_shown`)."""
    return paths_shown([_short_path(p, root) for p in paths], joiner, then, escape=False,
                       notes=notes)


def _example(entry, root=None) -> str:
    """A (path, reason) record as "path: reason", the path as `_shown` shows it, the
    reason cut at the end."""
    path, *reason = entry
    return _shown([path], root, then=": " if reason else "") + (
        f": {short(' '.join(map(str, reason)))}" if reason else "")


def _skips_named(skipped, root=None) -> str:
    """The "files read" row's skipped files (run.json's [[path, reason], …]) by the data
    summary's rule (`taskwords.skipped_detail`): the first SKIPS_NAMED named, each reason
    once after its files (`sniff.by_reason`), then "and N more" with the reasons those
    leave unsaid counted; paths as `_shown` shows them, reasons cut at the end; "" for none.
    The row said "e.g. corrupt.jpg: …" of 2 skipped files the summary named both of."""
    from hubensemble.data.sniff import by_reason
    from hubensemble.data.taskwords import SKIPS_NAMED, skipped_beyond

    pairs = [(str(e[0]), " ".join(map(str, e[1:]))) for e in skipped]
    return "; ".join(f"{_shown(paths, root, then=': ')}: {short(reason)}"
                     for reason, paths in by_reason(pairs[:SKIPS_NAMED]).items()) \
        + skipped_beyond(pairs)


def _conflict_example(dup, root=None) -> str:
    """" (e.g. a/x.png (cat) = b/x.png (dog))" for the duplicates' first group with different
    labels, each copy a [name, class] record, its path quoted alone when quoted ("'a/5,
    x.png' (cat)"); "" in a run.json written before those examples were recorded. A run.json
    of an older version holds each copy as one "name (class)" text: shown as it is, not
    cut at its last " (" (a class name may hold one)."""
    group = (dup.get("conflicting_examples") or [[]])[0][:2]
    if not group:
        return ""
    if all(isinstance(copy, str) for copy in group):  # an older run.json's "name (class)"
        return f" (e.g. {_shown(group, root, ' = ')})"
    names, classes = zip(*group)
    return f" (e.g. {_shown(names, root, ' = ', notes=classes)})"


def class_counts_row(class_names, labels) -> list | None:
    """The data section's "examples per class" row when some split's classes are unbalanced
    (`data.coverage.unbalanced`): ["examples per class (train / val / test)", "a: 96 / 24 /
    250, b: 5 / 1 / 250, …"], the splits that have labels, at most 20 classes ("…, (N in
    all)", each name as the classes row shows it: `text.names_shown`, all quoted when one
    holds a comma; ": " after each, so a numeric or spaced name, "1: 7 / 2 / 3", is told from
    its counts); None when every split is balanced. `labels`: {split: int [N] or None},
    in order. A long-tailed task's report named its classes and the split sizes only, so its
    validation-sized class of 1 image was seen nowhere before the per-class test table."""
    from hubensemble.data.coverage import unbalanced

    present = {s: np.asarray(y, np.int64) for s, y in labels.items() if y is not None}
    if not any(unbalanced(y) for y in present.values()):
        return None
    counts = {s: np.bincount(y, minlength=len(class_names)) for s, y in present.items()}
    # "ice, snow 5 / 1" read as two classes (names_shown quotes them all then), and "1 7 / 2"
    # or "a b c 8 / 2" as names and counts cut anywhere: a colon ends each name, and the
    # counts (digits and " / ") hold none, so the last ": " of an entry parts them.
    cells = [Inline(Name(name), ": " + " / ".join(str(c[i]) for c in counts.values()))
             for i, name in enumerate(names_shown(class_names)[:20])]
    more = f", … ({len(class_names)} in all)" if len(class_names) > 20 else ""
    return [f"examples per class ({' / '.join(counts)})",
            Inline(*[q for i, cell in enumerate(cells) for q in ((", ",) if i else ()) + (cell,)],
                   more)]


#: Whether a text holds right-to-left text (render's rule, which isolates code spans by it).
_right_to_left = right_to_left


def rtl_isolated(text: str) -> str | Inline:
    """`text` (a reason, a path, a name from the run's files, not known in advance) with each
    run of words holding right-to-left text (`_right_to_left`; the words joined by the spaces
    between them, so "ערב טוב/x.png" stays one) a Name, isolated in report.html (<bdi>), as
    `names_isolated` does for names it is given; a run's leading "(" and its trailing
    ",;:.)" stay outside ("cannot read /d/שלום/x.png: …" isolates the path alone). The
    plain text (str) when it holds none; str() of the result is `text`."""
    if not _right_to_left(text):
        return text
    parts, at, run = [], 0, None  # run: [start, end] of the current right-to-left words
    for m in re.finditer(r"\S+", text):
        word = m.group()
        if not _right_to_left(word):
            if run:
                parts += [text[at:run[0]], Name(text[run[0]:run[1]])]
                at, run = run[1], None
            continue
        start = m.start() + len(word) - len(word.lstrip("("))
        end = m.start() + len(word.rstrip(",;:.)"))
        if run and text[run[1]:m.start()].isspace() and end > start:  # one run goes on
            run[1] = end
        else:
            if run:
                parts += [text[at:run[0]], Name(text[run[0]:run[1]])]
                at = run[1]
            run = [start, end] if end > start else None
        if run and end < m.end():  # punctuation after it ends the run
            parts += [text[at:run[0]], Name(text[run[0]:run[1]])]
            at, run = run[1], None
    if run:
        parts += [text[at:run[0]], Name(text[run[0]:run[1]])]
        at = run[1]
    return Inline(*parts, text[at:]) if parts else text


def isolated(value):
    """`value` (a table cell, a bullet or a paragraph: str, Inline or anything else) with
    the right-to-left runs of its literal text isolated (`rtl_isolated`); Code, Strong and
    Name parts, numbers and None are kept as they are."""
    if isinstance(value, str):
        return rtl_isolated(value)
    if isinstance(value, Inline):
        return Inline(*[rtl_isolated(p) if isinstance(p, str) else p for p in value.parts])
    return value


def isolated_block(block):
    """`block` (a paragraph, Table, Bullets or Details of a section; anything else, a Figure,
    as it is) with the right-to-left runs of its text (a module's name, a path in a reason, a
    run folder in a problem; a table's headers too, which name trials) isolated in
    report.html (`isolated`), as the data rows' paths and the class names are: "cannot read
    /d/שלום/x.png: …" read its parts out of order beside the words around it. The text is
    unchanged. `sections.build_sections` applies it to every section."""
    if isinstance(block, Table):
        return Table([isolated(h) for h in block.headers],
                     [[isolated(c) for c in row] for row in block.rows])
    if isinstance(block, Bullets):
        return Bullets([isolated(item) for item in block.items])
    if isinstance(block, Details):
        return Details(block.summary, [isolated_block(b) for b in block.blocks])
    return isolated(block)


def names_cell(names) -> str | Inline:
    """Class names `names` (as `text.names_shown` gives them) as a comma-separated table cell,
    each a Name (isolated in report.html: a right-to-left name next to another read the two
    in the other order, "b-rtl, a-rtl") when one holds right-to-left text (Unicode bidi
    classes R, AL); else the plain text, which needs no isolation."""
    if not any(_right_to_left(n) for n in names):
        return ", ".join(names)
    return Inline(*[q for i, n in enumerate(names) for q in ((", ",) if i else ()) + (Name(n),)])


def names_isolated(text: str, names) -> str | Inline:
    """`text`, a sentence naming some of the class names `names` (`data.coverage`'s notes:
    "no test example of: NAME, NAME", "'NAME' 3", "of class 'NAME'"), with each name that
    holds right-to-left text (as `names_cell`) a Name where the sentence shows it, as it is
    or quoted by repr (`text.names_shown`, the notes' own quoting), so report.html isolates
    it (<bdi>): "no test example of: b-rtl, a-rtl" read the two names in the other order,
    and a name carried the count after it into its own direction. A name is found where it
    stands whole: after the start, a space or "(", before the end, a space or one of
    ",;:.)". `names` may hold paths too, as `text` shows them (the data rows' examples,
    `_isolated_rows`): a path is found whole, before a class name it begins with. The plain
    text (str) when no such name is there; str() of the result is `text`."""
    forms = sorted({form for n in map(str, names) if n and _right_to_left(n)
                    for form in (n, repr(n))}, key=len, reverse=True)
    if not forms:
        return text
    found = re.compile(r"(?<![^\s(])(?:" + "|".join(map(re.escape, forms))
                       + r")(?![^\s,;:.)])")
    parts, at = [], 0
    for m in found.finditer(text):
        parts += [text[at:m.start()], Name(m.group())]
        at = m.end()
    return Inline(*parts, text[at:]) if parts else text


def accounting_rows(task) -> list:
    """The data section's rows on what became of every file: read, skipped, ignored,
    duplicates and dropped copies (class coverage is the overview's, `coverage_note`), from
    `task` (run.json's data.task); each a [label, cell] of str, or of Inline where a class
    of `task["class_names"]` or an example's path is right-to-left (`_isolated_rows`)."""
    rows, root = [], _folder_source(task)
    sizes = task.get("sizes") or {}
    examples = sum(v for v in sizes.values() if v)
    has_files = task.get("files") is not None
    if has_files:
        # The skips counted and illustrated in this one cell (a "skipped files" row said
        # the count again), as the data summary says them once.
        skipped = task.get("skipped") or []
        example = _skips_named(skipped, root)
        dropped = counted(len(task.get('dropped') or []), 'duplicate')
        rows.append(["files read", f"{task['files']}: {counted(examples, 'example')}, "
                                   f"{skipped_count((r for _, r in skipped), example)}, "
                                   f"{dropped} dropped"])
    rows += _decoding_rows(task, skipped=not has_files)
    dup = task.get("duplicates") or {}
    if dup.get("copies"):
        across = ", ".join(f"{v} {k.replace('_in_', ' with a copy in ')}"
                           for k, v in (dup.get("across") or {}).items() if v)
        example = _shown((dup.get("examples") or [[]])[0][:2], root, " = ")
        # Each "(e.g. …)" right after the clause it illustrates.
        text = (f"{counted(dup['copies'], 'copy', 'copies')} in "
                f"{counted(dup['groups'], 'group')} of equal pixels"
                + (f" (e.g. {example})" if example else "")
                + (f"; {across}" if across else "; none across splits")
                + (f"; {counted(dup['conflicting_labels'], 'group')} with different labels"
                   + _conflict_example(dup, root) if dup.get("conflicting_labels") else ""))
        rows.append(["exact duplicates", text])
    elif dup.get("conflicting_labels"):  # --dedupe dropped every copy: the clash stays said
        rows.append(["exact duplicates",
                     f"none left; {counted(dup['conflicting_labels'], 'group')} had different "
                     f"labels{_conflict_example(dup, root)} (--dedupe kept the first copy of "
                     "each, with its label)"])
    if task.get("dropped"):
        rows.append(["dropped by --dedupe", f"{counted(len(task['dropped']), 'copy', 'copies')} "
                     f"(e.g. {_example(task['dropped'][0], root)})"])
    return _isolated_rows(rows, task)


def _record_paths(task) -> list[str]:
    """Every file path `task` (a data record, as `accounting_rows` takes it) holds as an
    example of a row (skipped, dropped, ignored, oriented, turned, unservable, dark,
    not_images, shrunk, duplicates), each as `_short_path` shows it."""
    root = _folder_source(task)

    def first(items):  # [path, …] records, or paths; a count (an older record's) holds none
        if not isinstance(items, (list, tuple)):
            return []
        return [item[0] if isinstance(item, (list, tuple)) and item else item
                for item in items if isinstance(item, (list, tuple, str))]

    dup = task.get("duplicates") if isinstance(task.get("duplicates"), dict) else {}
    paths = first(task.get("skipped") or []) + first(task.get("dropped") or [])
    for key in ("ignored", "oriented", "turned", "unservable", "dark", "not_images", "shrunk"):
        record = task.get(key) if isinstance(task.get(key), dict) else {}
        paths += first(record.get("examples") or [])
    for group in dup.get("examples") or []:
        paths += [p for p in group if isinstance(p, str)] if isinstance(group, list) else []
    for group in dup.get("conflicting_examples") or []:
        paths += first(group) if isinstance(group, list) else []
    return [_short_path(p, root) for p in paths if isinstance(p, str)]


def _isolated_rows(rows, task) -> list:
    """`rows` ([label, str]) with each cell as `names_isolated` gives it for the class names
    and the example paths of `task` (`_record_paths`): a right-to-left class or path is a
    Name, isolated in report.html ("cat/0.png = שלום/dup.png" read its parts out of order
    beside the counts)."""
    names = [str(n) for n in task.get("class_names") or []] + _record_paths(task)
    return [[label, names_isolated(cell, names) if isinstance(cell, str) else cell]
            for label, cell in rows]


def decoding_rows(task, *, skipped: bool = True) -> list:
    """Rows on the files of a data load that are not plain examples: ignored, oriented,
    turned, unservable (serve_bytes refuses them), dark (16-bit of 12-bit values), not
    images (files of class folders no image by name or first bytes, not read), shrunk and,
    with `skipped`, skipped (`Task.files_record`: run.json's data.task, an evaluation's
    "task"; `accounting_rows` counts the skipped in its "files read"); each a [label, cell]
    of str, or of Inline where a path is right-to-left (`_isolated_rows`)."""
    return _isolated_rows(_decoding_rows(task, skipped=skipped), task)


def _decoding_rows(task, *, skipped: bool = True) -> list:
    """`decoding_rows` as text (each cell a str)."""
    root = _folder_source(task)
    rows = _ignored_rows(task.get("ignored") or {}, root)
    oriented = task.get("oriented") or {}
    if oriented.get("count"):
        path, tag = (oriented.get("examples") or [["?", "?"]])[0]
        rows.append(["orientation tag", f"{counted(oriented['count'], 'image')} with the tag "
                     f"(EXIF or XMP), used as stored, not turned upright (e.g. "
                     f"{_example((path, tag), root)})"])
    turned = task.get("turned") or {}
    if turned.get("count"):
        path, tag = (turned.get("examples") or [["?", "?"]])[0]
        rows.append(["TIFF orientation", f"{counted(turned['count'], 'TIFF image')} turned "
                     f"upright by the tag, as Pillow reads them (e.g. "
                     f"{_example((path, tag), root)})"])
    # An older run.json has neither record: nothing was counted, nothing is said.
    unservable = task.get("unservable") or {}
    if unservable.get("count"):
        path, fmt = (unservable.get("examples") or [["?", "?"]])[0]
        rows.append(["refused by serve_bytes", f"{counted(unservable['count'], 'image')} "
                     f"Pillow read, which serve_bytes refuses; predict converts "
                     f"{'it' if unservable['count'] == 1 else 'them'} (e.g. "
                     f"{_example((path, fmt), root)})"])
    dark = task.get("dark") or {}
    if dark.get("count"):
        path, top = (dark.get("examples") or [["?", "?"]])[0]
        rows.append(["dark 16-bit images", f"{counted(dark['count'], 'image')} of values "
                     f"below 4096 of 65535 (12-bit data?), which "
                     f"{'decodes' if dark['count'] == 1 else 'decode'} dark (e.g. "
                     f"{_example((path, f'up to {top}'), root)})"])
    # A record written before "not_images" has none: its loader said them in a warning only.
    others = task.get("not_images") if isinstance(task.get("not_images"), dict) else {}
    if others.get("count"):
        path = (others.get("examples") or ["?"])[0]
        rows.append(["not images", f"{counted(others['count'], 'file')} in the class folders "
                     f"not read: not images by name or first bytes (e.g. "
                     f"{_shown([path], root)})"])
    shrunk = task.get("shrunk") or {}
    if shrunk.get("count"):
        path, size = (shrunk.get("examples") or [["?", ["?", "?"]]])[0]
        per = ", ".join(f"{s} {n}" for s, n in (shrunk.get("splits") or {}).items())
        rows.append(["shrunk images", f"{shrunk['count']} with a shorter side above 1024 px, "
                     f"shrunk to it ({per + '; ' if per else ''}e.g. "
                     f"{_example((path, f'{size[0]}x{size[1]}'), root)})"])
    if skipped and task.get("skipped"):
        rows.append(["skipped files", f"{len(task['skipped'])} (e.g. "
                     f"{_example(task['skipped'][0], root)})"])
    return rows


def _ignored_rows(ignored: dict, root=None) -> list:
    """The rows of a record's "ignored" ({"count", "examples": the first 10 paths,
    "hubensemble_folders": how many are folders hubensemble made}): hidden or system
    entries, and folders hubensemble made (a run or an export left inside the data) on a row
    of their own, as the data's summary names them (`data.taskwords.accounting`). The report
    counted a run folder as a hidden entry (a new-user check). The folder loader lists both in one
    list, the hidden ones by a hidden name, its own folders by a visible one: a record
    written before "hubensemble_folders" (`Task.files_record`) is told apart in its examples
    only, and the row says what beyond them it cannot tell apart."""
    examples = [str(p) for p in ignored.get("examples") or []]
    ours = [p for p in examples if _visible(os.path.basename(p))]
    hidden = [p for p in examples if p not in ours]
    count = max(int(ignored.get("count") or 0), len(examples))
    made = ignored.get("hubensemble_folders")
    exact = isinstance(made, int) and not isinstance(made, bool) and 0 <= made <= count
    # Entries beyond the recorded examples: which kind they are is not recorded (older runs).
    unnamed = 0 if exact else count - len(examples)
    n_hidden, n_ours = (count - made, made) if exact else (len(hidden) + unnamed, len(ours))
    rows = []
    if n_hidden:
        rows.append(["hidden / system entries", f"{n_hidden} ignored"
                     + (f" (e.g. {_shown(hidden[:1], root)})" if hidden else "")
                     + (f"; the record names only the first {len(examples)}: a folder "
                        "hubensemble made among the rest is counted here"
                        if unnamed and examples else "")])
    if n_ours:
        rows.append(["folders hubensemble made", f"{n_ours} ignored, not read as classes: "
                     "a run or an export inside the data"
                     + (f" (e.g. {_shown(ours[:1], root, then=': ')}: move them out)" if ours
                        else " (move them out)")])
    return rows
