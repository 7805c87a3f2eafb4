"""GPIO through libgpiod 2.x (the kernel's character-device GPIO API, any Linux board).

A pin is ``"gpiochip0:17"`` (chip and line offset), ``"/dev/gpiochip1:5"``, or a bare
offset (``17`` or ``"17"``) on the backend's default chip. Polarity and debouncing are
done by the kernel (``active_low``, ``debounce_period``), so the values and edge events
we see are already logical: RISING_EDGE means "became active".

Each input gets one small thread waiting for edge events; each output holds its line
request (so no other program can drive the strike) until closed.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from hardware.base import Backend, HardwareConfigError, HardwareError, Input, Output, PinSpec

log = logging.getLogger(__name__)

DEFAULT_CHIP = "gpiochip0"
EVENT_WAIT_SECONDS = 0.2  # how often an input thread checks whether it should stop


@dataclass(frozen=True)
class LineAddress:
    chip: str  # a path: /dev/gpiochipN
    offset: int


def chip_path(chip: str) -> str:
    """``gpiochip0`` -> ``/dev/gpiochip0``; a path stays as it is."""
    chip = chip.strip()
    if not chip:
        raise HardwareConfigError("empty GPIO chip name")
    return chip if "/" in chip else f"/dev/{chip}"


def parse_pin(spec: PinSpec, default_chip: str = DEFAULT_CHIP) -> LineAddress:
    """Read a pin spec; a wrong one is a HardwareConfigError that quotes it."""
    if isinstance(spec, bool):  # bool is an int: refuse True/False as offsets
        raise HardwareConfigError(f"GPIO pin {spec!r}: expected a line offset or 'chip:offset'")
    if isinstance(spec, int):
        chip, offset_text = default_chip, str(spec)
    elif isinstance(spec, str):
        chip_part, sep, offset_text = spec.strip().rpartition(":")
        chip = chip_part if sep else default_chip
        if sep and not chip_part:
            raise HardwareConfigError(f"GPIO pin {spec!r}: the chip name before ':' is missing")
    else:
        raise HardwareConfigError(f"GPIO pin {spec!r}: expected a line offset or 'chip:offset'")
    offset_text = offset_text.strip()
    if not offset_text.isdigit():
        raise HardwareConfigError(
            f"GPIO pin {spec!r}: the line offset must be a whole number >= 0 "
            f"(like 'gpiochip0:17' or 17)"
        )
    return LineAddress(chip_path(chip), int(offset_text))


def _gpiod() -> Any:
    try:
        import gpiod
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise HardwareError(
            "the gpiod backend needs the 'gpiod' package (pip extra 'gpiod')"
        ) from exc
    return gpiod


def _request(address: LineAddress, settings: Any, label: str, consumer: str) -> Any:
    gpiod = _gpiod()
    where = f"{label or 'pin'}: GPIO chip {address.chip} line {address.offset}"
    if not os.path.exists(address.chip):
        raise HardwareError(f"{where}: the chip {address.chip} does not exist")
    try:
        config = {address.offset: settings}
        return gpiod.request_lines(address.chip, consumer=consumer, config=config)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise HardwareError(f"{where}: cannot open the chip {address.chip} ({reason})") from exc
    except ValueError as exc:  # e.g. the offset is beyond the chip's lines
        raise HardwareConfigError(f"{where}: {exc}") from exc


class GpiodOutput(Output):
    def __init__(self, request: Any, offset: int, label: str) -> None:
        self._request = request
        self._offset = offset
        self.label = label
        self._active = False
        self._closed = False

    def _set(self, active: bool) -> None:
        from gpiod.line import Value

        self._request.set_value(self._offset, Value.ACTIVE if active else Value.INACTIVE)
        self._active = active

    def on(self) -> None:
        self._set(True)

    def off(self) -> None:
        self._set(False)

    @property
    def is_active(self) -> bool:
        return self._active

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._set(False)  # fail-secure: de-energize before letting go of the line
            self._request.release()


def edge_is_active(event: Any) -> bool:
    """The logical level an edge event leads to (the kernel already applied active_low)."""
    from gpiod import EdgeEvent

    return bool(event.event_type == EdgeEvent.Type.RISING_EDGE)


class GpiodInput(Input):
    def __init__(
        self, request: Any, offset: int, on_change: Callable[[bool], None], label: str
    ) -> None:
        from gpiod.line import Value

        self._request = request
        self._offset = offset
        self._on_change = on_change
        self.label = label
        self._active = request.get_value(offset) == Value.ACTIVE
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"gpiod-{label}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self._request.wait_edge_events(EVENT_WAIT_SECONDS):
                    continue
                events = self._request.read_edge_events()
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("reading GPIO events for %s failed", self.label)
                self._stop.wait(1.0)
                continue
            for event in events:
                active = edge_is_active(event)
                if active == self._active:
                    continue
                self._active = active
                try:
                    self._on_change(active)
                except Exception:
                    log.exception("handler for %s failed", self.label)

    @property
    def is_active(self) -> bool:
        return self._active

    def close(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join(timeout=2 * EVENT_WAIT_SECONDS + 1)
            self._request.release()


class GpiodBackend(Backend):
    name = "gpiod"

    def __init__(
        self, chip: str = DEFAULT_CHIP, consumer: str = "nyutai", **_options: object
    ) -> None:
        self.chip = chip_path(chip)
        self.consumer = consumer
        self._parts: list[GpiodOutput | GpiodInput] = []

    def output(self, pin: PinSpec, *, active_high: bool = True, label: str = "") -> GpiodOutput:
        from gpiod import LineSettings
        from gpiod.line import Direction, Value

        address = parse_pin(pin, self.chip)
        # output_value=INACTIVE: the line is driven de-energized from the moment it is ours.
        settings = LineSettings(
            direction=Direction.OUTPUT, active_low=not active_high, output_value=Value.INACTIVE
        )
        out = GpiodOutput(
            _request(address, settings, label, self.consumer), address.offset, label or str(pin)
        )
        self._parts.append(out)
        return out

    def input(
        self,
        pin: PinSpec,
        on_change: Callable[[bool], None],
        *,
        active_high: bool = True,
        pull_up: bool | None = None,
        bounce_seconds: float | None = None,
        label: str = "",
    ) -> GpiodInput:
        from gpiod import LineSettings
        from gpiod.line import Bias, Direction, Edge

        address = parse_pin(pin, self.chip)
        if pull_up is None:  # same rule as gpiozero: an open circuit reads inactive
            pull_up = not active_high
        settings = LineSettings(
            direction=Direction.INPUT,
            edge_detection=Edge.BOTH,
            bias=Bias.PULL_UP if pull_up else Bias.PULL_DOWN,
            active_low=not active_high,
            debounce_period=timedelta(seconds=bounce_seconds or 0),
        )
        request = _request(address, settings, label, self.consumer)
        inp = GpiodInput(request, address.offset, on_change, label or str(pin))
        self._parts.append(inp)
        return inp

    def close(self) -> None:
        for part in sorted(self._parts, key=lambda p: not isinstance(p, GpiodOutput)):
            part.close()
        self._parts.clear()
