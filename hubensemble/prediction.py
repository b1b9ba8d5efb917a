"""predict: the top classes of image files (and of folders of them) through an export's
serve_bytes signature."""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import sys
from typing import Sequence

import numpy as np

from hubensemble import options, predictloaded
from hubensemble.data.decode import (UnreadableImage, check_identifiable, op_error_reason,
                                     servable_bytes, serving_blob)
from hubensemble.data.folder import ignored_entries
from hubensemble.data.sniff import (GRAPH_FORMATS, HEAD_BYTES, HEADER_BYTES, not_an_image,
                                    not_images_words, skipped_count, sniff, too_short)
from hubensemble.errors import HubensembleError, checks_keywords, reraise_stop
from hubensemble.fileio import dead_link_reason
# EVALUATE_TAKES, model_way_on: where evaluate and evaluationtask import them from (their
# home is formats, whose load_saved_model refusal says them).
from hubensemble.formats import (BYTES_SIGNATURE, EVALUATE_TAKES, check_metadata_fits,
                                 check_saved_model_folder, export_command, load_saved_model,
                                 model_way_on, read_export_metadata)
from hubensemble.lockwords import command_words, option_word
from hubensemble.text import (cells, counted, described, escaped, ljust, names_listed,
                              paths_shown, relative_hint, shell_word)

log = logging.getLogger(__name__)

#: Images per serve_bytes call in `predict`.
PREDICT_BATCH = 32

#: Unreadable files `predict` warns of one by one (the folder loader's summary names 3 too);
#: the next one's warning says that the others are skipped without a warning each (at INFO):
#: its output lists every one with its reason, and the closing count says how many.
WARN_FIRST = 3

#: An export's assets/hubensemble.json as a dict, {} when absent: the one reader
#: (`hubensemble.formats.read_export_metadata`), under the name export has always used.
read_metadata = read_export_metadata


_PREDICT = options.defaults_for("predict")

#: Why an entry that is not a regular file is not read: the folder loader's words
#: (`hubensemble.data.folder`), for a path named and for one found under a folder alike.
NOT_REGULAR = "not a regular file (a socket, pipe or device)"


class Predictions(list):
    """`predict`'s results: a list, one dict per file in order, plus `ignored`: the hidden
    and OS entries under the folders passed (.DS_Store, ._x, __MACOSX, Thumbs.db, ...), which
    were not read, as the folder loader ignores them; `not_images`: the paths of the files
    under those folders that are no image by name or first bytes (a README, notes.txt, a
    labels.csv, an .xmp sidecar: `sniff.not_an_image`), not predicted, as the folder loader
    does not read such a file in a class folder (the same rule); and `warned`: how many
    unreadable files predict has said on stderr so far (warnings for the first WARN_FIRST)."""

    def __init__(self, results=(), ignored=(), not_images=()):
        super().__init__(results)
        self.ignored = list(ignored)
        self.not_images = list(not_images)
        self.warned = 0  # unreadable files `_unreadable` has said so far

    @property
    def skipped(self) -> int:
        """How many entries could not be read (they have "error" instead of "top")."""
        return sum("error" in r for r in self)

    def tally(self) -> str:
        """The closing count: "predicted 2998 of 3000 files; 2 skipped (unreadable); 3 hidden
        or system entries and 1 folder hubensemble made (a run or an export) in the folders
        not read" (the parts that apply; the folder loader's words, `folder.ignored_entries`).
        The skipped are counted by their reasons' words (`sniff.skipped_count`): "3 skipped
        (2 unreadable, 1 too large)"; a too-large image was counted "unreadable". Files that
        are no image (`not_images`) follow: "; 4 ignored: not images by name or first bytes
        (README.md, labels.csv, notes.txt, …)" (they were "skipped (unreadable)")."""
        done = len(self) - self.skipped
        text = f"predicted {done} of {counted(len(self), 'file')}" if self.skipped else \
            f"predicted {done} file{'s' * (done != 1)}"
        if self.skipped:
            text += "; " + skipped_count(r["error"] for r in self if "error" in r)
        if self.not_images:
            text += f"; {not_images_words(self.not_images)}"
        if self.ignored:
            text += f"; {ignored_entries(self.ignored)} in the folders not read"
        return text


