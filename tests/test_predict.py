"""predict's work before TensorFlow: what it does when no file is left for the model. (Its
predictions, bars and refusals are tested with a real export in test_export.py and
test_decode_policy.py.)"""

import json

import pytest

from hubensemble.errors import HubensembleError, RunError
from hubensemble.formats import EXPORT_FORMAT, metadata_path
from hubensemble.prediction import predict


def unloadable_export(folder, **more):
    """An export folder that passes predict's checks before TensorFlow (a saved_model.pb,
    export metadata, plus `more` keys) but that TensorFlow cannot load: its saved_model.pb
    parses, with a serving_default signature and an object graph of no objects (no root:
    TensorFlow 2.21's load raises IndexError), and its variables/ holds a variables.index
    that is no index beside an empty shard (the files are there, as the checks before
    TensorFlow read them: `formats.check_saved_model_files`; a saved_model.pb that does not
    parse is refused there since 2026-12-08)."""
    entry = b"\x0a\x0fserving_default\x12\x00"  # signature_def {key: serving_default}
    meta = b"\x2a" + bytes([len(entry)]) + entry + b"\x3a\x00"  # + object_graph_def {}
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"\x12" + bytes([len(meta)]) + meta)
    (folder / "variables" / "variables.index").write_bytes(b"not an index")
    (folder / "variables" / "variables.data-00000-of-00001").write_bytes(b"")
    (folder / "assets").mkdir()
    with open(metadata_path(folder), "w") as f:
        json.dump({"format": EXPORT_FORMAT, "class_names": ["a", "b"], "num_classes": 2,
                   **more}, f)
    return folder


def test_an_export_that_does_not_load_is_told_the_command_naming_its_run(tmp_path,
                                                                         in_process):
    """predict on an export TensorFlow cannot load (variables/ gone, a damaged file) said
    "…could not be loaded as a SavedModel (…); export it again", naming no command, though
    the metadata names the run; a damaged metadata file was told `hubensemble export --run
    RUN --out FOLDER`, FOLDER the folder named. Each gives the command in the caller's
    words."""
    run = tmp_path / "my run"
    model = unloadable_export(tmp_path / "export", run={"path": str(run)})
    image = tmp_path / "x.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)  # a PNG by its first bytes
    code, out, err = in_process("predict", "--model", model, image)
    assert code != 0 and out == "", out
    assert f"{model} could not be loaded as a SavedModel (" in err, err
    assert err.rstrip().endswith(f"; export it again with `hubensemble export --run "
                                 f"'{run}' --out {model}`"), err
    with pytest.raises(RunError) as e:
        predict(model, [image], progress=False)
    assert str(e.value).endswith(f"; export it again with export_ensemble(run_dir="
                                 f"{str(run)!r}, out_dir={str(model)!r})"), e.value
    # Its saved_model.pb gone: refused before TensorFlow, with the same command (it said
    # "pass the folder `hubensemble export` wrote", which it is).
    (model / "saved_model.pb").rename(tmp_path / "kept.pb")
    code, out, err = in_process("predict", "--model", model, image)
    assert code != 0 and out == "", out
    assert err.rstrip().endswith(f"{model} is not a SavedModel folder (no saved_model.pb); "
                                 f"export it again with `hubensemble export --run '{run}' "
                                 f"--out {model}`"), err
    (tmp_path / "kept.pb").rename(model / "saved_model.pb")
    with open(metadata_path(model), "w") as f:
        f.write('{"class_names": ["a"')
    code, out, err = in_process("predict", "--model", model, image)
    assert code != 0 and out == "", out
    assert f"(`hubensemble export --run RUN --out {model}`)" in err, err
    with pytest.raises(HubensembleError) as e:
        predict(model, [image], progress=False)
    assert str(e.value).endswith(f"(export_ensemble(run_dir=RUN, out_dir={str(model)!r}))")


