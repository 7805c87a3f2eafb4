"""The nfc driver against nfcpy's udp driver: a second frontend emulates a FeliCa card."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest
from reader_helpers import EventSink

from readers.errors import ReaderConfigError
from readers.events import CardPresented, ReaderOnline
from readers.registry import open_reader, validate_reader_url

IDM = bytes.fromhex("012E4CD8A30B1C2D")
PMM = bytes.fromhex("0120220427674EFF")
SYSTEM_CODE = bytes.fromhex("0003")  # a transit/office card's system code


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FelicaCard:
    """A card held on the reader until ``remove()``: nfcpy answering SENSF_REQ with our IDm."""

    def __init__(self, port: int, idm: bytes) -> None:
        self.port, self.idm = port, idm
        self.target = self._target()
        self._removed = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import nfc

        clf = nfc.ContactlessFrontend(f"udp:localhost:{self.port}")
        try:
            while not self._removed.is_set():
                clf.listen(self.target, 0.5)  # the port is bound only inside listen()
        finally:
            clf.close()

    def _target(self) -> Any:
        from nfc.clf import LocalTarget

        target = LocalTarget("212F")
        target.sensf_res = b"\x01" + self.idm + PMM + SYSTEM_CODE
        return target

    def remove(self) -> None:
        self._removed.set()
        self._thread.join(5)


class TypeACard(FelicaCard):
    """An ISO 14443A card (non-NXP UID: no Type 2 page reads needed to activate it)."""

    def _target(self) -> Any:
        from nfc.clf import LocalTarget

        target = LocalTarget("106A")
        target.sens_res = bytes.fromhex("4400")
        target.sdd_res = self.idm  # the UID
        target.sel_res = b"\x00"  # Type 2
        return target


@pytest.mark.slow
def test_felica_card_on_udp_is_read_once_while_held_and_again_after_removal(
    sink: EventSink,
) -> None:
    port = free_udp_port()
    reader = open_reader(
        "nfc-in", f"nfc:udp:localhost:{port}?targets=felica&interval=0.05", sink, debounce=0.5
    )
    reader.start()
    card = None
    try:
        sink.wait_for(lambda e: isinstance(e, ReaderOnline), what="online")
        card = FelicaCard(port, IDM)
        event = sink.wait_for(lambda e: isinstance(e, CardPresented), timeout=6, what="card")
        assert isinstance(event, CardPresented)
        assert (event.technology, event.card_id, event.reader_id) == (
            "felica",
            IDM.hex().upper(),
            "nfc-in",
        )
        # held for three debounce windows: still one presentation
        held = [e for e in sink.drain(1.5) if isinstance(e, CardPresented)]
        assert held == []
        card.remove()
        time.sleep(0.8)  # longer than the debounce window
        card = FelicaCard(port, IDM)
        again = sink.wait_for(lambda e: isinstance(e, CardPresented), timeout=6, what="re-read")
        assert again.card_id == IDM.hex().upper()
        assert again.monotonic > event.monotonic + 0.5
    finally:
        if card is not None:
            card.remove()
        started = time.monotonic()
        reader.stop(timeout=5)
        stopped_in = time.monotonic() - started
    assert not reader.is_alive()
    assert stopped_in < 2.5  # nfcpy sensing stops promptly


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nfc:bluetooth", "not an nfcpy device path"),
        ("nfc:usb:054c", "not an nfcpy device path"),
        ("nfc:udp:localhost:70000", "outside 1..65535"),
        ("nfc:usb?targets=felica,mifare", "unknown target 'mifare'"),
        ("nfc:usb?interval=-1", "interval=-1"),
        ("nfc:usb?speed=1", "unknown parameter 'speed'"),
    ],
)
def test_bad_nfc_urls_are_config_errors(url: str, message: str) -> None:
    with pytest.raises(ReaderConfigError, match=message):
        validate_reader_url(url)


@pytest.mark.parametrize(
    "url", ["nfc:usb", "nfc:usb:054c:06c1", "nfc:tty:USB0:pn532", "nfc:udp:localhost:54321"]
)
def test_documented_nfc_urls_are_valid(url: str) -> None:
    assert validate_reader_url(url).scheme == "nfc"


@pytest.mark.slow
def test_iso14443a_uid_is_read_with_default_targets(sink: EventSink) -> None:
    port = free_udp_port()
    reader = open_reader("nfc-a", f"nfc:udp:localhost:{port}", sink)
    reader.start()
    card = TypeACard(port, bytes.fromhex("3A4B5C6D"))
    try:
        event = sink.wait_for(lambda e: isinstance(e, CardPresented), timeout=6, what="UID")
        assert (event.technology, event.card_id) == ("iso14443a", "3A4B5C6D")
    finally:
        card.remove()
        reader.stop()
