"""Finding a font with Japanese glyphs for PDFs.

PDF text needs an embedded TrueType font that has kana and kanji. nyutai uses the IPAex
Gothic font from Debian (``apt-get install fonts-ipaexfont-gothic``) or any TrueType font
named by the ``NYUTAI_PDF_FONT`` environment variable; without one, PDF output stops with a
clear error instead of printing empty boxes.
"""

from __future__ import annotations

import os
from pathlib import Path

FONT_ENV = "NYUTAI_PDF_FONT"
CANDIDATES = (
    "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf",
    "/usr/share/fonts/truetype/ipaexfont-gothic/ipaexg.ttf",
    "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf",
    "/usr/share/fonts/truetype/fonts-japanese-gothic.ttf",
)


class FontMissingError(RuntimeError):
    """No TrueType font with Japanese glyphs was found for PDF output."""


def find_cjk_font() -> Path:
    configured = os.environ.get(FONT_ENV)
    if configured:
        p = Path(configured)
        if not p.is_file():
            raise FontMissingError(f"{FONT_ENV}={configured}: no such font file")
        return p
    for c in CANDIDATES:
        if Path(c).is_file():
            return Path(c)
    raise FontMissingError(
        "no Japanese font for PDF output: install Debian's fonts-ipaexfont-gothic "
        f"or set {FONT_ENV} to a TrueType (.ttf) font with Japanese glyphs"
    )
