"""The `folder:PATH` loader: one sub-folder per class, or train/ val/ test/ with class folders.

Nothing under PATH vanishes: every file becomes an example or a `Task.skipped` entry with its
reason, but a file in a class folder that is no image by name or first bytes (a README.md, a
notes.txt, an .xmp or .json sidecar: `sniff.not_an_image`, predict's rule), which is not read
and is said once in a warning with a count and examples; hidden and OS entries
(`loading.IGNORED_NAMES`, names starting with ".") and folders hubensemble made (a run or an
export left inside the data) are not read and are counted in `Task.ignored`. Links are
followed (linked files, linked class folders, a linked folder inside a class folder); a link
that leads back to a folder being read is a loop,
reported as skipped and not followed.
"""

from __future__ import annotations

import logging
import os

from hubensemble.data.classnotes import (  # noqa: F401 (their home; folder's names too)
    case_only_note, class_notes, numbered_classes_note, warn_class_notes)
from hubensemble.data.decode import Decoded, UnreadableImage, read_image
from hubensemble.data.decodecache import DecodeCache
from hubensemble.data.folderwords import (  # noqa: F401 (folder's names too, as before)
    _EMPTY_HINT, _OWN_SPLIT, _empty_error, _no_class_folders, _note_carve, _only_not_images,
    carved_words)
from hubensemble.data.loading import LoadOptions, _require_path, _visible
from hubensemble.data.splits import _carve, _make_split, unreached
from hubensemble.data.sniff import HEAD_BYTES, MISPLACED_WORDS, image_format, not_an_image
from hubensemble.data.names import (_SPLIT_ALIASES, SPLIT_WORDS, class_name_fault, name_difference,
                                    name_key)
from hubensemble.data.task import Task
from hubensemble.data.taskwords import said_unless_summarised
from hubensemble.data.validate import lost_to_skips, not_utf8
from hubensemble.errors import DataError, reraise_stop
from hubensemble.fileio import dead_link_reason
from hubensemble.formats import made_by_hubensemble
from hubensemble.text import absolute, escaped, names_listed

log = logging.getLogger(__name__)


class _Listing:
    """What a walk found: files to decode, and the entries it skipped or ignored. `bar` (a
    tqdm bar, `_reading_bar`) advances with `files`, the one count of the files looked at:
    the bar counted the files in class folders, and the summary's "N file(s) read" also
    those skipped beside them (43 against 45)."""

    def __init__(self, bar=None, cache=None):
        self.bar = bar
        self.cache = cache  # a decodecache.DecodeCache: each file decoded once, not each load
        self.skipped: list[tuple[str, str]] = []
        self.ignored: list[str] = []
        self.oriented: list[tuple[str, int]] = []  # (path, EXIF/XMP orientation 2..8), as stored
        self.turned: list[tuple[str, int]] = []  # (path, orientation 2..8) a TIFF applied
        self.shrunk: list[tuple[str, tuple[int, int]]] = []  # (path, (h, w) as decoded)
        self.kept: list[tuple[str, str]] = []  # (path, format) Pillow read: serve_bytes cannot
        self.dark: list[tuple[str, int]] = []  # (path, top value) of dark 16-bit files
        self.not_images: list[str] = []  # files in class folders that are no image: not read
        self.files = 0  # files looked at (decoded or skipped)

    def read(self, path) -> Decoded:
        """`decode.read_image(path)`, through the decode cache when there is one."""
        return self.cache.read(path) if self.cache is not None else read_image(path)

    def skip(self, path, reason):
        self.skipped.append((path, reason))
        self.looked()

    def looked(self):
        """Counts one more file looked at (decoded or skipped), on the bar too."""
        self.files += 1
        if self.bar is not None:
            self.bar.update()


def _ours(path) -> bool:
    """Whether `path` is a folder hubensemble made (a run or an export: never a class, nor
    images of one; `formats.made_by_hubensemble`), e.g. an `--out` once given inside the data.
    Ignored as hidden entries are, so that such a leftover does not break every later load."""
    return os.path.isdir(path) and made_by_hubensemble(path) is not None


