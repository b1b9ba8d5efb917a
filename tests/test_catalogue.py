"""Catalogue loading, validation messages (file:line, field, hint) and writing."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from hubensemble import fileio
from hubensemble.catalogue import (
    FIELD_NAMES, ModuleSpec, handle_kind, kaggle_url, load_catalogue, load_catalogues,
    parse_value_range, shipped_catalogues)
from hubensemble.catalogue_writer import format_table, write_catalogue
from hubensemble.errors import CatalogueError, HubensembleError

#: How validate names a relative handle beside its absolute form (handlehere.written_relative).
REL = "relative to the catalogue's folder"

TFHUB = "https://tfhub.dev/google/bit/m-r50x1/1"


def write(folder, text, name="cat.yaml"):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def line_of(path, needle, nth=1):
    """1-based line of the nth line of the file containing `needle` (the test's own count)."""
    hits = [i for i, line in enumerate(path.read_text().splitlines(), start=1) if needle in line]
    assert len(hits) >= nth, f"{needle!r} not in {path}"
    return hits[nth - 1]


def problems_of(path):
    with pytest.raises(CatalogueError) as info:
        load_catalogue(path)
    lines = str(info.value).splitlines()
    assert info.value.problems == lines
    return lines


def find_problem(lines, prefix, *words):
    """The one problem line starting with `prefix` that contains all `words`."""
    hits = [p for p in lines if p.startswith(prefix) and all(w in p for w in words)]
    assert len(hits) == 1, f"no single problem {prefix!r} with {words} in:\n" + "\n".join(lines)
    return hits[0]


# ---------------------------------------------------------------------------- loading


def test_every_field_is_read_typed_and_canonicalised(tmp_path):
    path = write(tmp_path, f"""
        modules:
          - name: full.entry_1
            handle: {TFHUB}
            sha256: {"AB" * 32}
            input_size: [160, 128]
            value_range: [-1, 1]
            output_dim: 2048
            family: expert
            architecture: resnet50x1
            upstream: imagenet21k
            subtree: bird
            params: 23_500_352
            license: Apache-2.0
            tags: [bit, expert]
            seed: 7
            trust: true
            output_key: default
            input_dtype: uint8
          - name: minimal
            handle: {TFHUB}
        """)
    full, minimal = load_catalogue(path)
    assert full == ModuleSpec(
        name="full.entry_1", handle=TFHUB, sha256="ab" * 32, input_size=(160, 128),
        value_range="-1,1", output_dim=2048, family="expert", architecture="resnet50x1",
        upstream="imagenet21k", subtree="bird", params=23500352, license="Apache-2.0",
        tags=("bit", "expert"), seed=7, trust=True, output_key="default", input_dtype="uint8",
        source=f"{path}:{line_of(path, 'name: full.entry_1')}")
    # Fields left out take the documented defaults.
    assert minimal == ModuleSpec(name="minimal", handle=TFHUB,
                                 source=f"{path}:{line_of(path, 'name: minimal')}")
    assert (minimal.value_range, minimal.family, minimal.trust, minimal.tags) == (
        "0,1", "other", False, ())
    assert minimal.input_dtype is None  # the module's traced signature decides
    assert isinstance(full.input_size, tuple) and isinstance(full.tags, tuple)


@pytest.mark.parametrize("value, expected", [
    ([0, 1], "0,1"), ([0.0, 1.0], "0,1"), ((0, 1), "0,1"), ("0,1", "0,1"), ("[0, 1]", "0,1"),
    ([-1, 1], "-1,1"), ("-1, 1", "-1,1"), ([0, 255], "0,255"), ([0.0, 255.0], "0,255"),
    ("imagenet", "imagenet"), (" ImageNet ", "imagenet")])
def test_parse_value_range_accepts(value, expected):
    assert parse_value_range(value) == expected


@pytest.mark.parametrize("value", [[0, 2], [1, 0], [0], [0, 1, 2], "0-1", "inception", None,
                                   True, [True, False], {"lo": 0, "hi": 1}, "a,b"])
def test_parse_value_range_rejects(value):
    with pytest.raises(ValueError, match="value range"):
        parse_value_range(value)


def test_defaults_apply_unless_the_entry_sets_the_field(tmp_path):
    path = write(tmp_path, f"""
        # a comment before the defaults
        defaults:
          family: expert
          value_range: imagenet
          tags: [shared]
          output_dim: 2048
        modules:
          - name: uses-defaults
            handle: {TFHUB}
          - name: overrides
            handle: {TFHUB}
            family: generalist
            value_range: [0, 255]
            tags: []
            output_dim: null
        """)
    uses, overrides = load_catalogue(path)
    assert (uses.family, uses.value_range, uses.tags, uses.output_dim) == (
        "expert", "imagenet", ("shared",), 2048)
    assert (overrides.family, overrides.value_range, overrides.tags, overrides.output_dim) == (
        "generalist", "0,255", (), None)


def test_relative_local_handles_resolve_against_the_catalogue_folder(tmp_path, monkeypatch):
    folder = tmp_path / "cats" / "sub"
    path = write(folder, """
        modules:
          - {name: plain, handle: models/m1}
          - {name: dotted, handle: ./models/../models/m2}
          - {name: parent, handle: ../elsewhere/m3}
          - {name: file-local, handle: "file://localhost/opt/models/m4"}
          - {name: file-abs, handle: "file:///opt/models/m5"}
          - {name: absolute, handle: /opt/models/m6}
          - {name: home, handle: ~/models/m7}
        """)
    monkeypatch.chdir(tmp_path)  # a different working directory must not matter
    got = {s.name: s.handle for s in load_catalogue(os.path.relpath(path, tmp_path))}
    assert got == {
        "plain": str(folder / "models" / "m1"),
        "dotted": str(folder / "models" / "m2"),
        "parent": str(tmp_path / "cats" / "elsewhere" / "m3"),
        "file-local": "/opt/models/m4",  # RFC 8089: localhost is this machine
        "file-abs": "/opt/models/m5",
        "absolute": "/opt/models/m6",
        "home": os.path.join(os.path.expanduser("~"), "models", "m7"),
    }


KAGGLE = "https://www.kaggle.com/models/google/bit/tensorFlow2/m-r50x1/1"
# name: (handle as written, handle as stored, kind)
REMOTE = {
    "tfhub": ("https://tfhub.dev/google/imagenet/inception_v3/feature_vector/5", None, "tfhub"),
    "kaggle-url": (KAGGLE, None, "kaggle"),
    "kaggle-short": ("kaggle:google/bit/tensorFlow2/m-r50x1/1", None, "kaggle"),
    # Other Kaggle URL spellings are stored in the one short form resolvers match.
    "kaggle-long": ("https://kaggle.com/models/google/bit/frameworks/tensorFlow2/"
                    "variations/m-r50x1/versions/1", KAGGLE, "kaggle"),
    "kaggle-no-www": ("https://kaggle.com/models/google/bit/tensorFlow2/m-r50x1/1/", KAGGLE,
                      "kaggle"),
    "tarball": ("http://127.0.0.1:8000/m.tar.gz", None, "http"),
    "gcs": ("gs://bucket/path/m.tar.gz", None, "gcs"),
    "zoo": ("zoo:demo/r8x2-expert-digits", None, "zoo"),
}


def test_remote_handles_are_kept_except_kaggle_url_spellings(tmp_path):
    entries = "".join(f"  - name: {n}\n    handle: '{h}'\n" for n, (h, _, _) in REMOTE.items())
    specs = load_catalogue(write(tmp_path, "modules:\n" + entries))
    assert {s.name: s.handle for s in specs} == {
        n: stored or written for n, (written, stored, _) in REMOTE.items()}
    assert {s.name: handle_kind(s.handle) for s in specs} == {
        n: kind for n, (_, _, kind) in REMOTE.items()}


def test_a_url_with_a_user_name_or_password_is_refused_without_echoing_it(tmp_path):
    """A new-user check: `http://alice:s3cret@host/m.tar.gz` passed `catalogue validate`; rank
    then said its host name does not resolve (urllib took the credentials for the host) and
    wrote the password into RUN/log.txt."""
    path = write(tmp_path, """\
        modules:
          - name: cred
            handle: http://alice:s3cret@127.0.0.1:8000/m.tar.gz
          - name: token
            handle: gs://someone@bucket/m.tar.gz
          - name: fine
            handle: https://example.org/m.tar.gz?token=abc
        """)
    lines = problems_of(path)
    assert len(lines) == 2 and "s3cret" not in "".join(lines), lines
    find_problem(lines, f"{path}:3: field 'handle': 'http://…@127.0.0.1:8000/m.tar.gz' carries "
                 "a user name or password", "download it yourself")
    find_problem(lines, f"{path}:5: field 'handle': 'gs://…@bucket/m.tar.gz'")


def test_kaggle_url_canonicalises_all_three_forms():
    expected = "https://www.kaggle.com/models/google/bit/tensorFlow2/m-r50x1/1"
    for handle in ("kaggle:google/bit/tensorFlow2/m-r50x1/1", expected,
                   "https://kaggle.com/models/google/bit/frameworks/tensorFlow2/variations/"
                   "m-r50x1/versions/1"):
        assert kaggle_url(handle) == expected
    with pytest.raises(ValueError):
        kaggle_url(TFHUB)


def test_kaggle_forms_of_one_module_are_one_handle_whatever_the_frameworks_case(tmp_path):
    # tensorflow_hub takes any https://www.kaggle.com/models/… URL; Kaggle's client reads the
    # framework case- and underscore-blind (kagglehub.enum.to_enum): TensorFlow2 (Kaggle's
    # pages) and tensorFlow2 (its API) were two modules to same_module_pairs.
    from hubensemble.samemodule import same_module_pairs

    forms = ["https://www.kaggle.com/models/google/mobilenet-v2/TensorFlow2/"
             "100-224-feature-vector/5",
             "https://kaggle.com/models/google/mobilenet-v2/frameworks/tensorFlow2/variations/"
             "100-224-feature-vector/versions/5",
             "kaggle:google/mobilenet-v2/tensorflow2/100-224-feature-vector/5"]
    tfhub = "https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5"
    specs = [ModuleSpec(f"k{i}", handle) for i, handle in enumerate(forms)]
    specs.append(ModuleSpec("t", tfhub))
    pairs = same_module_pairs(specs)
    assert [(a.name, b.name) for a, b, _ in pairs] == [("k1", "k0"), ("k2", "k0")]
    # tfhub.dev's move to Kaggle renamed models (no rule maps one name to the other, in
    # tensorflow_hub or elsewhere: the server redirects): the same sha256 pin matches them.
    pin = "ab" * 32
    pinned = [dataclasses.replace(spec, sha256=pin) for spec in (specs[0], specs[3])]
    assert [(a.name, b.name) for a, b, _ in same_module_pairs(pinned)] == [("t", "k0")]


def test_yaml_merge_keys_reuse_an_entrys_fields(tmp_path):
    """`<<: *anchor` (YAML's merge key, which yaml.safe_load reads) was refused as "field
    'key': cannot be read (could not determine a constructor for the tag
    'tag:yaml.org,2002:merge')": an entry could not reuse another's fields."""
    import yaml

    text = textwrap.dedent("""\
        defaults: &d
          family: expert
        modules:
          - &e
            name: a
            handle: https://tfhub.dev/google/bit/m-r50x1/1
            tags: [x]
            input_size: [32, 32]
          - <<: *e
            name: b
            trust: true
          - <<: [{license: MIT}, *e, *d]
            name: c
            family: generalist
            input_size: [64, 64]
        """)
    path = write(tmp_path, text)
    specs = load_catalogue(path)
    reference = yaml.safe_load(text)["modules"]  # PyYAML's own merge, the reference
    for spec, entry in zip(specs, reference, strict=True):
        assert {k: getattr(spec, k) for k in entry} == {
            k: tuple(v) if isinstance(v, list) else v for k, v in entry.items()}
    assert [s.family for s in specs] == ["expert", "expert", "generalist"]
    assert specs[2].input_size == (64, 64) and specs[2].license == "MIT"
    assert specs[1].field_source("handle") == f"{path}:6"  # where the anchor writes it
    bad = write(tmp_path, text.replace("<<: *e\n", "<<: 5\n    handle: ./m\n"), "bad.yaml")
    find_problem(problems_of(bad), f"{bad}:9: the merge key `<<` of this entry mapping takes "
                 "the value '5', not a mapping", "write `<<: *NAME`")
    # A whole entry written again as an alias: its name was said as used "by the entry at"
    # the very line it named (YAML hands over the anchored node, the alias's line is lost).
    again = write(tmp_path, text.replace("  - <<: *e\n", "  - *e\n  - <<: *e\n"), "again.yaml")
    assert problems_of(again) == [
        f"{again}:{line_of(again, '- *e')}: entry 2 of modules is an alias (`*NAME`) of entry "
        "1 (line 4): the same fields again, its name too; to reuse its fields write "
        "`- <<: *NAME` with a `name:` of its own"]


def test_an_environment_variable_in_a_local_path_is_said_with_the_path_to_write(
        tmp_path, monkeypatch):
    """`handle: $MODELS/m` was looked for as a folder named "$MODELS" beside the catalogue,
    and validate and rank said only that it does not exist; catalogues expand no variable
    (only a leading ~), and now say so with the path to write where it is set."""
    from hubensemble.hub import locate
    from hubensemble.modulefiles import local_handle_warnings

    monkeypatch.setenv("HE_TEST_MODELS", str(tmp_path / "models"))
    monkeypatch.delenv("HE_TEST_UNSET", raising=False)
    path = write(tmp_path, """
        modules:
          - name: a
            handle: $HE_TEST_MODELS/m
          - name: b
            handle: ./x/${HE_TEST_UNSET}/m
          - name: c
            handle: keras:MobileNetV2
            weights: ${HE_TEST_MODELS}/w.weights.h5
        """)
    specs = load_catalogue(path)
    notes = local_handle_warnings(specs)
    at = {n: f"{path}:{line_of(path, n)}" for n in ('handle: $HE', 'handle: ./x', 'weights:')}
    written = os.path.expandvars("$HE_TEST_MODELS/m")  # the reference: the shell's expansion
    rule = "is part of the name here: a catalogue expands no environment variable, only a " \
           "leading ~"
    missing = "does not exist on this machine"
    assert notes == [
        f"warning: {at['handle: $HE']}: handle '$HE_TEST_MODELS/m' "
        f"({tmp_path / '$HE_TEST_MODELS/m'}, {REL}) {missing} "
        f"(`$HE_TEST_MODELS` {rule}; write '{written}'); rank will skip it here",
        f"warning: {at['handle: ./x']}: handle './x/${{HE_TEST_UNSET}}/m' "
        f"({tmp_path / 'x/${HE_TEST_UNSET}/m'}, {REL}) {missing} "
        f"(`${{HE_TEST_UNSET}}` {rule}; write the path itself (${{HE_TEST_UNSET}} is not set "
        "here either)); rank will skip it here",
        f"warning: {at['weights:']}: weights file "
        f"'{tmp_path / '${HE_TEST_MODELS}/w.weights.h5'}' {missing} (`${{HE_TEST_MODELS}}` "
        f"{rule}; write '{tmp_path / 'models/w.weights.h5'}'); rank will skip it here"]
    for spec in (specs[0], specs[2]):  # rank's words (hub.locate): the same note
        with pytest.raises(HubensembleError, match=f"{rule}; write '{tmp_path / 'models'}/"):
            locate(spec.handle, name=spec.name, weights=spec.weights)


def test_load_catalogues_combines_in_order_and_reads_a_repeated_file_once(tmp_path):
    a = write(tmp_path, f"modules:\n  - {{name: a1, handle: '{TFHUB}'}}\n"
                        f"  - {{name: a2, handle: '{TFHUB}'}}\n", "a.yaml")
    b = write(tmp_path, f"modules:\n  - {{name: b1, handle: '{TFHUB}'}}\n", "b.yaml")
    assert [s.name for s in load_catalogues([b, a, str(b)])] == ["b1", "a1", "a2"]
    assert [s.source for s in load_catalogues([a])] == [f"{a}:2", f"{a}:3"]


def test_duplicate_name_across_files_names_both_file_and_line(tmp_path):
    a = write(tmp_path, f"""
        modules:
          - name: one
            handle: {TFHUB}
          - name: shared
            handle: {TFHUB}
        """, "a.yaml")
    b = write(tmp_path, f"""
        defaults:
          family: other
        modules:
          - name: shared
            handle: {TFHUB}
        """, "b.yaml")
    with pytest.raises(CatalogueError) as info:
        load_catalogues([a, b])
    (problem,) = str(info.value).splitlines()
    assert problem.startswith(f"{b}:{line_of(b, 'name: shared')}: field 'name': 'shared'")
    assert f"{a}:{line_of(a, 'name: shared')}" in problem and "rename" in problem


def test_problems_from_several_files_are_reported_together(tmp_path):
    a = write(tmp_path, f"modules:\n  - {{name: a, handle: '{TFHUB}', famliy: x}}\n", "a.yaml")
    b = write(tmp_path, "modules: []\n", "b.yaml")
    with pytest.raises(CatalogueError) as info:
        load_catalogues([a, b])
    lines = str(info.value).splitlines()
    find_problem(lines, f"{a}:2:", "field 'famliy'", "write 'family' instead")
    find_problem(lines, f"{b}:1:", "field 'modules'", "empty")


# ---------------------------------------------------------------------------- errors

# (id, YAML text, text on the line the problem must point at, field, words of the hint)
#: A hash as `sha256sum` prints it (before its two spaces and the file name).
PASTED = "86bae40123456789abcdef0123456789abcdef0123456789abcdef01239236fc"

ERRORS = [
    ("bad-indentation", f"""
        modules:
          - name: a
            handle: {TFHUB}
           family: expert
        """, "   family: expert", None, ["YAML syntax error", "indentation"]),
    # A tab was told to "check the indentation" only: a tab looks like the spaces around it.
    ("tab-indentation", "modules:\n\t- name: a\n", "\t- name", None,
     ["YAML syntax error", "spaces only", "replace each tab on this line"]),
    ("tab-in-an-entry", f"modules:\n  - name: a\n\thandle: {TFHUB}\n", "\thandle", None,
     ["YAML syntax error", "spaces only", "replace each tab on this line"]),
    ("two-documents", f"modules:\n  - {{name: a, handle: '{TFHUB}'}}\n---\nmodules: []\n", "---",
     None, ["YAML syntax error: expected a single document in the stream, but found another"]),
    ("unclosed-bracket", f"""
        modules:
          - name: a
            input_size: [1, 2
            handle: {TFHUB}
        """, "handle:", None, ["YAML syntax error", "close every ["]),
    ("top-level-list", f"""
        - name: a
          handle: {TFHUB}
        """, "- name: a", None, ["not a mapping", "under a `modules:` line"]),
    ("top-level-scalar", "just text\n", "just text", None, ["not a mapping", "modules:"]),
    ("missing-modules", """
        defaults:
          family: expert
        """, "defaults:", "modules", ["missing", "write `modules:`"]),
    ("empty-modules", "modules: []\n", "modules: []", "modules", ["empty list", "write entries"]),
    ("null-modules", "modules:\n", "modules:", "modules", ["empty", "write entries"]),
    ("modules-not-a-list", "modules: {name: a}\n", "modules:", "modules",
     ["not a list", "write entries"]),
    ("entry-not-a-mapping", f"""
        modules:
          - name: ok
            handle: {TFHUB}
          - just-a-string
        """, "- just-a-string", None, ["entry 2", "not a mapping", "write `- name:"]),
    ("missing-name", f"""
        modules:
          - handle: {TFHUB}
            family: expert
        """, "- handle:", "name", ["missing", "write `name:"]),
    ("missing-handle", """
        modules:
          - name: a
            family: expert
        """, "- name: a", "handle", ["missing", "write `handle:"]),
    ("unknown-field", f"""
        modules:
          - name: a
            handle: {TFHUB}
            ouput_dim: 2048
        """, "ouput_dim", "ouput_dim", ["unknown field", "write 'output_dim' instead"]),
    ("unknown-field-no-match", f"""
        modules:
          - name: a
            handle: {TFHUB}
            zzz: 1
        """, "zzz", "zzz", ["unknown field", "write one of name, handle"]),
    # git's rule (text.closest_name), case aside: difflib's ratio found nothing for HANDLE.
    ("unknown-field-case", """
        modules:
          - name: a
            HANDLE: ./m
        """, "HANDLE", "HANDLE", ["unknown field", "write 'handle' instead"]),
    ("unknown-top-level", f"""
        module:
          - name: a
            handle: {TFHUB}
        """, "module:", "module", ["unknown top-level key", "write 'modules' instead"]),
    ("repeated-field", f"""
        modules:
          - name: a
            handle: {TFHUB}
            family: expert
            family: other
        """, "family: other", "family", ["given twice", "write it once"]),
    ("name-not-a-string", f"""
        modules:
          - name: 123
            handle: {TFHUB}
        """, "name: 123", "name", ["unquoted `123` as the integer 123, not as text",
                                   "write name: '123' (quoted)"]),
    ("name-bad-characters", f"""
        modules:
          - name: my module/1
            handle: {TFHUB}
        """, "name: my module", "name", ["letters, digits", "write name: my-module-1"]),
    # YAML reads `yes` as True: the hint quotes what was written ('True' named another name).
    ("name-yaml-bool", f"""
        modules:
          - name: yes
            handle: {TFHUB}
        """, "name: yes", "name", ["unquoted `yes` as the boolean True", "on and off are "
                                   "booleans", "write name: 'yes' (quoted)"]),
    # Every field YAML can read as another type than text says so and that quoting fixes it,
    # where the text as written is valid: an all-digit sha256 is an integer (all zeros: 0),
    # 1:30 a sexagesimal integer, 2020-01-01 a date, on a boolean.
    ("sha256-all-zero-unquoted", f"""
        modules:
          - name: a
            handle: {TFHUB}
            sha256: {"0" * 64}
        """, "sha256", "sha256", ["YAML reads the unquoted `" + "0" * 64 + "` as the integer 0, "
                                  "not as text", "write sha256: '" + "0" * 64 + "' (quoted)"]),
    # (a sha256 in `defaults:` is refused as such now: the rule is shown on a text field)
    ("digits-in-defaults", f"""
        defaults:
          architecture: 2024
        modules:
          - name: a
            handle: {TFHUB}
        """, "architecture", "architecture", ["as the integer 2024",
                                              "write architecture: '2024'"]),
    ("handle-digits", """
        modules:
          - name: a
            handle: 2024
        """, "handle", "handle", ["as the integer 2024", "write handle: '2024' (quoted)"]),
    ("subtree-date", f"""
        modules:
          - name: a
            handle: {TFHUB}
            subtree: 2020-01-01
        """, "subtree", "subtree", ["as the date 2020-01-01, not as text",
                                    "write subtree: '2020-01-01' (quoted)"]),
    ("license-sexagesimal", f"""
        modules:
          - name: a
            handle: {TFHUB}
            license: 1:30
        """, "license", "license", ["`1:30` as the integer 90", "write license: '1:30'"]),
    ("tags-items", f"""
        modules:
          - name: a
            handle: {TFHUB}
            tags: [2020, on, x]
        """, "tags", "tags", ["`2020` as the integer 2020 and `on` as the boolean True",
                              "write tags: ['2020', 'on', 'x'] (quoted)"]),
    # The text as written is wrong too: its own problem, not "unknown family False".
    ("family-yaml-bool", f"""
        modules:
          - name: a
            handle: {TFHUB}
            family: no
        """, "family", "family", ["unknown family 'no' (known: generalist, expert, other)",
                                  "write family: other instead"]),
    ("sha256-digits-short", f"""
        modules:
          - name: a
            handle: {TFHUB}
            sha256: 12345
        """, "sha256", "sha256", ["'12345' is not 64 hexadecimal characters",
                                  "of the archive as downloaded"]),
    ("output-key-bool", f"""
        modules:
          - name: a
            handle: {TFHUB}
            output_key: no
        """, "output_key", "output_key", ["`no` as the boolean False",
                                          "write output_key: 'no' (quoted)"]),
    ("name-leading-dash", f"""
        modules:
          - name: -x
            handle: {TFHUB}
        """, "name: -x", "name", ["start with a letter", "write name: x instead"]),
    ("name-accented", f"""
        modules:
          - name: modèle-ü
            handle: {TFHUB}
        """, "name: mod", "name", ["letters, digits", "write name: modele-u instead"]),
    ("output-dim-string", f"""
        modules:
          - name: a
            handle: {TFHUB}
            output_dim: big
        """, "output_dim", "output_dim", ["not a positive integer", "write output_dim: 2048"]),
    ("output-dim-zero", f"""
        modules:
          - name: a
            handle: {TFHUB}
            output_dim: 0
        """, "output_dim", "output_dim", ["not a positive integer", "output_dim: null"]),
    ("params-float", f"""
        modules:
          - name: a
            handle: {TFHUB}
            params: 23.5e6
        """, "params", "params", ["not a positive integer", "write params:"]),
    ("seed-string", f"""
        modules:
          - name: a
            handle: {TFHUB}
            seed: abc
        """, "seed", "seed", ["not an integer", "write seed: 0"]),
    ("trust-string", f"""
        modules:
          - name: a
            handle: {TFHUB}
            trust: maybe
        """, "trust", "trust", ["not true or false", "write trust: true"]),
    ("tags-string", f"""
        modules:
          - name: a
            handle: {TFHUB}
            tags: bit
        """, "tags", "tags", ["not a list of strings", "write tags: [bit]"]),
    ("architecture-number", f"""
        modules:
          - name: a
            handle: {TFHUB}
            architecture: 50
        """, "architecture", "architecture", ["`50` as the integer 50",
                                              "write architecture: '50' (quoted)"]),
    ("bad-value-range", f"""
        modules:
          - name: a
            handle: {TFHUB}
            value_range: [0, 2]
        """, "value_range", "value_range", ["not a known value range",
                                            "write value_range: [0, 1], [-1, 1], [0, 255]"]),
    ("input-size-one-number", f"""
        modules:
          - name: a
            handle: {TFHUB}
            input_size: 224
        """, "input_size", "input_size", ["pair of positive integers",
                                          "write input_size: [224, 224]"]),
    ("input-size-zero", f"""
        modules:
          - name: a
            handle: {TFHUB}
            input_size: [0, 224]
        """, "input_size", "input_size", ["pair of positive integers", "input_size: null"]),
    ("input-size-huge", f"""
        modules:
          - name: a
            handle: {TFHUB}
            input_size: [1000000, 1000000]
        """, "input_size", "input_size", ["a side above 2048 pixels", "a typo?",
                                          "input_size: [224, 224]"]),
    ("input-size-block-list", f"""
        modules:
          - name: a
            handle: {TFHUB}
            input_size:
              - 224
        """, "input_size:", "input_size", ["pair of positive integers"]),
    ("sha256-short", f"""
        modules:
          - name: a
            handle: {TFHUB}
            sha256: abc123
        """, "sha256", "sha256", ["64 hexadecimal", "write the hash printed by `sha256sum",
                                  "the 64-character hash alone, not the name after it"]),
    # sha256sum's own line, a `sha256:` digest and a pipe's `HASH  -`: told the exact value to
    # write, not "write the output of `sha256sum …`", which is what was written (it looped).
    ("sha256-sha256sum-line", f"""
        modules:
          - name: a
            handle: {TFHUB}
            sha256: {PASTED}  saved_model.pb
        """, "sha256", "sha256", ["is not 64 hexadecimal characters",
                                  f"write sha256: '{PASTED}' (the 64-character hash alone)"]),
    ("sha256-digest-prefix", f"""
        modules:
          - name: a
            handle: {TFHUB}
            sha256: 'sha256:{PASTED.upper()}'
        """, "sha256", "sha256", [f"write sha256: '{PASTED}' (the 64-character hash alone)"]),
    ("sha256-pipe-line", f"""
        modules:
          - name: a
            handle: {TFHUB}
            sha256: "{PASTED}  -"
        """, "sha256", "sha256", [f"write sha256: '{PASTED}' (the 64-character hash alone)"]),
    ("sha256-not-hex", f"""
        modules:
          - name: a
            handle: {TFHUB}
            sha256: {"g" * 64}
        """, "sha256", "sha256", ["64 hexadecimal", "sha256sum"]),
    ("unknown-family", f"""
        modules:
          - name: a
            handle: {TFHUB}
            family: generalists
        """, "family", "family", ["unknown family", "write family: generalist instead"]),
    # No near family: the default, where difflib's ratio offered generalist (0.6).
    ("unknown-family-far", f"""
        modules:
          - name: a
            handle: {TFHUB}
            family: specialist
        """, "family", "family", ["unknown family", "write family: other instead"]),
    ("duplicate-name", f"""
        modules:
          - name: twin
            handle: {TFHUB}
          - name: other
            handle: {TFHUB}
          - name: twin
            handle: {TFHUB}
        """, ("name: twin", 2), "name", ["'twin' is already used by the entry at {first}",
                                         "write a name that no other entry uses"]),
    ("unknown-default", """
        defaults:
          famly: expert
        modules:
          - name: a
            handle: https://tfhub.dev/google/bit/m-r50x1/1
        """, "famly", "famly", ["unknown field in defaults", "write 'family' instead"]),
    ("name-in-defaults", f"""
        defaults:
          name: shared
        modules:
          - name: a
            handle: {TFHUB}
        """, "name: shared", "name", ["cannot have a default", "write name: in each entry"]),
    # A sha256 pins one file: in `defaults:` every entry took it, and all but at most one
    # failed their checksum as rank loaded them.
    ("sha256-in-defaults", f"""
        defaults:
          family: expert
          sha256: {"ab" * 32}
        modules:
          - name: a
            handle: {TFHUB}
          - name: b
            handle: {TFHUB.replace("/1", "/2")}
        """, "sha256:", "sha256", [
            "cannot have a default: a sha256 pins one file (the archive, saved_model.pb or model "
            "file of one handle), so one value cannot be right for every entry; move sha256: "
            "into the entry whose file it is the hash of"]),
    ("bad-default-value", f"""
        defaults:
          value_range: [0, 9]
        modules:
          - name: a
            handle: {TFHUB}
        """, "value_range", "value_range", ["not a known value range"]),
    ("defaults-not-a-mapping", f"""
        defaults: [family]
        modules:
          - name: a
            handle: {TFHUB}
        """, "defaults:", "defaults", ["not a mapping", "write fields indented"]),
    ("unsupported-scheme", """
        modules:
          - name: a
            handle: s3://bucket/m.tar.gz
        """, "handle", "handle", ["scheme 's3:' is not supported", "https://tfhub.dev/"]),
    ("unversioned-tfhub", """
        modules:
          - name: a
            handle: https://tfhub.dev/google/bit/m-r50x1
        """, "handle", "handle", ["PUBLISHER/MODEL/VERSION", "write the versioned URL"]),
    ("kaggle-without-version", """
        modules:
          - name: a
            handle: https://www.kaggle.com/models/google/bit/tensorFlow2/m-r50x1
        """, "handle", "handle", ["not a Kaggle Models handle", "OWNER/MODEL/FRAMEWORK"]),
    ("kaggle-short-form-wrong", """
        modules:
          - name: a
            handle: kaggle:google/bit/1
        """, "handle", "handle", ["not a Kaggle Models handle", "write https://www.kaggle.com"]),
    ("zoo-without-preset", """
        modules:
          - name: a
            handle: zoo:expert-3
        """, "handle", "handle", ["not zoo:PRESET/NAME", "write e.g. zoo:demo/r8x2-generalist-0"]),
    ("empty-handle", """
        modules:
          - name: a
            handle: ""
        """, "handle", "handle", ["non-empty string", "https://tfhub.dev/"]),
    ("handle-not-a-string", """
        modules:
          - name: a
            handle: [x]
        """, "handle", "handle", ["non-empty string"]),
    # `~` alone is YAML's null: reported as "got NoneType None".
    ("handle-tilde", """
        modules:
          - name: a
            handle: ~
        """, "handle", "handle", ["`~` alone is YAML's null", "handle: '~/…'",
                                  "https://tfhub.dev/"]),
    ("handle-null", """
        modules:
          - name: a
            handle: null
        """, "handle", "handle", ["`null` alone is YAML's null", "https://tfhub.dev/"]),
    ("handle-left-empty", """
        modules:
          - name: a
            handle:
        """, "handle", "handle", ["non-empty string, got null;", "https://tfhub.dev/"]),
    ("name-tilde", f"""
        modules:
          - name: ~
            handle: {TFHUB}
        """, "name: ~", "name", ["`~` alone is YAML's null", "e.g. name: my-module"]),
    ("family-tilde", f"""
        modules:
          - name: a
            handle: {TFHUB}
            family: ~
        """, "family", "family", ["`~` alone is YAML's null", "write family: other"]),
    ("empty-file", "", None, None, ["empty", "write `modules:`"]),
    ("unknown-input-dtype", f"""
        modules:
          - name: a
            handle: {TFHUB}
            input_dtype: float16
        """, "input_dtype", "input_dtype", ["'float16'", "write input_dtype: uint8"]),
]


@pytest.mark.parametrize("text, needle, field, words", [e[1:] for e in ERRORS],
                         ids=[e[0] for e in ERRORS])
def test_each_problem_names_file_line_field_and_a_fix(tmp_path, text, needle, field, words):
    path = write(tmp_path, text)
    if needle is None:
        line = 1
    elif isinstance(needle, tuple):
        line = line_of(path, *needle)
    else:
        line = line_of(path, needle)
    # "{first}" stands for the file:line of the first of two duplicate entries.
    if any("{first}" in w for w in words):
        first = f"{path}:{line_of(path, 'name: twin')}"
        words = [w.replace("{first}", first) for w in words]
    if field is not None:
        words.append(f"field {field!r}: ")
    problem = find_problem(problems_of(path), f"{path}:{line}: ", *words)
    assert "; " in problem  # every message ends with what to write instead


def test_a_refused_sha256_says_what_to_hash_for_its_handle(tmp_path):
    """The hint names what the pin is compared with for the entry's handle (wherever the
    handle is written in the entry): `sha256sum FILE.tar.gz` was the hint for every handle,
    wrong for a local SavedModel, a Keras file and a sharded keras-hub preset (its index and
    shards read one after the other)."""
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"x")
    (tmp_path / "m.keras").write_bytes(b"PK\x03\x04")
    for preset in ("one", "sharded"):
        (tmp_path / preset).mkdir()
        for name in ("config.json", "metadata.json"):
            (tmp_path / preset / name).write_text("{}")
    (tmp_path / "one" / "model.weights.h5").write_bytes(b"x")
    (tmp_path / "sharded" / "model.weights.json").write_text(
        '{"weight_map": {"b/vars/0": "model_00001.weights.h5", '
        '"a/vars/0": "model_00000.weights.h5"}}')
    path = write(tmp_path, """
        modules:
          - name: sm
            sha256: abc
            handle: ./sm
          - name: kf
            handle: ./m.keras
            sha256: abc
          - name: one
            handle: ./one
            sha256: abc
          - name: sharded
            sha256: abc
            handle: ./sharded
          - name: app
            handle: keras:ResNet50
            sha256: abc
          - name: folder
            handle: gs://bucket/models/m
            sha256: abc
          - name: url
            handle: https://example.org/m.keras
            sha256: abc
        """)
    lines = problems_of(path)
    hints = {name: find_problem(lines, f"{path}:{line_of(path, 'sha256', nth)}: ",
                                "field 'sha256'", "64 hexadecimal") for nth, name in
             enumerate(("sm", "kf", "one", "sharded", "app", "folder", "url"), start=1)}
    assert f"`sha256sum {tmp_path / 'sm' / 'saved_model.pb'}`" in hints["sm"]
    assert f"`sha256sum {tmp_path / 'm.keras'}`" in hints["kf"]
    assert f"`sha256sum {tmp_path / 'one' / 'model.weights.h5'}`" in hints["one"]
    assert (f"`cd {tmp_path / 'sharded'} && cat model.weights.json model_00000.weights.h5 "
            f"model_00001.weights.h5 | sha256sum` (quoted): its index and shards"
            in hints["sharded"])
    assert "weights: file, or of Keras' ImageNet file" in hints["app"]
    assert "`sha256sum saved_model.pb` (quoted) in a copy of the folder" in hints["folder"]
    assert "`sha256sum FILE` (quoted) of the file as downloaded" in hints["url"]
    assert not any("FILE.tar.gz" in hint for hint in hints.values())


