"""The CSV files hubensemble writes (RUN/ranking.csv, RUN/labels/to_check.csv): one writer,
`csv_text`, whose text cells a spreadsheet program shows as text, never runs as a formula,
and whose names in any script it shows as they are (UTF-8 with a byte-order mark).

Their cells hold names that come from the user's folders and catalogues (class folder names,
image file names, catalogue entry names and handles). A spreadsheet program (Excel,
LibreOffice Calc, Google Sheets) opening a CSV reads a cell that starts with "=", "+", "-",
"@", a tab or a carriage return as a formula: a class folder named "=HYPERLINK(…)" became a
live link in the list of labels to check ("CSV injection"). OWASP's advice, followed here
(OWASP "CSV Injection", owasp.org/www-community/attacks/CSV_Injection; ASVS 5.0 requirement
1.2.10, which adds the NUL character): such a cell is written with a single quote before it,
which the spreadsheet takes as "this cell is text" and does not show. Python's csv module,
pandas and R write such cells as they are; they are not spreadsheet programs.

Only text cells are changed, never a number hubensemble writes (a score of -0.3 stays a
number), and a text cell that starts with the quote itself gets one more, so the rule is
reversible: `read_cell` undoes it (one leading quote dropped).

The files are UTF-8 and start with its byte-order mark (BOM, U+FEFF: the bytes EF BB BF).
Excel on Windows, opening a CSV by a double click, reads a file without one in the locale's
legacy code page (Windows-1252 in the West, 932 in Japan): the file "café/猫.png" is
"cafÃ©/çŒ«.png" in Windows-1252, a class name in Greek or Chinese mojibake; with the mark it
reads UTF-8 (Excel's own "CSV UTF-8" save writes it; LibreOffice and pandas' read_csv skip
it: pandas' test_first_row_bom). The cost is a reader that opens the file as plain
"utf-8": Python's csv module then reads the first column's name as "\\ufeffindex"
(measured, Python 3.11).
Read the files with ENCODING ("utf-8-sig", which skips the mark, and reads a file written
before it, 2026-12-06, the same), as `read_rows` does; a Python reader gets the names as the
folders spell them with::

    from hubensemble.csvcells import read_rows

    rows = read_rows("RUN/labels/to_check.csv")  # [{"index": "140", "file": …}, …]

or, with the csv module alone::

    import csv
    from hubensemble.csvcells import read_cell

    with open("RUN/labels/to_check.csv", newline="", encoding="utf-8-sig") as f:
        rows = [{k: read_cell(v) for k, v in row.items()} for row in csv.DictReader(f)]
"""

from __future__ import annotations

import csv
import io
from typing import Iterable, Sequence

from hubensemble.errors import checks_keywords

#: The first characters that make a spreadsheet program read a cell as a formula (OWASP's
#: = + - @ tab and carriage return; ASVS 1.2.10's NUL).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\0")
#: What is put before such a cell: the spreadsheet's "text" mark, hidden when shown.
TEXT_MARK = "'"
#: The byte-order mark the text of each file starts with (UTF-8 writes it as EF BB BF).
BOM = "\ufeff"
#: The encoding to read the files with: UTF-8, a leading byte-order mark skipped.
ENCODING = "utf-8-sig"


def spreadsheet_cell(value):
    """`value` as a CSV cell a spreadsheet program shows as text: a str that starts with one
    of FORMULA_STARTS or with TEXT_MARK gets TEXT_MARK before it ("=SUM(A1)" -> "'=SUM(A1)",
    "'x" -> "''x"); any other value (a number, None, another str) is returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS + (TEXT_MARK,)):
        return TEXT_MARK + value
    return value


@checks_keywords
def read_cell(text: str) -> str:
    """The value `spreadsheet_cell` wrote as the cell `text` (a str read by the csv module):
    one leading TEXT_MARK dropped ("'=SUM(A1)" -> "=SUM(A1)"), any other text unchanged."""
    return text[1:] if text.startswith(TEXT_MARK) else text


def csv_text(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """The text of a CSV file of `header` (hubensemble's own column names, written as they
    are) and `rows` (each a sequence of cells in the header's order; None is written as ""):
    BOM first (a file written as UTF-8 starts with its byte-order mark, for Excel: see the
    module's words), the csv module's quoting (RFC 4180: a cell holding a comma, quote or
    line break is quoted), "\\n" line ends, each cell through `spreadsheet_cell`."""
    buf = io.StringIO()
    buf.write(BOM)
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if cell is None else spreadsheet_cell(cell) for cell in row])
    return buf.getvalue()


@checks_keywords
def read_rows(path) -> list[dict[str, str]]:
    """The rows of a CSV file `csv_text` wrote (`path`: str or os.PathLike), each a dict of
    column name to cell text, every text cell as it was before `spreadsheet_cell` (`read_cell`;
    numbers as their text, "" for None): the file read as ENCODING (its byte-order mark
    skipped; a file without one read the same). OSError when the file cannot be read,
    UnicodeDecodeError when it is not UTF-8."""
    with open(path, newline="", encoding=ENCODING) as f:
        return [{k: read_cell(v) if isinstance(v, str) else v for k, v in row.items()}
                for row in csv.DictReader(f)]
