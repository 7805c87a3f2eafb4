"""Pure parsers for serial card readers: bytes in, ``(technology, card_id)`` out.

Each format has a ``parse_*`` function for one complete frame (raising ``FrameError``)
and a ``Framer``: a small stateful object fed arbitrary chunks of bytes, as they come
off the wire, that resynchronises after garbage and counts what it rejected by reason.
No I/O here, so every rule is tested without a port (and fuzzed with hypothesis).
"""

from __future__ import annotations

from collections.abc import Callable

from readers.frames.base import Card, Framer, LineFramer
from readers.frames.line import LineCardFramer, parse_line
from readers.frames.rdm6300 import Rdm6300Framer, parse_rdm6300
from readers.frames.wiegand import WiegandFramer, parse_wiegand

# ``?format=`` value of a serial reader URL -> framer factory
FORMATS: dict[str, Callable[[], Framer]] = {
    "rdm6300": Rdm6300Framer,
    "line": LineCardFramer,
    "wiegand26": lambda: WiegandFramer(26),
    "wiegand34": lambda: WiegandFramer(34),
}

__all__ = [
    "FORMATS",
    "Card",
    "Framer",
    "LineCardFramer",
    "LineFramer",
    "Rdm6300Framer",
    "WiegandFramer",
    "parse_line",
    "parse_rdm6300",
    "parse_wiegand",
]
