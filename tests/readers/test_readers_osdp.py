"""The osdp driver as control panel against a libosdp PeripheralDevice on a real pty pair."""

from __future__ import annotations

import contextlib
import logging
import os
import termios
import time
import tty
from pathlib import Path
from typing import Any

import osdp
import pytest
from reader_helpers import EventSink

from readers.errors import ReaderConfigError
from readers.events import (
    CardPresented,
    Feedback,
    KeypadInput,
    ReaderOffline,
    ReaderOnline,
    ReaderTamper,
)
from readers.frames.wiegand import encode_wiegand
from readers.registry import open_reader, validate_reader_url

KEY = bytes.fromhex("a1b2c3d4e5f60718293a4b5c6d7e8f90")
WRONG_KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
ADDRESS = 5


class FdChannel(osdp.Channel):
    """The reader's side of the wire: the pty master, non-blocking."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd
        os.set_blocking(fd, False)

    def read(self, max_bytes: int) -> bytes:
        try:
            return os.read(self.fd, max_bytes)
        except (BlockingIOError, OSError):
            return b""

    def write(self, buf: bytes) -> int:
        try:
            return os.write(self.fd, buf)
        except (BlockingIOError, OSError):
            return 0

    def flush(self) -> None:
        pass


class Wire:
    """A pty pair: the test's PD on the master, our CP opens the slave by path."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)

    def flush(self) -> None:
        termios.tcflush(self.master, termios.TCIOFLUSH)

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def start_pd(wire: Wire, key: bytes | None) -> Any:
    """A reader with LEDs, a buzzer, a keypad, secure channel if keyed, powered on."""
    cap_list = [
        (osdp.Capability.LEDControl, 1, 1),
        (osdp.Capability.AudibleControl, 1, 1),
        (osdp.Capability.CardDataFormat, 1, 1),
    ]
    if key is not None:
        cap_list.append((osdp.Capability.CommunicationSecurity, 1, 1))
    caps = osdp.PDCapabilities(cap_list)
    pd = osdp.PeripheralDevice(
        osdp.PDInfo(ADDRESS, FdChannel(wire.master), scbk=key), caps, log_level=osdp.LogLevel.Error
    )
    pd.start()
    return pd


def commands(pd: Any, n: int, timeout: float = 3.0) -> list[dict[str, Any]]:
    got = []
    for _ in range(n):
        cmd = pd.get_command(timeout)
        assert cmd is not None, f"PD received only {got!r}"
        got.append(cmd)
    return got


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "door.key"
    path.write_text(KEY.hex() + "\n")
    return path


