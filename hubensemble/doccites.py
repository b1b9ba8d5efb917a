"""The way to read a doc a printed message cites, offline: `hubensemble docs NAME#SECTION`.

Errors and warnings send the user to `docs/NAME.md` (#anchor, "Section", ', Section'), a path
of the repository, which a wheel install does not have where the user stands. Rather than each
message saying more, the lines the command line prints pass through `with_way_to_read`
(terminal's stderr lines: errors, warnings, notes, and the warnings of a library call that
`terminal.LastResort` shows; argparse's usage errors), which adds to a message that cites a
doc "[read it offline: hubensemble docs data#labels-in-a-table]": the command prints
that section of the installed doc (`docfiles`). Chosen over the installed file's path: that
is a long site-packages path on every such line, and it opens a 1,300-line file at its top,
not at the section cited; `hubensemble docs NAME --path` gives the path to whoever wants it.
"""

from __future__ import annotations

import re

#: A citation: docs/NAME.md, then #anchor, or a quoted section ("Small machines", 'Sweeps',
#: with or without a comma), or the words after a comma that may name one (", Decoding");
#: not a user's own docs/ folder inside a path (/home/me/docs/data.md).
CITATION = re.compile(r"(?<![\w/.-])docs/([a-z_]+)\.md(?:#([\w-]+)|,? ([\"'])([^\"'\n]+)\3"
                      r"|, ((?:(?!docs/)[^\n]){1,80}))?")
#: A further quoted section after one (`docs/tune.md 'Sweeps', 'Profiles'`).
_MORE = re.compile(r", ([\"'])([^\"'\n]+)\1")


def _leading_section(text: str, words: str) -> str | None:
    """The anchor of the section of doc `text` that the words before a closing ")" or ";"
    name or start the title of (", Upgrading)"), else of the longest run of `words`' first
    words that names one exactly, not a title it starts (", Splits and Duplicates" ->
    "splits"; ", tfds:)" -> "tfds"); None when none does (", the …" is no "the-task")."""
    from hubensemble.docfiles import find_section

    cut = re.split(r"[);]", words, maxsplit=1)
    if len(cut) > 1 and 0 < len(cut[0].split()) <= 8:  # the words end where the citation does
        found = find_section(text, cut[0])  # ", Upgrading)": "Upgrading: what an older …"
        if found:
            return found.anchor
    parts = words.split()
    for n in range(min(len(parts), 8), 0, -1):
        found = find_section(text, " ".join(parts[:n]).rstrip(").;,"), start=False)
        if found:
            return found.anchor
    return None


def cited(text: str) -> list[str]:
    """The docs `text` cites, as `hubensemble docs` takes them: "data#labels-in-a-table",
    "reliability#small-machines" (each of `'Sweeps', 'Profiles'`: "tune#sweeps",
    "tune#profiles"), or "cost" for a doc cited without a section (or with one
    it does not have: the doc is still the way on). In order, each once; a doc also cited
    with a section is not listed bare. Only docs that are installed (`docfiles.doc_names`),
    [] for text that cites none (most: a plain substring test first)."""
    if "docs/" not in text:
        return []
    from hubensemble.docfiles import doc_file, docs_folder, find_section

    folder = docs_folder()
    if folder is None:
        return []
    found: list[str] = []
    for m in CITATION.finditer(text):
        name, anchor, _, quoted, words = m.groups()
        if not (folder / f"{name}.md").is_file():
            continue
        doc = doc_file(name).read_text(encoding="utf-8")
        wanted, end, sections = [anchor or quoted], m.end(), []
        while quoted and _MORE.match(text, end):
            wanted.append(_MORE.match(text, end).group(2))
            end = _MORE.match(text, end).end()
        for one in wanted if (anchor or quoted) else []:
            hit = find_section(doc, one)
            sections += [hit.anchor] if hit else []
        if words:
            sections = [s for s in [_leading_section(doc, words)] if s]
        for topic in [f"{name}#{s}" for s in sections] or [name]:
            if topic not in found:
                found.append(topic)
    return [t for t in found if "#" in t or not any(f.startswith(t + "#") for f in found)]


def with_way_to_read(text: str) -> str:
    """`text` (a message a command prints) with the way to read the docs it cites (`cited`)
    offline: " [read it offline: hubensemble docs TOPIC]" at the end of a one-line message
    (for several docs: "[read them offline: hubensemble docs A, hubensemble docs B]"), and as
    a last line of its own under a message of several lines (a list of problems: at the end
    of its "HEAD … one of:" line it read as one of the list). `text` as it is when it cites
    no installed doc."""
    topics = cited(text)
    if not topics:
        return text
    said = (f"[read {'it' if len(topics) == 1 else 'them'} offline: "
            + ", ".join(f"hubensemble docs {t}" for t in topics) + "]")
    body = text.rstrip("\n")
    return body + ("\n" if "\n" in body else " ") + said + text[len(body):]
