"""The reader thread every driver builds on."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from readers.events import CardPresented, Feedback, ReaderEvent, ReaderOffline, ReaderOnline

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
        self.offline_reason: str | None = None  # why the reader is offline (None: never tried)
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


# Retry delays of a reader that cannot be opened: short first (a USB replug), then
# doubling up to a cap so a dead reader does not spin. Module constants so tests shrink them.
RETRY_MIN_SECONDS = 0.5
RETRY_MAX_SECONDS = 8.0
# A device that failed sooner than this after opening keeps backing off (it opens but is
# broken); one that worked longer starts again from the short delay.
STABLE_SECONDS = 10.0


class SupervisedReader(Reader):
    """A reader whose device may fail: open, poll until it breaks, report, back off, retry.

    Drivers implement ``open_device`` (raise if the device is not there), ``poll`` (one
    short round of I/O, a fraction of a second, raising when the device fails or goes
    silent) and ``close_device``. Any exception is caught here: a broken reader is
    reported offline and retried; it never ends the thread or touches other readers.
    """

    retry_min = RETRY_MIN_SECONDS
    retry_max = RETRY_MAX_SECONDS

    def open_device(self) -> None:
        raise NotImplementedError

    def poll(self) -> None:
        raise NotImplementedError

    def close_device(self) -> None:
        """Release the device; must not raise (called after failures too)."""

    def set_online(self) -> None:
        if self.online:
            return
        self.online = True
        self.offline_reason = None
        log.info("reader %s online", self.reader_id)
        self.sink(ReaderOnline(self.reader_id))

    def set_offline(self, reason: str) -> None:
        """Report the reader offline once per outage (the reason is kept up to date)."""
        first = self.online or self.offline_reason is None
        self.online = False
        self.offline_reason = reason
        if first:
            log.warning("reader %s offline: %s", self.reader_id, reason)
            self.sink(ReaderOffline(self.reader_id, reason))

    def describe_error(self, exc: BaseException) -> str:
        """A short reason for a failure; drivers override to hide details (never secrets)."""
        text = str(exc) or type(exc).__name__
        return text if len(text) <= 200 else text[:197] + "..."

    def run(self) -> None:
        delay = self.retry_min
        while not self.stopping.is_set():
            try:
                self.open_device()
            except Exception as exc:  # noqa: BLE001 - any failure is an outage, not a crash
                self._safe_close()
                self.set_offline(f"cannot open: {self.describe_error(exc)}")
                self.stopping.wait(delay)
                delay = min(delay * 2, self.retry_max)
                continue
            opened = time.monotonic()
            reason = "stopped"
            try:
                while not self.stopping.is_set():
                    self.poll()
            except Exception as exc:  # noqa: BLE001
                reason = self.describe_error(exc)
                log.debug("reader %s failed", self.reader_id, exc_info=True)
            finally:
                self._safe_close()
            if self.stopping.is_set():
                break
            self.set_offline(reason)
            if time.monotonic() - opened > STABLE_SECONDS:
                delay = self.retry_min
            self.stopping.wait(delay)
            delay = min(delay * 2, self.retry_max)
        self.online = False

    def _safe_close(self) -> None:
        try:
            self.close_device()
        except Exception:  # noqa: BLE001 - closing a broken device may fail too
            log.debug("reader %s: close failed", self.reader_id, exc_info=True)
