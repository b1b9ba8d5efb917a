"""Writing catalogues: the YAML the zoo builder and `catalogue add` write (checked by
reading it back with the one parser, hubensemble.catalogue) and the table `catalogue list`
prints."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shlex

import yaml

from hubensemble.catalogue import (FIELD_NAMES, RANGE_YAML, ModuleSpec, checked_stored_handle,
                                   checked_stored_weights, parse_catalogue_text,
                                   raise_problems, read_catalogue_file)
from hubensemble.catalogue_fields import _CHECKS, ADD_FLAGS, _Bad, cli_parts
from hubensemble.errors import CatalogueError, HubensembleError
from hubensemble.fileio import atomic_write_text, check_file_target
from hubensemble.handlehere import tfhub_url, unnamed_handle
from hubensemble.handles import (HandleFormError, handle_kind, source_problems, stored_handle,
                                 stored_weights)
from hubensemble.localfiles import file_not_module, local_source, modules_inside
from hubensemble.pathnotes import sibling_note, weights_file_problem
from hubensemble.saidwords import WRITE, Say, flag_of, said
from hubensemble.samemodule import same_module_note, same_module_pairs
from hubensemble.lockwords import on_command_line, option_word
from hubensemble.text import absolute, cells, counted, escaped, ljust

log = logging.getLogger(__name__)


def check_new_entries(handles, *, name=None, base_dir=None, to=None, **fields) -> None:
    """The refusals catalogue entries of `handles` (with `name` and `fields`: weights, layer,
    signature, output_key, trust) meet before any module is loaded: `catalogue add` runs it
    before TensorFlow, so a mistyped handle or name is one line (it was a traceback after
    TensorFlow's seconds). Relative paths are relative to `base_dir` (default: the working
    folder). Raises CatalogueError naming the handle: its form (`handles.stored_handle`), a
    local path that does not exist (with its near name, as `catalogue validate` says it), a
    name or field value the field checks refuse (`_field_refusals`; an empty or blank
    `weights` as empty: it was made `base_dir`, "'/work' is not a Keras weights file"), a
    handle given twice (stored alike:
    `handles.stored_handle`), or one `name` for several handles (named in the caller's
    words, `lockwords.option_word`: "--name" on the command line, "name=" from Python; the
    command line was told "--name (name=)", a keyword it never typed). A handle refused
    with another to write is told it as the caller gives it (`_handle_hint`: on the command
    line the whole command, with `to`, the --to file)."""
    if name is not None and len(handles) > 1:
        flag = option_word("--name", "name=")
        raise CatalogueError(f"{flag} names a single HANDLE; add the others in another call, "
                             f"or leave {flag} out for names made from the handles")
    base_dir = base_dir or os.getcwd()
    weights = stored_weights(fields.get("weights"), base_dir)  # "": kept, refused as empty
    seen: dict[str, str] = {}
    for handle in handles:
        try:
            stored = stored_handle(handle, base_dir)
        except HandleFormError as e:
            text = f"{e.problem}; {_handle_hint(e.parts, handle, to, handles, name, fields)}"
            raise CatalogueError(text if text.startswith(repr(handle)) else
                                 f"cannot add {handle!r}: {text}") from None
        values = {**fields, "name": "module" if name is None else name, "weights": weights}
        refused = _field_refusals(stored, values)
        if refused:
            raise CatalogueError(f"cannot add {handle!r}: " + "; ".join(refused))
        try:  # (whatever the field checks above did not refuse, in ModuleSpec's words)
            ModuleSpec(handle=stored, **values)
        except ValueError as e:
            raise CatalogueError(f"cannot add {handle!r}: {e}") from None
        if handle_kind(stored) == "local" and not os.path.exists(stored):
            url = unnamed_handle(handle, base_dir) and tfhub_url(handle)  # relative, not here
            hint = "; " + _handle_hint(("for TF Hub's module ", WRITE, Say("handle", url)),
                                       handle, to, handles, name, fields) if url else ""
            from hubensemble.catalogue_urls import variables_note

            near = variables_note(stored) or sibling_note(stored)  # validate's words
            raise CatalogueError(f"cannot add {handle!r}: {stored} does not exist{near}{hint}")
        if stored in seen:  # each was loaded, and the second appended as the first's duplicate
            said = "" if seen[stored] == handle else f" (as {seen[stored]!r})"
            raise CatalogueError(f"cannot add {handle!r} twice: it was given before{said}, "
                                 "in this one call; give each "
                                 + option_word("HANDLE once", "handle once in handles"))
        seen[stored] = handle
        fault = weights_fault(weights)
        if fault:  # loading TensorFlow and the architecture first took 15 s and 690 MB
            raise CatalogueError(f"cannot add {handle!r}: "
                                 + option_word("argument --weights: ", "keyword weights: ")
                                 + f"the weights file {fault}; pass "
                                 + option_word("--weights imagenet", "weights='imagenet'")
                                 + " or the path of the file its weights were saved to")


def weights_fault(weights) -> str | None:
    """Why the `weights` file (a stored `weights:` value: a path, a file:// URL; None and
    "imagenet" download and are fine) cannot be read here, in the loader's words
    (`hub.locate`: "PATH does not exist", with `catalogue_urls.variables_note`), a link
    that leads nowhere in fileio's (`fileio.dead_link_reason`), else the OS's reason the
    open failed, or what it holds instead of weights (`pathnotes.weights_file_problem`:
    empty, text, not HDF5, cut short); None when it reads. TensorFlow-free: `catalogue add`
    refused a missing --weights only once the architecture was built, an empty one after
    TensorFlow's import."""
    from hubensemble.catalogue_urls import variables_note
    from hubensemble.fileio import dead_link_reason
    from hubensemble.handles import file_url_path

    if weights in (None, "imagenet") or not isinstance(weights, str):
        return None
    path = file_url_path(weights) if weights.startswith("file://") else weights
    if os.path.islink(path) and not os.path.exists(path):
        return f"{path} is {dead_link_reason(path)}"
    if not os.path.exists(path):
        return f"{path} does not exist{variables_note(path)}"
    try:
        if os.path.isfile(path):  # (a folder or a pipe is ModuleSpec's refusal: never opened)
            with open(path, "rb") as f:
                f.read(1)
    except OSError as e:
        return f"{path} cannot be read ({e.strerror or type(e).__name__})"
    # empty, text, not HDF5, cut short: rank's rule and words (pathnotes.weights_file_problem)
    problem = weights_file_problem(path) if os.path.isfile(path) else None
    return problem.removeprefix("the weights file ") if problem else None


