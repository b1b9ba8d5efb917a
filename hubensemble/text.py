"""Text people read (the terminal, RUN/log.txt, the report) with file names that are not UTF-8.

No NumPy, no TensorFlow: the command line's terminal output imports it at startup.
"""

import os
import re
import shlex
import unicodedata

#: A lone surrogate: never in text that UTF-8 can hold.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_surrogate(match) -> str:
    code = ord(match.group())
    # U+DC80..U+DCFF stand for the bytes 0x80..0xFF that were not UTF-8 (surrogateescape)
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def printable(text) -> str:
    """`text` as UTF-8 can hold it, for people to read (a log line, the terminal, a report).
    Python reads a file name that is not UTF-8 with a lone surrogate for each byte it could
    not decode (os.listdir gives 'caf\\udce9.jpg' for b'caf\\xe9.jpg'), which no UTF-8 stream
    can write; each becomes that byte's escape, 'caf\\xe9.jpg' (another lone surrogate its
    \\uXXXX escape). Text without one comes back as it is. JSON keeps the surrogate instead
    (json.loads and os.fsencode give the exact path back). Not a str (a Path, a number, as
    print takes): its str() (`zoo build` printed its folder, a Path: a TypeError in 11d62e9's
    CI run)."""
    return _SURROGATE.sub(_escape_surrogate, str(text))


def cells(text) -> int:
    """The terminal columns `text` (str) takes: 2 for a wide or full-width character (CJK
    ideographs, kana, hangul, full-width forms: Unicode East Asian Width W or F), 0 for a
    combining mark or a format character (categories Mn, Me, Cf: an accent on the letter before
    it, a zero-width joiner), 1 for any other. What a table needs to line its columns up under
    names in any script; `len()` counted a 3-ideograph class name as 3 of its 6 columns (a
    new-user check: `predict`'s probabilities out of line). Not for control characters or
    emoji sequences (no names hold them in practice)."""
    return sum(0 if unicodedata.category(c) in ("Mn", "Me", "Cf") else
               2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in str(text))


def ljust(text, width: int) -> str:
    """`text` (str) padded with spaces on the right to `width` terminal columns (`cells`); as
    it is when it takes that many or more: str.ljust for names in any script."""
    text = str(text)
    return text + " " * max(0, width - cells(text))


def as_reached(path) -> str:
    """`path` (str, bytes or os.PathLike) as a str naming the folder the system reaches by
    it: the part up to its last ".." component resolved (os.path.realpath), as the kernel
    follows a symlink before "..", and the rest kept as typed (a link after it kept, as
    os.path.abspath keeps one); unchanged without "..". os.path.abspath drops "x/.."
    textually: `--out runs/link/../r2`, link a symlink to /elsewhere/target, made
    /elsewhere/r2 while messages, advice and records named runs/r2."""
    text = os.fsdecode(path)
    parts = text.split(os.sep)
    if os.pardir not in parts:
        return text
    last = len(parts) - 1 - parts[::-1].index(os.pardir)
    head = os.path.realpath(os.sep.join(parts[:last + 1]) or os.sep)
    return os.path.join(head, *[p for p in parts[last + 1:] if p])


def shell(path) -> str:
    """`path` (str, bytes or os.PathLike) as one shell word of advice, absolute and quoted
    only when it needs it (shlex.quote): advice such as "`hubensemble tune --run RUN`" must
    run when pasted, from any folder. A run folder such as "My runs/a" split into two words
    (a new-user check), and a relative one, as typed, named another folder (or none) in
    another working folder, where the report's advice, absolute, did not. A path holding a
    control character or a byte that is not UTF-8 is bash's $'…' (`shell_word`): on one
    line, where shlex.quote kept a newline in the folder's name as it was and broke the
    warning's line in two."""
    path = os.path.abspath(as_reached(path))  # the folder reached, "x/.." as the kernel
    return shell_word(path) if any(map(_control, path)) else shlex.quote(path)


