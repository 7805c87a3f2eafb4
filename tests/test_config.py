"""A malformed site file stops start-up naming the file, the key and what was expected."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from controller.wiring import check_wiring
from domain.config import ConfigError, load_config
from domain.zones import zone_label
from nyutai import DEMO_SITE

BASE = DEMO_SITE.read_text(encoding="utf-8")


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "site.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_demo_site_loads(tmp_path: Path) -> None:
    cfg = load_config(DEMO_SITE, data_dir=tmp_path)
    assert set(cfg.areas) == {"server-room", "mynumber-room"}
    assert len(cfg.doors) == 3
    assert cfg.database_url == f"sqlite:///{tmp_path.resolve() / 'nyutai.db'}"
    assert cfg.reader_door("sr-out") == ("server-room-door", "out")


@pytest.mark.parametrize(
    ("change", "key", "expected"),
    [
        (lambda t: t + "\n[bogus]\nx = 1\n", "bogus", "a known key"),
        (
            lambda t: t.replace('url = "sim:sr-in"', 'url = "carrier-pigeon:sr-in"'),
            "readers.sr-in.url",
            "unknown scheme",
        ),
        (
            lambda t: t.replace('url = "sim:sr-in"', 'url = "sim-in"'),
            "readers.sr-in.url",
            "no scheme",
        ),
        (
            lambda t: t.replace("held_open_seconds = 30", 'held_open_seconds = "long"'),
            "doors.server-room-door.held_open_seconds",
            "a number",
        ),
        (
            lambda t: t.replace("held_open_seconds = 30", "held_open_seconds = -1"),
            "doors.server-room-door.held_open_seconds",
            "positive",
        ),
        (
            lambda t: t.replace('area = "server-room"', 'area = "attic"'),
            "doors.server-room-door.area",
            "an area defined",
        ),
        (
            lambda t: t.replace('entry_reader = "mn-back-in"', 'entry_reader = "sr-in"'),
            "doors.mynumber-back.entry_reader",
            "not already used",
        ),
        (
            lambda t: t.replace('antipassback = "enforce"', 'antipassback = "sometimes"', 1),
            "areas.server-room.antipassback",
            "one of",
        ),
        (
            lambda t: t.replace('gpio_backend = "sim"', 'gpio_backend = "magic"'),
            "controller.gpio_backend",
            "one of",
        ),
        (
            lambda t: t.replace("pin_required = true", "pin_required = 1"),
            "doors.mynumber-front.pin_required",
            "true or false",
        ),
        (
            lambda t: t.replace(
                "[doors.server-room-door.gpio]\n", "[doors.server-room-door.gpio]\nwat = 1\n"
            ),
            "doors.server-room-door.gpio.wat",
            "a known key",
        ),
        (lambda t: t + "\n[doors.x]\nname = 'x'\n", "doors.x.area", "required"),
        (lambda t: t.replace("[site]", "[site\n"), "(syntax)", "valid TOML"),
        (
            lambda t: t.replace('timezone = "Asia/Tokyo"', 'timezone = "Asia/Atlantis"'),
            "site.timezone",
            "an IANA time zone name",
        ),
        (
            lambda t: t.replace('timezone = "Asia/Tokyo"', 'timezone = "../../etc/passwd"'),
            "site.timezone",
            "'../../etc/passwd' is not one",
        ),
        (
            lambda t: t.replace('timezone = "Asia/Tokyo"', 'timezone = "America"'),
            "site.timezone",
            "'America' is not one",
        ),
        (lambda t: t.replace('timezone = "Asia/Tokyo"', "timezone = 9"), "site.timezone", "string"),
    ],
)
def test_config_errors_name_file_key_and_expectation(
    tmp_path: Path, change: Callable[[str], str], key: str, expected: str
) -> None:
    """The file's own checks (domain.config) and the parts' checks (controller.wiring) both
    name the file and the key: the CLI and the controller run both."""
    path = write(tmp_path, change(BASE))
    with pytest.raises(ConfigError) as info:
        check_wiring(load_config(path))
    err = info.value
    assert err.key == key
    assert expected in err.expected
    assert str(path) in str(err)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_not_utf8(tmp_path: Path) -> None:
    p = tmp_path / "site.toml"
    p.write_bytes(b"name = '\xff\xfe'")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(p)


def test_data_dir_from_the_site_file(tmp_path: Path) -> None:
    relative = write(tmp_path, BASE.replace("[site]\n", '[site]\ndata_dir = "state"\n', 1))
    assert load_config(relative).data_dir == (tmp_path / "state").resolve()
    assert (
        load_config(relative).database_url
        == f"sqlite:///{(tmp_path / 'state' / 'nyutai.db').resolve()}"
    )
    absolute = write(
        tmp_path, BASE.replace("[site]\n", f'[site]\ndata_dir = "{tmp_path / "abs"}"\n', 1)
    )
    assert load_config(absolute).data_dir == (tmp_path / "abs").resolve()
    assert load_config(relative, data_dir=tmp_path / "x").data_dir == (tmp_path / "x").resolve()


def test_the_site_zone_comes_from_the_file(tmp_path: Path) -> None:
    london = write(tmp_path, BASE.replace('timezone = "Asia/Tokyo"', 'timezone = "Europe/London"'))
    assert load_config(london).zone == ZoneInfo("Europe/London")
    # a file without the key gets the default, Asia/Tokyo
    without = write(tmp_path, BASE.replace('timezone = "Asia/Tokyo"\n', ""))
    assert "timezone" not in without.read_text(encoding="utf-8")
    assert load_config(without).zone == ZoneInfo("Asia/Tokyo")


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("Asia/Tokyo", "JST"),
        ("Asia/Kolkata", "IST"),
        ("UTC", "UTC"),
        ("Europe/London", "Europe/London"),  # GMT in winter, BST in summer
        ("America/New_York", "America/New_York"),
    ],
)
def test_a_column_of_times_names_its_zone(name: str, label: str) -> None:
    assert zone_label(ZoneInfo(name), 2026) == label


def test_a_whole_site_file_gives_each_controller_its_own_doors(tmp_path: Path) -> None:
    text = BASE.replace('gpio_backend = "sim"', 'id = "bldg-a"\ngpio_backend = "sim"').replace(
        'area = "mynumber-room"', 'area = "mynumber-room"\ncontroller = "bldg-b"'
    )
    cfg = load_config(write(tmp_path, text))
    assert cfg.controller_id == "bldg-a" and cfg.controller_ids() == ["bldg-a", "bldg-b"]
    a, b = cfg.for_controller(), cfg.for_controller("bldg-b")
    assert set(a.doors) == {"server-room-door"} and set(a.readers) == {"sr-in", "sr-out"}
    assert set(b.doors) == {"mynumber-front", "mynumber-back"}
    assert set(b.readers) == {"mn-front-in", "mn-front-out", "mn-back-in", "mn-back-out"}
    assert b.controller_id == "bldg-b" and set(b.areas) == set(cfg.areas)  # areas: site-wide
    assert a.alarm_outputs and not b.alarm_outputs  # wired to the file's own controller
    # a file without [controller] id: one controller, "main", runs every door
    plain = load_config(DEMO_SITE, data_dir=tmp_path)
    assert plain.controller_ids() == ["main"]
    assert set(plain.for_controller().doors) == set(plain.doors)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda t: t.replace('gpio_backend = "sim"', 'id = "Bldg A"\ngpio_backend = "sim"'),
         "controller.id"),
        (lambda t: t.replace('name = "サーバ室 扉"', 'name = "サーバ室 扉"\ncontroller = "x y"'),
         "doors.server-room-door.controller"),
    ],
)  # fmt: skip
def test_a_bad_controller_id_is_named(
    tmp_path: Path, change: Callable[[str], str], key: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, change(BASE)))
    assert err.value.key == key
