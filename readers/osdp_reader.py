"""``osdp:DEVICE?address=N&scbk=KEYFILE&baud=B``: OSDP readers on RS-485 (libosdp, we are the CP).

DEVICE is a serial device path or a pyserial URL. ``scbk`` names a FILE holding the
reader's secure channel base key as 32 hex digits; the key itself never appears in
the site file, a log, an event or a repr. Without ``scbk`` the URL must say
``insecure=1`` (a reader that cannot do secure channel), so plaintext is a decision.

libosdp's ControlPanel is driven from this reader's own thread (``refresh`` every
20 ms) instead of its helper thread: callbacks then run here, nothing else needs a
lock, and no stray non-daemon thread can outlive the reader.
libosdp marks a silent reader offline after about 8 s and then waits 300 s before
trying again; we re-enable it every few seconds instead, so a reader that returns is
back online within seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from readers.base import SupervisedReader
from readers.errors import FrameError, ReaderConfigError, ReaderError
from readers.events import Feedback, KeypadInput, ReaderTamper
from readers.frames.osdp import decode_card_read, decode_keys
from readers.params import check_known, int_param
from readers.registry import ReaderURL, parse_reader_url

log = logging.getLogger(__name__)

PARAMS = ("address", "baud", "scbk", "insecure")
BAUDS = (9600, 19200, 38400, 57600, 115200, 230400)
DEFAULT_BAUD = 9600
REFRESH_SECONDS = 0.02
CONNECT_GRACE_SECONDS = 3.0  # a reader just opened has this long to answer before "offline"
RECONNECT_SECONDS = 2.0  # while offline, restart the connection attempt this often
TALKING_SECONDS = 1.0  # bytes heard this recently: the reader answers, the handshake failed

# libosdp event / notification numbers (osdp.Event, osdp.EventNotification)
EV_CARDREAD, EV_KEYPRESS, EV_STATUS, EV_NOTIFICATION = 1, 2, 4, 5
NOTIF_SC_STATUS, NOTIF_PD_STATUS = 1, 2
STATUS_LOCAL = 2  # local status report: report[0] tamper, report[1] power

# Feedback -> (LED colour name, LED on / off time in 100 ms, LED total time in 100 ms,
#              beep on time in 100 ms or 0 for none)
_FEEDBACK: dict[Feedback, tuple[str, int, int, int, int]] = {
    Feedback.GRANTED: ("Green", 20, 0, 20, 1),  # green 2 s, short beep
    Feedback.DENIED: ("Red", 20, 0, 20, 10),  # red 2 s, long beep
    Feedback.PIN_WANTED: ("Amber", 3, 3, 100, 1),  # amber blinking 10 s: type your PIN
    Feedback.WAIT: ("Blue", 5, 5, 100, 0),  # blue blinking: waiting for an escort
    Feedback.KEY: ("Amber", 1, 0, 1, 1),  # identical for every key: no key can be told apart
}


def load_scbk(path: str, url: str) -> bytes:
    """Read a 16-byte key stored as hex; errors name the file, never its content."""
    try:
        text = Path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not readable"
        raise ReaderConfigError(f"reader URL {url!r}: scbk key file {path!r}: {reason}") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 16:
        raise ReaderConfigError(
            f"reader URL {url!r}: scbk key file {path!r} must hold 32 hexadecimal digits"
        )
    return key


class _SerialChannel:
    """libosdp's channel over a pyserial port: never blocks, never raises into C."""

    def __init__(self, port: Any) -> None:
        self.port = port
        self.failure: BaseException | None = None
        self.last_rx = 0.0  # monotonic time bytes last arrived from the reader
        self.id = 0

    def read(self, max_bytes: int) -> bytes:
        if self.failure is not None:
            return b""
        try:
            data = self.port.read(min(max_bytes, self.port.in_waiting))
        except Exception as exc:  # noqa: BLE001 - reported by poll(), not inside libosdp
            self.failure = exc
            return b""
        if data:
            self.last_rx = time.monotonic()
        return bytes(data)

    def write(self, buf: bytes) -> int:
        if self.failure is not None:
            return 0
        try:
            return int(self.port.write(buf) or 0)
        except Exception as exc:  # noqa: BLE001
            self.failure = exc
            return 0

    def flush(self) -> None:
        pass