def closest_name(word: str, names) -> str | None:
    """The one of `names` that `word` most likely mistypes, as git's "did you mean" picks it:
    difflib ratio >= 0.85, or the same letters in another order, once case, leading dashes,
    a "=value" and - or _ are evened out (--topk, --Top_K -> --top-k; topk -> top_k); None
    when none is that close. The command line's unknown flags and fit's unknown options."""
    import difflib

    def norm(name):
        return name.split("=", 1)[0].lstrip("-").lower().replace("_", "-")

    known = {norm(n): n for n in names}
    close = difflib.get_close_matches(norm(word), known, 1, 0.85) or [
        k for k in known if sorted(k) == sorted(norm(word))]
    return known[close[0]] if close else None


def described(value) -> str:
    """A value a function refused, in at most about 100 characters, for its TypeError: an
    array as "ndarray uint8 [40, 32, 32, 3]" (any object with dtype and shape), a list or
    tuple as its length and first items, bytes as their length and first bytes, anything
    else as its type and a shortened repr ("int 5"). A list of arrays printed ~460
    characters of numbers (a new-user check)."""
    import reprlib

    if hasattr(value, "dtype") and hasattr(value, "shape"):
        return f"{type(value).__name__} {value.dtype} {list(value.shape)}"
    if isinstance(value, (list, tuple)):
        items = ", ".join(described(v) for v in value[:3]) + (", …" if len(value) > 3 else "")
        return f"{type(value).__name__} of {len(value)} ({items})"
    if isinstance(value, (bytes, bytearray)):
        return f"{type(value).__name__} of {len(value)} bytes starting {bytes(value[:8])!r}"
    return f"{type(value).__name__} {reprlib.repr(value)}"


#: Backslash escapes of bash's $'…' (and of Python's string literals) for control
#: characters: `escaped`'s, and `shell_word`'s.
_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\", "'": "\\'"}


def _control(c: str) -> bool:
    """Whether `c` must not reach a terminal as it is: a control, format or separator
    character (a newline, an ESC, a right-to-left override), or a lone surrogate (a byte of
    a file name that is not UTF-8, as os.fsdecode gives it)."""
    return unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp")


def _escape(c: str) -> str:
    if c in _ESCAPES:
        return _ESCAPES[c]
    code = ord(c)
    if 0xDC80 <= code <= 0xDCFF:  # a file name's byte that is not UTF-8: that byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else \
        f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escaped(text) -> str:
    """`text` (str() of it) with each control character (`_control`) as a backslash escape,
    "\\n", "\\x1b", "\\u202e", and a file name's byte that is not UTF-8 as "\\xe9": on one
    line, as it was. Other characters stay (a backslash too: see `shell_word` for a form that
    gives the text back exactly)."""
    return "".join(_escape(c) if _control(c) else c for c in str(text))


#: A shell word that needs no quotes: shlex.quote's safe characters, with letters and digits
#: of every script (a shell takes "猫/1.jpg" as one word).
_PLAIN_WORD = re.compile(r"[\w@%+=:,./-]+")


def shell_word(path) -> str:
    """`path` (str, bytes or os.PathLike) as one shell word that gives it back exactly:
    as it is when it holds only letters, digits and @%+=:,./-_ (`_PLAIN_WORD`); in single
    quotes when it holds a space or a character the shell would read (shlex.quote);
    in bash's $'…' with backslash escapes when it holds a control character or a byte that
    is not UTF-8 ($'new\\nline.png', $'caf\\xe9.jpg'). `predict`'s header lines and `shell`'s
    advice: never starting with a space, never over two lines."""
    text = os.fsdecode(path)
    if any(map(_control, text)):
        return "$'" + "".join(_escape(c) if _control(c) or c in _ESCAPES else c
                              for c in text) + "'"
    if _PLAIN_WORD.fullmatch(text):
        return text
    return shlex.quote(text)
