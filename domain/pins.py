"""PIN rules (4(3)): strength, argon2 hashing, and the duress variant.

Duress scheme (documented choice): the duress PIN is the person's PIN with its last digit
increased by one (9 wraps to 0). Nobody has to remember a second PIN, so under threat it is
available without thinking, and the door still opens normally while a silent alarm is raised.
A second stored duress PIN would double what staff must memorise and what can leak.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PIN_LENGTH = 6
MAX_PIN_LENGTH = 12

_hasher = PasswordHasher()


class WeakPinError(ValueError):
    """The PIN is refused by the PIN policy; ``reason`` is a machine-readable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def check_pin_strength(pin: str) -> None:
    """Raise WeakPinError for a PIN that is short, repeated or sequential."""
    if not pin.isdigit() or not pin.isascii():
        raise WeakPinError("pin_format", "a PIN is made of digits only")
    if len(pin) < MIN_PIN_LENGTH:
        raise WeakPinError("pin_short", f"a PIN has at least {MIN_PIN_LENGTH} digits")
    if len(pin) > MAX_PIN_LENGTH:
        raise WeakPinError("pin_long", f"a PIN has at most {MAX_PIN_LENGTH} digits")
    if len(set(pin)) == 1:
        raise WeakPinError("pin_repeated", "a PIN may not repeat one digit")
    steps = {(int(b) - int(a)) % 10 for a, b in zip(pin, pin[1:], strict=False)}
    if steps in ({1}, {9}):
        raise WeakPinError("pin_sequence", "a PIN may not be a run of consecutive digits")
    for block in (2, 3):
        if len(pin) % block == 0 and pin[:block] * (len(pin) // block) == pin:
            raise WeakPinError("pin_repeated", "a PIN may not repeat a short block of digits")


def hash_pin(pin: str) -> str:
    check_pin_strength(pin)
    return _hasher.hash(pin)


def duress_variant(pin: str) -> str:
    return pin[:-1] + str((int(pin[-1]) + 1) % 10)


def _undo_duress(candidate: str) -> str:
    return candidate[:-1] + str((int(candidate[-1]) - 1) % 10)


def _matches(pin_hash: str, candidate: str) -> bool:
    try:
        return _hasher.verify(pin_hash, candidate)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def check_pin(pin_hash: str, candidate: str) -> str:
    """'ok', 'duress' or 'wrong'. Never logs or returns the candidate."""
    if not candidate.isdigit() or not candidate.isascii() or not candidate:
        return "wrong"
    if _matches(pin_hash, candidate):
        return "ok"
    if _matches(pin_hash, _undo_duress(candidate)):
        return "duress"
    return "wrong"
