"""GPIO through gpiozero (Raspberry Pi and friends); ``pin_factory="mock"`` runs anywhere.

gpiozero reaches the hardware only through a *pin factory*. By default it picks the best
one installed (lgpio, RPi.GPIO, pigpio, native). ``pin_factory="mock"`` uses gpiozero's
MockFactory, which is what the tests use: ``pin.drive_low()`` pushes an input and
``pin.states`` / ``pin.assert_states`` show what an output did.

Polarity: ``active_high=False`` (the site file's ``*_active_low``) inverts the logic, so
``Output.on()`` always means "energize the relay" and ``Input.is_active`` always means
"door open / button pressed / case opened", whatever the physical level.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from gpiozero import DigitalInputDevice, DigitalOutputDevice, GPIOZeroError
from gpiozero.pins import Factory

from hardware.base import Backend, HardwareConfigError, HardwareError, Input, Output, PinSpec

log = logging.getLogger(__name__)

FACTORY_ENTRY_POINTS = "gpiozero_pin_factories"


def resolve_pin_factory(spec: str | Factory | None) -> Factory | None:
    """``None`` -> gpiozero's default (``GPIOZERO_PIN_FACTORY`` or the best installed);
    ``"mock"`` -> MockFactory; another name -> that gpiozero pin factory (``"lgpio"``...)."""
    if spec is None or isinstance(spec, Factory):
        return spec
    if spec == "mock":
        from gpiozero.pins.mock import MockFactory

        return MockFactory()
    matches = [ep for ep in entry_points(group=FACTORY_ENTRY_POINTS) if ep.name == spec]
    if not matches:
        known = sorted({ep.name for ep in entry_points(group=FACTORY_ENTRY_POINTS)})
        raise HardwareConfigError(
            f"unknown gpiozero pin factory {spec!r} (known: {', '.join(known)})"
        )
    try:
        factory: Factory = matches[0].load()()
    except Exception as exc:  # the factory's own library is missing or no GPIO here
        raise HardwareError(f"gpiozero pin factory {spec!r} cannot start: {exc}") from exc
    return factory


def _wrap_error(label: str, pin: PinSpec, exc: Exception) -> HardwareError:
    from gpiozero import GPIOPinInUse, PinInvalidPin

    text = f"{label or 'pin'} on GPIO pin {pin!r}: {exc}"
    if isinstance(exc, GPIOPinInUse | PinInvalidPin):
        return HardwareConfigError(text)
    return HardwareError(text)


class GpiozeroOutput(Output):
    def __init__(self, device: DigitalOutputDevice, label: str) -> None:
        self.device = device
        self.label = label

    def on(self) -> None:
        self.device.on()

    def off(self) -> None:
        self.device.off()

    @property
    def is_active(self) -> bool:
        return bool(self.device.is_active)

    def close(self) -> None:
        # Drive the inactive level first: closing turns the pin into an input, and the
        # relay must already be de-energized when that happens (fail-secure).
        if not self.device.closed:
            self.device.off()
            self.device.close()


class GpiozeroInput(Input):
    def __init__(
        self, device: DigitalInputDevice, on_change: Callable[[bool], None], label: str
    ) -> None:
        self.device = device
        self.label = label
        self._on_change = on_change
        # Attached only after the pull is set, so setting it up reports nothing.
        device.when_activated = self._activated
        device.when_deactivated = self._deactivated

    def _activated(self) -> None:
        self._report(True)

    def _deactivated(self) -> None:
        self._report(False)

    def _report(self, active: bool) -> None:
        # Runs on gpiozero's callback thread: an exception here would kill edge
        # detection for this pin, so it is logged, never raised.
        try:
            self._on_change(active)
        except Exception:
            log.exception("handler for %s failed", self.label)

    @property
    def is_active(self) -> bool:
        return bool(self.device.is_active)

    def close(self) -> None:
        if not self.device.closed:
            self.device.close()


class GpiozeroBackend(Backend):
    """Pins are gpiozero pin specs: ``17``, ``"GPIO17"``, ``"BOARD11"``."""

    name = "gpiozero"

    def __init__(self, pin_factory: str | Factory | None = None, **_options: object) -> None:
        self.pin_factory = resolve_pin_factory(pin_factory)
        self._parts: list[GpiozeroOutput | GpiozeroInput] = []

    def output(self, pin: PinSpec, *, active_high: bool = True, label: str = "") -> GpiozeroOutput:
        try:
            # initial_value=False: the pin starts at the inactive level, so a strike is
            # never energized, not even for an instant, while the controller starts.
            device = DigitalOutputDevice(
                pin, active_high=active_high, initial_value=False, pin_factory=self.pin_factory
            )
        except (GPIOZeroError, ValueError, TypeError) as exc:
            raise _wrap_error(label, pin, exc) from exc
        out = GpiozeroOutput(device, label or str(pin))
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
    ) -> GpiozeroInput:
        # Default pull: the one that makes an open circuit read as *inactive*
        # (pull-up for active-low switches to GND, pull-down for active-high switches
        # to 3V3), like gpiozero's Button.
        if pull_up is None:
            pull_up = not active_high
        kwargs: dict[str, Any] = {"bounce_time": bounce_seconds, "pin_factory": self.pin_factory}
        try:
            if pull_up == (not active_high):
                # gpiozero's own convention: the pull decides the active level.
                device = DigitalInputDevice(pin, pull_up=pull_up, **kwargs)
            else:
                # An unusual combination (e.g. pull-up and active-high): gpiozero accepts
                # an explicit active_state only for a floating pin, so set the pull after.
                device = DigitalInputDevice(pin, pull_up=None, active_state=active_high, **kwargs)
                device.pin.pull = "up" if pull_up else "down"
        except (GPIOZeroError, ValueError, TypeError) as exc:
            raise _wrap_error(label, pin, exc) from exc
        inp = GpiozeroInput(device, on_change, label or str(pin))
        self._parts.append(inp)
        return inp

    def close(self) -> None:
        # Outputs first, so every relay is off before anything else is released.
        for part in sorted(self._parts, key=lambda p: not isinstance(p, GpiozeroOutput)):
            part.close()
        self._parts.clear()
