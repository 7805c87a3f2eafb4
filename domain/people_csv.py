"""The staff CSV file (import and export share it): columns, encodings, one row's rules.

Pure: bytes and strings in, values and problem codes out; the database side (who exists,
whose card it is) is web.people_import's. Excel on a Japanese Windows saves "CSV" as
Shift_JIS (cp932) with CRLF, "CSV UTF-8" as UTF-8 with a BOM; both are read, and so is
plain UTF-8. Export writes UTF-8 with a BOM, which Excel opens as Japanese text.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from domain.vocabulary import Technology

# (key, Japanese header, English header): the export writes the operator's language,
# the import accepts either (and the keys themselves)
COLUMNS = (
    ("employee_no", "社員番号", "Employee number"),
    ("name", "氏名", "Name"),
    ("name_kana", "フリガナ", "Kana"),
    ("organization", "所属", "Organisation"),
    ("designated", "取扱者指定", "Designated"),
    ("training_date", "研修受講日", "Training date"),
    ("card_ids", "カードID", "Card ids"),
)
REQUIRED = ("employee_no", "name")
ALIASES = {
    "社員番号": "employee_no",
    "従業員番号": "employee_no",
    "氏名": "name",
    "名前": "name",
    "フリガナ": "name_kana",
    "ふりがな": "name_kana",
    "カナ": "name_kana",
    "所属": "organization",
    "組織": "organization",
    "取扱者指定": "designated",
    "指定": "designated",
    "研修受講日": "training_date",
    "研修日": "training_date",
    "カードid": "card_ids",
    "カード": "card_ids",
    "employee number": "employee_no",
    "name": "name",
    "kana": "name_kana",
    "organisation": "organization",
    "organization": "organization",
    "designated": "designated",
    "training date": "training_date",
    "card ids": "card_ids",
}
ALIASES.update({key: key for key, _ja, _en in COLUMNS})
TRUE_WORDS = frozenset({"1", "yes", "y", "true", "はい", "○", "〇", "◯", "済", "指定"})
FALSE_WORDS = frozenset({"", "0", "no", "n", "false", "いいえ", "×", "-", "未", "なし"})
LIMITS = {"employee_no": 64, "name": 200, "name_kana": 200, "organization": 200}
# card ids without a technology prefix are recognised by their shape
_HEX = re.compile(r"^[0-9A-F]+$")
_WIEGAND = re.compile(r"^\d{1,5}:\d{1,10}$")
HEX_GUESS = {16: Technology.FELICA, 8: Technology.ISO14443A, 14: Technology.ISO14443A,
             20: Technology.ISO14443A, 10: Technology.EM4100}  # fmt: skip
CARD_SPLIT = re.compile(r"[\s;,、|]+")


class CsvFileError(ValueError):
    """The file as a whole cannot be read; ``code`` says why (see PROBLEMS in the web)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


@dataclass
class StaffRow:
    """One data line: its line number in the file, the values read, the problems found."""

    line: int
    employee_no: str = ""
    name: str = ""
    name_kana: str | None = None
    organization: str | None = None
    designated: bool = False
    training_date: date | None = None
    cards: list[tuple[str, str]] = field(default_factory=list)  # (technology, raw id)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (code, detail)

    def problem(self, code: str, detail: str = "") -> None:
        self.problems.append((code, detail))


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM) or cp932, as Excel writes them; anything else refused."""
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CsvFileError("encoding", f"byte {exc.start + 3}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp932")
    except UnicodeDecodeError as exc:
        raise CsvFileError("encoding", f"byte {exc.start}") from None


def header_keys(header: list[str]) -> list[str | None]:
    """The column keys of a header line (None: a column we do not know, ignored)."""
    keys = [ALIASES.get(h.strip().lstrip("\ufeff").casefold()) for h in header]
    missing = [k for k in REQUIRED if k not in keys]
    if missing:
        raise CsvFileError("header", ", ".join(missing))
    seen = [k for k in keys if k]
    if len(seen) != len(set(seen)):
        raise CsvFileError("header_duplicate")
    return keys


def parse_date(text: str) -> date:
    """2026-04-01, 2026/04/01 or 2026/4/1 (what Excel writes for a date cell)."""
    for fmt in ("%Y-%m-%d", "%Y/%m/%d"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(text)


def split_cards(text: str) -> list[tuple[str, str]]:
    """``felica:0102...  04A1B2C3`` -> [(technology, id)]; ("", id) when the shape fits no
    technology (the caller reports it)."""
    out = []
    for token in CARD_SPLIT.split(text.strip()):
        if not token:
            continue
        tech, sep, rest = token.partition(":")
        if sep and tech.lower() in {t.value for t in Technology}:
            out.append((tech.lower(), rest))
            continue
        value = token.upper()
        if _WIEGAND.match(value):
            out.append((Technology.WIEGAND.value, value))
        elif _HEX.match(value) and len(value) in HEX_GUESS:
            out.append((HEX_GUESS[len(value)].value, value))
        else:
            out.append(("", token))
    return out


def read_row(line: int, keys: list[str | None], cells: list[str], today: date) -> StaffRow:
    row = StaffRow(line)
    values: dict[str, str] = {}
    for key, cell in zip(keys, cells, strict=False):
        if key:
            values[key] = cell.strip()
    if len(cells) > len(keys) and any(c.strip() for c in cells[len(keys) :]):
        row.problem("extra_cells")
    for key, limit in LIMITS.items():
        if len(values.get(key, "")) > limit:
            row.problem("too_long", key)
    row.employee_no = values.get("employee_no", "")[:64]
    row.name = re.sub(r"\s+", " ", values.get("name", "").replace("\u3000", " "))[:200]
    row.name_kana = values.get("name_kana", "")[:200] or None
    row.organization = values.get("organization", "")[:200] or None
    if not row.employee_no:
        row.problem("employee_no_missing")
    if not row.name:
        row.problem("name_missing")
    flag = values.get("designated", "").casefold()
    if flag in TRUE_WORDS:
        row.designated = True
    elif flag not in FALSE_WORDS:
        row.problem("designated_invalid", values.get("designated", ""))
    when = values.get("training_date", "")
    if when:
        try:
            row.training_date = parse_date(when)
        except ValueError:
            row.problem("training_date_invalid", when)
        else:
            if row.training_date > today:
                row.problem("training_date_future", when)
    row.cards = split_cards(values.get("card_ids", ""))
    return row


def read_rows(text: str, today: date) -> Iterator[StaffRow]:
    """Every data line of a decoded file, in order; blank lines are skipped."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise CsvFileError("empty") from None
    except csv.Error as exc:
        raise CsvFileError("syntax", str(exc)) from None
    keys = header_keys(header)
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise CsvFileError("syntax", f"line {reader.line_num}: {exc}") from None
        if not any(c.strip() for c in cells):
            continue
        yield read_row(reader.line_num, keys, cells, today)


def header_line(locale: str) -> list[str]:
    ja = locale.startswith("ja")
    return [c[1] if ja else c[2] for c in COLUMNS]


def format_cards(cards: list[tuple[str, str]]) -> str:
    return " ".join(f"{tech}:{card_id}" for tech, card_id in cards)
