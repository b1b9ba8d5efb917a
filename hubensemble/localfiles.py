"""What a local module path holds, from its folder's listing and its files' first bytes (no
TensorFlow, no network): `local_source` (a SavedModel folder, a Keras model file, a keras-hub
preset folder or none), `inner_module`, `inner_modules` and `modules_inside` (what a handle
one folder too high holds), `file_not_module`, `what_bytes_are` (`text_start`: text or
binary) and `keras_file_problem` (a web page or a copy cut short where a module should be:
`cut_short`). `handles` re-exports them (hub's resolvers and loaders import them from there)
and `modulefiles` checks a module's files with them; this module imports neither, so both
can."""

from __future__ import annotations

import codecs
import os

from hubensemble.text import escaped, value_to_write

#: Suffixes of a Keras model file (a handle `PATH.keras`, `PATH.h5`).
KERAS_FILE_SUFFIXES = (".keras", ".h5", ".hdf5")


def local_source(path) -> str | None:
    """What the local ``path`` holds: "saved-model" (a folder with saved_model.pb),
    "keras-file" (a .keras/.h5/.hdf5 file) or "keras-hub-preset" (a folder with keras-hub's
    config.json and metadata.json); None for anything else. Reads the listing only (no
    TensorFlow: `catalogue validate` uses it too)."""
    if os.path.isfile(path):
        return "keras-file" if path.lower().endswith(KERAS_FILE_SUFFIXES) else None
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return "saved-model"
    if all(os.path.isfile(os.path.join(path, f)) for f in ("config.json", "metadata.json")):
        return "keras-hub-preset"
    return None


def inner_modules(path) -> list[str]:
    """What inside the folder `path` holds a module (`local_source`), sorted by name: each
    such folder as "NAME/", each .keras/.h5/.hdf5 file as its name; [] when none does or the
    folder cannot be listed. Reads the listings only."""
    try:
        names = sorted(os.listdir(path))
    except OSError:
        return []
    found = []
    for name in names:
        kind = local_source(os.path.join(path, name))
        if kind is not None:
            found.append(name if kind == "keras-file" else name + "/")
    return found


def inner_module(path) -> str | None:
    """The name of the folder inside the folder `path` that holds the module a handle one
    level too high meant: TF Serving's layout (``m/1/saved_model.pb``, its version folders:
    the highest number, which TF Serving serves, when every module there is such a folder),
    or an archive unpacked into a folder of its own (the one module there). None when none
    does, when the module there is a file, or when several modules are there and none is
    the one meant (``models/`` holding ``a/``, ``b/`` and ``c.keras``: the first by name was
    offered as "the module"; `inner_modules` lists them). Reads the listings only."""
    found = inner_modules(path)
    folders = [name[:-1] for name in found if name.endswith("/")]
    if not folders or len(folders) != len(found):
        return None
    if len(folders) == 1:
        return folders[0]
    return max(folders, key=int) if all(n.isdigit() for n in folders) else None


def modules_inside(folder) -> str:
    """"; …" naming the module(s) inside `folder` (a str path), a handle that holds none
    itself, to follow the words that say so (validate's warning,
    `handlewarnings.local_handle_warnings`): the one meant (`inner_module`: "; the module is in its
    folder 10/: write handle: …"), a lone model file ("; the module is its file m.keras:
    write handle: …"), or all of several (`inner_modules`, at most five named: "; 3 modules
    are in it (a/, b/, c.keras), not one: write the one you mean as the handle, e.g.
    handle: …"); "" when none. Reads the listings only."""
    inner, found = inner_module(folder), inner_modules(folder)
    if inner:
        return (f"; the module is in its folder {escaped(inner)}/: "
                + value_to_write("handle", os.path.join(folder, inner)))
    if not found:
        return ""
    first = value_to_write("handle", os.path.join(folder, found[0].rstrip("/")))
    if len(found) == 1:
        return f"; the module is its file {escaped(found[0])}: {first}"
    named = ", ".join(escaped(n) for n in found[:5]) + (
        f" and {len(found) - 5} more" if len(found) > 5 else "")
    return (f"; {len(found)} modules are in it ({named}), not one: write the one you mean as "
            f"the handle, e.g. {first.removeprefix('write ')}")


def file_not_module(path) -> str:
    """Why the local file `path` (not a .keras/.h5 model file) cannot be a module, and the
    way on: "PATH is a file, not …"; for an archive (.tar, .tar.gz, .tgz, .tar.bz2, .tar.xz,
    .zip: a module downloaded by hand) the command that unpacks it. Rank's words
    (`hub.resolvers.LocalResolver`) and `catalogue validate`'s."""
    name = os.path.basename(path)
    way = "a local archive must be unpacked first"
    if name.lower().endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip")):
        unpack = (f"unzip '{name}' -d FOLDER" if name.lower().endswith(".zip") else
                  f"mkdir FOLDER && tar xf '{name}' -C FOLDER")
        way = (f"it is an archive: unpack it ({unpack}) and write the folder that holds "
               "saved_model.pb as the handle")
    return f"{path} is a file, not a SavedModel folder or a .keras/.h5 model file; {way}"


#: The first bytes of an HDF5 file (the .h5 / .hdf5 Keras format); a .keras file is a zip.
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


