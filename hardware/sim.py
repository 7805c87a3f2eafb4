"""A simulated backend: pins are named, outputs keep a history, inputs are driven by code.

Used by the demo and by the controller's tests (the way gpiozero's MockFactory is used).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from hardware.base import Backend, HardwareConfigError, Input, Output, PinSpec


class SimOutput(Output):
    def __init__(self, label: str) -> None:
        self.label = label
        self._active = False
        self.history: list[bool] = [False]

    def on(self) -> None:
        self._set(True)

    def off(self) -> None:
        self._set(False)

    def _set(self, value: bool) -> None:
        if value != self._active:
            self._active = value
            self.history.append(value)

    @property
    def is_active(self) -> bool:
        return self._active


class SimInput(Input):
    def __init__(self, label: str, on_change: Callable[[bool], None]) -> None:
        self.label = label
        self._on_change = on_change
        self._active = False
        self._lock = threading.Lock()

    def drive(self, active: bool) -> None:
        """Push a new level, as a wire would (callback only on a change)."""
        with self._lock:
            changed = active != self._active
            self._active = active
        if changed:
            self._on_change(active)

    def pulse(self) -> None:
        self.drive(True)
        self.drive(False)

    @property
    def is_active(self) -> bool:
        return self._active


class SimBackend(Backend):
    name = "sim"

    def __init__(self, **_options: object) -> None:
        self.outputs: dict[str, SimOutput] = {}
        self.inputs: dict[str, SimInput] = {}

    def output(self, pin: PinSpec, *, active_high: bool = True, label: str = "") -> SimOutput:
        key = str(pin)
        if key in self.outputs or key in self.inputs:
            raise HardwareConfigError(f"pin {key!r} is used twice")
        out = SimOutput(label or key)
        self.outputs[key] = out
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
    ) -> SimInput:
        key = str(pin)
        if key in self.outputs or key in self.inputs:
            raise HardwareConfigError(f"pin {key!r} is used twice")
        inp = SimInput(label or key, on_change)
        self.inputs[key] = inp
        return inp
