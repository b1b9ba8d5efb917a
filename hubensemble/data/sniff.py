"""What a file is, from its first bytes: the signature table both decoders use (TF-free).

The graph decoder (`hubensemble.data.graph`, also inside the exported SavedModel) and the
Python paths name a file's format from this one table, so a refusal names the same format
everywhere. Which formats the graph decodes is `GRAPH_FORMATS`; the others go to the kept
decoder (Pillow) on the Python paths and are refused by `serve_bytes`.
"""

from __future__ import annotations

import functools
import os
import re

from hubensemble.text import names_listed, paths_shown

#: Formats the graph decoder reads (in training, evaluate, predict and serve_bytes alike).
GRAPH_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WebP")

#: (format, ((offset, magic bytes), ...)): a file is the first format all of whose parts
#: match. Formats outside GRAPH_FORMATS are named so a refusal can say what the file is.
SIGNATURES: tuple[tuple[str, tuple[tuple[int, bytes], ...]], ...] = (
    ("JPEG", ((0, b"\xff\xd8\xff"),)),
    ("PNG", ((0, b"\x89PNG\r\n\x1a\n"),)),
    ("GIF", ((0, b"GIF87a"),)),
    ("GIF", ((0, b"GIF89a"),)),
    ("BMP", ((0, b"BM"),)),
    ("WebP", ((0, b"RIFF"), (8, b"WEBP"))),
    ("TIFF", ((0, b"II*\x00"),)),
    ("TIFF", ((0, b"MM\x00*"),)),
    ("BigTIFF", ((0, b"II+\x00"),)),
    ("BigTIFF", ((0, b"MM\x00+"),)),
    ("JPEG XL", ((0, b"\xff\x0a"),)),
    ("JPEG XL", ((0, b"\x00\x00\x00\x0cJXL \r\n\x87\n"),)),
    ("JPEG 2000", ((0, b"\x00\x00\x00\x0cjP  \r\n\x87\n"),)),
    ("JPEG 2000", ((0, b"\xff\x4f\xff\x51"),)),
    # Every major brand of ISO/IEC 23008-12 (HEIF) and of AV1 image files: still images and
    # sequences alike (a phone's burst, an animated AVIF, which Pillow writes as "avis" and
    # reads as the kept decoder), which were named "not a JPEG, PNG, GIF, BMP or WebP file".
    *(("HEIF/AVIF", ((4, b"ftyp" + brand),)) for brand in (
        b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1",
        b"msf1", b"avif", b"avis")),
    # Netpbm: "P1".."P7" and whitespace (netpbm.sourceforge.net's formats); Pillow reads
    # them, and a P6 file was refused as "not a JPEG, PNG, … file (it starts with 50 36 …)".
    *((name, ((0, b"P" + digit + space),)) for digits, name in (
        (b"14", "PBM"), (b"25", "PGM"), (b"36", "PPM"), (b"7", "PAM"))
      for digit in (bytes([d]) for d in digits) for space in (b" ", b"\t", b"\n", b"\r")),
    ("ICO", ((0, b"\x00\x00\x01\x00"),)),
    ("PSD", ((0, b"8BPS"),)),
    ("PDF", ((0, b"%PDF"),)),
    ("ZIP", ((0, b"PK\x03\x04"),)),
    ("gzip", ((0, b"\x1f\x8b"),)),
    ("SVG/XML", ((0, b"<?xml"),)),
    ("SVG/XML", ((0, b"<svg"),)),
    ("HTML", ((0, b"<!DOCTYPE"),)),
    ("HTML", ((0, b"<html"),)),
)

#: SIGNATURES' formats that are no image (named so that a refusal says what the file is):
#: a file of them beside the class folders is not taken for a misplaced example.
NOT_IMAGES = frozenset({"PDF", "ZIP", "gzip", "SVG/XML", "HTML"})

