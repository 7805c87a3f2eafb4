"""``format=wiegand26`` / ``wiegand34``: text from Wiegand-to-serial converters.

A converter sends one line per read holding the raw Wiegand frame, either as bits
(``"10110..."``, exactly 26 or 34 characters) or as hexadecimal (7 digits for 26 bits,
9 for 34). Layout, most significant bit first:

- 26 bits: even parity over bits 1-12 | facility code (8 bits) | card number (16 bits)
  | odd parity over bits 13-24.
- 34 bits: even parity over bits 1-16 | facility code (16 bits) | card number (16 bits)
  | odd parity over bits 17-32.

The card id is ``"FC:NUMBER"`` in decimal, e.g. ``"123:45678"``.
"""

from __future__ import annotations

from readers.errors import FrameError
from readers.frames.base import Card, LineFramer

TECHNOLOGY = "wiegand"
_BITS = frozenset(b"01")
_HEX = frozenset(b"0123456789abcdefABCDEF")
HEX_DIGITS = {26: 7, 34: 9}


def _ones(value: int) -> int:
    return bin(value).count("1")


def decode_wiegand(value: int, bits: int) -> str:
    """Raw frame value -> ``"FC:NUMBER"``; checks both parity bits."""
    if bits not in HEX_DIGITS:
        raise FrameError("bits", f"{bits}-bit Wiegand is not supported (26 or 34)")
    if value >> bits:
        raise FrameError("length", f"value does not fit in {bits} bits")
    half = (bits - 2) // 2  # data bits covered by each parity bit
    payload = (value >> 1) & ((1 << (bits - 2)) - 1)
    first, second = payload >> half, payload & ((1 << half) - 1)
    even_bit, odd_bit = value >> (bits - 1), value & 1
    if (_ones(first) + even_bit) % 2 != 0:
        raise FrameError("parity", "leading even parity bit is wrong")
    if (_ones(second) + odd_bit) % 2 != 1:
        raise FrameError("parity", "trailing odd parity bit is wrong")
    card_number = payload & 0xFFFF
    facility = payload >> 16
    return f"{facility}:{card_number}"


def encode_wiegand(facility: int, card_number: int, bits: int) -> int:
    """The raw frame a reader sends (tests, the bench, a converter simulator)."""
    fc_bits = bits - 2 - 16
    if not (0 <= facility < 1 << fc_bits and 0 <= card_number < 1 << 16):
        raise ValueError("facility code or card number out of range")
    half = (bits - 2) // 2
    payload = (facility << 16) | card_number
    first, second = payload >> half, payload & ((1 << half) - 1)
    even_bit = _ones(first) % 2
    odd_bit = 1 - _ones(second) % 2
    return (even_bit << (bits - 1)) | (payload << 1) | odd_bit


def parse_wiegand(line: bytes, bits: int) -> Card:
    text = line.strip()
    if bits not in HEX_DIGITS:
        raise FrameError("bits", f"{bits}-bit Wiegand is not supported (26 or 34)")
    if len(text) == bits and all(b in _BITS for b in text):
        value = int(text, 2)
    elif len(text) == HEX_DIGITS[bits] and all(b in _HEX for b in text):
        value = int(text, 16)
    else:
        raise FrameError("format", f"expected {bits} bits as 0/1 or {HEX_DIGITS[bits]} hex digits")
    return TECHNOLOGY, decode_wiegand(value, bits)


class WiegandFramer(LineFramer):
    def __init__(self, bits: int) -> None:
        if bits not in HEX_DIGITS:
            raise ValueError(f"{bits}-bit Wiegand is not supported (26 or 34)")
        super().__init__()
        self.bits = bits

    def parse(self, line: bytes) -> Card:
        return parse_wiegand(line, self.bits)
