"""PIN rules for card + PIN doors (4(3)): weak PINs are refused, PINs are argon2-hashed."""

from __future__ import annotations

from argon2 import PasswordHasher

MIN_PIN_DIGITS = 6

_hasher = PasswordHasher()


def pin_problem(pin: str) -> str | None:
    """A reason code for a weak PIN, or None. Codes: pin_format, pin_short, pin_repeated,
    pin_sequence."""
    try:  # the controller's rule wins once it exists, so both sides agree
        from controller.pins import check_pin_strength  # type: ignore[import-not-found]

        return check_pin_strength(pin)  # type: ignore[no-any-return]
    except ImportError:
        pass
    if not pin.isdigit() or not pin.isascii():
        return "pin_format"
    if len(pin) < MIN_PIN_DIGITS:
        return "pin_short"
    if len(set(pin)) == 1:
        return "pin_repeated"
    # ascending or descending runs, wrapping 9->0 the way people type them (1234567890)
    steps = {(int(b) - int(a)) % 10 for a, b in zip(pin, pin[1:], strict=False)}
    if steps in ({1}, {9}):
        return "pin_sequence"
    return None


def hash_pin(pin: str) -> str:
    return _hasher.hash(pin)
