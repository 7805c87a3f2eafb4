"""OSDP card reads and key presses (as libosdp hands them over) -> our values.

Pure functions over libosdp's event dicts, so they are tested and fuzzed without a bus.
"""

from __future__ import annotations

from collections.abc import Mapping

from domain.cards import CardIdError, normalise_card_id
from readers.errors import FrameError
from readers.frames.base import Card
from readers.frames.wiegand import decode_wiegand

# libosdp CardFormat values (osdp_sys constants; fixed by the OSDP standard's enum order)
FORMAT_RAW = 0
FORMAT_WIEGAND = 1
MAX_CARD_BITS = 1024  # OSDP_EVENT_CARDREAD_MAX_DATALEN is 64 bytes; anything longer is bogus

# Keypad bytes: digits are ASCII; OSDP sends '*' as 0x7F and '#' (enter) as 0x0D.
_KEYS = {**{0x30 + d: str(d) for d in range(10)}, 0x7F: "*", 0x0D: "#", 0x2A: "*", 0x23: "#"}


def decode_card_read(event: Mapping[str, object]) -> Card:
    """A CardRead event -> ``("wiegand", "FC:NUMBER")`` for 26/34-bit Wiegand, else
    ``("osdp", HEX)`` (the raw bits, left-aligned, as uppercase hex)."""
    fmt, data, length = event.get("format"), event.get("data"), event.get("length")
    if not isinstance(data, bytes) or not data:
        raise FrameError("empty", "card read carries no data")
    if fmt not in (FORMAT_RAW, FORMAT_WIEGAND):
        raise FrameError("format", f"card format {fmt!r} is not supported")
    if not isinstance(length, int) or not 0 < length <= MAX_CARD_BITS:
        raise FrameError("length", f"bit length {length!r} is not 1..{MAX_CARD_BITS}")
    if len(data) != (length + 7) // 8:
        raise FrameError("length", f"{len(data)} bytes cannot hold exactly {length} bits")
    value = int.from_bytes(data, "big") >> (len(data) * 8 - length)
    if fmt == FORMAT_WIEGAND and length in (26, 34):
        return "wiegand", decode_wiegand(value, length)
    width = (length + 3) // 4
    try:  # the one card-id rule: longer raw reads than the card column holds are refused
        return normalise_card_id("osdp", format(value, f"0{width}X"))
    except CardIdError as exc:
        raise FrameError("length", str(exc)) from None


def decode_keys(data: object) -> str:
    """KeyPress data -> keys as ``"0"-"9"``, ``"*"``, ``"#"``; anything else is refused."""
    if not isinstance(data, bytes) or not data:
        raise FrameError("empty", "key press carries no keys")
    try:
        return "".join(_KEYS[b] for b in data)
    except KeyError:
        raise FrameError("key", "key press holds a byte that is not a keypad key") from None