def test_all_problems_of_a_file_are_reported_at_once_in_line_order(tmp_path):
    path = write(tmp_path, f"""
        defaults:
          famly: expert
        modules:
          - name: a
            handle: {TFHUB}
            value_range: [0, 2]
          - name: b
          - name: a
            handle: {TFHUB}
            input_size: [224]
        """)
    lines = problems_of(path)
    expected = [
        (line_of(path, "famly"), "field 'famly'"),
        (line_of(path, "value_range"), "field 'value_range'"),
        (line_of(path, "name: b"), "field 'handle': missing"),
        (line_of(path, "name: a", 2), "field 'name': 'a' is already used"),
        (line_of(path, "input_size"), "field 'input_size'"),
    ]
    assert len(lines) == len(expected), lines
    for problem, (line, words) in zip(lines, expected):
        assert problem.startswith(f"{path}:{line}: {words}"), problem


def test_an_entry_with_a_problem_still_claims_its_name(tmp_path):
    # The second 'x' is reported even though the first 'x' has a problem of its own.
    path = write(tmp_path, f"""
        modules:
          - name: x
            handle: {TFHUB}
            output_dim: -1
          - name: x
            handle: {TFHUB}
        """)
    lines = problems_of(path)
    find_problem(lines, f"{path}:{line_of(path, 'output_dim')}: ", "field 'output_dim'")
    find_problem(lines, f"{path}:{line_of(path, 'name: x', 2)}: ", "already used",
                 f"{path}:{line_of(path, 'name: x')}")


def test_a_missing_file_is_a_catalogue_error_naming_it(tmp_path):
    """Each cause of an unreadable file gets its own fix: `catalogue validate missing.yaml`
    said "[Errno 2] No such file …; check the path and that the file is UTF-8 text", a
    check no unopened file can fail (text not UTF-8 is refused at its line)."""
    missing = tmp_path / "nope.yaml"
    with pytest.raises(CatalogueError) as e:
        load_catalogue(missing)
    assert str(e.value) == f"{missing}: cannot read the catalogue: no such file; check the path"
    with pytest.raises(CatalogueError) as e:
        load_catalogue(tmp_path)
    assert str(e.value) == (f"{tmp_path}: cannot read the catalogue: it is a folder; name a "
                            "catalogue file (.yaml) in it")
    assert issubclass(CatalogueError, HubensembleError)


# ---------------------------------------------------------------------------- records


def test_a_spec_names_the_line_of_each_field_the_yaml_gave(tmp_path):
    """`field_source` gives the line of a field in its entry, or of `defaults:`'s when the
    entry takes it from there, else the entry's line (rank's output_dim warning named the
    entry's first line); the lines are no part of the entry's record or equality."""
    path = write(tmp_path, """
        defaults:
          output_dim: 9
        modules:
          - name: m
            handle: zoo:demo/m
            family: expert
            output_dim: 512
          - name: n
            handle: zoo:demo/n
        """)
    m, n = load_catalogue(path)
    assert m.field_source("output_dim") == f"{path}:{line_of(path, 'output_dim: 512')}"
    assert n.field_source("output_dim") == f"{path}:{line_of(path, 'output_dim: 9')}"
    assert n.field_source("family") == n.source == f"{path}:{line_of(path, 'name: n')}"
    assert "lines" not in m.to_json() and ModuleSpec.from_json(m.to_json()) == m
    assert ModuleSpec.from_json(m.to_json()).field_source("output_dim") == m.source


