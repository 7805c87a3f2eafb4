"""The one interface every GPIO backend offers: digital outputs and inputs by pin."""

from __future__ import annotations

import abc
from collections.abc import Callable

PinSpec = int | str


class HardwareError(Exception):
    """Base class of hardware errors."""


class HardwareConfigError(HardwareError, ValueError):
    """A pin, backend or option in the site file is wrong."""


class Output(abc.ABC):
    """A relay or lamp: ``on`` means energized/active, whatever the wiring polarity."""

    @abc.abstractmethod
    def on(self) -> None: ...

    @abc.abstractmethod
    def off(self) -> None: ...

    @property
    @abc.abstractmethod
    def is_active(self) -> bool: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the pin; backends that hold none need not override."""


class Input(abc.ABC):
    """A contact or button; calls ``on_change(active)`` from the backend's thread."""

    @property
    @abc.abstractmethod
    def is_active(self) -> bool: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the pin; backends that hold none need not override."""


class Backend(abc.ABC):
    name = "abstract"

    @abc.abstractmethod
    def output(self, pin: PinSpec, *, active_high: bool = True, label: str = "") -> Output: ...

    @abc.abstractmethod
    def input(
        self,
        pin: PinSpec,
        on_change: Callable[[bool], None],
        *,
        active_high: bool = True,
        pull_up: bool | None = None,
        bounce_seconds: float | None = None,
        label: str = "",
    ) -> Input: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release everything the backend opened."""
