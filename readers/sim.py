"""``sim:NAME``: a reader driven by code (tests, the demo, ``nyutai tap``)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from readers.base import Reader
from readers.events import Feedback, KeypadInput, ReaderOnline


class SimReader(Reader):
    scheme = "sim"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.feedback_log: list[Feedback] = []

    def run(self) -> None:
        self.online = True
        self.sink(ReaderOnline(self.reader_id))
        self.stopping.wait()

    def present(self, card_id: str, technology: str = "felica") -> None:
        # A simulated tap is a deliberate act: no debounce, or repeated demo taps would vanish.
        self.debouncer.reset()
        self.emit_card(technology, card_id.upper())

    def keys(self, keys: str) -> None:
        self.sink(KeypadInput(self.reader_id, keys, time.monotonic(), datetime.now(UTC)))

    def feedback(self, kind: Feedback) -> None:
        self.feedback_log.append(kind)
