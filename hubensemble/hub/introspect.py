"""`catalogue add`: a module's catalogue entry, read from the module itself (TensorFlow side)."""

from __future__ import annotations

import logging
import os
import re

import numpy as np

from hubensemble.catalogue import NAME_RE, ModuleSpec
from hubensemble.catalogue_here import WEIGHTS_STAGE
from hubensemble.errors import ModuleLoadError
from hubensemble.handles import (KERAS_APPLICATIONS, HandleFormError, check_weights, handle_kind,
                                 source_kind, stored_handle, stored_weights)
from hubensemble.hub.locate import locate
from hubensemble.hub.outputs import probe_images
from hubensemble.hub.cachefolder import _sidecar
from hubensemble.hub.resolvers import pinned_sha256, read_json
from hubensemble.hub.layer import held_variables
from hubensemble.hub.runtime import ModuleRuntime, SignatureModule
from hubensemble.text import absolute, escaped

log = logging.getLogger(__name__)

# The size a module of any input size is probed at to learn its output width.
_PROBE_SIZE = 64

#: The entry fields a module may declare in its metadata (`hub.writer.METADATA_FILE`, which
#: the zoo builder writes) or its zoo's catalogue: what it was trained for, which no graph
#: shows (a zoo module takes any size, but its features are tuned to its training size).
DECLARED_FIELDS = ("input_size", "native_size", "value_range", "family", "architecture",
                   "upstream", "subtree", "seed", "license", "tags")


def entry_name(handle, taken=()) -> str:
    """A catalogue name for ``handle`` (``keras:ResNet50V2`` -> "keras-resnet50v2", a path or
    URL -> its last part without suffix), made unique against ``taken`` with -2, -3, …"""
    if handle.startswith("keras:"):
        base = "keras-" + handle[len("keras:"):].lower()
    else:
        parts = [p for p in re.split(r"[/\\]", handle.split("://", 1)[-1]) if p]
        base = parts[-1] if parts else "module"
        if base.isdigit() and len(parts) > 1:  # .../MODEL/VERSION
            base = f"{parts[-2]}-{base}"
        # The archives the resolver reads (gzip, bzip2, xz) and the Keras files.
        for suffix in (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar",
                       ".keras", ".h5", ".hdf5"):
            if base.lower().endswith(suffix):
                base = base[:-len(suffix)]
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-.") or "module"
    name, i = base, 2
    while name in taken:
        name, i = f"{base}-{i}", i + 1
    assert NAME_RE.fullmatch(name)
    return name


def describe_module(handle, *, name=None, weights=None, layer=None, signature=None,
                    output_key=None, trust=False, base_dir=None) -> ModuleSpec:
    """The catalogue entry of ``handle``, introspected by loading it through the module
    runtime (resolve, sha256, safety scan, load — nothing is guessed that can be read):

    * ``output_dim``: the width of its [batch, D] embedding (from its signature or Keras
      model, else by embedding a probe batch: a black, a white and a noise image, which
      also tells a module returning class probabilities, warned of with the fix:
      `ModuleRuntime.warn_if_probabilities`);
    * ``input_size``: a fixed size its signature or model demands, a ``keras:`` architecture's
      ImageNet resolution, a keras-hub preset's converter size; None when any size goes;
    * ``value_range``: [0, 1] for TF Hub modules, ``keras:`` architectures and presets (their
      preprocessing is inside); for a .keras/.h5 model, [0, 255] when a Rescaling layer
      after its input maps pixels itself, else [0, 1];
    * ``params``: the number of values in its variables; ``sha256``: that of the pinned file
      (`resolvers.pinned_sha256`, the weights file of a ``keras:`` architecture, the archive of
      a download);
    * ``signature`` / ``output_key``: the ones used, for a module called through a signature.

    ``base_dir`` is what a relative local handle is relative to (default: the working
    folder). Raises ModuleLoadError when the module cannot be located or loaded, its way on
    in `catalogue add`'s words (`ModuleLoadError.said_as` "cli": "pass --output-key KEY, the
    embedding's key"; a catalogue's words with "(with catalogue add, pass --output-key KEY)"
    appended before).
    """
    try:
        return _describe(handle, name=name, weights=weights, layer=layer, signature=signature,
                         output_key=output_key, trust=trust, base_dir=base_dir)
    except ModuleLoadError as e:
        raise e.said_as("cli") from e


