"""CSV files a spreadsheet opens safely: the one writer every CSV of nyutai goes through.

Excel and LibreOffice run a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula
(``=cmd|' /C calc'!A0``, ``=HYPERLINK(...)``); a leading tab or carriage return hides such a
start. Names, purposes, comments and even failed user names are typed by people, so every
text cell starting with one of these gets an apostrophe in front (OWASP "CSV injection"):
the spreadsheet then shows the text as typed. Numbers are written as they are.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any, Protocol

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class _Writable(Protocol):
    def write(self, s: str, /) -> Any: ...


def csv_cell(value: object) -> str:
    """One cell as text, neutralised when a spreadsheet would evaluate it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return str(value)  # a number is not a formula, even a negative one
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


class SafeCsvWriter:
    """``csv.writer`` (CRLF lines, for Excel) whose every cell goes through ``csv_cell``."""

    def __init__(self, out: _Writable) -> None:
        self._w = csv.writer(out, lineterminator="\r\n")

    def writerow(self, row: Iterable[object]) -> None:
        self._w.writerow([csv_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        self._w.writerows([csv_cell(v) for v in row] for row in rows)