#: The shorter side, in pixels, that a decoded file keeps at most: a larger image is shrunk,
#: aspect kept, until its shorter side is this (`shrink.shrink_to_short_side`), in training
#: and in serve_bytes alike. A 12 MP phone photo (4032 x 3024) held whole costs 36.6 MB as
#: uint8, and `rank` peaked at 7.5 GB for 40 of them (24 GB: about 130 photos); shrunk to
#: 1365 x 1024 it costs 4.2 MB. Every stage resizes to a square of at most 1024 px (the
#: HyperRule's largest is 512, `hyperrule.LARGE_RESOLUTION`; TF Hub's largest image modules
#: take 600), so no stage enlarges what the shrink took, whatever the aspect ratio. The
#: shorter side, as torchvision's `Resize(int)`.
MAX_SHORT_SIDE = 1024

#: How a tfds data set's source (`Task.source`) says that its image files were decoded by the
#: decode policy (`data.tfds.stored_encoded`), and since when: a run recorded before holds
#: tfds' own decoding of them, which `datachange.compare` names as the cause of other pixels.
TFDS_DECODED_WORDS = "image files decoded as serve_bytes decodes them"
TFDS_DECODED_SINCE = "2026-12-06"

#: Formats named with "an" ("an HTML file").
_AN = frozenset({"HTML", "ICO", "SVG/XML"})


def article(name: str) -> str:
    """ "a" or "an" before a format's name in a refusal ("a TIFF file", "an HTML file")."""
    return "an" if name in _AN else "a"


#: The longest prefix any signature reads.
HEAD_BYTES = max(off + len(magic) for _, parts in SIGNATURES for off, magic in parts)

#: Prefixes of the graph decoder's own refusals (in the op error's message). `unsupported`:
#: a format (or variant, e.g. an RLE-compressed BMP) the graph does not decode, which the
#: Python paths hand to the kept decoder; `invalid`: a file of a graph format that is damaged.
UNSUPPORTED = "hubensemble-decode[unsupported]"
INVALID = "hubensemble-decode[invalid]"

#: Said by every refusal of a format outside the graph.
GRAPH_FORMATS_TEXT = "JPEG, PNG, GIF, BMP and WebP"
#: Said after it when the file is an image of another format (not a document, an archive or
#: a file of no known format): what to do with it.
CONVERT_WORDS = ": convert it to PNG first (hubensemble predict does: it reads it with Pillow)"
#: Said instead for an image of a format Pillow has no reader of here (PAM, JPEG XL, HEIF
#: without a plugin): predict cannot read it either (a new user's check: a PAM file was sent
#: to predict, which refused it).
CONVERT_ELSEWHERE = (": convert it to PNG first with another tool (an image editor, "
                     "ImageMagick): hubensemble predict cannot read it either")
#: The Pillow format (`PIL.Image.OPEN`'s key) that reads a SIGNATURES row's format; a row
#: without one, or whose format Pillow has no plugin for here, gets CONVERT_ELSEWHERE.
_PILLOW_FORMATS = {"TIFF": "TIFF", "BigTIFF": "TIFF", "JPEG 2000": "JPEG2000",
                   "JPEG XL": "JXL", "HEIF/AVIF": "AVIF", "PBM": "PPM", "PGM": "PPM",
                   "PPM": "PPM", "ICO": "ICO", "PSD": "PSD"}


def convert_words(name: str) -> str:
    """What a refusal of an image of format `name` (a SIGNATURES row's, outside
    GRAPH_FORMATS) says to do: CONVERT_WORDS when Pillow here has a reader of it (predict
    then reads it), else CONVERT_ELSEWHERE. "HEIF/AVIF" counts as read (Pillow reads AVIF;
    a HEIF file predict cannot read is said so by predict itself)."""
    import PIL.Image

    PIL.Image.init()
    return CONVERT_WORDS if _PILLOW_FORMATS.get(name) in PIL.Image.OPEN else CONVERT_ELSEWHERE


def sniff_row(data: bytes) -> int:
    """The row of SIGNATURES that `data` matches first, len(SIGNATURES) when none does
    (`graph.sniff_index` is the same rule in TensorFlow ops)."""
    head = bytes(data[:HEAD_BYTES])
    for row, (_, parts) in enumerate(SIGNATURES):
        if all(head[off:off + len(magic)] == magic for off, magic in parts):
            return row
    return len(SIGNATURES)


def sniff(data: bytes) -> str | None:
    """The format of `data` by SIGNATURES (e.g. "PNG", "TIFF"), None when none matches."""
    row = sniff_row(data)
    return SIGNATURES[row][0] if row < len(SIGNATURES) else None


