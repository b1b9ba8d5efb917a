"""Catalogue field values: each field's check and its message (what is wrong, what to write
instead, said as a catalogue file or as a Python call writes it: `said`), the constants they
use, and `shown` (a value as a message echoes it). Pure: no YAML, no file system but
`checked_stored_handle`'s path arithmetic (hubensemble.handles) and the folder listing
`pin_hint` reads for a local handle."""

from __future__ import annotations

import contextlib
import contextvars
import numbers
import os
import re
import reprlib
import unicodedata

from hubensemble.handles import (NAME_RE, HandleFormError, check_weights, handle_kind,
                                 local_source, source_kind, stored_handle, stored_weights)
# lines[DEFAULTED]: the fields an entry took from `defaults:` (pathnotes owns it: handles too
# says such a value with its entry)
from hubensemble.inputsize import MAX_INPUT_SIDE as _MAX_INPUT_SIDE
from hubensemble.pathnotes import DEFAULTED  # noqa: F401 - re-exported for catalogue
# a hint's parts and their words in either form live in a leaf module, which hubensemble.handles
# uses too; said is re-exported for catalogue
from hubensemble.saidwords import QUOTED, WRITE, SaidHint, Say, Words, said  # noqa: F401
from hubensemble.sizemeant import meant_size, outside_words
from hubensemble.text import closest_name, shell, shell_word

SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")
FAMILIES = ("generalist", "expert", "other")
VALUE_RANGES = ("0,1", "-1,1", "0,255", "imagenet")
#: Image dtypes a module's ``__call__`` may take: float32 (in its value_range) or uint8
#: (in [0, 255]); the module runtime (hubensemble.hub) feeds them.
INPUT_DTYPES = ("float32", "uint8")
TOP_LEVEL_KEYS = ("defaults", "modules")
# Every entry needs its own name and handle: a shared default would silently duplicate them.
# A sha256 pins one file (an archive, a saved_model.pb, a model file): one value cannot be
# right for two entries' files, so in `defaults:` it is wrong for all but at most one.
NO_DEFAULT_FIELDS = ("name", "handle", "sha256")

_RANGE_BOUNDS = {(0.0, 1.0): "0,1", (-1.0, 1.0): "-1,1", (0.0, 255.0): "0,255"}
#: value_range shorthands as written in YAML (the keys) and as stored (the values);
#: catalogue_writer writes the same spellings back.
RANGE_YAML = {"0,1": [0, 1], "-1,1": [-1, 1], "0,255": [0, 255], "imagenet": "imagenet"}
SHOWN_CHARS = 80  # the most characters of a value a message echoes (`shown`)
HINT_CHARS = 1000  # of a value a way on gives to write instead (`_handle_checked`)
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, SHOWN_CHARS, SHOWN_CHARS  # 6 per level


def shown(value, *, text=False) -> str:
    """`value` as a message echoes it: its repr (`text`: a string as it is), SHOWN_CHARS
    characters at most. Cheap for any value: reprlib stops at a depth and count (an alias
    bomb, nested &a/*a lists, in `tags:` made `catalogue validate` print 25 MB)."""
    out = value if text and isinstance(value, str) else _REPR.repr(value)
    return out if len(out) <= SHOWN_CHARS else out[:SHOWN_CHARS - 3] + "..."


#: The form a ModuleSpec's refusal says its hints in (`spec_hint_form`): None, the caller's.
_SPEC_FORM = contextvars.ContextVar("hubensemble_spec_hint_form", default=None)


def spec_hint_form() -> str:
    """The form ("yaml" or "python") ModuleSpec's refusals say their hints in: `spec_hints`'
    inside its block; else "python" for a Python caller, "yaml" on the command line, where a
    ModuleSpec is made by hubensemble from a catalogue's or `catalogue add`'s values (whose
    fields `catalogue add` checks itself, in the command line's words:
    `catalogue_writer._field_refusals`)."""
    form = _SPEC_FORM.get()
    if form is not None:
        return form
    from hubensemble.lockwords import on_command_line

    return "yaml" if on_command_line() else "python"


