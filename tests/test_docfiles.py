"""The docs errors cite, read offline: `hubensemble docs NAME#SECTION` (hubensemble.docfiles)
and the way to it at the end of each printed message that cites one (hubensemble.doccites).
No TensorFlow: every command here is refused or answered before it loads."""

import logging
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from hubensemble import doccites, docfiles, terminal
from hubensemble.cli import main
from hubensemble.errors import HubensembleError

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _section(doc, heading):
    """The lines of docs/`doc` from the line `heading` to the next heading of its level or a
    higher one (outside a ``` block, where `# ` starts a shell comment), read here from the
    file itself."""
    lines = (DOCS / doc).read_text(encoding="utf-8").splitlines()
    start = lines.index(heading)
    level = len(heading) - len(heading.lstrip("#"))
    fenced, end = False, len(lines)
    for i in range(start + 1, len(lines)):
        fenced ^= lines[i].startswith("```")
        if not fenced and re.match(rf"#{{1,{level}}} ", lines[i]):
            end = i
            break
    return "\n".join(lines[start:end]).rstrip()


def _code(argv):
    try:
        return main(argv)
    except SystemExit as e:  # argparse's usage errors
        return e.code


def test_an_error_that_cites_a_doc_ends_with_the_command_that_prints_its_section(
        tmp_path, capsys):
    """A table of labels as --data was refused citing docs/data.md#labels-in-a-table, a path
    of the repository that a `pip install .` user does not have. The refusal (a list of
    lines) now ends with a line naming `hubensemble docs data#labels-in-a-table`, and that
    command prints the section, as the file has it; a usage error's one line ends with its
    own (`tune --chief`: docs/tune.md 'Distributed sweeps', the heading it starts)."""
    table = tmp_path / "labels.csv"
    table.write_text("file,label\na.png,cat\n")
    argv = ["rank", "--catalogue", str(ROOT / "catalogue" / "demo.yaml"), "--data", str(table),
            "--out", str(tmp_path / "run")]
    assert _code(argv) == 2
    err = capsys.readouterr().err
    assert "docs/data.md#labels-in-a-table" in err
    assert err.rstrip("\n").splitlines()[-1] == (
        "[read it offline: hubensemble docs data#labels-in-a-table]"), err
    assert main(["docs", "data#labels-in-a-table"]) == 0
    assert capsys.readouterr().out.rstrip("\n") == _section("data.md", "### Labels in a table")

    assert _code(["tune", "--run", str(tmp_path / "r"), "--chief"]) == 2
    err = capsys.readouterr().err
    heading = next(line for line in (DOCS / "tune.md").read_text(encoding="utf-8").splitlines()
                   if line.startswith("## Distributed sweeps"))
    anchor = re.sub(r"[^\w\- ]", "", heading[3:].lower()).replace(" ", "-")
    assert err.endswith(f"see docs/tune.md 'Distributed sweeps') [read it offline: "
                        f"hubensemble docs tune#{anchor}]\n"), err
    assert main(["docs", f"tune#{anchor}"]) == 0
    assert capsys.readouterr().out.rstrip("\n") == _section("tune.md", heading)