def ignored_entries(ignored) -> str:
    """How the entries a walk did not read (`_Listing.ignored`: paths) are counted, in the
    data summary's words (`taskwords.accounting`): "3 hidden or system entries", "1 folder
    hubensemble made (a run or an export)", or both joined by "and". A folder hubensemble
    made is told from a hidden entry by its visible name (`Task.hubensemble_folders`'
    rule): `predict` called a run folder inside the folder it read a hidden or OS entry."""
    ours = sum(_visible(os.path.basename(os.fspath(p))) for p in ignored)
    hidden = len(ignored) - ours
    parts = ([f"{hidden} hidden or system entr{'y' if hidden == 1 else 'ies'}"] if hidden
             else []) + ([f"{ours} folder{'s' * (ours != 1)} hubensemble made (a run or an "
                          "export)"] if ours else [])
    return " and ".join(parts)


def hidden_classes(root: str, ignored) -> list[str]:
    """The hidden folders directly in `root` (among `ignored`, a walk's `_Listing.ignored`)
    that hold an image file among their first 20 entries (by content, `sniff.image_format`:
    a PDF, ZIP, gzip, SVG/XML or HTML file is none, as `_image_beside` rules): classes a
    leading '.' hid, e.g. a label `.dog` of a table linked into folders (docs/data.md), which
    were left out of the classes with only a count of hidden entries."""
    found = []
    for p in ignored:
        if os.path.dirname(p) != root or not os.path.basename(p).startswith("."):
            continue
        try:
            names = sorted(os.listdir(p))[:20] if os.path.isdir(p) else []
        except OSError:
            continue
        for n in names:
            try:
                with open(os.path.join(p, n), "rb") as f:
                    if _visible(n) and image_format(f.read(HEAD_BYTES)):
                        found.append(p)
                        break
            except OSError:
                continue
    return found


def hidden_classes_note(folders) -> str:
    """The sentence for `hidden_classes`' folders (one or more): what happened, the way on."""
    names = names_listed([os.path.basename(p) for p in folders], 5, "/")
    one = len(folders) == 1
    return (f"{names} in {escaped(os.path.dirname(folders[0]))} hold{'s' * one} images but "
            f"{'its name starts' if one else 'their names start'} with '.', so "
            f"{'it is a hidden folder, not a class' if one else 'they are hidden, not classes'}"
            f": rename {'it' if one else 'them'} without the leading '.' to make "
            f"{'it a class' if one else 'them classes'}")


def _identity(path):
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _enclosing(folder):
    """{identity: path} of `folder` and every folder above it, by its path and by its real
    path: a link to any of them leads back into the walk (a loop)."""
    out = {}
    for p in (absolute(folder), os.path.realpath(folder)):
        while True:
            try:
                out.setdefault(_identity(p), p)
            except OSError:
                pass
            parent = os.path.dirname(p)
            if parent == p:
                break
            p = parent
    return out


def _list_class_folder(folder: str, listing: _Listing) -> list[str]:
    """Every file under `folder`, recursively, links followed: at each level its files in
    name order, then its sub-folders in name order (as os.walk). Hidden and OS entries go to
    `listing.ignored`; broken links, special files and loops (a link to a folder that
    encloses it: the class folder, the data folder, any folder above) to `listing.skipped`."""
    files: list[str] = []

    def visit(path, ancestors):
        try:
            names = sorted(os.listdir(path))
        except OSError as e:
            listing.skip(path, f"cannot list this folder: {e.strerror or e}")
            return
        subfolders = []
        for name in names:
            p = os.path.join(path, name)
            if not _visible(name) or _ours(p):
                listing.ignored.append(p)
            elif os.path.islink(p) and not os.path.exists(p):
                listing.skip(p, dead_link_reason(p))
            elif os.path.isdir(p):
                subfolders.append(p)
            elif os.path.isfile(p):
                files.append(p)
            else:
                listing.skip(p, "not a regular file (a socket, pipe or device)")
        for p in subfolders:
            key = _identity(p)
            if key in ancestors:
                listing.skip(p, f"a link loop: it leads back to {ancestors[key]}, which "
                                f"encloses it; not followed")
                continue
            visit(p, {**ancestors, key: p})

    visit(folder, _enclosing(folder))
    return files


def label(folder_name: str) -> str:
    """The class name of the class folder `folder_name` (as os.listdir gives it; its bytes
    UTF-8, `_class_folders` checked), and the task name of a data folder: those bytes read
    as UTF-8 whatever the locale (a byte that is not UTF-8 as a lone surrogate, as a UTF-8
    locale reads it). Itself in a UTF-8 locale; under a C locale with PYTHONUTF8=0 Python
    reads 'café' as 'caf\\udcc3\\udca9' (refused as "a lone surrogate": rename the
    folder), and under a Latin-1 locale as 'cafÃ©' (a class the model would have served so)."""
    return os.fsencode(folder_name).decode("utf-8", "surrogateescape")