@checks_keywords
def predict(model_dir, image_paths: Sequence, *, top: int = _PREDICT["top"],
            skip_unreadable: bool = _PREDICT["skip_unreadable"],
            batch_size: int = PREDICT_BATCH, progress: bool = True) -> Predictions:
    """Top classes of image files through the export's serve_bytes signature.

    `image_paths`: files and folders (one path alone too). A folder stands for every file
    under it, as the folder loader reads a class folder (`hubensemble.data.folder`): at each
    level its files in name order, then its sub-folders in name order, links followed;
    hidden and OS entries are not read (`Predictions.ignored`); a broken link, a link loop
    and what is not a regular file (a FIFO, a socket, a device) are entries that cannot be
    read, with the loader's reason, after the folder's files. A path named that is not a
    regular file is refused the same way, never opened (a FIFO would block).

    Returns `Predictions` (a list), one dict per file, in order: {"path", "top": [{"rank"
    (1-based), "class_id" (int in [0, C)), "class_name" (from the metadata asset, else the id
    as text), "probability" (float in [0, 1])}, ...]} (at most `top` entries, most probable
    first; equal probabilities keep class order); "path" is the path named, or for a file
    found under a folder the folder's path joined with the file's. Class names are the
    export's own (its metadata), by the model's output index. Files are decoded by the decode
    policy of training (`hubensemble.data.decode`) and run through serve_bytes, `batch_size`
    at a time (only those in memory), so any mix of sizes works and a file gets the pixels it
    had in training: JPEG, PNG, GIF, BMP and WebP bytes go to serve_bytes as they are (it
    decodes them with the same function; they are not decoded here too:
    `decode.serving_blob`); TIFF and other formats Pillow reads, which serve_bytes cannot
    decode, are decoded here by the kept decoder (once) and sent as a lossless PNG of those
    pixels. `progress`: on stderr, a count while the files are looked at, then a bar
    while the model runs, of every file read (those refused before TensorFlow loads counted
    done from its start: its total is the closing count's, `Predictions.tally`).

    Raises TypeError, first, for an item of `image_paths` that is no path (an image's bytes,
    an array of pixels: the message names the signature that takes them);
    HubensembleError for `top` < 1, a `batch_size` that is not an integer >= 1, a folder
    without saved_model.pb or without the serve_bytes signature, metadata whose class names
    or num_classes count other classes than the model outputs
    (`formats.check_metadata_fits`), and for a file named that cannot be read or decoded
    (naming it, with the real reason: what the file is and why); with
    `skip_unreadable`, and always for a file found under a folder, such a file gets {"path",
    "error"} instead (a warning) and the others go on. What needs no TensorFlow (a missing or
    special file, an empty or a non-image one, one that ends inside the header of its format
    (`sniff.too_short`), a folder with no file) is found before
    TensorFlow loads (the first bytes and header of each file looked at, no pixel decoded);
    a file damaged past its header (a cut JPEG, a truncated TIFF) when its batch comes, with
    the reason the folder loader gives (`decode.decode_bytes`' words).
    When no file is left to predict (each was refused before TensorFlow, with
    `skip_unreadable`; or none was given), neither TensorFlow nor the model is loaded (its
    ~3 s served no file), so its serve_bytes and class names are not checked: the results
    are returned as they are, and a command says so on stderr (`terminal.progress_line`).
    The export loaded last in the process is kept while it is unchanged
    (`predictloaded.kept`: a loop of calls loads it once; its memory, about its variables/
    folder's size plus its graphs, is held until another export is predicted or
    `predictloaded.forget()`); every check above runs at each call all the same.
    OptionError (a HubensembleError) for a value the command line refuses.
    """
    # The options table's rules, as the command line's (skip_unreadable="no" skipped).
    options.check_keywords("predict", dict(top=top, skip_unreadable=skip_unreadable))
    from hubensemble import stageargs

    model_dir = stageargs.folder("predict", "model_dir", model_dir)
    image_paths = _paths_given(image_paths)
    top = int(top)
    if top < 1:
        raise HubensembleError(f"{option_word('--top', 'top')} must be >= 1, got {top}")
    # No flag sets it: the options table does not check it. 0, -3 and 2.5 ran as 1 and 2.
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise HubensembleError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    model_dir = check_saved_model_folder(model_dir)
    if not read_export_metadata(model_dir):  # predict needs its class names and serve_bytes
        # evaluate was offered "for any SavedModel", and refused the same folder (Keras'
        # model.export returns 'output_0'): what it takes is said (a new-user check).
        export = command_words("export", flags="--run RUN", keywords="run_dir=RUN")
        raise HubensembleError(f"{model_dir} is a SavedModel that {command_words('export')} did "
                               "not write (no export metadata in assets/hubensemble.json); "
                               f"predict needs an export: pass the folder {export} writes "
                               f"(RUN/export by default); {command_words('evaluate')} takes "
                               f"another model only as {EVALUATE_TAKES}")
    from hubensemble.terminal import progress_bar

    paths, results, skip = [], Predictions(), []
    # The files' first bytes are looked at before TensorFlow loads: a count for a big folder,
    # none for files named ("looking at: 0 files" stood above a named file's error).
    folders = any(os.path.isdir(p) for p in image_paths)
    looked = progress_bar(desc="predict: looking at", unit=" files", leave=False,
                          shown=progress and folders)
    try:
        for path, reason, found in _entries(image_paths, results.ignored,
                                            results.not_images):
            looked.unit = " files" if looked.n else " file"  # the count after this update
            looked.update()
            if reason is None:
                reason = _refusal(path)  # at once, before TensorFlow loads (not after the model)
            paths.append(path)
            # A file found under a folder that cannot be read is skipped and counted, as the
            # folder loader skips one in a class folder; one named stops the run.
            skip.append(skip_unreadable or found)
            results.append(None if reason is None else
                           _unreadable(path, reason, skip[-1], results))
        pending = [i for i, r in enumerate(results) if r is None]
        if results and not pending and not skip_unreadable:  # before TensorFlow's seconds
            first = results[0]
            raise HubensembleError(f"nothing to predict: {counted(len(results), 'file')} "
                                   f"under the folders could not be read, e.g. "
                                   f"{paths_shown([first['path']], then=': ')}: "
                                   f"{first['error']}")
    except BaseException:
        # The count's line ends before the error is said: cleared with a carriage return, it
        # shared its line with the error in a file of 2>&1.
        looked.leave = True
        raise
    finally:
        looked.close()
    if not pending:  # each file refused before TensorFlow (skip_unreadable), or none given
        # TensorFlow's import and the SavedModel's load (~3 s) would serve no file: skipped,
        # and said (the command's closing count and exit status are those of a load).
        from hubensemble.terminal import progress_line

        progress_line(f"predict: no file is left to predict, so {escaped(model_dir)} was not "
                      "loaded")
        return results
    from hubensemble._tf import tensorflow as tf  # without its C++ start-up notices

    # Read again: the files were looked at since (minutes for a big folder). The export
    # loaded last in this process when it is unchanged since (a caller's loop paid the load
    # and the first call's set-up at each call): `predictloaded.kept`.
    meta = read_export_metadata(model_dir)
    loaded = predictloaded.kept(model_dir, meta, load_saved_model)
    if BYTES_SIGNATURE not in loaded.signatures:
        has = names_listed(loaded.signatures)
        raise HubensembleError(f"{model_dir} has no {BYTES_SIGNATURE} signature ("
                               f"{'it has ' + has if has else 'it has no signature'}); "
                               f"{model_way_on(model_dir, meta)}")
    serve = loaded.signatures[BYTES_SIGNATURE]
    # Names by the model's output index: metadata of another model named the classes wrongly
    # (9 names for 10 outputs printed class 9 as "9"), as evaluate refuses it.
    check_metadata_fits(meta, serve, model_dir)
    names = meta.get("class_names")
    unnamed = _OldExport(model_dir, meta)
    batch_size = int(batch_size)
    # Every file read counts, those refused before TensorFlow loaded already done: the bar
    # ended at 5487 over a closing count "of 5489 files" (2 refused by their first bytes).
    bar = progress_bar(total=len(results), initial=len(results) - len(pending), desc="predict",
                       unit="file", shown=progress)
    try:
        for lo in range(0, len(pending), batch_size):
            chunk = []  # (index, bytes for serve_bytes): one batch's files in memory at a time
            for i in pending[lo:lo + batch_size]:
                try:
                    blob = serving_blob(_read(paths[i]), name=str(paths[i]))
                except (OSError, UnreadableImage) as e:  # e.g. a file changed since it was seen
                    reraise_stop(e)  # a Ctrl-C / SIGTERM that came out as this error
                    results[i] = _unreadable(paths[i], _reason(paths[i], e), skip[i], results)
                    continue
                chunk.append((i, blob))
            for i, p in zip([i for i, _ in chunk], _serve(serve, chunk, tf, paths, unnamed)):
                results[i] = (_top_classes(paths[i], p, top, names) if not isinstance(p, str)
                              else _unreadable(paths[i], p, skip[i], results))
            bar.update(len(pending[lo:lo + batch_size]))
    finally:
        bar.close()
    return results


