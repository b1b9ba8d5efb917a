"""A ModuleSpec made in Python is told what to pass in Python; a catalogue file in YAML."""

import ast
import re

import pytest

from hubensemble.catalogue import FIELD_NAMES, ModuleSpec
from hubensemble.lockwords import command_line

#: A handle each field fits (weights: keras:NAME only, layer: model files, signature:
#: SavedModels, `handles.source_problems`).
_HANDLES = {"weights": "keras:ResNet50", "layer": "m.keras"}
_BASE_HANDLE = "zoo:demo/a"

#: A Python literal as a hint passes it: a tuple (of ints or strs), a str, None, a bool, an int.
_LITERAL = r"\((?:'[^']*'|[^()'])*\)|'(?:[^'\\]|\\.)*'|None|True|False|-?\d+"
_SUGGESTED = re.compile(rf"\b(\w+)=({_LITERAL})")  # field=LITERAL
#: an alternative right after one ("value_range=(0, 1), (-1, 1) or 'imagenet'", "input_size=
#: (224, 224) (its ImageNet resolution) or at least (32, 32)")
_ALTERNATIVE = re.compile(rf"(?:, | or (?:at least )?)({_LITERAL})")

CASES = [
    ("name", 3), ("name", None), ("name", "é m"), ("name", "-x"), ("name", ".hidden"),
    ("handle", "keras:resnet50"), ("handle", " zoo:demo/a "), ("handle", "a.weights.h5"),
    ("handle", "https://tfhub.dev/google/bit/m-r50x1/1?tf-hub-format=compressed"),
    ("sha256", "A" * 64 + "  saved_model.pb"), ("sha256", "sha256:" + "b" * 64),
    ("input_size", "32x32"), ("input_size", 160), ("input_size", (5000, 5000)),
    ("native_size", "96 X 80"), ("native_size", [0, 3]),
    ("value_range", "0-1"), ("value_range", (0, 2)),
    ("output_dim", "x"), ("output_dim", 1 << 20), ("output_dim", 0),
    ("family", "specialist"), ("family", "Generalist"),
    ("architecture", 5), ("upstream", ["a"]), ("subtree", 2.5), ("license", False),
    ("output_key", 3), ("layer", 3), ("signature", 1),
    ("params", -1), ("params", "big"), ("seed", 1.5),
    ("tags", "a"), ("tags", "a, b"), ("tags", 3), ("tags", ["a", 2]),
    ("trust", "yes"), ("trust", 1),
    ("input_dtype", "int8"), ("input_dtype", 8),
    ("weights", ""), ("weights", "x.txt"),
]

# Fields that do not fit the entry's kind of source (`handles.source_problems`).
SOURCE_CASES = [
    ("value_range", (0, 255)), ("input_size", (8, 8)), ("output_dim", 3),
    ("input_dtype", "uint8"), ("layer", "avg_pool"), ("signature", "serve"),
]


def _hint(field, **fields):
    """The hint of `field` of ModuleSpec(name='m', **fields)'s refusal, whose problem says
    None, True and False as Python does ("got None", not YAML's "got null")."""
    with pytest.raises(ValueError) as refused:
        ModuleSpec(**{"name": "m", **fields})
    said = str(refused.value)
    assert f"field {field!r}: " in said, said
    problem, hint = said.split(f"field {field!r}: ", 1)[1].split("; ", 1)
    assert not re.search(r"\b(null|true|false)\b", problem), problem
    return hint


def _suggested(hint):
    """[(field, value)] of each value `hint` suggests, a bare alternative for the field
    before it."""
    out = []
    for found in _SUGGESTED.finditer(hint):
        out.append((found[1], ast.literal_eval(found[2])))
        end = found.end()
        while (other := _ALTERNATIVE.match(hint, end)) or (
                other := _ALTERNATIVE.match(hint, hint.find(")", end) + 1)
                if hint.startswith(" (", end) else None):  # past "(its ImageNet resolution)"
            out.append((found[1], ast.literal_eval(other[1])))
            end = other.end()
    return out


def _check_python_hint(field, hint, fields):
    assert not re.search(r"\b(%s): " % "|".join(FIELD_NAMES), hint), hint  # a YAML "key: value"
    assert not re.search(r"\b(null|true|false)\b|`\w+:`", hint), hint
    suggested = _suggested(hint)
    assert suggested and {f for f, _ in suggested} == {field}, (hint, suggested)
    for f, value in suggested:  # the call the hint suggests passes
        ModuleSpec(**{**fields, f: value})


