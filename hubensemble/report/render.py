"""The report's document model (sections of paragraphs, lists, tables, figures) and renderers."""

from __future__ import annotations

import base64
import dataclasses
import html
import re
import unicodedata

from hubensemble.formats import REPORT_FIGURES_DIR

#: Folder (inside the run) holding the PNGs that report.md links to.
FIGURES_DIR = REPORT_FIGURES_DIR


@dataclasses.dataclass(frozen=True)
class Code:
    """The report's own code span (a command, a path): `text` in backticks in report.md,
    <code> in report.html; the text itself is shown literally, whatever it holds."""

    text: str


@dataclasses.dataclass(frozen=True)
class Strong:
    """The report's own bold text (**…** in report.md, <strong> in report.html)."""

    text: str


@dataclasses.dataclass(frozen=True)
class Name:
    """A name from the run's files (a class name) shown literally and isolated from the text
    around it: <bdi> in report.html (HTML's bidirectional isolate), so a right-to-left name
    (Hebrew, Arabic) does not carry the numbers and words after it into its own direction
    ("שלום 14" read as "14 שלום" beside the row's counts); as plain text in report.md, whose
    table cells and escapes it leaves as they are."""

    text: str

    def __str__(self):
        return self.text


class Inline:
    """A run of text: `parts` are literal strings (any other value is shown as str(value)),
    Code, Strong or nested Inline. str() is the plain text, code in backticks (for logs).

    Every string in the document model is shown literally: class names, module names,
    paths and reasons from the run's files may hold HTML, Markdown syntax or newlines, and
    the renderers escape them for their target. The report's own markup is only Code and
    Strong; Name isolates a name's writing direction in report.html."""

    def __init__(self, *parts):
        self.parts = tuple(q for p in parts if p is not None
                           for q in (p.parts if isinstance(p, Inline) else (p,)))

    def __str__(self):
        return "".join(f"`{p.text}`" if isinstance(p, Code) else
                       p.text if isinstance(p, (Strong, Name)) else str(p) for p in self.parts)

    def __repr__(self):
        return f"Inline{self.parts!r}"

    def __eq__(self, other):
        return isinstance(other, Inline) and self.parts == other.parts

    __hash__ = None

    def __bool__(self):
        return bool(str(self))


@dataclasses.dataclass
class Table:
    """A table: `headers` (one text per column) and `rows` (lists of cell values: str, a
    number, Code or Inline; each shown literally, see Inline)."""

    headers: list
    rows: list


@dataclasses.dataclass
class Figure:
    """A figure: `name` (its file is FIGURES_DIR/<name>.png), the PNG bytes, a caption
    (literal text: str, or Inline whose Names are isolated in the figcaption, <bdi>, and in
    the img's alt, FSI/PDI: `plain_isolated`)."""

    name: str
    png: bytes
    caption: str


@dataclasses.dataclass
class Bullets:
    """A bullet list of texts (str or Inline)."""

    items: list


@dataclasses.dataclass
class Details:
    """Blocks shown collapsed in report.html under a one-line `summary` (literal text) that
    opens them (<details>, no script); report.md shows the summary as a paragraph and the
    blocks after it (Markdown has no collapsing of its own)."""

    summary: str
    blocks: list


@dataclasses.dataclass
class Section:
    """A titled section of blocks: paragraphs (str or Inline), Bullets, Table and Figure, in
    order. The title is literal text."""

    title: str
    blocks: list = dataclasses.field(default_factory=list)

    def add(self, *blocks):
        """Appends the blocks that are not None; returns the section (for chaining)."""
        self.blocks.extend(b for b in blocks if b is not None)
        return self


# ---------------------------------------------------------------------------------------------
# Markdown (CommonMark + GitHub tables)
# ---------------------------------------------------------------------------------------------

#: Backslash-escaped wherever they are: code spans, emphasis, links and images, strikethrough,
#: GitHub math (`_` only where it could open or close emphasis, see _md_text).
_MD_ESCAPED = frozenset("\\`*[]~$")
#: Backslash-escaped where they would start markup: "<" before what opens raw HTML, a comment
#: or an autolink (a letter, "/", "!", "?"), "&" before an entity reference ("&lt;", "&#62;").
#: Markdown's own escape, not HTML's: report.md is read as text too, where "p = 0.3 &gt; 0.05"
#: showed the entity (a "<" or ">" elsewhere is text to CommonMark, as it is to a reader).
_MD_MARKUP_AT = {"<": re.compile(r"<[A-Za-z/!?]"), "&": re.compile(r"&#?[A-Za-z0-9]+;")}
#: A block's first characters that would start a heading, a list ("-", "+", "12." / "3)"
#: followed by a space) or a block quote (">").
_MD_BLOCK_START = re.compile(r"(#|>|[+\-](?= |$))|\d{1,9}([.)])(?= |$)")
_LINE_BREAKS = re.compile(r"[\r\n\t\v\f]+")