def _paths_given(image_paths) -> list:
    """`predict`'s `image_paths` as a list of paths (str, os.PathLike, or bytes that can be a
    path), one path alone too. TypeError naming the argument, what it got and the way on for
    anything else: an image's bytes (a NUL byte: no path holds one) failed with "open:
    embedded null character in path", an array with "expected str, bytes or os.PathLike
    object, not ndarray" (a new-user check). OptionError for a path written as Windows
    writes paths on Linux or macOS (`stageargs.windows_path`)."""
    from hubensemble import stageargs

    if isinstance(image_paths, (str, bytes, os.PathLike)):
        image_paths = [image_paths]
    if not isinstance(image_paths, (list, tuple)) and (
            hasattr(image_paths, "shape") or not hasattr(image_paths, "__iter__")):
        image_paths = [image_paths]  # an array is an image, not a list of paths
    image_paths = list(image_paths)
    for i, path in enumerate(image_paths):
        if isinstance(path, (str, os.PathLike)) or (isinstance(path, bytes)
                                                    and b"\0" not in path):
            if isinstance(os.fspath(path), str):  # C:\x.jpg: what to write (OptionError)
                stageargs.windows_path("predict", f"image_paths[{i}]", os.fspath(path))
            continue
        if isinstance(path, (bytes, bytearray, memoryview)):
            way = ("predict reads image files; for an image's bytes in memory call the "
                   "export's serve_bytes signature: tf.saved_model.load(MODEL).signatures"
                   "['serve_bytes'](image_bytes=tf.constant([data])), or write them to a file")
        elif hasattr(path, "shape"):
            way = ("predict reads image files; for pixels in memory call the export's "
                   "serving_default signature: tf.saved_model.load(MODEL).signatures"
                   "['serving_default'](images=float32 [N, H, W, 3] in [0, 1]), or "
                   "evaluate_model with a Task of them")
        else:
            way = "pass file or folder paths (str or pathlib.Path)"
        raise TypeError(f"predict() image_paths must be paths of image files or folders, got "
                        f"{described(path)}"
                        f"{f' (item {i})' if len(image_paths) > 1 else ''}; {way}")
    return image_paths