def test_spec_json_round_trip_and_validation():
    spec = ModuleSpec(name="m", handle="zoo:demo/m", sha256="F" * 64, input_size=[32, 32],
                      value_range=[0, 255], output_dim=8, tags=["a"], seed=1, trust=True,
                      source="x.yaml:3")
    assert spec.sha256 == "f" * 64 and spec.input_size == (32, 32) and spec.tags == ("a",)
    assert spec.value_range == "0,255"
    d = json.loads(json.dumps(spec.to_json()))
    assert d["input_size"] == [32, 32] and d["tags"] == ["a"]
    assert ModuleSpec.from_json(d) == spec
    assert ModuleSpec.from_json({"name": "n", "handle": TFHUB}) == ModuleSpec("n", TFHUB)
    with pytest.raises(ValueError, match="unknown ModuleSpec field"):
        ModuleSpec.from_json({**d, "colour": "red"})
    with pytest.raises(ValueError, match="'output_dim'.*'family'"):
        ModuleSpec(name="m", handle=TFHUB, output_dim=0, family="nope")
    with pytest.raises(ValueError, match="'handle'"):
        ModuleSpec(name="m", handle="s3://b/m.tar.gz")


def test_format_table_lists_every_spec_on_its_own_line():
    specs = [ModuleSpec("bit-m-r50x1", TFHUB, output_dim=2048, family="generalist",
                        params=23500352),
             ModuleSpec("tiny", "zoo:demo/tiny", input_size=(32, 32), value_range="imagenet")]
    lines = format_table(specs).splitlines()
    assert lines[0].split() == ["NAME", "FAMILY", "DIM", "INPUT", "RANGE", "PARAMS", "HANDLE"]
    assert lines[1].split() == ["bit-m-r50x1", "generalist", "2048", "any", "0,1", "23.5M", TFHUB]
    assert lines[2].split() == ["tiny", "other", "?", "32x32", "imagenet", "-", "zoo:demo/tiny"]
    assert lines[3] == "2 modules"
    # Columns line up: each handle starts at the same offset.
    assert lines[1].index(TFHUB) == lines[2].index("zoo:demo/tiny")
    assert format_table([]) == "(no modules)"


def test_shipped_catalogues_are_the_packaged_yaml_files():
    names = [p.name for p in shipped_catalogues()]
    assert {"bit_in21k_experts.yaml", "bit_generalists.yaml",
            "imagenet_feature_vectors.yaml"} <= set(names)
    assert names == sorted(names) and all(p.is_file() for p in shipped_catalogues())


# ---------------------------------------------------------------------------- writing


@pytest.mark.parametrize("start", ["modules: []\n", "# mine\nmodules:\n", "", None,
                                   "modules: []  # none yet\ndefaults:\n  family: expert\n",
                                   "# mine\nmodules:    # to fill\ndefaults:\n  license: x\n",
                                   "# mine\nmodules:\n  []  # none yet\n", "# mine\n\n# x\n",
                                   "# mine\ndefaults:\n  license: x\n", "---\n# mine\n"])
def test_catalogue_add_appends_to_an_empty_catalogue(tmp_path, start):
    """A new-user check: `catalogue add --to` a file holding `modules: []` or a bare
    `modules:` (the natural first file) was refused, after the module had loaded."""
    from hubensemble.catalogue_writer import append_catalogue, catalogue_names

    path = tmp_path / "c.yaml"
    if start is not None:
        path.write_text(start)
    assert catalogue_names(path) == set()
    append_catalogue(path, [ModuleSpec("a", TFHUB)])
    append_catalogue(path, [ModuleSpec("b", KAGGLE)])
    assert [s.name for s in load_catalogue(str(path))] == ["a", "b"]
    assert catalogue_names(path) == {"a", "b"}
    text = path.read_text()
    assert (start or "").startswith("#") == text.startswith("# mine\n")
    for comment in ("# none yet", "# to fill", "family: expert", "license: x"):
        assert (comment in (start or "")) == (comment in text), text  # kept where it was
    (tmp_path / "broken.yaml").write_text("modules: [\n")
    with pytest.raises(CatalogueError, match="broken.yaml:2: YAML syntax error"):
        catalogue_names(tmp_path / "broken.yaml")


def test_write_catalogue_round_trips_and_keeps_local_handles_relative(tmp_path):
    folder = tmp_path / "zoo"
    specs = [
        ModuleSpec("m-inside", str(folder / "modules" / "m1"), sha256="0" * 64,
                   input_size=(32, 32), value_range="-1,1", output_dim=16, family="expert",
                   architecture="tiny-cnn", upstream="synthetic", subtree="shapes", params=1234,
                   license="Apache-2.0", tags=("demo", "expert"), seed=3, trust=True,
                   output_key="features", input_dtype="uint8"),
        ModuleSpec("m-outside", str(tmp_path / "other" / "m2"), value_range="imagenet"),
        ModuleSpec("m-remote", "kaggle:google/bit/tensorFlow2/m-r50x1/1", license="no"),
        ModuleSpec("m-kaggle", KAGGLE, upstream="imagenet21k"),
        ModuleSpec("m-yes", TFHUB, architecture="yes", tags=("on", "1")),
    ]
    path = folder / "catalogue.yaml"
    write_catalogue(path, specs, header_comment="built by the zoo builder\nseed 3")
    text = path.read_text()
    assert text.startswith("# built by the zoo builder\n# seed 3\n")
    assert "./modules/m1" in text and str(tmp_path / "other" / "m2") in text
    back = load_catalogue(path)
    assert [s.source for s in back] == [f"{path}:{line_of(path, 'name: ' + s.name)}"
                                        for s in specs]
    assert [s.__class__(**{**s.to_json(), "source": ""}) for s in back] == specs
    assert not [n for n in os.listdir(folder) if fileio.is_temp(n)]

    # The folder moves with its catalogue: relative handles follow, absolute ones stay.
    moved = tmp_path / "moved"
    shutil.move(str(folder), str(moved))
    inside, outside = load_catalogue(moved / "catalogue.yaml")[:2]
    assert inside.handle == str(moved / "modules" / "m1")
    assert outside.handle == str(tmp_path / "other" / "m2")


def test_write_catalogue_refuses_what_would_not_load(tmp_path):
    path = tmp_path / "dup.yaml"
    with pytest.raises(CatalogueError, match="'twin' is already used"):
        write_catalogue(path, [ModuleSpec("twin", TFHUB), ModuleSpec("twin", TFHUB)])
    with pytest.raises(CatalogueError, match="'modules': is an empty list"):
        write_catalogue(path, [])
    assert not path.exists() and os.listdir(tmp_path) == []


def test_write_catalogue_stores_handles_as_loading_would(tmp_path):
    long_form = ("https://kaggle.com/models/google/bit/frameworks/tensorFlow2/variations/"
                 "m-r50x1/versions/1")
    path = tmp_path / "c.yaml"
    write_catalogue(path, [ModuleSpec("k", long_form)])
    assert f"handle: {KAGGLE}" in path.read_text()
    assert load_catalogue(path)[0].handle == KAGGLE


BENCH = "https://tfhub.dev/google/bench"


def big_catalogue(folder, n, bad=()):
    """A catalogue of n full entries (entry i: the fields below); entries in `bad` get an
    invalid input_size. Returns (path, the ModuleSpecs it should give)."""
    families = ("expert", "generalist", "other")
    chunks, want = ["defaults:\n  license: Apache-2.0\nmodules:\n"], []
    for i in range(n):
        size = "[224]" if i in bad else f"[{96 + i % 5 * 32}, {96 + i % 5 * 32}]"
        chunks.append(f"  - name: m{i:05d}\n    handle: {BENCH}/m{i}/1\n"
                      f"    sha256: '{i:064x}'\n    input_size: {size}\n"
                      f"    value_range: [{-1 if i % 2 else 0}, 1]\n"
                      f"    family: {families[i % 3]}\n    output_dim: {4 + i % 7}\n"
                      f"    tags: [t{i % 4}, bench]\n    seed: {i}\n"
                      f"    trust: {'true' if i % 10 == 0 else 'false'}\n")
    path = folder / "big.yaml"
    path.write_text("".join(chunks), encoding="utf-8")
    for i in range(n):
        side = 96 + i % 5 * 32
        want.append(ModuleSpec(
            name=f"m{i:05d}", handle=f"{BENCH}/m{i}/1", sha256=f"{i:064x}",
            input_size=(side, side), value_range="-1,1" if i % 2 else "0,1",
            family=families[i % 3], output_dim=4 + i % 7, tags=(f"t{i % 4}", "bench"), seed=i,
            trust=i % 10 == 0, license="Apache-2.0", source=f"{path}:{4 + 10 * i}"))
    return path, want


def test_a_2000_entry_catalogue_parses_and_validates_entry_by_entry(tmp_path, monkeypatch):
    """The scale of the paper's pool (C.8: over 2,000 modules): every entry read right, with
    its own line, by the fast (libyaml) and the pure-Python parser alike."""
    from hubensemble import catalogue

    path, want = big_catalogue(tmp_path, 2000)
    assert load_catalogue(path) == want
    monkeypatch.setattr(catalogue, "_FAST_LOADER", None)
    assert load_catalogue(path) == want


def test_problems_deep_in_a_2000_entry_catalogue_name_their_lines(tmp_path, monkeypatch):
    from hubensemble import catalogue

    path, _ = big_catalogue(tmp_path, 2000, bad=(3, 1000, 1999))
    for fast in (catalogue._FAST_LOADER, None):
        monkeypatch.setattr(catalogue, "_FAST_LOADER", fast)
        lines = problems_of(path)
        assert [ln.split(": ")[0] for ln in lines] == [
            f"{path}:{line_of(path, f'name: m{i:05d}') + 3}" for i in (3, 1000, 1999)]
        assert all("field 'input_size'" in ln for ln in lines)
    # A syntax error: the pure-Python parser's message, with its line, whichever parser ran.
    path.write_text(path.read_text() + "  - name: [unclosed\n")
    assert "big.yaml" in problems_of(path)[0]


# ---------------------------------------------------------------------------- other sources


def test_sources_beyond_tf_hub_and_their_fields_are_read(tmp_path):
    path = write(tmp_path / "c", """
        modules:
          - name: app
            handle: keras:EfficientNetV2B0
            weights: ./w/effnet.weights.h5
            input_size: [224, 224]
          - {name: app-imagenet, handle: "keras:ResNet50V2", weights: imagenet}
          - {name: file, handle: ./models/clf.keras, layer: pool}
          - {name: legacy, handle: ./models/old.h5}
          - {name: exported, handle: ./exported, signature: serving_default, output_key: output_0}
          - {name: preset, handle: "kaggle://keras/resnetv2/keras/resnet50_v2_imagenet/2"}
          - {name: hf, handle: "hf://keras/resnet_50_imagenet"}
        """)
    specs = {s.name: s for s in load_catalogue(path)}
    folder = str(tmp_path / "c")
    assert specs["app"].weights == os.path.join(folder, "w", "effnet.weights.h5")
    assert specs["app-imagenet"].weights == "imagenet"
    assert (specs["file"].handle, specs["file"].layer) == (
        os.path.join(folder, "models", "clf.keras"), "pool")
    assert specs["exported"].signature == "serving_default"
    assert {n: handle_kind(s.handle) for n, s in specs.items()} == {
        "app": "keras", "app-imagenet": "keras", "file": "local", "legacy": "local",
        "exported": "local", "preset": "keras-hub", "hf": "keras-hub"}
    # A weights file inside the catalogue's folder is written back relative to it.
    out = tmp_path / "c" / "copy.yaml"
    write_catalogue(out, list(specs.values()))
    assert "weights: ./w/effnet.weights.h5" in out.read_text()
    assert [s.to_json() | {"source": ""} for s in load_catalogue(out)] == [
        s.to_json() | {"source": ""} for s in specs.values()]


@pytest.mark.parametrize("entry, field, words", [
    ("{name: a, handle: 'keras:EfficientNetV2B9'}", "handle",
     ("not a keras.applications architecture", "write keras:EfficientNetV2B")),
    # git's rule (text.closest_name): difflib offered EfficientNetB2, and nothing for vgg16.
    ("{name: a, handle: 'keras:efficientnetv2s'}", "handle", ("write keras:EfficientNetV2S",)),
    ("{name: a, handle: 'keras:vgg16'}", "handle", ("write keras:VGG16 instead",)),
    ("{name: a, handle: ./m, weights: ./w.weights.h5}", "weights",
     ("only keras:NAME entries take weights", "remove weights:")),
    ("{name: a, handle: 'keras:VGG16', weights: ./w.pt}", "weights",
     ("not a Keras weights file",)),
    ("{name: a, handle: ./saved_model_dir, layer: pool}", "layer",
     ("only .keras and .h5 model files take layer",)),
    ("{name: a, handle: ./m.keras, signature: serve}", "signature",
     ("only SavedModels take signature",)),
    ("{name: a, handle: 'keras:VGG16', value_range: [0, 255]}", "value_range",
     ("own preprocessing inside", "[0, 1]")),
    ("{name: a, handle: ./m.h5, input_dtype: uint8}", "input_dtype", ("float32",)),
    ("{name: a, handle: 'keras:InceptionV3', input_size: [32, 32]}", "input_size",
     ("at least 75 x 75", "input_size: [299, 299]")),
    ("{name: a, handle: 'keras:VGG16', output_dim: 4096}", "output_dim",
     ("512-d", "output_dim: 512")),
    ("{name: a, handle: ./w/model.weights.h5}", "handle",
     ("is a weights file, not a model", "keras:ResNet50V2")),
    ("{name: a, handle: 'kaggle://keras/resnetv2'}", "handle",
     ("not a keras-hub Kaggle preset",)),
])
def test_fields_that_do_not_fit_the_source_are_file_line_errors(tmp_path, entry, field, words):
    path = write(tmp_path, f"""
        modules:
          - {{name: ok, handle: "keras:MobileNetV3Small"}}
          - {entry}
        """)
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:{line_of(path, 'name: a')}: field '{field}'"), problem
    assert all(w in problem for w in words), problem


def test_a_field_that_does_not_fit_is_reported_at_its_own_line(tmp_path):
    path = write(tmp_path, """
        modules:
          - name: a
            handle: ./model_dir
            weights: imagenet
        """)
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:{line_of(path, 'weights:')}: field 'weights'")
    # A `defaults:` value that does not fit an entry: the default's line, naming the entry
    # (the entry's `- name:` line was named, and "remove it from this entry", where it is not).
    path = write(tmp_path, """
        defaults:
          value_range: [-1, 1]
        modules:
          - {name: hub, handle: ./model_dir}
          - name: app
            handle: keras:VGG16
        """)
    (problem,) = problems_of(path)
    assert problem.startswith(
        f"{path}:2: field 'value_range': (the `defaults:` value, taken by entry 'app' at "
        f"{path}:{line_of(path, 'name: app')}) hubensemble feeds"), problem
    assert problem.endswith("; move value_range: from `defaults:` into the entries it fits")


def test_module_specs_built_in_code_get_the_same_source_checks():
    assert ModuleSpec(name="a", handle="keras:VGG16").value_range == "0,1"
    with pytest.raises(ValueError, match="only keras:NAME entries take weights"):
        ModuleSpec(name="a", handle="/m", weights="imagenet")
    with pytest.raises(ValueError, match="own preprocessing inside"):
        ModuleSpec(name="a", handle="keras:VGG16", value_range="imagenet")


def test_the_keras_applications_catalogue_ships():
    names = [p.name for p in shipped_catalogues()]
    assert "keras_applications.yaml" in names


def test_catalogue_add_names_an_entry_after_its_handle_without_the_archive_suffix():
    # A new-user check: "ok.tar.bz2" kept its suffix as the name, while "g.tar.gz" gave "g".
    from hubensemble.hub.introspect import entry_name

    for url in ("https://h/m/ok.tar.gz", "https://h/m/ok.tgz", "https://h/m/ok.tar.bz2",
                "https://h/m/ok.tbz2", "https://h/m/ok.tar.xz", "https://h/m/ok.txz",
                "https://h/m/ok.tar", "/models/ok.keras", "/models/ok.h5"):
        assert entry_name(url) == "ok", url
    assert entry_name("https://h/m/ok.tar.bz2", taken={"ok"}) == "ok-2"
    assert entry_name("https://tfhub.dev/google/bit/m-r50x1/1") == "m-r50x1-1"