def _class_folders(root: str, listing: _Listing) -> list[str]:
    """The class folders of root (visible sub-folders, sorted); what else is there goes to
    `listing` (ignored, or skipped with the reason). Raises DataError for a class folder
    whose name is not UTF-8 (`validate.not_utf8`), or is not a class name
    (`names.class_name_fault`: only whitespace, padded, a control or format character)."""
    found, keys = [], {}  # keys: {name_key: the first folder of it}
    for d in sorted(os.listdir(root)):
        p = os.path.join(root, d)
        if not _visible(d) or _ours(p):
            listing.ignored.append(p)
        elif os.path.isdir(p):
            why = not_utf8(os.fsencode(d))  # Python read its bytes as lone surrogates
            if why:
                raise DataError(f"class folder {escaped(p)}/ has a name that is {why}; "
                                f"a folder's name is its class's label, which the model "
                                f"serves as UTF-8 text: rename the folder in UTF-8")
            why = class_name_fault(label(d))  # the rule of every source's class names
            if why:
                raise DataError(f"class folder {escaped(p)}/ has a name that {why}; its name, "
                                f"{escaped(repr(label(d)))}, is its class's label, which the "
                                f"summary, the report and the model's predictions show: "
                                f"rename the folder{_renamed(root, label(d), why)}")
            # One text in two Unicode forms is one name to a reader; case is not (a letters
            # data set has A/ and a/ on Linux), as in every other source.
            other = keys.setdefault(name_key(label(d)), d)
            if other != d:
                raise _same_name_folders(os.path.join(root, other), p, label(other), label(d))
            found.append(d)
        elif os.path.islink(p) and not os.path.exists(p):
            listing.skip(p, dead_link_reason(p))
        elif not _image_beside(p):  # a README, LICENSE, notes: not looked at (`_image_beside`)
            continue
        else:
            listing.skip(p, f"{MISPLACED_WORDS}class folders, not an example (move it into "
                            "one to use it)")  # "ignored" is the hidden entries' word
    return found


def _renamed(root, name, why) -> str:
    """" to 'NAME'" naming the folder's new name when `name` (a refused class folder's, `why`
    its `names.class_name_fault`) is only padded with whitespace and its stripped form is
    free under `root`, else "": the refusal said "rename the folder" with the padded name
    unquoted, the space invisible, and no name to rename it to (a new user's check)."""
    stripped = name.strip()
    if not why.startswith("starts or ends") or class_name_fault(stripped):
        return ""
    if os.path.lexists(os.path.join(root, stripped)):
        return (f" (a folder {escaped(repr(stripped))} is beside it: move the files into it "
                f"if they are one class)")
    return f" to {escaped(repr(stripped))}"


def _image_beside(path: str) -> bool:
    """Whether the entry `path`, beside the class folders (or beside train/ val/ test/), is
    skipped as misplaced (a warning naming it): an image by its first bytes (`sniff`: a
    format of SIGNATURES but a document's or an archive's), which was likely meant as an
    example, or an entry that is not a readable regular file. Any other file (a README.txt,
    LICENSE, notes.md, the data set's .zip) is not looked at and not counted, as
    keras.utils.image_dataset_from_directory and torchvision's ImageFolder take only the
    sub-folders as classes and never look at a file beside them (docs/data.md); OS files
    (.DS_Store, Thumbs.db, desktop.ini) are ignored entries before this (`IGNORED_NAMES`)."""
    try:
        if not os.path.isfile(path):  # a socket or pipe: never opened (it could block)
            return True
        with open(path, "rb") as f:
            return image_format(f.read(HEAD_BYTES)) is not None
    except OSError:
        return True


