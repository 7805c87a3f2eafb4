"""The printable visitor badge: one A6 page (105 x 148 mm, fits a badge holder or a label).

Name, organisation, host, escort, managed area, validity window, photo, badge number and a
QR code of the badge id (drawn as vector squares from ``segno``'s matrix: sharp on any
printer, no image library involved). Japanese and English labels, the site's time zone.
The card's id is not printed: the QR code names the badge, not the credential.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import segno
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from db.models import Visit
from db.reports.fonts import find_cjk_font

FONT = "jp"
WIDTH, HEIGHT = 105.0, 148.0  # A6 portrait, mm
MARGIN = 6.0


@dataclass(frozen=True)
class BadgeFacts:
    """What the badge shows, taken from the visit (kept apart so tests can build one)."""

    visit_id: int
    name: str
    organization: str
    host: str
    escort: str
    area: str
    area_en: str
    valid_from: datetime
    valid_until: datetime
    badge_number: str
    photo: Path | None


def badge_id(visit: Visit) -> str:
    """The id in the QR code: the printed badge number, or the visit's number without one."""
    if visit.badge is not None and visit.badge.label:
        return visit.badge.label
    return f"V{visit.id:06d}"


def facts(visit: Visit, photo: Path | None) -> BadgeFacts:
    return BadgeFacts(
        visit_id=visit.id,
        name=visit.visitor.name,
        organization=visit.visitor.organization or "",
        host=visit.host.name if visit.host is not None else "-",
        escort=visit.escort.name if visit.escort is not None else "-",
        area=visit.area.name,
        area_en=visit.area.name_en or "",
        valid_from=visit.expected_from,
        valid_until=visit.expected_until,
        badge_number=badge_id(visit),
        photo=photo,
    )


def _qr(pdf: FPDF, payload: str, x: float, y: float, size: float) -> None:
    qr = segno.make(payload, error="m", micro=False)
    rows = [list(r) for r in qr.matrix_iter(scale=1, border=0)]
    module = size / len(rows)
    pdf.set_fill_color(0, 0, 0)
    for j, row in enumerate(rows):
        i = 0
        while i < len(row):  # one rectangle per horizontal run of dark modules
            if row[i]:
                start = i
                while i < len(row) and row[i]:
                    i += 1
                pdf.rect(x + start * module, y + j * module, (i - start) * module, module, "F")
            else:
                i += 1


def badge_pdf(f: BadgeFacts, zone: ZoneInfo) -> bytes:
    pdf = FPDF(orientation="P", unit="mm", format=(WIDTH, HEIGHT))
    pdf.add_font(FONT, "", str(find_cjk_font()))
    pdf.set_auto_page_break(auto=False)
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.set_title(f"来訪者バッジ / Visitor badge {f.badge_number}")
    pdf.set_creator("nyutai")
    pdf.add_page()
    inner = WIDTH - 2 * MARGIN
    # a band that reads from across the room
    pdf.set_fill_color(200, 30, 30)
    pdf.rect(0, 0, WIDTH, 16, "F")
    pdf.set_text_color(255, 255, 255)
    pdf.set_font(FONT, size=16)
    pdf.set_xy(MARGIN, 3)
    pdf.cell(inner, 10, "来訪者  VISITOR", align="C")
    pdf.set_text_color(0, 0, 0)
    # photo (left) and QR code (right)
    top, photo_w, photo_h, qr_size = 20.0, 36.0, 45.0, 34.0
    if f.photo is not None and f.photo.is_file():
        pdf.image(str(f.photo), x=MARGIN, y=top, w=photo_w, h=photo_h, keep_aspect_ratio=True)
    else:
        pdf.rect(MARGIN, top, photo_w, photo_h)
        pdf.set_font(FONT, size=7)
        pdf.set_xy(MARGIN, top + photo_h / 2 - 3)
        pdf.multi_cell(photo_w, 3.5, "写真なし\nno photo", align="C")
    qr_x = WIDTH - MARGIN - qr_size
    _qr(pdf, f.badge_number, qr_x, top, qr_size)
    pdf.set_font(FONT, size=9)
    pdf.set_xy(qr_x, top + qr_size + 1)
    pdf.cell(qr_size, 5, f"No. {f.badge_number}", align="C")
    # who
    pdf.set_xy(MARGIN, top + photo_h + 4)
    pdf.set_font(FONT, size=17)
    pdf.multi_cell(inner, 8, f.name, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if f.organization:
        pdf.set_font(FONT, size=10)
        pdf.multi_cell(inner, 5, f.organization, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2)
    local = "%Y-%m-%d %H:%M"
    window = (
        f"{f.valid_from.astimezone(zone).strftime(local)} - "
        f"{f.valid_until.astimezone(zone).strftime('%H:%M' if _same_day(f, zone) else local)}"
    )
    area = f.area + (f" / {f.area_en}" if f.area_en and f.area_en != f.area else "")
    rows = (
        ("管理区域 Area", area),
        ("受入担当 Host", f.host),
        ("立会者 Escort", f.escort),
        ("有効期間 Valid", window),
        ("バッジ番号 Badge", f.badge_number),
    )
    for label, value in rows:
        pdf.set_font(FONT, size=7.5)
        pdf.cell(27, 5.5, label)
        pdf.set_font(FONT, size=9.5)
        pdf.multi_cell(inner - 27, 5.5, value, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT, size=6.5)
    pdf.set_xy(MARGIN, HEIGHT - MARGIN - 7)
    pdf.multi_cell(
        inner,
        3.2,
        "立会者と常に同行してください。退館時にバッジを返却してください。\n"
        "Stay with your escort at all times. Return this badge when you leave.",
        align="C",
    )
    return bytes(pdf.output())


def _same_day(f: BadgeFacts, zone: ZoneInfo) -> bool:
    return f.valid_from.astimezone(zone).date() == f.valid_until.astimezone(zone).date()
