"""A catalogue's YAML nodes read as fields: each key's line, repeated and odd keys reported,
and YAML's merge key (``<<: *anchor``, YAML 1.1's merge type, https://yaml.org/type/merge.html,
which ``yaml.safe_load`` reads too). Used by `catalogue`'s parser."""

from __future__ import annotations

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


def pairs(loader, mapping, report, what):
    """(key, key_line, value_node) of a mapping node, reporting odd and repeated keys; a merge
    key's mappings (``<<: *a`` or ``<<: [*a, *b]``) give the keys the mapping does not write
    itself, a key of an earlier mapping of the list over a later one's (the merge type's
    rule), their lines where the anchored mapping writes them. A ``<<`` of anything but
    mappings is reported."""
    seen, merges = {}, []
    for key_node, value_node in mapping.value:
        if key_node.tag == MERGE_TAG:
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
                           "naming a mapping written with `&NAME` (or a list of them)")
                continue
            # Its own problems are said where it is written (an entry, `defaults:`), once.
            quiet = type(report)(report.label)
            for key, line, node in pairs(loader, source, quiet, what):
                if key not in taken:
                    taken.add(key)
                    yield key, line, node