def _same_name_folders(first: str, other: str, a: str, b: str, *, across: bool = False):
    """The refusal of class folders `first` and `other` (named `a`, `b`) whose names look the
    same (`names.same_names`): read as two classes (a NFD 'café' of a Mac's copy beside a NFC
    one) that the summary, the report and the export's labels showed alike, or (`across`: a
    val/ or test/ folder and train/'s, which may also differ only by case, 'Cat' for train/'s
    'cat') refused as a class without training images, naming one folder that looked like
    the other."""
    how = name_difference(a, b)
    fix = ("rename one so that both are spelled the same (one class), or so that they differ "
           "by more (two classes)" if not across else
           f"rename {escaped(other)}/ to {ascii(a)} (train/'s spelling) if it is that class")
    extra = "" if how.startswith("are the same text") else (
        " (macOS and Windows would merge them into one folder)")
    return DataError(f"class folders {escaped(first)}/ ({ascii(a)}) and {escaped(other)}/ "
                     f"({ascii(b)}) {how}{extra}: a class is called by its folder's name, "
                     f"and these look like one class: {fix}")


def _without_training(root: str, extra: list[str]) -> DataError:
    """The refusal of a val/ or test/ folder `root` whose class folders `extra` have no
    train/ folder."""
    one = len(extra) == 1
    way = " or remove the folder" if one else " and the others, or remove those folders"
    return DataError(f"{root} has {'a class folder' if one else 'class folders'} "
                     f"{', '.join(map(repr, extra))} that the train folder does not have; "
                     f"every class needs training images (add train/{extra[0]}/{way})")


def _read_class_folders(root: str, class_names: list[str] | None, listing: _Listing,
                        record: dict | None = None):
    """Decode root/<class>/** → (images, labels, paths, class_names); `record` gets each
    class's {"folder", "files", "skipped"} (a split's part of `Task.class_files`); the
    listing's bar counts each file decoded or skipped (`_Listing.looked`)."""
    ignored = len(listing.ignored)
    found = _class_folders(root, listing)
    hidden = hidden_classes(root, listing.ignored[ignored:])
    if hidden:
        log.warning("%s", hidden_classes_note(hidden))
    if class_names is None:
        class_names = [label(d) for d in found]
    else:
        extra = [label(d) for d in found if label(d) not in class_names]
        if extra:
            raise _without_training(root, extra)
    images, labels, paths = [], [], []
    index = {c: i for i, c in enumerate(class_names)}
    for d in found:
        c = label(d)
        files, skips = listing.files, len(listing.skipped)
        for path in _list_class_folder(os.path.join(root, d), listing):
            if not_an_image(path):  # a README, a .json sidecar: predict's rule, said once
                listing.not_images.append(path)
                continue
            try:
                decoded = listing.read(path)
            except UnreadableImage as e:
                reraise_stop(e)  # a Ctrl-C / SIGTERM that came out as this error
                listing.skip(path, str(e))
                continue
            images.append(decoded.pixels)
            if decoded.orientation is not None:
                listing.oriented.append((path, decoded.orientation))
            if decoded.turned is not None:
                listing.turned.append((path, decoded.turned))
            if decoded.shrunk_from is not None:
                listing.shrunk.append((path, decoded.shrunk_from))
            if not decoded.in_graph:
                listing.kept.append((path, decoded.format))
            if decoded.dark is not None:
                listing.dark.append((path, decoded.dark))
            listing.looked()
            labels.append(index[c])
            paths.append(path)
        if record is not None:
            record[c] = {"folder": os.path.join(root, d), "files": listing.files - files,
                         "skipped": listing.skipped[skips:]}
    return images, labels, paths, class_names


def split_layout(path: str) -> dict[str, str]:
    """{"train": …, "val": …, "test": …} (those present) when PATH has the train/ val/
    test/ layout (a train/ folder with sub-folders), else {} (one folder per class).

    Raises DataError when a train/ layout has other top-level folders, or two val folders,
    and when the only top-level folders name splits otherwise (Train/, Test/) and hold
    folders (`_refuse_splits_as_classes`).
    """
    subdirs = {d: os.path.join(path, d) for d in os.listdir(path)
               if _visible(d) and os.path.isdir(os.path.join(path, d))
               and not _ours(os.path.join(path, d))}
    layout = {}
    if "train" in subdirs and any(os.path.isdir(os.path.join(subdirs["train"], d))
                                  for d in os.listdir(subdirs["train"])
                                  if _visible(d) and not _ours(os.path.join(subdirs["train"], d))):
        for d in sorted(subdirs):
            key = _SPLIT_ALIASES.get(d)
            if key is None:
                meant = SPLIT_WORDS.get(d.lower())
                meant = {"val": "val", "test": "test"}.get(meant)  # train/ is there
                hint = (f" (did you mean {meant}/? the split folders are train/, val/ (or "
                        f"validation/, valid/) and test/, in lower case)" if meant else "")
                raise DataError(
                    f"{path} has a train/ folder and also {d!r}/{hint}; use either only "
                    f"train/, val/ and test/ (each with class folders) or one folder per "
                    f"class, not both (train/ holds sub-folders, so it was read as the "
                    f"training split; a class called train with nested folders needs "
                    f"another name)")
            if key in layout:
                raise DataError(f"{path} has two validation folders ({sorted(subdirs)}); "
                                f"keep one")
            layout[key] = subdirs[d]
    else:
        _refuse_splits_as_classes(path, subdirs)
    return layout


