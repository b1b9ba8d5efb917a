"""The CSV files hubensemble writes (RUN/ranking.csv, RUN/labels/to_check.csv): one writer,
`csv_text`, whose text cells a spreadsheet program shows as text, never runs as a formula.

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
reversible: `read_cell` undoes it (one leading quote dropped). A Python reader of the files
gets the names as the folders spell them with::

    import csv
    from hubensemble.csvcells import read_cell

    rows = [{k: read_cell(v) for k, v in row.items()}
            for row in csv.DictReader(open("RUN/labels/to_check.csv", newline=""))]
"""

from __future__ import annotations

import csv
import io
from typing import Iterable, Sequence

#: The first characters that make a spreadsheet program read a cell as a formula (OWASP's
#: = + - @ tab and carriage return; ASVS 1.2.10's NUL).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\0")
#: What is put before such a cell: the spreadsheet's "text" mark, hidden when shown.
TEXT_MARK = "'"


def spreadsheet_cell(value):
    """`value` as a CSV cell a spreadsheet program shows as text: a str that starts with one
    of FORMULA_STARTS or with TEXT_MARK gets TEXT_MARK before it ("=SUM(A1)" -> "'=SUM(A1)",
    "'x" -> "''x"); any other value (a number, None, another str) is returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS + (TEXT_MARK,)):
        return TEXT_MARK + value
    return value


def read_cell(text: str) -> str:
    """The value `spreadsheet_cell` wrote as the cell `text` (a str read by the csv module):
    one leading TEXT_MARK dropped ("'=SUM(A1)" -> "=SUM(A1)"), any other text unchanged."""
    return text[1:] if text.startswith(TEXT_MARK) else text


def csv_text(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """The CSV text of `header` (hubensemble's own column names, written as they are) and
    `rows` (each a sequence of cells in the header's order; None is written as ""): the csv
    module's quoting (RFC 4180: a cell holding a comma, quote or line break is quoted),
    "\\n" line ends, each cell through `spreadsheet_cell`."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if cell is None else spreadsheet_cell(cell) for cell in row])
    return buf.getvalue()