def main_in_a_new_process(*argv):
    """cli.main(argv) in a process of its own -> (exit code, stderr, whether TensorFlow was
    imported), for the refusals `catalogue add` makes before TensorFlow."""
    code = ("import json, sys; from hubensemble.cli import main; c = main(sys.argv[1:]); "
            "print(json.dumps([c, 'tensorflow' in sys.modules]))")
    run = subprocess.run([sys.executable, "-c", code, *map(str, argv)], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    exit_code, tensorflow = json.loads(run.stdout.splitlines()[-1])
    return exit_code, run.stderr, tensorflow


def test_catalogue_add_refuses_a_taken_name_before_tensorflow(tmp_path):
    """A new-user check: `--name` an entry of the --to file already has was refused after
    TensorFlow and the module's load, naming a line of the would-be text (FILE:4), after a
    duplicate warning about the refused entry."""
    (tmp_path / "m").mkdir()  # exists: the handle's own checks pass
    taken = write(tmp_path, "# mine\nmodules:\n  - name: g0\n    handle: ./m\n")
    text = taken.read_text()
    code, err, tensorflow = main_in_a_new_process(
        "catalogue", "add", tmp_path / "m", "--name", "g0", "--to", taken)
    assert (code, tensorflow) == (2, False), err
    assert err == (f"hubensemble: error: {taken}: --name 'g0' is already used by the entry at "
                   f"{taken}:3; choose another name, or leave --name out for one made from "
                   f"the handle\n")
    assert taken.read_text() == text


def test_catalogue_add_refuses_a_flow_style_list_before_tensorflow(tmp_path):
    """A new-user check: `catalogue add` to a valid flow-style file (`modules: [{…}]`) failed
    with "FILE:2: YAML syntax error", blaming the file, after the module had loaded."""
    (tmp_path / "m").mkdir()
    flow = write(tmp_path, "modules: [{name: a, handle: ./m}]\n", name="flow.yaml")
    own_line = write(tmp_path, "# mine\nmodules:\n  [{name: a, handle: ./m}]\n",
                     name="own.yaml")
    whole = write(tmp_path, "{modules: [{name: a, handle: ./m}]}\n", name="whole.yaml")
    texts = {p: p.read_text() for p in (flow, own_line, whole)}
    code, err, tensorflow = main_in_a_new_process(
        "catalogue", "add", tmp_path / "m", "--to", flow)
    assert (code, tensorflow) == (2, False), err
    assert err == (f"hubensemble: error: cannot append to the flow-style `modules:` list of "
                   f"{flow}:1; rewrite it as a block list (`modules:`, then `  - name: …` "
                   f"lines) or add the entry by hand\n")
    from hubensemble.catalogue_writer import append_catalogue, catalogue_names

    for path, line in ((own_line, 2), (whole, 1)):
        with pytest.raises(CatalogueError, match=f"flow-style `modules:` list of {path}:{line};"):
            catalogue_names(path)
    assert {p: p.read_text() for p in texts} == texts
    # Entries written as flow mappings in a block list take block entries after them.
    mixed = write(tmp_path, "modules:\n  - {name: a, handle: ./m}\n", name="mixed.yaml")
    append_catalogue(mixed, [ModuleSpec("b", TFHUB)])
    assert [s.name for s in load_catalogue(mixed)] == ["a", "b"]


@pytest.mark.parametrize("start", ["# my list\nmodules: []  # fill me\nextra_comment: 1\n",
                                   "# my list\nmodules:  # fill me\nextra_comment: 1\n",
                                   "# my list\nmodules: ~\nextra_comment: 1\n",
                                   "# my list\ndefaults: {}\nextra_comment: 1\n"])
def test_catalogue_add_checks_a_file_with_no_entries_yet_before_tensorflow(tmp_path, start):
    """A new-user check: a --to file whose `modules:` list was empty ([], nothing) was not
    checked before the module loaded (6 s), then refused naming a line of the would-be
    text: `empty.yaml:8: field 'extra_comment'` for a 3-line file, where `catalogue
    validate` says :3. A file with entries was checked first, at its own lines."""
    (tmp_path / "m").mkdir()
    path = write(tmp_path, start, name="empty.yaml")
    code, err, tensorflow = main_in_a_new_process(
        "catalogue", "add", tmp_path / "m", "--to", path)
    assert (code, tensorflow) == (2, False), err
    assert err == (f"hubensemble: error: {path}:3: field 'extra_comment': unknown top-level "
                   f"key; write one of defaults, modules instead\n")
    assert path.read_text() == start


def test_catalogue_add_warns_of_an_unpinned_entry_with_the_same_handle(tmp_path, caplog):
    """A new-user check: only entries with a sha256 were compared, so a module the file
    lists without a pin (`handle: ./m`, relative to the file) was appended again silently."""
    from hubensemble.catalogue_writer import append_catalogue

    path = write(tmp_path / "cat", "modules:\n  - name: g0\n    handle: ./m\n"
                                   "  - name: k\n    handle: keras:ResNet50\n")
    module = str(tmp_path / "cat" / "m")
    with caplog.at_level("WARNING", logger="hubensemble.catalogue_writer"):
        append_catalogue(path, [ModuleSpec("again", module, sha256="a" * 64),
                                ModuleSpec("other", str(tmp_path / "m")),  # another folder
                                ModuleSpec("k2", "keras:ResNet50", weights="w.weights.h5"),
                                ModuleSpec("k3", "keras:ResNet50")])
    warned = [r.getMessage() for r in caplog.records]
    # In `catalogue validate`'s words (samemodule.same_module_note): they were worded apart; and
    # at the new entry's FILE:LINE, as validate names it (the warning named the file alone).
    lines = open(path).read().splitlines()
    at = {n: f"{path}:{lines.index(f'  - name: {n}') + 1}" for n in ("again", "k3")}
    assert warned == [f"{at['again']}: entry 'again' loads the same module as entry 'g0' "
                      f"({path}:2), read the same way (the same handle {module}): ranked once, "
                      "as 'g0'; its sha256 aaaaaaaaaaaa… is never checked: "
                      "'g0', which rank loads, has none; leave one of them out of the "
                      "catalogue",
                      f"{at['k3']}: entry 'k3' loads the same module as entry 'k' ({path}:4), read "
                      "the same way (the same handle keras:ResNet50): ranked once, as 'k'; leave "
                      "one of them out of the catalogue"]


def test_catalogue_add_says_what_to_pass_in_the_callers_words(tmp_path, in_process, monkeypatch):
    """A refused handle of `catalogue add` said a catalogue's words on the command line:
    "write handle: mods/tiny instead", "(e.g. handle: keras:ResNet50V2) and this file as
    `weights:`" (a new user's check); each caller is told its own form."""
    from hubensemble.catalogue_writer import check_new_entries
    monkeypatch.chdir(tmp_path)
    code, _, err = in_process("catalogue", "add", "mods/tiny ", "--to", "my.yaml")
    assert code == 2 and "'mods/tiny ' has leading or trailing spaces; run `hubensemble " \
        "catalogue add --to my.yaml mods/tiny` instead\n" in err, err
    code, _, err = in_process("catalogue", "add", "w.weights.h5", "--to", "my.yaml")
    assert code == 2 and "pass the architecture as the HANDLE (e.g. keras:ResNet50V2) and " \
        "this file as --weights, or" in err, err
    url = "https://tfhub.dev/google/m/1?tf-hub-format=compressed"
    code, _, err = in_process("catalogue", "add", url, "--to", "my.yaml")
    assert code == 2 and "run `hubensemble catalogue add --to my.yaml " \
        "https://tfhub.dev/google/m/1` instead" in err, err
    assert "handle:" not in err and not (tmp_path / "my.yaml").exists()
    with pytest.raises(CatalogueError, match=r"spaces; pass 'mods/tiny' instead$"):
        check_new_entries(["mods/tiny "])
    # A catalogue is told the value in YAML's quotes (text.value_to_write, a quote doubled),
    # each caller the value itself in its own quoting.
    with pytest.raises(CatalogueError, match=r"spaces; pass \"m/it's\" instead$"):
        check_new_entries(["m/it's "])
    (tmp_path / "spaced.yaml").write_text("modules:\n  - {name: a, handle: 'm/it''s '}\n")
    with pytest.raises(CatalogueError, match=r"spaces; write handle: 'm/it''s' instead"):
        load_catalogue(tmp_path / "spaced.yaml")
    with pytest.raises(CatalogueError, match=r"\(e.g. 'keras:ResNet50V2'\) and this file as "
                                             r"weights=, or"):
        check_new_entries(["w.weights.h5"])
    # A refused --weights, --layer, … was "field 'weights': …", "remove layer: from this
    # entry", a catalogue's words: the flag on the command line (argparse's
    # "argument --weights:"), the keyword from Python.
    code, _, err = in_process("catalogue", "add", "keras:VGG16", "--weights", "w.txt",
                              "--to", "my.yaml")
    assert code == 2 and f"cannot add 'keras:VGG16': argument --weights: " \
        f"'{tmp_path / 'w.txt'}' is not a Keras weights file (.h5, .weights.h5 or .keras); " \
        "pass --weights imagenet or the path" in err, err
    code, _, err = in_process("catalogue", "add", "keras:VGG16", "--layer", "pool",
                              "--to", "my.yaml")
    assert code == 2 and "cannot add 'keras:VGG16': argument --layer: only .keras and .h5 " \
        "model files take layer; leave --layer out\n" in err, err
    assert "field '" not in err and not (tmp_path / "my.yaml").exists()
    with pytest.raises(CatalogueError, match=r"^cannot add 'keras:VGG16': keyword output_key: "
                                             r"must be a string or None, got int 3; pass "
                                             r"output_key='3' or e.g. output_key='default' "
                                             r"instead$"):
        check_new_entries(["keras:VGG16"], output_key=3)
    with pytest.raises(CatalogueError, match=r"keyword signature: only SavedModels take "
                                             r"signature; leave signature out$"):
        check_new_entries(["keras:VGG16"], signature="serve")
    code, _, err = in_process("catalogue", "add", "keras:VGG16", "--name", "bad name",
                              "--to", "my.yaml")
    assert code == 2 and "cannot add 'keras:VGG16': argument --name: 'bad name' may only " \
        "contain letters" in err and "; pass --name bad-name instead\n" in err, err
    with pytest.raises(CatalogueError, match=r"keyword name: must be a string, got int 3; "
                                             r"pass name='3' instead$"):
        check_new_entries(["keras:VGG16"], name=3)


def test_an_empty_weights_or_to_is_refused_as_empty_not_as_the_working_folder(
        tmp_path, monkeypatch):
    """`weights: ""` (a catalogue, or `catalogue add`'s weights= from Python) was made the
    catalogue's folder or the working folder and refused as "'/work/…' is not a Keras
    weights file", a path the user never wrote; an empty --to (path=) was taken,
    to fail after the modules had loaded. Each is refused as empty, saying what to pass."""
    from hubensemble.catalogue_writer import check_add, check_new_entries
    monkeypatch.chdir(tmp_path)
    for value in ("''", "' '"):
        path = write(tmp_path, f"""
            modules:
              - name: a
                handle: keras:VGG16
                weights: {value}
            """)
        (problem,) = problems_of(path)
        assert problem.startswith(f"{path}:4: field 'weights': must be a non-empty string, "
                                  f"got {value}; write weights: imagenet or weights: "), problem
        assert str(tmp_path) not in problem.split(":4:")[1], problem
    for value in ("", "  "):
        with pytest.raises(CatalogueError) as e:
            check_new_entries(["keras:VGG16"], weights=value)
        assert f"must be a non-empty string, got {value!r}; pass weights='imagenet'" in \
            str(e.value) and str(tmp_path) not in str(e.value), e.value
    with pytest.raises(CatalogueError, match=r"^path= is empty \(''\); pass the catalogue "
                                             r"file to append to, e.g. path='my.yaml'$"):
        check_add("", ["keras:VGG16"])
    # describe_module's weights= (the same join, in handles.stored_weights): refused as
    # empty before anything loads, not as a weights file '' that does not exist.
    from hubensemble.errors import HubensembleError
    from hubensemble.hub.introspect import describe_module
    with pytest.raises(HubensembleError, match=r"^\[keras weights\] handle 'keras:VGG16': '' "
                                               r"is not imagenet or a file; write weights: "):
        describe_module("keras:VGG16", weights="")


def test_catalogue_add_names_the_file_absolute_as_validate_does(
        tmp_path, in_process, monkeypatch, caplog):
    """A new-user check: `catalogue add --to my.yaml` named the file as typed ("my.yaml:2"),
    `catalogue validate` absolute: one way for both, validate's, which holds from any folder."""
    from hubensemble.catalogue_writer import append_catalogue

    (tmp_path / "m").mkdir()
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "my.yaml"
    for text, said in (
            ("modules:\n  - {name: a, handle: ./m, famly: expert}\n",
             f"{mine}:2: field 'famly'"),
            ("modules:\n  - {name: g0, handle: ./m}\n",
             f"{mine}: --name 'g0' is already used by the entry at {mine}:2;"),
            # by its `name:` line, as validate names a name's clash (the entry's was named)
            ("modules:\n  - handle: ./m\n    name: g0\n",
             f"{mine}: --name 'g0' is already used by the entry at {mine}:3;"),
            ("modules: [{name: a, handle: ./m}]\n",
             f"cannot append to the flow-style `modules:` list of {mine}:1;"),
            ("modules: []\nextra: 1\n", f"{mine}:2: field 'extra'")):
        mine.write_text(text)
        code, _, err = in_process("catalogue", "add", "./m", "--name", "g0", "--to", "my.yaml")
        assert code == 2 and f"error: {said}" in err, err
        if "famly" in text:  # validate's own words for the same file
            assert f"{said}" in in_process("catalogue", "validate", "my.yaml")[2]
    # One --name for two handles: the command line was told "--name (name=) names a single
    # HANDLE", a keyword it never typed; each caller is told its own word.
    code, _, err = in_process("catalogue", "add", "./m", "./m", "--name", "g1", "--to", "my.yaml")
    assert code == 2 and "error: --name names a single HANDLE; add the others in another " \
        "call, or leave --name out for names made from the handles\n" in err, err
    from hubensemble.catalogue_writer import check_new_entries
    with pytest.raises(CatalogueError, match=r"^name= names a single HANDLE; .* leave name= "):
        check_new_entries(["./m", "./m"], name="g1")
    mine.write_text("modules:\n  - {name: a, handle: ./m}\n")
    caplog.clear()  # the errors above, logged by the command line
    with caplog.at_level("WARNING", logger="hubensemble.catalogue_writer"):
        append_catalogue("my.yaml", [ModuleSpec("b", str(tmp_path / "m"))])
    assert [r.getMessage().split(": entry", 1)[0] for r in caplog.records] == [f"{mine}:3"]
    assert f"({mine}:2)" in caplog.records[0].getMessage()


def test_catalogue_add_loads_every_handle_and_counts_those_that_failed(
        tmp_path, tiny_module, module_factory, in_process, monkeypatch):
    """A new-user check: the first handle that failed to load stopped `catalogue add`, the
    modules loaded before it were not written and the others never tried, without a word."""
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    other = module_factory("gen_a", seed=1)  # test_tune's, built once per session
    target = tmp_path / "c.yaml"
    code, out, err = in_process("catalogue", "add", tiny_module, broken, other, "--to", target)
    assert code == 1, err
    assert [(s.name, s.handle) for s in load_catalogue(target)] == [
        ("tiny", tiny_module), ("gen_a", other)]
    assert out.startswith(f"{target}: added 2 of 3 modules; 1 failed: '{broken}'\n"
                          f"  - name: tiny\n"), out
    assert err.count(f"cannot add '{broken}': [savedmodel] ") == 1, err
    # None loads: nothing is written (no file made), and each says why.
    # (--to named relative is printed absolute: "n.yaml: added …" said where from here only)
    # (Two broken folders: one handle given twice is refused before TensorFlow.)
    monkeypatch.chdir(tmp_path)
    twin = tmp_path / "broken2"
    twin.mkdir()
    (twin / "saved_model.pb").write_bytes(b"not a SavedModel")
    code, out, err = in_process("catalogue", "add", broken, twin, "--to", "n.yaml")
    assert code == 1 and not (tmp_path / "n.yaml").exists()
    assert out == f"{tmp_path / 'n.yaml'}: added 0 of 2 modules; 2 failed: '{broken}', " \
                  f"'{twin}'\n"
    assert err.count(f"cannot add '{broken}': [savedmodel] ") == 1, err
    assert err.count(f"cannot add '{twin}': [savedmodel] ") == 1, err


def test_catalogue_add_refuses_a_module_whose_probe_gives_nan_naming_it(tmp_path, in_process):
    """A module whose output on a white image is NaN (log(1 - mean) * 0 + mean: finite for any
    other image) was added as if fine, with its output_dim; rank then failed it (NaN
    embeddings, stage output). The probe batch is black, white and noise
    (`outputs.probe_images`)."""
    import numpy as np
    import tensorflow as tf

    root = tf.train.Checkpoint()
    root.k = tf.Variable(tf.ones([3, 4]))

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def call(x):
        mean = tf.reduce_mean(x, axis=[1, 2])
        return tf.matmul(tf.math.log(1.0 - mean) * 0.0 + mean, root.k)

    root.__call__, root.variables, root.trainable_variables = call, [root.k], [root.k]
    module = tmp_path / "whitenan"
    tf.saved_model.save(root, str(module))
    white = tf.saved_model.load(str(module))(tf.ones([1, 8, 8, 3])).numpy()
    assert np.isnan(white).all()  # the module itself, called without hubensemble
    target = tmp_path / "c.yaml"
    target.write_text("modules: []\n")
    code, out, err = in_process("catalogue", "add", module, "--to", target)
    assert code == 1 and target.read_text() == "modules: []\n", out
    assert f"cannot add '{module}': [output] module 'whitenan', handle '{module}': its output " \
           "holds NaN on the white image (every pixel 1) (4 of 4 values) of catalogue add's " \
           "probe batch; rank refuses" in err, err
    assert "black" not in err and "noise" not in err


def alias_bomb(levels):
    """YAML anchors &a0 … nesting `levels` lists of 9 (9**levels strings once expanded)."""
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_values_echoed_in_problems_are_cut_short(tmp_path):
    """A new-user check: an alias bomb (nested &a/*a anchors) in `tags:` made `catalogue
    validate` print 25 MB (7 levels; 9 would take gigabytes); every field's check echoed its
    value whole, and a long string whole too."""
    fields = [f for f in FIELD_NAMES if f not in ("name", "handle")]
    entries = "".join(f"  - name: m{i}\n    handle: ./m\n    {f}: *a5\n"
                      for i, f in enumerate(fields))
    long = "x" * 5000
    entries += ("  - name: *a5\n    handle: ./m\n  - name: h\n    handle: *a5\n"
                f"  - {{*a5 : 1, name: k, handle: ./m}}\n  - *a5\n"
                f"  - name: s\n    handle: '{long}:x'\n    tags: {long}\n"
                f"    family: {long}\n    {'k' * 1000}: 1\n")
    path = write(tmp_path, alias_bomb(6) + "modules:\n" + entries)
    lines = [line for line in problems_of(path) if "top-level key" not in line]
    assert len(lines) == len(fields) + 8, "\n".join(lines)
    for line in lines:  # at most 80 characters of a value, in the problem and in its hint
        assert len(line) < 1000 and line.count("[") < 40, line[:1000]
        assert "x" * 80 not in line and "k" * 80 not in line, line
    find_problem(lines, f"{path}:{line_of(path, 'tags: *a5')}: field 'tags': [[[[...], [...],")
    from hubensemble.catalogue import SHOWN_CHARS, shown

    assert len(shown(long)) == len(shown(long, text=True)) == SHOWN_CHARS
    assert shown("abc") == "'abc'" and shown("abc", text=True) == "abc"


def test_validate_warns_of_entries_that_load_the_same_module_naming_both(tmp_path, in_process):
    # The same module under two handle spellings or two paths was embedded and tuned twice
    # without a word.
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "saved_model.pb").write_bytes(b"")
    os.symlink(tmp_path / "m", tmp_path / "link")
    path = write(tmp_path, "modules:\n"
                           "  - {name: a, handle: 'kaggle:o/m/tensorFlow2/v/1'}\n"
                           "  - {name: b, handle: 'https://www.kaggle.com/models/o/m/"
                           "tensorFlow2/v/1'}\n"
                           "  - {name: c, handle: ./m}\n"
                           "  - {name: d, handle: ./link}\n"
                           "  - {name: e, handle: ./m, value_range: [-1, 1]}\n")  # read otherwise
    other = write(tmp_path, "modules:\n  - name: f\n    handle: https://www.kaggle.com/models/o/"
                            "m/frameworks/tensorFlow2/variations/v/versions/1\n", name="b.yaml")
    code, out, err = in_process("catalogue", "validate", path, other)
    assert code == 1, err  # rank would skip m: its saved_model.pb is empty
    said = [line for line in err.splitlines() if "loads the same module" in line]
    kaggle = "https://www.kaggle.com/models/o/m/tensorflow2/v/1"  # the framework's one spelling
    assert said == [
        f"warning: {path}:3: entry 'b' loads the same module as entry 'a' ({path}:2), read the "
        f"same way (the same handle {kaggle}): ranked once, as 'a'; leave one of them out of "
        "the catalogue",
        f"warning: {path}:5: entry 'd' loads the same module as entry 'c' ({path}:4), read the "
        f"same way (the same handle {os.path.realpath(tmp_path / 'm')}): ranked once, as 'c'; "
        "leave one of them out of the catalogue",
        f"warning: {other}:2: entry 'f' loads the same module as entry 'a' ({path}:2), read "
        f"the same way (the same handle {kaggle}): ranked once, as 'a'; "
        "leave one of them out of the catalogue"], err


def test_a_catalogue_arguments_example_is_a_users_file_not_the_repositorys():
    """fit(catalogue=5) was told "e.g. catalogue='catalogue/demo.yaml'", a path of the
    repository, missing wherever it is pasted outside a checkout (README's example did the
    same: test_readme). The examples name a file of the user's and the shipped catalogue."""
    import pytest

    import hubensemble
    from hubensemble.catalogue import load_catalogue, load_catalogues
    from hubensemble.stageargs import catalogue_specs

    for call in (lambda: catalogue_specs(5), lambda: load_catalogue(None),
                 lambda: load_catalogues(5), lambda: load_catalogues([None])):
        with pytest.raises(TypeError) as e:
            call()
        assert "catalogue/" not in str(e.value) and "'my_modules.yaml'" in str(e.value), e.value
    with pytest.raises(TypeError, match=r"hubensemble\.shipped_catalogue\('demo.yaml'\)"):
        catalogue_specs(5)
    assert hubensemble.shipped_catalogue("demo.yaml").is_file()
    with pytest.raises(CatalogueError) as e:  # was told to reinstall hubensemble
        hubensemble.shipped_catalogue("demo")
    assert "reinstall" not in str(e.value) and "'demo.yaml'" in str(e.value), e.value