def _refuse_splits_as_classes(path: str, subdirs: dict[str, str]) -> None:
    """DataError when every top-level folder of PATH (`subdirs`: {name: path}) names a split
    otherwise than the split layout spells it (Train/, Test/, training/, testing/: SPLIT_WORDS
    in any case) and one holds sub-folders: a Kaggle-style Train/<class>/ … data set was read
    as one folder per class, the classes Test and Train of nested images, without a word (a
    new-user check). Nothing otherwise."""
    meant = {d: SPLIT_WORDS.get(d.lower()) for d in subdirs}
    if not subdirs or not all(meant.values()):
        return
    nested = [d for d, p in sorted(subdirs.items())
              if any(_visible(e) and os.path.isdir(os.path.join(p, e)) for e in os.listdir(p))]
    if not nested:
        return
    renames = ", ".join(f"{d}/ -> {meant[d]}/" for d in sorted(subdirs) if d != meant[d])
    raise DataError(f"folder:{path} has the folders {', '.join(f'{d}/' for d in sorted(subdirs))}"
                    f", named as splits and holding folders ({nested[0]}/…), which would be "
                    f"read as the classes {', '.join(sorted(subdirs))} of the images nested "
                    f"in them; the split layout is PATH/train/<class>/… with train/, val/ (or "
                    f"validation/, valid/) and test/ in lower case: rename them ({renames}), "
                    f"or for classes so named move their images out of the sub-folders")


def locate_folder(rest: str) -> str:
    """folder:PATH's folder, ~ expanded; its listing is read, no image. Raises DataError when
    PATH is empty, missing, a file or has no class sub-folders, or a class folder (train/'s,
    val/'s and test/'s in that layout) has a name that is not UTF-8 or looks like another's
    (`names.same_names`; the loader's first checks; `specs.check_spec`)."""
    path = _require_path(rest, "folder", "folder")
    if not os.path.isdir(path):
        raise DataError(f"folder:{path} is a file, not a folder; a folder spec needs one "
                        f"sub-folder per class (for an .npz file use npz:{path})")
    layout = split_layout(path)
    found = {split: _class_folders(root, _Listing())  # their names are checked as listed
             for split, root in layout.items()}
    train = {}
    for n in found.get("train", []):
        train.setdefault(name_key(label(n), case=True), n)
    for split, names in found.items():  # val/'s or test/'s spelling of a train/ class
        for name in names if split != "train" else ():
            like = train.get(name_key(label(name), case=True))
            if like is not None and name not in found["train"]:
                raise _same_name_folders(os.path.join(layout["train"], like),
                                         os.path.join(layout[split], name), label(like),
                                         label(name), across=True)
    if not layout and not _class_folders(path, _Listing()):
        raise _no_class_folders(path)
    return path