def image_format(data: bytes) -> str | None:
    """The image format of `data` by SIGNATURES (as `sniff`), None when none matches or the
    match is a document or an archive (NOT_IMAGES: PDF, ZIP, gzip, SVG/XML, HTML): the rule
    by which a file outside the class folders counts as an image (`data.folder`)."""
    found = sniff(data)
    return None if found in NOT_IMAGES else found


@functools.lru_cache(maxsize=None)
def image_suffixes() -> frozenset[str]:
    """The file name suffixes (lower case, with the dot: ".jpg", ".png", ".tif", …) of the
    formats Pillow opens (`Image.registered_extensions()` of a format in `Image.OPEN`; ".mpo",
    which its JPEG opener reads; not ".pdf" nor ".palm", which it only writes). Asked once:
    predict asked Pillow per file, which builds the table anew each time."""
    from PIL import Image

    return frozenset(ext.lower() for ext, fmt in Image.registered_extensions().items()
                     if fmt in Image.OPEN or fmt == "MPO")


def not_an_image(path) -> bool:
    """Whether the file `path`, found in a folder of images (a class folder; a folder given
    to `predict`), is no image file: its name has no suffix of `image_suffixes` (any case)
    and its first HEAD_BYTES bytes name no image format (`image_format`): a README.md, a
    notes.txt, a labels.csv, an .xmp or .json sidecar, a PDF. The one rule of both: such a
    file is not read, and is said once as ignored, with a count and examples
    (`not_images_words`), where the folder loader skipped one in a class folder as an
    unreadable image, with a warning each. A file named as an image is read however its
    bytes begin, an empty or damaged one skipped as unreadable with its reason, as
    keras.utils.image_dataset_from_directory and torchvision's ImageFolder take a folder's
    files by those suffixes; so is one that cannot be opened or is not a regular file
    (skipped with its reason). Hidden and OS entries (.DS_Store, ._x.jpg, Thumbs.db) are
    ignored before this, by their names (`loading.IGNORED_NAMES`)."""
    if os.path.splitext(os.fspath(path))[1].lower() in image_suffixes():
        return False
    try:
        if not os.path.isfile(path):  # a FIFO is never opened (it could block)
            return False
        with open(path, "rb") as f:
            return image_format(f.read(HEAD_BYTES)) is None
    except OSError:
        return False


def not_images_words(paths, limit: int = 3) -> str:
    """The count of the files `not_an_image` ignored (`paths`): "4 ignored: not images by
    name or first bytes (README.md, labels.csv, notes.txt, …)" (the first `limit` names)."""
    return (f"{len(paths)} ignored: not images by name or first bytes "
            f"({names_listed([os.path.basename(os.fspath(p)) for p in paths], limit)})")


def not_images_note(paths) -> str | None:
    """What a folder load says, once, of the files of its class folders that `not_an_image`
    found no image (`paths`; `Task.not_images`): "5 ignored: not images by name or first
    bytes (README.md, …) in the class folders, not read"; None without any. The data
    summary says it (`data.taskwords.file_notes`), or the loader's warning when none will."""
    if not paths:
        return None
    return f"{not_images_words(paths)} in the class folders, not read"


def animated_webp(data: bytes) -> bool:
    """Whether `data` is an animated WebP: a WebP whose VP8X chunk (bytes 12..16) sets the
    animation flag (bit 1 of byte 20), the rule by which the graph's WebP branch refuses it
    (`graph._webp`: TensorFlow's decoder corrupts the heap on some). The Python paths send
    such a file to the kept decoder without running the graph, whose refusal printed a
    "Local rendezvous is aborting … assertion failed" line from TensorFlow's C++ for a file
    that is then read (a new-user check)."""
    return (sniff(data) == "WebP" and data[12:16] == b"VP8X" and len(data) > 20
            and bool(data[20] & 2))


