"""What is particular to the gpiozero backend: physical levels, pulls, errors (MockFactory)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from hardware import BACKENDS, HardwareConfigError, open_backend
from hardware.door import DoorHardware, DoorPins
from hardware.events import HardwareEvent
from hardware.gpiozero_backend import GpiozeroBackend


@pytest.fixture
def backend() -> Any:
    b = GpiozeroBackend(pin_factory="mock")
    yield b
    b.close()


def test_registered_and_opened_by_name() -> None:
    assert "gpiozero" in BACKENDS
    b = open_backend("gpiozero", pin_factory="mock")
    assert isinstance(b, GpiozeroBackend)
    assert isinstance(b.pin_factory, MockFactory)
    b.close()


def test_active_low_strike_drives_the_pin_low_to_release(backend: GpiozeroBackend) -> None:
    pin = backend.pin_factory.pin(17)  # type: ignore[union-attr]
    pin.drive_high()  # the relay board's pull-up, before we start
    pin.clear_states()
    door = DoorHardware("d", backend, DoorPins(strike=17, strike_active_low=True), print)
    assert pin.state is True  # de-energized from the start: the line never went low
    door.release()
    assert pin.state is False
    door.close()
    pin.assert_states([True, False, True])
    assert [s.state for s in pin.states] == [True, False, True]


def test_active_high_strike_levels(backend: GpiozeroBackend) -> None:
    pin = backend.pin_factory.pin(17)  # type: ignore[union-attr]
    door = DoorHardware("d", backend, DoorPins(strike=17), print)
    door.release()
    door.lock()
    door.release()
    door.close()
    assert [s.state for s in pin.states] == [False, True, False, True, False]


def test_door_inputs_are_pulled_up_and_a_cut_wire_is_secure(backend: GpiozeroBackend) -> None:
    # NC door contact and NC tamper to GND (active-high), REX push button to GND (active-low).
    events: list[HardwareEvent] = []
    pins = DoorPins(contact=27, rex=22, tamper=23, rex_active_low=True)
    door = DoorHardware("d", backend, pins, events.append)
    factory: Any = backend.pin_factory
    assert [factory.pin(n).pull for n in (27, 22, 23)] == ["up", "up", "up"]
    # Nothing connected (a cut wire): the contact says open, the tamper says tampered,
    # the REX button is not pressed: alarms, never a door opened by a broken cable.
    assert door.is_open
    assert door.tamper is not None and door.tamper.is_active
    assert door.rex is not None and not door.rex.is_active
    factory.pin(27).drive_low()  # the door is shut: the closed switch pulls the pin low
    assert not door.is_open
    assert [type(e).__name__ for e in events] == ["ContactChanged"]


def test_input_default_pull_follows_the_polarity(backend: GpiozeroBackend) -> None:
    backend.input(5, print, active_high=True)
    backend.input(6, print, active_high=False)
    factory: Any = backend.pin_factory
    # With no pull asked for, an open circuit reads inactive (like gpiozero's Button).
    assert (factory.pin(5).pull, factory.pin(6).pull) == ("down", "up")


def test_explicit_pull_against_the_polarity(backend: GpiozeroBackend) -> None:
    seen: list[bool] = []
    inp = backend.input(5, seen.append, active_high=True, pull_up=True)
    pin: Any = backend.pin_factory.pin(5)  # type: ignore[union-attr]
    assert pin.pull == "up"
    assert inp.is_active  # pulled high and active-high: active at rest
    pin.drive_low()
    assert seen == [False]


def test_pin_used_twice_is_a_config_error(backend: GpiozeroBackend) -> None:
    backend.output(17, label="front.strike")
    with pytest.raises(HardwareConfigError, match="front.contact.*17"):
        backend.input(17, print, label="front.contact")


def test_unknown_pin_is_a_config_error(backend: GpiozeroBackend) -> None:
    with pytest.raises(HardwareConfigError, match="no-such-pin"):
        backend.output("no-such-pin", label="x")


def test_unknown_pin_factory_is_a_config_error() -> None:
    with pytest.raises(HardwareConfigError, match="no-such-factory"):
        GpiozeroBackend(pin_factory="no-such-factory")


def test_failing_handler_is_logged_not_raised(
    backend: GpiozeroBackend, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[bool] = []

    def broken(active: bool) -> None:
        calls.append(active)
        raise RuntimeError("boom")

    backend.input(6, broken, label="front.tamper")
    pin: Any = backend.pin_factory.pin(6)  # type: ignore[union-attr]
    with caplog.at_level(logging.ERROR):
        pin.drive_high()  # would raise into gpiozero's callback thread if not caught
        pin.drive_low()
    assert calls == [True, False]  # the pin keeps reporting after a failure
    assert "front.tamper" in caplog.text


def test_backend_close_turns_outputs_off(backend: GpiozeroBackend) -> None:
    out = backend.output(13, label="alarm.siren")
    out.on()
    backend.close()
    pin: Any = backend.pin_factory.pin(13)  # type: ignore[union-attr]
    assert [s.state for s in pin.states] == [False, True, False]


def test_missing_backend_library_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.delitem(sys.modules, "hardware.gpiozero_backend", raising=False)
    monkeypatch.setitem(sys.modules, "gpiozero", None)  # as if gpiozero were not installed
    from hardware import HardwareError

    with pytest.raises(HardwareError, match="'gpiozero' cannot be loaded.*'gpio' extra"):
        open_backend("gpiozero", pin_factory="mock")
