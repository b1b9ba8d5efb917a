"""Whether a catalogue entry's input_size fits its module, told from a local module's files
without TensorFlow: a Keras model file's Input (`kerasconfig.declared_input_size`) and a
SavedModel's traced call (`savedmodel_calls.traced_input`, its saved_model.pb read once).

`catalogue validate` says, by the field's `file:line` (`size_problems`), an entry without
input_size whose module takes one fixed size, or with a size the module cannot take: rank
refuses both as the module loads (`hub.ModuleRuntime.from_spec`, `check_input_size`, stage
"input"), after TensorFlow's import, where validate said "ok". And it warns (`size_warnings`)
of an input_size on a SavedModel that takes any size: input_size is "the size the module
needs" (docs/catalogue.md, Fields), so it fixes rank's embeddings and fine-tuning at that
size, where the size a module was pre-trained at is `native_size`. A value an entry took from
`defaults:` is said at the `defaults:` line with the entry it applies to
(`pathnotes.from_defaults`).
"""

from __future__ import annotations

import os

from hubensemble.catalogue_fields import shown
from hubensemble.handles import handle_kind, local_source
from hubensemble.handlewarnings import field_source
from hubensemble.pathnotes import from_defaults
from hubensemble.sizewords import listed_sizes, missing_input_size


def module_sizes(spec) -> tuple[tuple[tuple[int, int], ...], str, bool] | None:
    """(sizes, where, keras) of the module of catalogue entry `spec` (a ModuleSpec-like record)
    when its handle is a local Keras model file or SavedModel folder whose sizes can be told
    without TensorFlow: `sizes` the (height, width) pairs it takes, () for any size; `where`
    what says so, for messages ("its Input's shape in m.keras", "its __call__'s traces in
    saved_model.pb"); `keras` whether it is a Keras file. None for any other handle, or when
    the files do not tell (the loader says why). A Keras file's any size is not told apart
    from an unreadable config: a Keras file gives one fixed size or None."""
    from hubensemble.kerasconfig import declared_input_size
    from hubensemble.savedmodel_calls import traced_input

    if not isinstance(spec.handle, str) or handle_kind(spec.handle) != "local":
        return None
    kind = local_source(spec.handle)
    if kind == "keras-file" and os.path.isfile(spec.handle):
        size = declared_input_size(spec.handle)
        where = f"its Input's shape in {os.path.basename(spec.handle)}"
        return ((tuple(size),), where, True) if size is not None else None
    if kind != "saved-model":
        return None
    found = traced_input(spec.handle, getattr(spec, "signature", None))
    if found is None:
        return None
    sizes, name = found
    where = ("its __call__'s traces in saved_model.pb" if name is None
             else f"its signature {name!r}'s input in saved_model.pb")
    return sizes, where, False


#: `hub.writer.METADATA_FILE`, read here without that module's TensorFlow import.
_METADATA_FILE = os.path.join("assets", "hubensemble_module.json")


def zoo_module(path) -> bool:
    """Whether the module folder `path` is a hubensemble zoo's: its metadata names its zoo
    (`zoo.workers` writes "zoo", kept where the folder is copied to), or its parent holds
    zoo.json and the zoo's catalogue.yaml (a zoo built before, as
    `hub.introspect.declared_fields` reads it). The zoo records its modules' training size
    as input_size by design, though they take any size (docs/zoo.md: `HubLayer` resizes to
    it, rank embeds them at their 32 px), so that size is neither warned of
    (`size_warnings`) nor moved to native_size by `catalogue add`."""
    from hubensemble.fileio import read_json

    try:
        if isinstance(read_json(os.path.join(path, _METADATA_FILE)).get("zoo"), str):
            return True
    except (OSError, ValueError, AttributeError):
        pass
    parent = os.path.dirname(os.path.abspath(os.fspath(path)))
    return all(os.path.isfile(os.path.join(parent, name))
               for name in ("zoo.json", "catalogue.yaml"))


def size_fits(given, sizes) -> bool:
    """Whether a module that takes the (height, width) int pairs `sizes` (() for any size) can
    take images of size `given` ((height, width), ints; None, unknown, fits no fixed size):
    the one rule of `catalogue validate`
    (`size_problem`), the loader (`hub.ModuleRuntime.check_input_size`) and HubLayer's call."""
    return not sizes or (None not in tuple(given)
                         and tuple(int(v) for v in given) in {tuple(s) for s in sizes})


def size_refusal(given, sizes, fix: str, *, where: str = "", keras: bool = False) -> str:
    """The words of `size_fits` refusing `given`: "the module takes only [96, 96] images
    (WHERE), not [64, 64]; FIX" — `where` what says so ("its __call__'s traces in
    saved_model.pb"; "" says nothing), `keras` a Keras model ("the model's input" then),
    `fix` the caller's way on, naming the size to give: `size_fix` for a catalogue entry,
    HubLayer's input_size= argument for a layer of its own. Said by the loader, HubLayer and
    `catalogue validate` alike (they said it in two sets of words)."""
    subject = "the model's input" if keras else "the module"
    return (f"{subject} takes only {listed_sizes(sizes)} images{f' ({where})' if where else ''}"
            f", not {[v if v is None else int(v) for v in given]}; {fix}")


def size_fix(sizes, entry: str = "this entry") -> str:
    """"write `input_size: [96, 96]` in ENTRY": the catalogue's fix of `size_refusal`, the
    first of `sizes` (the (height, width) pairs the module takes)."""
    return f"write `input_size: {[int(v) for v in sizes[0]]}` in {entry}"