def _entries(image_paths, ignored, not_images):
    """(path, reason or None, found under a folder) of every file `predict` reads, in
    order: a path named as it is
    (a broken link or a special file with the folder loader's reason), a folder as the files
    the folder loader's walk finds under it (then its entries that cannot be read, with
    their reasons); the hidden and OS entries it does not read go to `ignored`, the files
    under it that are no image by name or first bytes (`sniff.not_an_image`) to
    `not_images`. A folder that yields none is itself an entry that cannot be read."""
    from hubensemble.data.folder import _list_class_folder, _Listing

    for path in image_paths:
        path = os.fspath(path)
        if os.path.isdir(path):
            listing, others, images = _Listing(), [], 0
            for p in _list_class_folder(path, listing):
                if not_an_image(p):
                    others.append(p)
                    continue
                images += 1
                yield p, None, True
            not_images.extend(others)
            ignored.extend(listing.ignored)
            yield from ((p, why, True) for p, why in listing.skipped)
            if not images and not listing.skipped:
                yield path, _nothing_in(others, listing.ignored), False
        elif os.path.islink(path) and not os.path.exists(path):
            yield path, dead_link_reason(path), False  # the loader's words
        elif os.path.exists(path) and not os.path.isfile(path):
            yield path, STDIN_REASON if _names_stdin(path) else NOT_REGULAR, False
        else:
            yield path, None, False


