"""The reader thread every driver builds on."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from readers.events import CardPresented, Feedback, ReaderEvent

log = logging.getLogger(__name__)

Sink = Callable[[ReaderEvent], None]

DEFAULT_DEBOUNCE_SECONDS = 2.0


class Debouncer:
    """Reports the same card held on a reader only once within a window."""

    def __init__(self, window: float = DEFAULT_DEBOUNCE_SECONDS) -> None:
        self.window = window
        self._last: tuple[str, float] | None = None

    def accept(self, card_id: str, monotonic: float) -> bool:
        last = self._last
        if last is not None and last[0] == card_id and monotonic - last[1] < self.window:
            self._last = (card_id, monotonic)  # still held: extend the window
            return False
        self._last = (card_id, monotonic)
        return True

    def reset(self) -> None:
        """The card was seen removed: the next presentation counts again."""
        self._last = None


class Reader(threading.Thread):
    """A daemon thread turning one device's input into events on ``sink``.

    Drivers override ``run`` (loop until ``self.stopping`` is set) and ``feedback``.
    """

    scheme = "base"

    def __init__(
        self,
        reader_id: str,
        url: str,
        sink: Sink,
        *,
        debounce: float = DEFAULT_DEBOUNCE_SECONDS,
    ) -> None:
        super().__init__(name=f"reader-{reader_id}", daemon=True)
        self.reader_id = reader_id
        self.url = url
        self.sink = sink
        self.debouncer = Debouncer(debounce)
        self.stopping = threading.Event()
        self.online = False
        self.last_card: str | None = None

    def emit_card(self, technology: str, card_id: str) -> None:
        now = time.monotonic()
        if not self.debouncer.accept(card_id, now):
            return
        self.last_card = card_id
        self.sink(CardPresented(self.reader_id, technology, card_id, now, datetime.now(UTC)))

    def feedback(self, kind: Feedback) -> None:  # pragma: no cover - hardware without LEDs
        """Show the decision on the reader; a reader without LEDs or buzzer ignores it."""

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        if self.is_alive():
            self.join(timeout)