def test_a_catalogue_saved_by_windows_tools_is_read_or_refused_at_its_line(tmp_path):
    """A new-user check of catalogues saved on Windows: PowerShell 5's `>` and Notepad's
    "Unicode" write UTF-16 with a byte-order mark, which was refused as "'utf-8' codec can't
    decode byte 0xff in position 0"; a Windows-1252 'ö' was "… byte 0xf6 in position 174",
    no line, no fix. YAML reads UTF-8 (with or without a mark), UTF-16 and UTF-32 with
    theirs (YAML 1.2, 5.2): those are read as the UTF-8 file is, CR LF too; a legacy encoding
    is refused naming the line, the column, what Windows-1252 reads there and the fix, and
    UTF-16 without its mark by its NUL bytes."""
    text = ("# Größe “x”\nmodules:\n  - name: a\n    handle: ./m\n"
            "    license: Apache-2.0  # Lizenz ö\n")
    want = load_catalogue(write(tmp_path, text))
    for name, encoding, newline in (("bom.yaml", "utf-8-sig", "\r\n"),
                                    ("crlf.yaml", "utf-8", "\r\n"),
                                    ("powershell.yaml", "utf-16", "\r\n"),
                                    ("utf32.yaml", "utf-32", "\n")):
        path = tmp_path / name
        path.write_bytes(text.replace("\n", newline).encode(encoding))
        got = load_catalogue(path)
        assert [dataclasses.replace(s, source="") for s in got] == [
            dataclasses.replace(s, source="") for s in want], name
        assert got[0].source == f"{path}:3", got[0].source  # its own lines
    legacy = tmp_path / "legacy.yaml"
    legacy.write_bytes(text.encode("cp1252"))
    with pytest.raises(CatalogueError) as e:
        load_catalogue(legacy)
    assert str(e.value) == (
        f"{legacy}:1: column 5: byte 0xf6 is not UTF-8 (in Windows-1252, 'ö', LATIN SMALL "
        "LETTER O WITH DIAERESIS: the file was saved in a legacy encoding); save the file as "
        "UTF-8 (an editor's 'Save as', encoding UTF-8)")
    bare = tmp_path / "bare.yaml"
    bare.write_bytes(text.encode("utf-16-le"))
    with pytest.raises(CatalogueError, match=f"^{bare}: holds NUL bytes: UTF-16 or UTF-32 saved "
                       "without its byte-order mark, or not text; save it as UTF-8$"):
        load_catalogue(bare)
    # A stray NUL in UTF-8 text (a copy, an editor's slip) was said as UTF-16 without its
    # mark, with no line: it is named where it is.
    stray = tmp_path / "stray.yaml"
    stray.write_bytes(b"modules:\n  - name: a\x00\n    handle: ./m\n")
    with pytest.raises(CatalogueError, match=f"^{stray}:2: column 12: a NUL byte \\(0x00\\), "
                       r"which is not text \(1 in the file\); remove it$"):
        load_catalogue(stray)


def test_a_presets_json_is_read_as_utf8_under_the_c_locale(tmp_path):
    """hub/introspect read image_converter.json in the locale's encoding: under the C locale
    (ASCII, as LC_ALL=C PYTHONUTF8=0 gives) a Keras preset whose JSON held a non-ASCII name
    lost its image size. The kind: test_fileio's
    test_every_text_file_is_read_and_written_with_its_encoding_named."""
    import json
    import locale

    from hubensemble.hub.introspect import _preset_image_size

    (tmp_path / "image_converter.json").write_text(json.dumps(
        {"config": {"name": "Bildgröße", "image_size": [96, 80]}}, ensure_ascii=False),
        encoding="utf-8")
    before = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        assert _preset_image_size(str(tmp_path)) == (96, 80)
    finally:
        locale.setlocale(locale.LC_CTYPE, before)


def test_validate_warns_of_a_classification_handle_naming_its_feature_vector(
        tmp_path, in_process):
    # A TF Hub *classification* module (class logits) was catalogued, ranked and tuned as if
    # it were a feature vector, without a word; TF Hub publishes the feature_vector twin.
    path = write(tmp_path, "modules:\n"
                           "  - {name: a, handle: 'https://tfhub.dev/google/imagenet/"
                           "mobilenet_v2_100_224/classification/5'}\n"
                           "  - name: b\n"  # the warning names the handle's line
                           "    handle: 'kaggle:google/mobilenet-v2/tensorFlow2/"
                           "100-224-classification/2'\n"
                           "  - {name: c, handle: 'https://tfhub.dev/google/imagenet/"
                           "mobilenet_v2_100_224/feature_vector/5'}\n")
    code, out, err = in_process("catalogue", "validate", path)
    assert code == 0, err
    said = [line for line in err.splitlines() if "classification module" in line]
    assert said == [
        f"warning: {path}:2: handle 'https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/"
        "classification/5' names a classification module: it returns class logits, not "
        "features; for transfer, catalogue its feature_vector variant (https://tfhub.dev/google/"
        "imagenet/mobilenet_v2_100_224/feature_vector/5)",
        f"warning: {path}:4: handle 'kaggle:google/mobilenet-v2/tensorFlow2/100-224-"
        "classification/2' names a classification module: it returns class logits, not "
        "features; for transfer, catalogue its feature-vector variation (https://www.kaggle.com/"
        "models/google/mobilenet-v2/tensorFlow2/100-224-feature-vector/2)"], err


def test_validate_reports_every_problem_of_an_entry_with_others_in_one_round(tmp_path):
    """An entry with a bad `family` and a bad zoo: handle showed the zoo handle's error only
    once the family was fixed (the zoo, fixed-size and local-handle checks took the entries
    that parsed): a broken catalogue is now reported whole, every problem by its file:line
    (`catalogue.parse_catalogue_text`'s `partial`)."""
    import zipfile

    from hubensemble.zoo.config import validate_catalogues

    layers = [{"class_name": "InputLayer", "config": {"batch_shape": [None, 96, 80, 3]}}]
    with zipfile.ZipFile(tmp_path / "fixed.keras", "w") as z:
        z.writestr("config.json", json.dumps({"class_name": "Functional",
                                              "config": {"layers": layers}}))
    path = write(tmp_path, """
        defaults:
          family: expert
        modules:
          - name: a
            handle: zoo:dmeo/r8x2-generalist-0
            family: specialist
          - {name: b, handle: ./nowhere, famly: expert}
          - {name: c, handle: ./fixed.keras, tags: 3}
          - {name: d, handle: ./fixed.keras, input_size: [3]}
          - {name: e, handle: zoo:demo/r8x2-generalst-0, family: 5}
        """)
    said = []
    assert not validate_catalogues([path], lambda line, ok: said.append((ok, line)))
    # a's zoo: handle by its `handle:` line (5), as a ModuleSpec's: the entry's (4) was named.
    assert [(ok, line.removeprefix("warning: ").split(": ")[0].rsplit(":", 1)[1])
            for ok, line in said] == [
        (False, "5"), (False, "6"), (False, "7"), (None, "7"), (False, "8"), (False, "8"),
        (False, "9"), (False, "10"), (False, "10")], said
    words = "\n".join(line for _, line in said)
    for text in ("module 'a': 'zoo:dmeo/r8x2-generalist-0' names no zoo preset",
                 "unknown family 'specialist'",
                 f"handle './nowhere' ({tmp_path / 'nowhere'}, {REL})",
                 "unknown field; write 'family' instead", "field 'tags'",
                 "field 'input_size': missing: the model's input takes only [96, 80]",
                 "field 'input_size': [3] is not a pair",
                 "module 'e': the demo zoo has no module 'r8x2-generalst-0'", "field 'family'"):
        assert text in words, (text, words)
    assert words.count("missing: the model's input") == 1, words  # not d's: it wrote one


def write_preset(folder, weights=None, shards=None):
    """A keras-hub preset folder as keras-hub lays one out (its JSON files and either
    `weights`, model.weights.h5's bytes, or `shards`, {shard name: its bytes or None for
    one the index names that is not there}), tiny; returns its path."""
    folder.mkdir()
    for name in ("config.json", "metadata.json"):
        (folder / name).write_text("{}")
    hdf5 = b"\x89HDF\r\n\x1a\n" + bytes(8)
    if weights is not None:
        (folder / "model.weights.h5").write_bytes(weights or hdf5)
    if shards is not None:
        (folder / "model.weights.json").write_text(json.dumps({"weight_map": {
            f"layer_{i}/vars/0": name for i, name in enumerate(shards)}}))
        for name, data in shards.items():
            if data is not None:
                (folder / name).write_bytes(data or hdf5)
    return folder


def test_validate_checks_a_local_presets_files_as_rank_loads_them(tmp_path):
    """catalogue validate looked at a local keras-hub preset's listing only (config.json and
    metadata.json): a sharded preset missing a shard its index names, or a weights file that
    is a web page, passed, and rank failed it. It now says it on the entry's line, in the
    words of the check rank's `hub.locate` makes (`modulefiles.preset_files_problem`)."""
    from hubensemble.zoo.config import validate_catalogues

    write_preset(tmp_path / "whole", shards={"model_00000.weights.h5": b"",
                                             "model_00001.weights.h5": b""})
    write_preset(tmp_path / "lost", shards={"model_00000.weights.h5": b"",
                                            "model_00001.weights.h5": None})
    write_preset(tmp_path / "page", weights=b"<!DOCTYPE html><html>sign in</html>")
    write_preset(tmp_path / "index", shards={})
    path = write(tmp_path, """
        modules:
          - name: whole
            handle: ./whole
          - name: lost
            handle: ./lost
          - name: page
            handle: ./page
          - name: index
            handle: ./index
        """)
    said = []
    assert validate_catalogues([path], lambda line, ok: said.append((ok, line)))
    assert said == [
        (None, f"warning: {path}:{line_of(path, 'handle: ./lost')}: handle "
               f"'{tmp_path / 'lost'}' is a keras-hub preset that "
               f"cannot be loaded: model_00001.weights.h5, a shard model.weights.json names, is "
               f"missing; rank will skip it"),
        (None, f"warning: {path}:{line_of(path, 'handle: ./page')}: handle "
               f"'{tmp_path / 'page'}' is a keras-hub preset that "
               f"cannot be loaded: model.weights.h5 is not an HDF5 file: it holds text (it "
               f"starts with '<!DOCTYPE html><html>sign in</html>'), such as a web page or an "
               f"error message a server sent; rank will skip it"),
        (None, f"warning: {path}:{line_of(path, 'handle: ./index')}: handle "
               f"'{tmp_path / 'index'}' is a keras-hub preset that "
               f"cannot be loaded: model.weights.json is not Keras' index of weight shards (a "
               f"JSON object with a \"weight_map\"): it holds text (it starts with "
               f"'{{\"weight_map\": {{}}}}'), such as a web page or an error message a server "
               f"sent; rank will skip it"),
        (True, f"{path}: valid; rank would skip 3 here (4 modules, 3 warnings)")], said