def _nothing_in(not_images, ignored) -> str:
    """Why a folder whose walk found nothing to read cannot be predicted: "a folder with no
    file in it", or "no image" when it holds files that are not (`not_images`, paths), with
    what it holds: "(4 files that are not images by name or first bytes, e.g. README.md, …;
    1 hidden or system entry not read)"."""
    one = len(not_images) == 1
    parts = ([f"{counted(len(not_images), 'file')} that "
              f"{'is not an image' if one else 'are not images'} by name or first bytes, "
              f"e.g. {_names_of(not_images)}"] if not_images else []) + (
        [f"{ignored_entries(ignored)} not read"] if ignored else [])
    return (f"a folder with {'no image' if not_images else 'no file'} in it"
            + (f" ({'; '.join(parts)})" if parts else ""))


def _names_of(paths, limit: int = 3) -> str:
    """The file names of `paths` for a count of them: the first `limit`, then "…"."""
    return names_listed([os.path.basename(p) for p in paths], limit)


class _NotRegular(OSError):
    """A path that became a FIFO, socket or device after it was looked at."""


def _read(path, size=-1) -> bytes:
    """The first `size` bytes (all: -1) of regular file `path`. Opened without blocking and
    checked once open, so a path that is, or just became, a FIFO is refused, never read."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise _NotRegular(NOT_REGULAR)
        return f.read(size)


#: Why standard input named as a file (/dev/stdin, /dev/fd/0, /proc/self/fd/0) that is a
#: pipe or a terminal is not read, and the way on (`_unreadable`): the words "-" gets.
STDIN_REASON = "standard input, not a regular file: predict reads image files, not stdin"
STDIN_WAY = "save the image to a file and pass its path"
_STDIN_NAMES = ("/dev/stdin", "/dev/fd/0", "/proc/self/fd/0")


def _names_stdin(path) -> bool:
    """Whether `path` names this process's standard input: one of its names (/dev/stdin,
    /dev/fd/0, /proc/self/fd/0, /proc/PID/fd/0), or the very pipe or socket file descriptor
    0 is open on (same device and inode). `curl URL | hubensemble predict --model M
    /dev/stdin` was told the generic "not a regular file (a socket, pipe or device); fix or
    remove the file"."""
    name = os.path.normpath(os.fsdecode(path))
    if name in _STDIN_NAMES or name == f"/proc/{os.getpid()}/fd/0":
        return True
    try:
        named, stdin = os.stat(path), os.fstat(0)
    except (OSError, ValueError):
        return False
    # A pipe or socket is one stream: another name of it is stdin (a device, /dev/null or a
    # terminal, named as such is not).
    return ((stat.S_ISFIFO(named.st_mode) or stat.S_ISSOCK(named.st_mode))
            and (named.st_dev, named.st_ino) == (stdin.st_dev, stdin.st_ino))


