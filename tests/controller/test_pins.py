"""PIN policy (4(3)): weak PINs refused, argon2 hashes, the duress variant."""

from __future__ import annotations

import pytest

from domain.pins import WeakPinError, check_pin, check_pin_strength, duress_variant, hash_pin


@pytest.mark.parametrize(
    ("pin", "reason"),
    [
        ("12345", "pin_short"),
        ("1234567890123", "pin_long"),
        ("12a456", "pin_format"),
        ("１２３４５６", "pin_format"),
        ("000000", "pin_repeated"),
        ("121212", "pin_repeated"),
        ("123123", "pin_repeated"),
        ("345678", "pin_sequence"),
        ("890123", "pin_sequence"),
        ("654321", "pin_sequence"),
    ],
)
def test_weak_pins_are_refused(pin: str, reason: str) -> None:
    with pytest.raises(WeakPinError) as info:
        check_pin_strength(pin)
    assert info.value.reason == reason
    with pytest.raises(WeakPinError):
        hash_pin(pin)


def test_a_good_pin_hashes_and_checks() -> None:
    pin = "739154"
    h = hash_pin(pin)
    assert pin not in h and h.startswith("$argon2")
    assert check_pin(h, pin) == "ok"
    assert check_pin(h, "739155") == "duress" == check_pin(h, duress_variant(pin))
    assert check_pin(h, "739153") == "wrong"
    assert check_pin(h, "") == "wrong" and check_pin(h, "abc") == "wrong"
    assert duress_variant("123459") == "123450"  # 9 wraps to 0