def test_a_warning_that_cites_a_doc_ends_with_the_command_too(capsys):
    """Warnings reach the terminal through the command's log handler (`terminal_log`): one
    that cites a section ("Small machines", quoted as memory's notes do) ends with the
    command; RUN/log.txt keeps the words as they were (a file, read where the docs are)."""
    args = SimpleNamespace(quiet=False, verbose=False)
    said = 'a stage may need more memory (docs/reliability.md "Small machines")'
    seen = []

    class Kept(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    kept = Kept()
    logging.getLogger("hubensemble").addHandler(kept)
    try:
        with terminal.terminal_log(args):
            logging.getLogger("hubensemble.memory").warning("%s", said)
    finally:
        logging.getLogger("hubensemble").removeHandler(kept)
    assert capsys.readouterr().err == (
        f"WARNING hubensemble.memory: {said} [read it offline: hubensemble docs "
        "reliability#small-machines]\n")
    assert seen == [said]


@pytest.mark.parametrize("text, topics", [
    # each form the package's messages use
    ("see docs/data.md#decoding", ["data#decoding"]),
    ("(docs/rank.md, \"Near-copy neighbours\")", ["rank#near-copy-neighbours"]),
    ("docs/tune.md 'Sweeps', 'Profiles')", ["tune#sweeps", "tune#profiles"]),
    ("(docs/data.md, Splits and Duplicates)", ["data#splits"]),
    ("(docs/reliability.md, Upgrading).", ["reliability#upgrading-what-an-older-version-left"]),
    ("(docs/data.md, tfds:)", ["data#tfds"]),
    # a doc alone, or with words that name no section of it: the doc
    ("counted once (docs/cost.md).", ["cost"]),
    ("out (docs/data.md lists what each scheme reads)", ["data"]),
    ("docs/data.md, the other docs/zoo.md", ["data", "zoo"]),
    # the same doc with a section and without: the section only
    ("docs/data.md#decoding and docs/data.md", ["data#decoding"]),
    # a user's own docs folder, and a doc hubensemble does not have: nothing
    ("folder:/home/me/docs/data.md", []), ("my/docs/data.md", []), ("docs/nosuch.md", []),
])
def test_the_docs_a_message_cites(text, topics):
    assert doccites.cited(text) == topics


def test_every_section_the_package_cites_is_one_the_docs_command_prints():
    """Each `docs/NAME.md#anchor` and `docs/NAME.md, "Section"` written anywhere in the
    package (messages, docstrings, comments) is read by the renderer as a section of that
    doc (not the bare doc), and `hubensemble docs` prints it; each bare docs/NAME.md is a
    doc it prints."""
    wrong, seen = [], 0
    for path in sorted((ROOT / "hubensemble").rglob("*.py")):
        text = path.read_text(encoding="utf-8").replace('\\"', '"')
        for m in doccites.CITATION.finditer(text):
            name, anchor, _, quoted, _ = m.groups()
            seen += 1
            topics = doccites.cited(m.group(0))
            if (anchor or quoted) and not (topics and "#" in topics[0]):
                wrong.append((path.name, m.group(0), topics))
            for topic in topics:
                name, _, section = topic.partition("#")
                if not docfiles.section_text(name, section or None).strip():
                    wrong.append((path.name, topic))
    assert seen > 50 and not wrong, wrong


def test_the_docs_command_lists_finds_and_refuses_by_name(capsys):
    """`hubensemble docs` lists every doc with its title and the folder; --path gives a
    file; a section goes by its anchor, its title or a message's citation as it is; a
    slip in a doc's or section's name is refused (2) with the one meant."""
    assert main(["docs"]) == 0
    out = capsys.readouterr().out
    assert str(DOCS) in out
    for doc in DOCS.glob("*.md"):
        title = doc.read_text(encoding="utf-8").splitlines()[0].lstrip("# ")
        assert f"  {doc.stem:<12} {title}" in out.splitlines()
    assert main(["docs", "--path", "docs/zoo.md"]) == 0
    assert capsys.readouterr().out == f"{DOCS / 'zoo.md'}\n"
    small = _section("reliability.md", "## Small machines")
    for topic in ("reliability#small-machines", "reliability#Small machines",
                  "docs/reliability.md#small-machines"):
        assert main(["docs", topic]) == 0
        assert capsys.readouterr().out.rstrip("\n") == small
    assert main(["docs", "dta"]) == 2
    assert "no doc 'dta' (did you mean data?); the docs are catalogue, cost, data" in (
        capsys.readouterr().err)
    assert main(["docs", "data#decodng"]) == 2
    assert "docs/data.md has no section 'decodng' (did you mean data#decoding?)" in (
        capsys.readouterr().err)
    assert main(["docs", "--path", "data#decodng"]) == 2  # a path, but not to no section


def test_sections_follow_githubs_anchors():
    """A `#` line in a fenced block is no heading; a repeated heading is "-1"; a section
    runs to the next heading of its level or higher; a bold-lead paragraph is a section up
    to the next one; the anchors of every doc are test_docs' GitHub rule's."""
    text = ("# Top\n\n## A `b:` [c](x.md)\n\n**Lead one.** x\n\n```sh\n# not a heading\n```\n"
            "\n**Lead two.** y\n\n### Deeper\n\n## A `b:` [c](x.md)\n\nend\n")
    found = [(s.anchor, s.level, s.start, s.end) for s in docfiles.sections(text)]
    assert found == [("top", 1, 0, 17), ("a-b-c", 2, 2, 14), ("lead-one", 0, 4, 10),
                     ("lead-two", 0, 10, 12), ("deeper", 3, 12, 14), ("a-b-c-1", 2, 14, 17)]
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from test_docs import _anchors
    finally:
        sys.path.remove(str(ROOT / "tests"))
    for doc in DOCS.glob("*.md"):
        doc_text = doc.read_text(encoding="utf-8")
        assert {s.anchor for s in docfiles.sections(doc_text) if s.level} == _anchors(doc_text)


def test_without_installed_docs_a_message_is_left_as_it_is_and_the_command_says_why(
        monkeypatch):
    """A broken install (the docs left out): no way to read is promised, and `hubensemble
    docs` says to reinstall."""
    monkeypatch.setattr(docfiles, "docs_folder", lambda: None)
    said = "see docs/data.md#decoding"
    assert doccites.with_way_to_read(said) == said
    with pytest.raises(HubensembleError, match="docs are not installed with it.*reinstall"):
        docfiles.doc_file("data")
