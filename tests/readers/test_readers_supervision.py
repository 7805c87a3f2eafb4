"""Supervision and the registry: broken readers are reported and retried, never fatal."""

from __future__ import annotations

import pytest
from reader_helpers import EventSink

from readers.base import Debouncer, SupervisedReader
from readers.errors import ReaderConfigError
from readers.events import CardPresented, ReaderOffline, ReaderOnline
from readers.registry import SCHEMES, open_reader, validate_reader_url
from readers.sim import SimReader


class FlakyReader(SupervisedReader):
    """Fails to open twice, then reads one card and crashes with a driver bug."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.opens = 0
        self.closes = 0

    def open_device(self) -> None:
        self.opens += 1
        if self.opens <= 2:
            raise FileNotFoundError(2, "No such file or directory", "/dev/ttyGONE")
        self.set_online()

    def poll(self) -> None:
        if self.opens == 3:
            self.emit_card("em4100", "0A1B2C3D4E")
            raise RuntimeError("driver bug")
        self.stopping.wait(0.05)

    def close_device(self) -> None:
        self.closes += 1
        raise OSError("close fails too")


def test_broken_reader_is_reported_retried_and_others_keep_working(sink: EventSink) -> None:
    flaky = FlakyReader("flaky", "flaky:x", sink)
    healthy = SimReader("sim-1", "sim:sim-1", sink)
    flaky.start()
    healthy.start()
    try:
        offline = sink.wait_for(lambda e: isinstance(e, ReaderOffline), what="first offline")
        assert offline.reader_id == "flaky" and "cannot open" in offline.reason
        assert "No such file" in offline.reason
        sink.wait_for(lambda e: isinstance(e, CardPresented) and e.reader_id == "flaky")
        crash = sink.wait_for(
            lambda e: isinstance(e, ReaderOffline) and "driver bug" in e.reason, what="bug"
        )
        assert crash.reader_id == "flaky"
        sink.wait_for(lambda e: isinstance(e, ReaderOnline) and e.reader_id == "flaky")
        assert flaky.is_alive() and flaky.online and flaky.opens == 4
        healthy.present("0102030405060708")
        card = sink.wait_for(lambda e: isinstance(e, CardPresented) and e.reader_id == "sim-1")
        assert card.card_id == "0102030405060708"
        offline_events = [e for e in sink.seen if isinstance(e, ReaderOffline)]
        assert len(offline_events) == 2  # once per outage, not once per retry
    finally:
        flaky.stop()
        healthy.stop()
    assert not flaky.is_alive() and not flaky.online


def test_debouncer_window() -> None:
    d = Debouncer(2.0)
    assert d.accept("A", 0.0)
    assert not d.accept("A", 1.5)  # still held
    assert not d.accept("A", 3.0)  # held on: the window follows the last sighting
    assert d.accept("B", 3.1)
    assert d.accept("A", 3.2)
    assert d.accept("A", 5.3)  # taken away for longer than the window


def test_debounce_is_configurable_through_open_reader(sink: EventSink) -> None:
    reader = open_reader("s", "sim:s", sink, debounce=0.0)
    assert reader.debouncer.window == 0.0


def test_every_scheme_is_registered() -> None:
    assert {"sim", "nfc", "serial", "osdp"} <= set(SCHEMES)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("bluetooth:aa:bb", "unknown scheme 'bluetooth'"),
        ("no-scheme", "has no scheme"),
        ("serial:/dev/ttyS0?format=line&format=rdm6300", "more than once"),
    ],
)
def test_registry_errors(url: str, message: str) -> None:
    with pytest.raises(ReaderConfigError, match=message):
        validate_reader_url(url)