def _describe(handle, *, name, weights, layer, signature, output_key, trust, base_dir):
    base_dir = base_dir or os.getcwd()
    handle = stored_handle(handle, base_dir)
    try:  # "" was joined to base_dir, then "the weights file  does not exist"
        weights = check_weights(stored_weights(weights, base_dir))
    except HandleFormError as e:
        raise ModuleLoadError(str(e), module=name, handle=handle, stage=WEIGHTS_STAGE) from None
    kind = source_kind(handle)
    app = KERAS_APPLICATIONS.get(handle[len("keras:"):]) if kind == "keras-application" else None
    input_size = (app.input_size, app.input_size) if app else None
    files = locate(handle, name=name, weights=weights, layer=layer, signature=signature,
                   input_size=input_size, trust=trust, hint_form="cli")
    # value_range None: the module's own, read from it (a .keras model that rescales its
    # input by 1/255 takes [0, 255]): what the entry will say, so nothing to warn of.
    runtime = ModuleRuntime.load(handle, name=name, input_size=input_size, value_range=None,
                                 output_key=output_key, files=files)
    sizes = runtime.signature.sizes
    if input_size is None and len(sizes) == 1:
        input_size = sizes[0]
    if input_size is None and files.kind == "keras-hub-preset":
        input_size = _preset_image_size(files.path)
    # A probe batch: its width when the signature does not tell it, and whether the module
    # returns class probabilities (warned of, with the fix). Black, white and seeded noise:
    # unlike images, so that features summing to 1 on one by chance do not on all three.
    probe = probe_images(input_size or (_PROBE_SIZE, _PROBE_SIZE))
    try:
        out = runtime(probe).numpy()
    except ModuleLoadError:
        if runtime.output_dim is None:
            raise
        out = None  # several traced sizes and none given: its width is known, skip the probe
    if out is not None:
        _check_finite(out, runtime)
        runtime.warn_if_probabilities(out)
    dim = runtime.output_dim if runtime.output_dim is not None else int(out.shape[-1])
    value_range = runtime.value_range
    params = int(sum(int(np.prod(v.shape)) for v in held_variables(runtime)))
    fields = dict(name=name or entry_name(handle), handle=handle, sha256=_sha256(files, handle),
                  input_size=input_size, value_range=value_range, output_dim=dim,
                  params=params or None, trust=bool(trust), weights=weights, layer=layer,
                  output_key=output_key)
    if app is not None:
        fields.update(architecture=handle[len("keras:"):], upstream="imagenet1k",
                      family="generalist", tags=("keras-applications",))
    if isinstance(runtime.obj, SignatureModule):
        fields.update(signature=runtime.obj.signature_name, output_key=runtime.obj.output_key)
    else:
        fields["signature"] = signature
    if files.kind == "saved-model":
        fields = _with_declared(fields, files.path, sizes=sizes)
    return ModuleSpec(**fields)


#: What each image of the probe batch (`outputs.probe_images`) is, in its order.
_PROBE_NAMES = ("black image (every pixel 0)", "white image (every pixel 1)", "noise image")


def _check_finite(out, runtime):
    """Raises ModuleLoadError(stage="output") when the module's output `out` on the probe
    batch ([3, D]: `_PROBE_NAMES`) holds NaN or infinity, naming the images and the values:
    rank refuses such embeddings (stage output), and the entry was written as if fine."""
    bad = ~np.isfinite(out)
    if not bad.any():
        return
    kinds = " and ".join(k for k, found in (("NaN", np.isnan(out).any()),
                                            ("infinity", np.isinf(out).any())) if found)
    rows = ", ".join(f"the {_PROBE_NAMES[i]} ({int(bad[i].sum())} of {out.shape[1]} values)"
                     for i in range(len(out)) if bad[i].any())
    raise ModuleLoadError(
        f"its output holds {kinds} on {rows} of catalogue add's probe batch; rank refuses "
        "embeddings that hold NaN or infinity (stage output), so it is not added: check the "
        "module with your own images (a value it divides by or takes the logarithm of that "
        "a plain image makes 0), or catalogue a module that gives finite features",
        module=runtime.name, handle=runtime.handle, stage="output")