def _md_text(text, start=False, heading=False) -> str:
    """`text` as Markdown that shows it literally: on one line, only what could be read as
    markup escaped (a plain `digit_0` or `default-0000-alpha` is left as it is). `start`:
    the text begins a block (paragraph, list item, heading); `heading`: it is in one."""
    text = _LINE_BREAKS.sub(" ", str(text))
    if start:
        text = text.lstrip(" ")  # 4 spaces would start a code block; HTML shows none either
    links = _gfm_autolinks(text)
    out = []
    for i, ch in enumerate(text):
        if i in links:
            out.append("\\" + ch)
        elif ch in _MD_MARKUP_AT:
            out.append("\\" + ch if _MD_MARKUP_AT[ch].match(text, i) else ch)
        elif ch in _MD_ESCAPED or (heading and ch == "#") or (ch == "_" and not (
                0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum())):
            out.append("\\" + ch)
        else:
            out.append(ch)
    if start and text:
        m = _MD_BLOCK_START.match(text)
        if m and m.group(1):
            out[0] = "\\" + out[0]
        elif m:
            at = m.end() - 1
            out[at] = "\\" + out[at]
    return "".join(out)


def _gfm_autolinks(text: str) -> set[int]:
    """Where `text` would start a link on GitHub, which links bare text (GFM's autolink
    extension; CommonMark does not): the indexes of the characters whose backslash escape
    stops it, as GitHub scans the text between escapes. The ":" of "://" (an extended URL
    autolink, "https://…"), the "." of "www." at the start or after a space or one of *_~(
    (a www autolink), every "@" (an email autolink, also after "mailto:" or "xmpp:"). A
    failure reason holding a URL showed as a link to it there."""
    at = set()
    for i, ch in enumerate(text):
        if (ch == "@" or (ch == ":" and text.startswith("//", i + 1)) or (
                ch == "." and i >= 3 and text[i - 3:i].lower() == "www"
                and (i == 3 or text[i - 4] in " *_~("))):
            at.add(i)
    return at


def _md_code(text) -> str:
    """A code span showing `text` literally: a fence longer than its longest run of
    backticks, padded with spaces when it starts or ends with one (CommonMark 6.1)."""
    text = _LINE_BREAKS.sub(" ", str(text))
    if not text:
        return ""
    fence = "`" * (max((len(r) for r in re.findall("`+", text)), default=0) + 1)
    pad = " " if text[0] == "`" or text[-1] == "`" or (text[0] == text[-1] == " "
                                                       and text.strip()) else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_inline(value, start=False, heading=False, isolate=False) -> str:
    """`value` as Markdown text; with `isolate` (report.md's title, as report.html's <title>:
    `plain_isolated`) each Name and code span holding right-to-left text between FSI and PDI:
    "# hubensemble report: שלום (2)" carried the text after a name into its direction."""
    parts = value.parts if isinstance(value, Inline) else (value,)
    out = []
    for part in parts:
        first = start and not out
        if isolate and isinstance(part, (Name, Code)) and right_to_left(part.text):
            text = _md_code(part.text) if isinstance(part, Code) else _md_text(
                part.text, start=first, heading=heading)
            out.append(f"{FSI}{text}{PDI}")
        elif isinstance(part, Code):
            out.append(_md_code(part.text))
        elif isinstance(part, Strong):
            out.append(f"**{_md_text(part.text)}**")
        elif isinstance(part, Name):
            out.append(_md_text(part.text, start=first, heading=heading))
        else:
            out.append(_md_text(part, start=first, heading=heading))
        if out[-1] == "":
            out.pop()
    return "".join(out)


def _md_cell(value) -> str:
    # GitHub tables split cells at "|" before anything else, even inside code spans.
    return _md_inline(value).replace("|", "\\|")


def _md_block(block, figures_dir) -> list[str]:
    """One block's report.md lines, with the blank line after it."""
    if isinstance(block, Bullets):
        return [f"- {_md_inline(item, start=True)}" for item in block.items] + [""]
    if isinstance(block, Table):
        return (["| " + " | ".join(_md_cell(h) for h in block.headers) + " |",
                 "|" + "---|" * len(block.headers)]
                + ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
                + [""])
    if isinstance(block, Figure):
        caption = _md_text(block.caption)
        return [f"![{caption}]({figures_dir}/{block.name}.png)", "", f"*{caption}*", ""]
    if isinstance(block, Details):
        return [_md_inline(block.summary, start=True), ""] + [
            line for b in block.blocks for line in _md_block(b, figures_dir)]
    return [_md_inline(block, start=True), ""]


