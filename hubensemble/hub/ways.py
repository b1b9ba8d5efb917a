"""The ways on of a module's refusals that more than one place says, as `saidwords.said` parts
(`ModuleLoadError.way`): each caller is told them in its own words, a catalogue's, a call's
or `catalogue add`'s."""

from __future__ import annotations

from hubensemble.saidwords import ON_ENTRY, SET, Meta, Say, Words

#: A dict output without the embedding's key (`callsig.CallSignature.output_spec`, the
#: runtime's call): "; set output_key on its catalogue entry to the embedding's key".
OUTPUT_KEY_WAY = ("; ", SET, Say("output_key", Meta("KEY"), yaml="output_key"), ON_ENTRY,
                  Words(" to the embedding's key", ", the embedding's key",
                        ", the embedding's key"))

#: The kinds of module (`locate.ModuleFiles.kind`) that take ``layer``: .keras/.h5 files
#: (`handles.source_problems` owns the rule: "only .keras and .h5 model files take layer").
#: A way on offers ``layer`` only to these: a SavedModel of one output was told to name a
#: layer in --layer, which `catalogue add` then refused (stop 70).
LAYER_KINDS = ("keras-file",)

#: A pin the module's bytes do not match (`locate`, `resolvers`): the catalogue's, or the
#: sha256= a call passes.
NEW_SHA256 = Words("update the catalogue's sha256", "pass its new sha256=")

#: A call the module refuses (`ModuleRuntime.__call__`): the fields that say what it is fed.
#: `catalogue add` has no flag for them: it is told the catalogue's words.
TO_MATCH_WAY = (" (", Words("set input_size / input_dtype on its catalogue entry",
                            "pass input_size=(HEIGHT, WIDTH) or input_dtype=DTYPE"),
                " to match)")


def pooled_way(kind: str, dict_output: bool) -> tuple:
    """The said parts of the way to a module's pooled output, by what chooses it: a .keras/.h5
    file's (`kind` "keras-file") `layer:` ("set `layer:` on its catalogue entry to its pooled
    output"), a dict output's (`dict_output`) `output_key:`; for another, which no field
    cuts, "export it cut at its pooled output". Both fields were offered to every module
    ("output_key: or layer: on its catalogue entry"), a SavedModel of one output told a
    field it refuses (`callsig.CallSignature.output_spec`) and Python callers a catalogue's
    words (`handles.source_problems` owns which kind takes which field)."""
    if kind in LAYER_KINDS:
        field, meta = "layer", "NAME"
    elif dict_output:
        field, meta = "output_key", "KEY"
    else:
        return ("export it cut at its pooled output",)
    return (SET, Say(field, Meta(meta), yaml=f"`{field}:`"), ON_ENTRY,
            Words(" to its pooled output", ", its pooled output", ", its pooled output"))
