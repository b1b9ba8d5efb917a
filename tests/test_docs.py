"""docs/*.md and README.md name code, files and sections that exist: a user who follows a
link, opens a named file or looks up a named function finds it. Static checks (the package's
text, no import of it, no TensorFlow), well under a second."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
PKG = ROOT / "hubensemble"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: run.json record paths the docs write dotted, whose first parts are a module's path
#: (run.json's "data" -> "task" -> "skipped" reads as hubensemble.data.task.skipped).
RECORD_PATHS = {"data.task.skipped", "data.task.dropped", "data.task.shrunk"}


def _module_file(parts):
    base = PKG.joinpath(*parts)
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return base.with_suffix(".py") if parts and base.with_suffix(".py").is_file() else None


def _defined(path, _memo={}):
    """The names a module defines (functions, classes, assignments, imports), read from its
    text at the top level or one indent in (under an `if` or `try`; a method's name too, which
    only lets a name pass). A regular expression, not the ast: parsing the modules took most of
    this test's time."""
    if path not in _memo:
        text = path.read_text(encoding="utf-8")
        found = set(re.findall(r"^(?: {4})?(?:async def|def|class) (\w+)", text, re.M))
        found |= set(re.findall(r"^(?: {4})?(\w+)(?: *:[^=\n]*)? *=(?!=)", text, re.M))
        for names in re.findall(r"^(?: {4})?(?:from \S+ )?import (\([^)]*\)|[^(\n]+)", text,
                                re.M):
            names = re.sub(r"#.*|[()]", "", names)
            found |= {w.split(" as ")[-1].strip().split(".")[0] for w in names.split(",")}
        _memo[path] = found
    return _memo[path]


def test_the_code_the_docs_name_exists():
    """Each `hubensemble.MODULE.NAME` and `PACKAGE.MODULE.NAME` (`rank.ranking.rule_text`,
    `hub.remote.with_retries`) in a doc's code span is a module of the package and a name it
    defines. A shorter `MODULE.NAME` is not checked: `memory.max` (a cgroup file) and
    `tune.sweeps` (a run.json record) read the same."""
    wrong, seen = [], 0
    for doc in DOCS:
        for span in re.findall(r"`([^`\n]+)`", doc.read_text(encoding="utf-8")):
            for ref in re.findall(r"(?<![\w./-])((?:hubensemble\.)?[a-z_]\w*(?:\.[A-Za-z_]\w*)+)"
                                  r"(?![\w/-]|\.\w)", span):
                parts = ref.split(".")
                explicit = parts[0] == "hubensemble"
                parts = parts[explicit:]
                module = []
                while parts and _module_file(module + [parts[0]]):
                    module.append(parts.pop(0))
                if not module or not (explicit or len(module) >= 2) or ref in RECORD_PATHS:
                    continue
                seen += 1
                if parts and parts[0] not in _defined(_module_file(module)):
                    wrong.append((doc.name, ref))
    assert seen > 100 and not wrong, sorted(set(wrong))


def _anchors(text):
    """GitHub's heading anchors: lower case, a link's target and punctuation but `-` and `_`
    dropped, spaces `-`, a repeated one numbered "-1", "-2"; not a `#` line of a fenced code
    block (a shell comment in a ```sh block is no heading)."""
    text = re.sub(r"^(```|~~~).*?^\1", "", text, flags=re.M | re.S)
    anchors = set()
    for heading in re.findall(r"^#{1,6}[ \t]+(.*?)[ \t#]*$", text, re.M):
        heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())
        anchor = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        numbered = anchor
        for n in range(1, 100):
            if numbered not in anchors:
                break
            numbered = f"{anchor}-{n}"
        anchors.add(numbered)
    return anchors


