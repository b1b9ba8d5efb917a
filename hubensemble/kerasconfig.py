"""What a Keras model file (.keras, .h5) says of itself in its config, read without Keras or
TensorFlow: `catalogue validate` reads it before any module loads, and `hub.locate` reads
it to pick a model's default cut; and whether it is a whole model file
(`weights_only_problem`), which validate and the loader say with the way on (a file cut short
is `localfiles.cut_short`'s, of its bytes)."""

from __future__ import annotations


def model_config(path) -> dict:
    """The model config a Keras model file holds: a .keras zip's config.json, or an HDF5
    (.h5) file's "model_config" attribute (Keras 3's and tf.keras' legacy format). Raises
    (any exception) when neither can be read."""
    import json
    import zipfile

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return json.loads(z.read("config.json"))
    import h5py

    with h5py.File(path, "r") as f:
        text = f.attrs["model_config"]
    return json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)


def declared_input_size(path) -> tuple[int, int] | None:
    """(height, width) in pixels when the Keras model file at `path` declares one fixed
    image size for its one input ([batch, height, width, channels], channels 1 or 3, or
    channels-first [batch, channels, height, width] as
    `savedmodel_calls.reads_channels_first` reads it, the loader's rule too: its
    InputLayer's ``batch_shape``, tf.keras' ``batch_input_shape``, or a Sequential's
    ``build_input_shape``), else None: any size, several inputs, or a file
    whose config cannot be read (loading it says why). The module can be called at that size
    only (`hub.callsig.CallSignature.of_keras` reads the same from the loaded model)."""
    from hubensemble.savedmodel_calls import reads_channels_first

    try:
        config = model_config(path).get("config", {})
        shapes = [x["config"].get("batch_shape") or x["config"].get("batch_input_shape")
                  for x in config.get("layers", ()) if x.get("class_name") == "InputLayer"]
        if not shapes:
            first = (config.get("layers") or [{}])[0].get("config", {})
            shapes = [config.get("build_input_shape") or first.get("batch_input_shape")]
        (shape,) = shapes
        _, h, w, channels = shape
        if reads_channels_first(tuple(shape)):  # the loader's rule (`hub.callsig`)
            h, w, channels = w, channels, h
    except Exception:  # noqa: BLE001 - unreadable or not one rank-4 input: nothing declared
        return None
    if isinstance(h, int) and isinstance(w, int) and channels in (1, 3):
        return h, w
    return None


def weights_only_problem(path) -> str | None:
    """Why the HDF5 file at `path` (a .h5 / .hdf5 handle) is not a Keras model file although
    it is HDF5, or None: it has no "model_config" attribute, the model Keras builds
    (`legacy_h5_format.load_model_from_hdf5`: "No model config found in the file"), and holds
    weights only, as ``model.save_weights`` writes them (Keras 3's ``layers`` / ``vars``
    groups, or tf.keras' ``layer_names`` attribute), or none at all. tf.keras 2's
    ``model.save_weights("w.h5")`` is such a file. The text names the way on; None too for a
    zip (.keras) or a file that cannot be read (loading it says why)."""
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            return None
        import h5py

        with h5py.File(path, "r") as f:
            if "model_config" in f.attrs:
                return None
            weights = "layer_names" in f.attrs or {"layers", "vars"} & set(f.keys())
    except Exception:  # noqa: BLE001 - not HDF5, unreadable: Keras' own refusal says it
        return None
    held = ("it holds weights only (what `model.save_weights` writes), no model to build "
            "them into" if weights else "it is an HDF5 file without a Keras model in it "
            "(no `model_config`)")
    return (f"{held}; save the whole model with `model.save('model.keras')` and catalogue "
            "that file, or, for a keras.applications architecture saved with "
            "include_top=False, write its keras:NAME as the handle and this file as "
            "`weights:`")
