"""The report's document model (sections of paragraphs, lists, tables, figures) and renderers."""

from __future__ import annotations

import base64
import dataclasses
import html
import re

from hubensemble.formats import REPORT_FIGURES_DIR

#: Folder (inside the run) holding the PNGs that report.md links to.
FIGURES_DIR = REPORT_FIGURES_DIR


@dataclasses.dataclass
class Table:
    """A table: `headers` (one text per column) and `rows` (lists of cell values, shown with
    str(); `code` in backticks becomes <code> in HTML)."""

    headers: list
    rows: list


@dataclasses.dataclass
class Figure:
    """A figure: `name` (its file is FIGURES_DIR/<name>.png), the PNG bytes, a caption."""

    name: str
    png: bytes
    caption: str


@dataclasses.dataclass
class Bullets:
    """A bullet list of texts."""

    items: list


@dataclasses.dataclass
class Section:
    """A titled section of blocks: paragraphs (str), Bullets, Table and Figure, in order."""

    title: str
    blocks: list = dataclasses.field(default_factory=list)

    def add(self, *blocks):
        """Appends the blocks that are not None; returns the section (for chaining)."""
        self.blocks.extend(b for b in blocks if b is not None)
        return self


def _md_cell(value) -> str:
    return str(value).replace("\n", " ").replace("|", "\\|")


def render_markdown(title, sections, figures_dir=FIGURES_DIR) -> str:
    """report.md: `title` as the heading, then each Section; figures link to
    `figures_dir`/<name>.png (the caller writes the files). "|" in cells is escaped."""
    out = [f"# {title}", ""]
    for sec in sections:
        out += [f"## {sec.title}", ""]
        for block in sec.blocks:
            if isinstance(block, str):
                out += [block, ""]
            elif isinstance(block, Bullets):
                out += [f"- {item}" for item in block.items] + [""]
            elif isinstance(block, Table):
                out.append("| " + " | ".join(_md_cell(h) for h in block.headers) + " |")
                out.append("|" + "---|" * len(block.headers))
                out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
                out.append("")
            elif isinstance(block, Figure):
                out += [f"![{block.caption}]({figures_dir}/{block.name}.png)", "",
                        f"*{block.caption}*", ""]
    return "\n".join(out).rstrip() + "\n"


_CODE = re.compile(r"`([^`]+)`")
_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #ddd;padding-bottom:.3em}h2{margin-top:2em;border-bottom:1px solid #eee}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}tr:nth-child(even) td{background:#fafafa}
code{background:#f2f2f2;padding:0 .25em;border-radius:3px}
figure{margin:1em 0}figure img{max-width:100%}figcaption{color:#555;font-size:.9em}
"""


def _inline_html(text) -> str:
    return _CODE.sub(r"<code>\1</code>", html.escape(str(text), quote=False))


def render_html(title, sections) -> str:
    """report.html: one self-contained file (inline CSS, figures as data: URIs, no scripts,
    no links to other files); text is HTML-escaped, `code` spans become <code>."""
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{html.escape(title)}</title>", f"<style>{_STYLE}</style>", "</head>",
           "<body>", f"<h1>{html.escape(title)}</h1>"]
    for sec in sections:
        out.append(f"<h2>{html.escape(sec.title)}</h2>")
        for block in sec.blocks:
            if isinstance(block, str):
                out.append(f"<p>{_inline_html(block)}</p>")
            elif isinstance(block, Bullets):
                out.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in block.items)
                           + "</ul>")
            elif isinstance(block, Table):
                head = "".join(f"<th>{html.escape(str(h))}</th>" for h in block.headers)
                body = "".join("<tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in row)
                               + "</tr>" for row in block.rows)
                out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            elif isinstance(block, Figure):
                data = base64.b64encode(block.png).decode("ascii")
                out.append(f'<figure><img alt="{html.escape(block.caption)}" '
                           f'src="data:image/png;base64,{data}">'
                           f"<figcaption>{_inline_html(block.caption)}</figcaption></figure>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"