def size_problem(spec) -> str | None:
    """"problem; fix" when entry `spec`'s module (`module_sizes`) takes only fixed sizes and
    its input_size is missing or another size, else None. Without input_size rank embeds it
    at the task's resolution, which it cannot take (refused at its first embedding before
    2026-12-06, at load since); with another size rank refuses it as it loads ("set
    input_size: [96, 96]"). The size is not taken from the module by validate: it also sets
    the resolution rank embeds and fine-tunes at, which the entry states (docs/catalogue.md,
    "Modules that are not feature vectors")."""
    found = module_sizes(spec)
    if found is None or not found[0]:
        return None
    sizes, where, keras = found
    if spec.input_size is None:  # the loader's words too (hub.ModuleRuntime.from_spec)
        return missing_input_size(sizes, where, keras=keras)
    if size_fits(spec.input_size, sizes):
        return None
    taken = from_defaults(spec, "input_size")
    fix = ("rank refuses it as it loads; "
           + size_fix(sizes, "this entry" if taken is None else f"entry {shown(spec.name)} "
                      "(its own value overrides `defaults:`)"))
    return (taken or "") + size_refusal(spec.input_size, sizes, fix, where=where, keras=keras)


def size_problems(entries) -> list[str]:
    """"FILE:LINE: field 'input_size': problem; fix" (`size_problem`) for each entry of
    `entries` (ModuleSpecs, and `catalogue.PartialEntry`s whose input_size was not refused),
    at the line of its input_size (the `defaults:` line for a value taken from there, naming
    the entry), else of the entry; `catalogue validate`'s errors, in the entries' order."""
    return [f"{field_source(s, 'input_size')}: field 'input_size': {problem}" for s in entries
            if "input_size" not in getattr(s, "refused", ()) and (problem := size_problem(s))]


def default_side() -> tuple[int, str]:
    """(side in px, what it is) of the images rank and fine-tuning use for an entry without
    input_size under the default --profile (`options.default("profile")`, cpu): the
    BiT-HyperRule's crop (`hyperrule.resolution`: 128 px for images under 96x96, else 480)
    capped by the profile's resolution_cap (cpu: 64, so 64 px whatever the data set). When
    the profile is uncapped or its cap lies between those crops, the side of small images
    (128 px), said so. `catalogue validate` knows no data set: `size_warnings` said "12.2x
    the pixels of 64 px" without saying what 64 px was."""
    from hubensemble.hyperrule import LARGE_RESOLUTION, PROFILES, SMALL_RESOLUTION
    from hubensemble.options import default

    name = default("profile")
    cap = PROFILES[name].resolution_cap
    small, large = SMALL_RESOLUTION[1], LARGE_RESOLUTION[1]
    rule = f"the BiT-HyperRule's {small} px for images under 96x96, else {large} px"
    if cap is not None and cap <= small:
        return cap, (f"the side every data set's images are resized to without input_size "
                     f"under the default --profile {name}: {rule}, capped at {cap}")
    return small, (f"the side images under 96x96 are resized to without input_size under "
                   f"the default --profile {name}: {rule}"
                   + (f", capped at {cap}" if cap is not None else ""))


def size_warnings(entries) -> list[str]:
    """"warning: FILE:LINE: field 'input_size': …" for each entry of `entries` with an
    input_size (and no native_size) whose SavedModel takes any size (`module_sizes`): the
    entry fixes rank and fine-tuning at that size, where the task's resolution would be used
    (224 px is 12× the pixels of `default_side`'s 64 px); the size a module was pre-trained
    at is native_size
    (docs/catalogue.md, Fields). A warning, not an error: the module takes the size, and a
    user may mean it. It says the trade both ways (a new user, stop 70, wrote native_size as
    told and rank's kNN at 64 px was 0.795 against 0.887 at 224 px, in a fifth of the time):
    the cost and the accuracy, neither a figure of the user's data. Not of a zoo's module
    (`zoo_module`), whose input_size is by design. `catalogue add` no longer writes such an
    entry from a module's declared input_size (`hub.introspect`)."""
    notes = []
    for spec in entries:
        if spec.input_size is None or getattr(spec, "native_size", None) is not None or \
                "input_size" in getattr(spec, "refused", ()):
            continue
        found = module_sizes(spec)
        if found is None or found[0] != () or zoo_module(spec.handle):
            continue
        size = [int(v) for v in spec.input_size]
        side, where = default_side()
        ratio = size[0] * size[1] / (side * side)
        notes.append(
            f"warning: {field_source(spec, 'input_size')}: field 'input_size': "
            f"{from_defaults(spec, 'input_size') or ''}{size}, but the module takes any size "
            f"({found[1]}): input_size fixes rank's embeddings and fine-tuning at "
            f"{size[0]}x{size[1]} px, where the task's resolution is used without it. A "
            f"trade either way: at {size[0]}x{size[1]} px each image costs {ratio:.3g}x the "
            f"pixels of {side} px ({where}; rank and fine-tuning take that much longer), and "
            f"a module pre-trained at {size[0]} px often embeds better there (rank's kNN at "
            f"{side} px can be lower); keep input_size for that accuracy, or, for speed, write "
            f"`native_size: {size}` instead (rank and fine-tuning at the task's resolution, "
            "the probe sweep at native_size) or leave input_size out")
    return notes