def test_validate_sees_a_keras_files_own_classes_and_a_variables_shard_cut_short(tmp_path):
    """catalogue validate said ok for a .keras file of a class of the user's own (a layer
    registered with register_keras_serializable, a subclassed model), which rank cannot load
    without that code, and for a SavedModel whose variables shard lost its end (its size is
    in variables.index), which rank refuses: both now warn on the handle's line, read
    without TensorFlow (config.json; the index's table)."""
    import keras
    import tensorflow as tf

    from hubensemble.zoo.config import validate_catalogues

    @keras.saving.register_keras_serializable(package="validate_test")
    class Twice(keras.layers.Layer):
        def call(self, x):
            return 2 * x

    inp = keras.Input((8, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(Twice()(keras.layers.Conv2D(4, 3)(inp)))
    keras.Model(inp, pooled).save(tmp_path / "own.keras")
    keras.Model(inp, keras.layers.GlobalAveragePooling2D()(inp)).save(tmp_path / "plain.keras")
    root = tf.train.Checkpoint()
    root.vs = [tf.Variable(tf.ones([100, 25]), name=f"v{i}") for i in range(4)]
    tf.saved_model.save(root, str(tmp_path / "cut"), options=tf.saved_model.SaveOptions(
        experimental_sharding_callback=tf.train.experimental.MaxShardSizePolicy(
            max_shard_size=10000)))
    folder = tmp_path / "cut" / "variables"
    shards = sorted(p for p in folder.iterdir() if p.name.startswith("variables.data-"))
    assert len(shards) == 5  # a 10,000-byte tensor per shard, and the save counter's
    whole = shards[2].stat().st_size
    with open(shards[2], "r+b") as f:
        f.truncate(whole - 100)
    path = write(tmp_path, """
        modules:
          - name: own
            handle: ./own.keras
            input_size: [8, 8]
          - name: plain
            handle: ./plain.keras
            input_size: [8, 8]
          - name: cut
            handle: ./cut
        """)
    said = []
    assert validate_catalogues([path], lambda line, ok: said.append((ok, line)))
    assert said == [
        (None, f"warning: {path}:{line_of(path, 'handle: ./own')}: handle "
               f"'{tmp_path / 'own.keras'}' is a Keras model that uses Python code of its own, "
               "not in the file (the class 'Twice'), which hubensemble cannot import; rank "
               "will skip it: save the model as a SavedModel where that code is importable, "
               "`model.export(DIR)` (set input_size on the entry if it was traced at a fixed "
               "size), and catalogue the folder, or rebuild it from Keras' own layers "
               "(functional or Sequential)"),
        (None, f"warning: {path}:{line_of(path, 'handle: ./cut')}: handle "
               f"'{tmp_path / 'cut'}' is a SavedModel copied in part: its variables file "
               f"variables/{shards[2].name} is cut short: {whole - 100:,} of the {whole:,} "
               "bytes variables/variables.index records (a SavedModel is the whole folder, "
               "saved_model.pb with its variables/: copy or download it whole again); rank "
               "will skip it"),
        (True, f"{path}: valid; rank would skip 2 here (3 modules, 2 warnings)")], said


def test_entries_of_one_module_with_different_sha256_say_which_pin_is_wrong(tmp_path, caplog):
    """The same local preset listed twice, once with a wrong sha256, was said as a duplicate
    only ('rank embeds and ranks it once, as 'a'; leave one of them out'): rank checks the
    earlier entry's pin alone, and the user was not told which pin is wrong. validate now says
    that the pins differ (both FILE:LINEs) and, for a local module of a few bytes to hash,
    the files' sha256 on the wrong entry's line; catalogue add and rank's duplicate reason
    (`samemodule.pins_note`) say it in the same words."""
    import hashlib
    import logging
    import types

    from hubensemble.catalogue_writer import append_catalogue
    from hubensemble.samemodule import duplicate_reason, same_module_note
    from hubensemble.zoo.config import validate_catalogues

    preset = write_preset(tmp_path / "p", weights=b"")
    right = hashlib.sha256((preset / "model.weights.h5").read_bytes()).hexdigest()
    wrong = "ab" * 32
    path = write(tmp_path, f"""
        modules:
          - name: a
            handle: ./p
            sha256: '{right}'
          - name: b
            handle: ./p
            sha256: '{wrong}'
        """)
    said = []
    assert validate_catalogues([path], lambda line, ok: said.append((ok, line)))
    assert said == [
        (None, f"warning: {path}:{line_of(path, wrong)}: sha256 abababababab… is not the "
               f"sha256 of the module's "
               f"files (model.weights.h5), {right}; rank will refuse the entry (stage "
               f"checksum): write sha256: '{right}' or leave this entry out"),
        (None, f"warning: {path}:5: entry 'b' loads the same module as entry 'a' ({path}:2), "
               f"read the same way (the same handle {preset}): rank embeds and ranks it once; "
               f"their sha256 differ (abababababab… here, {right[:12]}… at {path}:2): at most "
               f"one is the module's files; rank checks each and ranks the one they match (the "
               f"other fails, stage checksum); leave one of them out"),
        (True, f"{path}: valid; rank would skip 1 here (2 modules, 2 warnings)")], said
    # catalogue add's warning is validate's (`same_module_note`).
    spec = load_catalogue(path)[1]
    with caplog.at_level(logging.WARNING, logger="hubensemble.catalogue_writer"):
        append_catalogue(path, [dataclasses.replace(spec, name="c", source="")])
    assert f"their sha256 differ (abababababab… here, {right[:12]}… at {path}:2)" in caplog.text
    # rank's reason for the later entry: the earlier loaded, so its pin matched the files.
    a, b = (types.SimpleNamespace(name=n, source=f"{path}:{line}", sha256=pin,
                                  handle=str(preset))
            for n, line, pin in (("a", 2, right), ("b", 5, wrong)))
    assert duplicate_reason(a, "the same handle", later=b).endswith(
        f"ranked once, as 'a'; its sha256 abababababab… is not the module's: the files "
        f"matched the pin of 'a', {right[:12]}…; leave one of them out of the catalogue")
    # It read "the files matched 'a''s 474d…", a quote doubled (a new user's check).
    assert "''" not in duplicate_reason(a, "the same handle", later=b)
    assert "their sha256 differ" in duplicate_reason(a, "the same handle", "[checksum] …", b)
    assert duplicate_reason(a, "the same handle") == duplicate_reason(
        a, "the same handle", later=a)  # the same pin: nothing more
    # A remote module's pins are not both checked (a copy of other bytes than a pin is
    # fetched again): rank loads it as 'a', and the words say so.
    for entry in (a, b):
        entry.handle = "https://example.org/m.tar.gz"
    assert same_module_note(b, a, "the same handle").endswith(
        f"ranked once, as 'a'; their sha256 differ (abababababab… here, "
        f"{right[:12]}… at {path}:2): at most one is the module's files, and rank checks "
        f"'a''s only; leave one of them out of the catalogue")


def test_a_pin_copied_with_an_entry_to_another_handle_is_said_not_taken_for_a_duplicate(
        tmp_path):
    """An entry copied from another with its handle changed and the other's sha256 kept was
    paired with it by the pin (`samemodule.same_module_pairs`): validate said "loads the same
    module … (the same sha256 …)" and rank ranked it once, as the other ("duplicate"), never
    checking it. Which entry is wrong only the files tell: a local module's are hashed
    (`catalogue_pins`), so the copy is said at its sha256: line with its files' own hash and
    is not paired (rank checks its pin and refuses it, stage checksum); a true copy of the
    files, and a remote entry that cannot be hashed here, stay paired as before."""
    import hashlib
    import types

    from hubensemble.catalogue_pins import pin_disowned
    from hubensemble.samemodule import same_module_pairs
    from hubensemble.zoo.config import validate_catalogues

    # saved_model.pb of one empty meta graph, told apart by an unknown field (validate warns
    # of one that does not parse as a SavedModel)
    graph_a, graph_b = (b"\x12\x00\x1a\x07graph " + x for x in (b"a", b"b"))
    for name, graph in (("a", graph_a), ("b", graph_b), ("c", graph_a)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "saved_model.pb").write_bytes(graph)
    pin, own = (hashlib.sha256(g).hexdigest() for g in (graph_a, graph_b))
    path = write(tmp_path, f"""
        modules:
          - name: a
            handle: ./a
            sha256: '{pin}'
          - name: b
            handle: ./b
            sha256: '{pin}'
          - name: c
            handle: ./c
            sha256: '{pin}'
        """)
    a, b, c = load_catalogue(path)
    assert [(x.name, y.name) for x, y, _ in same_module_pairs(
        [a, b, c], disowned=pin_disowned)] == [("c", "a")]
    said = []
    assert validate_catalogues([path], lambda line, ok: said.append((ok, line)))
    copied = (f"warning: {path}:7: sha256 {pin[:12]}… is entry 'a''s pin ({path}:4), not the "
              f"sha256 of this module's files (saved_model.pb), {own}: an entry copied from 'a' "
              f"with another handle keeps its pin; rank will refuse the entry (stage checksum), "
              f"not rank it as 'a': write sha256: '{own}'")
    assert [line for _, line in said] == [
        f"warning: {path}:8: entry 'c' loads the same module as entry 'a' ({path}:2), read "
        f"the same way (the same sha256 {pin[:12]}…): ranked once, as 'a'; "
        f"leave one of them out of the catalogue", copied,
        f"{path}: ok (3 modules, 2 warnings)"], said
    # Across files: said with the set, once.
    mine = write(tmp_path, f"modules:\n  - {{name: b, handle: ./b, sha256: '{pin}'}}\n",
                 "mine.yaml")
    path.write_text(path.read_text().replace("  - name: b\n    handle: ./b\n", "  - name: d\n"
                                             "    handle: ./a\n    trust: true\n"))
    said = []
    assert validate_catalogues([path, mine], lambda line, ok: said.append((ok, line)))
    assert [line for _, line in said].count(copied.replace(f"{path}:7", f"{mine}:2")) == 1, said
    assert not any("entry 'b' loads the same module" in line for _, line in said), said
    assert not pin_disowned(a, c) and not pin_disowned(a, a) and pin_disowned(b, a)
    # A remote entry is not hashed here (a download). Its pin is of another kind of bytes
    # than a local SavedModel's (an archive, not a saved_model.pb): never one module, and
    # the pin is the local one's when its files hash to it. Of the same kind (a .keras file
    # here and at a URL), a pin the local files match stays one module; one they do not, not.
    (tmp_path / "k.keras").write_bytes(graph_a)
    (tmp_path / "k2.keras").write_bytes(graph_b)
    remote = write(tmp_path, f"""
        modules:
          - {{name: a, handle: ./a, sha256: '{pin}'}}
          - {{name: r, handle: 'https://example.org/m.tar.gz', sha256: '{pin}'}}
        """, "remote.yaml")
    said = []
    assert validate_catalogues([remote], lambda line, ok: said.append((ok, line)))
    assert [line for _, line in said] == [
        f"warning: {remote}:3: sha256 {pin[:12]}… is the sha256 of entry 'a''s files "
        f"(saved_model.pb, {remote}:2), not of an archive as this handle pins: an entry copied "
        f"from 'a' with another handle keeps its pin; rank will refuse the entry once "
        f"downloaded (stage checksum), not rank it as 'a': write the sha256 of an archive "
        f"this handle gives, or leave sha256 out", f"{remote}: ok (2 modules, 1 warning)"], said
    url = types.SimpleNamespace(name="u", handle="https://example.org/k.keras", sha256=pin)
    k = types.SimpleNamespace(name="k", handle=str(tmp_path / "k.keras"), sha256=pin)
    k2 = types.SimpleNamespace(name="k2", handle=str(tmp_path / "k2.keras"), sha256=pin)
    assert not pin_disowned(url, k) and pin_disowned(url, k2) and pin_disowned(k2, url)
    assert pin_disowned(url, a)  # a model file is no saved_model.pb


def test_validate_checks_a_repeated_names_entry_and_names_across_files_with_errors(tmp_path):
    """An entry whose name repeats an earlier one got only the duplicate-name line, its zoo:
    handle never checked (the entry was dropped), and a name repeated across files was not
    said when either file had an error (the set was checked of the valid files only): both
    came only once the rest was fixed. Now one round says them all."""
    from hubensemble.zoo.config import validate_catalogues

    a = write(tmp_path, """
        modules:
          - {name: one, handle: zoo:demo/r8x2-generalist-0}
          - {name: one, handle: zoo:demo/nosuch}
          - {name: two, handle: zoo:demo/r8x2-generalist-1}
        """, "a.yaml")
    b = write(tmp_path, """
        modules:
          - {name: two, handle: zoo:demo/r8x2-generalist-2, family: wrongfam}
        """, "b.yaml")
    c = write(tmp_path, """
        modules:
          - {name: two, handle: zoo:demo/r6x1-generalist-0}
          - {name: three, handle: zoo:demo/r6x1-expert-digits}
        """, "c.yaml")
    said = []
    assert not validate_catalogues([a, b, c, b], lambda line, ok: said.append((ok, line)))
    words = "\n".join(line for _, line in said)
    assert f"{a}:3: module 'one': the demo zoo has no module 'nosuch'" in words, words
    assert f"{a}:3: field 'name': 'one' is already used by the entry at {a}:2" in words, words
    for clash in (b, c):
        assert (False, f"{clash}:2: field 'name': 'two' is already defined at {a}:4; rename "
                       f"one of them or leave one catalogue out") in said, said
    assert words.count("already defined") == 2, words  # b given twice: compared once
    said = []  # two valid files' clash: the set's line, as before
    assert not validate_catalogues([c, write(tmp_path, """
        modules:
          - {name: three, handle: zoo:demo/r8x2-expert-digits}
        """, "d.yaml")], lambda line, ok: said.append((ok, line)))
    assert [line for ok, line in said if "already defined" in line and not ok][0].startswith(
        "the 2 catalogues together are not valid"), said
    # Each by its `name:` line, the clash's and the earlier's, where the field sits below the
    # entry's `- handle:` line (each entry's `- …` line was named): in a file, across files
    # with errors (`_names_across`) and across valid ones (`load_catalogues`).
    e = write(tmp_path, """
        modules:
          - handle: zoo:demo/r8x2-generalist-0
            name: four
        """, "e.yaml")
    f = write(tmp_path, """
        modules:
          - handle: zoo:demo/r8x2-generalist-1
            family: expert
            name: five
          - handle: zoo:demo/r8x2-generalist-2
            name: five
          - handle: zoo:demo/r6x1-generalist-0
            name: four
        """, "f.yaml")
    said = []
    assert not validate_catalogues([e, f], lambda line, ok: said.append((ok, line)))
    assert [line for ok, line in said if not ok] == [
        f"{f}:6: field 'name': 'five' is already used by the entry at {f}:4; write a name "
        f"that no other entry uses instead",
        f"{f}:8: field 'name': 'four' is already defined at {e}:3; rename one of them or "
        f"leave one catalogue out"], said
    f.write_text(f.read_text().replace("name: five\n  - handle: zoo:demo/r8x2-generalist-2\n"
                                       "    name: five\n", "name: five\n"))
    with pytest.raises(CatalogueError) as info:
        load_catalogues([e, f])
    assert info.value.problems == [f"{f}:6: field 'name': 'four' is already defined at {e}:3; "
                                   f"rename one of them or leave one catalogue out"]


def test_a_keras_file_of_one_fixed_size_without_input_size_is_a_validate_error(tmp_path):
    """A .keras/.h5 model whose Input is (None, 96, 96, 3), catalogued without input_size, was
    refused only at its first embedding, deep in rank (`catalogue_sizes.size_problem`). The
    files hold only the config.json that validate reads (no Keras needed)."""
    import zipfile

    from hubensemble.zoo.config import validate_catalogue

    def keras_file(name, shape):
        layers = [{"class_name": "InputLayer", "config": {"batch_shape": shape}},
                  {"class_name": "Conv2D", "config": {"name": "c"}}]
        with zipfile.ZipFile(tmp_path / name, "w") as z:
            z.writestr("config.json", json.dumps({"class_name": "Functional",
                                                  "config": {"layers": layers}}))

    keras_file("fixed.keras", [None, 96, 80, 3])
    keras_file("any.keras", [None, None, None, 3])
    keras_file("first.keras", [None, 3, 64, 48])  # channels-first: fed transposed, the same
    path = write(tmp_path, """
        modules:
          - {name: a, handle: ./fixed.keras}
          - {name: b, handle: ./fixed.keras, input_size: [96, 80]}
          - {name: c, handle: ./any.keras}
          - {name: d, handle: ./first.keras}
          - name: e
            family: other
            handle: ./fixed.keras
            input_size: null
          - name: f
            family: other
            handle: zoo:demo/nosuch
        """)
    # e's and f's problems name the line of the field (handlewarnings.field_source, dde1802's
    # rule), not the entry's `- name:` line.
    with pytest.raises(CatalogueError) as e:
        validate_catalogue(path)
    assert e.value.problems[-1].startswith(f"{path}:{line_of(path, 'zoo:demo/nosuch')}: "
                                           "module 'f': the demo zoo has no module 'nosuch'")
    assert e.value.problems[:-1] == [
        f"{path}:{line}: field 'input_size': missing: the model's input takes only {size} "
        f"images (its Input's shape in {file}), and an entry without input_size is embedded "
        f"at the task's resolution; write `input_size: {size}` in this entry (`catalogue add` "
        "writes it)"
        for line, size, file in ((2, [96, 80], "fixed.keras"), (5, [64, 48], "first.keras"),
                                 (line_of(path, "input_size: null"), [96, 80], "fixed.keras"))]


def test_a_warning_about_a_field_names_the_fields_line(tmp_path):
    """A warning about one field named the entry's `- name:` line, where a problem of the
    field names the field's own (a new user's check: "sha256 … is not the sha256" pointed
    at `- name:`); a handle or weights file missing here points at its `handle:` or
    `weights:` line."""
    from hubensemble.handlewarnings import field_source, local_handle_warnings

    path = write(tmp_path, """
        modules:
          - name: gone
            family: other
            handle: ./nowhere
          - name: r50
            family: other
            handle: keras:ResNet50V2
            weights: ./missing.weights.h5
        """)
    specs = load_catalogue(path)
    notes = local_handle_warnings(specs)
    assert [n.split(": ", 2)[1] for n in notes] == [
        f"{path}:{line_of(path, 'handle: ./nowhere')}",
        f"{path}:{line_of(path, 'weights: ./missing')}"], notes
    assert field_source(specs[0], "sha256") == specs[0].source  # not written: the entry's
    assert field_source(dataclasses.replace(specs[0], lines=None), "handle") == specs[0].source


# The merge type's own example (https://yaml.org/type/merge.html), verbatim: "All the
# following maps are equal".
MERGE_SPEC_EXAMPLE = """\
---
- &CENTER { x: 1, 'y': 2 }
- &LEFT { x: 0, 'y': 2 }
- &BIG { r: 10 }
- &SMALL { r: 1 }

# All the following maps are equal:

- # Explicit keys
  x: 1
  'y': 2
  r: 10
  label: center/big

- # Merge one map
  << : *CENTER
  r: 10
  label: center/big

- # Merge multiple maps
  << : [ *CENTER, *BIG ]
  label: center/big

- # Override
  << : [ *BIG, *LEFT, *SMALL ]
  x: 1
  label: center/big
"""


def test_merge_keys_follow_the_merge_types_examples_where_safe_load_does_not(tmp_path):
    """The catalogue reader merges by the spec (earlier mapping of `<<: [...]` wins; a merged
    mapping's own keys over what it merges). PyYAML 6.0's safe_load keeps the later
    mapping's value of a key longer than one character (and a nested anchor's merged value
    over its own for a one-character key): the spec's example with the catalogue's field
    names is where they part."""
    import yaml

    from hubensemble.catalogue import _Report
    from hubensemble.catalogue_yaml import pairs

    loader = yaml.SafeLoader(MERGE_SPEC_EXAMPLE)
    maps = [{key: loader.construct_object(node, deep=True)
             for key, _, node in pairs(loader, item, _Report("spec"), "entry")}
            for item in loader.get_single_node().value[4:]]
    assert maps == [{"x": 1, "y": 2, "r": 10, "label": "center/big"}] * 4
    # The same example as catalogue entries: x, y, r and label as fields.
    fields = {"x": "architecture", "'y'": "upstream", "r": "output_dim", "label": "subtree"}
    text = MERGE_SPEC_EXAMPLE.replace("---\n", "modules:\n")
    for key, field in fields.items():
        text = text.replace(f"{key}:", f"{field}:").replace(f" {key}: ", f" {field}: ")
    text = text.replace("x: 0", "architecture: 0").replace("x: 1", "architecture: 1")
    text = text.replace("architecture: 1", "architecture: '1'").replace(
        "architecture: 0", "architecture: '0'").replace("upstream: 2", "upstream: '2'")
    # Each item gets a name and a handle of its own (the anchors' flow maps too).
    lines, out, count = text.splitlines(), [], 0
    for line in lines:
        if line.startswith("- &"):
            anchor, _, body = line[2:].partition(" ")
            out.append(f"- {anchor} {{ name: a{count}, handle: '{TFHUB}', {body.strip()[1:]}")
            count += 1
        elif line.startswith("- #"):
            out += [line, f"  name: e{count}", f"  handle: '{TFHUB}'"]
            count += 1
        else:
            out.append(line)
    path = write(tmp_path, "\n".join(out) + "\n")
    specs = load_catalogue(path)
    got = [(s.architecture, s.upstream, s.output_dim, s.subtree) for s in specs[4:]]
    assert got == [("1", "2", 10, "center/big")] * 4
    # (PyYAML 6.0.4's safe_load reads the override's output_dim as 1, SMALL's: the reference
    # above is the spec's statement, not safe_load.)

    # A mapping that merges and overrides, merged in turn: its own value.
    nested = write(tmp_path, f"""
        modules:
          - &a {{name: a, handle: '{TFHUB}', family: expert, subtree: from-a}}
          - &d {{<<: *a, name: d, subtree: from-d}}
          - <<: [*d, *a]
            name: x
        """, "nested.yaml")
    assert [s.subtree for s in load_catalogue(nested)] == ["from-a", "from-d", "from-d"]


def test_a_second_merge_key_in_one_mapping_is_refused_at_its_line(tmp_path):
    """Two `<<` keys in one entry (a repeated key, which YAML forbids) were read silently,
    the first winning; said now, with the one-key form to write. Fails before: no problem."""
    path = write(tmp_path, f"""
        modules:
          - &a {{name: a, handle: '{TFHUB}', subtree: from-a}}
          - &b {{name: b, handle: '{TFHUB}', subtree: from-b}}
          - name: c
            <<: *a
            <<: *b
        """)
    assert problems_of(path) == [
        f"{path}:6: the merge key `<<` is given twice in this entry mapping (also at line 5); "
        "write one `<<: [*FIRST, *SECOND]` instead (the first mapping that has a field gives "
        "it)"]


def test_an_entry_written_as_an_alias_is_refused_at_the_aliass_line(tmp_path):
    """`- *NAME` as an entry was refused at the anchor's line (PyYAML's composer hands over
    the anchored node and drops the alias's mark), where nothing is wrong; an alias of
    `defaults:` was read as an entry and refused as one without a name, at the defaults'
    line. Both name the alias's line now, in block and flow lists. Fails before: the lines."""
    block = write(tmp_path, f"""
        defaults: &d
          family: expert
        modules:
          - &e
            name: a
            handle: '{TFHUB}'
          - name: b
            handle: '{TFHUB}'
          - *e
          - *d
        """, "block.yaml")
    assert problems_of(block) == [
        f"{block}:{line_of(block, '- *e')}: entry 3 of modules is an alias (`*NAME`) of entry 1 "
        f"(line {line_of(block, '- &e')}): the same fields again, its name too; to reuse its "
        "fields write `- <<: *NAME` with a `name:` of its own",
        f"{block}:{line_of(block, '- *d')}: entry 4 of modules is an alias (`*NAME`) of a "
        f"mapping written at line {line_of(block, '&d')}, not an entry of its own; to reuse "
        "its fields write `- <<: *NAME` with a `name:` of its own"]
    flow = write(tmp_path, f"modules: [&e {{name: a, handle: '{TFHUB}'}},\n  *e]\n",
                 "flow.yaml")
    assert [p.split(": entry")[0] for p in problems_of(flow)] == [f"{flow}:2"]
    scalar = write(tmp_path, f"modules:\n  - {{name: &n a, handle: '{TFHUB}'}}\n  - *n\n",
                   "scalar.yaml")  # an alias of a value: said as the value, not "the mapping"
    assert problems_of(scalar) == [
        f"{scalar}:3: entry 2 of modules is an alias (`*NAME`) of the value 'a' written at line "
        "2, not an entry of its own (an anchor on a value, as in `name: &NAME good`, names "
        "that value alone: to reuse an entry's fields, anchor the entry itself, `- &NAME` on "
        "the line before its first field with its fields below as they are, then write "
        "`- <<: *NAME` with a `name:` of its own)"]


def test_a_home_folder_of_an_unknown_user_is_said_with_the_path_meant(tmp_path, monkeypatch):
    """`handle: ~nouser/models/m` (a user this machine does not know) was joined to the
    catalogue's folder and said only as "…/cats/~nouser/models/m does not exist"; validate
    and rank (hub.locate) now say the user is unknown and the path in one's own home.
    Fails before: no note. The warnings of a missing path end "rank will skip it here", as
    the weights' did (the handle's said "there")."""
    import pwd

    from hubensemble.hub import locate
    from hubensemble.modulefiles import local_handle_warnings

    user = "he-no-such-user-3f9"
    with pytest.raises(KeyError):
        pwd.getpwnam(user)  # the reference: the password database knows no such user
    home = tmp_path / "home"
    (home / user / "models" / "m").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    path = write(tmp_path / "cats", f"""
        modules:
          - name: a
            handle: ~{user}/models/m
          - name: c
            handle: keras:MobileNetV2
            weights: ~{user}/w.weights.h5
        """)
    specs = load_catalogue(path)
    note = (f"(`~{user}` is part of the name here: this machine has no user '{user}', so "
            f"~{user} is no home folder and the path was read from the catalogue's folder; ")
    assert local_handle_warnings(specs) == [
        f"warning: {path}:{line_of(path, 'handle: ~')}: handle "
        f"'{tmp_path / 'cats' / ('~' + user) / 'models/m'}' does not exist on this machine "
        f"{note}for {user}/models/m in your own home write '{home / user / 'models/m'}' (it "
        "exists), or write the full path as it is on this machine); rank will skip it here",
        f"warning: {path}:{line_of(path, 'weights:')}: weights file "
        f"'{tmp_path / 'cats' / ('~' + user) / 'w.weights.h5'}' does not exist on this "
        f"machine {note}for {user}/w.weights.h5 in your own home write "
        f"'{home / user / 'w.weights.h5'}', or write the full path as it is on this machine); "
        "rank will skip it here"]
    with pytest.raises(HubensembleError, match=f"this machine has no user '{user}'"):
        locate(specs[0].handle, name="a")  # rank's words


def test_an_output_dim_no_memory_could_hold_is_refused_with_the_figure(tmp_path):
    """`output_dim: 1000000000` (a typo) was accepted: no upper bound. Refused now above
    2**18 features, with what 1,000 examples' float32 embeddings would take (N x D x 4
    bytes). Fails before: no problem."""
    from hubensemble.catalogue_fields import MAX_OUTPUT_DIM

    path = write(tmp_path, f"""
        modules:
          - {{name: a, handle: '{TFHUB}', output_dim: 1000000000}}
          - {{name: b, handle: '{TFHUB}', output_dim: {2 ** 18 + 1}}}
          - {{name: c, handle: '{TFHUB}', output_dim: {2 ** 18}}}
        """)
    gib = 1000 * 10 ** 9 * 4 / 2 ** 30  # the reference: 1,000 float32 rows of 10^9
    assert MAX_OUTPUT_DIM == 262144 and round(gib, 1) == 3725.3
    problems = problems_of(path)
    assert problems[0] == (
        f"{path}:2: field 'output_dim': 1,000,000,000 features is wider than any image "
        "module's embedding (at most 262,144 here): 1,000 examples' float32 embeddings at "
        "that width are 3,725.3 GiB (N x D x 4 bytes), which rank would have to hold; write "
        "the module's width, e.g. output_dim: 2048, or leave output_dim: out (rank measures it)")
    assert len(problems) == 2 and problems[1].startswith(
        f"{path}:3: field 'output_dim': 262,145 features is wider")
    ok = write(tmp_path, f"modules:\n  - {{name: c, handle: '{TFHUB}', output_dim: 262144}}\n",
               "ok.yaml")
    assert load_catalogue(ok)[0].output_dim == 2 ** 18


def test_a_folder_of_several_modules_is_not_said_to_hold_the_first(tmp_path):
    """A handle naming a folder of modules (`models/` with `a/`, `b/` and `c.keras`) was
    warned of as "the module is in its folder a/", the first by name, and rank offered the
    same; now all are named and none is "the module" (rank offers none), and a folder
    holding one .keras file names it. TF Serving's version folders still give the highest.
    Only listings are read: the modules are their marker files. Fails before: the words."""
    from hubensemble.handles import inner_module
    from hubensemble.modulefiles import local_handle_warnings

    many, one, served = tmp_path / "models", tmp_path / "one", tmp_path / "served"
    for folder in (many / "a", many / "b", served / "2", served / "10", served / "notes"):
        folder.mkdir(parents=True)
        if folder.name != "notes":
            (folder / "saved_model.pb").write_bytes(b"")
    one.mkdir()
    for keras_file in (many / "c.keras", one / "m.keras"):
        keras_file.write_bytes(b"PK\x03\x04")
    path = write(tmp_path, """
        modules:
          - {name: many, handle: ./models}
          - {name: one, handle: ./one}
        """)
    assert [inner_module(many), inner_module(one), inner_module(served)] == [None, None, "10"]
    none = "holds no module (no saved_model.pb, .keras/.h5 file or keras-hub preset)"
    assert local_handle_warnings(load_catalogue(path)) == [
        f"warning: {path}:2: handle '{many}' {none}; 3 modules are in it (a/, b/, c.keras), "
        f"not one: write the one you mean as the handle, e.g. handle: '{many / 'a'}'; rank "
        "will skip it",
        f"warning: {path}:3: handle '{one}' {none}; the module is its file m.keras: write "
        f"handle: '{one / 'm.keras'}'; rank will skip it"]


def test_a_file_url_without_an_authority_is_the_path(tmp_path):
    """RFC 8089 (section 2, local-path) makes `file:/PATH` a file URI, the same file as
    `file:///PATH`; a catalogue refused it as "not a file:// URL". It is read as the path
    now (url_case writes it as file:///PATH, the form the resolvers read), and `file:m`,
    which is no file URI, is refused with the path alone to write. Fails before: refused."""
    import urllib.request

    from hubensemble.catalogue_urls import url_case

    folder = tmp_path / "my mods" / "m"
    folder.mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"")
    url = "file:" + urllib.request.pathname2url(str(folder))  # the stdlib's file:/… form
    assert url.startswith("file:/") and not url.startswith("file://") and "%20" in url
    assert url_case(url) == "file://" + url[len("file:"):]
    path = write(tmp_path, f"""
        modules:
          - {{name: a, handle: '{url}'}}
          - {{name: b, handle: 'FILE:{url[len('file:'):]}'}}
        """)
    assert [s.handle for s in load_catalogue(path)] == [str(folder)] * 2
    bad = write(tmp_path, "modules:\n  - {name: a, handle: 'file:my mods/m'}\n", "bad.yaml")
    assert problems_of(bad) == [
        f"{bad}:2: field 'handle': 'file:my mods/m' is not a file:// URL; write "
        "file:///absolute/path instead, or the path alone: my mods/m"]


def test_a_symbolic_link_whose_target_is_gone_is_said_so(tmp_path):
    """A handle through a symbolic link whose target was moved or deleted (the link itself,
    or a folder above the module) was said only as "does not exist", while `ls` shows it;
    validate and rank (hub.locate) now name the link and its target. Fails before: no note."""
    from hubensemble.hub import locate
    from hubensemble.modulefiles import local_handle_warnings

    gone = tmp_path / "gone"
    (tmp_path / "mods").mkdir()
    os.symlink(gone / "m", tmp_path / "mods" / "m")
    os.symlink(gone, tmp_path / "shelf")
    path = write(tmp_path, """
        modules:
          - {name: a, handle: ./mods/m}
          - {name: b, handle: ./shelf/m}
        """)
    specs = load_catalogue(path)
    assert os.readlink(tmp_path / "mods" / "m") == str(gone / "m")  # the reference: the link
    said = ("which does not exist: link the module's folder again where it is now, or write "
            "that folder); rank will skip it here")
    assert local_handle_warnings(specs) == [
        f"warning: {path}:2: handle './mods/m' ({tmp_path / 'mods/m'}, {REL}) does not exist "
        "on this machine "
        f"({tmp_path / 'mods/m'} is a symbolic link to '{gone / 'm'}', {said}",
        f"warning: {path}:3: handle './shelf/m' ({tmp_path / 'shelf/m'}, {REL}) does not "
        "exist on this machine "
        f"({tmp_path / 'shelf'} is a symbolic link to '{gone}', {said}"]
    with pytest.raises(HubensembleError, match="is a symbolic link to"):
        locate(specs[0].handle, name="a")  # rank's words


def test_a_space_yaml_does_not_read_as_one_is_named_at_its_line(tmp_path):
    """A no-break space pasted into an entry's indentation was read as part of a key
    ("field '\\xa0   family': unknown top-level key"), and a byte-order mark where two
    catalogues were joined with `cat` as "mapping values are not allowed here" a line below;
    both are named now at their line and column with their code point. Fails before."""
    web = "pasted from a web page or a word processor?"
    cases = {  # name: (line 4's bytes, the character as Unicode names it, the likely cause)
        "nbsp.yaml": (b"\xc2\xa0   family: other\n", "U+00A0 (NO-BREAK SPACE)", web),
        "joined.yaml": (b"\xef\xbb\xbf  - name: b\n    handle: m2\n",
                        "U+FEFF (ZERO WIDTH NO-BREAK SPACE)",
                        "files joined with `cat`, each with its own mark?"),
        "zwsp.yaml": (b"  -\xe2\x80\x8b name: b\n    handle: m2\n",
                      "U+200B (ZERO WIDTH SPACE)", web),
    }
    for name, (line, char, why) in cases.items():
        path = tmp_path / name
        path.write_bytes(b"modules:\n  - name: a\n    handle: m1\n" + line)
        column = 1 + len(line) - len(line.lstrip(b" -"))  # ASCII before it: bytes = columns
        assert problems_of(path) == [
            f"{path}:4: column {column}: {char} in the indentation, which YAML does not read "
            f"as a space ({why}); replace it with plain spaces (or delete it)"]
    # The one mark a file may start with is read, as before.
    first = tmp_path / "first.yaml"
    first.write_bytes(b"\xef\xbb\xbfmodules:\n  - name: a\n    handle: m1\n")
    assert [s.name for s in load_catalogue(first)] == ["a"]


def test_a_path_in_typographic_quotes_is_said_with_the_path_meant(tmp_path):
    """`handle: “../mods/m”` (a word processor's quotes, which YAML does not read as quotes)
    was looked for as a folder named "“.." and said only as missing; validate and rank
    (hub.locate) now name the quotes and the path without them. Fails before: no note."""
    from hubensemble.hub import locate
    from hubensemble.modulefiles import local_handle_warnings

    (tmp_path / "mods" / "m").mkdir(parents=True)
    path = write(tmp_path / "cats", "modules:\n  - name: a\n    handle: \u201c../mods/m\u201d\n")
    specs = load_catalogue(path)
    assert local_handle_warnings(specs) == [
        f"warning: {path}:3: handle '\u201c../mods/m\u201d' "
        f"({tmp_path / 'cats' / chr(0x201c)}../mods/m\u201d, {REL}) does not exist on this "
        "machine (\u201c and \u201d are typographic quotes, part of the name "
        "here: YAML quotes with ' or \", not with a word processor's quotes; write "
        f"'{tmp_path / 'mods/m'}' (it exists)); rank will skip it here"]
    with pytest.raises(HubensembleError, match="are typographic quotes"):
        locate(specs[0].handle, name="a")  # rank's words


def test_a_merge_of_an_anchored_value_advises_anchoring_the_entry_and_that_loads(tmp_path):
    """`- name: &nm good`, then `- <<: *nm` with a name of its own (the advice of the alias
    `- *nm`) was refused as "the merge key takes the value 'good', not a mapping" with no way
    to reuse the entry's fields; the refusal now says to anchor the entry's mapping, and doing
    that literally (`- &nm` on the line before its first field) loads."""
    merged = write(tmp_path, f"""
        modules:
          - name: &nm good
            handle: '{TFHUB}'
          - <<: *nm
            name: other
        """, "value.yaml")
    said = find_problem(problems_of(merged), f"{merged}:{line_of(merged, '<<: *nm')}:",
                        "takes the value 'good', not a mapping")
    advice = ("anchor the entry itself, `- &NAME` on the line before its first field with its "
              "fields below as they are, then write `- <<: *NAME` with a `name:` of its own")
    assert advice in said, said
    # As the advice says: the anchor moved from the value to the line before the first field.
    fixed = write(tmp_path, merged.read_text().replace("- name: &nm good",
                                                       "- &nm\n    name: good"), "fixed.yaml")
    specs = load_catalogue(fixed)
    assert [(s.name, s.handle) for s in specs] == [("good", TFHUB), ("other", TFHUB)]
    # A merge of a list of values is refused with the mapping's words only.
    listed = write(tmp_path, f"modules:\n  - <<: [1, 2]\n    name: a\n    handle: '{TFHUB}'\n",
                   "list.yaml")
    assert not any("anchor the entry itself" in p for p in problems_of(listed))


def test_an_alias_of_a_value_as_an_entry_advises_anchoring_the_entry_and_that_loads(tmp_path):
    """`- *nm` of `name: &nm good` advised "write `- <<: *NAME` with a `name:` of its own",
    which the merge refusal then refused (an anchor on a value names the value alone); it
    now gives the merge refusal's advice (catalogue_yaml.VALUE_ANCHOR), and doing that
    literally loads. Fails before: no "anchor the entry itself"."""
    aliased = write(tmp_path, f"""
        modules:
          - name: &nm good
            handle: '{TFHUB}'
          - *nm
        """, "alias.yaml")
    said = find_problem(problems_of(aliased), f"{aliased}:{line_of(aliased, '- *nm')}:",
                        "is an alias (`*NAME`) of the value 'good'")
    assert "anchor the entry itself, `- &NAME` on the line before its first field" in said, said
    # As it says: the entry anchored, its alias merged with a name of its own.
    fixed = write(tmp_path, aliased.read_text().replace("- name: &nm good", "- &nm\n    name: good")
                  .replace("- *nm", "- <<: *nm\n    name: other"), "fixed.yaml")
    assert [(s.name, s.handle) for s in load_catalogue(fixed)] == [("good", TFHUB),
                                                                   ("other", TFHUB)]


@pytest.mark.parametrize("names, said", [(["tiny"], "1 module"), (["a", "b"], "2 modules")])
def test_catalogue_list_counts_its_modules_in_words(names, said):
    """`catalogue list`'s last line: "1 module", "2 modules" (it said "1 module(s)")."""
    table = format_table([ModuleSpec(n, TFHUB) for n in names])
    assert table.splitlines()[-1] == said


@pytest.mark.parametrize("extra, said", [
    ({"colour": "red"}, "unknown ModuleSpec field 'colour'; known: "),
    ({"colour": "red", "size": 3}, "unknown ModuleSpec fields 'colour', 'size'; known: ")])
def test_a_spec_record_names_its_unknown_field_or_fields(extra, said):
    """run.json's module records read back: one unknown field is "field", more "fields"."""
    with pytest.raises(ValueError) as e:
        ModuleSpec.from_json({"name": "n", "handle": TFHUB, **extra})
    assert str(e.value).startswith(said), str(e.value)


def test_a_long_handles_way_on_names_the_whole_handle_to_write(tmp_path):
    """A Kaggle handle of 103 characters copied with '#overview' was told "write handle:
    'https://kaggle.com/models/google/efficientnet-v2/tensorFlow2/imagenet1k-b0-fe...'
    instead": every piece of 80 characters and more was cut, the way on too, which then could
    not be pasted (a new user's check). The problem still echoes at most 80 characters of a
    value; the handle to write is whole. Fails before: '...' in the way on."""
    handle = ("https://kaggle.com/models/google/efficientnet-v2/tensorFlow2/"
              "imagenet1k-b0-feature-vector/2")
    path = tmp_path / "c.yaml"
    path.write_text(f"modules:\n  - name: effnet\n    handle: {handle}#overview\n")
    with pytest.raises(CatalogueError) as err:
        load_catalogue(path)
    said = str(err.value)
    assert f"write handle: '{handle}' instead" in said, said
    assert f"{handle}#overview" not in said.split("write handle:")[0], said  # cut there


def test_a_local_path_missing_here_is_told_in_the_loaders_words_without_tensorflow(
        tmp_path, monkeypatch):
    # rank and fit say these before TensorFlow's import (catalogue_here.missing_here); the
    # reference is the loader's own refusal of each (hub.resolvers.resolve).
    from hubensemble.catalogue_here import local_path_problem, missing_here
    from hubensemble.errors import ModuleLoadError
    from hubensemble.hub.resolvers import resolve

    monkeypatch.delenv("NO_SUCH_VAR", raising=False)
    (tmp_path / "afile.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    missing = [str(tmp_path / "gone"), str(tmp_path / "m.keras"), "$NO_SUCH_VAR/m",
               f"file://{tmp_path / 'gone.h5'}", "C:\\models\\m", str(tmp_path / "a:b")]
    for handle in missing:
        with pytest.raises(ModuleLoadError) as loader:
            resolve(handle, name="x")
        [(spec, said)] = missing_here([ModuleSpec(name="x", handle=handle)])
        assert (str(said), said.stage) == (str(loader.value), "local path"), handle
    # A keras: architecture's weights file that is not there: hub.locate's refusal.
    from hubensemble.hub.locate import locate_spec

    (tmp_path / "adir.h5").mkdir()
    for weights in (str(tmp_path / "w.h5"), f"file://{tmp_path / 'w.keras'}",
                    str(tmp_path / "adir.h5")):
        spec = ModuleSpec(name="k", handle="keras:MobileNetV2", weights=weights)
        with pytest.raises(ModuleLoadError) as loader:
            locate_spec(spec)
        [(_, said)] = missing_here([spec])
        assert (str(said), said.stage) == (str(loader.value), "keras weights"), weights
    # A file of other bytes is told before TensorFlow too, in the loader's words (dce4e797);
    # one that starts as an HDF5 file is left to the loader.
    (tmp_path / "w.h5").write_bytes(b"x")
    spec = ModuleSpec(name="k", handle="keras:MobileNetV2", weights=str(tmp_path / "w.h5"))
    with pytest.raises(ModuleLoadError) as loader:
        locate_spec(spec)
    [(_, said)] = missing_here([spec])
    assert (str(said), said.stage) == (str(loader.value), "keras weights")
    assert "is not an HDF5 file: it holds" in str(said), said
    (tmp_path / "w.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(600))
    assert missing_here([spec]) == []
    # There (a file or folder that holds no module: the loader says why, after TensorFlow),
    # or fetched or built by a resolver: left to the loader.
    for handle in (str(tmp_path / "afile.txt"), str(tmp_path / "empty"), f"file://{tmp_path}",
                   "zoo:demo/glyphs-s", "keras:MobileNetV2", "https://tfhub.dev/google/x/1",
                   "kaggle://keras/m/keras/p", "gs://bucket/m"):
        assert local_path_problem(handle) is None, handle


def test_a_mistyped_local_path_offers_the_existing_sibling_it_most_likely_means(tmp_path):
    # A user wrote …/efficientnet_lite0_imagent beside efficientnet_lite0_imagenet: rank and
    # fit (catalogue_here.missing_here) and the loader said "does not exist; check
    # the path" and no "did you mean". Reference: the folder's listing and the typo.
    from hubensemble.catalogue_here import missing_here
    from hubensemble.errors import ModuleLoadError
    from hubensemble.hub.resolvers import resolve

    meant = tmp_path / "efficientnet_lite0_imagenet"
    meant.mkdir()
    (tmp_path / "mobilenet_v2").mkdir()
    typo = tmp_path / "efficientnet_lite0_imagent"
    with pytest.raises(ModuleLoadError) as loader:
        resolve(str(typo), name="x")
    [(_, said)] = missing_here([ModuleSpec(name="x", handle=str(typo))])
    assert str(said) == str(loader.value)
    assert f"{typo} does not exist; did you mean {meant}?" in str(said), str(said)
    # No close name, or no such folder: the words as before.
    for far in (tmp_path / "resnet50", tmp_path / "gone" / "efficientnet_lite0_imagent"):
        [(_, said)] = missing_here([ModuleSpec(name="x", handle=str(far))])
        assert "did you mean" not in str(said) and "check the path" in str(said), str(said)
    # `catalogue validate` says it in its own warning (handlewarnings.local_handle_warnings, one
    # rule: handles.sibling_note), for a handle and a weights: file alike; it said neither.
    from hubensemble.handlewarnings import local_handle_warnings

    (tmp_path / "w.weights.h5").write_bytes(b"")
    [handle, weights] = [local_handle_warnings([spec])[0] for spec in (
        ModuleSpec(name="x", handle=str(typo)),
        ModuleSpec(name="y", handle="keras:MobileNetV2", weights=str(tmp_path / "w.weight.h5")))]
    assert f"does not exist on this machine; did you mean {meant}?; rank" in handle, handle
    assert f"did you mean {tmp_path / 'w.weights.h5'}?; rank" in weights, weights
    # Only what a handle can name: a folder or a model file, not the SavedModel's own
    # saved_model.pb beside ".../saved_model.pbb", nor a catalogue beside "cat.yam".
    (meant / "saved_model.pb").write_bytes(b"")
    (tmp_path / "cat.yaml").write_text("modules: []\n")
    for typo in (meant / "saved_model.pbb", tmp_path / "cat.yam"):
        [(_, said)] = missing_here([ModuleSpec(name="x", handle=str(typo))])
        assert "did you mean" not in str(said), str(said)


def test_validate_refuses_an_input_size_the_keras_files_input_does_not_take(tmp_path):
    # A .keras file whose Input is 96x96 catalogued with `input_size: [64, 64]` was "ok" for
    # `catalogue validate`; rank then refused it at its input stage ("set input_size: [96,
    # 96]"). Now validate says so by the field's line, for .keras and .h5 files alike.
    import keras

    from hubensemble.errors import ModuleLoadError
    from hubensemble.hub import ModuleRuntime
    from hubensemble.zoo.config import validate_catalogue

    inp = keras.Input((96, 96, 3))
    model = keras.Model(inp, keras.layers.GlobalAveragePooling2D()(inp))
    model.save(tmp_path / "m96.keras")
    model.save(tmp_path / "m96.h5")
    path = write(tmp_path, """
        modules:
          - name: small
            handle: ./m96.keras
            input_size: [64, 64]
          - name: right
            handle: ./m96.keras
            input_size: [96, 96]
          - name: old
            handle: ./m96.h5
            input_size: [64, 80]
        """)
    with pytest.raises(CatalogueError) as e:
        validate_catalogue(path)
    lines = [line for line in str(e.value).splitlines() if "input_size" in line]
    assert len(lines) == 2, str(e.value)
    assert lines[0].startswith(f"{path}:{line_of(path, 'input_size: [64, 64]')}: field "
                               "'input_size': the model's input takes only [96, 96] images "
                               "(its Input's shape in m96.keras), not [64, 64]"), lines[0]
    assert lines[0].endswith("write `input_size: [96, 96]` in this entry"), lines[0]
    assert lines[1].startswith(f"{path}:{line_of(path, 'input_size: [64, 80]')}: field "
                               "'input_size': the model's input takes only [96, 96] images "
                               "(its Input's shape in m96.h5), not [64, 80]"), lines[1]
    assert "right" not in str(e.value)
    # What validate refuses is what rank refuses as the module loads; the fix loads.
    with pytest.raises(ModuleLoadError) as refused:
        ModuleRuntime.load(str(tmp_path / "m96.keras"), name="small", input_size=[64, 64])
    assert refused.value.stage == "input" and "input_size: [96, 96]" in str(refused.value)
    ModuleRuntime.load(str(tmp_path / "m96.keras"), name="right", input_size=[96, 96])


def test_validate_warns_of_a_weights_file_that_holds_no_weights_as_rank_skips_it(tmp_path):
    # An empty or text `weights:` file of a keras:NAME entry: `catalogue validate` said "ok"
    # with no word of it, then rank skipped the module ("… is not an HDF5 file …"). validate
    # now warns of it at the field's line in rank's words (pathnotes.weights_file_problem,
    # one rule for both); a real HDF5 file is not warned of.
    import h5py

    from hubensemble.catalogue_here import missing_here
    from hubensemble.zoo.config import validate_catalogues

    (tmp_path / "empty.weights.h5").write_bytes(b"")
    (tmp_path / "page.weights.h5").write_text("<!DOCTYPE html>\n<html>Not found</html>\n")
    with h5py.File(tmp_path / "good.weights.h5", "w") as f:
        f.create_dataset("w", data=[1.0, 2.0])
    path = write(tmp_path, """
        modules:
          - name: empty
            handle: keras:MobileNetV2
            weights: ./empty.weights.h5
          - name: page
            handle: keras:MobileNetV2
            weights: ./page.weights.h5
          - name: good
            handle: keras:MobileNetV2
            weights: ./good.weights.h5
        """)
    said = []
    assert validate_catalogues([path], lambda line, ok: said.append((line, ok)))
    warnings = [line for line, ok in said if ok is None]
    assert len(warnings) == 2, said
    skipped = {spec.name: str(error) for spec, error in missing_here(load_catalogue(path))}
    assert sorted(skipped) == ["empty", "page"], skipped
    for warning, name, what in ((warnings[0], "empty", "nothing (0 bytes)"),
                                (warnings[1], "page", "text (it starts with '<!DOCTYPE")):
        file = tmp_path / f"{name}.weights.h5"
        assert warning.startswith(
            f"warning: {path}:{line_of(path, f'./{name}.weights.h5')}: the weights file "
            f"{file} is not an HDF5 file: it holds {what}"), warning
        assert warning.endswith("; rank will skip it"), warning
        # rank's reason is the same words
        assert f"the weights file {file} is not an HDF5 file: it holds {what}" in skipped[name]


def test_a_savedmodels_sizes_and_call_are_read_from_one_read_of_saved_model_pb(
        tmp_path, tiny_module, monkeypatch):
    # `catalogue validate`'s size check read saved_model.pb three times per entry
    # (input_sizes read it twice, then read_calls again for the words): once now, and the
    # same sizes and words as the loader's.
    import builtins
    import types

    from conftest import export_quietly, make_tiny_model

    from hubensemble import savedmodel_calls
    from hubensemble.catalogue_sizes import module_sizes

    export_quietly(make_tiny_model(input_size=(24, 24)), str(tmp_path / "exported"))
    reads = []

    def counting_open(file, *args, **kwargs):
        if str(file).endswith("saved_model.pb"):
            reads.append(file)
        return builtins.open(file, *args, **kwargs)

    monkeypatch.setattr(savedmodel_calls, "open", counting_open, raising=False)
    for handle, signature, want in (
            (tiny_module, None, ((), "its __call__'s traces in saved_model.pb", False)),
            (str(tmp_path / "exported"), None,
             (((24, 24),), "its signature 'serving_default''s input in saved_model.pb", False)),
            (str(tmp_path / "exported"), "serve",
             (((24, 24),), "its signature 'serve''s input in saved_model.pb", False))):
        del reads[:]
        spec = types.SimpleNamespace(handle=handle, signature=signature)
        assert module_sizes(spec) == want
        assert len(reads) == 1, reads
        del reads[:]
        assert savedmodel_calls.input_sizes(handle, signature) == want[0]
        assert len(reads) == 1, reads


def test_validate_reads_a_savedmodels_traced_sizes_and_names_an_entry_given_defaults(
        tmp_path, tiny_module):
    # A SavedModel traced at one size catalogued without input_size, or with another size,
    # was "ok" for `catalogue validate` (its sizes "need TensorFlow to load it"); rank then
    # refused it as it loaded. They are read from saved_model.pb without TensorFlow
    # (savedmodel_calls.input_sizes), alike the loader's (compared here with ModuleRuntime's).
    # A wrong size taken from `defaults:` named the defaults line only, no entry; it names
    # the entry now. An input_size on a module that takes any size is warned of (native_size).
    import subprocess

    from conftest import export_quietly, make_tiny_model

    from hubensemble.hub import ModuleRuntime, write_hub_module
    from hubensemble.savedmodel_calls import input_sizes
    from hubensemble.zoo.config import validate_catalogues

    fixed = write_hub_module(make_tiny_model(input_size=(20, 20)), str(tmp_path / "fixed"),
                             input_size=(20, 20))
    export_quietly(make_tiny_model(input_size=(24, 24)), str(tmp_path / "exported"))
    for path, name in ((fixed, "fixed"), (str(tmp_path / "exported"), "exported"),
                       (tiny_module, "any")):
        runtime = ModuleRuntime.load(path, name=name)
        assert input_sizes(path) == tuple(runtime.signature.sizes), name
    assert input_sizes(fixed) == ((20, 20),) and input_sizes(tiny_module) == ()
    # read without TensorFlow: a fresh interpreter does not import it
    code = ("import sys; from hubensemble.savedmodel_calls import input_sizes; "
            f"print(input_sizes({str(tmp_path / 'exported')!r}), 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": os.getcwd()}).stdout
    assert out.split() == ["((24,", "24),)", "False"], out

    path = write(tmp_path, f"""
        defaults:
          input_size: [32, 32]
        modules:
          - name: unsized
            handle: {fixed}
            input_size: null
          - name: wrong
            handle: {fixed}
            input_size: [64, 64]
          - name: right
            handle: {fixed}
            input_size: [20, 20]
          - name: from-defaults
            handle: {tmp_path / "exported"}
          - name: any-size
            handle: {tiny_module}
            input_size: [48, 48]
        """)
    said = []
    assert not validate_catalogues([path], lambda line, ok: said.append((line, ok)))
    errors = [line for line, ok in said if ok is False]
    assert len(errors) == 3, said
    assert errors[1] == (
        f"{path}:{line_of(path, 'input_size: null')}: field 'input_size': missing: the module "
        "takes only [20, 20] images (its __call__'s traces in saved_model.pb), and an entry "
        "without input_size is embedded at the task's resolution; write `input_size: [20, "
        "20]` in this entry (`catalogue add` writes it)")
    assert errors[2] == (
        f"{path}:{line_of(path, '[64, 64]')}: field 'input_size': the module takes only "
        "[20, 20] images (its __call__'s traces in saved_model.pb), not [64, 64]; rank refuses "
        "it as it loads; write `input_size: [20, 20]` in this entry")
    assert errors[0] == (  # line order: `defaults:` first
        f"{path}:{line_of(path, '[32, 32]')}: field 'input_size': (the `defaults:` value, "
        f"taken by entry 'from-defaults' at {path}:{line_of(path, '- name: from-defaults')}) "
        "the module takes only [24, 24] images (its signature "
        "'serving_default''s input in saved_model.pb), not [32, 32]; rank refuses it as it "
        "loads; write "
        "`input_size: [24, 24]` in entry 'from-defaults' (its own value overrides "
        "`defaults:`)")
    [warning] = [line for line, ok in said if ok is None]
    assert warning.startswith(
        f"warning: {path}:{line_of(path, '[48, 48]')}: field 'input_size': [48, 48], but the "
        "module takes any size (its __call__'s traces in saved_model.pb)"), warning
    assert "write `native_size: [48, 48]` instead" in warning, warning
    # what validate refuses, rank refuses as the module loads
    from hubensemble.errors import ModuleLoadError

    with pytest.raises(ModuleLoadError) as refused:
        ModuleRuntime.load(str(tmp_path / "exported"), name="x", input_size=[32, 32])
    assert refused.value.stage == "input" and "input_size: [24, 24]" in str(refused.value)


def test_catalogue_add_writes_an_any_size_modules_declared_input_size_as_native_size(
        tmp_path, caplog):
    # The real ImageNet modules (shared/realmods) take any size and declare input_size
    # [224, 224] (their training size) in hubensemble_module.json: `catalogue add` wrote it as
    # input_size, fixing rank and fine-tuning at 224 px (12x the pixels of 64 px). By
    # docs/catalogue.md's Fields that size is native_size; the entry says so, and so does a
    # warning. A module traced at that one size keeps it as input_size.
    import logging

    from conftest import make_tiny_model

    from hubensemble.hub import write_hub_module
    from hubensemble.hub.introspect import describe_module
    from hubensemble.zoo.config import validate_catalogues

    anysize = write_hub_module(make_tiny_model(), str(tmp_path / "anysize"),
                               metadata={"input_size": [40, 40], "family": "generalist"})
    fixed = write_hub_module(make_tiny_model(input_size=(40, 40)), str(tmp_path / "fixed"),
                             input_size=(40, 40), metadata={"input_size": [40, 40]})
    own = write_hub_module(make_tiny_model(), str(tmp_path / "own"),
                           metadata={"input_size": [40, 40], "native_size": [32, 32]})
    with caplog.at_level(logging.WARNING):
        spec = describe_module(anysize)
    assert (spec.input_size, spec.native_size, spec.family) == (None, (40, 40), "generalist")
    assert (f"{anysize} declares input_size [40, 40], but it takes any size: written as "
            "native_size") in caplog.text
    assert (describe_module(fixed).input_size, describe_module(fixed).native_size) == (
        (40, 40), None)
    assert (describe_module(own).input_size, describe_module(own).native_size) == (
        None, (32, 32))
    # The entry as catalogue add writes it passes validate without a warning; the module's
    # declared size written as input_size is warned of.
    path = write(tmp_path, f"""
        modules:
          - {{name: added, handle: {anysize}, native_size: [40, 40]}}
          - {{name: fixed-at-40, handle: {anysize}, input_size: [40, 40]}}
        """)
    said = []
    assert validate_catalogues([path], lambda line, ok: said.append((line, ok)))
    assert [line.split(": field")[0] for line, ok in said if ok is None] == [
        f"warning: {path}:3"], said


def test_validate_warns_of_a_saved_model_pb_that_is_empty_text_or_cut_short(
        tmp_path, tiny_module):
    # A SavedModel folder whose saved_model.pb is empty, a saved web page or cut short was
    # "ok" for `catalogue validate`; rank then skipped it in TensorFlow's words ("Wire format
    # was corrupt"; for an empty one "requires a `tags=` argument … 0 MetaGraphs"). validate
    # warns of it at the handle's line (savedmodel_calls.saved_model_pb_problem, read without
    # TensorFlow), and the loader says an empty one in the same words.
    from hubensemble.errors import ModuleLoadError
    from hubensemble.hub import ModuleRuntime
    from hubensemble.zoo.config import validate_catalogues

    whole = open(os.path.join(tiny_module, "saved_model.pb"), "rb").read()
    for name, data in (("empty", b""), ("page", b"<!DOCTYPE html>\n<html>404</html>\n"),
                       ("cut", whole[:len(whole) // 2])):
        shutil.copytree(tiny_module, tmp_path / name)
        (tmp_path / name / "saved_model.pb").write_bytes(data)
    path = write(tmp_path, """
        modules:
          - {name: empty, handle: ./empty}
          - {name: page, handle: ./page}
          - {name: cut, handle: ./cut}
        """)
    said = []
    assert validate_catalogues([path], lambda line, ok: said.append((line, ok)))
    warnings = [line for line, ok in said if ok is None]
    pb = {name: tmp_path / name / "saved_model.pb" for name in ("empty", "page", "cut")}
    assert [w.split(": ", 2)[1:] for w in warnings] == [
        [f"{path}:2", f"{pb['empty']} holds nothing (0 bytes); copy or download the module "
                      "whole again (saved_model.pb with its variables/ folder); rank will "
                      "skip it"],
        [f"{path}:3", f"{pb['page']} holds text (it starts with '<!DOCTYPE html> <html>404"
                      "</html>'), such as a web page or an error message a server sent, not "
                      "a SavedModel; copy or download the module whole again (saved_model.pb "
                      "with its variables/ folder); rank will skip it"],
        [f"{path}:4", f"{pb['cut']} does not parse as a SavedModel ({len(whole) // 2:,} "
                      "bytes: cut short, or damaged); copy or download the module whole "
                      "again (saved_model.pb with its variables/ folder); rank will skip it"]]
    with pytest.raises(ModuleLoadError) as refused:
        ModuleRuntime.load(str(tmp_path / "empty"), name="empty")
    assert f"{pb['empty']} holds nothing (0 bytes)" in str(refused.value), refused.value


def test_validate_says_a_signature_output_key_or_layer_the_local_module_lacks(
        tmp_path, tiny_module):
    # An entry naming a signature its SavedModel lacks, an output_key its signature does not
    # return, or a layer its .keras file lacks was "ok" for `catalogue validate`; rank
    # refused it as it loaded. validate reads them from the files (no TensorFlow:
    # savedmodel_calls.read_calls, kerasconfig.model_config) and says them by the field's line.
    import keras

    from conftest import export_quietly, make_tiny_model

    from hubensemble.zoo.config import validate_catalogues

    export_quietly(make_tiny_model(), str(tmp_path / "exported"))
    inp = keras.Input((None, None, 3), name="images")
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(
        keras.layers.Conv2D(4, 3, name="conv")(inp))
    keras.Model(inp, keras.layers.Dense(2, name="head")(pooled)).save(tmp_path / "m.keras")
    path = write(tmp_path, f"""
        modules:
          - {{name: a, handle: ./m.keras, layer: nosuch}}
          - {{name: b, handle: ./m.keras, layer: pool}}
          - {{name: c, handle: ./exported, signature: nosuch}}
          - {{name: d, handle: ./exported, output_key: nosuch}}
          - {{name: e, handle: ./exported, output_key: output_0}}
          - {{name: f, handle: {tiny_module}, signature: serving_default}}
        """)
    said = []
    assert not validate_catalogues([path], lambda line, ok: said.append((line, ok)))
    errors = [line for line, ok in said if ok is False]
    assert errors == [
        f"{path}:2: field 'layer': the model has no layer 'nosuch' (its last layers: "
        "images, conv, pool, head); write one of its layers' names, or leave layer out "
        "(cut at its last Dense layer's input)",
        f"{path}:4: field 'signature': the SavedModel has no signature 'nosuch' (signatures: "
        "serve, serving_default); write one of them, or leave signature out",
        f"{path}:5: field 'output_key': its signature 'serving_default' returns "
        "['output_0']; write the embedding's key",
        f"{path}:7: field 'signature': the SavedModel has no signature 'serving_default' "
        "(signatures: none); write one of them, or leave signature out (its __call__ is "
        "used)"], said


def test_catalogue_add_refuses_an_empty_weights_file_before_tensorflow(
        tmp_path):
    # `catalogue add keras:X --weights empty.weights.h5` imported TensorFlow before refusing
    # it; check_add (run before TensorFlow) refuses it in validate's and rank's words. (A
    # damaged saved_model.pb is left to the load: a batch add counts it as failed.)
    import subprocess

    (tmp_path / "empty.weights.h5").write_bytes(b"")
    code = f"""
import sys
from hubensemble.catalogue_writer import check_add
from hubensemble.errors import CatalogueError
for handles, fields in ((["keras:MobileNetV2"], {{"weights": "empty.weights.h5"}}),):
    try:
        check_add({str(tmp_path / 'to.yaml')!r}, handles, **fields)
    except CatalogueError as e:
        print(e)
print("tensorflow" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, check=True,
                         env={**os.environ, "PYTHONPATH": os.getcwd()}).stdout.splitlines()
    assert out == [
        f"cannot add 'keras:MobileNetV2': keyword weights: the weights file "
        f"{tmp_path / 'empty.weights.h5'} is not an HDF5 file: it holds nothing (0 bytes); "
        "pass weights='imagenet' or the path of the file its weights were saved to",
        "False"], out


def test_a_weights_file_from_defaults_is_warned_of_with_each_entry_it_applies_to(tmp_path):
    # A `defaults:` weights file that is missing or empty was warned of at the defaults line
    # once per entry, every line alike, naming no entry (as the input_size of 3d398974 was);
    # each line now names the entry that took it (pathnotes.from_defaults).
    from hubensemble.zoo.config import validate_catalogues

    (tmp_path / "empty.weights.h5").write_bytes(b"")
    path = write(tmp_path, """
        defaults:
          weights: ./empty.weights.h5
        modules:
          - {name: a, handle: 'keras:MobileNetV2'}
          - {name: b, handle: 'keras:MobileNetV2'}
          - {name: c, handle: 'keras:MobileNetV2', weights: imagenet}
        """)
    said = []
    assert validate_catalogues([path], lambda line, ok: said.append((line, ok)))
    warnings = [line for line, ok in said if ok is None and "loads the same module" not in line]
    assert warnings == [
        f"warning: {path}:2: (the `defaults:` value, taken by entry {name!r} at {path}:{line}) "
        f"the weights file {tmp_path / 'empty.weights.h5'} is not an HDF5 file: it holds "
        "nothing (0 bytes); rank will skip it" for name, line in (("a", 4), ("b", 5))], said


@pytest.mark.parametrize("field, value, yaml, words, python", [
    ("input_size", "96x80", "96x80", "write input_size: [96, 80] (height, width)",
     "pass input_size=(96, 80) (height, width)"),
    ("input_size", "96 X 80", "'96 X 80'", "write input_size: [96, 80] (height, width)",
     "pass input_size=(96, 80) (height, width)"),
    ("native_size", 160, "160", "write native_size: [160, 160] (height, width)",
     "pass native_size=(160, 160) (height, width)"),
    ("input_size", 99999, "99999", "write input_size: [224, 224] (height, width)",
     "pass input_size=(224, 224) (height, width)"),
    ("input_size", "5000x5000", "5000x5000", "write input_size: [224, 224] (height, width)",
     "pass input_size=(224, 224) (height, width)"),
    ("family", "Generalist", "Generalist", "write family: generalist instead",
     "pass family='generalist' instead"),
    ("tags", "a, b", "'a, b'", "write tags: [a, b] instead", "pass tags=('a', 'b') instead"),
])
def test_yaml_style_values_are_refused_alike_from_python_and_yaml_with_the_size_meant(
        tmp_path, field, value, yaml, words, python):
    # A ModuleSpec made in Python and a YAML entry go through one check per field; a size
    # written "96x80" (or 160) was told to write [224, 224], the Python API's input_size
    # reading (inputsize) said (96, 80): one reading now (sizemeant.meant_size). Each is told
    # the value in its own words: Python's keyword, the catalogue's YAML.
    (tmp_path / "m").mkdir()
    with pytest.raises(ValueError) as err:
        ModuleSpec(name="a", handle=str(tmp_path / "m"), **{field: value})
    path = tmp_path / "c.yaml"
    path.write_text(f"modules:\n  - name: a\n    handle: m\n    {field}: {yaml}\n")
    with pytest.raises(CatalogueError) as refused:
        load_catalogue(str(path))
    said = str(err.value).split(f"field {field!r}: ", 1)[1]
    problem, hint = said.split("; ")
    assert python in hint and ": " not in hint and "null" not in hint, said
    assert f"{problem}; {words}" in str(refused.value), (said, str(refused.value))
    # A size written but out of range is said to be so: "5000x5000" was hinted (224, 224)
    # as if only its form were wrong (new user 445; sizemeant.outside_words).
    if value in (99999, "5000x5000"):
        side = 99999 if value == 99999 else 5000
        assert problem.endswith(f", which reads as ({side}, {side}), a side outside [1, 2048] "
                                "pixels"), said