def check_class_files(rest: str, *, min_classes: int, min_per_class: int) -> None:
    """What the listing of folder:REST already tells against the task rules of
    `validate.validate_task`, said before any image is decoded (and before TensorFlow loads;
    `specs.check_spec`): no file at all under the training class folders (PATH's, or
    PATH/train/'s in the train/ val/ test/ layout), fewer than `min_classes` class folders,
    or a class folder with fewer than `min_per_class` files; then a val/ or test/ class
    folder that train/ lacks (refused after train's images were decoded). Files are counted
    as the loader
    finds them (links followed, hidden and OS entries and files that are no image by name
    or first bytes left out: `sniff.not_an_image`), so a count is at least the
    class's training examples: these refusals are ones the loaded task would meet too, and
    the rest (unreadable files, carved splits) waits for the loader. Raises DataError."""
    from hubensemble.data.validate import too_few_classes, too_few_per_class

    path = locate_folder(rest)
    root = split_layout(path).get("train", path)
    listing = _Listing()
    folders = {label(c): os.path.join(root, c) for c in _class_folders(root, listing)}
    # Not the files the loader ignores as no image (`sniff.not_an_image`): a README beside one
    # image let a class pass here and be refused after every image was decoded.
    counts = {}
    for name, folder in folders.items():
        files = _list_class_folder(folder, listing)
        others = [p for p in files if not_an_image(p)]
        listing.not_images += others
        counts[name] = len(files) - len(others)
    if not any(counts.values()):
        folders = names_listed(counts, suffix="/")
        raise DataError(f"no {'image ' if listing.not_images else ''}files under {root}'s "
                        f"class folders ({folders}){_only_not_images(listing.not_images)}; "
                        f"{_EMPTY_HINT}")
    if len(counts) < min_classes:
        name = label(os.path.basename(os.path.normpath(absolute(path))))
        hidden = hidden_classes(root, listing.ignored)
        raise too_few_classes(name, list(counts), min_classes,
                              f"; {hidden_classes_note(hidden)}" if hidden else
                              _wrapped_note(root, list(counts), min_classes)
                              or f"; put each class's images in {root}/<class name>/")
    error = too_few_per_class(counts, min_per_class, folders=folders,
                              note=f" (files in {root}'s class folders, before decoding)")
    if error:
        raise error
    for split, folder in split_layout(path).items():  # before train's images are decoded
        extra = [label(c) for c in _class_folders(folder, _Listing()) if label(c) not in counts]
        if split != "train" and extra:
            raise _without_training(folder, extra)


def fixed_splits(rest: str) -> dict[str, str]:
    """{split: why}: the val / test splits of folder:REST that no fraction sizes, those it
    has as folders (train/ val/ test/ layout; its listing read, no image)."""
    path = locate_folder(rest)
    layout = split_layout(path)
    return {k: f"folder:{path} has its own {k} split ({os.path.basename(layout[k])}/)"
            for k in ("val", "test") if k in layout}


def _reading_bar(path: str, layout: dict[str, str]):
    """The bar of a folder load (`terminal.command_bar`: while a command runs without -q):
    "reading folder:PATH" over the files the load will look at (`_Listing.files`, the
    summary's "N file(s) read"): those under the class folders of PATH (or of its train/
    val/ test/ folders, `layout`) but the ones no image by name or first bytes
    (`sniff.not_an_image`, not read: a notes.txt made the bar end at 303/304 of a summary's
    303 files), and those skipped on the way (beside them, broken links), counted from
    their listing, which costs little beside decoding: 4 classes of 1,000 JPEGs of 256 px
    took 35 s to read with stderr silent."""
    from hubensemble.terminal import command_bar

    def count():  # the folders walked once more: only when the bar is shown
        listing = _Listing()
        if layout:
            _beside_splits(path, listing)
        found = sum(not not_an_image(p)
                    for root in list(layout.values()) or [path]
                    for c in _class_folders(root, listing)
                    for p in _list_class_folder(os.path.join(root, c), listing))
        return found + listing.files  # (the skipped: counted as the load counts them)

    return command_bar(total=count, desc=f"reading folder:{escaped(path)}", unit="file")


def _beside_splits(path: str, listing: _Listing) -> None:
    """The entries of a train/ val/ test/ folder `path` beside its split folders, to
    `listing`: hidden ones ignored, files skipped as misplaced when `_image_beside`."""
    for n in sorted(os.listdir(path)):
        p = os.path.join(path, n)
        if not _visible(n) or _ours(p):
            listing.ignored.append(p)
        elif not os.path.isdir(p) and _image_beside(p):
            listing.skip(p, f"{MISPLACED_WORDS}train/ val/ test/ folders, not an example")


def _load_folder(rest: str, options: LoadOptions) -> Task:
    """folder:PATH — PATH/<class>/*, or PATH/train|val|test/<class>/*."""
    path = locate_folder(rest)
    layout = split_layout(path)
    bar = _reading_bar(path, layout)
    cache = DecodeCache(path)
    try:
        task = _read_folder(path, layout, options, bar, cache)
    except DataError:  # a refused folder's decoded files are not decoded again once fixed
        cache.save()
        raise
    finally:
        bar.close()
    cache.save()
    return task