@contextlib.contextmanager
def spec_hints(form):
    """While the block runs, ModuleSpec's refusals say their hints in `form` (`said`):
    `ModuleSpec.from_json` keeps a run.json entry's own words."""
    token = _SPEC_FORM.set(form)
    try:
        yield
    finally:
        _SPEC_FORM.reset(token)


#: None, true and false as YAML (and JSON) and Python say them, in a refusal's problem.
NULL, TRUE_OR_FALSE = Words("null", "None"), Words("true or false", "True or False")


class _Bad(SaidHint, Exception):
    """A field value is wrong: `problem` says what, `hint` what to write instead in a
    catalogue file, `python_hint` as a Python caller passes it (`said` of `parts`; of
    `problem_parts` for what is wrong: "got null", "got None")."""

    def __init__(self, problem, parts):
        super().__init__(said(problem))
        self.problem_parts = problem
        self.parts = parts

    @property
    def problem(self) -> str:
        return said(self.problem_parts, "yaml")


# ---------------------------------------------------------------------------- field checks


def _is_int(value):
    # numbers.Integral also admits numpy integers (e.g. a shape from the zoo builder).
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _type_name(value):
    return "null" if value is None else type(value).__name__


def _got(value) -> tuple:
    """"got null" (Python: "got None") or "got TYPE VALUE", for a value of the wrong type:
    `said`'s parts."""
    return ("got ", NULL) if value is None else (f"got {_type_name(value)} {shown(value)}",)


def _check_name(value):
    if not isinstance(value, str):
        raise _Bad(("must be a string, ", *_got(value)), (
            WRITE, "the entry's own name instead, e.g. ", Say("name", "my-module"))
            if value is None else  # name='None' is no name
            (WRITE, Say("name", shown(value), quoted=True), QUOTED, " instead"))
    if not NAME_RE.fullmatch(value):
        ascii_ = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
        fixed = re.sub(r"[^A-Za-z0-9_.-]+", "-", ascii_).strip("-.") or "my-module"  # é -> e
        why = " (-x reads as an option in --modules -x)" if value.startswith("-") else ""
        raise _Bad(f"{shown(value)} may only contain letters, digits, '_', '.' and '-', and start "
                   f"with a letter, digit or '_'{why}",
                   (WRITE, Say("name", fixed[:SHOWN_CHARS]), " instead"))
    return value


def _check_sha256(value):
    if value is None:
        return None
    if not isinstance(value, str) or not SHA256_RE.fullmatch(value):
        raise _Bad(f"{shown(value)} is not 64 hexadecimal characters", _sha256_parts(value))
    return value.lower()


#: A pasted `sha256sum` line ("HASH  saved_model.pb", "HASH  -" from a pipe) or a
#: "sha256:HASH" digest: 64 hexadecimal characters first, after an optional `sha256:`.
_PASTED_SHA256 = re.compile(r"\s*(?:sha256:\s*)?([0-9a-fA-F]{64})(?![0-9a-fA-F])", re.IGNORECASE)


def sha256_hint(value, handle=None) -> str:
    """The hint of a refused `sha256` value: for a str that starts (after an optional
    `sha256:` and spaces) with 64 hexadecimal characters, e.g. a pasted `sha256sum` line
    "HASH  saved_model.pb", the exact `sha256: 'hash'` (lower case) to write; else
    `pin_hint(handle)`, what to hash. Repeating "write the output of `sha256sum …`" to a user
    who pasted that output looped (a new user's check)."""
    return said(_sha256_parts(value, handle))


def _sha256_parts(value, handle=None):
    """`sha256_hint`'s parts (`said`)."""
    found = _PASTED_SHA256.match(value) if isinstance(value, str) else None
    if found:
        return (WRITE, Say("sha256", found.group(1).lower(), quoted=True),
                " (the 64-character hash alone) instead")
    return pin_parts(handle)


