"""A catalogue's YAML nodes read as fields: each key's line, repeated and odd keys reported,
YAML's merge key (``<<: *anchor``, YAML 1.1's merge type, https://yaml.org/type/merge.html,
read by its rule where ``yaml.safe_load`` is not: `pairs`), the line of an alias
(`alias_lines`), characters that look like spaces where YAML reads structure
(`unseen_characters`) and an unquoted scalar YAML read as other than text (`typed_plain`,
`as_text`, `yaml_type`). Used by `catalogue`'s parser."""

from __future__ import annotations

import datetime
import re
import unicodedata

import yaml

from hubensemble.catalogue_fields import shown

#: The tag PyYAML's resolver gives a plain ``<<`` key.
MERGE_TAG = "tag:yaml.org,2002:merge"


def node_line(node) -> int:
    """The 1-based line a YAML node starts on."""
    return node.start_mark.line + 1


def node_kind(node) -> str:
    """What a YAML node is, for messages: "a mapping", "a list", "empty" or "the value …"."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag.endswith(":null"):
        return "empty"
    return f"the value {shown(node.value)}"


def construct(loader, node, report, field):
    """(True, the Python value of `node`), or (False, None) with the problem reported on its
    line (a tag safe_load does not construct, such as ``!!python/object``)."""
    try:
        return True, loader.construct_object(node, deep=True)
    except yaml.YAMLError as e:
        report.field(node_line(node), field, f"cannot be read ({getattr(e, 'problem', e)})",
                     "write a plain YAML value instead")
        return False, None


#: The end of the refusal of a merge key that takes a value (`pairs`): `name: &nm good`
#: anchors the value alone, and `- <<: *nm` with a name of its own, which the refusal of an
#: entry `- *nm` advised, was refused again as "takes the value 'good'". The way that loads:
#: the anchor on the entry's mapping (YAML 1.1 merge type, https://yaml.org/type/merge.html).
VALUE_ANCHOR = (" (an anchor on a value, as in `name: &NAME good`, names that value alone: to "
                "reuse an entry's fields, anchor the entry itself, `- &NAME` on the line "
                "before its first field with its fields below as they are, then write "
                "`- <<: *NAME` with a `name:` of its own)")


def pairs(loader, mapping, report, what):
    """(key, key_line, value_node) of a mapping node, reporting odd and repeated keys; a merge
    key's mappings (``<<: *a`` or ``<<: [*a, *b]``) give the keys the mapping does not write
    itself, a key of an earlier mapping of the list over a later one's, and a merged
    mapping's own keys over those it merges itself (the merge type's rule,
    https://yaml.org/type/merge.html), their lines where the anchored mapping writes them.
    PyYAML 6.0.4's safe_load drops a repeated merged key by id() of its string, which
    CPython shares for one-character keys only, so it breaks that rule both ways, and this
    reader does not follow it: of ``<<: [*a, *b]`` it keeps b's value of a longer key both
    write (the last pair wins), and of ``&d {<<: *a, x: 5}`` merged elsewhere it gives a's
    one-character x, not d's (the first pair wins). A ``<<`` of anything but mappings is
    reported, and so is a second ``<<`` key in one mapping (YAML's keys are unique;
    safe_load let the first win)."""
    seen, merges = {}, []
    for key_node, value_node in mapping.value:
        if key_node.tag == MERGE_TAG:
            if merges:
                report.add(node_line(key_node), f"the merge key `<<` is given twice in this "
                           f"{what} mapping (also at line {node_line(merges[0][0])}); write "
                           "one `<<: [*FIRST, *SECOND]` instead (the first mapping that has "
                           "a field gives it)")
                continue
            merges.append((key_node, value_node))
            continue
        ok, key = construct(loader, key_node, report, "key")
        if not ok:
            continue
        line = node_line(key_node)
        if not isinstance(key, str):
            report.add(line, f"{what} key {shown(key)} is not a field name; "
                             f"write a field name such as name: or handle: instead")
            continue
        if key in seen:
            report.field(line, key, f"given twice (also at line {seen[key]})",
                         "write it once instead")
            continue
        seen[key] = line
        yield key, line, value_node
    taken = set(seen)
    for key_node, value_node in merges:
        sources = (value_node.value if isinstance(value_node, yaml.SequenceNode)
                   else [value_node])
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                report.add(node_line(key_node), f"the merge key `<<` of this {what} mapping "
                           f"takes {node_kind(source)}, not a mapping; write `<<: *NAME` "
                           "naming a mapping written with `&NAME` (or a list of them)"
                           # An alias hands over the anchored node, written before `<<`.
                           + (VALUE_ANCHOR if isinstance(source, yaml.ScalarNode)
                              and source.start_mark.index < key_node.start_mark.index
                              else ""))
                continue
            # Its own problems are said where it is written (an entry, `defaults:`), once.
            quiet = type(report)(report.label)
            for key, line, node in pairs(loader, source, quiet, what):
                if key not in taken:
                    taken.add(key)
                    yield key, line, node


class _AliasLines(yaml.SafeLoader):
    """PyYAML's pure-Python safe loader that notes, on each sequence node, the line of each
    item written as an alias (``- *NAME``): its composer hands over the anchored node, whose
    marks are the anchor's, and the alias event's mark is dropped."""

    def compose_node(self, parent, index):
        if isinstance(parent, yaml.SequenceNode) and self.check_event(yaml.AliasEvent):
            lines = parent.__dict__.setdefault("alias_lines", {})
            lines[index] = self.peek_event().start_mark.line + 1
        return super().compose_node(parent, index)


def alias_lines(text, key) -> dict[int, int]:
    """{item index (0-based): the 1-based line where it is written as an alias} of the list
    under the top-level `key` of the YAML `text` (a catalogue's ``modules:``); {} when the
    text does not parse or has no such list. Composes the text again (pure Python, about
    10 ms a thousand entries): called only once an alias was found."""
    loader = _AliasLines(text)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError:
        return {}
    finally:
        loader.dispose()
    for key_node, value_node in getattr(root, "value", None) or ():
        if isinstance(root, yaml.MappingNode) and getattr(key_node, "value", None) == key:
            return dict(getattr(value_node, "alias_lines", {}))
    return {}


#: A character that shows as a space, or as nothing, in a line's indentation (after spaces,
#: tabs and "-" list marks): a no-break or other Unicode space (category Zs but U+0020),
#: a zero-width space or joiner, a byte-order mark. YAML indents with U+0020 only (YAML
#: 1.2, 6.1), so such a line is read as another key or a syntax error elsewhere.
_UNSEEN = re.compile(r"^[ \t-]*([\u00a0\u1680\u2000-\u200d\u202f\u205f\u3000\ufeff])",
                     re.MULTILINE)


def unseen_characters(text) -> list[tuple[int, str]]:
    """(1-based line, problem) for each line of `text` (a catalogue's, its leading
    byte-order mark already read) whose indentation holds a character that looks like a
    space or nothing (`_UNSEEN`: a no-break space pasted from a web page, a byte-order mark
    where two files were joined with ``cat``), named by its code point, Unicode name and
    column, with the fix; [] for a text without any (the usual case: one regular expression
    scan). PyYAML said them as "mapping values are not allowed here" on another line, or
    read "\u00a0   family" as an unknown top-level key."""
    found = []
    for match in _UNSEEN.finditer(text):
        char = match.group(1)
        line = text.count("\n", 0, match.start()) + 1
        column = match.start(1) - match.start() + 1
        name = unicodedata.name(char, "a format character")
        joined = (" (files joined with `cat`, each with its own mark?)" if char == "\ufeff"
                  else " (pasted from a web page or a word processor?)")
        found.append((line, f"column {column}: U+{ord(char):04X} ({name}) in the "
                            f"indentation, which YAML does not read as a space{joined}; "
                            "replace it with plain spaces (or delete it)"))
    return found


def typed_plain(node, value) -> list:
    """[(text, value)] of the unquoted scalars of `node` (a scalar, or the items of a list)
    that YAML read as something other than text, with what it read: PyYAML reads YAML 1.1,
    where digits are an integer (a leading 0 octal, `1:30` sexagesimal 90), yes / no / on /
    off a boolean and 2020-01-01 a date (yaml.resolver.Resolver's implicit resolvers)."""
    if isinstance(node, yaml.ScalarNode):
        pairs = [(node, value)]
    elif isinstance(node, yaml.SequenceNode) and isinstance(value, list) and len(
            value) == len(node.value):
        pairs = list(zip(node.value, value))
    else:
        return []
    return [(n.value, v) for n, v in pairs if isinstance(n, yaml.ScalarNode)
            and plain(n) and v is not None and not isinstance(v, str)]


def plain(node) -> bool:
    """Whether scalar `node` was written unquoted (PyYAML's style None, libyaml's "")."""
    return not node.style


def as_text(node, value):
    """`value` with each unquoted scalar YAML did not read as text (`typed_plain`) taken as
    the text written."""
    if isinstance(node, yaml.ScalarNode):
        return node.value if plain(node) and not isinstance(value, str) else value
    return [as_text(n, v) for n, v in zip(node.value, value)]


def yaml_type(value) -> str:
    """What YAML made of an unquoted scalar: "the integer 0", "the boolean True", "the date
    2020-01-01"."""
    if isinstance(value, (datetime.date, datetime.datetime)):
        return f"the date {value.isoformat()}"
    kind = ("boolean" if isinstance(value, bool) else "integer" if isinstance(value, int)
            else "number" if isinstance(value, float) else type(value).__name__)
    return f"the {kind} {shown(value)}"


def quoted(text) -> str:
    """`text` as a single-quoted YAML scalar (a quote in it doubled, YAML's escape)."""
    return "'" + text.replace("'", "''") + "'"
