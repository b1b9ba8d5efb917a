"""Files the benchmark scripts write and measure, shared so that each is written one way:

    from benchfiles import folder_mb, tiny_catalogue   # a sibling of the scripts

* `tiny_catalogue(root, sides)`: a catalogue of one-conv modules (8 filters, 3x3, ReLU,
  global average pooling: 8-d embeddings), one per entry of `sides`, seeded by its index, so
  a stage's cost is hubensemble's own, not a backbone's;
* `folder_mb(path)`: the bytes of the regular files under a folder (or of one file), in MB.

TensorFlow and Keras are imported inside `tiny_catalogue` only: `--help` answers at once.
"""

import os


def tiny_catalogue(root, sides) -> str:
    """Writes one one-conv hub module per entry of `sides` (ints, pixels: the module's
    input_size is [side, side]) under `root` (m0, m1, …; Keras' seed = its index) and their
    catalogue, ROOT/catalogue.yaml; returns the catalogue's path."""
    import keras

    from hubensemble.hub import write_hub_module

    rows = []
    for i, side in enumerate(sides):
        keras.utils.set_random_seed(i)
        inp = keras.Input((None, None, 3))
        x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
        x = keras.layers.GlobalAveragePooling2D()(x)
        path = write_hub_module(keras.Model(inp, x), os.path.join(root, f"m{i}"))
        rows.append(f"- name: m{i}\n  handle: {path}\n  input_size: [{side}, {side}]\n"
                    f"  output_dim: 8\n")
    path = os.path.join(root, "catalogue.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write("modules:\n" + "".join(rows))
    return path


def folder_mb(path) -> float:
    """Bytes of the regular files under `path` (a folder; or a file: its size), in MB
    (2**20 bytes): what it costs on disk. A file that goes while it is walked is skipped."""
    if os.path.isfile(path):
        return os.path.getsize(path) / 2**20
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                pass
    return total / 2**20