def render_markdown(title, sections, figures_dir=FIGURES_DIR) -> str:
    """report.md: `title` as the heading, then each Section; figures link to
    `figures_dir`/<name>.png (the caller writes the files). Every text is shown literally
    (see Inline): what Markdown would read as markup is escaped, "|" in table cells too."""
    out = [f"# {_md_inline(title, start=True, heading=True, isolate=True)}", ""]
    for sec in sections:
        out += [f"## {_md_inline(sec.title, start=True, heading=True)}", ""]
        for block in sec.blocks:
            out += _md_block(block, figures_dir)
    return "\n".join(out).rstrip() + "\n"


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45;overflow-wrap:anywhere}
h1{border-bottom:2px solid #ddd;padding-bottom:.3em}h2{margin-top:2em;border-bottom:1px solid #eee}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}tr:nth-child(even) td{background:#fafafa}
code{background:#f2f2f2;padding:0 .25em;border-radius:3px}
summary{cursor:pointer;margin:1em 0}
figure{margin:1em 0}figure img{max-width:100%}figcaption{color:#555;font-size:.9em}
"""


def right_to_left(text: str) -> bool:
    """Whether `text` holds right-to-left text (a character of Unicode bidi class R or AL)."""
    return any(unicodedata.bidirectional(ch) in ("R", "AL") for ch in text)


#: Unicode's first strong isolate and pop directional isolate (UAX #9, 2.7), the plain-text
#: form of <bdi> where markup cannot go (a <title>, an img's alt).
FSI, PDI = "\u2068", "\u2069"


def plain_isolated(value) -> str:
    """`value` (Inline, str, Code, Name) as plain text with each Name, and each Code that
    holds right-to-left text, between FSI and PDI: what <bdi> does in the page's body, for
    the places markup cannot go (report.html's <title>, a figure's alt text). A
    right-to-left task name in the tab's title carried ": hubensemble report" into its
    direction."""
    parts = value.parts if isinstance(value, Inline) else (value,)
    return "".join(f"{FSI}{p.text}{PDI}" if isinstance(p, Name) or (
        isinstance(p, Code) and right_to_left(p.text)) else
        p.text if isinstance(p, (Code, Strong)) else str(p) for p in parts)


def _inline_html(value) -> str:
    """Inline (or a str, a number, Code) as HTML: text escaped, never read as markup. A code
    span that holds right-to-left text (a command with a Hebrew path) is isolated as a whole
    (<bdi><code>…</code></bdi>), as a Name is: the words around it kept their order."""
    parts = value.parts if isinstance(value, Inline) else (value,)
    out = []
    for part in parts:
        if isinstance(part, Code):
            code = f"<code>{html.escape(part.text, quote=False)}</code>"
            out.append(f"<bdi>{code}</bdi>" if right_to_left(part.text) else code)
        elif isinstance(part, Strong):
            out.append(f"<strong>{html.escape(part.text, quote=False)}</strong>")
        elif isinstance(part, Name):
            out.append(f"<bdi>{html.escape(part.text, quote=False)}</bdi>")
        else:
            out.append(html.escape(str(part), quote=False))
    return "".join(out)


def _html_block(block) -> str:
    """One block as HTML."""
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in block.items) + "</ul>"
    if isinstance(block, Table):
        head = "".join(f"<th>{_inline_html(h)}</th>" for h in block.headers)
        body = "".join("<tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in row)
                       + "</tr>" for row in block.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if isinstance(block, Figure):
        data = base64.b64encode(block.png).decode("ascii")
        return (f'<figure><img alt="{html.escape(plain_isolated(block.caption))}" '
                f'src="data:image/png;base64,{data}">'
                f"<figcaption>{_inline_html(block.caption)}</figcaption></figure>")
    if isinstance(block, Details):
        return (f"<details><summary>{_inline_html(block.summary)}</summary>"
                + "".join(_html_block(b) for b in block.blocks) + "</details>")
    return f"<p>{_inline_html(block)}</p>"


def render_html(title, sections) -> str:
    """report.html: one self-contained file (inline CSS, figures as data: URIs, no scripts,
    no links to other files); every text is HTML-escaped (backticks too are just text), Code
    becomes <code>. A word longer than the page (a 300-letter class name, a long path) may
    break anywhere (CSS overflow-wrap: anywhere, which also narrows a table's column to
    fit): it widened its table, and the page, past the 1100 px body. The <title> (no markup
    there) isolates the names in `title` with FSI/PDI (`plain_isolated`), as <h1> does with
    <bdi>."""
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{html.escape(plain_isolated(title), quote=False)}</title>",
           f"<style>{_STYLE}</style>", "</head>", "<body>", f"<h1>{_inline_html(title)}</h1>"]
    for sec in sections:
        out.append(f"<h2>{_inline_html(sec.title)}</h2>")
        out += [_html_block(block) for block in sec.blocks]
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"