def test_the_model_is_not_loaded_when_every_file_was_refused_before_tensorflow(
        tmp_path, in_process):
    """`predict --skip-unreadable` loaded the SavedModel (~3 s) when each file had been
    refused by its first bytes, before TensorFlow: nothing was left for it. Now it is not
    loaded (an export TensorFlow cannot load is not refused then), and the command says so;
    its output, closing count and exit status are those it had after a load."""
    model = unloadable_export(tmp_path / "export")
    (tmp_path / "notes.jpg").write_text("not a picture\n")
    (tmp_path / "empty.png").write_bytes(b"")
    files = [tmp_path / "notes.jpg", tmp_path / "empty.png"]
    code, out, err = in_process("predict", "--model", model, *files, "--skip-unreadable",
                                "--json")
    assert code == 1 and "could not be loaded" not in err, err
    assert [sorted(r) for r in json.loads(out)] == [["error", "path"]] * 2, out
    assert f"predict: no file is left to predict, so {model} was not loaded\n" in err, err
    assert err.rstrip().endswith("predicted 0 of 2 files; 2 skipped (unreadable)"), err
    code, out, err = in_process("predict", "--model", model, *files, "--skip-unreadable", "-q")
    assert code == 1 and err == "", err  # -q: the predictions only
    assert out.count("  error: ") == 2, out
    # From Python, as the command: the files' errors, the model not loaded; with no file
    # given, too.
    results = predict(model, files, skip_unreadable=True, progress=False)
    assert [r["path"] for r in results] == [str(p) for p in files] and results.skipped == 2
    assert predict(model, [], progress=False) == []


def test_nothing_to_predict_quotes_an_example_path_that_reads_as_two(tmp_path, in_process):
    """Every file under the folders unreadable stops predict before TensorFlow, with one file
    as an example: a path holding ", " is quoted (`text.paths_shown`), as the data summary's
    examples are; "e.g. d/a, b.png: an empty file" read as two files."""
    model = unloadable_export(tmp_path / "export")
    (tmp_path / "d").mkdir()
    # An image's first bytes, refused by its header (a file that is no image is ignored).
    (tmp_path / "d" / "a, b.tif").write_bytes(b"II*\x00" + b"\0" * 20)
    code, out, err = in_process("predict", "--model", model, tmp_path / "d")
    assert code != 0 and out == "", out
    assert (f"error: nothing to predict: 1 file under the folders could not be read, e.g. "
            f"{str(tmp_path / 'd' / 'a, b.tif')!r}: a TIFF file; ") in err, err


def test_a_dash_is_said_to_be_no_way_to_give_stdin(tmp_path, in_process, monkeypatch):
    """`curl URL | hubensemble predict --model M -` said "-: cannot read it: No such file or
    directory (relative paths are relative to …)", as of a typo. It says predict reads no
    standard input, before TensorFlow; a file named "-" is still read as a file."""
    model = unloadable_export(tmp_path / "export")
    monkeypatch.chdir(tmp_path)
    code, out, err = in_process("predict", "--model", model, "-")
    assert code == 2 and out == "", out
    assert err == ("hubensemble: error: -: no such file (standard input? predict reads image "
                   "files, not stdin: save the image to a file and pass its path); check the "
                   "path (or pass --skip-unreadable)\n"), err
    (tmp_path / "-").write_bytes(b"")  # a file of that name: its own reason
    results = predict(model, ["-"], skip_unreadable=True, progress=False)
    assert results == [{"path": "-", "error": "an empty file (0 bytes)"}]


def test_standard_input_named_as_a_file_gets_the_dashs_advice(tmp_path):
    """`curl URL | hubensemble predict --model M /dev/stdin` (and /dev/fd/0,
    /proc/self/fd/0) was told "not a regular file (a socket, pipe or device); fix or remove
    the file", where `-` gets the stdin advice. It says standard input, and to save the image
    to a file, before TensorFlow; a FIFO of the user's keeps the generic words, and so does
    /dev/null named while it is standard input (a device, not stdin's pipe)."""
    import os
    import sys

    from conftest import bounded_by_cpu

    model = unloadable_export(tmp_path / "export")
    os.mkfifo(tmp_path / "fifo")

    def predict_cli(path, stdin=None):
        out = bounded_by_cpu([sys.executable, "-m", "hubensemble", "predict", "--model",
                              str(model), path], cpu=60, capture_output=True, text=True,
                             input=None if stdin else "not an image\n", stdin=stdin)
        return out.returncode, out.stderr

    for name in ("/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"):
        assert predict_cli(name) == (2, (
            f"hubensemble: error: {name}: standard input, not a regular file: predict reads "
            "image files, not stdin; save the image to a file and pass its path (or pass "
            "--skip-unreadable)\n")), name
    fifo = str(tmp_path / "fifo")
    assert predict_cli(fifo) == (2, f"hubensemble: error: {fifo}: not a regular file (a "
                                    "socket, pipe or device); fix or remove the file (or "
                                    "pass --skip-unreadable)\n")
    with open(os.devnull, "rb") as null:
        code, err = predict_cli(os.devnull, stdin=null)
    assert code == 2 and "not a regular file (a socket, pipe or device)" in err, err