def _read_folder(path: str, layout: dict[str, str], options: LoadOptions, bar,
                 cache: DecodeCache | None = None) -> Task:
    """`_load_folder`'s work once the folder is located; `bar` counts the files read;
    `cache` (None: none) decodes each file once across loads (`decodecache`)."""
    listing, per_class = _Listing(bar, cache), {"train": {}}
    if layout:
        _beside_splits(path, listing)
        images, labels, paths, class_names = _read_class_folders(
            layout["train"], None, listing, per_class["train"])
        train = _make_split(images, labels, paths, owned=True)
        got = {}
        for key in ("val", "test"):
            if key in layout:
                per_class[key], others = {}, len(listing.not_images)
                im, lab, pa, _ = _read_class_folders(layout[key], class_names, listing,
                                                     per_class[key])
                if not lab:  # its class folders' unreadable files named, when it has some
                    error = lost_to_skips({key: per_class[key]}, lambda *_: False)
                    if error is None:  # and the files in them that are no image
                        why = _only_not_images(listing.not_images[others:], "its class folders")
                        raise DataError(f"{layout[key]} holds no readable images{why}; add "
                                        "class folders with images or remove it")
                    error.skipped = list(listing.skipped)  # load_task logs each
                    raise error
                got[key] = _make_split(im, lab, pa, owned=True)
        if not len(train):
            raise _empty_error(path, listing.skipped, listing.not_images)
        _note_carve(per_class["train"], "val" not in got, "test" not in got, options)
        short = unreached(train, "val" not in got, "test" not in got, options, _OWN_SPLIT)
        train, val, test = _carve(train, "val" not in got, "test" not in got, options,
                                  owned=True)
        val, test = got.get("val", val), got.get("test", test)
        how = "train/" + "".join(f", {k}/" for k in got)
        carved = [k for k in ("val", "test") if k not in got and
                  (val if k == "val" else test) is not None]
        if carved:
            how += f"; {' and '.join(carved)} split off train (seed {options.seed})"
        how += "".join(f"; {note}" for note in short)
    else:
        images, labels, paths, class_names = _read_class_folders(path, None, listing,
                                                                 per_class["train"])
        if not class_names:  # emptied since locate_folder looked
            raise _no_class_folders(path)
        if not labels:
            raise _empty_error(path, listing.skipped, listing.not_images)
        _note_carve(per_class["train"], True, True, options)
        train = _make_split(images, labels, paths, owned=True)
        short = unreached(train, True, True, options, _OWN_SPLIT)
        train, val, test = _carve(train, True, True, options, owned=True)
        carved = [k for k, split in (("val", val), ("test", test)) if split is not None]
        how = ("class folders; " + carved_words(options)
               + "".join(f"; {note}" for note in short))
    name = label(os.path.basename(os.path.normpath(absolute(path))))
    # The source names the folder absolute, as Task.spec does (`folder:imgs` and `folder:../x`
    # named no folder from another working directory, as run.json and the report show it).
    task = Task(name=name, source=f"folder:{absolute(path)} ({how})", class_names=class_names,
                train=train, val=val, test=test, skipped=listing.skipped,
                ignored=listing.ignored, files=listing.files, oriented=listing.oriented,
                turned=listing.turned, unservable=listing.kept, dark=listing.dark,
                not_images=listing.not_images, shrunk=listing.shrunk, class_files=per_class,
                carved=tuple(carved))
    # Trained on, refused by serve_bytes; read dark; files not images, said once (not a
    # warning each as an "unreadable image")
    said_unless_summarised(task, log)
    return task


def _wrapped_note(root: str, classes: list[str], min_classes: int) -> str | None:
    """The refusal's way on when `root`'s one class folder holds the data set itself (a
    folder around the data: PATH/flowers/<class>/…, or PATH/flowers/train/<class>/…): the
    spec of that folder, "; /d/flowers/ holds folders of its own (daisy/, rose/): if they
    are the classes, pass folder:/d/flowers"; None otherwise. Such data was refused as one
    class, told only to put each class's images in PATH/<class name>/, which they were."""
    if len(classes) != 1:
        return None
    inner = os.path.join(root, classes[0])
    try:
        found = _class_folders(inner, _Listing())
        splits = split_layout(inner)
    except (OSError, DataError):
        return None
    if len(found) < min_classes and not splits:
        return None
    shown = names_listed([label(f) for f in found], limit=8, suffix="/")
    return (f"; {inner}/ holds folders of its own ({shown}): if they are the classes (or "
            f"the train/ val/ test/ splits), pass folder:{absolute(inner)}")
