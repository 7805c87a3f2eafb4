"""Test helpers for reader tests (imported by the test modules of this folder)."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable

from readers.events import ReaderEvent


class EventSink:
    """Collects reader events; ``wait_for`` blocks until one matches (or fails the test)."""

    def __init__(self) -> None:
        self.queue: queue.Queue[ReaderEvent] = queue.Queue()
        self.seen: list[ReaderEvent] = []

    def __call__(self, event: ReaderEvent) -> None:
        self.queue.put(event)

    def wait_for(
        self, match: Callable[[ReaderEvent], bool], timeout: float = 5.0, what: str = "event"
    ) -> ReaderEvent:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {what} within {timeout} s; saw {self.seen!r}")
            try:
                event = self.queue.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(event)
            if match(event):
                return event

    def drain(self, seconds: float) -> list[ReaderEvent]:
        """Everything that arrives within ``seconds``."""
        got: list[ReaderEvent] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self.queue.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(event)
            got.append(event)
        return got
