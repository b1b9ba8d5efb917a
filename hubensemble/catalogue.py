"""Catalogue YAML files → validated, typed ModuleSpec records, with file:line errors.

Each field's check and its message live in `catalogue_fields` (re-exported here)."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import types
from dataclasses import dataclass

import yaml

from hubensemble.catalogue_fields import (  # noqa: F401 - re-exported
    FAMILIES, FIELD_NAMES, INPUT_DTYPES, MAX_INPUT_SIDE, NO_DEFAULT_FIELDS, RANGE_YAML, SHA256_RE,
    SHOWN_CHARS, TOP_LEVEL_KEYS, VALUE_RANGES, checked_stored_handle, checked_stored_weights,
    parse_value_range, sha256_hint, shown)
# The field checks' own helpers, for ModuleSpec and the parser (one package, split by concern).
from hubensemble.catalogue_fields import _CHECKS, DEFAULTED, _Bad, _handle_checked
from hubensemble.catalogue_fields import said, spec_hint_form, spec_hints
from hubensemble.catalogue_files import (  # noqa: F401 - re-exported
    CATALOGUE_EXAMPLE, SHIPPED_EXAMPLE, _catalogue_path, read_catalogue_file, shipped_catalogue,
    shipped_catalogues)
from hubensemble.catalogue_yaml import alias_lines as _alias_lines
from hubensemble.catalogue_yaml import construct as _construct, node_kind as _kind
from hubensemble.catalogue_yaml import VALUE_ANCHOR, node_line as _line, pairs as _pairs
from hubensemble.catalogue_yaml import unseen_characters as _unseen_characters
from hubensemble.catalogue_yaml import (as_text as _as_text, plain as _plain,  # noqa: F401
                                        quoted as _quoted, typed_plain as _typed_plain,
                                        yaml_type as _yaml_type)
from hubensemble.errors import CatalogueError, checks_keywords, held_stops
from hubensemble.handlehere import relative_path, remember_record, remember_written
from hubensemble.recordargs import requires
from hubensemble.text import closest_name, json_shown
from hubensemble.handles import (NAME_RE, HandleFormError, check_handle_form,  # noqa: F401
                                 check_weights, handle_kind, local_source, source_problems,
                                 stored_handle, stored_weights)
from hubensemble.kagglehandles import kaggle_url  # noqa: F401
# Each local handle's warnings (`catalogue validate`): handles' and its files' (a preset's).
from hubensemble.modulefiles import local_handle_warnings  # noqa: F401


#: The catalogue field a loader stage's failure is the fault of (`ModuleSpec.fault_source`):
#: a handle with nothing there or of no accepted form, a keras: weights file, a sha256 pin
#: the files do not match. Stages not listed (a module that fails to load, to scan safely, to
#: give an output) are the entry's: no one field is at fault.
FAULT_FIELDS = {"local path": "handle", "handle": "handle", "keras weights": "weights",
                "checksum": "sha256"}


@checks_keywords
@requires("ModuleSpec(name='bit-r50', handle='https://tfhub.dev/google/bit/m-r50x1/1')",
          name="a str: the module's name in rankings and reports",
          handle="where the module lives: a TF Hub or Kaggle URL, keras:NAME, a local folder "
                 "or model file")
@dataclass(frozen=True)
class ModuleSpec:
    """One catalogue entry: where a pre-trained image module lives and how to feed it.

    Made in Python, each field is checked as a YAML entry's: ValueError naming each field at
    fault and what to write; TypeError naming `name` or `handle` when left out and what
    each takes (`recordargs.requires`)."""

    name: str
    handle: str
    sha256: str | None = None
    input_size: tuple[int, int] | None = None
    # The size a module that takes any size was pre-trained at (probes embed at it).
    native_size: tuple[int, int] | None = None
    value_range: str = "0,1"
    output_dim: int | None = None
    family: str = "other"
    architecture: str | None = None
    upstream: str | None = None
    subtree: str | None = None
    params: int | None = None
    license: str | None = None
    tags: tuple[str, ...] = ()
    seed: int | None = None
    trust: bool = False
    output_key: str | None = None
    input_dtype: str | None = None  # None: the dtype the module's traced signature takes
    weights: str | None = None  # keras:NAME only: "imagenet" (None means it) or a weights file
    layer: str | None = None  # .keras/.h5 only: the layer whose output is the embedding
    signature: str | None = None  # SavedModels: the signature to call instead of __call__
    source: str = ""  # "/abs/path/to/file.yaml:LINE" of the entry, for messages (older
    # run.json files may hold the path as typed, relative to the folder rank ran in)
    # The handle as the catalogue wrote it when that is a relative path ("./mods/m0"; `handle`
    # holds it absolute, joined to the catalogue's folder), else None: every stage names the
    # module so, in any process (run.json keeps it; the handlehere memo alone named it in
    # the process that read the catalogue, a later tune/export/predict the absolute path).
    # Like `source`, it describes the entry: not compared, and in to_json only when set.
    written: str | None = dataclasses.field(default=None, compare=False)
    # {field: LINE} of each field the YAML gave (in the entry or `defaults:`, the latter's
    # named by lines[DEFAULTED]), so a message on one field names its own line
    # (`field_source`); like a comment, not part of the entry: not compared, not in to_json.
    lines: dict | None = dataclasses.field(default=None, compare=False, repr=False)

    def __post_init__(self):
        # Records built in code (zoo builder, from_json) get the same checks as YAML entries,
        # and lists become tuples so that a spec stays hashable and comparable.
        # Its hints in its caller's words (`spec_hint_form`): a Python caller is told
        # `input_size=(32, 32)`, not a catalogue's `input_size: [32, 32]`.
        problems, form = [], spec_hint_form()
        for f in FIELD_NAMES:
            value = getattr(self, f)
            try:
                if f == "handle":
                    _handle_checked(check_handle_form, value)
                    continue
                checked = _CHECKS[f](value)
            except _Bad as bad:
                problems.append(f"field {f!r}: {said(bad.problem_parts, form)}; "
                                f"{said(bad.parts, form)}")
                continue
            if checked is not value:
                object.__setattr__(self, f, checked)
        if not isinstance(self.source, str):
            problems.append("field 'source': must be a string like 'file.yaml:12'")
        if self.written is not None and not relative_path(self.written):
            problems.append("field 'written': must be None or the relative path the catalogue "
                            "wrote for the handle, like './mods/m0'")
        if not problems:
            problems.extend(f"field {p.field!r}: {p.problem}; {said(p.parts, form)}"
                            for p in source_problems(self.__dict__))
        if problems:
            raise ValueError(f"invalid ModuleSpec {shown(self.name)}: " + "; ".join(problems))

    def to_json(self) -> dict:
        """The entry as a JSON-ready dict (run.json's "modules"); `from_json` reverses it."""
        d = dataclasses.asdict(self)
        del d["lines"]
        if d["written"] is None:  # an entry of an absolute handle: its record as before
            del d["written"]
        d["input_size"] = list(self.input_size) if self.input_size is not None else None
        d["native_size"] = list(self.native_size) if self.native_size is not None else None
        d["tags"] = list(self.tags)
        return d

    def field_source(self, field) -> str:
        """"FILE:LINE" of `field` (a FIELD_NAMES name) where the catalogue wrote it, in this
        entry or in `defaults:`; the entry's `source` when that line is not known (a field
        left to its default, a spec built in code or read back from run.json)."""
        return _field_source(self.source, self.lines, field)

    def fault_source(self, stage) -> str:
        """"FILE:LINE" a failure of this entry at loader stage `stage` (a ModuleLoadError's:
        "local path", "keras weights", …) cites: the line of the field at fault
        (`FAULT_FIELDS`, `field_source`), else the entry's `source`. The one convention
        of rank and validate: rank cited a missing handle at the entry's `- name:` line
        (bad1.yaml:2), validate at its `handle:` line (bad1.yaml:3)."""
        field = FAULT_FIELDS.get(stage)
        return self.field_source(field) if field else self.source

    @classmethod
    def from_json(cls, d) -> "ModuleSpec":
        """The ModuleSpec of a `to_json` dict; ValueError naming unknown or invalid fields,
        an invalid one as the JSON holds it ('its "input_size" is "abc", which is not a pair
        of positive integers': run.json's damaged entry was told in a catalogue file's YAML,
        "'abc' …; write input_size: [224, 224] … instead")."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown ModuleSpec {'field' if len(unknown) == 1 else 'fields'} "
                             f"{', '.join(map(repr, unknown))}; known: {sorted(known)}")
        for field in FIELD_NAMES:
            if field in d and field != "handle":
                try:
                    _CHECKS[field](d[field])
                except _Bad as bad:
                    said = shown(d[field])
                    raise ValueError(f'its "{field}" is {json_shown(d[field])}' + (
                        f", which {bad.problem[len(said):].lstrip()}"
                        if bad.problem.startswith(said) else f": {bad.problem}")) from None
        with spec_hints("yaml"):  # the handle's: run.json is no Python call
            spec = cls(**d)
        if spec.written is not None:  # the resolver, given the handle alone, names it so
            remember_record(spec.handle, spec.written)
        return spec


assert FIELD_NAMES == tuple(f.name for f in dataclasses.fields(ModuleSpec))[:-3]


def _field_source(source, lines, field) -> str:
    """"FILE:LINE" of `field` by `lines` ({field: LINE}, or None) in the file of `source`
    ("FILE:LINE" of the entry), else `source` itself."""
    line = (lines or {}).get(field)
    if line is None or ":" not in source:
        return source
    return f"{source.rsplit(':', 1)[0]}:{line}"


class PartialEntry(types.SimpleNamespace):
    """An entry with problems as far as it parsed (`parse_catalogue_text`'s `partial`): its
    valid fields (FIELD_NAMES, None when not written or not valid), `source` ("FILE:LINE" of
    the entry), `refused` (the fields written but not valid) and `lines` ({field: LINE} of
    each field written, in the entry or `defaults:`), so that a problem found later of one
    of its fields names that field's line, as a ModuleSpec's does (`field_source`): a bad
    zoo: handle of an entry with a bad family named the entry's `- name:` line."""

    def field_source(self, field) -> str:
        """"FILE:LINE" of `field` where the catalogue wrote it, else the entry's `source`."""
        return _field_source(self.source, self.lines, field)


# ---------------------------------------------------------------------------- loading


class _Report:
    """Problems found in one catalogue file, each as 'FILE:LINE: …; hint'."""

    def __init__(self, label):
        self.label = label
        self.items = []  # (line, text)
        self.partial = []  # the entries with problems, as far as they parsed

    def add(self, line, message):
        self.items.append((line, f"{self.label}:{line}: {message}"))

    def field(self, line, field, problem, hint):
        self.add(line, f"field {shown(field)}: {problem}; {hint}")

    def lines(self):
        return [text for _, text in sorted(self.items, key=lambda item: item[0])]


def _unknown(report, line, key, known, what):
    """Report an unknown key; returns the known key it was probably meant to be (git's rule,
    `text.closest_name`: difflib missed HANDLE for handle), or None."""
    close = closest_name(key, known)
    if close:
        hint = f"write {close!r} instead"
    else:
        hint = f"write one of {', '.join(known)} instead"
    report.field(line, key, f"unknown {what}", hint)
    return close


def _check_field(loader, key, line, node, base_dir, report, handle=None):
    """(ok, value) of one field; problems go to the report. `handle`: the entry's stored
    handle when it parsed, for a refused sha256's hint (`sha256_hint`)."""
    ok, value = _construct(loader, node, report, key)
    if not ok:
        return False, None
    try:
        return True, _checked(key, value, base_dir)
    except _Bad as bad:
        problem, hint = bad.problem, bad.hint
        scalar = isinstance(node, yaml.ScalarNode)
        typed = _typed_plain(node, value)
        if scalar and value is None and node.value:
            # `~` or `null` alone is YAML's null: `handle: ~` meant a path in the home folder
            text = shown(node.value, text=True)
            problem = f"`{text}` alone is YAML's null (no value), not the text {text!r}"
            if key in ("handle", "weights") and text == "~":
                hint = (f"quote it to mean a path ({key}: '~/…' for one in your home folder), "
                        f"or {hint}")
            elif key == "name":
                hint = "write the entry's own name instead, e.g. name: my-module"
        elif typed and key not in _NOT_TEXT and (
                refused := _refusal(key, _as_text(node, value), base_dir)) is not None:
            # The text as written is wrong too (`family: no`): its own problem, which echoes
            # what was written, not what YAML made of it ("unknown family False").
            text = _as_text(node, value)
            problem, hint = refused.problem, (sha256_hint(text, handle) if key == "sha256"
                                              else refused.hint)
        elif typed and key not in _NOT_TEXT:
            # `sha256: 000…0` is YAML's integer 0, `name: yes` its True, `subtree: 2020-01-01`
            # a date: the text as written is valid, and quoting it is the whole fix.
            read = " and ".join(f"`{shown(text, text=True)}` as {_yaml_type(made)}"
                                for text, made in typed)
            problem = f"YAML reads the unquoted {read}, not as text" + (
                " (YAML 1.1, which PyYAML reads: yes, no, on and off are booleans)"
                if any(isinstance(made, bool) for _, made in typed) else "")
            written = (_quoted(node.value) if scalar else
                       "[" + ", ".join(_quoted(item.value) for item in node.value) + "]")
            hint = f"write {key}: {shown(written, text=True)} (quoted) instead"
        elif key == "sha256":
            hint = sha256_hint(value, handle)
        report.field(line, key, problem, hint)
        return False, None


def _checked(key, value, base_dir):
    """The field `key`'s checked value, or _Bad."""
    if key == "handle":
        return checked_stored_handle(value, base_dir)
    if key == "weights":
        return checked_stored_weights(value, base_dir)
    return _CHECKS[key](value)


def _refusal(key, value, base_dir):
    """The _Bad of field `key`'s check of `value`, or None when it passes."""
    try:
        _checked(key, value, base_dir)
    except _Bad as bad:
        return bad
    return None


#: The fields whose values are not text (numbers, pairs, a boolean): an unquoted scalar YAML
#: read as a number there is not a text it mistook.
_NOT_TEXT = ("input_size", "native_size", "output_dim", "params", "seed", "trust")


# libyaml's parser (PyYAML's C extension, when built with it) reads a 2,000-entry catalogue
# about ten times faster than the pure-Python one; the nodes, tags and line numbers are the
# same. A text it rejects is read again by the Python parser, whose messages the syntax
# errors quote.
_FAST_LOADER = getattr(yaml, "CSafeLoader", None) if yaml.__with_libyaml__ else None


@contextlib.contextmanager
def _collector_paused():
    """The cyclic garbage collector off while a catalogue is parsed (on again after, if it
    was on). Parsing makes ~10^5 small containers, none of them in a cycle, and each batch of
    them triggers a collection over every tracked object of the process: with TensorFlow
    imported (~4 x 10^5 objects) those collections took more than half the CPU time of a
    2,000-entry catalogue (0.40 s -> 0.17 s measured)."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:  # whole (errors.held_stops): a Ctrl-C here left the collector off for good
        with held_stops():
            if was_on:
                gc.enable()


def parse_catalogue_text(text, label, base_dir, *, partial: list | None = None):
    """([ModuleSpec], [problem lines "LABEL:LINE: problem"]) of one catalogue's `text`;
    `label` names it in problems, relative handles and weights resolve against `base_dir`.
    Never raises for bad content: every problem is a line (see `raise_problems`).
    `partial`: a list that gets each entry with problems as far as it parsed, a
    `PartialEntry` of its valid fields (defaults taken; a field not written or not
    valid is None), `source` "LABEL:LINE", `refused` (the fields written but not valid) and
    the lines of the fields written (`PartialEntry.field_source`),
    for `catalogue validate` to check those entries' handles too (`zoo.config`): their
    problems came only once the entry's others were fixed."""
    with _collector_paused():
        specs, lines, report = _parse_text(text, label, base_dir)
    if partial is not None:
        partial.extend(report.partial)
    return specs, lines


def _parse_text(text, label, base_dir):
    if unseen := _unseen_characters(text):  # YAML would misread the lines, or another one
        report = _Report(label)
        for line, problem in unseen:
            report.add(line, problem)
        return [], report.lines(), report
    if _FAST_LOADER is not None:
        loader = _FAST_LOADER(text)
        try:
            root = loader.get_single_node()
            report = _Report(label)
            return _parse_root(loader, root, base_dir, report, text), report.lines(), report
        except yaml.YAMLError:
            pass  # a syntax error: reported by the Python parser below, with its messages
        finally:
            loader.dispose()
    report = _Report(label)
    loader = yaml.SafeLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            said = f"{e.context}, {e.problem}" if e.context else e.problem  # PyYAML's order
            way = ("YAML indents with spaces only: replace each tab on this line with spaces"
                   if "'\\t'" in str(e.problem) else  # "found character '\t' that cannot…"
                   "check the indentation of this line and the one before it")
            report.add(mark.line + 1 if mark else 1,
                       f"YAML syntax error: {said}; {way} (fields of an entry line up under "
                       f"`name:`) and close every [ and quote")
            return [], report.lines(), report
        except yaml.YAMLError as e:
            report.add(1, f"YAML syntax error: {e}; fix the file's syntax")
            return [], report.lines(), report
        return _parse_root(loader, root, base_dir, report, text), report.lines(), report
    finally:
        loader.dispose()


def _parse_root(loader, root, base_dir, report, text):
    example = "write `modules:` followed by entries like `  - name: my-module` instead"
    if root is None:
        report.add(1, f"the catalogue is empty; {example}")
        return []
    if not isinstance(root, yaml.MappingNode):
        hint = ("indent the list under a `modules:` line" if isinstance(root, yaml.SequenceNode)
                else example)
        report.add(_line(root), f"the top level is {_kind(root)}, not a mapping; {hint}")
        return []
    sections, misspelt = {}, False
    for key, line, node in _pairs(loader, root, report, "top-level"):
        if key not in TOP_LEVEL_KEYS:
            misspelt |= _unknown(report, line, key, TOP_LEVEL_KEYS, "top-level key") == "modules"
            continue
        sections[key] = (line, node)
    defaults = _parse_defaults(loader, sections.get("defaults"), base_dir, report)
    if "modules" not in sections:
        if misspelt:  # "module:" already got a "write 'modules' instead"
            return []
        report.field(_line(root), "modules", "missing",
                     "write `modules:` followed by entries like `  - name: my-module` "
                     "with a handle")
        return []
    line, node = sections["modules"]
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        problem = ("is an empty list" if isinstance(node, yaml.SequenceNode)
                   else f"is {_kind(node)}, not a list of entries")
        report.field(line, "modules", problem,
                     "write entries under it like `  - name: my-module` and "
                     "`    handle: https://tfhub.dev/google/bit/m-r50x1/1`")
        return []
    specs, names, nodes, written_to, aliases = [], {}, {}, node.start_mark.index, None
    for index, item in enumerate(node.value, start=1):
        # `- *e`: YAML hands over the anchored node itself, which starts before where the
        # list has come to (the previous entry's end); the alias's own line is read again
        # (`alias_lines`): the refusal named the anchor's line, where nothing is wrong.
        if item.start_mark.index < written_to:
            aliases = _alias_lines(text, "modules") if aliases is None else aliases
            at = aliases.get(index - 1, _line(item))
            what = (f"entry {nodes[id(item)]} (line {_line(item)}): the same fields again, "
                    "its name too" if id(item) in nodes else
                    f"{_kind(item)} written at line {_line(item)}, not an entry of its own")
            # An alias of a value (`- *nm` of `name: &nm good`): its merge is refused too
            # (catalogue_yaml.pairs), so the advice is the anchor's own (VALUE_ANCHOR).
            advice = (VALUE_ANCHOR
                      if isinstance(item, yaml.ScalarNode) else
                      "; to reuse its fields write `- <<: *NAME` with a `name:` of its own")
            report.add(at, f"entry {index} of modules is an alias (`*NAME`) of {what}{advice}")
            continue
        written_to = item.end_mark.index
        nodes[id(item)] = index
        name, name_line, spec = _parse_entry(loader, index, item, defaults, base_dir, report)
        # Names are checked even in entries with other problems, so one run shows them all.
        # Both by their `name:` lines, as every problem of a field names its line (the
        # entries' `- …:` lines were named, where `name:` may sit lines below).
        if name is not None and name in names:
            report.field(name_line, "name",
                         f"{name!r} is already used by the entry at "
                         f"{report.label}:{names[name]}",
                         "write a name that no other entry uses instead")
            if spec is not None:  # its handle is still checked (`catalogue validate`)
                report.partial.append(spec)
            continue
        if name is not None:
            names[name] = name_line
        if spec is not None:
            specs.append(spec)
    return specs


def _parse_defaults(loader, section, base_dir, report):
    """{field: (value, its line)} of the `defaults:` mapping; invalid defaults are reported
    once."""
    if section is None:
        return {}
    line, node = section
    if not isinstance(node, yaml.MappingNode):
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            return {}
        report.field(line, "defaults", f"is {_kind(node)}, not a mapping",
                     "write fields indented under it, e.g. `  family: expert`")
        return {}
    defaults = {}
    for key, key_line, value_node in _pairs(loader, node, report, "defaults"):
        if key == "sha256":  # one file's hash: wrong for every entry but at most one
            report.field(key_line, key, "cannot have a default: a sha256 pins one file (the "
                         "archive, saved_model.pb or model file of one handle), so one value "
                         "cannot be right for every entry",
                         "move sha256: into the entry whose file it is the hash of")
            continue
        if key in NO_DEFAULT_FIELDS:
            report.field(key_line, key, "cannot have a default (every entry needs its own)",
                         f"write {key}: in each entry instead")
            continue
        if key not in _CHECKS:
            _unknown(report, key_line, key, [f for f in FIELD_NAMES
                                             if f not in NO_DEFAULT_FIELDS], "field in defaults")
            continue
        ok, value = _check_field(loader, key, key_line, value_node, base_dir, report)
        if ok:
            defaults[key] = value, key_line
    return defaults


def _parse_entry(loader, index, item, defaults, base_dir, report):
    """(valid name or None, the line of its `name:`, ModuleSpec or None) of one entry of
    `modules:`; the spec is None when the entry has problems, which go to the report."""
    line = _line(item)
    if not isinstance(item, yaml.MappingNode):
        report.add(line, f"entry {index} of modules is {_kind(item)}, not a mapping; write "
                         f"`- name: my-module` with `handle: …` and other fields lined up "
                         f"under `name:` instead")
        return None, line, None
    before = len(report.items)
    fields, present, lines, typed = {}, set(), {}, None
    # The handle first, wherever it is written: a refused sha256's hint depends on it (the
    # report is in line order whatever the order of the checks).
    for key, key_line, value_node in sorted(_pairs(loader, item, report, "entry"),
                                            key=lambda pair: pair[0] != "handle"):
        present.add(key)
        lines[key] = key_line
        if key not in _CHECKS:
            _unknown(report, key_line, key, FIELD_NAMES, "field")
            continue
        ok, value = _check_field(loader, key, key_line, value_node, base_dir, report,
                                 fields.get("handle"))
        if ok:
            fields[key] = value
            if key == "handle":  # kept absolute: a relative one is named as written too
                written = getattr(value_node, "value", None)
                typed = written if relative_path(written) else None
                remember_written(value, typed)
    for required, example in (("name", "my-module"),
                              ("handle", "https://tfhub.dev/google/bit/m-r50x1/1")):
        if required not in present:
            report.field(line, required, f"missing in entry {index}",
                         f"write `{required}: {example}` in this entry")
    taken = [key for key in defaults if key not in fields and key not in present]
    written = {key: lines[key] for key in fields} | {DEFAULTED: frozenset(taken)}
    for key in taken:  # `defaults:`' values and their lines, the fields DEFAULTED names
        fields[key], written[key] = defaults[key]
    if len(report.items) == before:
        for found in source_problems(fields):
            field, problem, hint = found.field, found.problem, found.hint
            if field not in present and field in written:  # `defaults:`' value: its line
                problem = (f"(the `defaults:` value, taken by entry "
                           f"{shown(fields.get('name'))} at {report.label}:{line}) {problem}")
                hint = f"move {field}: from `defaults:` into the entries it fits"
            report.field(written.get(field, line), field, problem, hint)
    name_line = lines.get("name", line)
    if len(report.items) > before:
        report.partial.append(PartialEntry(**{
            **dict.fromkeys(FIELD_NAMES), **fields, "source": f"{report.label}:{line}",
            "refused": sorted(present - set(fields)), "lines": {**lines, **written}}))
        return fields.get("name"), name_line, None
    return fields["name"], name_line, ModuleSpec(**fields, source=f"{report.label}:{line}",
                                                 written=typed, lines=written)


def raise_problems(problems):
    """Raises one CatalogueError listing `problems` (lines "FILE:LINE: problem"), kept in its
    `problems` attribute for callers that show them one by one."""
    err = CatalogueError.of_lines(problems)
    err.problems = list(problems)
    raise err


@checks_keywords
def load_catalogue(path) -> list[ModuleSpec]:
    """All entries of one catalogue file `path` (str or os.PathLike); a CatalogueError lists
    every problem found; TypeError naming `path` for another type."""
    _catalogue_path("load_catalogue", "path", path)
    specs, problems = parse_catalogue_text(*read_catalogue_file(path))
    if problems:
        raise_problems(problems)
    return specs


@checks_keywords
def load_catalogues(paths) -> list[ModuleSpec]:
    """The entries of several catalogues, in order; names must be unique across all of them.

    The same file given twice is read once. `paths`: a list (any iterable) of str or
    os.PathLike; TypeError naming it for one path alone (a str was read as one file per
    character) or for another type, and for an item that is not a path.
    """
    if isinstance(paths, (str, bytes, os.PathLike)) or not hasattr(paths, "__iter__"):
        from hubensemble.text import described

        raise TypeError(f"load_catalogues() paths must be a list of catalogue YAML paths, got "
                        f"{described(paths)}; e.g. paths=[{CATALOGUE_EXAMPLE!r}] (one file: "
                        f"load_catalogue(path))")
    paths = list(paths)
    for i, path in enumerate(paths):
        _catalogue_path("load_catalogues", f"paths[{i}]", path)
    specs, problems, seen_files, by_name = [], [], set(), {}
    for path in paths:
        real = os.path.realpath(os.fspath(path))
        if real in seen_files:
            continue
        seen_files.add(real)
        file_specs, file_problems = parse_catalogue_text(*read_catalogue_file(path))
        problems.extend(file_problems)
        for spec in file_specs:
            if spec.name in by_name:  # by the `name:` lines (`zoo.config._names_across`)
                problems.append(f"{spec.field_source('name')}: field 'name': {spec.name!r} is "
                                f"already defined at {by_name[spec.name].field_source('name')}; "
                                f"rename one of them or leave one catalogue out")
                continue
            by_name[spec.name] = spec
            specs.append(spec)
    if problems:
        raise_problems(problems)
    return specs
