"""``format=rdm6300``: 125 kHz EM4100 modules (RDM6300 and clones).

A frame is STX (0x02), 10 ASCII hex digits (version byte + 4 data bytes), 2 ASCII hex
digits holding the XOR of those 5 bytes, ETX (0x03). The card id is the 10 digits.
"""

from __future__ import annotations

from readers.errors import FrameError
from readers.frames.base import Card, Framer

STX, ETX = 0x02, 0x03
FRAME_LEN = 14
TECHNOLOGY = "em4100"
_HEX = frozenset(b"0123456789abcdefABCDEF")


def parse_rdm6300(frame: bytes) -> Card:
    """One complete frame (STX..ETX) -> ``("em4100", "0A1B2C3D4E")``."""
    if len(frame) != FRAME_LEN:
        raise FrameError("length", f"frame is {len(frame)} bytes (expected {FRAME_LEN})")
    if frame[0] != STX or frame[-1] != ETX:
        raise FrameError("framing", "frame does not start with STX and end with ETX")
    body = frame[1:13]
    if any(b not in _HEX for b in body):
        raise FrameError("not_hex", "frame body is not hexadecimal")
    raw = bytes.fromhex(body.decode("ascii"))
    check = 0
    for b in raw[:5]:
        check ^= b
    if check != raw[5]:
        raise FrameError("checksum", "XOR checksum does not match")
    return TECHNOLOGY, body[:10].decode("ascii").upper()


def build_rdm6300(card_id: str) -> bytes:
    """The frame a module sends for ``card_id`` (10 hex digits); used by tests and the bench."""
    raw = bytes.fromhex(card_id)
    if len(raw) != 5:
        raise ValueError("an EM4100 id is 5 bytes (10 hex digits)")
    check = 0
    for b in raw:
        check ^= b
    return bytes([STX]) + f"{card_id.upper()}{check:02X}".encode() + bytes([ETX])


class Rdm6300Framer(Framer):
    def __init__(self) -> None:
        super().__init__()
        self._buf = bytearray()  # never longer than one frame

    def reset(self) -> None:
        self._buf.clear()

    def feed(self, data: bytes) -> list[Card]:
        cards: list[Card] = []
        for b in data:
            buf = self._buf
            if not buf:
                if b == STX:
                    buf.append(b)
                else:
                    self.rejected["garbage"] += 1
                continue
            if b == STX and len(buf) < FRAME_LEN - 1:
                # A new start inside a frame: the old one was cut short. Resynchronise here.
                self.rejected["truncated"] += 1
                buf.clear()
                buf.append(b)
                continue
            buf.append(b)
            if len(buf) == FRAME_LEN:
                frame = bytes(buf)
                buf.clear()
                try:
                    cards.append(parse_rdm6300(frame))
                    self.accepted += 1
                except FrameError as exc:
                    self.rejected[exc.reason] += 1
                    # The STX we trusted may have been noise: a real frame can start inside.
                    again = frame.find(bytes([STX]), 1)
                    if again > 0:
                        cards.extend(self.feed(frame[again:]))
        return cards
