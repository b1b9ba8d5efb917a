"""The parts of a sweep's memory note (`memory._note`'s (what, module sizes, batch,
profile)): fine-tuning for any part of the sweep but probe, and for a probe part an embedding
of the frozen module at its own size (`hyperrule.probe_side`) in the profile's training
batch. One rule for tune's note (run.json's modules) and fit's before TensorFlow (catalogue
entries, no data loaded yet). TensorFlow-free."""

from __future__ import annotations

from hubensemble.hyperrule import probe_side

#: `memory._note`'s name of a probe part (an inference in the profile's training batch).
PROBE_WHAT = "tune's probes embed"

#: The side a probe of a module without an input or native size embeds images under 96 px
#: at (`hyperrule.eval_resolution` under the paper profile: 128; 480 for larger images):
#: the least it can be, counted when the data's size is not known yet (fit before loading).
SMALLEST_PROBE_SIDE = probe_side(None, None, (1, 1))


def sweep_parts(sweep: str, train_what: str, sizes: list, entries: list, profile,
                image_hw=None) -> tuple[list, list]:
    """(`memory._note`'s parts, the names counted at `SMALLEST_PROBE_SIDE`) of sweep `sweep`
    (a name, "+"-joined parts) of modules whose fine-tuning input sizes are `sizes` and whose
    entries are `entries` ((name, input_size, native_size) each, sizes (height, width) or
    None): (`train_what`, sizes, None, profile) for any part but probe, and (PROBE_WHAT,
    [(side, side)], None, profile) for a probe part, each side `hyperrule.probe_side` at
    images of `image_hw` ((height, width)); when `image_hw` is None (not known) a module with
    neither size is counted at the least side a probe embeds at, and named."""
    kinds = str(sweep).split("+")
    parts = [(train_what, sizes, None, profile)] if any(k != "probe" for k in kinds) else []
    unknown = []
    if "probe" in kinds:
        sides = []
        for name, input_size, native_size in entries:
            if image_hw is None and input_size is None and native_size is None:
                unknown.append(name)
            sides.append(probe_side(input_size, native_size, image_hw or (1, 1)))
        parts.append((PROBE_WHAT, [(s, s) for s in sides], None, profile))
    return parts, unknown


def with_unknown_sides(note, unknown: list):
    """`note` (a memoryroom.Note or None) with, after its probe part's size when that is
    `SMALLEST_PROBE_SIDE`, what counted the modules `unknown` (names) there and why: " (a, b:
    no input or native size in the catalogue, so their probes are counted at 128 px, …)";
    `note` itself when none, or when its probe part is not said."""
    from hubensemble.memoryroom import Note

    side = f"{PROBE_WHAT} images of {SMALLEST_PROBE_SIDE}x{SMALLEST_PROBE_SIDE} px"
    if not note or not unknown or side not in note:
        return note
    words = (f" ({', '.join(map(str, unknown))}: no input or native size in the catalogue, "
             f"so {'its' if len(unknown) == 1 else 'their'} probes are counted at "
             f"{SMALLEST_PROBE_SIDE} px, the least, that of images under 96 px; images of 96 "
             "px or more embed at 480, which fit knows once it has loaded the data)")
    return Note(note.replace(side, side + words, 1), note.ratio, note.hard, note.address,
                note.room)
