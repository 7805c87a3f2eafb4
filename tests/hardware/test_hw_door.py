"""Door behaviour, run twice (python-can style): over SimBackend and over GpiozeroBackend.

The gpiozero run uses gpiozero's MockFactory the way gpiozero's own tests do: inputs are
pushed with ``pin.drive_high()`` / ``pin.drive_low()`` at the *physical* level (so
active-low wiring is really inverted), outputs are read from the pin's state history.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hardware import open_backend
from hardware.base import Backend
from hardware.door import AlarmOutputs, DoorHardware, DoorPins
from hardware.events import ContactChanged, ExitRequested, HardwareEvent, TamperChanged
from hardware.sim import SimBackend

STRIKE, CONTACT, REX, TAMPER = 17, 27, 22, 23


class Rig:
    """A backend plus the test's hands on its wires, at the logical level."""

    backend: Backend

    def push(self, pin: int, active: bool, *, active_low: bool = False) -> None:
        raise NotImplementedError

    def wire_outputs(self, pins: list[int], *, active_low: bool = False) -> None:
        """Before the controller starts, the driver board holds its inputs at rest."""

    def rest_inputs(self, pins: list[int], *, active_low: bool = False) -> None:
        """Door shut, button up, case closed: each switch holds its pin at rest."""

    def output_history(self, pin: int, *, active_low: bool = False) -> list[bool]:
        """Logical levels the output went through (True = energized), oldest first."""
        raise NotImplementedError


class SimRig(Rig):
    def __init__(self) -> None:
        self.backend = self.sim = SimBackend()

    def push(self, pin: int, active: bool, *, active_low: bool = False) -> None:
        self.sim.inputs[str(pin)].drive(active)  # the sim is logical: no polarity

    def output_history(self, pin: int, *, active_low: bool = False) -> list[bool]:
        return list(self.sim.outputs[str(pin)].history)


class GpiozeroRig(Rig):
    def __init__(self) -> None:
        self.backend = open_backend("gpiozero", pin_factory="mock")
        self.factory: Any = self.backend.pin_factory  # type: ignore[attr-defined]

    def pin(self, number: int) -> Any:
        return self.factory.pin(number)

    def push(self, pin: int, active: bool, *, active_low: bool = False) -> None:
        if active != active_low:
            self.pin(pin).drive_high()
        else:
            self.pin(pin).drive_low()

    def wire_outputs(self, pins: list[int], *, active_low: bool = False) -> None:
        # An active-low relay board pulls its input high while nothing drives it.
        for number in pins:
            pin = self.pin(number)
            if active_low:
                pin.drive_high()
            pin.clear_states()

    def rest_inputs(self, pins: list[int], *, active_low: bool = False) -> None:
        # The pins are pulled up; a closed NC switch (contact, tamper) pulls its pin low.
        for number in pins:
            self.push(number, False, active_low=active_low)

    def output_history(self, pin: int, *, active_low: bool = False) -> list[bool]:
        return [s.state != active_low for s in self.pin(pin).states]


class DoorBehaviour:
    """The behaviour every backend must give a door. Subclasses pick the backend."""

    active_low = False

    def make_rig(self) -> Rig:
        raise NotImplementedError

    @pytest.fixture
    def rig(self) -> Iterator[Rig]:
        rig = self.make_rig()
        yield rig
        rig.backend.close()

    @pytest.fixture
    def events(self) -> list[HardwareEvent]:
        return []

    @pytest.fixture
    def door(self, rig: Rig, events: list[HardwareEvent]) -> DoorHardware:
        low = self.active_low
        pins = DoorPins(
            strike=STRIKE,
            contact=CONTACT,
            rex=REX,
            tamper=TAMPER,
            strike_active_low=low,
            contact_active_low=low,
            rex_active_low=low,
            tamper_active_low=low,
        )
        rig.wire_outputs([STRIKE], active_low=low)
        door = DoorHardware("front", rig.backend, pins, events.append)
        rig.rest_inputs([CONTACT, REX, TAMPER], active_low=low)
        events.clear()  # what settling the wires reported is not under test
        return door

    def test_strike_starts_locked(self, rig: Rig, door: DoorHardware) -> None:
        assert not door.released
        assert rig.output_history(STRIKE, active_low=self.active_low) == [False]

    def test_release_then_lock(self, rig: Rig, door: DoorHardware) -> None:
        door.release()
        assert door.released
        door.lock()
        assert not door.released
        history = rig.output_history(STRIKE, active_low=self.active_low)
        assert history == [False, True, False]

    def test_contact_open_and_close_events(
        self, rig: Rig, door: DoorHardware, events: list[HardwareEvent]
    ) -> None:
        rig.push(CONTACT, True, active_low=self.active_low)
        assert door.is_open
        rig.push(CONTACT, False, active_low=self.active_low)
        assert not door.is_open
        assert [(type(e), e.door, e.open) for e in events if isinstance(e, ContactChanged)] == [
            (ContactChanged, "front", True),
            (ContactChanged, "front", False),
        ]

    def test_rex_press_is_one_event(
        self, rig: Rig, door: DoorHardware, events: list[HardwareEvent]
    ) -> None:
        rig.push(REX, True, active_low=self.active_low)
        rig.push(REX, False, active_low=self.active_low)  # the release reports nothing
        assert len(events) == 1
        assert isinstance(events[0], ExitRequested)
        assert events[0].door == "front"

    def test_tamper_events(self, rig: Rig, door: DoorHardware, events: list[HardwareEvent]) -> None:
        rig.push(TAMPER, True, active_low=self.active_low)
        rig.push(TAMPER, False, active_low=self.active_low)
        assert [e.active for e in events if isinstance(e, TamperChanged)] == [True, False]

    def test_no_event_without_a_change(
        self, rig: Rig, door: DoorHardware, events: list[HardwareEvent]
    ) -> None:
        rig.push(CONTACT, False, active_low=self.active_low)  # already closed
        assert events == []

    def test_close_leaves_strike_de_energized(self, rig: Rig, door: DoorHardware) -> None:
        door.release()
        door.close()
        history = rig.output_history(STRIKE, active_low=self.active_low)
        assert history[-1] is False  # fail-secure: locked after the controller stops
        assert history == [False, True, False]

    def test_alarm_outputs(self, rig: Rig) -> None:
        rig.wire_outputs([5, 6], active_low=self.active_low)
        alarms = AlarmOutputs(rig.backend, {"siren": 5, "lamp": 6}, active_low=self.active_low)
        assert not alarms.active
        alarms.set(True)
        assert alarms.active
        alarms.close()
        for pin in (5, 6):
            assert rig.output_history(pin, active_low=self.active_low) == [
                False,
                True,
                False,
            ]


class TestDoorOnSim(DoorBehaviour):
    def make_rig(self) -> Rig:
        return SimRig()


class TestDoorOnGpiozero(DoorBehaviour):
    def make_rig(self) -> Rig:
        return GpiozeroRig()


class TestDoorOnGpiozeroActiveLow(DoorBehaviour):
    """The same behaviour with every wire inverted (relay boards driven low, NC switches)."""

    active_low = True

    def make_rig(self) -> Rig:
        return GpiozeroRig()