#: The largest side an input_size may have (`inputsize`, the Python API's rule, owns it).
MAX_INPUT_SIDE = _MAX_INPUT_SIDE


#: The widest embedding an entry's output_dim may give: 2**18 = 262,144 features. Rank holds
#: N x D float32 embeddings (4 N D bytes) for its leave-one-out kNN, N the examples: at this
#: width the 1,000 of a VTAB-1k task (the paper's data sets) are 1 GiB alone, a third of
#: the ~3 GiB a small machine gives a run; no image module's features come near it (the
#: widest shipped, BiT R152x4: 8,192; a VGG16's unpooled 7 x 7 x 512 map: 25,088), so a
#: larger value is a typo, and such a module would fill the memory at rank's first batch.
MAX_OUTPUT_DIM = 1 << 18
#: The examples `output_dim_problem` sizes the embeddings for (a VTAB-1k task's 1,000).
SIZED_EXAMPLES = 1000


def output_dim_problem(dim) -> str | None:
    """Why `dim` (an int, an embedding's width) is too wide to rank, with the figure: its
    SIZED_EXAMPLES float32 embeddings' bytes (N x D x 4), or None when it is at most
    MAX_OUTPUT_DIM. For a catalogue's `output_dim:` and a module's measured width alike."""
    if dim <= MAX_OUTPUT_DIM:
        return None
    gib = SIZED_EXAMPLES * dim * 4 / (1 << 30)
    return (f"{dim:,} features is wider than any image module's embedding (at most "
            f"{MAX_OUTPUT_DIM:,} here): {SIZED_EXAMPLES:,} examples' float32 embeddings at "
            f"that width are {gib:,.1f} GiB (N x D x 4 bytes), which rank would have to hold")


def _check_output_dim(value):
    dim = _opt_int("output_dim", 2048, minimum=1)(value)
    problem = dim is not None and output_dim_problem(dim)
    if problem:
        raise _Bad(problem, (WRITE, "the module's width, e.g. ", Say("output_dim", 2048), ", or ",
                             Say("output_dim", None, yaml="leave output_dim: out"),
                             " (rank measures it)"))
    return dim


def _check_size(field, meaning):
    def check(value):
        if value is None:
            return None
        if (isinstance(value, (list, tuple)) and len(value) == 2
                and all(_is_int(v) and v > 0 for v in value)):
            if max(value) > MAX_INPUT_SIDE:
                raise _Bad(f"{shown(list(value))} has a side above {MAX_INPUT_SIDE} pixels, larger "
                           "than any image module's input (a typo?)",
                           (WRITE, "the module's own size, e.g. ", Say(field, (224, 224)),
                            ", or ", Say(field, None), f" ({meaning})"))
            return (int(value[0]), int(value[1]))
        # "224x224", 224: the size it means to write (`sizemeant`, the Python API's reading)
        meant = meant_size(value, MAX_INPUT_SIDE)
        raise _Bad(f"{shown(value)} is not a pair of positive integers"
                   f"{outside_words(value, MAX_INPUT_SIDE)}",
                   (WRITE, Say(field, tuple(meant or (224, 224))), " (height, width) or ",
                    Say(field, None), f" ({meaning}) instead"))
    return check


_check_input_size = _check_size("input_size", "any size")


def parse_value_range(value) -> str:
    """Canonicalise a value range to "0,1", "-1,1", "0,255" or "imagenet".

    Accepts a pair of numbers ([0, 1], (0.0, 255)), the canonical strings, "[0, 1]" or
    "imagenet" (mean/std normalisation). Raises ValueError for anything else.
    """
    bounds = None
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "imagenet":
            return "imagenet"
        parts = text.strip("[]() ").split(",")
        if len(parts) == 2:
            try:
                bounds = (float(parts[0]), float(parts[1]))
            except ValueError:
                bounds = None
    elif isinstance(value, (list, tuple)) and len(value) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        bounds = (float(value[0]), float(value[1]))
    if bounds in _RANGE_BOUNDS:
        return _RANGE_BOUNDS[bounds]
    raise ValueError(f"value range {shown(value)} is not one of [0, 1], [-1, 1], [0, 255] "
                     f"or imagenet")