def _field_refusals(stored, values) -> list[str]:
    """The refusals of `catalogue add`'s field `values` (name, weights, layer, signature,
    output_key, trust) for the entry of handle `stored`: the field checks' (`catalogue_fields`,
    in ModuleSpec's order) and then the fields the handle's kind does not take
    (`handles.source_problems`), each built of its parts in the words of `check_new_entries`'
    caller (`lockwords.on_command_line`): "argument --weights: …; pass --weights imagenet …"
    (`saidwords.said`'s "cli" form, argparse's words), from Python "keyword weights: …; pass
    weights='imagenet' …". They were ModuleSpec's catalogue words rewritten by a pattern, which
    read a field in the value refused: `--name 'weights: x'` was told "'--weights 'x'…'"."""
    form = "cli" if on_command_line() else "python"

    def argument(key):
        if key not in _FLAG_FIELDS:
            return f"field {key!r}"
        return f"argument {flag_of(key)}" if form == "cli" else f"keyword {key}"

    refused = []
    for key in FIELD_NAMES:
        if key in values:
            try:
                _CHECKS[key](values[key])
            except _Bad as bad:
                refused.append(f"{argument(key)}: {said(bad.problem_parts, form)}; "
                               f"{said(cli_parts(bad.parts), form)}")
    if not refused:
        refused = [f"{argument(p.field)}: {p.problem}; {said(cli_parts(p.parts), form)}"
                   for p in source_problems({**values, "handle": stored})]
    return refused


#: The fields said as the caller gives them (`_field_refusals`): ADD_FLAGS' and --name's.
_FLAG_FIELDS = ("name", *ADD_FLAGS)


