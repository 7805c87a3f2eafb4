"""The monthly report as one CSV file that Excel opens correctly (UTF-8 with BOM, CRLF).

Each section is a block: a title line, a header line, the rows and a blank line; the first
column names the section and the second the area, so the file also filters well.
Cells that a spreadsheet would run as a formula (=, +, -, @) are prefixed with an apostrophe:
visitor purposes and comments are typed by people.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from db.reports.monthly import MonthlyReport
from db.reports.tables import local, report_tables

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe(cell: str) -> str:
    return "'" + cell if cell.startswith(FORMULA_START) else cell


def monthly_csv(report: MonthlyReport) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["report", "特定個人情報等取扱状況報告書（入退室管理） / Monthly handling report"])
    w.writerow(["site", report.site_name])
    w.writerow(["month", report.month])
    z = report.zone
    w.writerow(["period", f"{local(report.start, z)} – {local(report.end, z)} ({z.key})"])
    w.writerow(["generated_at", local(report.generated_at, z)])
    w.writerow([])
    for t in report_tables(report):
        w.writerow([t.key, t.area, t.title])
        w.writerow(["section", "area", *t.header])
        for row in t.rows:
            w.writerow([t.key, t.area, *(_safe(c) for c in row)])
        w.writerow([])
    return buf.getvalue()


def write_monthly_csv(report: MonthlyReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(monthly_csv(report).encode("utf-8-sig"))
