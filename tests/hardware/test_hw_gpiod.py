"""The libgpiod backend, as far as it can be checked without a GPIO chip (none here).

Real libgpiod (python ``gpiod`` 2.x) is used throughout: the errors below are the ones it
raises when the chip is missing or is not a GPIO chip.
"""

from __future__ import annotations

from pathlib import Path

import pytest

gpiod = pytest.importorskip("gpiod")

from hardware import BACKENDS, HardwareConfigError, HardwareError, open_backend  # noqa: E402
from hardware.door import DoorHardware, DoorPins  # noqa: E402
from hardware.gpiod_backend import GpiodBackend, LineAddress, edge_is_active, parse_pin  # noqa: E402


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (17, LineAddress("/dev/gpiochip0", 17)),
        ("17", LineAddress("/dev/gpiochip0", 17)),
        ("gpiochip1:5", LineAddress("/dev/gpiochip1", 5)),
        ("/dev/gpiochip2:0", LineAddress("/dev/gpiochip2", 0)),
        (" gpiochip0 : 4 ", LineAddress("/dev/gpiochip0", 4)),
    ],
)
def test_parse_pin(spec: int | str, expected: LineAddress) -> None:
    assert parse_pin(spec) == expected


def test_parse_pin_uses_the_default_chip() -> None:
    assert parse_pin(3, "gpiochip4") == LineAddress("/dev/gpiochip4", 3)


@pytest.mark.parametrize("spec", ["GPIO17", "gpiochip0:", ":17", "gpiochip0:-1", "", True, 1.5])
def test_parse_pin_refuses(spec: object) -> None:
    with pytest.raises(HardwareConfigError, match="GPIO pin"):
        parse_pin(spec)  # type: ignore[arg-type]


def test_registered() -> None:
    assert BACKENDS["gpiod"] == "hardware.gpiod_backend:GpiodBackend"
    assert isinstance(open_backend("gpiod", chip="gpiochip7"), GpiodBackend)


def test_missing_chip_is_named(tmp_path: Path) -> None:
    chip = tmp_path / "gpiochip9"
    backend = GpiodBackend(chip=str(chip))
    with pytest.raises(HardwareError, match=f"front.strike.*{chip}.*does not exist"):
        DoorHardware("front", backend, DoorPins(strike=17), print)


def test_a_file_that_is_not_a_chip_is_named(tmp_path: Path) -> None:
    chip = tmp_path / "not-a-chip"
    chip.write_bytes(b"")
    backend = GpiodBackend(chip=str(chip))
    with pytest.raises(HardwareError, match=f"front.contact.*cannot open the chip {chip}"):
        backend.input(27, print, label="front.contact")


def test_a_device_that_is_not_a_chip_is_named() -> None:
    with pytest.raises(HardwareError, match="cannot open the chip /dev/null"):
        GpiodBackend().output("/dev/null:3", label="alarm.siren")


def test_edges_map_to_logical_levels() -> None:
    from gpiod import _ext

    rising = gpiod.EdgeEvent(_ext.EDGE_EVENT_TYPE_RISING, 1, 17, 1, 1)
    falling = gpiod.EdgeEvent(_ext.EDGE_EVENT_TYPE_FALLING, 2, 17, 2, 2)
    assert edge_is_active(rising) is True
    assert edge_is_active(falling) is False
