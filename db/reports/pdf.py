"""A small layer over fpdf2: A4 pages with an embedded Japanese font, headings and tables."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from fpdf import FPDF
from fpdf.enums import MethodReturnValue, XPos, YPos

from db.reports.fonts import find_cjk_font

FONT = "jp"


def quiet_fonttools() -> None:
    """fpdf2 subsets the embedded font through fontTools, whose INFO messages list every
    glyph kept and dropped (kilobytes per PDF): with the service's INFO logging they flooded
    stderr and the logs. Set again for each PDF, in case a logging set-up reset it; its
    warnings and errors still come through."""
    logging.getLogger("fontTools").setLevel(logging.WARNING)


APPROVERS = ("作成者 / Prepared", "確認者 / Checked", "承認者 / Approved")


class ReportPDF(FPDF):
    def __init__(self, title: str, footer_note: str = "") -> None:
        quiet_fonttools()
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

    def approval_box(self, size: int = 8, stamp_h: float = 22) -> None:
        """作成者・確認者・承認者 押印欄: a title row, a stamp box and a date line each,
        at the right of the page as on a paper form."""
        self.set_font(FONT, size=size)
        w = 30.0
        x0 = self.l_margin + self.epw - w * len(APPROVERS)
        if self.y + 6 + stamp_h + 6 > self.page_break_trigger:
            self.add_page()
        top = self.y
        self.set_xy(x0 - 20, top)
        self.cell(20, 6, "押印欄", align="C")
        for i, label in enumerate(APPROVERS):
            x = x0 + i * w
            self.set_xy(x, top)
            self.cell(w, 6, label, border=1, align="C")
            self.rect(x, top + 6, w, stamp_h)
            self.set_xy(x, top + 6 + stamp_h)
            self.cell(w, 6, "日付 /", border=1, align="L")
        self.set_xy(self.l_margin, top + 6 + stamp_h + 6 + 3)

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
        """A bordered table with a shaded heading row repeated on every page.

        Drawn with ``text``/``line`` rather than fpdf2's ``table()``: the table lays out and
        line-breaks every cell through ``multi_cell`` twice (measure, then draw), about 0.9 ms
        a cell, which made a month with thousands of "still inside" rows take tens of seconds.
        Here a cell that fits on one line (nearly all of them) costs one cached width lookup
        and one ``text`` call; only a cell wider than its column goes through ``multi_cell``'s
        line breaking, so the wrapped text is the same as before.
        """
        if not rows:
            self.para("（該当なし / none）", size=size + 1)
            return
        self.set_font(FONT, size=size)
        n = len(header)
        given = list(widths) if widths else [1.0] * n
        scale = self.epw / sum(given)  # like table(): widths are shares of the page width
        cols = [w * scale for w in given]
        xs = [self.l_margin]
        for w in cols:
            xs.append(xs[-1] + w)
        line_h = size * 0.5
        baseline = 0.5 * line_h + 0.3 * self.font_size  # where cell() puts the baseline
        room = [w - 2 * self.c_margin for w in cols]
        fits: dict[tuple[int, str], list[str]] = {}

        def lines_of(col: int, text: str) -> list[str]:
            key = (col, text)
            got = fits.get(key)
            if got is None:
                if not text or self.get_string_width(text) <= room[col]:
                    got = [text]
                else:
                    wrapped = self.multi_cell(
                        cols[col], line_h, text, dry_run=True, output=MethodReturnValue.LINES
                    )
                    got = [str(line) for line in cast(list[str], wrapped)]
                fits[key] = got
            return got

        def draw_row(cells: list[list[str]], height: float, shaded: bool) -> None:
            top = self.y
            if shaded:
                self.set_fill_color(225, 225, 225)
                self.rect(xs[0], top, xs[-1] - xs[0], height, style="F")
                self.set_fill_color(0)  # same as the text colour: text() then needs no q/Q
            for col, lines in enumerate(cells):
                x = xs[col] + self.c_margin
                y = top + (height - len(lines) * line_h) / 2 + baseline  # centred, as table()
                for k, line in enumerate(lines):
                    if line:
                        self.text(x, y + k * line_h, line)
            self.line(xs[0], top + height, xs[-1], top + height)
            self.y = top + height

        def open_block() -> float:
            top = self.y
            self.line(xs[0], top, xs[-1], top)
            return top

        def close_block(top: float) -> None:
            for x in xs:  # the column rules, once per page instead of once per cell
                self.line(x, top, x, self.y)

        head = [lines_of(i, str(t)) for i, t in enumerate(header)]
        head_h = max(len(c) for c in head) * line_h
        if self.y + head_h + line_h > self.page_break_trigger:
            self.add_page()
        self.x = self.l_margin
        top = open_block()
        draw_row(head, head_h, shaded=True)
        for row in rows:
            cells = [lines_of(i, "" if v is None else str(v)) for i, v in enumerate(row)]
            height = max(len(c) for c in cells) * line_h
            if self.y + height > self.page_break_trigger:
                close_block(top)
                self.add_page()
                self.set_font(FONT, size=size)  # the footer changed the font size
                top = open_block()
                draw_row(head, head_h, shaded=True)
            draw_row(cells, height, shaded=False)
        close_block(top)
        self.x = self.l_margin
        self.ln(2)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.output(str(path))
