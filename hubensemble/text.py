"""Text people read (the terminal, RUN/log.txt, the report) with file names that are not UTF-8.

No NumPy, no TensorFlow: the command line's terminal output imports it at startup.
"""

import re
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


def shell(path) -> str:
    """`path` (str or os.PathLike) as one shell word of advice, absolute and quoted only when
    it needs it (shlex.quote): advice such as "`hubensemble tune --run RUN`" must run when
    pasted, from any folder. A run folder such as "My runs/a" split into two words (a
    new-user check), and a relative one, as typed, named another folder (or none) in
    another working folder, where the report's advice, absolute, did not."""
    import os
    import shlex

    return shlex.quote(os.path.abspath(os.fspath(path)))