def _reason(path, err) -> str:
    """Why `path` could not be read, from the error `_read` or the decoder raised."""
    if isinstance(err, _NotRegular):  # (it became a FIFO since `_entries` looked)
        return STDIN_REASON if _names_stdin(path) else NOT_REGULAR
    meant = _meant(os.fsdecode(path)) if isinstance(err, FileNotFoundError) else None
    if meant and not os.path.lexists(path):
        return f"no such file ({meant})"
    if isinstance(err, OSError):
        return (dead_link_reason(path)  # the folder loader's words
                if os.path.islink(path) and not os.path.exists(path) else
                f"cannot read it: {err.strerror or err}"
                + (relative_hint(path) if isinstance(err, FileNotFoundError) else ""))
    return str(err)


def _meant(path: str) -> str | None:
    """What a path that names nothing may have meant, or None: a quoted pattern ('imgs/*.jpg'
    reached predict as it is: the shell expands a pattern only when it is not in quotes), a
    list file (@list.txt: predict reads no lists) or standard input ("-", as `cat` and
    `convert` read it: predict reads files; it said "-: cannot read it: No such file or
    directory" of `curl URL | hubensemble predict --model M -`)."""
    if path == "-":
        return ("standard input? predict reads image files, not stdin: save the image to a "
                "file and pass its path")
    if any(c in path for c in "*?["):
        return ("a pattern? predict does not expand * ? [ ]: the shell does, when the "
                "pattern is not in quotes; or pass the folder")
    if path.startswith("@"):
        return ("a list of files? predict reads no @FILE lists: pass the files, or the "
                "folder that holds them")
    return None


#: The first bytes `_refusal` reads of each file: its signature (HEAD_BYTES) and the header
#: of fixed layout of a format serve_bytes decodes (`sniff.HEADER_BYTES`), so that a file
#: that ends inside that header is refused without TensorFlow.
_LOOK_BYTES = max(HEAD_BYTES, *HEADER_BYTES.values())


def _refusal(path) -> str | None:
    """Why `path` cannot be predicted, found without TensorFlow and without decoding it (its
    first bytes read; a file outside the graph's formats: its header, by Pillow), else None."""
    try:
        head = _read(path, _LOOK_BYTES)
        if head and sniff(head) in GRAPH_FORMATS:
            # serve_bytes' own formats are decoded with their batch; one that ends inside its
            # header (b"GIF89a", a PNG's signature alone) is refused now, in the words
            # `decode.check_identifiable` gives it after TensorFlow loaded.
            return too_short(head)
        # Empty, not an image, or a format only Pillow reads: refused by its first bytes or
        # header without TensorFlow, so a text file is refused at once; a TIFF was decoded
        # whole here, then again with its batch.
        check_identifiable(_read(path), name=str(path))
    except (OSError, UnreadableImage) as e:
        reraise_stop(e)  # a Ctrl-C / SIGTERM that came out as this error
        return _reason(path, e)
    return None


def refused_at(err, n: int) -> tuple[int, int] | None:
    """(position, how many of the request fail) that serve_bytes' refusal `err` (an
    InvalidArgumentError) of a request of `n` images names: "image_bytes[3] (of 32): …"
    (`export.saved.check_headers`: the count is unknown, 1 is given), "…; 2 of the 32 images
    cannot be decoded" (`export.saved.decode_each`); None when it names none (a request of
    one image, or an export written before c987f95, whose refusal names no position)."""
    said = op_error_reason(err)
    found = _POSITION.search(said)
    if not found or int(found.group(2)) != n or not 0 <= int(found.group(1)) < n:
        return None
    count = _COUNT.search(said)
    return int(found.group(1)), (int(count.group(1)) if count else 1)


#: The position a serve_bytes refusal names (`refused_at`) and its count of failed images.
_POSITION = re.compile(r"image_bytes\[(\d+)\] \(of (\d+)\)")
_COUNT = re.compile(r"; (\d+) of the \d+ images cannot be decoded")
#: Batches `_serve` sends again without the image a refusal named; with more images to take
#: out than that, the rest run one by one.
NAMED_RETRIES = 4


