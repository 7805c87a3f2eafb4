"""What door inputs tell the controller."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ContactChanged:
    door: str  # door code
    open: bool
    monotonic: float


@dataclass(frozen=True, slots=True)
class ExitRequested:
    """The request-to-exit (REX) button was pressed."""

    door: str
    monotonic: float


@dataclass(frozen=True, slots=True)
class TamperChanged:
    door: str
    active: bool
    monotonic: float


HardwareEvent = ContactChanged | ExitRequested | TamperChanged