def outside_graph(data: bytes) -> str:
    """What the graph decoder's refusal of a file outside GRAPH_FORMATS says it is (the text
    between `UNSUPPORTED: ` and `; serve_bytes decodes …` in `graph._refuse_format`): "a
    TIFF file", or for no signature "not a JPEG, PNG, GIF, BMP or WebP file (it starts with
    bytes 68 65 6c 6c 6f 0a)", or for a file that ends inside a decodable format's signature
    (inside its header past it: `decode_bytes` itself) "too short to be a JPEG file (2
    bytes)" (`too_short`; the graph's is INVALID's). The Python paths use it to refuse such
    files without TensorFlow, in the graph's words."""
    name = sniff(data)
    if name is None:
        short = too_short(data)
        if short:
            return short
        return (f"not a {GRAPH_FORMATS_TEXT.replace(' and ', ' or ')} file (it starts with "
                f"bytes {first_bytes(data)})")
    return f"{article(name)} {name} file"


def unservable_note(kept: list[tuple[str, str]]) -> str | None:
    """What the data summary says of the images the kept decoder (Pillow) read, which
    serve_bytes refuses (`kept`: (path, format) of each, `decode.Decoded.in_graph` False):
    "12 TIFF images (e.g. PATH): serve_bytes refuses TIFF; predict converts them (to a
    lossless PNG; another client must convert them to PNG or JPEG first)", formats counted
    apart ("12 TIFF and 1 PPM images"); None without any. A folder of 11 % TIFF trained and
    evaluated, and its export's serve_bytes then refused every one, said nowhere (a new-user
    check), as the orientation tags are counted."""
    if not kept:
        return None
    counts: dict[str, int] = {}
    for _, fmt in kept:
        counts[fmt] = counts.get(fmt, 0) + 1
    names = list(counts)
    listed = " and ".join(", ".join(f"{n} {f}" for f, n in counts.items()).rsplit(", ", 1))
    return (f"{listed} image{'' if len(kept) == 1 else 's'} (e.g. "
            f"{paths_shown([kept[0][0]])}): serve_bytes refuses "
            f"{' and '.join(names) if len(names) < 3 else 'them'}; predict converts "
            f"{'it' if len(kept) == 1 else 'them'} (to a lossless PNG; another client must "
            "convert them to PNG or JPEG first)")


#: Bytes a BMP file holds at least: its 14-byte file header and the 4-byte size of its info
#: header (Microsoft's BITMAPFILEHEADER and BITMAPINFOHEADER.biSize). A shorter one ("BM")
#: was "a BMP file with a 0-byte header".
BMP_MIN_BYTES = 18


#: Bytes at fixed places that every file of each format serve_bytes decodes begins with: a
#: file that ends before them is "too short to be a PNG file (8 bytes)", where one cut past
#: its magic signature but inside them ("GIF89a", a PNG's 8-byte signature alone) was "a
#: PNG file that cannot be decoded (damaged past its header …)", which docs/export.md gave
#: only to damage past these bytes. JPEG: SOI ff d8 and the first marker segment's marker
#: and length (ITU-T T.81 B.1.1.4); PNG: the signature and the IHDR chunk, which must come
#: first (length, type, 13 bytes, CRC; PNG spec 5.6); GIF: the header and the logical
#: screen descriptor (GIF89a spec 17, 18); BMP: BMP_MIN_BYTES; WebP: the RIFF header, the
#: first chunk's header and the fixed start of its frame, 10 bytes for VP8 (RFC 6386 9.1)
#: and VP8X, 5 for VP8L (RFC 9649 2, 3): `WEBP_VP8L_BYTES`.
HEADER_BYTES = {"JPEG": 6, "PNG": 33, "GIF": 13, "BMP": BMP_MIN_BYTES, "WebP": 30}
WEBP_VP8L_BYTES = 25


def header_bytes(name: str, data: bytes) -> int:
    """The bytes of fixed layout a file of format `name` (one of GRAPH_FORMATS) begins with
    (`HEADER_BYTES`; a lossless WebP, its first chunk b"VP8L", WEBP_VP8L_BYTES)."""
    if name == "WebP" and bytes(data[12:16]) == b"VP8L":
        return WEBP_VP8L_BYTES
    return HEADER_BYTES[name]