@pytest.mark.parametrize("field, value", CASES)
def test_a_modulespec_made_in_python_is_told_a_python_call_that_passes(field, value):
    # ModuleSpec(input_size='32x32') was told "write input_size: [32, 32] (height, width) or
    # input_size: null", a catalogue's YAML, and name='é m' "write name: e-m": neither can be
    # passed to a Python call (a new user's check).
    fields = {"name": "m", "handle": _HANDLES.get(field, _BASE_HANDLE)}
    hint = _hint(field, **{**fields, field: value})
    assert hint.startswith("pass "), hint
    _check_python_hint(field, hint, fields)


@pytest.mark.parametrize("field, value", SOURCE_CASES)
def test_a_field_that_does_not_fit_the_source_is_told_in_python(field, value):
    fields = {"name": "m", "handle": "keras:ResNet50"}
    hint = _hint(field, **{**fields, field: value})
    if hint == f"leave {field} out":
        ModuleSpec(**fields)
    else:
        _check_python_hint(field, hint, fields)


@pytest.mark.parametrize("value, got", [(None, "got None"), (5, "got int 5")])
def test_a_handle_that_is_no_string_is_told_in_python(value, got):
    # It said "got null", YAML's word, to a Python caller.
    with pytest.raises(ValueError) as refused:
        ModuleSpec(name="m", handle=value)
    assert f"field 'handle': must be a non-empty string, {got}; pass one of https://" in \
        str(refused.value), refused.value
    with command_line(), pytest.raises(ValueError) as refused:
        ModuleSpec(name="m", handle=None)
    assert "got null; write one of https://" in str(refused.value), refused.value


def test_the_python_hint_of_a_pasted_hash_and_of_a_hash_to_compute():
    assert _hint("sha256", handle=_BASE_HANDLE, sha256="sha256:" + "AB" * 32) == \
        f"pass sha256='{'ab' * 32}' (the 64-character hash alone) instead"
    hint = _hint("sha256", handle=_BASE_HANDLE, sha256="zz")
    assert hint.startswith("pass sha256= the sha256 of ") and hint.endswith(
        "or leave sha256 out"), hint


@pytest.mark.parametrize("fields, words", [
    (dict(handle=_BASE_HANDLE, input_size="32x32"),
     "write input_size: [32, 32] (height, width) or input_size: null (any size) instead"),
    (dict(handle=_BASE_HANDLE, name="é m"), "write name: e-m instead"),
    (dict(handle=_BASE_HANDLE, trust="yes"), "write trust: true (only for modules you trust "
     "to touch files) or trust: false instead"),
    (dict(handle=" zoo:demo/a "), "write handle: 'zoo:demo/a' instead"),
    (dict(handle="keras:ResNet50", value_range=(0, 255)),
     "remove value_range: from this entry (or write [0, 1])"),
])
def test_a_modulespec_made_for_a_command_line_or_from_run_json_keeps_the_catalogues_words(
        fields, words):
    # On the command line a ModuleSpec is made from a catalogue's values or `catalogue
    # add`'s flags (whose words catalogue_writer makes of the catalogue's); run.json's
    # entries (`from_json`) keep their own words.
    fields = {"name": "m", **fields}
    with command_line(), pytest.raises(ValueError) as refused:
        ModuleSpec(**fields)
    assert str(refused.value).endswith(words), refused.value
    if "handle" in words:
        with pytest.raises(ValueError) as refused:
            ModuleSpec.from_json(fields)
        assert str(refused.value).endswith(words), refused.value


def test_a_keras_entrys_pin_hint_is_told_to_python_without_a_pattern_rewrite():
    # The hint was the catalogue's, rewritten by pattern (catalogue_fields.python_words): the
    # entry's "weights: file" became "weights='file'", a value no one meant. Fails before.
    from hubensemble.catalogue_fields import pin_hint, pin_parts, said

    hint = said(pin_parts("keras:ResNet50"), "python")
    assert hint.startswith("pass sha256= the sha256 of its weights file: `sha256sum` of the "
                           "weights= file, or of Keras' ImageNet file"), hint
    assert said(pin_parts("keras:ResNet50")) == pin_hint("keras:ResNet50") and pin_hint(
        "keras:ResNet50").startswith("write the sha256 (quoted) of its weights file: "
                                     "`sha256sum` of the entry's weights: file")


@pytest.mark.parametrize("field, value", SOURCE_CASES)
def test_a_source_problem_carries_both_forms_written_once(field, value):
    # handles.source_problems' hints were a catalogue's str, rewritten for Python by pattern;
    # each is a SaidHint record now, its forms those a ModuleSpec says to each caller.
    from hubensemble.handles import SourceProblem, source_problems

    fields = {"name": "m", "handle": "keras:ResNet50", field: value}
    [found] = source_problems(fields)
    assert isinstance(found, SourceProblem) and found.field == field
    assert _hint(field, **fields) == found.python_hint
    with command_line():
        assert _hint(field, **fields) == found.hint
