"""Where hubensemble's docs (docs/*.md) are, and their sections, for `hubensemble docs`.

The repository's docs/ folder ships inside the wheel as package data `hubensemble.docs`
(setup.cfg's package_dir, as catalogue/ ships as hubensemble.catalogues), so the docs that
errors and warnings cite (`docs/data.md#labels-in-a-table`, `docs/reliability.md "Small
machines"`) are on the user's machine after `pip install hubensemble`, offline. A section is
found by its GitHub heading anchor (`slug`), so `hubensemble docs data#labels-in-a-table`
prints what that link shows on GitHub, or by a paragraph's bold lead (`**Versions.**`,
which the code cites like a heading). Standard library only: `hubensemble docs` starts at
once, without NumPy or TensorFlow.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import os
import pathlib
import re

from hubensemble.errors import HubensembleError

#: The package the docs ship as (setup.cfg: `hubensemble.docs = docs`).
PACKAGE = "hubensemble.docs"

#: A Markdown heading (ATX, 1 to 6 `#`), outside a fenced code block.
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t#]*$")
#: A paragraph's bold lead, `**Said before the work.** …`: its words, without the full stop.
_BOLD_LEAD = re.compile(r"^\*\*(.+?)[.:]?\*\*")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


@dataclasses.dataclass(frozen=True)
class Section:
    """One section of a doc: `anchor` (GitHub's, unique in the doc), `title` (the heading's
    text as written), lines `start` to `end` of the doc (0-based, `end` excluded: up to the
    next heading of the same or a higher level; a bold-lead paragraph's up to the next one or
    the next heading), `level` 1-6 for a heading, 0 for a bold lead."""

    anchor: str
    title: str
    start: int
    end: int
    level: int


def slug(title: str) -> str:
    """GitHub's heading anchor of `title` (its rendered text, as github-slugger makes it):
    inline code marks and a link's target dropped (`[text](url)` counts as text), lower case,
    every character but letters, digits, `_`, `-` and spaces removed, each space a `-`.
    "Labels in a table" -> "labels-in-a-table", "`tfds:`" -> "tfds", "3. Run" -> "3-run".
    A repeated heading's anchor gets "-1", "-2" in the doc (`sections`)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", title.strip())
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def sections(text: str) -> list[Section]:
    """The sections of a doc's Markdown `text` in the doc's order: its headings (not `#`
    lines inside a fenced code block: a shell comment in a ```sh block is none) with
    GitHub's anchors, a repeated one numbered "-1", "-2" as GitHub does, and its bold-lead
    paragraphs (`_BOLD_LEAD`, after a blank line, anchored by `slug` of the bold words)
    where no heading has that anchor."""
    lines = text.splitlines()
    found, fence = [], None
    for i, line in enumerate(lines):
        mark = _FENCE.match(line)
        if mark:
            if fence is None:
                fence = mark.group(1)
            elif mark.group(1)[0] == fence[0] and len(mark.group(1)) >= len(fence):
                fence = None
            continue
        if fence is None:
            heading = _HEADING.match(line)
            if heading:
                found.append((i, len(heading.group(1)), heading.group(2)))
            elif _BOLD_LEAD.match(line) and (i == 0 or not lines[i - 1].strip()):
                found.append((i, 0, _BOLD_LEAD.match(line).group(1)))
    result, taken = [], {}
    for n, (start, level, title) in enumerate(found):
        end = next((s for s, lv, _ in found[n + 1:]
                    if (lv and (level == 0 or lv <= level)) or (level == 0 and lv == 0)),
                   len(lines))
        anchor = slug(title)
        if level:
            count = taken.get(anchor, 0)
            taken[anchor] = count + 1
            anchor = f"{anchor}-{count}" if count else anchor
        result.append(Section(anchor, title, start, end, level))
    headings = {s.anchor for s in result if s.level}
    return [s for s in result if s.level or s.anchor not in headings]


