"""``serial:DEVICE?format=F&baud=N``: readers that talk over a serial line (pyserial).

DEVICE is a device path (``/dev/ttyUSB0``, ``/dev/serial/by-id/...``) or any pyserial URL
(``socket://host:port``, ``rfc2217://...``, ``loop://``). The framing lives in
``readers.frames``; this module only moves bytes, so every parsing rule is tested
without a port.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from readers.base import SupervisedReader
from readers.errors import ReaderConfigError
from readers.frames import FORMATS, LineCardFramer
from readers.frames.base import Framer
from readers.params import check_known, int_param
from readers.registry import ReaderURL

log = logging.getLogger(__name__)

DEFAULT_BAUD = 9600
READ_TIMEOUT = 0.2  # a read returns at least this often, so stop() is prompt
LINE_TECHNOLOGIES = ("iso14443a", "felica", "em4100")
PARAMS = ("format", "baud", "technology")


class SerialReader(SupervisedReader):
    scheme = "serial"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        parsed = self.validate_params(_parse(self.url))
        self.device = parsed.target
        self.baud = int_param(self.url, parsed.params, "baud", DEFAULT_BAUD, 50, 4_000_000)
        fmt = parsed.params["format"]
        technology = parsed.params.get("technology")
        self.framer: Framer = (
            LineCardFramer(technology) if fmt == "line" and technology else FORMATS[fmt]()
        )
        self._port: Any = None

    @classmethod
    def validate_params(cls, parsed: ReaderURL) -> ReaderURL:
        url = f"serial:{parsed.target}"
        check_known(url, parsed.params, PARAMS)
        if not parsed.target:
            raise ReaderConfigError(f"reader URL {url!r}: no device (e.g. serial:/dev/ttyUSB0)")
        fmt = parsed.params.get("format")
        if fmt is None:
            raise ReaderConfigError(
                f"reader URL {url!r}: format= is required (one of {', '.join(FORMATS)})"
            )
        if fmt not in FORMATS:
            raise ReaderConfigError(
                f"reader URL {url!r}: unknown format={fmt!r} (one of {', '.join(FORMATS)})"
            )
        int_param(url, parsed.params, "baud", DEFAULT_BAUD, 50, 4_000_000)
        technology = parsed.params.get("technology")
        if technology is not None and (fmt != "line" or technology not in LINE_TECHNOLOGIES):
            raise ReaderConfigError(
                f"reader URL {url!r}: technology={technology!r} is only for format=line "
                f"(one of {', '.join(LINE_TECHNOLOGIES)})"
            )
        return parsed

    @property
    def rejected(self) -> Counter[str]:
        """Frames dropped since start, by reason (bad checksum, parity, garbage...)."""
        return self.framer.rejected

    def open_device(self) -> None:
        import serial  # pyserial: imported only when a serial reader is used

        self._port = serial.serial_for_url(self.device, baudrate=self.baud, timeout=READ_TIMEOUT)
        self.framer.reset()
        self.set_online()

    def poll(self) -> None:
        port = self._port
        data = port.read(max(1, min(port.in_waiting, 4096)))
        if not data:
            return
        for technology, card_id in self.framer.feed(data):
            self.emit_card(technology, card_id)

    def close_device(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            port.close()


def _parse(url: str) -> ReaderURL:
    from readers.registry import parse_reader_url

    return parse_reader_url(url)
