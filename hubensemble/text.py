"""Text people read (the terminal, RUN/log.txt, the report) with file names that are not UTF-8.

No NumPy, no TensorFlow: the command line's terminal output imports it at startup.
"""

import datetime
import os
import re
import shlex
import unicodedata

# A refused value in words moved to their own module (text.py was at its 700 lines); still
# imported from here by their callers.
from hubensemble import refused as _refused

described, typed = _refused.described, _refused.typed

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


def time_stamp() -> str:
    """Now, as every record hubensemble writes stamps a time (run.json's and an export's
    "created", a lock's "since", a zoo's "built", trials.log's lines, …): ISO 8601 / RFC 3339
    local time to the second with its offset from UTC, "2026-12-05T20:35:32+01:00", so that a
    reader in another zone, or after a change of daylight saving time, knows the moment.
    Stamps written before had no offset ("2026-12-05T20:35:32", local time); `stamp_time`
    reads both."""
    return datetime.datetime.now().astimezone().replace(microsecond=0).isoformat()


def stamp_time(stamp) -> datetime.datetime:
    """The aware datetime of a recorded `stamp` (`time_stamp`'s form, any ISO 8601 time
    `datetime.fromisoformat` reads): one with an offset keeps it; one without (written before
    stamps carried it) is this machine's local time at that date. Raises ValueError for text
    that is no such time (OverflowError for a year out of range)."""
    when = datetime.datetime.fromisoformat(str(stamp))
    return when if when.tzinfo is not None else when.astimezone()


def shown_time(stamp: str | None = None) -> str:
    """A time as the report and the terminal show it: "2026-12-05 20:35:32+00:00", the
    local time with its offset from UTC (RFC 3339's form, a space for its "T"), so a reader
    in another zone knows the moment. `stamp`: a time hubensemble recorded (`time_stamp`:
    run.json's and an export's "created"; read by `stamp_time`, a stamp without offset as this
    machine's local time at that date, as `fileio.pid_alive` reads a lock's "since"; one with
    an offset keeps it); None: now. A stamp that is no ISO 8601 time is returned as it is.
    The one format of both (the report said "Started: 2026-12-05T20:35:32; report written
    2026-12-05 20:49:54": two forms and no zone)."""
    if stamp is None:
        when = datetime.datetime.now().astimezone()
    else:
        try:
            when = stamp_time(stamp)
        except (ValueError, OverflowError):
            return str(stamp)
    return when.replace(microsecond=0).isoformat(sep=" ")


def absolute(path) -> str:
    """`path` (str, bytes or os.PathLike) absolute, naming what the system reaches by it
    (`as_reached`): hubensemble's one way to make a path absolute. os.path.abspath drops
    "link/.." textually, so `fit --out runs/link/../r6 --export runs/link/../e6` put the run
    where the link leads and the export beside the link (pipeline used abspath, Run
    as_reached)."""
    return os.path.abspath(as_reached(path))


def relative_hint(path) -> str:
    """" (relative paths are relative to CWD)" (CWD the working folder, absolute) when `path`
    (str, bytes or os.PathLike) is relative, else "": for a refusal of a path that names
    nothing, so a command run from another folder (a notebook's, a cron job's) says where it
    looked. `--run runs/sign` from /tmp said "runs/sign does not exist", the folder that
    held it unnamed, where a data spec's words named the working folder (data/loading.py)."""
    return "" if os.path.isabs(os.fsdecode(os.fspath(path))) else (
        f" (relative paths are relative to {os.getcwd()})")


def shell(path) -> str:
    """`path` (str, bytes or os.PathLike) as one shell word of advice, absolute and quoted
    only when it needs it (shlex.quote): advice such as "`hubensemble tune --run RUN`" must
    run when pasted, from any folder. A run folder such as "My runs/a" split into two words
    (a new-user check), and a relative one, as typed, named another folder (or none) in
    another working folder, where the report's advice, absolute, did not. A path holding a
    control character, one that shows as nothing (`hidden_at`) or a byte that is not UTF-8
    is bash's $'…' (`shell_word`): on one
    line, where shlex.quote kept a newline in the folder's name as it was and broke the
    warning's line in two."""
    path = absolute(path)  # the folder reached, "x/.." as the kernel
    return shell_word(path) if _hidden(path) else shlex.quote(path)