def _handle_hint(parts, handle, to, handles, name, fields) -> str:
    """The hint `parts` (`saidwords.said` parts) of a refused `handle` in the words of
    `check_new_entries`' caller: where it says to write another handle (WRITE, then a Say of
    field "handle"), on the command line the whole `catalogue add` command with it in place
    of `handle` (`to`, `handles`, `name` and the `fields` flags as given: "run `hubensemble
    catalogue add --to new.yaml keras:MobileNetV3Small` instead"), from Python "pass
    'keras:MobileNetV3Small'"; the rest in the caller's form too (`said`'s "cli" or
    "python"). `catalogue add --to new.yaml keras:MobileNetV3small` was told "write
    keras:MobileNetV3Small instead", a catalogue's."""
    parts = (parts,) if isinstance(parts, str) else tuple(parts)
    line = on_command_line()
    out, run, i = [], [], 0
    while i < len(parts):
        part, after = parts[i], parts[i + 1] if i + 1 < len(parts) else None
        if part is WRITE and isinstance(after, Say) and after.field == "handle":
            out.append(said(cli_parts(tuple(run)), "cli" if line else "python"))
            run = []
            value = str(after.value)
            if not line:
                out.append(f"pass {value!r}")
            else:
                words = ["hubensemble", "catalogue", "add"]
                words += ["--to", os.fspath(to)] if to is not None else []
                words += ["--name", name] if name is not None else []
                for key in ADD_FLAGS:
                    given = fields.get(key)
                    if key == "trust":
                        words += ["--trust"] if given else []
                    elif given is not None:
                        words += ["--" + key.replace("_", "-"), str(given)]
                words += [value if h == handle else h for h in handles]
                out.append("run `" + shlex.join(words) + "`")
            i += 2
            continue
        # another handle in the hint is the HANDLE argument, from Python an item of handles
        run.append(repr(str(part.value)) if not line and isinstance(part, Say) and (
            part.field == "handle") else part)
        i += 1
    return "".join(out) + said(cli_parts(tuple(run)), "cli" if line else "python")


def _format_params(params):
    if params is None:
        return "-"
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if params >= scale:
            return f"{params / scale:.1f}{unit}"
    return str(params)