@pytest.mark.slow
def test_secure_channel_cards_keys_tamper_and_feedback(
    key_file: Path, sink: EventSink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wire = Wire()
    pd = start_pd(wire, KEY)
    url = f"osdp:{wire.path}?address={ADDRESS}&scbk={key_file}&baud=9600"
    reader = open_reader("osdp-in", url, sink, debounce=0)
    reader.start()
    try:
        sink.wait_for(lambda e: isinstance(e, ReaderOnline), timeout=5, what="online")
        assert pd.is_sc_active()

        # a 26-bit Wiegand read, left-aligned in 4 bytes as OSDP carries it
        w26 = encode_wiegand(123, 45678, 26) << 6
        pd.submit_event(
            {
                "event": osdp.Event.CardRead,
                "reader_no": 0,
                "format": osdp.CardFormat.Wiegand,
                "direction": 0,
                "length": 26,
                "data": w26.to_bytes(4, "big"),
            }
        )
        card = sink.wait_for(lambda e: isinstance(e, CardPresented), what="Wiegand card")
        assert (card.technology, card.card_id, card.reader_id) == (
            "wiegand",
            "123:45678",
            "osdp-in",
        )

        pd.submit_event(
            {
                "event": osdp.Event.CardRead,
                "reader_no": 0,
                "format": osdp.CardFormat.Unspecified,
                "direction": 0,
                "length": 56,
                "data": bytes.fromhex("04a1b2c3d4e5f6"),
            }
        )
        card = sink.wait_for(lambda e: isinstance(e, CardPresented), what="raw card")
        assert (card.technology, card.card_id) == ("osdp", "04A1B2C3D4E5F6")

        pd.submit_event({"event": osdp.Event.KeyPress, "reader_no": 0, "data": b"1290\r"})
        keys = sink.wait_for(lambda e: isinstance(e, KeypadInput), what="keys")
        assert keys.keys == "1290#"
        assert "1290" not in repr(keys)
        # every key is acknowledged, and every acknowledgement is the same
        acks = commands(pd, 10)
        assert len({repr(sorted(c.items())) for c in acks}) == 2  # one LED + one buzzer command
        assert {c["command"] for c in acks} == {osdp.Command.LED, osdp.Command.Buzzer}

        reader.feedback(Feedback.GRANTED)
        led, beep = commands(pd, 2)
        assert (led["command"], led["on_color"]) == (osdp.Command.LED, osdp.CommandLEDColor.Green)
        assert (beep["command"], beep["on_count"]) == (osdp.Command.Buzzer, 1)
        reader.feedback(Feedback.DENIED)
        led, beep = commands(pd, 2)
        assert led["on_color"] == osdp.CommandLEDColor.Red
        assert beep["on_count"] == 10  # a long beep

        pd.submit_event(
            {
                "event": osdp.Event.Status,
                "type": osdp.StatusReportType.Local,
                "nr_entries": 2,
                "report": bytes([1, 0]),
            }  # fmt: skip
        )
        tamper = sink.wait_for(lambda e: isinstance(e, ReaderTamper), what="tamper")
        assert tamper.active
    finally:
        reader.stop()
        pd.stop()
        wire.close()
    text = caplog.text + repr(reader) + repr(sink.seen)
    assert KEY.hex() not in text.lower() and KEY.hex().upper() not in text


@pytest.mark.slow
def test_reader_with_wrong_key_is_refused_and_reported(key_file: Path, sink: EventSink) -> None:
    wire = Wire()
    pd = start_pd(wire, WRONG_KEY)
    reader = open_reader("osdp-x", f"osdp:{wire.path}?address={ADDRESS}&scbk={key_file}", sink)
    reader.start()
    try:
        offline = sink.wait_for(lambda e: isinstance(e, ReaderOffline), timeout=8, what="refusal")
        assert "secure channel refused" in offline.reason
        pd.submit_event({"event": osdp.Event.KeyPress, "reader_no": 0, "data": b"1234"})
        later = sink.drain(1.5)
        assert not any(isinstance(e, ReaderOnline | KeypadInput) for e in later)
        assert not reader.online
    finally:
        reader.stop()
        pd.stop()
        wire.close()


@pytest.mark.slow
def test_silent_reader_goes_offline_and_returns_within_10_s(
    key_file: Path, sink: EventSink
) -> None:
    wire = Wire()
    pd = start_pd(wire, KEY)
    reader = open_reader("osdp-y", f"osdp:{wire.path}?address={ADDRESS}&scbk={key_file}", sink)
    reader.start()
    try:
        sink.wait_for(lambda e: isinstance(e, ReaderOnline), timeout=5, what="online")
        pd.stop()  # the reader stops answering (power cut)
        offline = sink.wait_for(lambda e: isinstance(e, ReaderOffline), timeout=12, what="offline")
        assert "no answer" in offline.reason
        wire.flush()  # a power-cycled reader has an empty receive buffer
        pd = start_pd(wire, KEY)
        returned = time.monotonic()
        sink.wait_for(lambda e: isinstance(e, ReaderOnline), timeout=10, what="back online")
        assert time.monotonic() - returned < 10
        assert reader.is_alive()
    finally:
        reader.stop()
        pd.stop()
        wire.close()


@pytest.mark.slow
def test_insecure_reader_without_secure_channel(sink: EventSink) -> None:
    wire = Wire()
    pd = start_pd(wire, None)
    reader = open_reader("osdp-p", f"osdp:{wire.path}?address={ADDRESS}&insecure=1", sink)
    reader.start()
    try:
        sink.wait_for(lambda e: isinstance(e, ReaderOnline), timeout=5, what="online")
        assert not pd.is_sc_active()
        pd.submit_event({"event": osdp.Event.KeyPress, "reader_no": 0, "data": b"7\x7f"})
        keys = sink.wait_for(lambda e: isinstance(e, KeypadInput), what="keys")
        assert keys.keys == "7*"
    finally:
        reader.stop()
        pd.stop()
        wire.close()


def test_scbk_names_a_key_file_and_its_content_never_shows(tmp_path: Path) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("not-a-key-0123456789abcdef0123456789abcdef")
    with pytest.raises(ReaderConfigError) as info:
        validate_reader_url(f"osdp:/dev/ttyS0?scbk={bad}")
    assert "32 hexadecimal digits" in str(info.value)
    assert "0123456789abcdef" not in str(info.value)
    with pytest.raises(ReaderConfigError, match="No such file"):
        validate_reader_url(f"osdp:/dev/ttyS0?scbk={tmp_path / 'missing.key'}")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "scbk=KEYFILE is required"),
        ("?insecure=1&address=127", "address=127"),
        ("?insecure=1&baud=4800", "baud=4800"),
        ("?insecure=1&baud=14400", "not one of"),
        ("?insecure=yes", "insecure='yes'"),
        ("?insecure=1&key=00", "unknown parameter 'key'"),
        ("?scbk=keys/door.key", "must be an absolute path"),
    ],
)
def test_bad_osdp_urls_are_config_errors(query: str, message: str) -> None:
    with pytest.raises(ReaderConfigError, match=message):
        validate_reader_url(f"osdp:/dev/ttyUSB0{query}")


def test_good_osdp_url(key_file: Path) -> None:
    parsed = validate_reader_url(f"osdp:/dev/ttyUSB0?address=1&baud=115200&scbk={key_file}")
    assert parsed.params["address"] == "1"