def counted(count, word: str, plural: str | None = None) -> str:
    """"1 member", "3 members", "0 members" (with `plural`: "1 family", "2 families"): a count
    and its noun, singular for 1 alone; a count that is no number ("?") takes the plural. The
    one rule of a counted noun in what hubensemble says, where "member(s)" was written."""
    return f"{count} {word if count == 1 else plural or word + 's'}"


def typo_distance(typed: str, name: str) -> int:
    """How far `typed` is from `name` by git's weights (help.c, help_unknown_cmd:
    levenshtein(cmd, candidate, 0, 2, 1, 3)): two neighbouring letters swapped cost 0, a
    wrong letter 2, a letter left out of `typed` 1, a letter too many in it 3 (the optimal
    string alignment form of Damerau-Levenshtein); an int >= 0, 0 for the same word."""
    row2, row = None, list(range(len(name) + 1))  # row i-2, row i-1 of the table
    for i in range(1, len(typed) + 1):
        new = [i * 3] + [0] * len(name)
        for j in range(1, len(name) + 1):
            cost = min(row[j - 1] + 2 * (typed[i - 1] != name[j - 1]), row[j] + 3, new[j - 1] + 1)
            if (i > 1 and j > 1 and typed[i - 1] == name[j - 2]
                    and typed[i - 2] == name[j - 1]):
                cost = min(cost, row2[j - 2])
            new[j] = cost
        row2, row = row, new
    return row[-1]


def closest_name(word: str, names) -> str | None:
    """The one of `names` that `word` most likely mistypes, as git's "did you mean" picks it
    (`typo_distance`), once case, leading dashes, a "=value" and - or _ are evened out
    (--topk, --Top_K -> --top-k; topk -> top_k; ad -> add): the nearest name whose distance
    is under git's SIMILARITY_FLOOR of 7 and at most 3 (one slip of any kind: catalogue ad,
    fitt, bild) or one per three letters of the longer word, so a short word is not read as
    a far one (--size is no --seed, --max-trails no --max-failures, x no fit); or the same
    letters in another order (tpo, ahsh), but not a word every letter of which is wrong
    (c is no a). Ties go to the name difflib finds most alike.
    None when none is that close. The command line's unknown flags and commands, fit's
    unknown options, a data set's feature keys, an archive's members, a catalogue's fields,
    families and keras: names. (difflib's ratio >= 0.85 alone let 'ad' miss 'add': 0.8.)"""
    return (closest_names(word, names) or [None])[0]


