"""A small layer over fpdf2: A4 pages with an embedded Japanese font, headings and tables."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fpdf import FPDF, FontFace
from fpdf.enums import XPos, YPos

from db.reports.fonts import find_cjk_font

FONT = "jp"


class ReportPDF(FPDF):
    def __init__(self, title: str, footer_note: str = "") -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.report_title = title
        self.footer_note = footer_note
        self.add_font(FONT, "", str(find_cjk_font()))
        self.set_auto_page_break(auto=True, margin=15)
        self.set_title(title)
        self.set_creator("nyutai")
        self.add_page()

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FONT, size=7)
        self.cell(0, 5, f"{self.footer_note}  {self.page_no()}/{{nb}}", align="C")

    def heading(self, text: str, size: int = 13) -> None:
        self.set_font(FONT, size=size)
        self.multi_cell(0, size * 0.55, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(1.5)

    def para(self, text: str, size: int = 9) -> None:
        self.set_font(FONT, size=size)
        self.multi_cell(0, size * 0.5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(1)

    def pairs(self, rows: Sequence[tuple[str, str]], size: int = 9) -> None:
        self.set_font(FONT, size=size)
        with self.table(
            col_widths=(45, 135),
            text_align="LEFT",
            line_height=size * 0.5,
            first_row_as_headings=False,
        ) as t:
            for k, v in rows:
                r = t.row()
                r.cell(k)
                r.cell(v)
        self.ln(2)

    def grid(
        self,
        header: Sequence[str],
        rows: Sequence[Sequence[object]],
        widths: Sequence[float] | None = None,
        size: int = 7,
    ) -> None:
        if not rows:
            self.para("（該当なし / none）", size=size + 1)
            return
        self.set_font(FONT, size=size)
        with self.table(
            col_widths=tuple(widths) if widths else None,
            text_align="LEFT",
            line_height=size * 0.5,
            repeat_headings=1,
            # the embedded font has no bold face: mark headings with a fill instead
            headings_style=FontFace(emphasis=None, fill_color=(225, 225, 225)),
        ) as t:
            h = t.row()
            for title in header:
                h.cell(str(title))
            for row in rows:
                r = t.row()
                for value in row:
                    r.cell("" if value is None else str(value))
        self.ln(2)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.output(str(path))