def docs_folder() -> pathlib.Path | None:
    """The folder of the docs the running hubensemble came with, None when there is none.
    First the installed package's (a wheel's: hubensemble/docs/ beside the modules), then a
    checkout's docs/ beside the hubensemble/ folder imported (run from it, or installed
    editable: its setup.cfg is there), then wherever the import system finds package
    `hubensemble.docs` (another installer's layout). In that order because another
    hubensemble's may also be importable (a checkout on PYTHONPATH in a venv with an
    editable install of another one): the docs of the code that runs come first."""
    package = pathlib.Path(__file__).resolve().parent
    candidates = [package / "docs"]
    if (package.parent / "setup.cfg").is_file():
        candidates.append(package.parent / "docs")
    try:
        candidates.append(pathlib.Path(os.fspath(importlib.resources.files(PACKAGE))))
    except (ModuleNotFoundError, TypeError):  # not installed; not on a file system (a zip)
        pass
    return next((c for c in candidates if c.is_dir() and any(c.glob("*.md"))), None)


def doc_names() -> list[str]:
    """The docs' names ("catalogue", "data", …: docs/NAME.md), sorted; [] when none ship."""
    folder = docs_folder()
    return sorted(p.stem for p in folder.glob("*.md")) if folder else []


def _not_installed() -> HubensembleError:
    return HubensembleError(
        "hubensemble's docs are not installed with it (docs/*.md ship inside the package as "
        f"{PACKAGE}): reinstall hubensemble, or read them at docs/ of its repository")


def doc_file(name: str) -> pathlib.Path:
    """The file of doc `name`: "data", "data.md" or "docs/data.md" (as a message cites it)
    -> the absolute path of the shipped data.md. HubensembleError, naming the docs there are
    (and the one meant, for a slip: "dta"), when no doc has that name, or when the docs are
    not installed (a broken install)."""
    from hubensemble.text import closest_name

    folder = docs_folder()
    if folder is None:
        raise _not_installed()
    stem = re.sub(r"^(?:\./)?(?:docs/)?(.*?)(?:\.md)?$", r"\1", name.strip())
    path = folder / f"{stem}.md"
    if stem and "/" not in stem and path.is_file():
        return path
    names = doc_names()
    meant = closest_name(stem, names)
    raise HubensembleError(f"no doc {name!r}" + (f" (did you mean {meant}?)" if meant else "")
                           + f"; the docs are {', '.join(names)}: `hubensemble docs NAME` "
                           "prints one, `hubensemble docs` lists them")


def find_section(text: str, wanted: str, *, start: bool = True) -> Section | None:
    """The section of doc `text` that `wanted` names: its anchor ("labels-in-a-table"), or
    its title in any case and punctuation ("Labels in a table", "Small machines", "tfds:"),
    as `slug` makes both alike; else (`start`) the first whose title starts with those
    words ("Distributed sweeps" -> "Distributed sweeps (chief / workers)", as the code cites
    it); None when none does."""
    wanted = wanted.strip()
    every = sections(text)
    for key in (wanted, slug(wanted)):
        found = next((s for s in every if s.anchor == key), None)
        if found:
            return found
    key = slug(wanted)
    return next((s for s in every if key and s.anchor.startswith(key + "-")), None) if start \
        else None


def section_text(name: str, wanted: str | None = None) -> str:
    """Doc `name`'s text (`doc_file`), or only its section `wanted` (`find_section`): the
    heading or bold-lead line and what follows up to the next one of its level.
    HubensembleError as `doc_file`, and for a section the doc does not have, naming the
    one meant (a slip) or the doc's headings."""
    from hubensemble.text import closest_name

    path = doc_file(name)
    text = path.read_text(encoding="utf-8")
    if not wanted:
        return text
    found = find_section(text, wanted)
    if found is None:
        every = [s for s in sections(text) if s.level]
        meant = closest_name(slug(wanted), [s.anchor for s in every])
        raise HubensembleError(
            f"docs/{path.name} has no section {wanted!r}"
            + (f" (did you mean {path.stem}#{meant}?)" if meant else "")
            + "; its sections: " + ", ".join(f"{path.stem}#{s.anchor}" for s in every))
    return "\n".join(text.splitlines()[found.start:found.end]).rstrip() + "\n"


def topic(cited: str) -> tuple[str, str | None]:
    """`hubensemble docs TOPIC`'s TOPIC -> (doc name, section or None): "data#decoding",
    "docs/data.md#decoding" (a message's citation as it is), "data.md", "reliability#Small
    machines" (a title: `find_section` slugs it)."""
    name, _, wanted = cited.partition("#")
    return name, (wanted or None)
