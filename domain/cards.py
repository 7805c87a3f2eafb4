"""The one card-id rule: which ids each technology can carry, in their stored form.

Readers (that validate), ``nyutai tap``, the simulator and the enrolment forms all use it, so
an id a reader or the CLI can produce is an id the console can enrol, and an id that fits no
technology is refused at once instead of being stored under the wrong one (issue 13).

Stored forms: uppercase hex without separators (FeliCa IDm, ISO 14443A UID, EM4100 id, OSDP
raw bits), or ``FACILITY:NUMBER`` in decimal for 26/34-bit Wiegand.
"""

from __future__ import annotations

import re

from domain.vocabulary import Technology

_HEX = re.compile(r"^[0-9A-F]+$")
_WIEGAND = re.compile(r"^(\d{1,5}):(\d{1,5})$")
MAX_ID_DIGITS = 64  # the credentials.card_id column

# hex digits per technology: FeliCa IDm is 8 bytes; ISO 14443A UIDs are 4, 7 or 10 bytes
# (single, double, triple size); EM4100 is 5 bytes; OSDP raw reads are any bit length that
# fits the column (a 26-bit raw read is 7 digits)
HEX_LENGTHS: dict[Technology, tuple[int, ...]] = {
    Technology.FELICA: (16,),
    Technology.ISO14443A: (8, 14, 20),
    Technology.EM4100: (10,),
    Technology.OSDP: tuple(range(1, MAX_ID_DIGITS + 1)),
}
# technologies a bare hex id can be recognised as, by its length (OSDP is never guessed)
_BY_LENGTH = {16: Technology.FELICA, 8: Technology.ISO14443A, 14: Technology.ISO14443A}
_BY_LENGTH |= {20: Technology.ISO14443A, 10: Technology.EM4100}


class CardIdError(ValueError):
    """An id that fits no technology (or not the one named). ``code`` is stable for callers
    that translate it: unknown_technology, not_hex, length, wiegand_format, empty."""

    def __init__(self, code: str, message: str, *, lengths: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.lengths = lengths


def _compact(raw: str) -> str:
    return re.sub(r"[\s:\-]", "", raw.strip().upper())


def lengths_text(tech: Technology) -> str:
    """How many hex digits ``tech`` takes, for messages: ``8/14/20`` or ``1-64``."""
    if tech == Technology.OSDP:
        return f"1-{MAX_ID_DIGITS}"
    return "/".join(str(n) for n in HEX_LENGTHS[tech])


def normalise_card_id(technology: str, raw: str) -> tuple[str, str]:
    """(technology, card id) in the stored form; raises CardIdError saying why not."""
    try:
        tech = Technology(technology)
    except ValueError:
        known = ", ".join(t.value for t in Technology)
        raise CardIdError(
            "unknown_technology", f"unknown card technology {technology!r} (known: {known})"
        ) from None
    value = raw.strip().upper()
    if not value:
        raise CardIdError("empty", "the card id is empty")
    if tech == Technology.WIEGAND:
        m = _WIEGAND.match(value)
        if not m or int(m.group(1)) > 0xFFFF or int(m.group(2)) > 0xFFFF:
            raise CardIdError(
                "wiegand_format", "Wiegand ids look like FACILITY:NUMBER, e.g. 12:34567"
            )
        return tech.value, f"{int(m.group(1))}:{int(m.group(2))}"
    value = _compact(value)
    if not _HEX.match(value):
        raise CardIdError("not_hex", f"a {tech.value} id is hexadecimal (0-9, A-F)")
    if len(value) not in HEX_LENGTHS[tech]:
        raise CardIdError(
            "length",
            f"a {tech.value} id has {lengths_text(tech)} hexadecimal digits, not {len(value)}",
            lengths=HEX_LENGTHS[tech],
        )
    return tech.value, value


def infer_technology(raw: str) -> Technology:
    """The technology an id without a named one must be: 16 hex digits are a FeliCa IDm,
    8/14/20 an ISO 14443A UID, 10 an EM4100 id, ``FC:NUMBER`` Wiegand. Raises CardIdError
    for an id that fits none (OSDP raw ids are never guessed: name the technology)."""
    value = raw.strip().upper()
    if _WIEGAND.match(value):
        return Technology.WIEGAND
    compact = _compact(value)
    if not compact:
        raise CardIdError("empty", "the card id is empty")
    if not _HEX.match(compact):
        raise CardIdError("not_hex", "a card id is hexadecimal (0-9, A-F) or FACILITY:NUMBER")
    tech = _BY_LENGTH.get(len(compact))
    if tech is None:
        raise CardIdError(
            "length",
            f"{len(compact)} hexadecimal digits fit no card technology "
            "(FeliCa 16, ISO 14443A 8/14/20, EM4100 10)",
        )
    return tech
