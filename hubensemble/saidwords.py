"""A hint's parts and their words in each caller's form (`said`): a catalogue file's ("write
input_size: [32, 32]"), a Python call's ("pass input_size=(32, 32)") or the command line's
("pass --output-key pooled"). A leaf (imports nothing of hubensemble): the catalogue's field
checks (`catalogue_fields`) and the handle checks (`handles.HandleFormError`) build their
hints of these parts, so each caller is told them in its own words."""

from __future__ import annotations

import shlex
from typing import NamedTuple


class Say(NamedTuple):
    """One value a hint suggests: `field` and `value` as a ModuleSpec takes it (None, a bool,
    an int, a str, a tuple); `field` None: the value alone, an alternative after one with its
    field ("[0, 1], [-1, 1]"). `quoted`: a catalogue writes the str in quotes; `yaml`: the
    catalogue's words when they are not "field: value" ("leave it out" for None)."""

    field: str | None
    value: object
    quoted: bool = False
    yaml: str | None = None


class Meta(str):
    """A value a hint names but does not know, written as is in every form (no quotes): the
    placeholder "KEY" of `Say("output_key", Meta("KEY"))` is "output_key: KEY" in a catalogue,
    "output_key=KEY" in a call, "--output-key KEY" on the command line."""

    __slots__ = ()


class Words(NamedTuple):
    """Words of a hint that differ between a catalogue file (`yaml`), Python (`python`) and
    the command line (`cli`; None: a catalogue's words, `yaml`)."""

    yaml: str
    python: str
    cli: str | None = None


#: A hint's verb: a catalogue's author writes a value, a Python caller passes a keyword, the
#: command line a flag (`said` says "pass " there before a field's value, else "write ").
WRITE = Words("write ", "pass ")
QUOTED = Words(" (quoted)", "", "")  # a Python str literal, a shell word: quoted as written
#: A module's refusal's verb and where its field goes: a catalogue's author sets the field on
#: the module's entry, a call (HubLayer, load_module) passes it, `catalogue add` its flag.
SET = Words("set ", "pass ", "pass ")
ON_ENTRY = Words(" on its catalogue entry", "", "")
HINT_FORMS = ("yaml", "python", "cli")


def _yaml_value(value, quoted=False) -> str:
    if isinstance(value, Meta):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    return f"'{value}'" if quoted else str(value)


def _python_value(value) -> str:
    # a size or a pair written as a list in YAML is a tuple in a ModuleSpec
    if isinstance(value, Meta):
        return str(value)
    return repr(tuple(value) if isinstance(value, list) else value)


def flag_of(field: str) -> str:
    """The command-line flag of catalogue field `field` ("output_key": "--output-key")."""
    return "--" + field.replace("_", "-")


def field_words(field: str) -> Words:
    """Field `field` named without a value, in each form: "`layer:`" (a catalogue's), "layer="
    (a call's keyword), "--layer" (its flag)."""
    return Words(f"`{field}:`", f"{field}=", flag_of(field))


def _cli_said(part: Say) -> str:
    # A field as `catalogue add` takes it: its flag and the value as one shell word, the
    # handle as the HANDLE argument, trust a flag without a value, None: the flag left out.
    if part.field is None:
        return _yaml_value(part.value)
    if part.field == "handle":
        return shlex.quote(str(part.value))
    if part.value is None:
        return f"leave {flag_of(part.field)} out"
    if isinstance(part.value, bool):
        return flag_of(part.field) if part.value else f"no {flag_of(part.field)}"
    value = part.value if isinstance(part.value, Meta) else shlex.quote(str(part.value))
    return f"{flag_of(part.field)} {value}"


def said(hint, form="yaml") -> str:
    """The text of `hint` (a str, the same in every form, or a tuple of str, Say and Words
    parts) in `form`: "yaml", a catalogue file's ("write input_size: [32, 32]"), "python",
    a ModuleSpec call's keywords with Python literals ("pass input_size=(32, 32)"), or "cli",
    the command line's (`catalogue add`): a field its flag ("pass --output-key pooled", "leave
    --layer out"), the handle the HANDLE argument, as shell words, other words a catalogue's
    unless a Words says them (`Words.cli`); ValueError for another form. A ModuleSpec made in
    code was told the YAML (a new user's check), `catalogue add --name 'weights: x'` the
    catalogue's words rewritten by a pattern, which took the value for a field."""
    if form not in HINT_FORMS:
        raise ValueError(f"hint form {form!r} is not one of {', '.join(HINT_FORMS)}")
    if isinstance(hint, str):
        return hint
    out = []
    for i, part in enumerate(hint):
        if form == "cli" and part is WRITE:  # a value to pass before a field's, else written
            after = hint[i + 1] if i + 1 < len(hint) else None
            out.append("pass " if isinstance(after, Say) and after.field else "write ")
        elif isinstance(part, Words):
            out.append(part.yaml if form == "cli" and part.cli is None else getattr(part, form))
        elif not isinstance(part, Say):
            out.append(part)
        elif form == "cli":
            out.append(_cli_said(part))
        elif form == "python":
            value = _python_value(part.value)
            out.append(value if part.field is None else f"{part.field}={value}")
        elif part.yaml is not None:
            out.append(part.yaml)
        else:
            value = _yaml_value(part.value, part.quoted)
            out.append(value if part.field is None else f"{part.field}: {value}")
    return "".join(out)


class SaidHint:
    """A refusal whose way on is `said` parts (`parts`: a str, or a tuple of str, Say and
    Words), told each caller in its own words: `hint` as a catalogue file and the command line
    write it ("write keras:MobileNetV3Small instead"), `python_hint` as a Python call passes
    it ("pass handle='keras:MobileNetV3Small' instead"). The one rule of both forms for the
    catalogue's field refusals and HandleFormError."""

    parts = ()

    @property
    def hint(self) -> str:
        """The way on in a catalogue file's and the command line's words."""
        return said(self.parts, "yaml")

    @property
    def python_hint(self) -> str:
        """The way on in a Python call's words (keywords, Python literals)."""
        return said(self.parts, "python")