def too_short_words(name: str, n: int) -> str:
    """"too short to be a JPEG file (2 bytes)": how every path names a file of `n` bytes
    (n > 0) that begins as format `name` but ends before its header does (`too_short`;
    `graph.too_short` in TensorFlow ops)."""
    return f"too short to be {article(name)} {name} file ({n} byte{'' if n == 1 else 's'})"


def too_short(data: bytes) -> str | None:
    """`too_short_words` for `data` when it is not empty, every byte it has of the signature
    of a format serve_bytes decodes (GRAPH_FORMATS) matches, and it ends before that
    format's header of fixed layout (`header_bytes`: b"\xff\xd8" of a JPEG's ff d8 ff,
    b"GIF89a" alone, a PNG's signature without its IHDR chunk, a BMP of fewer than
    BMP_MIN_BYTES bytes); None otherwise. It was "not a JPEG, PNG, GIF, BMP or WebP file (it
    starts with bytes ff d8)", "a BMP file with a 0-byte header" and "a GIF file that cannot
    be decoded (damaged past its header …)". The first such row of SIGNATURES names it, as
    `sniff_row` picks a format."""
    n = len(data)
    if n == 0:
        return None
    for name, parts in SIGNATURES:
        if name in GRAPH_FORMATS and n < header_bytes(name, data) and all(
                bytes(data[off:off + len(magic)]) == magic[:max(0, n - off)]
                for off, magic in parts):
            return too_short_words(name, n)
    return None


def first_bytes(data: bytes, n: int = 8) -> str:
    """The first `n` bytes as spaced hex, e.g. "25 50 44 46" (how a refusal shows them)."""
    return " ".join(f"{b:02x}" for b in bytes(data[:n])) or "none"


#: How every path names an image its decoder refused for its size, after "a JPEG file of
#: W x H pixels" (`graph.TOO_LARGE` begins with it: serve_bytes, the folder loader, predict).
TOO_LARGE_WORDS = ", too large to decode ("


#: How the folder loader's reason for a file where no example can be begins ("a file outside
#: the class folders, not an example …"): counted "misplaced", not "unreadable".
MISPLACED_WORDS = "a file outside the "


def skip_kind(reason: str) -> str:
    """The word a skipped file is counted by, from its `reason`: "too large" for an image its
    decoder refused for its size (TOO_LARGE_WORDS), "misplaced" for a file the folder loader
    found where no example can be (MISPLACED_WORDS), else "unreadable" (a damaged or empty
    file, not an image, a file that cannot be opened, a broken link). A too-large image was
    counted "skipped (unreadable)" while its own warning said "too large"."""
    reason = str(reason)
    if TOO_LARGE_WORDS in reason:
        return "too large"
    return "misplaced" if reason.startswith(MISPLACED_WORDS) else "unreadable"


def skip_counts(reasons) -> dict[str, int]:
    """{`skip_kind`: how many} of the skipped files' `reasons`, in the order each kind first
    comes."""
    counts: dict[str, int] = {}
    for reason in reasons:
        kind = skip_kind(reason)
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def skipped_words(reasons) -> str:
    """Why files were skipped, by their `reasons`' kinds (`skip_counts`): the kind alone when
    they are all one ("unreadable", "too large"), else each counted: "2 unreadable, 1 too
    large"; "" for none."""
    counts = skip_counts(reasons)
    if len(counts) == 1:
        return next(iter(counts))
    return ", ".join(f"{n} {kind}" for kind, n in counts.items())


def skipped_count(reasons, detail: str = "") -> str:
    """How many files were skipped and why, by their `reasons` (`skipped_words`): "4 skipped
    (3 unreadable, 1 too large)", "1 skipped (unreadable)", "0 skipped"; `detail` (the files
    named with their reasons) after the kinds: "2 skipped (unreadable; a.jpg: …; b.jpg: …)".
    The one spelling of predict's closing count, the data summary's and the report's "files
    read", `fit`'s result and a short class's refusal (`validate.lost_to_skips`): the loader's
    said "1 skipped" without why, `fit`'s "unreadable" of every file, the refusal "2
    unreadable and skipped"."""
    reasons = list(reasons)
    if not reasons:
        return "0 skipped"
    return f"{len(reasons)} skipped ({skipped_words(reasons)}{'; ' if detail else ''}{detail})"