def _check_value_range(value):
    try:
        return parse_value_range(value)
    except ValueError:
        raise _Bad(f"{shown(value)} is not a known value range",
                   (WRITE, Say("value_range", (0, 1)), ", ", Say(None, (-1, 1)), ", ",
                    Say(None, (0, 255)), " or ", Say(None, "imagenet"),
                    " instead (TF Hub image modules take [0, 1])")) from None


def _check_family(value):
    if value in FAMILIES:
        return value
    # git's rule (text.closest_name): difflib's ratio offered generalist for specialist.
    suggestion = closest_name(shown(value, text=True), FAMILIES) or "other"
    raise _Bad(f"unknown family {shown(value)} (known: {', '.join(FAMILIES)})",
               (WRITE, Say("family", suggestion), " instead"))


def _opt_str(field, example):
    def check(value):
        if value is None or isinstance(value, str):
            return value
        raise _Bad(("must be a string or ", NULL, ", ", *_got(value)),
                   (WRITE, Say(field, shown(value), quoted=True), QUOTED, " or e.g. ",
                    Say(field, example), " instead"))
    return check


def _opt_int(field, example, minimum):
    def check(value):
        if value is None:
            return None
        if _is_int(value) and value >= minimum:
            return value if type(value) is int else int(value)
        what = "a positive integer" if minimum == 1 else "an integer"
        raise _Bad((f"{shown(value)} is not {what} or ", NULL),
                   (WRITE, Say(field, example), f" ({what}) or ", Say(field, None), " instead"))
    return check


def _check_tags(value):
    if isinstance(value, (list, tuple)) and all(isinstance(t, str) for t in value):
        return tuple(value)
    # "a, b" is told what YAML reads `tags: [a, b]` as: two tags, ('a', 'b') in Python
    hint = ((WRITE, Say("tags", tuple(t.strip() for t in value.split(",") if t.strip()),
                        yaml=f"tags: [{shown(value, text=True)}]"), " instead")
            if isinstance(value, str) else
            (WRITE, Say("tags", ("tag1", "tag2")), Words(" (a list of strings)", ""), " instead"))
    raise _Bad(f"{shown(value)} is not a list of strings", hint)


def _check_input_dtype(value):
    if value is None or value in INPUT_DTYPES:
        return value
    raise _Bad(f"{shown(value)} is not an image dtype hubensemble can feed",
               (WRITE, Say("input_dtype", "uint8"), " (images in [0, 255]), ",
                Say("input_dtype", "float32"), ", or ",
                Say("input_dtype", None, yaml="leave it out"), " (the module's signature decides)"))


def _check_bool(value):
    if isinstance(value, bool):
        return value
    raise _Bad((f"{shown(value)} is not ", TRUE_OR_FALSE),
               (WRITE, Say("trust", True), " (only for modules you trust to touch files) or ",
                Say("trust", False), " instead"))


def _handle_checked(check, value, *args):
    """check(value, *args) of hubensemble.handles, its HandleFormError as _Bad with the long
    pieces of the value cut (`shown`) in the problem; a non-string is checked as "": handles
    echoes it whole. The hint, a value to write instead ("write handle: 'https://…' instead"),
    stays whole up to HINT_CHARS: cut, it could not be pasted (a Kaggle handle is often 95
    characters and more; a new user's check). Its words in either form are the error's own
    (`HandleFormError.parts`): they were the catalogue's, rewritten by a pattern."""
    text = value if value is None or isinstance(value, str) else ""
    try:
        return check(text, *args)
    except HandleFormError as e:
        def cut(m):  # the value, its scheme, "./" + it: a piece of it, or it in the piece
            return shown(m[0], text=True) if m[0] in text or text and text in m[0] else m[0]
        problem = (e.problem,) if text is value and value is not None else (
            "must be a non-empty string, ", *_got(value))
        hint = Words(*(re.sub(r"[^\s']{%d,}" % HINT_CHARS, cut, said(e.parts, form))
                       for form in ("yaml", "python", "cli")))  # the caller's words: e.parts
        raise _Bad(tuple(re.sub(r"[^\s']{%d,}" % SHOWN_CHARS, cut, part)
                         if isinstance(part, str) else part for part in problem),
                   (hint,)) from None


