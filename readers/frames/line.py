"""``format=line``: one hex card id per line, as many USB/RS-232 readers send it."""

from __future__ import annotations

from domain.cards import CardIdError, normalise_card_id
from readers.errors import FrameError
from readers.frames.base import Card, LineFramer

HEX = frozenset(b"0123456789abcdefABCDEF")
MIN_HEX, MAX_HEX = 8, 32  # 4-byte UID .. 16 bytes; shorter is noise, not a card


def parse_line(line: bytes, technology: str = "iso14443a") -> Card:
    text = line.strip()
    if not text:
        raise FrameError("empty", "empty line")
    if any(b not in HEX for b in text):
        raise FrameError("not_hex", "line is not a hexadecimal card id")
    if len(text) % 2:
        raise FrameError("odd_length", f"{len(text)} hex digits is not whole bytes")
    if not MIN_HEX <= len(text) <= MAX_HEX:
        raise FrameError("length", f"{len(text)} hex digits (expected {MIN_HEX}..{MAX_HEX})")
    try:  # the one card-id rule: what this reader passes on, the console can enrol
        return normalise_card_id(technology, text.decode("ascii"))
    except CardIdError as exc:
        raise FrameError(exc.code, str(exc)) from None


class LineCardFramer(LineFramer):
    def __init__(self, technology: str = "iso14443a") -> None:
        super().__init__()
        self.technology = technology

    def parse(self, line: bytes) -> Card:
        return parse_line(line, self.technology)