#: A reason's per-file detail (`reason_kind`): a run of four or more hex byte pairs (an unknown
#: file's first bytes: "it starts with bytes 2e 15 cf 6f …") or a number (TensorFlow's
#: "Invalid PNG data, size 144", a size in pixels). Hex first: "15 cf 6f 01" is one detail.
_DETAIL = re.compile(r"\b[0-9a-f]{2}(?: [0-9a-f]{2}){3,}\b|\b\d+(?:\.\d+)?\b")


def reason_kind(reason) -> str:
    """The kind of a skipped file's `reason`: the reason with each per-file detail (`_DETAIL`:
    its first bytes, a size) replaced by "…", as "not a JPEG, PNG, GIF, BMP or WebP file (it
    starts with bytes …); …" or "a damaged PNG file (Invalid PNG data, size …)". Files are
    grouped by it (`by_reason`): 40 files of random bytes each had a reason of its own. The
    one place a detail is told from a reason; each file's full reason stays in run.json
    (data.task.skipped)."""
    return _DETAIL.sub("…", str(reason))


def _natural(text: str) -> list:
    """Sort key ordering digit runs as numbers ("junk_2" before "junk_10"), as
    `candidate.natural_key` (not imported: this module stays light)."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", text) if t]


def natural_skips(skipped) -> list[tuple[str, str]]:
    """Skipped files `skipped` ([(path, reason)]) in natural path order (`_natural`: junk_2
    before junk_10): the data summary named "junk_1, junk_10, junk_11" of junk_0…junk_39."""
    return sorted(skipped, key=lambda s: _natural(str(s[0])))


def by_reason(skipped) -> dict[str, list[str]]:
    """Skipped files `skipped` ([(path, reason)]) by the kind of their reason (`reason_kind`):
    {reason: [path (str), …]}, each in the order it first comes
    in natural path order (`natural_skips`: a refused load's list is no Task's, sorted);
    the reason is the files' own when they all have the same, else its kind (its per-file
    details "…")."""
    grouped: dict[str, list] = {}
    for path, reason in natural_skips(skipped):
        grouped.setdefault(reason_kind(reason), []).append((str(path), str(reason)))
    return {(entries[0][1] if len({r for _, r in entries}) == 1 else kind):
            [p for p, _ in entries] for kind, entries in grouped.items()}


def named_skips(skipped) -> str:
    """Skipped files `skipped` ([(path, reason)]) named in a clause, each reason said once
    after its files: "A, B: not a JPEG …; C: too large …" (`by_reason`). For the few a summary
    or a refusal names: each file with its reason repeated the same words three times.
    Paths as `text.names_listed` lists them (quoted when one holds a comma: "a, b.jpg" read
    as two files; on one line)."""
    from hubensemble.text import names_listed

    return "; ".join(f"{names_listed(paths)}: {reason}"
                     for reason, paths in by_reason(skipped).items())


def skip_lines(skipped, skipped_in: str | None = None, named: int = 3) -> list[str]:
    """The log lines of skipped files `skipped` ([(path, reason)]): one per reason, in the
    order each first comes, as the data summary counts them by why (`skipped_count`) rather
    than file by file: "skipped PATH: REASON" for a reason of one file, "skipped 40 files
    (P1, P2, P3 and 37 more, SKIPPED_IN): REASON" for one shared, naming `named` of them when
    `skipped_in` says where the whole list is kept (`formats.skipped_list`: "all listed in
    RUN/run.json (data.task.skipped)"), else every one. A folder of 40 files unreadable for
    one reason gave 40 lines alike but for the name. Paths are listed as
    `text.names_listed` lists them: on one line, quoted when one holds a comma ("a, b.jpg"
    read as two files)."""
    from hubensemble.text import names_listed

    lines = []
    for reason, paths in by_reason(skipped).items():
        if len(paths) == 1:
            lines.append(f"skipped {names_listed(paths)}: {reason}")
            continue
        shown = paths[:named] if skipped_in else paths
        rest = (f" and {len(paths) - len(shown)} more, {skipped_in}"
                if len(shown) < len(paths) else "")
        lines.append(f"skipped {len(paths)} files ({names_listed(shown)}{rest}): {reason}")
    return lines