class _OldExport:
    """Says once, when called, that the export at `model_dir` (metadata `meta`) is one whose
    serve_bytes names no failed image (written before c987f95: its version, 0.2.0, is also
    that of later 0.2.0 exports that name it, so only a refusal tells), with the way on:
    the command that writes that folder again (`formats.export_command`: it named the run
    alone, which for an export written with --out DIR writes RUN/export, not DIR)."""

    def __init__(self, model_dir, meta):
        self.model_dir, self.meta, self.said = model_dir, meta, False

    def __call__(self):
        if self.said:
            return
        self.said = True
        log.warning("%s was exported before serve_bytes named the image a request fails on: "
                    "predict runs the files of a refused batch one by one (a batch of 256 "
                    "with one damaged file: 257 requests, not 3), and a TF Serving client "
                    "is not told which image failed. Export it again for that: %s",
                    escaped(os.fspath(self.model_dir)),
                    export_command(self.meta, self.model_dir))  # --out DIR unless RUN/export


def _serve(serve, chunk, tf, paths, unnamed=None):
    """serve_bytes' probabilities of one batch [(index, bytes)], in order. When serve_bytes
    refuses the batch naming the image it failed on (`refused_at`), that file is taken out
    (`_serve_one`) and the others are sent again, at most NAMED_RETRIES times; else (an
    export that names no position, or more failed images than that) its files are run one
    by one. A file it refuses is decoded by the decode policy (`servable_bytes`, as the
    folder loader decodes it): its reason when the policy refuses it too (a damaged file: the
    loader's words), else the PNG of the kept decoder's pixels is served (an RLE-compressed
    BMP, which the graph leaves to the kept decoder), else "the model's serve_bytes refused
    it (…)" (an export made by another version). `paths[index]` names the file (for a
    warning Pillow gives). TensorFlow's and libjpeg's native lines about a refused file are
    hidden unless --verbose, as the loader's decode hides them. One damaged JPEG in a batch
    of 256 ran 257 requests: it runs 3 now. `unnamed` (no arguments) is called when a
    refusal of more than one file names none (an export written before: `_OldExport`)."""
    if not chunk:
        return []
    from hubensemble import _tf

    out, rest = {}, list(range(len(chunk)))
    with _tf.native_notices("serving images"):
        for retries in range(NAMED_RETRIES, -1, -1):
            try:
                out.update(zip(rest, _run_bytes(serve, [chunk[k][1] for k in rest])))
                rest = []
                break
            except tf.errors.InvalidArgumentError as e:
                named = refused_at(e, len(rest))
            if named is None and len(rest) > 1 and unnamed is not None:
                unnamed()  # an export whose refusal names no position: said once
            if named is None or named[1] > retries:
                break  # one by one
            k = rest.pop(named[0])
            out[k] = _serve_one(serve, chunk[k][1], tf, str(paths[chunk[k][0]]))
            if not rest:
                break
        for k in rest:
            out[k] = _serve_one(serve, chunk[k][1], tf, str(paths[chunk[k][0]]))
    return [out[k] for k in range(len(chunk))]


def _serve_one(serve, data, tf, name):
    """serve_bytes' probabilities of one file's bytes, or why it cannot be predicted
    (`_serve`)."""
    try:
        return _run_bytes(serve, [data])[0]
    except tf.errors.InvalidArgumentError as e:
        refused = f"the model's serve_bytes refused it ({op_error_reason(e)})"
    try:
        blob, _ = servable_bytes(data, name=name)
    except UnreadableImage as e:
        reraise_stop(e)  # a Ctrl-C / SIGTERM that came out as this error
        return str(e)
    if blob == data:
        return refused
    try:
        return _run_bytes(serve, [blob])[0]
    except tf.errors.InvalidArgumentError as e:
        return f"the model's serve_bytes refused it ({op_error_reason(e)})"


def _run_bytes(serve, blobs):
    from hubensemble._tf import tensorflow as tf

    out = serve(image_bytes=tf.constant(blobs, tf.string))
    return out["probabilities"].numpy()


