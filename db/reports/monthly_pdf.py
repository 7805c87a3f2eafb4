"""The monthly report as a PDF (A4, Japanese font embedded)."""

from __future__ import annotations

from pathlib import Path

from db.reports.monthly import MonthlyReport, controllers_covered
from db.reports.pdf import ReportPDF
from db.reports.tables import local, report_tables

TITLE = "特定個人情報等取扱状況報告書（入退室管理）"


def _build(report: MonthlyReport) -> ReportPDF:
    pdf = ReportPDF(f"{TITLE} {report.month}", f"nyutai {report.site_name} {report.month}")
    pdf.heading(TITLE, size=15)
    pdf.heading("Monthly handling-status report: entry and exit control", size=10)
    z = report.zone
    pdf.pairs(
        [
            ("事業所 / Site", report.site_name),
            ("対象月 / Month", report.month),
            ("期間 / Period", f"{local(report.start, z)} – {local(report.end, z)} ({z.key})"),
            ("作成日時 / Generated", local(report.generated_at, z)),
            ("管理区域 / Areas", ", ".join(f"{a.name} ({a.code})" for a in report.areas)),
            ("制御装置 / Controllers", controllers_covered(report)),
        ]
    )
    pdf.approval_box()
    summary = [
        [
            a.name,
            str(a.entries),
            str(a.exits),
            str(a.staff_count),
            str(a.visitor_count),
            str(len(a.visits)),
            str(sum(d.count for d in a.denials)),
            str(len(a.alarms)),
            str(len(a.incidents)),
        ]
        for a in report.areas
    ]
    pdf.heading("概要 / Summary", size=11)
    pdf.grid(
        [
            "管理区域 / Area",
            "入室",
            "退室",
            "従業者",
            "部外者",
            "来訪",
            "拒否",
            "警報",
            "インシデント",
        ],
        summary,
        (50, 16, 16, 16, 16, 16, 16, 16, 28),
        size=8,
    )
    area = None
    for t in report_tables(report):
        if t.area != area and t.area:
            pdf.add_page()
            area = t.area
        elif not t.area and area is not None:
            pdf.add_page()
            area = None
        pdf.heading(t.title, size=10)
        pdf.grid(t.header, t.rows, t.widths)
    pdf.para(
        "この報告書にはマイナンバー（個人番号）、暗証番号、カード番号は含まれません。\n"
        "This report contains no My Number, no PIN and no card number. "
        "Verify the records with `nyutai verify` and the public keys above.",
        size=8,
    )
    return pdf


def monthly_pdf(report: MonthlyReport) -> bytes:
    """The PDF as bytes (for a web download)."""
    return bytes(_build(report).output())


def write_monthly_pdf(report: MonthlyReport, path: Path) -> None:
    _build(report).save(path)
