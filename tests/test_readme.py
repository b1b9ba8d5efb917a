"""The README's set-up commands are the ones CI runs."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def readme_commands():
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```sh\n(.*?)```", text, re.S).group(1)
    return [line for line in first_block.splitlines() if line.strip()]


def test_ci_runs_the_readmes_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    test_command = [c for c in readme_commands() if "pytest" in c]
    assert len(test_command) == 1
    assert test_command[0] in ci


def test_readme_starts_with_the_set_up_commands():
    text = (ROOT / "README.md").read_text()
    assert text.index("```sh") < text.index("\n## ")


def test_the_readmes_python_examples_name_catalogues_that_exist_outside_a_checkout(
        tmp_path, monkeypatch):
    """A new-user check: README's Python example, pasted outside a checkout, failed on
    fit(catalogue="catalogue/demo.yaml") (No such file): a repository path. Its catalogues are
    the shipped ones (hubensemble.shipped_catalogue), found from any folder; a repository
    path of a shipped catalogue, missing here, names the file to pass instead."""
    import pytest

    import hubensemble
    from hubensemble.catalogue import load_catalogues
    from hubensemble.errors import CatalogueError
    from hubensemble.text import shell

    text = (ROOT / "README.md").read_text()
    python = "".join(re.findall(r"```python\n(.*?)```", text, re.S))
    assert "catalogue=" in python and 'catalogue="' not in python, python
    monkeypatch.chdir(tmp_path)  # not a checkout
    for name in re.findall(r'shipped_catalogue\("([^"]+)"\)', python):
        assert load_catalogues([hubensemble.shipped_catalogue(name)])
    with pytest.raises(CatalogueError) as missing:
        load_catalogues(["catalogue/demo.yaml"])
    shipped = hubensemble.shipped_catalogue("demo.yaml")
    assert str(missing.value).endswith(
        f"; the package ships demo.yaml: --catalogue {shell(shipped)}, from Python "
        "hubensemble.shipped_catalogue('demo.yaml')"), missing.value


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Flags the docs quote as refused, in the refusal's example (`rank merge S --out M --bogus`).
REFUSED_EXAMPLES = {"--bogus"}


def _doc_commands(prog):
    """(doc file name, words after `prog`) of each command line that the docs' code blocks and
    inline code spans give `prog` (`hubensemble`, `tools/vtab.py`), continuation lines
    (a trailing backslash, or a synopsis' indented `[…` line) joined; the words stop at a
    shell separator or comment."""
    found = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        lines = []
        for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
            # A synopsis wraps its options onto indented lines that start with `[`
            # (export.md, report.md), without a backslash: they belong to the line above.
            lines += re.sub(r"\\\n|\n[ \t]+(?=\[)", " ", block).splitlines()
        lines += re.findall(r"`([^`\n]+)`", text)
        for line in lines:
            line = re.sub(r"\s\|\|?\s", " ; ", line)  # a pipe; `a|b` is a choice
            for m in re.finditer(rf"(?:^|[\s;&(/]){re.escape(prog)}\s+([^;&#]*)", line):
                if "error:" not in m.group(1):  # a quoted refusal, not a command
                    found.append((path.name, m.group(1).split()))
    return found


def _flags(words):
    return [re.match(r"--[a-z0-9-]+", w.lstrip("[")).group()
            for w in words if re.match(r"\[?--[a-z]", w)]


def _parsers(parser, path=()):
    import argparse

    found = {path: parser}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(_parsers(sub, path + (name,)))
    return found


def test_every_flag_the_docs_give_a_command_is_one_it_takes():
    """Each `hubensemble COMMAND … --flag` (and `tools/vtab.py … --flag`) line of README.md and
    docs/*.md names a flag that COMMAND's parser takes, so a renamed or removed flag cannot
    stay documented; the docs' commands were checked by hand before (all taken)."""
    import sys

    from hubensemble.cli import build_parser

    parsers = _parsers(build_parser())
    takes = {path: {s for a in p._actions for s in a.option_strings}
             for path, p in parsers.items()}
    wrong, seen = [], 0
    for doc, words in _doc_commands("hubensemble"):
        path = ()
        while words[len(path):] and path + (words[len(path)],) in parsers:
            path += (words[len(path)],)
        if not path:  # `hubensemble --version`, or a flag typed before the command
            continue
        seen += 1
        wrong += [(doc, " ".join(path), f) for f in _flags(words[len(path):])
                  if f not in takes[path] | REFUSED_EXAMPLES]
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import vtab
    finally:
        sys.path.remove(str(ROOT / "tools"))
    vtab_takes = {s for a in vtab.build_parser()._actions for s in a.option_strings}
    for doc, words in _doc_commands("vtab.py"):
        seen += 1
        wrong += [(doc, "tools/vtab.py", f) for f in _flags(words) if f not in vtab_takes]
    assert seen > 40 and not wrong, wrong


def test_every_option_of_the_table_is_documented():
    """Every flag of hubensemble.options is named in README.md or docs/*.md: fit's
    --no-corruptions was in `--help` only (the evaluate stage it skips is in docs/report.md)."""
    from hubensemble import options

    text = "\n".join(path.read_text(encoding="utf-8") for path in DOCS)
    flags = {(o.name, flag) for o in options.OPTIONS
             for flag in (*o.cli_flags, *(f for v in (o.variants or {}).values()
                                          for f in v.get("flags", ())))}
    missing = sorted((name, flag) for name, flag in flags
                     if not re.search(re.escape(flag) + r"(?![a-z0-9-])", text))
    assert not missing, missing


def _documented_values(parsers):
    """(doc, command, flag, value, argparse action) of each `hubensemble COMMAND … --flag VALUE`
    (or `--flag=VALUE`) in README.md and docs/*.md whose flag COMMAND takes."""
    found = []
    for doc, words in _doc_commands("hubensemble"):
        path = ()
        while words[len(path):] and path + (words[len(path)],) in parsers:
            path += (words[len(path)],)
        if not path:
            continue
        actions = {s: a for a in parsers[path]._actions for s in a.option_strings}
        rest = words[len(path):]
        for i, word in enumerate(rest):
            m = re.match(r"(\[?)(--[a-z0-9-]+)(?:=(.*))?$", word.rstrip("]"))
            if not m or m.group(2) not in actions:
                continue
            value = m.group(3) if m.group(3) is not None else (
                rest[i + 1] if i + 1 < len(rest) else "")
            if value and not value.startswith("-"):
                found.append((doc, " ".join(path), m.group(2), value.rstrip("]").strip("`"),
                              bool(m.group(1)), actions[m.group(2)]))
    return found


def test_the_choices_and_defaults_the_docs_give_a_flag_are_the_parsers():
    """A doc's `--flag a|b|c` names only values the flag's parser accepts, and a synopsis'
    `[--flag 15]` (an optional flag shown with a number) shows the flag's default, so a
    renamed choice or a changed default cannot stay documented. The docs' synopses were
    compared with `hubensemble COMMAND --help` by hand before (all agreed)."""
    from hubensemble.cli import build_parser

    wrong, seen = [], 0
    for doc, command, flag, value, optional, action in _documented_values(
            _parsers(build_parser())):
        if "|" in value and action.choices:
            seen += 1
            wrong += [(doc, command, flag, v, "not a choice") for v in value.split("|")
                      if v not in action.choices]
        elif optional and re.fullmatch(r"\d+(\.\d+)?", value):
            seen += 1
            if not isinstance(action.default, (int, float)) or (
                    float(value) != float(action.default)):
                wrong.append((doc, command, flag, value, f"default {action.default!r}"))
    assert seen > 20 and not wrong, wrong