def _unreadable(path, reason, skip, results):
    """{"path", "error"} of a file that cannot be predicted, said on stderr: a warning for
    each of the first WARN_FIRST of `results` (a `Predictions`), then one that says the rest
    go without one, each at INFO (a folder with 150 text files named .jpg printed 150
    warnings through the bar, each repeating what the output lists). HubensembleError
    instead, unless `skip`."""
    if not skip:
        # A path that names nothing is a typo to fix, not a file to remove (a new-user check).
        what = ("leave the folder out or put images in it" if os.path.isdir(path) else
                "check the path" if not os.path.lexists(path) else
                STDIN_WAY if reason == STDIN_REASON else "fix or remove the file")
        raise HubensembleError(f"{escaped(path)}: {reason}; {what} (or pass "
                               f"{option_word('--skip-unreadable', 'skip_unreadable=True')})")
    # On one line, as stdout shows it (a newline or an ESC in a file name reached stderr raw).
    results.warned += 1
    if results.warned <= WARN_FIRST:
        log.warning("%s: %s; skipped", escaped(path), reason)
    elif results.warned == WARN_FIRST + 1:
        log.warning("%s: %s; skipped; further unreadable files are skipped without a warning "
                    "each: the output lists every one with its reason, and the closing count "
                    "says how many", escaped(path), reason)
    else:
        log.info("%s: %s; skipped", escaped(path), reason)
    return {"path": os.fspath(path), "error": reason}


def _top_classes(path, probs, top, names):
    order = np.argsort(-np.asarray(probs, np.float64), kind="stable")[:top]
    rows = []
    for rank, c in enumerate(order, 1):
        name = names[c] if names and c < len(names) else str(int(c))
        rows.append({"rank": rank, "class_id": int(c), "class_name": str(name),
                     "probability": float(probs[c])})
    return {"path": os.fspath(path), "top": rows}


def _utf8_path(path) -> str:
    """`path` (a str as os.listdir gives it) as its bytes read as UTF-8, a byte that is not
    UTF-8 as a lone surrogate ("caf\\udce9.jpg"), as a UTF-8 locale reads it, the way
    `data.folder.label` reads class folders. Under a C locale with PYTHONUTF8=0 Python reads
    'café' as 'caf\\udcc3\\udca9', and --json wrote those surrogates, which jq and other
    JSON readers turn into U+FFFD: the name was lost."""
    return os.fsencode(path).decode("utf-8", "surrogateescape")


def format_predictions(results: Sequence[dict], as_json: bool = False,
                       encoding: str | None = None) -> str:
    """The CLI's output of `predict` results: JSON (the list as `predict` returns it: the
    form to script against) or a small text block per image: a line with its path as one
    shell word (`shell_word`: never starting with a space, on one line whatever the name
    holds), then lines that start with two spaces, "  rank. class  probability" or
    "  error: reason" (control characters in those escaped, `escaped`). A file named
    "  1. fake 0.9.png" looked like a prediction line, and a name with a newline split its
    record over two lines. `encoding`: the one of the stream the text goes to (None:
    sys.stdout's), for the path lines (`shell_word`'s: under PYTHONIOENCODING=ascii
    'café.png' was 'caf\\xe9.png' in quotes, another file to bash). In the JSON each "path" is
    its bytes read as UTF-8 whatever the locale (`_utf8_path`)."""
    if as_json:
        return json.dumps([dict(r, path=_utf8_path(r["path"])) for r in results], indent=2)
    if encoding is None:
        encoding = getattr(sys.stdout, "encoding", None)
    lines = []
    for r in results:
        lines.append(shell_word(r["path"], encoding))
        if "error" in r:
            lines.append(f"  error: {escaped(r['error'])}")
            continue
        names = [escaped(t["class_name"]) for t in r["top"]]
        width = max(map(cells, names), default=0)
        for t, name in zip(r["top"], names):
            lines.append(f"  {t['rank']}. {ljust(name, width)}  {t['probability']:.4f}")
    return "\n".join(lines)
