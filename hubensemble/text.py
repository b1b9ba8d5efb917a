"""Text people read (the terminal, RUN/log.txt, the report) with file names that are not UTF-8.

No NumPy, no TensorFlow: the command line's terminal output imports it at startup.
"""

import re

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