def cli_parts(parts):
    """`parts` as given: handles' Words say their command-line words themselves (`Words.cli`)
    now; they were looked up here by the whole part. Kept for catalogue_writer's calls until
    they go."""
    return parts


#: The entry fields `catalogue add` sets by a flag (cli.py declares them), with the flag's
#: value as its usage writes it (`trust` is a flag without a value): said in the caller's
#: words by `catalogue_writer._field_refusals`.
ADD_FLAGS = {"output_key": "--output-key KEY", "signature": "--signature NAME",
             "layer": "--layer NAME", "weights": "--weights FILE", "trust": "--trust"}


def _check_weights(value):
    """handles.check_weights, with an empty (or blank) string refused as empty: it was made
    the catalogue's folder or the working folder (`stored_weights('')`) and refused as "'/work'
    is not a Keras weights file", naming a path the user never wrote."""
    if isinstance(value, str) and not value.strip():
        raise _Bad(f"must be a non-empty string, got {value!r}",
                   (WRITE, Say("weights", "imagenet"), " or ",
                    Say("weights", "path/to/file.weights.h5"), ", or ",
                    Say("weights", None, yaml="remove weights: from this entry"), " (imagenet)"))
    return _handle_checked(check_weights, value)


def checked_stored_weights(value, base_dir):
    """A `weights:` value as stored in a catalogue under `base_dir` (a path relative to it,
    or a keyword such as "imagenet"), checked; raises the parser's field error when invalid
    (an empty or blank string as empty: `stored_weights` makes no path of it)."""
    return _check_weights(stored_weights(value, base_dir))


_CHECKS = {
    "name": _check_name,
    "handle": None,  # needs the catalogue's folder: see _resolve_handle
    "sha256": _check_sha256,
    "input_size": _check_input_size,
    "native_size": _check_size("native_size", "not known"),
    "value_range": _check_value_range,
    "output_dim": _check_output_dim,
    "family": _check_family,
    "architecture": _opt_str("architecture", "resnet50x1"),
    "upstream": _opt_str("upstream", "imagenet21k"),
    "subtree": _opt_str("subtree", "bird"),
    "params": _opt_int("params", 23500352, minimum=1),
    "license": _opt_str("license", "Apache-2.0"),
    "tags": _check_tags,
    "seed": _opt_int("seed", 0, minimum=-(2 ** 63)),
    "trust": _check_bool,
    "output_key": _opt_str("output_key", "default"),
    "input_dtype": _check_input_dtype,
    "weights": _check_weights,
    "layer": _opt_str("layer", "avg_pool"),
    "signature": _opt_str("signature", "serving_default"),
}
#: The catalogue fields of a ModuleSpec, in the order the writer emits them.
FIELD_NAMES = tuple(_CHECKS)


def checked_stored_handle(handle, base_dir):
    """A handle as stored in a catalogue under `base_dir` (a local path relative to it, any
    other handle form unchanged); raises the parser's field error for a malformed handle."""
    return _handle_checked(stored_handle, handle, base_dir)


#: What a catalogue's `sha256` pins, in a refused one's hint when the handle is not known
#: (a `defaults:` value, an entry whose handle is refused): docs/security.md, "What is
#: checked, and when" (2, Checksum).
PIN_WORDS = ("the sha256 (quoted) of the file its handle pins: an archive's (`sha256sum "
             "FILE.tar.gz`), a SavedModel's saved_model.pb, a .keras/.h5 file, a keras-hub "
             "preset's model.weights.h5; for a sharded preset, of its index and shards read "
             "one after the other (`cat model.weights.json SHARD… | sha256sum`, the shards "
             "sorted as the index names them)")