class OsdpReader(SupervisedReader):
    scheme = "osdp"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        parsed = self.validate_params(parse_reader_url(self.url))
        self.device = parsed.target
        self.address = int_param(self.url, parsed.params, "address", 0, 0, 126)
        self.baud = int_param(self.url, parsed.params, "baud", DEFAULT_BAUD, 9600, 230400)
        key_file = parsed.params.get("scbk")
        self._scbk = load_scbk(key_file, self.url) if key_file else None
        self.rejected: Counter[str] = Counter()
        self.tamper = False
        self._cp: Any = None
        self._port: Any = None
        self._channel: _SerialChannel | None = None
        self._lock = threading.Lock()  # libosdp context: our thread and feedback() callers
        self._pending_keys = 0
        self._sc_failed = False
        self._failure: str | None = None  # why libosdp last dropped the reader
        self._opened_at = 0.0
        self._kicked_at = 0.0

    def __repr__(self) -> str:  # the key stays out of every repr
        return f"<OsdpReader {self.reader_id} {self.device} address={self.address}>"

    @classmethod
    def validate_params(cls, parsed: ReaderURL) -> ReaderURL:
        url = f"osdp:{parsed.target}"
        params = parsed.params
        check_known(url, params, PARAMS)
        if not parsed.target:
            raise ReaderConfigError(f"reader URL {url!r}: no device (e.g. osdp:/dev/ttyUSB0)")
        int_param(url, params, "address", 0, 0, 126)
        baud = int_param(url, params, "baud", DEFAULT_BAUD, 9600, 230400)
        if baud not in BAUDS:
            raise ReaderConfigError(f"reader URL {url!r}: baud={baud} is not one of {BAUDS}")
        insecure = params.get("insecure")
        if insecure not in (None, "0", "1"):
            raise ReaderConfigError(f"reader URL {url!r}: insecure={insecure!r} (0 or 1)")
        if "scbk" in params:
            if insecure == "1":
                raise ReaderConfigError(f"reader URL {url!r}: scbk= and insecure=1 conflict")
            if not Path(params["scbk"]).is_absolute():
                # relative to what? the daemon's working directory is not the site file's
                raise ReaderConfigError(
                    f"reader URL {url!r}: scbk={params['scbk']!r} must be an absolute path"
                )
            load_scbk(params["scbk"], url)
        elif insecure != "1":
            raise ReaderConfigError(
                f"reader URL {url!r}: scbk=KEYFILE is required "
                "(or insecure=1 for a reader without secure channel)"
            )
        return parsed

    # --- device life cycle (SupervisedReader) ----------------------------------------------

    def open_device(self) -> None:
        import osdp  # libosdp is imported only when an OSDP reader is used
        import serial

        self._port = serial.serial_for_url(self.device, baudrate=self.baud, timeout=0)
        self._channel = _SerialChannel(self._port)
        flags = [osdp.LibFlag.EnableNotification]
        if self._scbk is not None:
            flags.append(osdp.LibFlag.EnforceSecure)
        info = osdp.PDInfo(
            self.address, self._channel, scbk=self._scbk, name=self.reader_id, flags=flags
        )
        cp = osdp.ControlPanel([info], log_level=osdp.LogLevel.Error)
        cp.set_event_handler(self._on_event)
        cp.lock = self._lock  # we refresh ourselves (see module docstring)
        self._cp = cp
        self._sc_failed = False
        self._failure = None
        self._opened_at = self._kicked_at = time.monotonic()

    def poll(self) -> None:
        cp, channel = self._cp, self._channel
        assert cp is not None and channel is not None
        with self._lock:
            cp.ctx.refresh()
        if channel.failure is not None:
            raise ReaderError(f"serial port failed: {channel.failure}")
        while self._pending_keys:
            self._pending_keys -= 1
            self.feedback(Feedback.KEY)
        if cp.is_online(self.address):
            self._sc_failed = False
            self._failure = None
            self.set_online()
        else:
            now = time.monotonic()
            if (
                self.online
                or self._failure is not None
                or now - self._opened_at > CONNECT_GRACE_SECONDS
            ):
                self.set_offline(self._failure or self._no_answer())
            if now - self._kicked_at > RECONNECT_SECONDS and now - self._opened_at > 1.0:
                # libosdp would wait 300 s; restart the attempt so a returning reader is seen.
                self._kicked_at = now
                with self._lock:
                    cp.ctx.disable_pd(0)
                    cp.ctx.enable_pd(0)
        self.stopping.wait(REFRESH_SECONDS)

    def close_device(self) -> None:
        self._cp = None  # the context is freed with the object; no thread of its own
        port, self._port, self._channel = self._port, None, None
        if port is not None:
            port.close()

    def describe_error(self, exc: BaseException) -> str:
        # pyserial/libosdp messages never contain the key, but keep it that way for sure
        text = super().describe_error(exc)
        return text.replace(self._scbk.hex(), "<key>") if self._scbk else text

    # --- events from libosdp (called inside refresh(), on this thread) --------------------

    def _no_answer(self) -> str:
        return f"no answer from OSDP reader at address {self.address}"

    def _dropped(self) -> str:
        """Why libosdp just dropped the reader: it answers but the handshake failed, or silence."""
        channel = self._channel
        talking = channel is not None and time.monotonic() - channel.last_rx < TALKING_SECONDS
        if self._sc_failed and talking:
            return f"secure channel refused by reader at address {self.address} (wrong key?)"
        return self._no_answer()

    def _on_event(self, pd: int, event: dict[str, Any]) -> int:
        try:
            self._handle(event)
        except Exception:  # noqa: BLE001 - a bad event must not break the bus
            self.rejected["handler"] += 1
            log.exception("reader %s: OSDP event not handled", self.reader_id)
        return 0

    def _handle(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == EV_CARDREAD:
            try:
                technology, card_id = decode_card_read(event)
            except FrameError as exc:
                self.rejected[exc.reason] += 1
                log.warning("reader %s: card read refused: %s", self.reader_id, exc)
                return
            self.emit_card(technology, card_id)
        elif kind == EV_KEYPRESS:
            try:
                keys = decode_keys(event.get("data"))
            except FrameError as exc:
                self.rejected[exc.reason] += 1
                return
            self.sink(KeypadInput(self.reader_id, keys, time.monotonic(), datetime.now(UTC)))
            self._pending_keys += len(keys)  # acknowledged after refresh (lock is held here)
        elif kind == EV_STATUS and event.get("type") == STATUS_LOCAL:
            report = event.get("report") or b"\x00"
            active = bool(report[0])
            if active != self.tamper:
                self.tamper = active
                self.sink(ReaderTamper(self.reader_id, active))
        elif kind == EV_NOTIFICATION and event.get("type") == NOTIF_SC_STATUS:
            self._sc_failed = not event.get("arg0")
        elif kind == EV_NOTIFICATION and event.get("type") == NOTIF_PD_STATUS:
            self._failure = None if event.get("arg0") else self._dropped()

    # --- feedback (called from the controller thread) -------------------------------------

    def feedback(self, kind: Feedback) -> None:
        cp = self._cp
        if cp is None or not self.online:
            return
        import osdp

        colour, on, off, total, beep = _FEEDBACK[kind]
        led = {
            "command": osdp.Command.LED,
            "reader": 0,
            "led_number": 0,
            "control_code": 2,  # temporary state, then back to the permanent one
            "on_color": getattr(osdp.CommandLEDColor, colour),
            "off_color": osdp.CommandLEDColor.Black,
            "on_count": on,
            "off_count": off,
            "timer_count": total,
            "temporary": True,
        }
        commands = [led]
        if beep:
            commands.append(
                {
                    "command": osdp.Command.Buzzer,
                    "reader": 0,
                    "control_code": 2,  # default tone
                    "on_count": beep,
                    "off_count": 0,
                    "rep_count": 1,
                }
            )
        try:
            with self._lock:
                for command in commands:
                    cp.ctx.submit_command(0, command)
        except Exception:  # noqa: BLE001 - a lost beep must not reach the controller
            log.warning("reader %s: feedback %s not sent", self.reader_id, kind, exc_info=True)
