"""The words for a catalogue entry without input_size whose module takes only fixed image
sizes: `catalogue validate` says them by the field's line (`catalogue_sizes.size_problem`,
from the module's files) and the loader by the entry's (`hub.ModuleRuntime.from_spec`, from
the loaded module), one set of words for the one rule. Pure and TensorFlow-free, a leaf of the
import graph."""

from __future__ import annotations


def listed_sizes(sizes) -> str:
    """The (height, width) int pairs `sizes` as "[96, 80]" or "[96, 80] or [64, 64]"."""
    return " or ".join(str([int(v) for v in size]) for size in sizes)


def missing_input_size(sizes, where: str, *, keras: bool) -> str:
    """"missing: the module takes only [20, 20] images (WHERE), and an entry without
    input_size is embedded at the task's resolution; write `input_size: [20, 20]` in this
    entry (`catalogue add` writes it)", said after "field 'input_size'" and where the entry
    is. `sizes`: the (height, width) int pairs (pixels) the module takes, at least one, the
    first the one to write; `where`: what says so ("its Input's shape in m.keras"); `keras`:
    a Keras model, "the model's input" then. The size is not taken from the module: it also
    sets the resolution rank embeds and fine-tunes at, which the entry states
    (docs/catalogue.md, "Modules that are not feature vectors")."""
    subject = "the model's input" if keras else "the module"
    first = [int(v) for v in sizes[0]]
    return (f"missing: {subject} takes only {listed_sizes(sizes)} images ({where}), and an "
            "entry without input_size is embedded at the task's resolution; write "
            f"`input_size: {first}` in this entry (`catalogue add` writes it)")