def test_the_links_files_and_tests_the_docs_name_exist():
    """Each relative link `[…](file.md#anchor)` reaches a file and a heading of it; each
    repository path in a code span (`tools/benchmarks/faults.py`, `catalogue/bit_*.yaml`) is
    there; each test a doc names (`tests/test_x.py::test_y`, or a bare `test_…` name of a
    test function, five words or more: `test_fraction` is an option) is defined in tests/."""
    tests = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("*.py"))
    wrong = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for link in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", link):
                continue
            path, _, anchor = link.partition("#")
            target = (doc.parent / path) if path else doc
            if not target.exists():
                wrong.append((doc.name, "link", link))
            elif anchor and target.suffix == ".md" and anchor not in _anchors(
                    target.read_text(encoding="utf-8")):
                wrong.append((doc.name, "anchor", link))
        spans = re.findall(r"`([^`\n]+)`", text)
        for span in spans:
            for path in re.findall(r"(?<![\w/.~$-])((?:hubensemble|tools|tests|catalogue|docs)/"
                                   r"[\w./*-]*\w)", span):
                if not list(ROOT.glob(path.split("::")[0])):
                    wrong.append((doc.name, "path", path))
        for name in set(re.findall(r"\b(test(?:_[a-z0-9]+){4,})\b", text)):
            if not (ROOT / "tests" / f"{name}.py").exists() and not re.search(
                    rf"def {name}\(", tests):
                wrong.append((doc.name, "test", name))
    assert not wrong, wrong


def test_the_doc_sections_the_code_names_exist():
    """An error or docstring that sends the reader to `docs/NAME.md` names a doc that is
    there, and with `#anchor` (GitHub's, `_anchors`), or `, "Section"` (a heading, or a
    paragraph's bold lead `**Section.**`), one of its sections: a renamed heading or doc
    would leave the way on pointing nowhere (and `hubensemble docs NAME#anchor`, which
    those messages end with, refusing)."""
    sources = [*(ROOT / "hubensemble").rglob("*.py"), *(ROOT / "tools").rglob("*.py")]
    wrong, seen = [], 0
    for path in sources:
        text = path.read_text(encoding="utf-8")
        for doc in re.findall(r"(?<![\w/.-])docs/([a-z_]+\.md)", text):
            seen += 1
            if not (ROOT / "docs" / doc).is_file():
                wrong.append((path.name, f"docs/{doc}"))
        for doc, anchor in re.findall(r"docs/([a-z_]+\.md)#([a-z0-9_-]+)", text):
            seen += 1
            target = ROOT / "docs" / doc
            if not target.exists() or anchor not in _anchors(target.read_text(encoding="utf-8")):
                wrong.append((path.name, f"docs/{doc}#{anchor}"))
        for doc, section in re.findall(r"docs/([a-z_]+\.md),? \\?[\"']([^\"'\\\n]+)", text):
            seen += 1
            target = ROOT / "docs" / doc
            body = target.read_text(encoding="utf-8") if target.exists() else ""
            if not re.search(rf"^(?:#+ |\*\*){re.escape(section)}", body, re.M):
                wrong.append((path.name, f'docs/{doc}, "{section}'))
    assert seen > 10 and not wrong, wrong


#: Flags the docs quote with a command as refused, in the refusal's example (README.md:
#: `rank --topk 3`: `unrecognized arguments: --topk 3 (did you mean --top-k?)`).
# Flags the docs show refused on purpose: a mistyped one, another command's, and a folder
# typed under the flag of another command (README, "names the flag meant").
REFUSED = {("rank", "--topk"), ("predict", "--top-k"), ("predict", "--export"),
           ("evaluate", "--run"), ("report", "--model")}


def test_every_flag_the_docs_give_a_command_without_its_program_is_one_it_takes():
    """`fit --no-corruptions`, `tune --restart`, `rank merge --top-k 3`: the docs name a
    command's flag without `hubensemble ` before it far more often than with it (which
    test_readme checks); each such flag is one that command's parser takes."""
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from test_readme import _flags, _parsers
    finally:
        sys.path.remove(str(ROOT / "tests"))
    from hubensemble.cli import build_parser

    parsers = _parsers(build_parser())
    command = "|".join(sorted({path[0] for path in parsers if path}))
    wrong, seen = [], 0
    for doc in DOCS:
        for span in re.findall(r"`([^`\n]+)`", doc.read_text(encoding="utf-8")):
            for m in re.finditer(rf"(?:^|[\s(])(?<!hubensemble )({command})((?:\s+[a-z]+)?)"
                                 r"\s+(--[a-z][^;&|#]*)", span):
                path = (m.group(1),)
                if path + (m.group(2).strip(),) in parsers:
                    path += (m.group(2).strip(),)
                takes = {s for a in parsers[path]._actions for s in a.option_strings}
                for flag in _flags(m.group(3).split()):
                    seen += 1
                    if flag not in takes and (path[-1], flag) not in REFUSED:
                        wrong.append((doc.name, " ".join(path), flag, span))
    assert seen > 100 and not wrong, wrong
