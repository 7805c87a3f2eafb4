"""PIN rules for the console: the controller's rules (domain.pins), one source of truth."""

from __future__ import annotations

from domain.pins import WeakPinError, check_pin_strength, hash_pin

__all__ = ["hash_pin", "pin_problem"]


def pin_problem(pin: str) -> str | None:
    """A reason code for a weak PIN, or None: pin_format, pin_short, pin_long, pin_repeated,
    pin_sequence."""
    try:
        check_pin_strength(pin)
    except WeakPinError as exc:
        return exc.reason
    return None
