"""One door's wiring: strike relay, door contact, request-to-exit button, tamper switch."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from hardware.base import Backend, Input, Output, PinSpec
from hardware.events import ContactChanged, ExitRequested, HardwareEvent, TamperChanged

# Every door switch is wired between its pin and GND, with the pin's pull-up on (the
# usual Raspberry Pi wiring: no 3V3 runs to the door). ``*_active_low`` then says whether
# the switch closes when active (REX button: true) or opens (NC door contact, NC tamper:
# false), and a cut wire reads high: "open"/"tampered" for NC switches (raises an alarm),
# "not pressed" for the REX button (never opens the door). See docs/hardware.md.
INPUTS_PULL_UP = True


@dataclass(frozen=True)
class DoorPins:
    """Pins of one door; ``None`` = not fitted. ``*_active_low`` inverts a wire's logic."""

    strike: PinSpec | None = None
    contact: PinSpec | None = None  # active = door open
    rex: PinSpec | None = None  # active = pressed
    tamper: PinSpec | None = None  # active = case opened
    strike_active_low: bool = False
    contact_active_low: bool = False
    rex_active_low: bool = False
    tamper_active_low: bool = False


class DoorHardware:
    """Drives a door's strike and reports its inputs as events.

    The strike is fail-secure: energized = released, so losing power or stopping the
    controller leaves the door locked.
    """

    def __init__(
        self, door: str, backend: Backend, pins: DoorPins, sink: Callable[[HardwareEvent], None]
    ) -> None:
        self.door = door
        self._sink = sink
        self.strike: Output | None = None
        self.contact: Input | None = None
        self.rex: Input | None = None
        self.tamper: Input | None = None
        if pins.strike is not None:
            self.strike = backend.output(
                pins.strike, active_high=not pins.strike_active_low, label=f"{door}.strike"
            )
            self.strike.off()
        if pins.contact is not None:
            self.contact = backend.input(
                pins.contact,
                self._contact_changed,
                active_high=not pins.contact_active_low,
                pull_up=INPUTS_PULL_UP,
                label=f"{door}.contact",
            )
        if pins.rex is not None:
            self.rex = backend.input(
                pins.rex,
                self._rex_changed,
                active_high=not pins.rex_active_low,
                pull_up=INPUTS_PULL_UP,
                bounce_seconds=0.05,
                label=f"{door}.rex",
            )
        if pins.tamper is not None:
            self.tamper = backend.input(
                pins.tamper,
                self._tamper_changed,
                active_high=not pins.tamper_active_low,
                pull_up=INPUTS_PULL_UP,
                label=f"{door}.tamper",
            )

    def release(self) -> None:
        if self.strike is not None:
            self.strike.on()

    def lock(self) -> None:
        if self.strike is not None:
            self.strike.off()

    @property
    def released(self) -> bool:
        return self.strike is not None and self.strike.is_active

    @property
    def is_open(self) -> bool:
        return self.contact is not None and self.contact.is_active

    def close(self) -> None:
        self.lock()
        for part in (self.strike, self.contact, self.rex, self.tamper):
            if part is not None:
                part.close()

    def _contact_changed(self, active: bool) -> None:
        self._sink(ContactChanged(self.door, active, time.monotonic()))

    def _rex_changed(self, active: bool) -> None:
        if active:
            self._sink(ExitRequested(self.door, time.monotonic()))

    def _tamper_changed(self, active: bool) -> None:
        self._sink(TamperChanged(self.door, active, time.monotonic()))


class AlarmOutputs:
    """Site alarm outputs (siren, lamp): on while any audible alarm is unacknowledged."""

    def __init__(self, backend: Backend, pins: dict[str, PinSpec], active_low: bool = False):
        self.outputs: dict[str, Output] = {
            name: backend.output(pin, active_high=not active_low, label=f"alarm.{name}")
            for name, pin in pins.items()
        }
        for out in self.outputs.values():
            out.off()

    def set(self, active: bool) -> None:
        for out in self.outputs.values():
            if active:
                out.on()
            else:
                out.off()

    @property
    def active(self) -> bool:
        return any(o.is_active for o in self.outputs.values())

    def close(self) -> None:
        self.set(False)
        for out in self.outputs.values():
            out.close()