def format_table(specs) -> str:
    """A plain-text table of catalogue entries, one line each (for `catalogue list`)."""
    header = ("NAME", "FAMILY", "DIM", "INPUT", "RANGE", "PARAMS", "HANDLE")
    rows = [header]
    for s in specs:
        rows.append((
            s.name, s.family,
            str(s.output_dim) if s.output_dim is not None else "?",
            f"{s.input_size[0]}x{s.input_size[1]}" if s.input_size else "any",
            s.value_range, _format_params(s.params), s.handle))
    if len(rows) == 1:
        return "(no modules)"
    widths = [max(cells(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = ["  ".join(ljust(cell, w) for cell, w in zip(row, widths)) + "  " + row[-1]
             for row in rows]
    return "\n".join(lines) + f"\n{counted(len(specs), 'module')}"


def _entry_yaml(spec, folder):
    """The fields of a spec that differ from the defaults, as plain YAML data."""
    entry = {}
    for f in FIELD_NAMES:
        value = getattr(spec, f)
        if f not in ("name", "handle") and value == getattr(_DEFAULT_SPEC, f):
            continue
        if f == "weights" and value not in (None, "imagenet"):
            rel = os.path.relpath(value, folder)
            if rel != os.pardir and not rel.startswith(os.pardir + os.sep):
                value = "./" + rel.replace(os.sep, "/")
        if f == "handle":
            value = checked_stored_handle(value, os.getcwd())
            if handle_kind(value) == "local":
                rel = os.path.relpath(value, folder)
                if rel != os.pardir and not rel.startswith(os.pardir + os.sep):
                    # "./" keeps a relative path from looking like a URL scheme when re-read.
                    value = "./" + rel.replace(os.sep, "/")
        elif f == "value_range":
            value = RANGE_YAML[value]
        if isinstance(value, (list, tuple)):
            value = _FlowList(value)
        entry[f] = value
    return entry


class _FlowList(list):
    """A list written on one line ([224, 224]), as people write them by hand."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_FlowList, lambda dumper, data: dumper.represent_sequence(
    "tag:yaml.org,2002:seq", data, flow_style=True))


_DEFAULT_SPEC = ModuleSpec(name="x", handle="zoo:x/x")


def write_catalogue(path, specs, *, header_comment=None):
    """Write `specs` as a catalogue at `path`, atomically.

    Local handles inside the file's folder are written relative to it (so the folder can
    move); the text is checked to load back into the same specs before anything is written.
    """
    path = os.fspath(path)
    label = absolute(path)  # problems name the file as `catalogue validate` does
    folder = os.path.dirname(label)
    specs = list(specs)
    body = yaml.dump({"modules": [_entry_yaml(s, folder) for s in specs]}, Dumper=_Dumper,
                     sort_keys=False, default_flow_style=False, width=100, allow_unicode=True)
    comment = ""
    if header_comment:
        comment = "".join(f"# {line}".rstrip() + "\n"
                          for line in str(header_comment).splitlines())
    text = comment + body
    reread, problems = parse_catalogue_text(text, label, folder)
    if problems:
        raise_problems(problems)
    strip = [dataclasses.replace(s, source="") for s in reread]
    cwd = os.getcwd()
    expected = [dataclasses.replace(s, source="", handle=checked_stored_handle(s.handle, cwd),
                                    weights=checked_stored_weights(s.weights, cwd))
                for s in specs]
    if strip != expected:
        raise CatalogueError(f"{label}: the catalogue would not read back as written; "
                             f"this is a bug in hubensemble.catalogue, please report it")
    atomic_write_text(path, text)


def _warn_repeated(entries, added) -> None:
    """A warning per entry of the last `added` of `entries` (the catalogue as it reads back
    with them appended, so each has its FILE:LINE, as `catalogue validate` names it: the
    warning named the file alone) that loads the very module an earlier entry loads, read
    the same way (`samemodule.same_module_pairs`: the same sha256, or the same handle in any
    spelling, a relative one being relative to the file's folder, and the same weights,
    layer, signature, output key, value range, input size and dtype), as an entry without a
    pin was not compared and was appended again silently. Not an error, as the entries may
    differ in what they describe, but rank embeds and ranks such a module once, under the
    earlier entry."""
    new = {id(s) for s in entries[len(entries) - added:]}
    from hubensemble.catalogue_pins import pin_disowned

    for later, earlier, why in same_module_pairs(entries, disowned=pin_disowned):
        if id(later) in new:  # validate's words (`samemodule.same_module_note`)
            log.warning("%s: %s", escaped(later.source),
                        escaped(same_module_note(later, earlier, why)))


def check_add(path, handles, *, name=None, **fields) -> set[str]:
    """`catalogue add`'s refusals before TensorFlow: the entries (`check_new_entries`), the
    catalogue `path` they go to (it must read as one: `catalogue_names`) and `name`, which
    no entry of it may have (it was refused after the module had loaded, naming a line of
    the would-be text), where `path` goes (`fileio.check_file_target`: HubensembleError
    for a file in the way of its folder, or a folder not writable), and then local handles
    that hold no module (`check_holds_modules`). Returns the names the
    file's entries take; raises CatalogueError,
    also for an empty `path` (it was taken, to fail after the modules had loaded; the command
    line's parser refuses `--to ""` itself)."""
    if not os.fspath(path).strip():
        flag = option_word("--to", "path=")
        example = option_word("--to my.yaml", "path='my.yaml'")
        raise CatalogueError(f"{flag} is empty ({os.fspath(path)!r}); pass the catalogue file "
                             f"to append to, e.g. {example}")
    check_new_entries(handles, name=name, to=path, **fields)
    before = {s.name: s for s in _existing(os.fspath(path))[1]}
    # A file where its folder would go, a folder not writable: the append failed once the
    # modules had loaded (NotADirectoryError after TensorFlow's seconds), in fileio's words.
    check_file_target(path, option_word(f"--to {os.fspath(path)} goes inside it: pass another "
                                        "--to file", f"path={os.fspath(path)!r} goes inside "
                                        "it: pass another path"))
    if name in before:
        flag = option_word("--name ", "name=")
        raise CatalogueError(f"{absolute(os.fspath(path))}: {flag}{name!r} is already used "
                             f"by the entry at {before[name].field_source('name')}; choose "
                             f"another name, or leave {flag.strip()} out for one made from "
                             f"the handle")
    check_holds_modules(handles)  # the file's and the name's refusals first
    return set(before)


def check_holds_modules(handles, base_dir=None) -> None:
    """CatalogueError naming the first of `handles` (relative to `base_dir`, default the working
    folder) that is a local path holding no module (`localfiles.local_source`, rank's test):
    a file that is no model file (an archive: the command that unpacks it) or a folder
    without one, in rank's words. `catalogue add` refused it only after TensorFlow's import
    and the load (26 s, 685 MB, exit 1). Missing paths are `check_new_entries`'."""
    base_dir = base_dir or os.getcwd()
    for handle in handles:
        stored = stored_handle(handle, base_dir)
        if handle_kind(stored) == "local" and os.path.exists(stored) and (
                local_source(stored) is None):
            raise CatalogueError(f"cannot add {handle!r}: " + (
                file_not_module(stored) if os.path.isfile(stored) else
                f"{stored} holds no module (no saved_model.pb, .keras/.h5 file or keras-hub "
                f"preset){modules_inside(stored)}"))


def add_modules(path, handles, taken, *, name=None, **fields) -> tuple[str, list[str]]:
    """`catalogue add` after `check_add` (whose names are `taken`): loads each of `handles`
    with TensorFlow (`hub.introspect.describe_module`, with `name` and `fields`) and appends
    the entries read from them to the catalogue `path` (`append_catalogue`). A module that
    cannot be loaded is logged (ERROR, with the reason) and skipped while the others go on,
    as rank skips a bad module: the first failure stopped the command, and the modules loaded
    before it were not written. Returns (the summary: modules added of how many, the failed
    handles, the appended text; the handles that failed). Raises CatalogueError when the
    entries cannot be appended (nothing is written then)."""
    from hubensemble.hub.introspect import describe_module, entry_name

    specs, failed = [], []
    for handle in handles:
        entry = name or entry_name(handle, taken)
        try:
            specs.append(describe_module(handle, name=entry, **fields))
        except (HubensembleError, ValueError) as e:  # ModuleLoadError; a spec refused
            log.error("cannot add %r: %s", handle, e)
            failed.append(handle)
            continue
        taken.add(entry)
    added = append_catalogue(path, specs) if specs else ""
    # "added 1 module", "added 2 of 3 modules": the noun agrees with the number before it.
    how_many = (f"{len(specs)} of {counted(len(handles), 'module')}" if failed
                else counted(len(specs), "module"))
    lost = f"; {len(failed)} failed: {', '.join(map(repr, failed))}" if failed else ""
    return (f"{absolute(path)}: added {how_many}{lost}\n"  # from any folder
            f"{added.rstrip()}").rstrip(), failed


def catalogue_names(path) -> set[str]:
    """The entry names of the catalogue `path` appends would go to (`append_catalogue`): an
    empty set for a missing file, an empty one or one whose `modules:` is empty ([] or
    nothing). CatalogueError (file:line) for a file that does not read as a catalogue;
    TensorFlow-free, so `catalogue add` checks its --to file before loading a module."""
    return {s.name for s in _existing(os.fspath(path))[1]}


def _modules_nodes(text):
    """(root, key, value) YAML nodes of a catalogue's text and its top-level `modules:`:
    Nones for what it has not (no document: comments only; no such key; not YAML, which the
    parser says where). Nodes, not values: an alias bomb stays small."""
    try:
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return None, None, None
    if isinstance(root, yaml.ScalarNode) and root.tag.endswith(":null") and not root.value:
        return None, None, None  # `---` and comments: no document either
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if isinstance(key, yaml.ScalarNode) and key.value == "modules":
                return root, key, value
    return root, None, None


def _existing(path):
    """(text, ModuleSpecs) of the catalogue at `path` that entries are appended to. A file
    still to start its list (a `modules:` that is empty, [] or nothing; no `modules:` key; a
    file of comments only) is not an error here, but the rest of it is checked as
    `catalogue validate` checks it, with the file's own line numbers (`_start_problems`): it
    was checked only after the modules had loaded, in the would-be text, so `catalogue add`
    took TensorFlow's seconds and then named a line the file does not have. CatalogueError
    when the file does not read as a catalogue, or when it is written in YAML's flow style
    (`modules: [{name: a, …}]`), which appended block lines would break: that was a "YAML
    syntax error" blaming the valid file, after the module had loaded."""
    label = absolute(path)  # as `catalogue validate` names it (it named the file as typed)
    folder = os.path.dirname(label)
    old = read_catalogue_file(path)[0] if os.path.exists(path) else ""
    if not old.strip():
        return old, []
    root, key, node = _modules_nodes(old)
    if isinstance(root, yaml.MappingNode) and (root.flow_style or isinstance(
            node, yaml.SequenceNode) and node.flow_style and node.value):
        what = "`modules:` list" if key else "mapping"
        line = (key or root).start_mark.line + 1
        raise CatalogueError(f"cannot append to the flow-style {what} of {label}:{line}; "
                             f"rewrite it as a block list "
                             f"(`modules:`, then `  - name: …` lines) or add the entry by hand")
    before, problems = parse_catalogue_text(old, label, folder)
    if not before:
        problems = _start_problems(label, problems, root, key, node)
    if problems:
        raise_problems(problems)
    return old, before


def _start_problems(label, problems, root, key, node) -> list[str]:
    """The `problems` of a catalogue file (named `label` in them) whose `modules:` list
    `append_catalogue` may start (`root`, `key`, `node`: its YAML nodes, `_modules_nodes`)
    less the one about that list: 'the catalogue is empty' for a file of comments only,
    'modules: missing' for a mapping without the key, 'modules: is an empty list' / 'is
    empty' for `modules: []` or a bare `modules:`. Any other value of `modules:` keeps its
    problem."""
    if root is None:
        drop = "the (catalogue|top level) is empty[;,]"
    elif not isinstance(root, yaml.MappingNode):
        return problems
    elif key is None:
        drop = re.escape("field 'modules': missing;")
    elif node.tag.endswith(":null") or isinstance(node, yaml.SequenceNode) and not node.value:
        drop = re.escape("field 'modules': is ")
    else:
        return problems
    return [p for p in problems if not re.match(rf"{re.escape(label)}:\d+: {drop}", p)]


def append_catalogue(path, specs) -> str:
    """Appends `specs` as entries to the catalogue at `path` (a new file when missing) and
    returns the text appended. The file's own text (comments, order) is kept: the entries go
    after its last one, indented like it. Checked before anything is written: the result
    must read back with every old entry plus the new ones (names unique), else
    CatalogueError (e.g. when `modules:` is not the file's last block: add them by hand)."""
    path = os.fspath(path)
    label = absolute(path)  # FILE:LINE as `catalogue validate` names it
    folder = os.path.dirname(label)
    old, before = _existing(path)
    body = yaml.dump([_entry_yaml(s, folder) for s in specs], Dumper=_Dumper, sort_keys=False,
                     default_flow_style=False, width=100, allow_unicode=True)
    last = old.splitlines()[int(before[-1].source.rsplit(":", 1)[1]) - 1] if before else "  - "
    indent = " " * (len(last) - len(last.lstrip(" -")) - 2)
    added = "".join(indent + line if line.strip() else line for line in body.splitlines(True))
    if before:  # after the last entry: before the next top-level key (a `defaults:` after
        # the entries), else at the end
        lines = old.splitlines(True)
        start = int(before[-1].source.rsplit(":", 1)[1])
        end = next((i for i in range(start, len(lines)) if re.match(r"[A-Za-z_]", lines[i])),
                   len(lines))
        head = "".join(lines[:end]).rstrip("\n") + "\n"
        text = head + added + "".join(lines[end:])
    else:
        text = _started(old, added)
    after, problems = parse_catalogue_text(text, label, folder)
    if problems or len(after) != len(before) + len(specs):
        raise_problems(problems or [f"{label}: cannot append after its last entry (is "
                                    f"`modules:` the file's last block?); add these entries "
                                    f"by hand:", *added.rstrip("\n").splitlines()])
    _warn_repeated(after, len(specs))
    atomic_write_text(path, text)
    return added


def _started(old, added) -> str:
    """The text of a catalogue `old` without entries (`_existing` read it) whose `modules:`
    list starts with the entry lines `added`: right under a `modules:` that is empty ([],
    nothing, null; its value may be on the lines below), wherever the block is, keeping a
    comment on the line where the value ends; at the end of a file without the key (comments
    only, or `defaults:` only). The value is replaced by its YAML marks, as a pattern on the
    key's line missed `modules:` followed by `[]` on the next line."""
    root, key, node = _modules_nodes(old)
    lines = old.splitlines(True)
    if key is None:
        return "".join(lines).rstrip("\n") + ("\n" if old.strip() else "") + "modules:\n" + added
    end = node.end_mark
    rest = lines[end.line][end.column:] if end.line < len(lines) else ""
    comment = rest.strip() if rest.strip().startswith("#") else ""
    return ("".join(lines[:key.start_mark.line]) + " " * key.start_mark.column + "modules:"
            + (f"  {comment}" if comment else "") + "\n" + added + "".join(lines[end.line + 1:]))