def closest_names(word: str, names) -> list[str]:
    """Every one of `names` as close to `word` as the closest (`closest_name`'s rule), the
    one difflib finds most alike first; [] when none is close. Git lists the commands tied
    at its best distance ("The most similar commands are", help.c), as a zoo, data set or
    module name that could be either of two does here (expert-digits: r6x1-expert-digits or
    r8x2-expert-digits); difflib.get_close_matches listed up to three by its ratio alone, and
    missed a name in another case (CIFAR10, HANDLE) or offered a far one (specialist ->
    generalist)."""
    import difflib

    def norm(name):
        return name.split("=", 1)[0].lstrip("-").lower().replace("_", "-")

    typed, known = norm(word), {norm(n): n for n in names}
    scored = []
    for k in known:
        d = typo_distance(typed, k)
        # Not a word all of whose letters are replaced (c for a: "did you mean a or b?").
        if (d < 7 and d <= max(3, max(len(k), len(typed)) // 3) and d < 2 * len(typed)
                or sorted(k) == sorted(typed)):
            scored.append((d, -difflib.SequenceMatcher(None, typed, k).ratio(), k))
    scored.sort()
    return [known[k] for d, _, k in scored if d == scored[0][0]]


def did_you_mean(word, names) -> str:
    """" (did you mean A or B?)" for a refused `word` that mistypes one or more of `names`
    (`closest_names`: git's rule, its ties all said); "" when none is close, `word` is one of
    them, or `word` is no str (a refused None or number). For refusals that list the valid
    names: the guess comes first, the list after it."""
    if not isinstance(word, str) or word in names:
        return ""
    close = closest_names(word, names)
    return f" (did you mean {' or '.join(close)}?)" if close else ""


#: Backslash escapes of bash's $'…' (and of Python's string literals) for control
#: characters: `escaped`'s, and `shell_word`'s.
_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\", "'": "\\'"}


def _control(c: str) -> bool:
    """Whether `c` must not reach a terminal as it is, wherever it stands: a control or
    separator character (a newline, an ESC, U+2028), or a lone surrogate (a byte of a file
    name that is not UTF-8, as os.fsdecode gives it). `hidden_at` adds what shows as
    nothing."""
    return unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp")


#: Zero-width non-joiner and joiner: format characters that change what is shown between
#: two letters of a joining script (Persian's ZWNJ) or two emoji (a ZWJ sequence).
_JOINERS = ("\u200c", "\u200d")

#: Characters outside Cf that show as nothing (Unicode's default-ignorable code points):
#: the variation selectors (U+FE00..U+FE0F, U+E0100..U+E01EF; Mongolian U+180B..U+180D,
#: U+180F), the combining grapheme joiner U+034F and the Hangul fillers. 'cat' and
#: 'cat\ufe0f' passed as two classes that look the same, though 'cat\u200b' was refused.
_IGNORABLE = frozenset(
    [*map(chr, range(0xFE00, 0xFE10)), *map(chr, range(0xE0100, 0xE01F0)),
     "\u180b", "\u180c", "\u180d", "\u180f", "\u034f", "\u115f", "\u1160", "\u3164",
     "\uffa0"])
_SELECTORS = frozenset([*map(chr, range(0xFE00, 0xFE10)), *map(chr, range(0xE0100, 0xE01F0)),
                        "\u180b", "\u180c", "\u180d", "\u180f"])


def invisible_at(name: str, i: int) -> bool:
    """Whether the character name[i] (`name` a str, 0 <= i < len(name)) shows as nothing
    there: a format character (Unicode Cf: zero-width space, U+FEFF, U+2060, the bidi
    overrides, a soft hyphen) but a joiner between two letters or symbols outside ASCII
    (`_joins`), or another default-ignorable one (`_IGNORABLE`) but a variation selector
    after a character outside ASCII that is a letter, mark or symbol (an emoji's U+FE0F:
    '\u2764\ufe0f') or in a keycap ('#\ufe0f\u20e3'). The one rule of what a class name
    may not hold (`data.names.class_name_fault`), of what two names that look the same
    differ by (`visible_text`, `classmatch._spelled`) and of what `escaped` shows as an
    escape."""
    c = name[i]
    if unicodedata.category(c) == "Cf":
        return not _joins(name, i)
    if c not in _IGNORABLE:
        return False
    if c in _SELECTORS and i > 0:
        before = name[i - 1]
        if ord(before) > 127 and unicodedata.category(before)[0] in "LMS":
            return False
        if before in "0123456789#*" and name[i + 1:i + 2] == "\u20e3":  # a keycap
            return False
    return True


def visible_text(name: str) -> str:
    """`name` without the characters that show as nothing in it (`invisible_at`)."""
    return "".join(c for i, c in enumerate(name) if not invisible_at(name, i))


def _joins(name: str, i: int) -> bool:
    """Whether the format character name[i] is a joiner (`_JOINERS`) between two characters
    outside ASCII that are letters, marks or symbols (categories L, M, S): there it changes
    the name's shape; anywhere else ('ca\u200dt', at an end) it shows nothing."""
    if name[i] not in _JOINERS or not 0 < i < len(name) - 1:
        return False
    return all(ord(c) > 127 and unicodedata.category(c)[0] in "LMS"
               for c in (name[i - 1], name[i + 1]))


def hidden_at(text: str, i: int) -> bool:
    """Whether text[i] must be shown as an escape: a control character (`_control`) or one
    that shows as nothing there (`invisible_at`, the class names' rule: a format character,
    a variation selector that selects nothing, 'cat\ufe0f'). `escaped`'s and `shell`'s
    rule."""
    return _control(text[i]) or invisible_at(text, i)


def _hidden(text: str) -> bool:
    return any(hidden_at(text, i) for i in range(len(text)))


def _escape(c: str) -> str:
    if c in _ESCAPES:
        return _ESCAPES[c]
    code = ord(c)
    if 0xDC80 <= code <= 0xDCFF:  # a file name's byte that is not UTF-8: that byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else \
        f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escaped(text) -> str:
    """`text` (str() of it) with each control character and each one that shows as nothing
    there (`hidden_at`: a newline, an ESC, U+202E, a zero-width space, a variation selector
    that selects nothing) as a backslash escape, "\\n", "\\x1b", "\\u202e", "\\ufe0f",
    and a file name's byte that is not UTF-8 as "\\xe9": on one line, as it was, and each
    character the refusal of a name is about seen. An emoji's own selector or joiner stays
    ('\u2764\ufe0f'). Other characters stay (a backslash too: see `shell_word` for a form
    that gives the text back exactly)."""
    text = str(text)
    return "".join(_escape(c) if hidden_at(text, i) else c for i, c in enumerate(text))


def _unclear_in_list(name: str) -> bool:
    """Whether `name`, unquoted in a comma-separated list, could be read as another number
    of names or another name: it holds a comma, is empty, or starts or ends with whitespace
    (a hidden folder's or a model's name, which no class name rule checked)."""
    return "," in name or name != name.strip() or not name


#: Digits of an integer `value_shown` writes out whole; a longer one is cut.
VALUE_DIGITS = 24


def value_shown(value) -> str:
    """`repr(value)` for words that quote a value given, but an integer longer than
    VALUE_DIGITS digits cut to its first ones and its length ("10000000… (401 digits)"):
    Python's 10**400 filled the terminal with its digits in a refusal."""
    if isinstance(value, int) and not isinstance(value, bool):
        digits = str(abs(value))
        if len(digits) > VALUE_DIGITS:
            return f"{'-' if value < 0 else ''}{digits[:8]}… ({len(digits)} digits)"
    return repr(value)


def json_shown(value) -> str:
    """`value`, read from a JSON file, as the file writes it, for words naming a damaged
    field (null, true, "half", NaN, [32, 32]: Python's None, True, 'half', nan, (32, 32) are
    no JSON), an integer longer than VALUE_DIGITS digits cut as `value_shown` cuts it, other
    text past 100 characters cut to its first 97 and "..."."""
    import json

    if isinstance(value, int) and not isinstance(value, bool):
        return value_shown(value)  # its digits, as JSON writes them, or cut
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 100 else text[:97] + "..."


def names_shown(names) -> list[str]:
    """Class names `names` (str() of each) as a comma-separated list shows them: each as it
    is, or every one quoted (`repr`: 'four, the "one"', 'zero') when one holds a comma, is
    empty or starts or ends with whitespace (`_unclear_in_list`), for a list of them read
    as more names than there are: "4 classes (four, the "one", zero, …)" read as 5. All are
    quoted, not only that one, so that a quote is no part of a name. Otherwise as they are
    (the report's Markdown shows a newline as a space; `names_listed` escapes for the
    terminal)."""
    names = [str(n) for n in names]
    return [repr(n) for n in names] if any(_unclear_in_list(n) for n in names) else names


def names_listed(names, limit: int | None = None, suffix: str = "") -> str:
    """Names `names` (class, folder or model names: str() of each) as one comma-separated
    list in words people read, quoted as `names_shown` quotes them, each with `suffix` after
    it and inside its quotes ("/" for a folder: "a/, b/", or "'a, b/', 'c/'"), the first
    `limit` of them (all for None) and ", …" when there are more, each with what must not
    reach a terminal as it is or shows as nothing escaped (`escaped`: "\\n", "\\u200b").
    The one form of a list of names in a message; the quoting is decided on the names
    shown. A list joined with ", " alone read the folder "ice, snow" as two folders
    (classmatch, data/folder)."""
    names = [str(n) for n in names]
    shown = names if limit is None else names[:limit]
    if any(_unclear_in_list(n) for n in shown):
        words = [escaped(repr(n + suffix)) for n in shown]
    else:
        words = [escaped(n + suffix) for n in shown]
    return ", ".join(words) + (", …" if len(names) > len(shown) else "")


def paths_shown(paths, joiner: str = ", ", then: str = "", *, escape: bool = True,
                notes=None) -> str:
    """Paths `paths` (str or os.PathLike each) as a message's example shows them ("e.g. A",
    "e.g. A = B", "e.g. A: REASON"), joined by `joiner`: each as it is, or every one quoted
    (`repr`) when one could be read as more paths or another: it holds a comma, is empty or
    starts or ends with whitespace (`names_listed`'s rule, `_unclear_in_list`), or holds
    `joiner` or `then` (what the text puts after the last: ": " before a reason). Each is
    escaped as `escaped` escapes (not with `escape` False: the report's Markdown, as
    `names_shown`). "e.g. d/a, b.jpg: not a JPEG" read as two files, "d/5, x.png = d/0.png"
    as three (the data summary's and report's examples, a folder's refusal).

    `notes` (one str per path, or None): each path is followed by " (NOTE)", outside its
    quotes, as a copy's class follows it ("'d/5, x.png' (cat) = 'd/0.png' (dog)"), so that
    the quoted text is the file and nothing else; a path that holds " (" is quoted then
    too ("d/a (1).png (cat)" read as the file "d/a"). Raises ValueError when `notes` is
    not one per path."""
    texts = [os.fsdecode(p) for p in paths]
    if notes is not None:
        notes = [str(n) for n in notes]
        if len(notes) != len(texts):
            raise ValueError(f"paths_shown: {counted(len(notes), 'note')} for "
                             f"{counted(len(texts), 'path')}")
    if any(_unclear_in_list(t) or (joiner.strip() and joiner in t)
           or (then.strip() and then in t) or (notes is not None and " (" in t)
           for t in texts):
        texts = [repr(t) for t in texts]
    if notes is not None:
        texts = [f"{t} ({n})" for t, n in zip(texts, notes)]
    return joiner.join(escaped(t) if escape else t for t in texts)


def value_to_write(field: str, value) -> str:
    """"write FIELD: 'VALUE'" (`value` a str or os.PathLike): the one form of the words that
    tell a catalogue's author a value to write, as the catalogue docs quote one ("write
    sha256: '<hash>'"): in YAML's single quotes, a quote in it doubled (`'it''s'`), so the
    text pasted into the file reads back as the value; what would not reach a terminal as
    it is escaped (`escaped`). The handle rank and `catalogue validate` suggest (the module
    in a folder below the one written, a handle's spaces or query, a misspelt keras: name):
    rank said "write handle: /m/served/2" and validate "write handle: '/m/served/2'"."""
    return f"write {field}: '" + escaped(os.fspath(value).replace("'", "''")) + "'"


#: A shell word that needs no quotes: shlex.quote's safe characters, with letters and digits
#: of every script (a shell takes "猫/1.jpg" as one word).
_PLAIN_WORD = re.compile(r"[\w@%+=:,./-]+")


def shell_word(path, encoding: str | None = None) -> str:
    """`path` (str, bytes or os.PathLike) as one shell word that gives it back exactly:
    as it is when it holds only letters, digits and @%+=:,./-_ (`_PLAIN_WORD`); in single
    quotes when it holds a space or a character the shell would read (shlex.quote);
    in bash's $'…' with backslash escapes when it holds a control character, one that shows
    as nothing (`hidden_at`: $'cat\\xef\\xb8\\x8f' for U+FE0F, its bytes: `_shell_escape`) or a
    byte that is not UTF-8 ($'new\\nline.png', $'caf\\xe9.jpg'). `predict`'s header lines and
    `shell`'s advice: never starting with a space, never over two lines, the same name under
    any locale of the shell they are pasted into.

    `encoding`: the one of the stream the word goes to, when known. A character that stream
    does not write as the bytes it has in the file's name is given as those bytes in $'…'
    ('café' in ASCII or Latin-1 where names are UTF-8: $'caf\\xc3\\xa9', as a C locale's
    Python shows it), since the stream's `readable` stand-in ('caf\\xe9', '->' for '→') or its
    Latin-1 byte named another file to bash."""
    text = os.fsdecode(path)
    if encoding and any(not hidden_at(text, i) and not _written_as_named(c, encoding)
                        for i, c in enumerate(text)):
        return "$'" + "".join(
            _shell_escape(c) if hidden_at(text, i) or c in _ESCAPES
            or not _written_as_named(c, encoding) else c for i, c in enumerate(text)) + "'"
    if _hidden(text):
        return "$'" + "".join(_shell_escape(c) if hidden_at(text, i) or c in _ESCAPES else c
                              for i, c in enumerate(text)) + "'"
    if _PLAIN_WORD.fullmatch(text):
        return text
    return shlex.quote(text)


def _name_bytes(c: str) -> bytes:
    """The bytes `c` is in a file's name (os.fsencode; UTF-8 for a character the file
    system's encoding lacks, which no name listed there holds)."""
    try:
        return os.fsencode(c)
    except UnicodeError:
        return c.encode("utf-8", "surrogateescape")


def _written_as_named(c: str, encoding: str) -> bool:
    """Whether a stream in `encoding` writes `c` as the bytes it is in a file's name."""
    try:
        return c.encode(encoding) == _name_bytes(c)
    except (UnicodeError, LookupError):
        return False


def _shell_escape(c: str) -> str:
    """`c` as bash's $'…' gives it back whatever the shell's locale: `_escape`'s form for
    ASCII and a name's byte that is not UTF-8, any other character as its bytes in a name,
    "\\xHH" (`_byte_escapes`). Not \\uXXXX: bash turns that into bytes by its CURRENT locale,
    and under LC_ALL=C it gave back the six characters "\\uFE0F" (measured: bash 5.2), another
    name; nor \\xad for U+00AD, which bash reads as the byte 0xad, not the name's UTF-8."""
    code = ord(c)
    if c in _ESCAPES or code < 0x80 or 0xDC80 <= code <= 0xDCFF:
        return _escape(c)
    return _byte_escapes(c)


def _byte_escapes(chars: str) -> str:
    """The bytes `chars` are in a file's name (`_name_bytes`), each as bash's $'…' escape
    "\\xHH": 'é' "\\xc3\\xa9"."""
    return "".join(f"\\x{b:02x}" for c in chars for b in _name_bytes(c))


#: ASCII stand-ins for the typographic characters hubensemble's own words use ("…", "–",
#: "→", "×", "≥", "·", …), where a stream's encoding has no character for them
#: (`readable`): "a … b" read "a \u2026 b" under Python's backslashreplace, and a strict
#: stream (PYTHONIOENCODING=ascii) raised UnicodeEncodeError. Only punctuation and symbols:
#: a letter ('é', 'ρ', '猫') is escaped instead, as a name must not become another name.
_STAND_INS = {
    "\u2026": "...", "\u2013": "-", "\u2014": "--", "\u2212": "-", "\u2192": "->",
    "\u2190": "<-", "\u21d2": "=>", "\u2265": ">=", "\u2264": "<=", "\u2260": "!=",
    "\u2248": "~", "\u00d7": "x", "\u00f7": "/", "\u00b1": "+/-", "\u00b7": ".",
    "\u2022": "*", "\u2713": "ok", "\u2018": "'", "\u2019": "'", "\u201c": '"',
    "\u201d": '"', "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u2588": "#"}

#: The name of the codec error handler `readable` (codecs.register_error).
READABLE = "hubensemble.readable"


#: The start of a command of advice, in backticks: "`hubensemble …" (after any environment
#: assignments, "`KERAS_BACKEND=jax hubensemble …", or "python -m "), or one of the file
#: commands advice names a folder to ("`cp -r '/x/café' COPY`").
_COMMAND_START = re.compile(r"`(?:[A-Za-z_]\w*=\S*\s+)*(?:(?:python3?\s+-m\s+)?hubensemble"
                            r"|cp|mv|rm|ls|mkdir|tar)\b")


def _shell_state(text: str, at: int) -> str | None:
    """The quoting bash is in at `text[at]` when that is inside a command of advice in
    backticks (`_COMMAND_START`): "" unquoted, "'", '"' or "$'"; None outside one."""
    start = text.rfind("`", 0, at)
    if start < 0 or text.count("`", 0, at) % 2 == 0 or not _COMMAND_START.match(text, start):
        return None
    state, i = "", start + 1
    while i < at:
        c = text[i]
        if state == "" and c == "$" and text.startswith("'", i + 1):
            state, i = "$'", i + 1
        elif state in ("", '"') and c == "\\" or state == "$'" and c == "\\":
            i += 1  # the escaped character is no quote
        elif state == "" and c in "'\"" or state == c or state == "$'" and c == "'":
            state = c if state == "" else ""
        i += 1
    return state


def _in_command(chars: str, state: str) -> str:
    """`chars` a stream cannot write, inside a command of advice whose quoting is `state`
    (`_shell_state`), as bash gives back the bytes they are in a file's name: $'\\xc3\\xa9'
    for 'é' (closing and reopening the quotes around it: 'caf'$'\\xc3\\xa9'' s' is one word);
    a typographic character outside quotes ("…" for the rest of a command) its stand-in."""
    if state == "" and all(c in _STAND_INS for c in chars):
        return "".join(_STAND_INS[c] for c in chars)
    escapes = _byte_escapes(chars)
    return escapes if state == "$'" else {"": "$'{}'", "'": "'$'{}''",
                                          '"': "\"$'{}'\""}[state].format(escapes)


def commands_as_named(text: str, encoding: str) -> str:
    """`text` with each character inside a command of advice in backticks (`_shell_state`)
    that a stream in `encoding` writes as other bytes than the file's name holds ('é' as
    Latin-1's 0xe9 where names are UTF-8) as those bytes in bash's $'…' (`_in_command`), so
    that the command pasted from that stream names the same file. A character the stream
    cannot write at all is `readable`'s business, which gives it the same form."""
    if "`" not in text or text.isascii():
        return text
    out, i = [], 0
    while i < len(text):
        j = i
        while j < len(text) and not text[j].isascii() \
                and not _written_as_named(text[j], encoding):
            j += 1
        state = _shell_state(text, i) if j > i else None
        if state is not None:
            out.append(_in_command(text[i:j], state))
        else:
            j = max(j, i + 1)
            out.append(text[i:j])
        i = j
    return "".join(out)


def _readable(exc: UnicodeError):
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    chars = exc.object[exc.start:exc.end]
    state = _shell_state(exc.object, exc.start)
    if state is not None:  # advice to paste: the bytes of the name, not a Python escape
        return _in_command(chars, state), exc.end
    return "".join(_STAND_INS.get(c) or _escape(c) for c in chars), exc.end


def readable() -> str:
    """The name of a codec error handler (READABLE, registered on the first call) for text
    people read on a stream whose encoding cannot write every character (ASCII, Latin-1):
    a typographic character hubensemble's words use becomes its ASCII stand-in ("…" "...",
    "→" "->", "×" "x", "≥" ">=", "–" "-": `_STAND_INS`), any other its backslash escape
    ('café' 'caf\\xe9' in ASCII, '猫' '\\u732b', a file name's byte that is not UTF-8
    '\\xe9', as `printable`), but inside a command of advice in backticks ("`hubensemble
    fit … --out '/x/café s'`": `_shell_state`) as the bytes of the name in bash's $'…'
    ('/x/caf'$'\\xc3\\xa9'' s', `_in_command`): pasted, the stand-in 'caf\\xe9' named another
    folder to bash (a new-user check). The one place that decides, as only the stream knows
    what it cannot write: the advice is built once, and log.txt (UTF-8) keeps the name as it
    is. Encoding never fails with it; decoding is not its business
    (UnicodeDecodeError is raised as it came)."""
    import codecs

    try:
        codecs.lookup_error(READABLE)
    except LookupError:
        codecs.register_error(READABLE, _readable)
    return READABLE


#: Byte-order marks of the encodings a file of text may be saved in besides UTF-8, longest
#: first (UTF-32-LE's starts with UTF-16-LE's): what Windows' Notepad ("Unicode"), Excel's
#: "Unicode Text" and PowerShell 5's `>` and Out-File write (UTF-16-LE with its mark).
_MARKS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
          (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def _named(c: str) -> str:
    """A character in a message with its Unicode name ("'ö', LATIN SMALL LETTER O WITH
    DIAERESIS"; U+0085 for one without): a stream that cannot write it shows "'\\xf6'",
    which tells the user nothing of which character it is."""
    import unicodedata

    return f"{c!r}, {unicodedata.name(c, f'U+{ord(c):04X}')}"


def file_text(data: bytes, label: str) -> str:
    """The text of a file of the user's (`data`, its bytes; `label`, its name in messages)
    as YAML reads a stream (YAML 1.2, 5.2): UTF-8, with or without a byte-order mark, or
    UTF-16 / UTF-32 with theirs; the mark is dropped, and CR LF and CR line ends become LF
    (as open() in text mode). Raises ValueError, naming `label`, the line and the column
    (in characters, from 1), the byte, what Windows-1252 reads there with its Unicode name
    (`_named`) and the fix ("save it as UTF-8"), for bytes that are
    not UTF-8: a Latin-1 / Windows-1252 'é' (0xe9) or curly quote (0x93), UTF-16 saved
    without its mark (NUL bytes, a quarter of the file or more; no line then), a stray NUL
    byte in UTF-8 text (its line and column), a file cut inside a UTF-16 character."""
    for mark, encoding in _MARKS:
        if data.startswith(mark):
            try:
                text = data.decode(encoding)  # (the codec reads the mark and drops it)
            except UnicodeDecodeError as e:
                raise ValueError(f"{label}: starts with the byte-order mark of "
                                 f"{encoding.upper()} but is not {encoding.upper()} text "
                                 f"({e.reason} at byte {e.start}); save it as UTF-8") from None
            break
    else:
        nuls = data.count(b"\x00")
        if nuls * 4 >= len(data) > 0:  # (no line to name: every other byte is one)
            raise ValueError(f"{label}: holds NUL bytes: UTF-16 or UTF-32 saved without its "
                             f"byte-order mark, or not text; save it as UTF-8")
        if nuls:  # a stray NUL in UTF-8 text (a copy or an editor's slip): where it is
            at = data.index(b"\x00")
            start, line = data.rfind(b"\n", 0, at) + 1, data.count(b"\n", 0, at) + 1
            column = len(data[start:at].decode("utf-8", "replace")) + 1
            raise ValueError(f"{label}:{line}: column {column}: a NUL byte (0x00), which is "
                             f"not text ({nuls} in the file); remove it")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            start = data.rfind(b"\n", 0, e.start) + 1
            line = data.count(b"\n", 0, e.start) + 1
            column = len(data[start:e.start].decode("utf-8", "replace")) + 1
            byte = data[e.start]
            try:  # what Windows' legacy encoding (Latin-1 with “ ” € …) reads there
                legacy = (" (the file ends inside a character: cut short?)"
                          if e.end == len(data) and e.reason == "unexpected end of data" else
                          f" (in Windows-1252, {_named(bytes([byte]).decode('cp1252'))}: the "
                          f"file was saved in a legacy encoding)")
            except UnicodeDecodeError:
                legacy = ""
            raise ValueError(f"{label}:{line}: column {column}: byte 0x{byte:02x} is not "
                             f"UTF-8{legacy}; save the file as UTF-8 (an editor's 'Save as', "
                             f"encoding UTF-8)") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")
