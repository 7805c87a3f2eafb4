"""How a person is found by name: the ONE normalisation every person search uses.

Operators type names with or without the space between family and given name, in
full- or half-width characters, in kanji or in kana (hiragana or katakana). Both the stored
search key (Person.search_key, filled by db.models on every write) and the typed text go
through ``normalise``, so 伊藤誠 finds 伊藤 誠, いとう finds イトウ マコト, and ｲﾄｳ finds
both.
"""

from __future__ import annotations

import re
import unicodedata

# whitespace of every width plus the separators people put between names
_DROP = re.compile(r"[\s\u3000・･·\-‐]+")
_KATAKANA = {c: c - 0x60 for c in range(ord("ァ"), ord("ヶ") + 1)}  # to hiragana
SEPARATOR = "\x1f"  # between the name and the kana in the key: no match across them
KEY_LENGTH = 500


def normalise(text: str | None) -> str:
    """NFKC (half-width kana and full-width letters to their usual form), case-folded,
    katakana as hiragana, without spaces, middle dots or hyphens."""
    if not text:
        return ""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _DROP.sub("", folded.translate(_KATAKANA))


def search_key(name: str | None, name_kana: str | None) -> str:
    """The stored key: normalised name and kana, kept apart by SEPARATOR."""
    return (normalise(name) + SEPARATOR + normalise(name_kana))[:KEY_LENGTH]
