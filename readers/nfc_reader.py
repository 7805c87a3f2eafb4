"""``nfc:PATH``: contactless readers through nfcpy (FeliCa IDm, ISO 14443A UID).

PATH is an nfcpy device path: ``usb`` (first USB reader), ``usb:054c:06c1`` (Sony
RC-S380 by vendor:product), ``usb:BUS:DEV``, ``tty:USB0:pn532`` (a PN532 on a serial
adapter), ``udp:HOST:PORT`` (nfcpy's network driver, used by the tests).

nfcpy checks for shutdown only between sense calls, and an empty field costs up to
about a second per card type on some drivers; so each ``poll`` senses one card type
at a time and checks ``stopping`` in between, keeping ``stop()`` prompt.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import Any

from readers.base import SupervisedReader
from readers.errors import ReaderConfigError, ReaderError
from readers.params import check_known, float_param
from readers.registry import ReaderURL, parse_reader_url

log = logging.getLogger(__name__)

# URL name -> (nfcpy brty, our technology value)
TARGETS: dict[str, tuple[str, str]] = {
    "felica": ("212F", "felica"),
    "iso14443a": ("106A", "iso14443a"),
}
DEFAULT_TARGETS = "felica,iso14443a"
DEFAULT_INTERVAL = 0.1  # pause between sense rounds (real readers answer in milliseconds)
PARAMS = ("targets", "interval")

_USB = re.compile(r"^usb(:[0-9a-fA-F]{4}:[0-9a-fA-F]{4}|:\d{1,3}:\d{1,3}|:\d{1,3})?$")
_TTY = re.compile(r"^tty:[A-Za-z0-9_.\-]+(:[a-z0-9_]+)?$")
_UDP = re.compile(r"^udp(:[A-Za-z0-9_.\-]+(:\d{1,5})?)?$")


class NfcReader(SupervisedReader):
    scheme = "nfc"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        parsed = self.validate_params(parse_reader_url(self.url))
        self.path = parsed.target
        names = parsed.params.get("targets", DEFAULT_TARGETS).split(",")
        self.targets = [TARGETS[name] for name in names]
        self.interval = float_param(self.url, parsed.params, "interval", DEFAULT_INTERVAL, 0, 5)
        self.transient_errors: Counter[str] = Counter()
        self._clf: Any = None

    @classmethod
    def validate_params(cls, parsed: ReaderURL) -> ReaderURL:
        url = f"nfc:{parsed.target}"
        check_known(url, parsed.params, PARAMS)
        path = parsed.target
        if not (_USB.match(path) or _TTY.match(path) or _UDP.match(path)):
            raise ReaderConfigError(
                f"reader URL {url!r}: {path!r} is not an nfcpy device path "
                "(usb, usb:VID:PID, tty:USB0:pn532, udp:HOST:PORT)"
            )
        port = path.split(":")[2] if path.startswith("udp:") and path.count(":") == 2 else None
        if port is not None and not 1 <= int(port) <= 65535:
            raise ReaderConfigError(f"reader URL {url!r}: UDP port {port} is outside 1..65535")
        names = parsed.params.get("targets", DEFAULT_TARGETS).split(",")
        for name in names:
            if name not in TARGETS:
                raise ReaderConfigError(
                    f"reader URL {url!r}: unknown target {name!r} (known: {', '.join(TARGETS)})"
                )
        float_param(url, parsed.params, "interval", DEFAULT_INTERVAL, 0, 5)
        return parsed

    def open_device(self) -> None:
        import nfc  # nfcpy is imported only when an NFC reader is used

        clf = nfc.ContactlessFrontend()
        try:
            found = clf.open(self.path)
        except OSError as exc:
            raise ReaderError(f"cannot open {self.path}: {exc}") from None
        if not found:
            raise ReaderError(f"no NFC reader at {self.path}")
        self._clf = clf
        self.set_online()

    def poll(self) -> None:
        import nfc
        from nfc.clf import CommunicationError, RemoteTarget

        for brty, technology in self.targets:
            if self.stopping.is_set():
                return
            try:
                target = self._clf.sense(RemoteTarget(brty), iterations=1, interval=0.05)
                tag = nfc.tag.activate(self._clf, target) if target is not None else None
            except CommunicationError as exc:
                # A card leaving mid-exchange or two cards colliding: not a broken reader.
                self.transient_errors[type(exc).__name__] += 1
                continue
            identifier = getattr(tag, "identifier", None)
            if identifier:
                self.emit_card(technology, bytes(identifier).hex().upper())
        self.stopping.wait(self.interval)

    def close_device(self) -> None:
        clf, self._clf = self._clf, None
        if clf is not None:
            clf.close()