#: Byte order marks and their codecs, UTF-32's before UTF-16's (BOM_UTF32_LE starts with
#: BOM_UTF16_LE): a text file that starts with one is text in that encoding.
_BOMS = ((codecs.BOM_UTF8, "utf-8", "UTF-8"), (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
         (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
         (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
         (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"))
#: The control characters text holds: file(1)'s (encoding.c, `text_chars`: BEL, BS, HT, LF,
#: VT, FF, CR and ESC); any other, NUL above all, makes bytes binary.
_TEXT_CONTROLS = frozenset("\a\b\t\n\v\f\r\x1b")


def text_start(head: bytes) -> tuple[str, str] | None:
    """(the text the bytes `head` start with, its encoding: "" for UTF-8 or ASCII, "UTF-8",
    "UTF-16" or "UTF-32" after a byte order mark, "ISO-8859") when they read as text, else
    None: file(1)'s rule (encoding.c): UTF-16 and UTF-32 only after their byte order mark
    (`codecs.BOM_*`), else no NUL, then UTF-8, else ISO-8859-1 without its C1 controls
    (0x80-0x9f), and every character printable, a space (U+00A0 on) or one of
    `_TEXT_CONTROLS`. A multi-byte
    character cut at the end of `head` is dropped. Decoded with "replace", a binary's
    invalid bytes became U+FFFD, which is printable: binary was said to be text."""
    encoding, label, body = None, "", head
    for bom, codec, name in _BOMS:
        if head.startswith(bom):
            encoding, label, body = codec, name, head[len(bom):]
            break
    if encoding is None and b"\x00" in head:
        return None
    for codec in ([encoding] if encoding else ["utf-8", "iso-8859-1"]):
        try:  # incremental, not final: a character cut by the end of `head` is no error
            text = codecs.getincrementaldecoder(codec)().decode(body, final=False)
        except UnicodeDecodeError:
            continue
        if codec == "iso-8859-1":
            label = "ISO-8859"
        if all(c.isprintable() or c in _TEXT_CONTROLS or c.isspace() and c > "\x9f"
               for c in text):  # and no-break or other wide spaces, not printable to Python
            return text, label
        return None
    return None


def what_bytes_are(head: bytes) -> str:
    """What a file that should have been a module (an archive, a model file) holds instead,
    from its first bytes, for messages: "nothing (0 bytes)", "text (it starts with
    '<!DOCTYPE html>…')" — a web page or an error a server sent; "text (UTF-16, it starts
    with …)" in another encoding (`text_start`) —, "a zip archive", "an HDF5 file", "a gzip
    stream", else its first bytes in hex. Its words start with "text" for any text."""
    if not head:
        return "nothing (0 bytes)"
    for magic, what in ((b"PK\x03\x04", "a zip archive"), (HDF5_SIGNATURE, "an HDF5 file"),
                        (b"\x1f\x8b", "a gzip stream")):
        if head.startswith(magic):
            return what
    found = text_start(head)
    if found is not None:  # a page: "<!DOCTYPE html>\n…"
        text, label = found
        return (f"text ({label + ', ' if label else ''}it starts with "
                f"{' '.join(text[:40].split())!r}), such as a web page or an error message a "
                "server sent")
    return "bytes " + " ".join(f"{b:02x}" for b in head[:8])


def cut_short(path, head: bytes) -> str | None:
    """"is cut short: …; …" when the Keras file at `path`, whose first bytes `head` (64 or
    more) are a zip's (.keras) or HDF5's (.h5), has lost its end, as a copy or download that
    stopped leaves it; else None. Keras said "File not found: filepath=… Please ensure the file
    is an accessible `.keras` zip file" for a cut .keras file, h5py "Unable to synchronously
    open file (truncated file: eof = …)" for a cut .h5. A zip without its end of central
    directory (`zipfile.is_zipfile`, which reads the file's last bytes only); an HDF5 file
    shorter than the end of file address its superblock records (HDF5 File Format
    Specification, "Superblock", versions 0 to 3: the size of offsets, then the base address
    and, two offsets on, the end of file address; HDF5's own test is size + base < end)."""
    import os
    import zipfile

    size = os.path.getsize(path)
    way = "(a copy or download that stopped); copy or download it again"
    if head.startswith(b"PK"):
        if zipfile.is_zipfile(path):
            return None
        return (f"is cut short: its {size:,} bytes are a zip archive without its end, the "
                f"central directory {way}")
    version = head[8] if len(head) > 8 else None
    if version in (0, 1):
        width, at = head[13], 24 + 4 * version  # version 1 adds 4 bytes before the addresses
    elif version in (2, 3):
        width, at = head[9], 12
    else:
        return None
    if width not in (2, 4, 8) or len(head) < at + 3 * width:
        return None
    base = int.from_bytes(head[at:at + width], "little")
    end = int.from_bytes(head[at + 2 * width:at + 3 * width], "little")
    if size + base >= end:
        return None
    return f"is cut short: {size:,} of the {end - base:,} bytes its HDF5 header records {way}"


def keras_file_problem(path, *, name=None) -> str | None:
    """Why the local file `path` (named .keras, .h5 or .hdf5) cannot be a Keras model file,
    from its first bytes, or None: a .keras file is a zip archive, a .h5/.hdf5 file starts
    with the HDF5 signature. Keras says "File not found" for an existing file of other bytes
    (an HTML page a server sent for the URL), which hides what happened. The message calls
    the file `name` (default: its path; the URL for a download). A file of the right kind
    that has lost its end is said to be cut short (`cut_short`: a zip's last
    bytes, an HDF5 header's end address). Raises OSError when the file cannot be read."""
    with open(path, "rb") as f:
        head = f.read(64)
    keras_zip = str(path).lower().endswith(".keras")
    if head.startswith(b"PK\x03\x04" if keras_zip else HDF5_SIGNATURE):
        cut = cut_short(path, head)  # a copy or download that stopped
        return f"{name or os.fspath(path)} {cut}" if cut else None
    # "an HDF5 file": a weights file is one too ("a HDF5 model file" was said of it).
    want = "a .keras file (a zip archive)" if keras_zip else "an HDF5 file"
    return f"{name or os.fspath(path)} is not {want}: it holds {what_bytes_are(head)}"