def declared_fields(path) -> dict:
    """The entry fields (DECLARED_FIELDS, and output_dim) the SavedModel folder `path`
    declares: its metadata file (`hub.writer.METADATA_FILE`), then, for what that lacks,
    the entry of the zoo's catalogue.yaml it sits in (a zoo built before its modules
    recorded their input size). {} for a module that declares nothing (a plain
    SavedModel). Values as JSON/YAML gave them, unchecked: `describe_module` checks them
    with ModuleSpec."""
    from hubensemble.hub.writer import METADATA_FILE

    try:
        meta = read_json(os.path.join(path, METADATA_FILE))
    except (OSError, ValueError):
        meta = {}
    found = {k: meta[k] for k in DECLARED_FIELDS + ("output_dim",)
             if isinstance(meta, dict) and k in meta}
    parent = os.path.dirname(absolute(path))
    zoo_catalogue = os.path.join(parent, "catalogue.yaml")
    if os.path.isfile(os.path.join(parent, "zoo.json")) and os.path.isfile(zoo_catalogue):
        from hubensemble.catalogue import load_catalogue
        from hubensemble.errors import CatalogueError

        try:
            entries = load_catalogue(zoo_catalogue)
        except CatalogueError:
            entries = []
        for spec in entries:
            if os.path.realpath(spec.handle) == os.path.realpath(path):
                known = spec.to_json()
                found = {**{k: known[k] for k in DECLARED_FIELDS + ("output_dim",)
                            if known.get(k) not in (None, [], ())}, **found}
    return found


def _with_declared(fields, path, *, sizes) -> dict:
    """`fields` with what the module at `path` declares (`declared_fields`) added: the zoo's
    modules were added without their input size (ranked at the profile's 64 px, not their
    32) and value range. A fixed size its signature demands stays (`sizes`: the loaded
    module's traced (height, width) sizes, () for any size). A declared input_size of a
    module that takes any size is written as native_size, said as a warning, unless it
    declares that too or is a zoo's (`catalogue_sizes.zoo_module`, whose input_size is by design):
    input_size is the size a module needs, native_size the one it was pre-trained at
    (docs/catalogue.md, Fields), and the real ImageNet modules' declared [224, 224] fixed
    rank and fine-tuning at 224 px (12x the pixels of 64 px). A declared value that
    ModuleSpec refuses is left out with a warning, as the module itself still loads."""
    from hubensemble.catalogue_sizes import zoo_module

    declared = declared_fields(path)
    said = declared.pop("output_dim", None)
    if said is not None and said != fields["output_dim"]:  # as rank warns of an entry's
        log.warning("%s declares output_dim %s, its embeddings are %d-d; writing the measured "
                    "%d", path, said, fields["output_dim"], fields["output_dim"])
    if len(sizes) == 1:
        declared.pop("input_size", None)
    elif not sizes and _size_of(fields, declared.get("input_size")) and not zoo_module(path):
        size = declared.pop("input_size")  # (one ModuleSpec refuses is refused as input_size)
        kept = "native_size" in declared  # its own: the input_size is left out
        declared.setdefault("native_size", size)
        log.warning("%s declares input_size %s, but it takes any size: %s (the size it was "
                    "pre-trained at, which the probe sweep embeds at); rank and fine-tuning "
                    "use the task's resolution. Set input_size on the entry to fix them at "
                    "that size", escaped(path), size, "left out for its declared native_size"
                    if kept else "written as native_size")
    for key, value in declared.items():
        try:  # ModuleSpec checks it and canonicalises it ([0, 1] -> "0,1", lists -> tuples)
            fields[key] = getattr(ModuleSpec(**{**fields, key: value}), key)
        except (TypeError, ValueError) as e:
            log.warning("%s: leaving out its declared %s (%s)", escaped(path), key, e)
    return fields


def _size_of(fields, value) -> bool:
    """Whether `value` is a size ModuleSpec takes (a pair of positive integers)."""
    try:
        return value is not None and ModuleSpec(**{**fields, "native_size": value}) is not None
    except (TypeError, ValueError):
        return False


def _preset_image_size(path):
    try:
        size = read_json(os.path.join(path, "image_converter.json"))["config"].get("image_size")
    except (OSError, ValueError, KeyError):
        return None
    return (int(size[0]), int(size[1])) if size else None


def _sha256(files, handle):
    if handle_kind(handle) in ("tfhub", "kaggle", "http", "gcs") and files.kind == "saved-model":
        try:  # a downloaded archive: its recorded checksum (what the resolver verifies)
            return read_json(_sidecar(files.path))["archive_sha256"]
        except (OSError, KeyError, ValueError):
            pass
    from hubensemble.hub.resolvers import file_sha256

    if files.kind == "keras-application":
        return file_sha256(files.path)
    return pinned_sha256(files.path)
