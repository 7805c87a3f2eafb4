"""CSV files a spreadsheet opens safely: the one writer every CSV of nyutai goes through.

Excel and LibreOffice run a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula
(``=cmd|' /C calc'!A0``, ``=HYPERLINK(...)``); a leading tab or carriage return hides such a
start. Names, purposes, comments and even failed user names are typed by people, so every
text cell starting with one of these gets an apostrophe in front (OWASP "CSV injection"):
the spreadsheet then shows the text as typed. Numbers are written as they are.
"""

from __future__ import annotations

import csv
import re
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
        """Every cell checked like ``csv_cell``, a column at a time where that is safe to
        do in C: the export of millions of events spent most of its time in one Python call
        per cell. See ``_safe_columns``; rows of another shape go cell by cell."""
        batch = list(rows)
        if batch and set(map(type, batch)) <= _SEQUENCES and len(set(map(len, batch))) == 1:  # type: ignore[arg-type]
            cols: list[Any] = list(zip(*batch, strict=True))
            if _safe_columns(cols):
                self._w.writerows(batch)
            else:
                self._w.writerows(zip(*cols, strict=True))
            return
        self._w.writerows([csv_cell(v) for v in row] for row in batch)


_SEQUENCES = frozenset((tuple, list))
_ALL_TEXT = frozenset((str, type(None)))
_ALL_INT = frozenset((int, type(None)))
# a cell starting with a formula character, seen in the column joined by newlines
_MARK = re.compile("\n[" + re.escape("".join(FORMULA_START)) + "]")


def _safe_columns(cols: list[Any]) -> bool:
    """Replace, in place, each column of ``cols`` that may hold a cell a spreadsheet would
    evaluate by its cells through ``csv_cell``; True when no column needed it.

    A column of only ints and None (not bools: ``type`` is exact) needs nothing. A column
    of only str and None is joined by newlines behind a leading newline; no ``\n=``,
    ``\n+``, ... in that text means no cell starts with a formula character (the test can
    only err towards escaping: a cell holding a newline followed by ``=`` sends its column
    the slow way, where each cell is judged alone). Any other column goes the slow way."""
    clean = True
    for i, col in enumerate(cols):
        types = set(map(type, col))
        if types <= _ALL_INT:
            continue
        if types <= _ALL_TEXT:
            text = "\n" + "\n".join(filter(None, col))
            if _MARK.search(text) is None:
                continue
        cols[i] = [csv_cell(v) for v in col]
        clean = False
    return clean
