"""The serial driver against a real pty pair: frames written by another thread arrive.

The test side writes on the pty master; the reader opens the slave through a symlink
(as udev's /dev/serial/by-id links), so "unplugging" is closing the pty and "plugging
back" is a new pty behind the same link.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import tty
from pathlib import Path

import pytest
from reader_helpers import EventSink

from readers.errors import ReaderConfigError
from readers.events import CardPresented, ReaderOffline, ReaderOnline
from readers.frames.rdm6300 import build_rdm6300
from readers.frames.wiegand import encode_wiegand
from readers.registry import open_reader, validate_reader_url
from readers.serial_reader import SerialReader


class Pty:
    """One end for the test (master fd), one path for the reader (a symlink to the slave)."""

    def __init__(self, link: Path) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # a fresh pty is cooked: \x03 would flush the queue
        tty.setraw(self.master)
        if link.is_symlink():
            link.unlink()
        link.symlink_to(os.ttyname(self.slave))

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.master, view) :]

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def cards(events: list[object]) -> list[str]:
    return [e.card_id for e in events if isinstance(e, CardPresented)]


@pytest.mark.slow
def test_rdm6300_over_pty_valid_frames_only(tmp_path: Path, sink: EventSink) -> None:
    link = tmp_path / "ttyRDM"
    pty = Pty(link)
    reader = open_reader("door1-in", f"serial:{link}?format=rdm6300&baud=9600", sink, debounce=0)
    assert isinstance(reader, SerialReader)
    reader.start()
    try:
        sink.wait_for(lambda e: isinstance(e, ReaderOnline), what="online")
        bad = bytearray(build_rdm6300("1111111111"))
        bad[11] = ord("0") if bad[11] != ord("0") else ord("1")  # corrupt the checksum
        valid = ["0A1B2C3D4E", "62E3086CED", "0102030405"]
        garbage = random.Random(7).randbytes(500) + b"\x02\x02\x03"  # stray STX/ETX too

        def writer() -> None:
            pty.write(build_rdm6300(valid[0]))
            pty.write(bytes(bad))
            pty.write(garbage)
            pty.write(build_rdm6300(valid[1]))
            pty.write(b"\x02" + b"A" * 5000)  # endless frame: never a card, never a hang
            pty.write(build_rdm6300(valid[2]))

        thread = threading.Thread(target=writer)
        thread.start()
        thread.join(5)
        sink.wait_for(
            lambda e: isinstance(e, CardPresented) and e.card_id == valid[2], what="last card"
        )
        got = [e for e in sink.seen if isinstance(e, CardPresented)]
        assert [e.card_id for e in got] == valid
        assert {e.technology for e in got} == {"em4100"}
        assert all(e.reader_id == "door1-in" and e.wall.tzinfo is not None for e in got)
        assert reader.rejected["checksum"] == 1
        assert reader.rejected["garbage"] > 0
        assert reader.rejected["truncated"] + reader.rejected["framing"] > 0
        assert reader.is_alive() and reader.online
    finally:
        reader.stop()
        pty.close()
    assert not reader.is_alive()


@pytest.mark.slow
def test_wiegand_and_line_over_pty(tmp_path: Path, sink: EventSink) -> None:
    link26, link_line = tmp_path / "ttyW", tmp_path / "ttyL"
    pty26, pty_line = Pty(link26), Pty(link_line)
    w = open_reader("w", f"serial:{link26}?format=wiegand26", sink, debounce=0)
    line = open_reader("l", f"serial:{link_line}?format=line&technology=felica", sink)
    w.start()
    line.start()
    try:
        sink.wait_for(
            lambda _: {"w", "l"} <= {e.reader_id for e in sink.seen if isinstance(e, ReaderOnline)},
            what="both readers online",
        )
        good = format(encode_wiegand(123, 45678, 26), "026b").encode()
        bad_parity = format(encode_wiegand(123, 45678, 26) ^ 1, "026b").encode()
        pty26.write(bad_parity + b"\r\n" + b"1" * 10_000 + b"\r\n" + good + b"\r\n")
        pty_line.write(b"0102030405060708\n" + b"0102030405060708\n" + b"zz\n")
        sink.wait_for(
            lambda _: (
                {"w", "l"} <= {e.reader_id for e in sink.seen if isinstance(e, CardPresented)}
            ),
            what="a card from both readers",
        )
        sink.drain(0.5)
        by_reader = {e.reader_id: e for e in sink.seen if isinstance(e, CardPresented)}
        assert (by_reader["w"].technology, by_reader["w"].card_id) == ("wiegand", "123:45678")
        assert (by_reader["l"].technology, by_reader["l"].card_id) == ("felica", "0102030405060708")
        # the same card held (sent twice within the 2 s debounce window) is reported once
        assert cards([e for e in sink.seen if getattr(e, "reader_id", "") == "l"]) == [
            "0102030405060708"
        ]
        assert cards([e for e in sink.seen if getattr(e, "reader_id", "") == "w"]) == ["123:45678"]
        assert w.rejected == {"parity": 1, "too_long": 1}
        assert line.rejected == {"not_hex": 1}
    finally:
        w.stop()
        line.stop()
        pty26.close()
        pty_line.close()


@pytest.mark.slow
def test_unplug_goes_offline_and_replug_comes_back(tmp_path: Path, sink: EventSink) -> None:
    link = tmp_path / "ttyUSB-by-id"
    pty = Pty(link)
    reader = open_reader("r1", f"serial:{link}?format=rdm6300", sink)
    reader.start()
    try:
        sink.wait_for(lambda e: isinstance(e, ReaderOnline), what="online")
        pty.close()  # unplugged
        offline = sink.wait_for(lambda e: isinstance(e, ReaderOffline), what="offline")
        assert offline.reason
        assert not reader.online and reader.offline_reason
        pty = Pty(link)  # plugged back (a new tty behind the same link)
        sink.wait_for(lambda e: isinstance(e, ReaderOnline), what="back online")
        pty.write(build_rdm6300("0A1B2C3D4E"))
        event = sink.wait_for(lambda e: isinstance(e, CardPresented), what="card after replug")
        assert event.card_id == "0A1B2C3D4E"
        assert reader.last_card == "0A1B2C3D4E"
    finally:
        reader.stop()
        pty.close()


def test_missing_device_is_offline_and_retried(tmp_path: Path, sink: EventSink) -> None:
    link = tmp_path / "not-yet"
    reader = open_reader("r2", f"serial:{link}?format=line", sink)
    reader.start()
    try:
        event = sink.wait_for(lambda e: isinstance(e, ReaderOffline), what="offline")
        assert event.reason.startswith("cannot open")
        # retries do not repeat the offline event
        assert not any(isinstance(e, ReaderOffline) for e in sink.drain(0.5))
        pty = Pty(link)
        try:
            sink.wait_for(lambda e: isinstance(e, ReaderOnline), what="online once it appears")
        finally:
            reader.stop()
            pty.close()
    finally:
        reader.stop()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("serial:/dev/ttyUSB0", "format= is required"),
        ("serial:/dev/ttyUSB0?format=rdm6301", "unknown format='rdm6301'"),
        ("serial:/dev/ttyUSB0?format=line&baud=fast", "baud='fast'"),
        ("serial:/dev/ttyUSB0?format=line&baud=0", "baud=0"),
        ("serial:/dev/ttyUSB0?format=line&bauds=9600", "unknown parameter 'bauds'"),
        ("serial:?format=line", "no device"),
        ("serial:/dev/ttyUSB0?format=rdm6300&technology=felica", "technology="),
    ],
)
def test_bad_serial_urls_are_config_errors(url: str, message: str) -> None:
    with pytest.raises(ReaderConfigError, match=message):
        validate_reader_url(url)


def test_pyserial_urls_are_accepted() -> None:
    parsed = validate_reader_url("serial:socket://127.0.0.1:7000?format=wiegand34&baud=115200")
    assert parsed.target == "socket://127.0.0.1:7000"