def test_a_batch_size_that_is_not_a_whole_number_above_0_is_refused(tmp_path):
    """predict(batch_size=0), -3 and 2.5 ran as 1, 1 and 2 without a word (no flag sets it,
    so the options table, which refuses evaluate_model(batch_size=0), never saw it). Refused
    before the model loads, as evaluate_model's is."""
    import pytest
    from PIL import Image

    from hubensemble.errors import HubensembleError

    model = unloadable_export(tmp_path / "export")
    Image.new("RGB", (4, 4)).save(tmp_path / "one.png")
    for bad in (0, -3, 2.5, True, "8", None):
        with pytest.raises(HubensembleError) as e:
            predict(model, [tmp_path / "one.png"], batch_size=bad, progress=False)
        assert str(e.value) == f"batch_size must be an integer >= 1, got {bad!r}", e.value


def test_a_link_loop_named_is_said_to_be_a_loop_not_a_broken_link(tmp_path, in_process):
    """A link to itself, or one of a pair that point at each other, was "a broken link (to
    selfloop)": a target that exists (the link itself). The OS says ELOOP; so does predict,
    before TensorFlow. A link to nothing is still a broken link."""
    import os

    model = unloadable_export(tmp_path / "export")
    os.symlink("selfloop", tmp_path / "selfloop")
    os.symlink("pong", tmp_path / "ping")
    os.symlink("ping", tmp_path / "pong")
    os.symlink("gone.png", tmp_path / "dangling.png")
    named = [tmp_path / "selfloop", tmp_path / "ping", tmp_path / "dangling.png"]
    results = predict(model, named, skip_unreadable=True, progress=False)
    loop = ": following it goes round a circle of links, never reaching a file"
    assert [r["error"] for r in results] == [
        "a link loop (to selfloop)" + loop, "a link loop (to pong)" + loop,
        "a broken link (to gone.png)"], results
    code, out, err = in_process("predict", "--model", model, tmp_path / "ping")
    assert code == 2 and err == (f"hubensemble: error: {tmp_path / 'ping'}: a link loop (to "
                                 f"pong){loop}; fix or remove the file (or pass "
                                 "--skip-unreadable)\n"), err


def test_files_that_are_no_image_under_a_folder_are_ignored_and_counted(tmp_path, in_process):
    """A new user's image folder held a README, notes, a labels.csv and a .json beside the
    images: predict skipped each as unreadable ("predicted 9 of 14 files; 5 skipped"), exit
    1, where the folder loader does not read a file that is no image by its first bytes
    (`data.folder._image_beside`). Under a folder such a file is ignored and counted (in
    the command's closing count and `Predictions.not_images`), in every way predict is
    called; a damaged image stays unreadable, and a file named stays refused."""
    model = unloadable_export(tmp_path / "export")
    imgs = tmp_path / "imgs"
    (imgs / "sub").mkdir(parents=True)
    (imgs / "README.md").write_text("# my photos\n")
    (imgs / "notes.txt").write_text("taken in May\n")
    (imgs / "labels.csv").write_text("file,label\n")
    (imgs / "sub" / "meta.json").write_text("{}\n")
    (imgs / "sub" / "bad.tif").write_bytes(b"II*\x00" + b"\0" * 20)  # an image's first bytes
    (imgs / "sub" / "empty.PNG").write_bytes(b"")  # named as an image: read, unreadable
    not_images = [str(imgs / n) for n in ("README.md", "labels.csv", "notes.txt",
                                          "sub/meta.json")]
    results = predict(model, [imgs], skip_unreadable=True, progress=False)
    assert [r["path"] for r in results] == [str(imgs / "sub" / "bad.tif"),
                                            str(imgs / "sub" / "empty.PNG")], results
    assert results[0]["error"].startswith("a TIFF file;") and results.skipped == 2
    assert results[1]["error"] == "an empty file (0 bytes)", results[1]
    assert results.not_images == not_images and results.ignored == []
    said = ("predicted 0 of 2 files; 2 skipped (unreadable); 4 ignored: not images by name or "
            "first bytes (README.md, labels.csv, notes.txt, …)")
    assert results.tally() == said, results.tally()
    for flags in ((), ("--json",)):
        code, out, err = in_process("predict", "--model", model, imgs, "--skip-unreadable",
                                    *flags)
        assert code == 1 and err.rstrip().endswith(said), err
        assert "README" not in out and "bad.tif" in out, out
    # A folder holding no image: refused before TensorFlow, what it holds said.
    (imgs / "sub" / "bad.tif").unlink()
    (imgs / "sub" / "empty.PNG").unlink()
    code, out, err = in_process("predict", "--model", model, imgs)
    assert code == 2 and out == "", out
    assert err.endswith(f"\nhubensemble: error: {imgs}: a folder with no image in it (4 "
                        "files that are not images by name or first bytes, e.g. README.md, "
                        "labels.csv, notes.txt, …); leave the folder out or put images in it "
                        "(or pass --skip-unreadable)\n"), err
    # A file that is no image named on the command line is refused, as before.
    code, out, err = in_process("predict", "--model", model, imgs / "README.md")
    assert code == 2 and err.startswith(f"hubensemble: error: {imgs / 'README.md'}: "), err