def pin_hint(handle=None) -> str:
    """The hint of a refused `sha256` of an entry whose (stored) `handle` is known: the
    command that computes the sha256 a pin is compared with for that kind of handle
    (hub.resolvers.pinned_sha256: one file, or a sharded keras-hub preset's index and shards
    read one after the other), or PIN_WORDS for all kinds when `handle` is None or a local
    path that holds no module here. Reads a local handle's folder listing only."""
    return said(pin_parts(handle))


def pin_parts(handle=None) -> tuple:
    """`pin_hint`'s `said` parts, both forms written once: a catalogue's "write the sha256
    (quoted) of …", a call's "pass sha256= the sha256 of …" (its words were the catalogue's
    rewritten by pattern: "the entry's weights: file" became "weights='file'")."""
    kind = None if handle is None else handle_kind(handle)
    if kind is None or kind == "zoo":
        what = PIN_WORDS
    elif kind == "keras":
        what = ("the sha256 (quoted) of its weights file: `sha256sum` of the ",
                Words("entry's weights: file", "weights= file"),
                ", or of Keras' ImageNet file in ~/.keras/models/")
    elif kind == "keras-hub":
        what = ("the sha256 (quoted) of the preset's model.weights.h5 (`sha256sum "
                "model.weights.h5`); for a sharded preset, of its index and shards read one "
                "after the other (`cat model.weights.json SHARD… | sha256sum`, the shards "
                "sorted as the index names them)")
    elif kind == "local":
        what = _local_pin(handle)
    elif source_kind(handle) == "keras-file":
        what = "the hash printed by `sha256sum FILE` (quoted) of the file as downloaded"
    elif kind == "gcs" and not handle.endswith((".tar", ".tar.gz", ".tgz")):
        # a folder, copied whole (hub.resolvers.RemoteCopyResolver): its files are pinned
        what = ("the hash printed by `sha256sum saved_model.pb` (quoted) in a copy of the folder "
                "(a keras-hub preset folder: its model.weights.h5)")
    else:
        what = "the hash printed by `sha256sum FILE` (quoted) of the archive as downloaded"
    # `sha256sum` prints "HASH  FILE" ("HASH  -" from a pipe): the pin is the hash alone
    parts = []
    for piece in (what,) if isinstance(what, str) else what:
        if isinstance(piece, str):  # " (quoted)": a Python str literal is quoted as written
            for i, text in enumerate(piece.split(" (quoted)")):
                parts.extend(([QUOTED] if i else []) + [text])
        else:
            parts.append(piece)
    return (Words("write ", "pass sha256= "), *parts, ": the 64-character hash alone, not the "
            "name after it, or leave sha256 out")


def _local_pin(path) -> str:
    """`pin_hint`'s words for the local handle `path`: the files `modulefiles.pinned_files`
    reads for the pin, named (a sharded preset's index and its shards, in that order)."""
    from hubensemble.modulefiles import pinned_files

    try:
        files = pinned_files(path)
    except (OSError, ValueError):  # a sharded preset's index that is not Keras'
        files = None
    if files is None and local_source(path) == "keras-hub-preset":
        return (f"the hash printed by `cd {shell(path)} && cat model.weights.json SHARD… | "
                f"sha256sum` (quoted), the shards sorted as model.weights.json names them")
    if not files:
        return PIN_WORDS
    if len(files) == 1:
        return f"the hash printed by `sha256sum {shell(files[0])}` (quoted)"
    names = " ".join(shell_word(os.path.basename(f)) for f in files)
    return (f"the hash printed by `cd {shell(path)} && cat {names} | sha256sum` (quoted): its "
            f"index and shards, one after the other")
