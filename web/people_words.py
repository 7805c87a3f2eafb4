"""The staff CSV import's problems as sentences (codes from domain.people_csv and
web.people_import), in the operator's language."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from domain.people_csv import CsvFileError

ROW_PROBLEMS: dict[str, Any] = {
    "employee_no_missing": _l("The employee number is missing."),
    "employee_no_repeated": _l("This employee number appears earlier in the file."),
    "employee_no_visitor": _l("This employee number belongs to a visitor."),
    "name_missing": _l("The name is missing."),
    "too_long": _l("A value is too long"),
    "extra_cells": _l("The line has more cells than the header."),
    "designated_invalid": _l("Designated must be 1 or 0 (はい/いいえ)"),
    "training_date_invalid": _l("The training date must look like 2026-04-01 or 2026/4/1"),
    "training_date_future": _l("The training date is in the future"),
    "card_unknown_kind": _l("The card id fits no card technology; write it as felica:ID"),
    "card_invalid": _l("The card id is not valid"),
    "card_repeated": _l("This card appears earlier in the file for someone else"),
    "card_taken": _l("This card is registered to someone else"),
}
FILE_PROBLEMS: dict[str, Any] = {
    "encoding": _l("The file is neither UTF-8 nor Shift_JIS (cp932)."),
    "header": _l("The first line must name the columns; missing"),
    "header_duplicate": _l("A column is named twice in the first line."),
    "empty": _l("The file is empty."),
    "syntax": _l("The file is not a valid CSV file"),
}


def row_problem_text(code: str, detail: str = "") -> str:
    text = str(ROW_PROBLEMS.get(code, code))
    return f"{text}: {detail}" if detail else text


def file_problem_text(problem: CsvFileError) -> str:
    text = str(FILE_PROBLEMS.get(problem.code, problem.code))
    return f"{text}: {problem.detail}" if problem.detail else text