def test_an_export_without_serve_bytes_is_told_the_command_naming_its_run(tmp_path):
    """predict on an export without serve_bytes said "export it again with `hubensemble
    export`" (`export_ensemble()` from Python), naming no run though its metadata names it."""
    import tensorflow as tf

    model, run = tmp_path / "export", tmp_path / "run"
    module = tf.Module()
    module.serve = tf.function(lambda images: {"probabilities": tf.nn.softmax(images[:, 0, 0, :2])},
                               input_signature=[tf.TensorSpec([None, 2, 2, 3], tf.float32)])
    tf.saved_model.save(module, str(model), signatures={"serving_default": module.serve})
    with open(metadata_path(model), "w") as f:
        json.dump({"format": EXPORT_FORMAT, "class_names": ["a", "b"], "num_classes": 2,
                   "run": {"path": str(run)}}, f)
    image = tmp_path / "x.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(HubensembleError) as e:
        predict(model, [image], progress=False)
    assert str(e.value) == (f"{model} has no serve_bytes signature (it has serving_default); "
                            f"export it again with export_ensemble(run_dir={str(run)!r}, "
                            f"out_dir={str(model)!r})")


#: Files that end inside the header of their format (`sniff.too_short`), each with the
#: words every path refuses it in.
CUT_FILES = {"cut.gif": (b"GIF89a", "too short to be a GIF file (6 bytes)"),
             "cut.png": (b"\x89PNG\r\n\x1a\n", "too short to be a PNG file (8 bytes)"),
             "cut.jpg": (b"\xff\xd8\xff", "too short to be a JPEG file (3 bytes)"),
             "cut.bmp": (b"BM" + b"\0" * 8, "too short to be a BMP file (10 bytes)"),
             "cut.webp": (b"RIFF\0\0\0\0WEBPVP8L\0\0\0\0",
                          "too short to be a WebP file (20 bytes)")}

_CUT_SCRIPT = """
import json, sys
from hubensemble.errors import HubensembleError
from hubensemble.prediction import predict

model, folder, *files = sys.argv[1:]
said = []
for paths in ([files[0]], [folder]):  # a file named; a folder (one file under it, cut)
    try:
        predict(model, paths, progress=False)
    except HubensembleError as e:
        said.append(str(e))
results = predict(model, files, skip_unreadable=True, progress=False)  # a list
said.append([r.get("error") for r in results])
print(json.dumps([said, "tensorflow" in sys.modules]))
"""


def test_a_file_cut_inside_its_header_is_refused_before_tensorflow(tmp_path):
    """predict refused a file that ends inside the header of its format ("GIF89a" alone)
    in the right words only after TensorFlow had loaded (~3 s, the model's load): its first
    bytes named a format serve_bytes decodes, so it was left for its batch. Now it is
    refused by its first bytes, before TensorFlow's import, for every way predict takes
    files: a file named, a folder, a list (with skip_unreadable); an unloadable export
    shows the model was not loaded either ("could not be loaded" is never said)."""
    import subprocess
    import sys

    from conftest import cpu_bounded

    model = unloadable_export(tmp_path / "export")
    files = []
    for name, (data, _) in CUT_FILES.items():
        (tmp_path / name).write_bytes(data)
        files.append(tmp_path / name)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "cut.gif").write_bytes(CUT_FILES["cut.gif"][0])
    out = subprocess.run(cpu_bounded([sys.executable, "-c", _CUT_SCRIPT, model, tmp_path / "d",
                                      *files], 60), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    [named, folder, listed], tensorflow = json.loads(out.stdout)
    assert named == (f"{files[0]}: too short to be a GIF file (6 bytes); fix or remove the "
                     "file (or pass skip_unreadable=True)"), named
    assert folder.startswith(f"nothing to predict: 1 file under the folders could not be "
                             f"read, e.g. {tmp_path / 'd' / 'cut.gif'}: too short to be a "
                             "GIF file (6 bytes)"), folder
    assert listed == [words for _, words in CUT_FILES.values()], listed
    assert tensorflow is False
