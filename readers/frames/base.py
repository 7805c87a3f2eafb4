"""What every framer shares: the card tuple, the rejection counter, line splitting."""

from __future__ import annotations

from collections import Counter

from readers.errors import FrameError

Card = tuple[str, str]  # (technology, card id)

# Longest line a line-based reader may send; anything longer is garbage (or an attack on
# our memory), dropped up to the next newline.
MAX_LINE = 64


class Framer:
    """Feed bytes as they arrive; get back the cards framed correctly so far."""

    def __init__(self) -> None:
        # reason code -> how many frames were dropped for it (shown by ``readers probe``)
        self.rejected: Counter[str] = Counter()
        self.accepted = 0

    def feed(self, data: bytes) -> list[Card]:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget a partial frame (the port was reopened)."""


class LineFramer(Framer):
    """Splits input into lines (``\\n``, optional ``\\r``) of at most ``max_line`` bytes."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        super().__init__()
        self.max_line = max_line
        self._buf = bytearray()
        self._overlong = False  # inside a too-long line: drop until the next newline

    def parse(self, line: bytes) -> Card:
        """One line without its terminator -> card, or ``FrameError``."""
        raise NotImplementedError

    def reset(self) -> None:
        self._buf.clear()
        self._overlong = False

    def feed(self, data: bytes) -> list[Card]:
        cards: list[Card] = []
        start = 0
        while True:
            nl = data.find(b"\n", start)
            chunk = data[start:] if nl < 0 else data[start:nl]
            if not self._overlong:
                if len(self._buf) + len(chunk) > self.max_line:
                    self._overlong = True
                    self.rejected["too_long"] += 1
                    self._buf.clear()
                else:
                    self._buf += chunk
            if nl < 0:
                return cards
            if not self._overlong:
                line = bytes(self._buf).rstrip(b"\r")
                if line.strip():  # blank lines are keep-alives, not errors
                    try:
                        cards.append(self.parse(line))
                        self.accepted += 1
                    except FrameError as exc:
                        self.rejected[exc.reason] += 1
            self._buf.clear()
            self._overlong = False
            start = nl + 1
